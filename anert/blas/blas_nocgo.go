//go:build !cgo || !(linux || darwin)

package blas

import (
	"runtime"
	"sync/atomic"
)

// Backend names the BLAS this build links: here none, the pure-Go fallback.
const Backend = "go"

var goThreads atomic.Int64

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, Threads())
}

// SetThreads sets the number of goroutines one Sgemm call uses (n < 1 is taken as 1).
func SetThreads(n int) { goThreads.Store(int64(max(n, 1))) }

// Threads is the number of goroutines one Sgemm call uses (GOMAXPROCS until SetThreads).
func Threads() int {
	if t := goThreads.Load(); t > 0 {
		return int(t)
	}
	return runtime.GOMAXPROCS(0)
}
