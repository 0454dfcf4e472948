//go:build cgo

// The model's element-wise hot loops in C, for cgo builds (wrapped by kernels_cgo.go): each
// computes what the pure-Go …Go function beside its op documents (softmaxCausalGo, swigluFwdGo,
// softcapCEGo, rmsnormRowsGo, ropeRowsGo, …), which are the reference and the !cgo build. Compiled with
// -O3 and OpenMP SIMD pragmas (no -ffast-math: NaN still propagates, so divergence is still seen);
// on x86-64 Linux with GCC each function is also built for x86-64-v3 (AVX2+FMA) and x86-64-v4
// (AVX-512), the loader picking the best the CPU has.

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "anelab_model_kernels.h"

// No FP operation here may trap (neither Go nor this code enables FP exceptions), which lets GCC
// turn the branch-free selects of ex and th into vector blends: with its default -ftrapping-math it
// vectorised no loop that calls ex for AVX2 or SSE2, and not the loss's float64 sum even for
// AVX-512. On one AMD EPYC core (AVX-512), BenchmarkKernels: the loss 4.4 → 1.5 ns an element,
// SwiGLU 0.35 → 0.29 and its backward 0.46 → 0.37; built for AVX2 alone, the loss 11.0 → 2.0,
// SwiGLU 3.1 → 0.46, the causal softmax 2.7 → 0.58 (6 Dec 2026; anert/bench/RESULTS.md). It changes no result: unlike
// -ffast-math it keeps IEEE semantics, NaN included. (Go's cgo refuses the flag on its command
// line, hence the pragma; Clang does not trap by default.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KERNEL
#endif

#define PRAGMA(x) _Pragma(#x)
#define SIMD PRAGMA(omp simd)
#define SIMD_SUM(v) PRAGMA(omp simd reduction(+ : v))
#define SIMD_MAX(v) PRAGMA(omp simd reduction(max : v))

// ex is eˣ as model.expf computes it (Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2, a degree-7
// polynomial for eʳ, 2ⁿ from exponent bits), branch-free so that loops over it vectorise:
// x < −87.33654 gives 0, x > 88 gives +Inf, NaN gives NaN.
static inline float ex(float x) {
	float c = x < -87.33654f ? -87.33654f : x;
	c = c > 88.0f ? 88.0f : c;
	float t = c * 1.44269504088896341f + 0x1.8p23f;
	float n = t - 0x1.8p23f;
	float r = c - n * 0.693359375f - n * -2.12194440e-4f;
	float r2 = r * r;
	float p = (5.0000001201e-1f + 1.6666665459e-1f * r) + r2 * (4.1665795894e-2f + 8.3334519073e-3f * r) +
	          r2 * r2 * (1.3981999507e-3f + 1.9875691500e-4f * r);
	p = p * r2 + r + 1.0f;
	uint32_t u;
	memcpy(&u, &t, 4);
	u = (u - 0x4B400000u + 127u) << 23;
	float s;
	memcpy(&s, &u, 4);
	float e = p * s;
	e = x < -87.33654f ? 0.0f : e;
	return x > 88.0f ? INFINITY : e;
}

// th is tanh(x) as model.tanhf computes it: an odd polynomial for |x| < 0.625, otherwise
// 1 − 2/(e^{2|x|} + 1) with the sign of x (|x| > 9 rounds to ±1).
static inline float th(float x) {
	float a = fabsf(x);
	float s = x * x;
	float small = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +
	                1.33314422036e-1f) * s - 3.33332819422e-1f) * s * x + x;
	float big = 1.0f - 2.0f / (ex(2.0f * (a > 9.0f ? 9.0f : a)) + 1.0f);
	big = copysignf(a > 9.0f ? 1.0f : big, x);
	return a < 0.625f ? small : big;
}

static inline float sig(float x) { return 1.0f / (1.0f + ex(-x)); }

KERNEL void anelab_softmax_causal(float *s, int ld, int rows, int t0, int ncols, float *lse) {
	for (int i = 0; i < rows; i++) {
		float *row = s + (long)i * ld;
		int n = t0 + i + 1;
		float m = row[0];
		SIMD_MAX(m)
		for (int j = 0; j < n; j++) m = row[j] > m ? row[j] : m;
		float sum = 0;
		SIMD_SUM(sum)
		for (int j = 0; j < n; j++) {
			float e = ex(row[j] - m);
			row[j] = e;
			sum += e;
		}
		float inv = 1.0f / sum;
		SIMD
		for (int j = 0; j < n; j++) row[j] *= inv;
		if (ncols > n) memset(row + n, 0, (size_t)(ncols - n) * sizeof(float));
		lse[i] = m + (float)log((double)sum);
	}
}

KERNEL void anelab_softmax_causal_bwd(float *p, float *dp, int ld, int rows, int t0, int ncols, float scale,
                                      const float *lse) {
	for (int i = 0; i < rows; i++) {
		float *pr = p + (long)i * ld, *g = dp + (long)i * ld;
		int n = t0 + i + 1;
		float dot = 0;
		if (lse) {
			float l = lse[i];
			SIMD_SUM(dot)
			for (int j = 0; j < n; j++) {
				float e = ex(pr[j] - l);
				pr[j] = e;
				dot += e * g[j];
			}
		} else { // p holds P already (the forward's, tune.keepP)
			SIMD_SUM(dot)
			for (int j = 0; j < n; j++) dot += pr[j] * g[j];
		}
		SIMD
		for (int j = 0; j < n; j++) g[j] = scale * pr[j] * (g[j] - dot);
		if (ncols > n) {
			memset(pr + n, 0, (size_t)(ncols - n) * sizeof(float));
			memset(g + n, 0, (size_t)(ncols - n) * sizeof(float));
		}
	}
}

KERNEL void anelab_swiglu_fwd(float *restrict gate, const float *restrict h1, const float *restrict h3, long rows,
                              long cols, long ld) {
	for (long r = 0; r < rows; r++) {
		float *restrict g = gate + r * ld;
		const float *restrict a = h1 + r * ld, *restrict b = h3 + r * ld;
		SIMD
		for (long i = 0; i < cols; i++) g[i] = a[i] * sig(a[i]) * b[i];
	}
}

// dh1 may be h1 and dh3 h3 (the in-place backward, tune.inPlaceSwiGLU): each element of both is
// read before either is written, so those pointers are not restrict.
KERNEL void anelab_swiglu_bwd(float *dh1, float *dh3, const float *restrict dg, const float *h1, const float *h3,
                              long rows, long cols, long ld) {
	for (long r = 0; r < rows; r++) {
		long o = r * ld;
		SIMD
		for (long i = o; i < o + cols; i++) {
			float x = h1[i], y = h3[i], g = dg[i], s = sig(x);
			dh3[i] = g * x * s;
			dh1[i] = g * y * s * (1.0f + x * (1.0f - s));
		}
	}
}

KERNEL double anelab_softcap_ce(float *z, int rows, int ncols, const int32_t *tgt, float cap, float scale, int train) {
	double total = 0;
	float inv = cap > 0 ? 1.0f / cap : 0;
	for (int i = 0; i < rows; i++) {
		float *r = z + (long)i * ncols;
		int t = tgt[i];
		if (cap > 0) {
			SIMD
			for (int j = 0; j < ncols; j++) r[j] = cap * th(r[j] * inv);
		}
		float m = r[0];
		SIMD_MAX(m)
		for (int j = 0; j < ncols; j++) m = r[j] > m ? r[j] : m;
		double sum = 0; // float64: see softcapCEGo
		SIMD_SUM(sum)
		for (int j = 0; j < ncols; j++) sum += (double)ex(r[j] - m);
		float zt = r[t];
		total += (double)m + log(sum) - (double)zt;
		if (!train) continue;
		float k = (float)((double)scale / sum);
		if (cap > 0) {
			SIMD
			for (int j = 0; j < ncols; j++) {
				float u = r[j] * inv;
				r[j] = k * ex(r[j] - m) * (1.0f - u * u);
			}
			float u = zt * inv;
			r[t] = (k * ex(zt - m) - scale) * (1.0f - u * u);
		} else {
			SIMD
			for (int j = 0; j < ncols; j++) r[j] = k * ex(r[j] - m);
			r[t] -= scale;
		}
	}
	return total;
}

KERNEL void anelab_rmsnorm_fwd(float *restrict out, float *restrict rinv, const float *restrict x,
                               const float *restrict g, int rows, int d, float eps) {
	for (int t = 0; t < rows; t++) {
		const float *xr = x + (long)t * d;
		float *o = out + (long)t * d;
		float ss = 0;
		SIMD_SUM(ss)
		for (int i = 0; i < d; i++) ss += xr[i] * xr[i];
		float r = (float)(1.0 / sqrt((double)(ss / (float)d + eps)));
		rinv[t] = r;
		SIMD
		for (int i = 0; i < d; i++) o[i] = g[i] * xr[i] * r;
	}
}

KERNEL void anelab_rmsnorm_bwd(float *restrict dx, float *restrict pg, const float *restrict dout,
                               const float *restrict x, const float *restrict rinv, const float *restrict g,
                               int rows, int d) {
	for (int t = 0; t < rows; t++) {
		const float *xr = x + (long)t * d, *dy = dout + (long)t * d;
		float *dxr = dx + (long)t * d;
		float r = rinv[t], dot = 0;
		SIMD_SUM(dot)
		for (int i = 0; i < d; i++) {
			dot += g[i] * dy[i] * xr[i];
			pg[i] += dy[i] * xr[i] * r;
		}
		float c = r * r * dot / (float)d;
		SIMD
		for (int i = 0; i < d; i++) dxr[i] += r * (g[i] * dy[i] - xr[i] * c);
	}
}

KERNEL void anelab_axpby(float *restrict out, const float *restrict x, const float *restrict y, float a, long n) {
	SIMD
	for (long i = 0; i < n; i++) out[i] = x[i] + a * y[i];
}

KERNEL void anelab_scale(float *restrict out, const float *restrict x, float a, long n) {
	SIMD
	for (long i = 0; i < n; i++) out[i] = a * x[i];
}

KERNEL void anelab_rope(float *restrict x, int rows, int r0, int T, int w, int ld, int hd, const float *restrict cs,
                        const float *restrict sn, float sign) {
	int half = hd / 2;
	for (int r = 0; r < rows; r++) {
		int p = (r0 + r) % T;
		const float *c = cs + (long)p * half, *s = sn + (long)p * half;
		float *row = x + (long)r * ld;
		for (int h = 0; h < w; h += hd) {
			float *v = row + h;
			SIMD
			for (int i = 0; i < half; i++) {
				float a = v[2 * i], b = v[2 * i + 1], si = sign * s[i];
				v[2 * i] = a * c[i] - b * si;
				v[2 * i + 1] = a * si + b * c[i];
			}
		}
	}
}

// The fused causal attention (anelab_attn_tmpl.h), one instance per vector width, the widest the
// CPU runs picked at each call: 16-float vectors on AVX-512 (a panel of 64 queries, tiles of 6×4
// vectors: 24 of the 32 registers), 8-float vectors on AVX2 (panels of 16 queries, tiles of 6×2:
// 12 of 16), and 4-float vectors in generic code elsewhere (arm64's NEON: panels of 16 queries,
// tiles of 6×4, 24 of its 32 registers).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define ATTN_X86 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,bmi2")
#define VW 16
#define NQ 4
#define NH 4
#define SFX 512
#include "anelab_attn_tmpl.h"
#undef VW
#undef NQ
#undef NH
#undef SFX
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi2")
#define VW 8
#define NQ 2
#define NH 2
#define SFX 256
#include "anelab_attn_tmpl.h"
#undef VW
#undef NQ
#undef NH
#undef SFX
#pragma GCC pop_options
#endif
#define VW 4
#define NQ 4
#define NH 4
#define SFX gen
#include "anelab_attn_tmpl.h"
#undef VW
#undef NQ
#undef NH
#undef SFX

// anelab_attn_best is the widest instance this CPU runs: 512, 256 or 0 (generic).
int anelab_attn_best(void) {
#ifdef ATTN_X86
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
	    __builtin_cpu_supports("avx512bw"))
		return 512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 256;
#endif
	return 0;
}

static int attnChosen = -1; // anelab_attn_select's choice; −1: attnBest

static int attnWidth(void) { return attnChosen >= 0 ? attnChosen : anelab_attn_best(); }

int anelab_attn_panel(void) { return attnWidth() == 512 ? 64 : 16; }

// anelab_attn_select makes the kernels run instance width (512, 256 or 0, the generic one; −1:
// the best again) and returns its panel, or −1, changing nothing, when this CPU cannot run it.
// For the tests, which check every instance the CPU runs; call it only while no kernel runs.
int anelab_attn_select(int width) {
	int best = anelab_attn_best();
	if (width > best) return -1;
	if (width != -1 && width != 512 && width != 256 && width != 0) return -1;
	attnChosen = width;
	return anelab_attn_panel();
}

void anelab_attn_fwd(float *a, float *lse, const float *q, const float *k, const float *v, float *ws, int hd, int ld,
                     float scale, int r0, int r1) {
	switch (attnWidth()) {
#ifdef ATTN_X86
	case 512:
		attn_fwd512(a, lse, q, k, v, ws, hd, ld, scale, r0, r1);
		return;
	case 256:
		attn_fwd256(a, lse, q, k, v, ws, hd, ld, scale, r0, r1);
		return;
#endif
	default:
		attn_fwdgen(a, lse, q, k, v, ws, hd, ld, scale, r0, r1);
	}
}

void anelab_attn_bwd(float *dq, float *dk, float *dv, const float *da, const float *q, const float *k, const float *v,
                     const float *lse, float *ws1, float *ws2, int T, int hd, int ld, float scale) {
	switch (attnWidth()) {
#ifdef ATTN_X86
	case 512:
		attn_bwd512(dq, dk, dv, da, q, k, v, lse, ws1, ws2, T, hd, ld, scale);
		return;
	case 256:
		attn_bwd256(dq, dk, dv, da, q, k, v, lse, ws1, ws2, T, hd, ld, scale);
		return;
#endif
	default:
		attn_bwdgen(dq, dk, dv, da, q, k, v, lse, ws1, ws2, T, hd, ld, scale);
	}
}

// Wᵀ[c, r] = W[r, c] for the rows [r0, r1) of W [rows, cols] (transposeRowsGo): in tiles of 16
// rows × 16 columns, so that each column of a tile is one run of Wᵀ (a cache line when aligned)
// and its 16 rows of W stay in L1 while the tile's columns are written.
KERNEL void anelab_transpose_rows(float *restrict t, const float *restrict w, long rows, long cols, long r0, long r1) {
	for (long rb = r0; rb < r1; rb += 16) {
		long re = rb + 16 < r1 ? rb + 16 : r1;
		for (long cb = 0; cb < cols; cb += 16) {
			long ce = cb + 16 < cols ? cb + 16 : cols;
			for (long c = cb; c < ce; c++) {
				float *restrict d = t + c * rows;
				SIMD
				for (long r = rb; r < re; r++) d[r] = w[r * cols + c];
			}
		}
	}
}
