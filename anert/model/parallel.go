package model

import (
	"sync"
	"sync/atomic"

	"github.com/anelab/anelab/anert/blas"
)

// beginStep returns how many goroutines a step uses — blas.Threads(), the count the trainer gave
// to BLAS — and puts BLAS in serial mode (each call single-threaded). The model splits each GEMM
// over its own goroutines instead (see team.gemm): then the element-wise loops and per-head
// attention between GEMMs don't compete with an idle BLAS thread pool that spins (OpenBLAS's
// workers busy-yield for a while after each call), a core taken by another process slows one part
// instead of stalling BLAS's barriers, and small GEMMs (one attention head) run in parallel with
// each other. Serial mode is left on afterwards: switching OpenBLAS back to w threads after every
// step would wake its idle threads each time, and they would spin through the next step.
func beginStep() (w int) {
	blas.SetSerial(true)
	return max(1, blas.Threads())
}

// A job is the body of a parallel loop over the items [0, n), split into parts: run(worker, part,
// lo, hi) processes part number part, the items [lo, hi), using worker's scratch if it has any
// (worker < the team's w; no two goroutines of one loop share a worker index). Per-part partial
// sums, added in part order afterwards, make a result independent of the schedule.
type job interface {
	run(worker, part, lo, hi int)
}

// jobFunc makes a function a job. A closure allocates: hot loops use a team's job structs instead.
type jobFunc func(worker, lo, hi int)

func (f jobFunc) run(worker, _, lo, hi int) { f(worker, lo, hi) }

// team is the goroutines a Model (or a CPU backend) runs its parallel loops on, and the reusable
// bodies of its hot loops: a loop stores its arguments in the team's job of its kind, so that a
// training step allocates nothing. A team runs one loop at a time (it is not safe for concurrent use,
// like the Model that owns it); a job must not start another loop.
type team struct {
	w int // goroutines per loop: the caller and w−1 pool workers

	gemm1    gemmJob
	norm     rmsnormJob
	normBwd  rmsnormBwdJob
	resid    residualJob
	rope     ropeJob
	swiglu   swigluJob
	loss     lossJob
	attnFwd  attnFwdJob
	attnBwd  attnBwdJob
	zero     zeroJob
	partsBuf []float32 // rmsnormBackward's per-part partial dg
}

// newTeam returns a team of w goroutines (at least 1).
func newTeam(w int) *team { return &team{w: max(1, w)} }

// run splits [0, n) into parts contiguous ranges of (nearly) equal size, part i being
// [i·n/parts, (i+1)·n/parts), and runs j on every part, on the team's w goroutines: the calling
// goroutine and w−1 workers of a process-wide pool, each taking the next part until none is left,
// so that a goroutine slowed by another process takes fewer parts. It returns when all are done.
func (t *team) run(n, parts int, j job) {
	parts = min(parts, n)
	if parts <= 0 {
		return
	}
	w := min(t.w, parts)
	if w <= 1 {
		for i := range parts {
			j.run(0, i, i*n/parts, (i+1)*n/parts)
		}
		return
	}
	workers.run(w, n, parts, j)
}

// chunks is how many parts a loop over n items is split into, for parts of at least minChunk
// items: a multiple of the team's w (so that the parts spread evenly), up to 4 per goroutine (so
// that a goroutine slowed by another process takes fewer), and 1 when n is too small to split.
func (t *team) chunks(n, minChunk int) int {
	per := min(4, n/max(1, minChunk*t.w))
	if per < 1 {
		return max(1, min(t.w, n/max(1, minChunk)))
	}
	return per * t.w
}

// clear zeroes s on the team's goroutines (a memory-bound pass: two cores clear a large buffer
// faster than one).
func (t *team) clear(s []float32) {
	j := &t.zero
	j.s = s
	t.run(len(s), t.chunks(len(s), 1<<16), j)
	j.s = nil
}

type zeroJob struct{ s []float32 }

func (j *zeroJob) run(_, _, lo, hi int) { clear(j.s[lo:hi]) }

// parallelFor runs fn over [0, n) split into at most w contiguous chunks of at least minChunk
// items (fewer when n is small), as fn(worker, lo, hi) with worker in [0, w). It allocates a
// closure per call: for tests and cold paths.
func parallelFor(w, n, minChunk int, fn func(worker, lo, hi int)) {
	t := team{w: max(1, w)}
	t.run(n, max(1, min(t.w, n/max(minChunk, 1))), jobFunc(fn))
}

// pool is the process-wide set of worker goroutines that teams' loops run on. Worker k ≥ 1 is one
// goroutine that sleeps on wake[k−1]; the goroutine that starts a loop is worker 0. Loops from
// different teams take turns (mu holds one loop at a time).
//
// Parts are claimed with a compare-and-swap on state, which packs the loop's epoch, its goroutine
// count w, its part count and the next unclaimed part. A worker that wakes late — its core taken by
// another process — finds every part claimed and goes back to sleep: a loop waits for the parts to
// finish, never for a worker to wake up.
type pool struct {
	mu    sync.Mutex
	wake  []chan struct{}
	done  chan struct{}
	state atomic.Uint64 // epoch (24 bits) | w (8) | parts (16) | next part (16)

	// The loop in progress: written under mu before its epoch is published in state, and read
	// only by a goroutine that has claimed one of its parts (so the loop cannot end meanwhile).
	j         job
	n         int
	remaining atomic.Int64 // parts not yet finished
}

var workers = pool{done: make(chan struct{}, 1)}

// maxParts and maxWorkers are the limits of state's fields.
const maxParts, maxWorkers = 1<<16 - 1, 255

func (p *pool) run(w, n, parts int, j job) {
	w, parts = min(w, maxWorkers), min(parts, maxParts)
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.wake) < w-1 {
		c := make(chan struct{}, 1)
		p.wake = append(p.wake, c)
		go p.worker(len(p.wake), c)
	}
	p.j, p.n = j, n
	p.remaining.Store(int64(parts))
	epoch := (p.state.Load()>>40 + 1) & (1<<24 - 1)
	p.state.Store(epoch<<40 | uint64(w)<<32 | uint64(parts)<<16)
	for k := range w - 1 {
		select {
		case p.wake[k] <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	if !p.work(0) {
		<-p.done
	}
	p.j = nil
}

// work claims and runs parts of the current loop as worker k until none is left. It reports
// whether it finished the loop's last part.
func (p *pool) work(k int) (last bool) {
	for {
		v := p.state.Load()
		w, parts, i := int(v>>32&0xff), int(v>>16&0xffff), int(v&0xffff)
		if i >= parts || k >= w {
			return last
		}
		if !p.state.CompareAndSwap(v, v+1) {
			continue
		}
		p.j.run(k, i, i*p.n/parts, (i+1)*p.n/parts)
		if p.remaining.Add(-1) == 0 {
			last = true
		}
	}
}

func (p *pool) worker(k int, wake chan struct{}) {
	for range wake {
		if p.work(k) {
			p.done <- struct{}{}
		}
	}
}
