//go:build !(cgo && linux && onednn)

package blas

// This build does not pack (CanPack is false; the exported functions panic before these run).

func packedSize(transB bool, m, n, k, ldb int) int { panic("unreachable") }

func packB(transB bool, m, n, k int, b []float32, ldb int, dst []float32) { panic("unreachable") }

func sgemmPacked(transA bool, m, n, k int, a []float32, lda int, p []float32, beta float32, c []float32, ldc int) {
	panic("unreachable")
}
