//go:build cgo

package optim

// The per-element loops in C (kernels.c) on cgo builds; the Go versions (…Go) are the reference
// and the !cgo build's (kernels_go.go).

// #cgo CFLAGS: -O3
// #cgo linux CFLAGS: -fopenmp-simd
// #cgo LDFLAGS: -lm
// #include "kernels.h"
import "C"

import "unsafe"

func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

func lionUpdate(w, g, m []float32, lr, f, b1, a1, b2, a2 float32) {
	if n := len(w); n > 0 {
		_, _ = g[n-1], m[n-1]
		C.anelab_lion(fp(w), fp(g), fp(m), C.long(n), C.float(lr), C.float(f), C.float(b1), C.float(a1), C.float(b2), C.float(a2))
	}
}

func adamUpdate(w, g, m, v []float32, k, r, f, b1, a1, b2, a2, eps float32) {
	if n := len(w); n > 0 {
		_, _, _ = g[n-1], m[n-1], v[n-1]
		C.anelab_adamw(fp(w), fp(g), fp(m), fp(v), C.long(n), C.float(k), C.float(r), C.float(f), C.float(b1), C.float(a1),
			C.float(b2), C.float(a2), C.float(eps))
	}
}

func scaleSumSq(g []float32, f float32) float64 {
	if len(g) == 0 {
		return 0
	}
	return float64(C.anelab_scale_sumsq(fp(g), C.long(len(g)), C.float(f)))
}

func scaleSlice(g []float32, f float32) {
	if len(g) > 0 {
		C.anelab_scale_slice(fp(g), C.long(len(g)), C.float(f))
	}
}
