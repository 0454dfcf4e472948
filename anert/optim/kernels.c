//go:build cgo

// The optimizer's per-element loops in C for cgo builds: the same arithmetic as the Go versions
// (lionUpdateGo, adamUpdateGo, sumSqScaledGo, scaleSliceGo), vectorised by the C compiler (-O3 and
// OpenMP SIMD pragmas, no -ffast-math), and on x86-64 Linux with GCC built for x86-64-v3 and v4 too.
//
// The updates read each gradient as g' = (g·u)·c — u the unscale factor, c the clip factor, two
// float32 products in this order, bit for bit what unscaling G in place and then clipping it in
// place gave — and with zero set write g = 0 right after reading it, so that one pass over
// (w, g, state) replaces the unscale, clip, update and zero passes. Each body is an always-inline
// function of a constant zero, instantiated twice, so that neither loop tests the flag.

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "anelab_optim_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KERNEL
#endif

#define INLINE static inline __attribute__((always_inline))
#define PRAGMA(x) _Pragma(#x)
#define SIMD PRAGMA(omp simd)

INLINE void lion_body(float *restrict w, float *restrict g, float *restrict m, long n, float u, float cl, float lr,
                      float f, float b1, float a1, float b2, float a2, const int zero) {
	uint32_t lrbits;
	memcpy(&lrbits, &lr, 4);
	lrbits &= 0x7fffffffu;
	SIMD
	for (long i = 0; i < n; i++) {
		float gi = (g[i] * u) * cl, mi = m[i];
		if (zero) g[i] = 0.0f;
		float c = b1 * mi + a1 * gi;
		uint32_t bits;
		memcpy(&bits, &c, 4);
		uint32_t sb = (bits & 0x80000000u) | lrbits;
		float s;
		memcpy(&s, &sb, 4);
		s = (bits & 0x7fffffffu) == 0 ? 0.0f : s;
		w[i] = w[i] * f - s;
		m[i] = b2 * mi + a2 * gi;
	}
}

KERNEL void anelab_lion(float *restrict w, float *restrict g, float *restrict m, long n, float u, float cl, float lr,
                        float f, float b1, float a1, float b2, float a2, int zero) {
	if (zero)
		lion_body(w, g, m, n, u, cl, lr, f, b1, a1, b2, a2, 1);
	else
		lion_body(w, g, m, n, u, cl, lr, f, b1, a1, b2, a2, 0);
}

// sqrt_block takes the square roots of t[0..n) in place, four at a time with SSE on x86-64 (NEON on
// arm64): IEEE square roots, correctly rounded as sqrtf's. GCC vectorises no loop that calls sqrtf,
// as it may set errno (cgo refuses -fno-math-errno, and the optimize attribute does not lift it), so
// adamw_body gathers its square roots into blocks for this: on one core of this project's machine
// (BenchmarkAdamWStep, 6.2M parameters) the update took 22–23 ms with scalar sqrtf in the loop.
INLINE void sqrt_block(float *t, long n) {
	long j = 0;
#if defined(__x86_64__)
	for (; j + 4 <= n; j += 4) _mm_storeu_ps(t + j, _mm_sqrt_ps(_mm_loadu_ps(t + j)));
#elif defined(__aarch64__)
	for (; j + 4 <= n; j += 4) vst1q_f32(t + j, vsqrtq_f32(vld1q_f32(t + j)));
#endif
	for (; j < n; j++) t[j] = sqrtf(t[j]);
}

// ADAMW_BLOCK: the elements adamw_body updates per block of square roots (a block of t on the stack).
#define ADAMW_BLOCK 256

INLINE void adamw_body(float *restrict w, float *restrict g, float *restrict m, float *restrict v, long n, float u,
                       float cl, float k, float r, float f, float b1, float a1, float b2, float a2, float eps,
                       const int zero) {
	float t[ADAMW_BLOCK];
	for (long i0 = 0; i0 < n; i0 += ADAMW_BLOCK) {
		long c = n - i0 < ADAMW_BLOCK ? n - i0 : ADAMW_BLOCK;
		float *restrict wb = w + i0, *restrict gb = g + i0, *restrict mb = m + i0, *restrict vb = v + i0;
		SIMD
		for (long j = 0; j < c; j++) {
			float gi = (gb[j] * u) * cl;
			if (zero) gb[j] = 0.0f;
			float mi = b1 * mb[j] + a1 * gi;
			float vi = b2 * vb[j] + a2 * gi * gi;
			mb[j] = mi;
			vb[j] = vi;
			t[j] = r * vi;
		}
		sqrt_block(t, c);
		SIMD
		for (long j = 0; j < c; j++) wb[j] = wb[j] * f - k * mb[j] / (t[j] + eps);
	}
}

KERNEL void anelab_adamw(float *restrict w, float *restrict g, float *restrict m, float *restrict v, long n, float u,
                         float cl, float k, float r, float f, float b1, float a1, float b2, float a2, float eps,
                         int zero) {
	if (zero)
		adamw_body(w, g, m, v, n, u, cl, k, r, f, b1, a1, b2, a2, eps, 1);
	else
		adamw_body(w, g, m, v, n, u, cl, k, r, f, b1, a1, b2, a2, eps, 0);
}

KERNEL double anelab_sumsq_scaled(const float *restrict g, long n, float u) {
	double s = 0;
	PRAGMA(omp simd reduction(+ : s))
	for (long i = 0; i < n; i++) {
		float x = g[i] * u;
		s += (double)x * (double)x;
	}
	return s;
}

KERNEL void anelab_scale_slice(float *restrict g, long n, float f) {
	SIMD
	for (long i = 0; i < n; i++) g[i] *= f;
}
