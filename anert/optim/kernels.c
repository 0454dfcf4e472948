//go:build cgo

// The optimizer's per-element loops in C for cgo builds: the same arithmetic as the Go versions
// (lionUpdateGo, adamUpdateGo, scaleSumSqGo, scaleSliceGo), vectorised by the C compiler (-O3 and
// OpenMP SIMD pragmas, no -ffast-math), and on x86-64 Linux with GCC built for x86-64-v3 and v4 too.

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#if defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KERNEL
#endif

#define PRAGMA(x) _Pragma(#x)
#define SIMD PRAGMA(omp simd)

KERNEL void anelab_lion(float *restrict w, const float *restrict g, float *restrict m, long n, float lr, float f,
                        float b1, float a1, float b2, float a2) {
	uint32_t lrbits;
	memcpy(&lrbits, &lr, 4);
	lrbits &= 0x7fffffffu;
	SIMD
	for (long i = 0; i < n; i++) {
		float gi = g[i], mi = m[i];
		float c = b1 * mi + a1 * gi;
		uint32_t u;
		memcpy(&u, &c, 4);
		uint32_t sb = (u & 0x80000000u) | lrbits;
		float s;
		memcpy(&s, &sb, 4);
		s = (u & 0x7fffffffu) == 0 ? 0.0f : s;
		w[i] = w[i] * f - s;
		m[i] = b2 * mi + a2 * gi;
	}
}

KERNEL void anelab_adamw(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, long n,
                         float k, float r, float f, float b1, float a1, float b2, float a2, float eps) {
	SIMD
	for (long i = 0; i < n; i++) {
		float gi = g[i];
		float mi = b1 * m[i] + a1 * gi;
		float vi = b2 * v[i] + a2 * gi * gi;
		m[i] = mi;
		v[i] = vi;
		w[i] = w[i] * f - k * mi / (sqrtf(r * vi) + eps);
	}
}

KERNEL double anelab_scale_sumsq(float *restrict g, long n, float f) {
	double s = 0;
	if (f != 1.0f) {
		SIMD
		for (long i = 0; i < n; i++) g[i] *= f;
	}
	PRAGMA(omp simd reduction(+ : s))
	for (long i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
	return s;
}

KERNEL void anelab_scale_slice(float *restrict g, long n, float f) {
	SIMD
	for (long i = 0; i < n; i++) g[i] *= f;
}
