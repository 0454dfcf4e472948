//go:build !(cgo && amd64)

package blas

// smallKernel is SgemmSmall's kernel: none in this build (Sgemm instead).
const smallKernel = ""

func sgemmSmall(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	return false
}
