//go:build cgo

package optim

// The per-element loops in C (kernels.c) on cgo builds; the Go versions (…Go) are the reference
// and the !cgo build's (kernels_go.go).

// The header's name is unique to the project because cgo compiles the preamble from a file it
// writes in $TMPDIR and adds -I . after it: a plain "kernels.h" left in /tmp would shadow
// this one (anert/model/kernels_cgo.go says how a CI run failed so).

// #cgo CFLAGS: -O3
// #cgo linux CFLAGS: -fopenmp-simd
// #cgo LDFLAGS: -lm
// #include "anelab_optim_kernels.h"
import "C"

import "unsafe"

func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func lionUpdate(w, g, m []float32, u, c, lr, f, b1, a1, b2, a2 float32, zero bool) {
	if n := len(w); n > 0 {
		_, _ = g[n-1], m[n-1]
		C.anelab_lion(fp(w), fp(g), fp(m), C.long(n), C.float(u), C.float(c), C.float(lr), C.float(f),
			C.float(b1), C.float(a1), C.float(b2), C.float(a2), cbool(zero))
	}
}

func adamUpdate(w, g, m, v []float32, u, c, k, r, f, b1, a1, b2, a2, eps float32, zero bool) {
	if n := len(w); n > 0 {
		_, _, _ = g[n-1], m[n-1], v[n-1]
		C.anelab_adamw(fp(w), fp(g), fp(m), fp(v), C.long(n), C.float(u), C.float(c), C.float(k), C.float(r), C.float(f),
			C.float(b1), C.float(a1), C.float(b2), C.float(a2), C.float(eps), cbool(zero))
	}
}

func sumSqScaled(g []float32, u float32) float64 {
	if len(g) == 0 {
		return 0
	}
	return float64(C.anelab_sumsq_scaled(fp(g), C.long(len(g)), C.float(u)))
}

func scaleSlice(g []float32, f float32) {
	if len(g) > 0 {
		C.anelab_scale_slice(fp(g), C.long(len(g)), C.float(f))
	}
}
