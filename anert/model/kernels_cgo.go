//go:build cgo

package model

// The element-wise hot loops, in C (kernels.c) on cgo builds: the same formulas as the pure-Go
// versions beside each op (…Go functions, the reference the tests compare with, and the !cgo
// build's kernels in kernels_go.go), vectorised by the C compiler. Each call does a whole block of
// rows or a long range, so the cgo call costs nothing measurable.

// The header's name is unique to the project because cgo compiles the preamble from a file it
// writes in $TMPDIR and adds -I . after it: a plain "kernels.h" left in /tmp shadowed this one
// (a CI run failed so: "could not determine what C.anelab_… refers to").

// #cgo CFLAGS: -O3
// #cgo linux CFLAGS: -fopenmp-simd
// #cgo LDFLAGS: -lm
// #include "anelab_model_kernels.h"
import "C"

import "unsafe"

// Kernels names the implementation of the element-wise kernels in this build: "c" or "go".
const Kernels = "c"

func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

func softmaxCausal(s []float32, ld, rows, t0, ncols int, lse []float32) {
	if rows > 0 {
		_ = s[(rows-1)*ld+ncols-1]
		_ = lse[rows-1]
		C.anelab_softmax_causal(fp(s), C.int(ld), C.int(rows), C.int(t0), C.int(ncols), fp(lse))
	}
}

func softmaxCausalBackward(p, dp []float32, ld, rows, t0, ncols int, scale float32, lse []float32) {
	if rows > 0 {
		_, _ = p[(rows-1)*ld+ncols-1], dp[(rows-1)*ld+ncols-1]
		_ = lse[rows-1]
		C.anelab_softmax_causal_bwd(fp(p), fp(dp), C.int(ld), C.int(rows), C.int(t0), C.int(ncols), C.float(scale), fp(lse))
	}
}

func swigluFwd(gate, h1, h3 []float32, rows, cols, ld int) {
	if rows > 0 && cols > 0 {
		n := (rows-1)*ld + cols
		_, _, _ = gate[n-1], h1[n-1], h3[n-1]
		C.anelab_swiglu_fwd(fp(gate), fp(h1), fp(h3), C.long(rows), C.long(cols), C.long(ld))
	}
}

func swigluBwd(dh1, dh3, dg, h1, h3 []float32, rows, cols, ld int) {
	if rows > 0 && cols > 0 {
		n := (rows-1)*ld + cols
		_, _, _, _, _ = dh1[n-1], dh3[n-1], dg[n-1], h1[n-1], h3[n-1]
		C.anelab_swiglu_bwd(fp(dh1), fp(dh3), fp(dg), fp(h1), fp(h3), C.long(rows), C.long(cols), C.long(ld))
	}
}

func softcapCE(z []float32, rows, ncols int, tgt []int32, capc, scale float32, train bool) float64 {
	if rows <= 0 {
		return 0
	}
	_ = z[rows*ncols-1]
	for _, t := range tgt[:rows] {
		if t < 0 || int(t) >= ncols {
			panic("model: softcapCE target out of range")
		}
	}
	tr := C.int(0)
	if train {
		tr = 1
	}
	return float64(C.anelab_softcap_ce(fp(z), C.int(rows), C.int(ncols), (*C.int32_t)(unsafe.Pointer(&tgt[0])),
		C.float(capc), C.float(scale), tr))
}

func rmsnormRows(out, rinv, x, g []float32, rows, d int, eps float32) {
	if rows > 0 {
		_, _, _, _ = out[rows*d-1], x[rows*d-1], rinv[rows-1], g[d-1]
		C.anelab_rmsnorm_fwd(fp(out), fp(rinv), fp(x), fp(g), C.int(rows), C.int(d), C.float(eps))
	}
}

func rmsnormBackwardRows(dx, pg, dout, x, rinv, g []float32, rows, d int) {
	if rows > 0 {
		_, _, _, _, _, _ = dx[rows*d-1], dout[rows*d-1], x[rows*d-1], rinv[rows-1], g[d-1], pg[d-1]
		C.anelab_rmsnorm_bwd(fp(dx), fp(pg), fp(dout), fp(x), fp(rinv), fp(g), C.int(rows), C.int(d))
	}
}

func axpy(out, x, y []float32, a float32) {
	if n := len(out); n > 0 {
		_, _ = x[n-1], y[n-1]
		C.anelab_axpby(fp(out), fp(x), fp(y), C.float(a), C.long(n))
	}
}

func scaleTo(out, x []float32, a float32) {
	if n := len(out); n > 0 {
		_ = x[n-1]
		C.anelab_scale(fp(out), fp(x), C.float(a), C.long(n))
	}
}

func ropeRows(x []float32, rows, r0, T, w, ld, hd int, cos, sin []float32, sign float32) {
	if rows > 0 && w > 0 {
		_ = x[(rows-1)*ld+w-1]
		_, _ = cos[T*hd/2-1], sin[T*hd/2-1]
		if w%hd != 0 || w > ld {
			panic("model: ropeRows needs whole heads within the row stride")
		}
		C.anelab_rope(fp(x), C.int(rows), C.int(r0), C.int(T), C.int(w), C.int(ld), C.int(hd), fp(cos), fp(sin), C.float(sign))
	}
}
