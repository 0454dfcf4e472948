//go:build !cgo

package optim

// Without cgo the per-element loops are the Go reference versions.
var (
	lionUpdate  = lionUpdateGo
	adamUpdate  = adamUpdateGo
	sumSqScaled = sumSqScaledGo
	scaleSlice  = scaleSliceGo
)
