// Package blas is the single-precision matrix product the trainer runs on: cblas_sgemm from
// OpenBLAS (Linux, through cgo) or Accelerate (macOS, through cgo), and a portable pure-Go
// fallback for builds without cgo (cross-compiles; never the hot path on a real machine).
//
// All matrices are row-major. Sgemm computes
//
//	C = alpha·op(A)·op(B) + beta·C,   op(X) = X or Xᵀ,
//
// with op(A) m×k, op(B) k×n and C m×n; lda, ldb, ldc are the row strides of A, B, C as stored.
package blas

import (
	"fmt"
	"time"
)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices (see the package doc).
// A is stored m×k (k×m when transA), B is stored k×n (n×k when transB). With beta = 0, C is
// overwritten (its old contents, even NaN, are ignored). Bad sizes are a programming error and panic.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	check(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// check panics with a clear message if a matrix argument is too short for its shape and stride.
func check(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	need := func(name string, rows, cols, ld int, s []float32) {
		if rows < 0 || cols < 0 {
			panic(fmt.Sprintf("blas.Sgemm: %s has negative size %d×%d", name, rows, cols))
		}
		if rows == 0 || cols == 0 {
			return
		}
		if ld < max(cols, 1) {
			panic(fmt.Sprintf("blas.Sgemm: %s stride %d < %d columns", name, ld, cols))
		}
		if len(s) < (rows-1)*ld+cols {
			panic(fmt.Sprintf("blas.Sgemm: %s has %d elements, %d×%d with stride %d needs %d",
				name, len(s), rows, cols, ld, (rows-1)*ld+cols))
		}
	}
	if transA {
		need("A", k, m, lda, a)
	} else {
		need("A", m, k, lda, a)
	}
	if transB {
		need("B", n, k, ldb, b)
	} else {
		need("B", k, n, ldb, b)
	}
	need("C", m, n, ldc, c)
}

// scaleC sets C = beta·C (C = 0 when beta is 0, whatever C held).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// PeakGFLOPS measures the sgemm throughput, in GFLOP/s, of n×n×n products at the current thread
// count, repeating them for about d (at least twice, after one warm-up product). It allocates its
// three matrices on each call; call it once per run, not per step.
func PeakGFLOPS(n int, d time.Duration) float64 {
	if n <= 0 {
		return 0
	}
	a := make([]float32, n*n)
	b := make([]float32, n*n)
	c := make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%7) * 0.25
		b[i] = float32(i%5) * 0.5
	}
	Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n) // warm-up: threads, caches, page faults
	iters := 0
	start := time.Now()
	for iters < 2 || time.Since(start) < d {
		Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		iters++
	}
	sec := time.Since(start).Seconds()
	return 2 * float64(n) * float64(n) * float64(n) * float64(iters) / sec / 1e9
}
