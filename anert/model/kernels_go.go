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

// prefetchBlock is a hint with nothing to do in pure Go; it checks the bounds as the cgo one does.
func prefetchBlock(p []float32, rows, cols, ld int, _ bool) {
	if rows > 0 && cols > 0 {
		_ = p[(rows-1)*ld+cols-1]
	}
}
