//go:build cgo && amd64

// A register-blocked AVX-512 sgemm for small products (the attention's per-head GEMMs: one
// dimension the head's 64, the others a few hundred), where a general BLAS's per-call packing
// and dispatch cost more than the product: on 16 cores of an H100 host oneDNN ran 64×64×64
// products at 79–99 GFLOP/s a thread and libxsmm's JIT kernels at 129–140 (README, cblocks).
//
// C[m×n] = alpha·op(A)·B + beta·C, row-major. op(A)(i,p) is a[i·lda + p], or a[p·lda + i] with
// transA; B is not transposed (a copy of a transposed one cost as much as the product: Sgemm
// does those). The C tile is 4 rows × 64 columns (16 zmm accumulators); every step of k
// loads one row of B's 64 columns and broadcasts 4 elements of A. Columns past n are masked.
// Each C element is one float32 sum over p in order (fused multiply-adds), so a result does not
// depend on the schedule.

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "anelab_small.h"

#define AVX512 __attribute__((target("avx512f,fma")))
#define INLINE static inline __attribute__((always_inline))

// The C tile is kept in named variables (GCC kept an array of them in memory, storing every
// accumulator on each step of k): cIV is row I's vector V of 16 columns.
#define ZERO(I) __m512 c##I##0 = _mm512_setzero_ps(), c##I##1 = c##I##0, c##I##2 = c##I##0, c##I##3 = c##I##0;
#define STEP(I)                                                                                                     \
	{                                                                                                           \
		__m512 ai = _mm512_set1_ps(ap[(I) * ars]);                                                          \
		c##I##0 = _mm512_fmadd_ps(ai, b0, c##I##0);                                                         \
		c##I##1 = _mm512_fmadd_ps(ai, b1, c##I##1);                                                         \
		c##I##2 = _mm512_fmadd_ps(ai, b2, c##I##2);                                                         \
		c##I##3 = _mm512_fmadd_ps(ai, b3, c##I##3);                                                         \
	}
#define STORE(I)                                                                                                    \
	{                                                                                                           \
		float *ci = c + (I) * ldc;                                                                          \
		out(ci, c##I##0, mk[0], alpha, beta);                                                               \
		out(ci + 16, c##I##1, mk[1], alpha, beta);                                                          \
		out(ci + 32, c##I##2, mk[2], alpha, beta);                                                          \
		out(ci + 48, c##I##3, mk[3], alpha, beta);                                                          \
	}

// out stores alpha·acc + beta·C into the columns of mask at ci (beta = 0: C's old values unread).
INLINE AVX512 void out(float *ci, __m512 acc, __mmask16 mask, float alpha, float beta) {
	if (!mask) return;
	__m512 r = _mm512_mul_ps(_mm512_set1_ps(alpha), acc);
	if (beta != 0) r = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, ci), r);
	_mm512_mask_storeu_ps(ci, mask, r);
}

// LOAD_B loads row p of B's 64 columns of this panel (mk: the columns present).
#define LOAD_B                                                                                                      \
	const float *bp = b + p * ldb;                                                                              \
	__m512 b0 = _mm512_maskz_loadu_ps(mk[0], bp), b1 = _mm512_maskz_loadu_ps(mk[1], bp + 16);                   \
	__m512 b2 = _mm512_maskz_loadu_ps(mk[2], bp + 32), b3 = _mm512_maskz_loadu_ps(mk[3], bp + 48);              \
	const float *ap = a + p * acs;

// tile4 computes 4 rows × 64 columns of C (columns masked by mk): 16 accumulators; every step
// of k loads 4 vectors of B and broadcasts 4 elements of A for 16 fused multiply-adds.
static AVX512 void tile4(const __mmask16 *mk, long k, float alpha, const float *a, long ars, long acs,
                         const float *b, long ldb, float beta, float *c, long ldc) {
	ZERO(0) ZERO(1) ZERO(2) ZERO(3)
	for (long p = 0; p < k; p++) {
		LOAD_B
		STEP(0) STEP(1) STEP(2) STEP(3)
	}
	STORE(0) STORE(1) STORE(2) STORE(3)
}

// tile1 is tile4 for one row (the rows past a multiple of 4).
static AVX512 void tile1(const __mmask16 *mk, long k, float alpha, const float *a, long ars, long acs,
                         const float *b, long ldb, float beta, float *c, long ldc) {
	ZERO(0)
	for (long p = 0; p < k; p++) {
		LOAD_B
		STEP(0)
	}
	STORE(0)
}

static AVX512 void nn(long m, long n, long k, float alpha, const float *a, long ars, long acs, const float *b,
                      long ldb, float beta, float *c, long ldc) {
	for (long j0 = 0; j0 < n; j0 += 64) {
		__mmask16 mk[4];
		for (int v = 0; v < 4; v++) {
			long w = n - j0 - 16 * v;
			mk[v] = (__mmask16)(w >= 16 ? 0xFFFF : w <= 0 ? 0 : (1u << w) - 1);
		}
		long i0 = 0;
		for (; i0 + 4 <= m; i0 += 4) tile4(mk, k, alpha, a + i0 * ars, ars, acs, b + j0, ldb, beta, c + i0 * ldc + j0, ldc);
		for (; i0 < m; i0++) tile1(mk, k, alpha, a + i0 * ars, ars, acs, b + j0, ldb, beta, c + i0 * ldc + j0, ldc);
	}
}

int anelab_small_available(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"); }

int anelab_small_sgemm(int transA, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
                       long ldb, float beta, float *c, long ldc) {
	if (!anelab_small_available()) return 0;
	nn(m, n, k, alpha, a, transA ? 1 : lda, transA ? lda : 1, b, ldb, beta, c, ldc);
	return 1;
}
#endif
