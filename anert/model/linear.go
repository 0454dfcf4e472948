package model

import "github.com/anelab/anelab/anert/blas"

// gemm is blas.Sgemm with the rows of C split over w goroutines (each calling single-threaded
// BLAS; see beginStep). Every product here has hundreds of rows per goroutine, so each part is
// still a large GEMM.
func gemm(w int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	parallelFor(w, m, 4, func(_, lo, hi int) {
		aoff := lo * lda
		if transA {
			aoff = lo
		}
		blas.Sgemm(transA, transB, hi-lo, n, k, alpha, a[aoff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
	})
}

// linearForward is y = x·Wᵀ for x [n, in], W [out, in] (llama2.c layout), y [n, out] (overwritten).
func linearForward(y, x, wt []float32, n, in, out, w int) {
	gemm(w, false, true, n, out, in, 1, x, in, wt, in, 0, y, out)
}

// linearBackwardInput is dx = beta·dx + dy·W for dy [n, out], W [out, in], dx [n, in]
// (beta 0 overwrites, beta 1 accumulates: dxn = dq·Wq + dk·Wk + dv·Wv is three calls).
func linearBackwardInput(dx, dy, wt []float32, n, in, out int, beta float32, w int) {
	gemm(w, false, false, n, in, out, 1, dy, out, wt, in, beta, dx, in)
}

// linearBackwardWeight accumulates the weight gradient dW += dyᵀ·x for dy [n, out], x [n, in],
// dW [out, in]: one GEMM over all n = B·T tokens.
func linearBackwardWeight(dw, dy, x []float32, n, in, out, w int) {
	gemm(w, true, false, out, in, n, 1, dy, out, x, in, 1, dw, in)
}
