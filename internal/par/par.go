// Package par is the one way anelab runs a loop in parallel: over the items [0, n), split into
// contiguous parts, on an explicit number of goroutines (the caller's thread budget), which take
// parts dynamically from a process-wide pool of persistent workers.
//
// Every parallel loop in the module goes through Run (or For, Each on top of it), and every
// caller passes its thread budget explicitly — a model's, an optimizer's, an emulator's option —
// rather than reading GOMAXPROCS or global BLAS state. Threads(0) resolves "all cores".
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Threads resolves a thread budget: n itself when n > 0, else GOMAXPROCS (all the cores Go uses).
func Threads(n int) int {
	if n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// A Job is the body of a parallel loop: Run(worker, part, lo, hi) processes part number part, the
// items [lo, hi), using worker's scratch if it has any (worker < the loop's goroutine count; no
// two goroutines of one loop share a worker index). Per-part partial sums, added in part order
// afterwards, make a result independent of the schedule. A hot loop implements Job on a reusable
// struct so that starting the loop allocates nothing (a Func closure allocates).
type Job interface {
	Run(worker, part, lo, hi int)
}

// Func makes a function of (worker, lo, hi) a Job.
type Func func(worker, lo, hi int)

// Run calls f.
func (f Func) Run(worker, _, lo, hi int) { f(worker, lo, hi) }

// Run splits [0, n) into parts contiguous ranges of (nearly) equal size, part i being
// [i·n/parts, (i+1)·n/parts), and runs j on every part on w goroutines: the calling goroutine and
// w−1 workers of the pool, each taking the next part until none is left (a goroutine slowed by
// another process takes fewer parts). It returns when all parts are done. One loop at a time runs
// on the pool: a loop started while another runs (from another goroutine, or nested inside a
// job) runs on its caller's goroutine alone, so that nesting never deadlocks.
func Run(w, n, parts int, j Job) {
	parts = min(parts, n)
	if parts <= 0 {
		return
	}
	loops.Add(1)
	w = min(max(w, 1), parts)
	if p := profile.Load(); p != nil {
		p.run(w, n, parts, j)
		return
	}
	run(w, n, parts, j)
}

// run is Run of j on w ≥ 1 goroutines (parts ≥ w).
func run(w, n, parts int, j Job) {
	if w == 1 {
		for i := range parts {
			j.Run(0, i, i*n/parts, (i+1)*n/parts)
		}
		return
	}
	workers.run(w, n, parts, j)
}

// loops counts the loops Run has started (see Loops).
var loops atomic.Uint64

// Loops is the number of loops Run has started in this process (those of zero items excepted).
// On w goroutines each loop ends in a wait for its slowest part, so the loops of a training step
// are a countable proxy for its cost on many cores: tests assert how many a step runs, and a
// change that fuses loops shows there (anert/model's TestLoopsPerStep). One atomic add per loop.
func Loops() uint64 { return loops.Load() }

// For runs fn over [0, n) split into at most w parts of at least minChunk items (one part when n
// is small), as fn(worker, lo, hi). It allocates a closure: for cold paths.
func For(w, n, minChunk int, fn func(worker, lo, hi int)) {
	w = max(w, 1)
	Run(w, n, max(1, min(w, n/max(minChunk, 1))), Func(fn))
}

// Each runs fn(worker, i) for every i in [0, n), one item per part, on w goroutines: for items of
// uneven cost (compiling kernels, staging layers, tokenizing blocks).
func Each(w, n int, fn func(worker, i int)) {
	Run(w, n, n, Func(func(worker, lo, hi int) {
		for i := lo; i < hi; i++ {
			fn(worker, i)
		}
	}))
}

// Chunks is how many parts a loop over n items on w goroutines is split into, for parts of at
// least minChunk items: a multiple of w (so that the parts spread evenly), up to 4 per goroutine
// (so that a goroutine slowed by another process takes fewer), and fewer when n is too small.
func Chunks(w, n, minChunk int) int {
	w = max(w, 1)
	per := min(4, n/max(1, minChunk*w))
	if per < 1 {
		return max(1, min(w, n/max(1, minChunk)))
	}
	return per * w
}

// pool is the process-wide set of worker goroutines that loops run on. Worker k ≥ 1 is one
// goroutine that sleeps on wake[k−1]; the goroutine that starts a loop is worker 0. Loops take
// turns (mu holds one loop at a time; see Run).
//
// Parts are claimed with a compare-and-swap on state, which packs the loop's epoch, its goroutine
// count w, its part count and the next unclaimed part. A worker that wakes late — its core taken by
// another process — finds every part claimed and goes back to sleep: a loop waits for the parts to
// finish, never for a worker to wake up.
//
// A worker that finishes a loop spins for up to spin watching state for the next loop before it
// sleeps, and the caller wakes only the sleeping ones: a training step runs hundreds of short loops
// back to back, and waking 15 sleeping goroutines one after the other took as long as a small
// GEMM's share on 16 cores. Neither side spins longer than spin, so an idle process sleeps.
type pool struct {
	mu       sync.Mutex
	wake     []chan struct{}
	sleeping []*atomic.Bool // worker k+1 is blocked (or about to block) on wake[k]
	done     chan struct{}
	state    atomic.Uint64 // epoch (24 bits) | w (8) | parts (16) | next part (16)

	// The loop in progress: written under mu before its epoch is published in state, and read
	// only by a goroutine that has claimed one of its parts (so the loop cannot end meanwhile).
	j         Job
	n         int
	remaining atomic.Int64 // parts not yet finished
	spin      atomic.Int64 // the last loop's spin (spinFor), ns: how long its workers wait for the next
}

var workers = pool{done: make(chan struct{}, 1)}

// maxParts and maxWorkers are the limits of state's fields.
const maxParts, maxWorkers = 1<<16 - 1, 255

func (p *pool) run(w, n, parts int, j Job) {
	w, parts = min(w, maxWorkers), min(parts, maxParts)
	if !p.mu.TryLock() {
		for i := range parts {
			j.Run(0, i, i*n/parts, (i+1)*n/parts)
		}
		return
	}
	defer p.mu.Unlock()
	for len(p.wake) < w-1 {
		c, s := make(chan struct{}, 1), new(atomic.Bool)
		s.Store(true) // it starts blocked on c
		p.wake, p.sleeping = append(p.wake, c), append(p.sleeping, s)
		go p.worker(len(p.wake), c, s)
	}
	p.j, p.n = j, n
	p.spin.Store(int64(spinFor(w)))
	p.remaining.Store(int64(parts))
	epoch := (p.state.Load()>>40 + 1) & (1<<24 - 1)
	p.state.Store(epoch<<40 | uint64(w)<<32 | uint64(parts)<<16)
	for k := range w - 1 {
		if p.sleeping[k].CompareAndSwap(true, false) {
			p.wake[k] <- struct{}{}
		}
	}
	if !p.work(0) {
		spinUntil(spinFor(w), func() bool { return p.remaining.Load() == 0 })
		<-p.done
	}
	p.j = nil
}

// longSpin and shortSpin are how long a goroutine of the pool busy-waits before it blocks
// (spinFor). longSpin is longer than the tail of a loop — the time from a goroutine's last part to
// the loop's end, up to a whole part — so that neither a worker that ran out of parts nor a caller
// waiting for the last one goes to sleep inside a step: on 16 cores a GEMM's part takes 0.1–1 ms,
// and with 50 µs each such tail put them to sleep, the caller's wake-up then delaying the loop's
// end and the workers' the next loop's start (waking 15 goroutines takes tens of µs:
// par.BenchmarkLoop with a gap of 2·longSpin).
const (
	longSpin  = 2 * time.Millisecond
	shortSpin = 50 * time.Microsecond
)

// spinFor is the spin of a loop on w goroutines: longSpin on many cores (w ≥ manyCores) when the
// goroutines fit the Go scheduler's processors (GOMAXPROCS), else shortSpin. More goroutines
// than processors would spin on the processors the working ones need (16 threads on a 2-core
// machine, as the tests run). On few cores a loop's parts are long and waking one or three
// goroutines is cheap, while a goroutine that spins through a tail on a machine shared with other
// processes uses up its time slice and is then preempted in the next loop (on the 2-core machine
// under load, BenchmarkLoop with a 200 µs gap cost 176 µs a loop spinning 2 ms, 23 µs with 50 µs).
func spinFor(w int) time.Duration {
	if w >= manyCores && w <= runtime.GOMAXPROCS(0) {
		return longSpin
	}
	return shortSpin
}

// manyCores is the goroutine count from which a loop spins long (spinFor).
const manyCores = 8

// spinUntil busy-waits until cond holds or d has passed, and reports whether cond held. It yields
// now and then (runtime.Gosched), so that a spinning goroutine holds its core only while no other
// goroutine of the process wants one (an async backend's dW worker, the runtime's).
func spinUntil(d time.Duration, cond func() bool) bool {
	var start time.Time
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if i&255 == 255 {
			runtime.Gosched()
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > d {
				return false
			}
		}
	}
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
		p.j.Run(k, i, i*p.n/parts, (i+1)*p.n/parts)
		if p.remaining.Add(-1) == 0 {
			last = true
		}
	}
}

func (p *pool) worker(k int, wake chan struct{}, sleeping *atomic.Bool) {
	epoch := func() uint64 { return p.state.Load() >> 40 }
	<-wake
	for {
		seen := epoch()
		if p.work(k) {
			p.done <- struct{}{}
		}
		if spinUntil(time.Duration(p.spin.Load()), func() bool { return epoch() != seen }) {
			continue
		}
		// Announce the sleep, then look again: either this look sees the new loop, or the loop's
		// caller sees the flag (and sends a wake-up, which must then be taken).
		sleeping.Store(true)
		if epoch() != seen && sleeping.CompareAndSwap(true, false) {
			continue
		}
		<-wake
	}
}
