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
	sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, int(goThreads.Load()))
}

// setLibThreads sets the number of goroutines one Sgemm call uses.
func setLibThreads(n int) { goThreads.Store(int64(n)) }

// libThreads is the goroutines one Sgemm call uses (GOMAXPROCS at first).
func libThreads() int { return int(goThreads.Load()) }

func init() { goThreads.Store(int64(runtime.GOMAXPROCS(0))) }
