//go:build cgo && linux && onednn

package blas

import (
	"math/rand/v2"
	"testing"
)

// TestPrimitivesBuilt: with SetPrimitives a product goes to a matmul primitive (one is built for
// its shape) and not to dnnl_sgemm, so that TestSgemm's primitives cases test that path.
func TestPrimitivesBuilt(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	a, b, c := randSlice(r, 37*61), randSlice(r, 23*61), make([]float32, 37*29)
	n0 := primitivesBuilt()
	primGemm(false, true, 37, 23, 59, 0.75, a, 61, b, 61, 0, c, 29)
	if primitivesBuilt() != n0+1 {
		t.Fatalf("%d primitives built for a new shape, want 1", primitivesBuilt()-n0)
	}
	primGemm(false, true, 37, 23, 59, 0.75, a, 61, b, 61, 0, c, 29)
	if primitivesBuilt() != n0+1 {
		t.Fatal("a second primitive built for the same shape")
	}
}
