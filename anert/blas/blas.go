// Package blas is the single-precision matrix product the trainer runs on: on Linux, oneDNN's
// dnnl_sgemm (build tag onednn, make's default on x86-64: its kernels follow the CPU's features
// whatever OPENBLAS_CORETYPE pins) or OpenBLAS's cblas_sgemm, on macOS Accelerate's, all through
// cgo; and a portable pure-Go fallback for builds without cgo (cross-compiles; never the hot path
// on a real machine).
//
// All matrices are row-major. Sgemm computes
//
//	C = alpha·op(A)·op(B) + beta·C,   op(X) = X or Xᵀ,
//
// with op(A) m×k, op(B) k×n and C m×n; lda, ldb, ldc are the row strides of A, B, C as stored.
package blas

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/anelab/anelab/internal/par"
)

// Threads: SetThreads records how many threads the caller gives to BLAS work, and one Sgemm call
// uses that many — except in serial mode (SetSerial), where each call is single-threaded, for a
// caller that runs several calls at once on its own goroutines (the model's training step). The
// library's setting is changed only when the count or the mode changes: with OpenBLAS, every
// change wakes its idle threads, which then spin for a while and steal cores from the caller.
var threadState threadConfig

type threadConfig struct {
	sync.Mutex
	n      int  // SetThreads's count; 0 until set (then the library's default)
	serial bool // SetSerial(true) in force
	lib    int  // what the library was last set to; 0: never set by us
}

// SetThreads sets the number of threads Sgemm uses (n < 1 is taken as 1) and ends serial mode.
func SetThreads(n int) {
	s := &threadState
	s.Lock()
	defer s.Unlock()
	s.n, s.serial = max(n, 1), false
	s.apply()
}

// Threads is the thread count given with SetThreads (at first the library's default: the CPU
// count, or OPENBLAS_NUM_THREADS with OpenBLAS). Serial mode does not change it.
func Threads() int {
	s := &threadState
	s.Lock()
	defer s.Unlock()
	if s.n == 0 {
		s.n = max(1, libThreads())
	}
	return s.n
}

// SetSerial(true) makes every Sgemm call single-threaded until SetSerial(false) or SetThreads:
// for a caller that splits its work over Threads() goroutines of its own. It stays in force after
// the caller is done (switching back and forth would wake the library's idle threads each time);
// PeakGFLOPS ends it, since it measures the threaded rate.
func SetSerial(on bool) {
	s := &threadState
	s.Lock()
	defer s.Unlock()
	if s.n == 0 {
		s.n = max(1, libThreads())
	}
	s.serial = on
	s.apply()
}

// apply sets the library's thread count to what the state asks for, if it differs.
func (s *threadConfig) apply() {
	want := s.n
	if s.serial {
		want = 1
	}
	if want != s.lib {
		setLibThreads(want)
		s.lib = want
	}
}

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
	if p := par.Profiling(); p != nil { // a loop profile counts every call (see par.Profile)
		t := time.Now()
		sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		p.AddBLAS(2*int64(m)*int64(n)*int64(k), time.Since(t))
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

// PeakGFLOPS measures the sgemm throughput, in GFLOP/s, of n×n×n products at Threads() threads
// (it ends serial mode): it repeats the product for about d (at least 3 times, after one warm-up) and returns the
// best single product's rate, so that a moment of contention from other processes lowers the
// figure less than an average would. It allocates its three matrices on each call: call it once
// per run, not per step.
func PeakGFLOPS(n int, d time.Duration) float64 {
	if n <= 0 {
		return 0
	}
	SetSerial(false)
	a := make([]float32, n*n)
	b := make([]float32, n*n)
	c := make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%7) * 0.25
		b[i] = float32(i%5) * 0.5
	}
	Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n) // warm-up: threads, caches, page faults
	best := time.Duration(math.MaxInt64)
	start := time.Now()
	for iters := 0; iters < 3 || time.Since(start) < d; iters++ {
		t := time.Now()
		Sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		best = min(best, time.Since(t))
	}
	return 2 * float64(n) * float64(n) * float64(n) / max(best.Seconds(), 1e-9) / 1e9
}
