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
		l := (*C.float)(nil) // nil: p holds P (softmaxCausalBackwardGo)
		if lse != nil {
			_ = lse[rows-1]
			l = fp(lse)
		}
		C.anelab_softmax_causal_bwd(fp(p), fp(dp), C.int(ld), C.int(rows), C.int(t0), C.int(ncols), C.float(scale), l)
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

// attnPanel is the fused attention's panel of queries in this build on this CPU: 64 with AVX-512,
// 16 with AVX2; 0, no fused attention, elsewhere (the generic instance, in plain C, ran at a third
// of the AVX2 one's rate on x86: BenchmarkAttentionHead) and in !cgo builds.
var attnPanel = defaultAttnPanel()

func defaultAttnPanel() int {
	if C.anelab_attn_best() == 0 {
		return 0
	}
	return int(C.anelab_attn_panel())
}

// selectAttnKernels makes the fused attention run its instance for vectors of width bits (512,
// 256, or 0 for the generic one; −1: the default) and reports whether this CPU runs it. For tests
// and benchmarks, between steps: it changes attnPanel, and so the scratch a step needs.
func selectAttnKernels(width int) bool {
	p := int(C.anelab_attn_select(C.int(width)))
	if p < 0 {
		return false
	}
	attnPanel = p
	if width == -1 {
		attnPanel = defaultAttnPanel()
	}
	return true
}

// attnRowsForwardFused is attnRowsForward in one C kernel (anelab_attn_tmpl.h): the same
// arguments, but for scratch ws of attnFusedScratch(hd, r1) floats. hd must be a multiple of 16.
func attnRowsForwardFused(a, lse, q, k, v, ws []float32, hd, ld int, scale float32, r0, r1 int) {
	if r1 <= r0 {
		return
	}
	last := (r1-1)*ld + hd - 1
	_, _, _, _, _ = a[last], q[last], k[last], v[last], lse[r1-1]
	_ = ws[attnFusedScratch(hd, r1)-1]
	if hd%16 != 0 || hd > ld || r0 < 0 {
		panic("model: attnRowsForwardFused needs a head dim that is a multiple of 16 within the row stride")
	}
	C.anelab_attn_fwd(fp(a), fp(lse), fp(q), fp(k), fp(v), fp(ws), C.int(hd), C.int(ld), C.float(scale), C.int(r0), C.int(r1))
}

// attnHeadBackwardFused is attnHeadBackward in one C kernel: the same arguments, but for two
// scratch buffers ws1, ws2 of attnFusedScratch(hd, T) floats each (no block: the kernel's panel).
func attnHeadBackwardFused(dq, dk, dv, da, q, k, v, lse, ws1, ws2 []float32, T, hd, ld int, scale float32) {
	if T <= 0 {
		return
	}
	last := (T-1)*ld + hd - 1
	_, _, _, _, _, _, _, _ = dq[last], dk[last], dv[last], da[last], q[last], k[last], v[last], lse[T-1]
	n := attnFusedScratch(hd, T)
	_, _ = ws1[n-1], ws2[n-1]
	if hd%16 != 0 || hd > ld {
		panic("model: attnHeadBackwardFused needs a head dim that is a multiple of 16 within the row stride")
	}
	C.anelab_attn_bwd(fp(dq), fp(dk), fp(dv), fp(da), fp(q), fp(k), fp(v), fp(lse), fp(ws1), fp(ws2),
		C.int(T), C.int(hd), C.int(ld), C.float(scale))
}

func transposeRows(t, w []float32, rows, cols, r0, r1 int) {
	if r1 > r0 {
		_, _ = t[len(w)-1], w[rows*cols-1]
		C.anelab_transpose_rows(fp(t), fp(w), C.long(rows), C.long(cols), C.long(r0), C.long(r1))
	}
}
