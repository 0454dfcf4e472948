package model

import (
	"sync"

	"github.com/anelab/anelab/anert/blas"
)

// beginStep returns how many goroutines a step uses — blas.Threads(), the count the trainer gave
// to BLAS — and switches BLAS to one thread until end is called. The model splits each GEMM over
// its own goroutines instead (see gemm): then the element-wise loops and per-head attention that
// run between GEMMs don't compete with an idle BLAS thread pool that spins (OpenBLAS's workers
// busy-yield for a while after each call), and a core taken by another process slows one part
// instead of stalling BLAS's barriers. On a shared 2-core machine this measured ~10–40% faster
// than letting OpenBLAS thread each GEMM.
func beginStep() (w int, end func()) {
	w = max(1, blas.Threads())
	if w == 1 {
		return w, func() {}
	}
	blas.SetThreads(1)
	return w, func() { blas.SetThreads(w) }
}

// parallelFor splits [0, n) into at most w contiguous chunks of at least minChunk items and runs
// fn(worker, lo, hi) on each, worker in [0, w); the last chunk runs in the calling goroutine.
func parallelFor(w, n, minChunk int, fn func(worker, lo, hi int)) {
	w = max(1, min(w, n/max(minChunk, 1)))
	if w == 1 {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	for i := range w - 1 {
		go func() {
			defer wg.Done()
			fn(i, i*n/w, (i+1)*n/w)
		}()
	}
	fn(w-1, (w-1)*n/w, n)
	wg.Wait()
}
