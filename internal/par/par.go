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
func Run(w, n, parts int, j Job) { (*Pool)(nil).RunHomed(w, n, parts, nil, j) }

// Run is the package's Run on p's goroutines (nil: the process's pool).
func (p *Pool) Run(w, n, parts int, j Job) { p.RunHomed(w, n, parts, nil, j) }

// RunHomed is Run with parts that have homes: the parts are claimed segment by segment — segs
// are the segments' ends, ascending, the last one parts (nil: one segment) — and each segment's
// parts are split into contiguous ranges, one per seat (min(w, MaxSeats) of them), which a
// goroutine claims from first: the range of the seat it runs on (on Linux, the CPU its thread
// is on, mod the seats), then, once that is empty, the others' in turn, from the back (so that
// the owner and a thief each still run consecutive parts). Part i of a segment of p parts
// starting at a is at home on seat ⌊(i−a)·seats/p⌋, so a loop whose parts are row blocks in order
// gives each CPU the same rows loop after loop: rows a goroutine wrote in one loop are read in the
// next from its own core's caches rather than another's. No part of a segment is claimed before
// every part of the segments before it is (a chain's second stage waits only for parts in
// progress, as with Run). Which goroutine runs a part never changes what it computes.
func RunHomed(w, n, parts int, segs []int, j Job) { (*Pool)(nil).RunHomed(w, n, parts, segs, j) }

// RunHomed is the package's RunHomed on p's goroutines (nil: the process's pool).
func (p *Pool) RunHomed(w, n, parts int, segs []int, j Job) {
	parts = min(parts, n)
	if parts <= 0 {
		return
	}
	loops.Add(1)
	w = min(max(w, 1), parts)
	if segs != nil {
		if len(segs) > maxSegs || segs[len(segs)-1] != parts || parts > maxParts {
			panic("par: RunHomed's segments end at parts, at most maxSegs of them")
		}
		homedLoops.Add(1)
	}
	if pr := profile.Load(); pr != nil {
		pr.run(p.of(), w, n, parts, segs, j)
		return
	}
	p.of().loop(w, n, parts, segs, j)
}

// loop is RunHomed of j on w ≥ 1 goroutines of p (parts ≥ w).
func (p *Pool) loop(w, n, parts int, segs []int, j Job) {
	if w == 1 {
		for i := range parts {
			j.Run(0, i, i*n/parts, (i+1)*n/parts)
		}
		return
	}
	p.run(w, n, parts, segs, j)
}

// loops counts the loops Run has started (see Loops); homedLoops those of them with homes.
var loops, homedLoops atomic.Uint64

// HomedLoops is the number of loops RunHomed has started with homes (segs not nil) in this process.
func HomedLoops() uint64 { return homedLoops.Load() }

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

// A Pool is a set of worker goroutines that loops run on: the process's pool (the nil *Pool,
// which Run, RunHomed and Defer use) or one of its team pools (Team), on which a share of a step
// split into teams runs its loops while the other shares run theirs on theirs. Worker k ≥ 1 is one
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
type Pool struct {
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
	spinAs    atomic.Int32 // loops spin as loops of at least this many goroutines would (SpinAs)

	deferred [maxDeferred]atomic.Pointer[Deferred] // the open deferred jobs (Defer), in no order

	// A homed loop (RunHomed): its epoch (homedEpoch; state's next part is then parts, so that no
	// part is claimed from state), its segments' ends and seats, and per segment and seat the
	// epoch (24 bits, from bit 40) and how many of that seat's parts are claimed from the front
	// (20 bits, from 20) and from the back (the low 20); seg is the epoch and the first segment
	// that may have parts left. A worker of an earlier loop may still read them (hence atomics)
	// but claims nothing: every count carries the epoch.
	homedEpoch  atomic.Uint64
	segs        [maxSegs]atomic.Int32
	nseg, seats atomic.Int32
	home        [maxSegs][MaxSeats]atomic.Uint64
	seg         atomic.Uint64

	// For a worker deciding whether a deferred part fits in the loop's wait (slack; kept only while
	// SetFillSlack is on): when the part each goroutine runs started (clock ns, 0: none), and the
	// loop's finished parts' total time.
	started        [maxWorkers + 1]atomic.Int64
	partNs, partsN atomic.Int64
}

// clock is the time since clockBase in ns (monotonic), never 0 after the first call.
func clock() int64 { return int64(time.Since(clockBase)) + 1 }

var clockBase = time.Now()

var workers = Pool{done: make(chan struct{}, 1)}

// of is p, or the process's pool when p is nil.
func (p *Pool) of() *Pool {
	if p == nil {
		return &workers
	}
	return p
}

// SpinAs makes p's loops spin (how long a worker waits for the next loop before it sleeps) as
// loops of at least w goroutines would: a team pool's loops, whose cores are those of a step on
// w goroutines in all.
func (p *Pool) SpinAs(w int) { p.of().spinAs.Store(int32(min(w, maxWorkers))) }

// teamPools are the process's team pools (Team).
var teamPools struct {
	sync.Mutex
	p []*Pool
}

// Team is the process's team pool i (i ≥ 0), made on first use: the pool a split step's share i
// runs its loops on (anert/model's teams), so that k shares run k loops at once, each on its own
// goroutines, where on one pool all but one would run on their callers alone. A team pool's
// workers are made as its loops need them and sleep between steps as the process pool's do; it
// lives as long as the process, for whichever model splits next (two models splitting at once
// share them, and a loop that finds its pool busy runs on its caller, as on the process pool).
func Team(i int) *Pool {
	teamPools.Lock()
	defer teamPools.Unlock()
	for len(teamPools.p) <= i {
		teamPools.p = append(teamPools.p, &Pool{done: make(chan struct{}, 1)})
	}
	return teamPools.p[i]
}

// maxParts and maxWorkers are the limits of state's fields.
const maxParts, maxWorkers = 1<<16 - 1, 255

func (p *Pool) run(w, n, parts int, segs []int, j Job) {
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
	p.spin.Store(int64(spinFor(max(w, int(p.spinAs.Load())))))
	p.remaining.Store(int64(parts))
	p.partNs.Store(0)
	p.partsN.Store(0)
	epoch := (p.state.Load()>>40 + 1) & (1<<24 - 1)
	next := uint64(0)
	if segs != nil {
		p.armHomed(epoch, w, segs)
		next = uint64(parts) // parts are claimed from the seats' ranges, none from state
	}
	p.state.Store(epoch<<40 | uint64(w)<<32 | uint64(parts)<<16 | next)
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

// Await yields (runtime.Gosched) until cond holds: a wait on work in progress on other goroutines
// of the pool (a chained loop's rows, a padded copy, a deferred update's parts), which ends in µs
// on many cores and never deadlocks on few. It yields after every check: on 16 cores yielding at
// most every 20 µs made steps up to 20% slower (anert/bench/RESULTS.md, 6 Dec 2026), as a goroutine coming back
// from a BLAS call then waits for a processor.
func Await(cond func() bool) {
	if cond() {
		return
	}
	var t int64
	pr := profile.Load()
	if pr != nil {
		t = clock()
	}
	for !cond() {
		runtime.Gosched()
	}
	if pr != nil {
		if r := pr.cur.Load(); r != nil {
			r.awaited.Add(clock() - t)
		}
	}
}

// work claims and runs parts of the current loop as worker k until none is left. The caller
// (k = 0) gets back whether it finished the loop's last part; a worker (k ≥ 1) that finishes it
// signals done at once. A worker that finds no part left to start runs a deferred part (Defer)
// instead of waiting (fill), and then looks again: at the parts of the next loop, if it started
// meanwhile.
func (p *Pool) work(k int) (last bool) {
	for {
		v := p.state.Load()
		w, parts, i := int(v>>32&0xff), int(v>>16&0xffff), int(v&0xffff)
		switch {
		case k >= w:
			i = -1
		case i < parts:
			if !p.state.CompareAndSwap(v, v+1) {
				continue
			}
		case p.homedEpoch.Load() == v>>40: // a homed loop: parts from the seats' ranges
			i = p.claimHomed(v>>40, k)
		default:
			i = -1
		}
		if i < 0 {
			if k > 0 && p.fill(k, w) {
				if !fillBackToBack.Load() {
					runtime.Gosched()
				}
				continue
			}
			return last
		}
		if p.runPart(k, i, parts) {
			last = true
		}
	}
}

// runPart runs part i of the loop in progress (of parts parts) as worker k, which claimed it, and
// counts it done; a worker (k ≥ 1) that finished the loop's last part signals done, the caller
// (k = 0) gets back true.
func (p *Pool) runPart(k, i, parts int) (last bool) {
	if slackFill.Load() { // fill's estimate: when each part started, how long the parts take
		t := clock()
		p.started[k].Store(t)
		p.j.Run(k, i, i*p.n/parts, (i+1)*p.n/parts)
		p.started[k].Store(0)
		p.partNs.Add(clock() - t)
		p.partsN.Add(1)
	} else {
		p.j.Run(k, i, i*p.n/parts, (i+1)*p.n/parts)
	}
	if p.remaining.Add(-1) != 0 {
		return false
	}
	if k > 0 {
		p.done <- struct{}{}
		return false
	}
	return true
}

// maxSegs is the most segments of a homed loop; MaxSeats the most seats its parts are split over;
// countMask the field of a seat's claimed parts (front or back).
const maxSegs, MaxSeats, countMask = 16, 64, 1<<20 - 1

// armHomed prepares a homed loop of epoch on w goroutines with segments segs, before its epoch is
// published: every seat's count at 0 with this epoch.
func (p *Pool) armHomed(epoch uint64, w int, segs []int) {
	seats := min(w, MaxSeats)
	for s, e := range segs {
		p.segs[s].Store(int32(e))
		for h := range seats {
			p.home[s][h].Store(epoch << 40)
		}
	}
	p.nseg.Store(int32(len(segs)))
	p.seats.Store(int32(seats))
	p.seg.Store(epoch << 32)
	p.homedEpoch.Store(epoch)
}

// claimHomed claims the next part of the homed loop of epoch for worker k: from its seat's range
// of the first segment with parts left, else from the other seats' ranges of it in turn. -1 when
// no part is left (or the loop is no longer epoch's: every count then carries another epoch).
func (p *Pool) claimHomed(epoch uint64, k int) int {
	seat := k
	if !seatByWorker.Load() {
		seat = cpu(k)
	}
	for {
		sv := p.seg.Load()
		if sv>>32 != epoch {
			return -1
		}
		s := int(sv & 0xffffffff)
		if s >= int(p.nseg.Load()) {
			return -1
		}
		a, b, n := 0, int(p.segs[s].Load()), int(p.seats.Load())
		if s > 0 {
			a = int(p.segs[s-1].Load())
		}
		for d := range n {
			h := (seat + d) % n
			lo, hi := a+(b-a)*h/n, a+(b-a)*(h+1)/n
			c := &p.home[s][h]
			for {
				v := c.Load()
				f, t := int(v>>20&countMask), int(v&countMask)
				if v>>40 != epoch || lo+f >= hi-t {
					break
				}
				// The seat's own goroutine takes its parts from the front, a thief from the back,
				// so that each still runs consecutive parts (the same rows of A, block after block).
				if d == 0 && c.CompareAndSwap(v, v+1<<20) {
					return lo + f
				}
				if d > 0 && c.CompareAndSwap(v, v+1) {
					return hi - 1 - t
				}
			}
		}
		p.seg.CompareAndSwap(sv, sv+1) // segment s has no part left to claim
	}
}

// A goroutine's seat, from which it claims a homed loop's parts first, is the CPU its thread runs
// on (cpu: getcpu on Linux), which stays the same loop after loop while the step's goroutines keep
// their cores; elsewhere, or with SetSeatByWorker(true), its worker index.
var seatByWorker atomic.Bool

// SetSeatByWorker makes a homed loop's goroutines claim parts by their worker index in the loop
// (on) rather than by the CPU they run on (off, the default): every goroutine then has a seat of
// its own and runs consecutive parts, though not the same rows loop after loop (a worker index is
// not a core).
func SetSeatByWorker(on bool) { seatByWorker.Store(on) }

func (p *Pool) worker(k int, wake chan struct{}, sleeping *atomic.Bool) {
	epoch := func() uint64 { return p.state.Load() >> 40 }
	<-wake
	for {
		seen := epoch()
		p.work(k)
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

// A Deferred is work whose parts no loop waits for: the weight gradients of a backward pass, needed
// only by the optimizer. Defer offers its parts to the pool's workers, which run them when the
// loop in progress has no part left for them to start — at the end of a loop, where they would
// otherwise wait for its slowest parts (fill) — and Wait runs
// those left on the caller's goroutines and returns when every part is done. A worker still busy
// with a deferred part when the next loop starts joins it late, so a deferred part should be short
// beside a loop.
//
// Each part runs exactly once, on whichever goroutine claims it, with that goroutine's worker
// index (its scratch is its own: a goroutine runs one part at a time), so a job whose parts write
// disjoint outputs gives the same result on any schedule. Between Defer and Wait nothing else may
// write what the job reads or read what it writes; Wait must return before d is deferred again.
// A Deferred is reused from step to step: it allocates nothing.
type Deferred struct {
	j     Job
	n     int
	state atomic.Uint64 // open (1 bit, bit 48) | parts (24 bits, from 24) | next unclaimed part (24)
	done  atomic.Int64  // parts finished
	// the parts run so far (kept across uses: a Deferred reused step after step runs the same
	// blocks) and their total time, for fill's estimate (counted while it or a profile is on)
	partsRun, partNs atomic.Int64
	slot             int      // 1 + its index in the pool's deferred slots while open (0: in none)
	pool             *Pool    // the pool it was deferred to
	drain            drainJob // RunTo's loop, kept here: a drainJob value made a Job allocates
}

const (
	deferOpen     = 1 << 48
	deferMask     = 1<<24 - 1
	maxDeferred   = 16 // deferred jobs open at once (more run at once, in Defer)
	maxDeferParts = deferMask
)

// Defer offers j's parts — [0, n) split into parts as in Run — to the pool's workers until
// d.Wait. With more than maxDeferred jobs open, or one goroutine (w ≤ 1: nobody else would take
// them), it runs j at once, as Run(w, n, parts, j).
func Defer(d *Deferred, w, n, parts int, j Job) { (*Pool)(nil).Defer(d, w, n, parts, j) }

// Defer is the package's Defer to p's workers (nil: the process's pool); d's Wait and RunTo then
// run on p too.
func (p *Pool) Defer(d *Deferred, w, n, parts int, j Job) {
	parts = min(parts, n, maxDeferParts)
	d.slot, d.pool = 0, p.of()
	if parts <= 0 {
		return
	}
	if w <= 1 {
		p.Run(w, n, parts, j)
		return
	}
	d.j, d.n = j, n
	d.done.Store(0)
	d.state.Store(deferOpen | uint64(parts)<<24)
	for i := range d.pool.deferred {
		if d.pool.deferred[i].CompareAndSwap(nil, d) {
			d.slot = i + 1
			deferredCount.Add(1)
			return
		}
	}
	d.state.Store(0) // no slot: run it now
	p.Run(w, n, parts, j)
}

// deferredCount counts the jobs Defer has offered to the workers (see Deferreds).
var deferredCount atomic.Uint64

// Deferreds is the number of jobs Defer has offered to the pool's workers in this process (those
// it ran at once excepted).
func Deferreds() uint64 { return deferredCount.Load() }

// Wait runs d's parts that no worker has claimed on w goroutines (one loop, when any are left),
// waits for those in progress, and closes d. Nothing when d was never deferred or ran at once.
func (d *Deferred) Wait(w int) {
	if d.slot == 0 {
		return
	}
	parts := int(d.state.Load() >> 24 & deferMask)
	d.RunTo(w, parts)
	for d.done.Load() < int64(parts) {
		spinUntil(longSpin, func() bool { return d.done.Load() == int64(parts) })
	}
	d.state.Store(0)
	d.pool.deferred[d.slot-1].Store(nil)
	d.slot, d.j = 0, nil
}

// RunTo runs, on w goroutines (one loop, when any are left), the parts of d below upto that no
// goroutine has claimed yet, and returns when they are done; parts below upto that a worker is
// running meanwhile may still be running. For a job whose parts are claimed in the order they are
// needed: a caller that needs the first upto parts done runs RunTo, then waits for those in
// progress by its own count of what finished (d counts only how many parts did). Nothing when d
// is not open.
func (d *Deferred) RunTo(w, upto int) {
	if d.slot == 0 {
		return
	}
	v := d.state.Load()
	upto = min(upto, int(v>>24&deferMask))
	if left := upto - int(v&deferMask); left > 0 {
		d.drain = drainJob{d, upto}
		d.pool.Run(w, left, left, &d.drain)
	}
}

// Take claims and runs one part of d below upto as worker k of the calling goroutine's loop (its
// scratch), and reports false when none is left to claim: for a caller that runs a deferred job's
// parts in a loop of its own, on another pool than d's (a split step's team, waiting for the parts
// of its parent's update that it needs).
func (d *Deferred) Take(k, upto int) bool { return d.take(k, false, upto) }

// Left is how many of d's parts below upto no goroutine has claimed yet (0 when d is not open).
func (d *Deferred) Left(upto int) int {
	v := d.state.Load()
	if v&deferOpen == 0 {
		return 0
	}
	return max(0, min(upto, int(v>>24&deferMask))-int(v&deferMask))
}

// open reports whether d has parts left to claim.
func (d *Deferred) open() bool {
	v := d.state.Load()
	return v&deferOpen != 0 && int(v&deferMask) < int(v>>24&deferMask)
}

// take claims and runs one part of d below upto as worker k; false when none is left to claim.
// filler: a worker runs it in another loop's wait (a profile counts its time apart), not in Wait's
// or RunTo's loop.
func (d *Deferred) take(k int, filler bool, upto int) bool {
	for {
		v := d.state.Load()
		parts, i := int(v>>24&deferMask), int(v&deferMask)
		if v&deferOpen == 0 || i >= parts || i >= upto {
			return false
		}
		if !d.state.CompareAndSwap(v, v+1) {
			continue
		}
		// The claim happened after Defer published d (its state store), so d.j and d.n are set.
		pr := profile.Load()
		if pr == nil && !slackFill.Load() {
			d.j.Run(k, i, i*d.n/parts, (i+1)*d.n/parts)
			d.done.Add(1)
			return true
		}
		var in *loopRec // the loop whose wait this part fills
		if pr != nil && filler {
			in = pr.cur.Load()
		}
		t := clock() // for the profile and fill's estimate
		d.j.Run(k, i, i*d.n/parts, (i+1)*d.n/parts)
		ns := clock() - t
		if pr != nil && filler {
			pr.deferred.Add(ns)
			loop := int32(-1)
			if in != nil {
				in.filled.Add(ns)
				loop = in.id
			}
			pr.span(loop, k, FillSpan, i, t, t+ns)
		} else if pr != nil {
			pr.span(-1, k, DrainSpan, i, t, t+ns)
		}
		d.partNs.Add(ns)
		d.partsRun.Add(1)
		d.done.Add(1)
		return true
	}
}

// drainJob is Wait's and RunTo's loop: each of its parts claims and runs one part of d below
// upto (none if the workers took it meanwhile).
type drainJob struct {
	d    *Deferred
	upto int
}

func (j drainJob) Run(k, _, lo, hi int) {
	for range hi - lo {
		if !j.d.take(k, false, j.upto) {
			return
		}
	}
}

// fill runs one deferred part as worker k while the loop in progress (on w goroutines) has none
// left to start: of p's deferred jobs, and on a team pool of the process pool's too (a split
// step's teams apply their parent's deferred update: anert/model's fenceOf). A part that outlasts the loop makes its worker join the next loop late, and a
// loop of one part per goroutine then waits for it; with SetFillSlack(true) a part is taken only
// if it is expected to end before the running parts do: they end the loop's mean part time after
// they started, and it lasts its job's mean so far (a job's first part is taken unconditionally,
// to learn it). False when it ran none.
func (p *Pool) fill(k, w int) bool {
	slack := int64(-1)
	ran, stop := p.fillFrom(&p.deferred, k, w, &slack)
	if !ran && !stop && p != &workers {
		ran, _ = p.fillFrom(&workers.deferred, k, w, &slack)
	}
	return ran
}

// fillFrom is fill over one pool's deferred jobs (slots): whether it ran a part, and whether the
// loop in progress has no slack left for any (fill then looks no further). slack is fill's
// estimate, made on first need (−1: not yet).
func (p *Pool) fillFrom(slots *[maxDeferred]atomic.Pointer[Deferred], k, w int, slack *int64) (ran, stop bool) {
	for i := range slots {
		d := slots[i].Load()
		if d == nil || !d.open() {
			continue
		}
		if !slackFill.Load() {
			if d.take(k, true, maxDeferParts) {
				return true, false
			}
			continue
		}
		if *slack < 0 {
			if *slack = p.slack(w); *slack <= 0 {
				return false, true
			}
		}
		if n := d.partsRun.Load(); n > 0 && d.partNs.Load()/n > *slack {
			continue
		}
		if d.take(k, true, maxDeferParts) {
			return true, false
		}
	}
	return false, false
}

// fillBackToBack makes a worker run deferred parts as filler back to back, without yielding
// between them (SetFillYield(false)).
var fillBackToBack atomic.Bool

// SetFillYield makes a worker yield its processor (runtime.Gosched) after each deferred part it
// runs in a loop's wait, before it takes the next (on, the default), or take them back to back
// (off). Back to back, a worker holds its processor while deferred parts are left; a goroutine
// that waits for one — the loop's caller, queued by its own Gosched while it waited for the last
// part, or a worker back from a BLAS call whose processor the runtime gave away — may then wait
// until they run out, and the next loop starts that late: on 16 cores the final norm's backward,
// a loop of 0.1 ms of work, took 0.4–1.6 ms a step right after the classifier's weight gradient
// was deferred (anert/bench/RESULTS.md, "Results (16 cores, 6 Dec 2026, 07:45–08:25 UTC)").
func SetFillYield(on bool) { fillBackToBack.Store(!on) }

// slackFill turns fill's estimate on (SetFillSlack).
var slackFill atomic.Bool

// SetFillSlack makes a worker with no part left to start take a deferred part only when it is
// expected to end before the loop's running parts do (on), or whenever one is left (off, the
// default: measured better on 16 cores, 6 Dec 2026 — the estimate left most of the waits empty).
func SetFillSlack(on bool) { slackFill.Store(on) }

// slack is how long, by the estimate of fill, until the last running part of the loop in
// progress (on w goroutines) ends: 0 when none runs.
func (p *Pool) slack(w int) int64 {
	n := p.partsN.Load()
	if n == 0 {
		return 0
	}
	mean, end := p.partNs.Load()/n, int64(0)
	for k := range min(w, len(p.started)) {
		if t := p.started[k].Load(); t != 0 {
			end = max(end, t+mean)
		}
	}
	return end - clock()
}
