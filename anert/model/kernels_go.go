//go:build !cgo

package model

// Without cgo the element-wise kernels are the pure-Go reference versions beside each op.

// Kernels names the implementation of the element-wise kernels in this build: "c" or "go".
const Kernels = "go"

var (
	softmaxCausal         = softmaxCausalGo
	softmaxCausalBackward = softmaxCausalBackwardGo
	swigluFwd             = swigluFwdGo
	swigluBwd             = swigluBwdGo
	softcapCE             = softcapCEGo
	rmsnormRows           = rmsnormRowsGo
	rmsnormBackwardRows   = rmsnormBackwardRowsGo
	axpy                  = axpyGo
	scaleTo               = scaleToGo
	ropeRows              = ropeRowsGo
)

// attnPanel 0: no fused attention without cgo (attnFused is then always false).
const attnPanel = 0

func selectAttnKernels(width int) bool { return false }

func attnRowsForwardFused(a, lse, q, k, v, ws []float32, hd, ld int, scale float32, r0, r1 int) {
	panic("model: no fused attention in the pure-Go build")
}

func attnHeadBackwardFused(dq, dk, dv, da, q, k, v, lse, ws1, ws2 []float32, T, hd, ld int, scale float32) {
	panic("model: no fused attention in the pure-Go build")
}

func transposeRows(t, w []float32, rows, cols, r0, r1 int) { transposeRowsGo(t, w, rows, cols, r0, r1) }
