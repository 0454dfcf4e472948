// anelab_own_nn.h: anelab_sgemm_nn, C (+)= A·B for the step's GEMM blocks whose B lies as the product
// reads it (row-major A [m×k], B [k×n], C [m×n]), in AVX-512 registers: each MR×NR tile of C
// (8×32 by default) stays in zmm registers over a k-chunk of 256, B's NR columns read as NV
// vectors a k and each of A's MR rows broadcast against them (16 FMAs for 2 loads and 8
// broadcasts at 8×32), B's panel (32 KB at k = 256) reused from L1 by every tile of its columns;
// ANELAB_NN_PACK=1 copies the panel contiguous first. instep's mode 6 (instep.c). Measured on 16
// cores against oneDNN's no-copy kernels, block by block and in the step (an `own` knob that ran
// the step's NN products on it): slower in both (anert/bench/RESULTS.md, "Results (16 cores,
// 7 Dec 2026, 15:50–16:00 UTC)"), so the step keeps oneDNN; this stays as the measurement's kernel.
#ifndef ANELAB_SGEMM_NN_H
#define ANELAB_SGEMM_NN_H
#include <immintrin.h>

#ifndef ANELAB_NN_MR
#define ANELAB_NN_MR 8 // rows of a tile
#endif
#ifndef ANELAB_NN_NV
#define ANELAB_NN_NV 2 // 16-column vectors of a tile
#endif
#define ANELAB_NN_NR (16 * ANELAB_NN_NV)
#ifndef ANELAB_NN_KC
#define ANELAB_NN_KC 256 // k-chunk: B's panel of NR columns stays in L1 (32 KB)
#endif

// One MR×NR tile of C over kc steps of k: mk masks each vector's columns (n's edge); load: add to
// C's tile (a later k-chunk, or acc) rather than overwrite it.
#define ANELAB_NN_MICRO(NAME, MR)                                                                                  \
	static __attribute__((target("avx512f,fma"))) void anelab_nn_micro##NAME(long kc, const float *a, long lda, \
		const float *b, long ldb, float *c, long ldc, const __mmask16 *mk, int load) {                         \
		__m512 acc[MR][ANELAB_NN_NV];                                                                         \
		_Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                                 \
			_Pragma("GCC unroll 4") for (int v = 0; v < ANELAB_NN_NV; v++)                                    \
				acc[r][v] = load ? _mm512_maskz_loadu_ps(mk[v], c + r * ldc + 16 * v) : _mm512_setzero_ps();  \
		_Pragma("GCC unroll 2") for (long p = 0; p < kc; p++) {                                               \
			__m512 bv[ANELAB_NN_NV];                                                                          \
			_Pragma("GCC unroll 4") for (int v = 0; v < ANELAB_NN_NV; v++)                                    \
				bv[v] = _mm512_maskz_loadu_ps(mk[v], b + p * ldb + 16 * v);                                   \
			_Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                           \
				__m512 av = _mm512_set1_ps(a[r * lda + p]);                                                   \
				_Pragma("GCC unroll 4") for (int v = 0; v < ANELAB_NN_NV; v++)                                \
					acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);                                        \
			}                                                                                                 \
		}                                                                                                     \
		_Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                                 \
			_Pragma("GCC unroll 4") for (int v = 0; v < ANELAB_NN_NV; v++)                                    \
				_mm512_mask_storeu_ps(c + r * ldc + 16 * v, mk[v], acc[r][v]);                                \
	}
ANELAB_NN_MICRO(_mr, ANELAB_NN_MR)
ANELAB_NN_MICRO(4, 4)
ANELAB_NN_MICRO(2, 2)
ANELAB_NN_MICRO(1, 1)

// anelab_sgemm_nn: C = A·B (acc = 0) or C += A·B (acc = 1).
static __attribute__((target("avx512f,fma"), unused)) void anelab_sgemm_nn(long m, long n, long k, const float *a,
	long lda, const float *b, long ldb, float *c, long ldc, int acc) {
	if (k == 0) {
		if (!acc)
			for (long i = 0; i < m; i++)
				for (long j = 0; j < n; j++) c[i * ldc + j] = 0;
		return;
	}
	for (long p0 = 0; p0 < k; p0 += ANELAB_NN_KC) {
		long kc = k - p0 < ANELAB_NN_KC ? k - p0 : ANELAB_NN_KC;
		int load = acc || p0 > 0;
		for (long j = 0; j < n; j += ANELAB_NN_NR) {
			__mmask16 mk[ANELAB_NN_NV];
			for (int v = 0; v < ANELAB_NN_NV; v++) {
				long w = n - j - 16 * v;
				mk[v] = w >= 16 ? 0xFFFF : w <= 0 ? 0 : (__mmask16)((1u << w) - 1);
			}
			const float *bp = b + p0 * ldb + j;
			long ldp = ldb;
#if ANELAB_NN_PACK
			// B's panel copied contiguous (kc × NR, 64-byte aligned) when its rows lie far apart:
			// every strip of rows then reads it from a few pages instead of one page a k.
			_Alignas(64) float pk[ANELAB_NN_KC * ANELAB_NN_NR];
			if (m > ANELAB_NN_MR && ldb > 4 * ANELAB_NN_NR) {
				for (long p = 0; p < kc; p++)
					for (int v = 0; v < ANELAB_NN_NV; v++)
						_mm512_store_ps(pk + p * ANELAB_NN_NR + 16 * v, _mm512_maskz_loadu_ps(mk[v], bp + p * ldb + 16 * v));
				bp = pk, ldp = ANELAB_NN_NR;
			}
#endif
			long i = 0;
			for (; i + ANELAB_NN_MR <= m; i += ANELAB_NN_MR)
				anelab_nn_micro_mr(kc, a + i * lda + p0, lda, bp, ldp, c + i * ldc + j, ldc, mk, load);
			for (; i + 4 <= m; i += 4) anelab_nn_micro4(kc, a + i * lda + p0, lda, bp, ldp, c + i * ldc + j, ldc, mk, load);
			for (; i + 2 <= m; i += 2) anelab_nn_micro2(kc, a + i * lda + p0, lda, bp, ldp, c + i * ldc + j, ldc, mk, load);
			for (; i < m; i++) anelab_nn_micro1(kc, a + i * lda + p0, lda, bp, ldp, c + i * ldc + j, ldc, mk, load);
		}
	}
}
#endif
