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
