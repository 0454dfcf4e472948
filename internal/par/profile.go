package par

import (
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// A Profile explains where a training step's time goes on many cores, where Go's CPU profiler
// cannot (it credits OpenBLAS's C frames in a static cgo binary to unrelated Go functions): while
// it is set (SetProfile), every loop Run starts is recorded under its site — the function that
// started it — with its wall time, goroutines, parts and the time its parts spent running (busy;
// the rest of wall × goroutines is waiting at the loop's end for the slowest part), and the BLAS
// calls made inside it (AddBLAS, which anert/blas calls for every sgemm while a profile is set).
// Time outside all loops is serial code: a step's wall time minus the loops' wall.
//
// Loops started while another is in progress (nested in a job, or from another goroutine) are
// recorded too, under their own site, but their BLAS calls count towards the loop in progress:
// the training step runs one loop at a time, so this never happens there, except in a step split
// into teams (anert/model's tune.teams), whose teams run their loops at once.
//
// Profiling costs a few µs a loop (a stack walk for the site, a timer around every part); off
// (SetProfile(nil)) it costs Run one atomic load.
type Profile struct {
	mu       sync.Mutex
	sites    map[string]*Site
	cur      atomic.Pointer[loopRec] // the loop whose parts BLAS calls count towards
	outside  blasCounters            // BLAS calls made outside every loop
	total    blasCounters            // every BLAS call (Total)
	deferred atomic.Int64            // ns: deferred parts run by workers inside other loops' waits
	own      atomic.Int64            // ns: the profile's own work between loops (Own)
	tl       *timeline               // nil unless Record was called
}

// A LoopSpan is one loop of a timeline (Profile.Record): its site, goroutines, parts, and its start
// and end (ns on the process's monotonic clock).
type LoopSpan struct {
	Site       string
	W, Parts   int
	Start, End int64
}

// A Span is one part run on a goroutine: a loop's part (Kind PartSpan, Loop its index in the
// timeline's loops), or a deferred part run as filler in the wait of loop Loop (FillSpan; Loop −1
// between loops), or by Wait's or RunTo's own loop (DrainSpan). Part is its index in its loop
// (or deferred job), CPU the CPU its goroutine ran on as it ended (−1: unknown), so that a
// timeline shows whether a goroutine's parts were consecutive and whether it kept its core.
type Span struct {
	Loop       int32
	Worker     int16
	Kind       uint8
	CPU        int16
	Part       int32
	Start, End int64
}

// Span kinds.
const (
	PartSpan = iota
	FillSpan
	DrainSpan
)

// timeline is a profile's record of every loop and part, in preallocated room.
type timeline struct {
	loops []LoopSpan // under the profile's mu; index = loopRec.id
	nloop atomic.Int32
	spans []Span
	n     atomic.Int64
}

// Record makes p keep a timeline of up to maxSpans parts and maxSpans/8 loops, beside its sums:
// which goroutine ran which part when (Timeline). Call it before SetProfile(p). The room is
// allocated here; a loop or part past it is left out of the timeline (not of the sums).
func (p *Profile) Record(maxSpans int) {
	p.tl = &timeline{loops: make([]LoopSpan, max(1, maxSpans/8)), spans: make([]Span, maxSpans)}
}

// Timeline is what Record kept: the loops in the order they started, and the parts in the order
// they ended.
func (p *Profile) Timeline() ([]LoopSpan, []Span) {
	if p.tl == nil {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	nl := min(int(p.tl.nloop.Load()), len(p.tl.loops))
	ns := min(int(p.tl.n.Load()), len(p.tl.spans))
	return append([]LoopSpan(nil), p.tl.loops[:nl]...), append([]Span(nil), p.tl.spans[:ns]...)
}

// span records part number part of kind on worker from t0 to t1 (clock) in loop (−1: none), on the
// CPU the calling goroutine runs on now, if there is room.
func (p *Profile) span(loop int32, worker, kind, part int, t0, t1 int64) {
	if tl := p.tl; tl != nil {
		if i := tl.n.Add(1) - 1; i < int64(len(tl.spans)) {
			tl.spans[i] = Span{loop, int16(worker), uint8(kind), int16(cpu(-1)), int32(part), t0, t1}
		}
	}
}

// NewProfile returns an empty profile.
func NewProfile() *Profile { return &Profile{sites: map[string]*Site{}} }

// profile is the profile in force (nil: off).
var profile atomic.Pointer[Profile]

// SetProfile makes p record every loop Run starts from now on, or turns profiling off (p nil).
func SetProfile(p *Profile) { profile.Store(p) }

// Profiling is the profile in force, nil when profiling is off: a caller that would time
// something for it (anert/blas) loads it once and does nothing more when it is nil.
func Profiling() *Profile { return profile.Load() }

// Site is what a profile recorded for the loops started from one place.
type Site struct {
	Name     string        // the starting function, module path trimmed, and line: "model.(*CPU).FFNForward:241"
	Loops    int64         // loops started there
	W        int           // the most goroutines one of them ran on
	Parts    int64         // their parts, all together
	Wall     time.Duration // Σ wall time of the loops
	Capacity time.Duration // Σ wall × goroutines: the goroutine time the loops held
	Busy     time.Duration // Σ time inside the parts (Job.Run)
	BLAS     BLAS          // the BLAS calls made inside the loops' parts
	// Why the goroutines wait, per loop summed over the loops: the longest part (a loop of one
	// part per goroutine lasts at least that long: parts of equal work taking unequal time), and
	// when its last part started after the loop did (a goroutine that joined late: woken from
	// sleep, or busy with a deferred part).
	MaxPart, LastStart time.Duration
	// Filled is the goroutine time of the deferred parts (Defer) that workers started in the loops'
	// waits, whole even when a part outlasts its loop (its worker then joins the next late): of
	// Capacity, Busy is the parts', Filled the deferred work's, and the rest idle.
	Filled time.Duration
	// Awaited is the goroutine time spent in Await inside the loops' parts (busy, but waiting on
	// other parts: a chain's second stage for the first's rows, a padded copy in progress).
	Awaited time.Duration
}

// BLAS is a count of BLAS calls: how many, their FLOPs (2·m·n·k for an sgemm) and the time
// inside them, summed over goroutines.
type BLAS struct {
	Calls, FLOPs int64
	Time         time.Duration
}

// Add adds b's counts to s's.
func (s *BLAS) Add(b BLAS) {
	s.Calls, s.FLOPs, s.Time = s.Calls+b.Calls, s.FLOPs+b.FLOPs, s.Time+b.Time
}

// Sites are the sites recorded so far, the longest wall time first.
func (p *Profile) Sites() []Site {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Site, 0, len(p.sites))
	for _, s := range p.sites {
		out = append(out, *s)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Wall != out[b].Wall {
			return out[a].Wall > out[b].Wall
		}
		return out[a].Name < out[b].Name
	})
	return out
}

// Deferred is the goroutine time deferred parts (Defer) ran as filler, inside other loops' waits
// or between loops: busy time that their sites' Busy does not count (their BLAS calls count
// towards the loop in progress). Parts run by Wait's own loop are that loop's Busy.
func (p *Profile) Deferred() time.Duration { return time.Duration(p.deferred.Load()) }

// Own is the time the profile itself took on the goroutine that starts the loops, between them:
// naming each loop's site (a stack walk, ~10 µs) and adding the loop to its site's sums. Without
// a profile that time is not spent, so the serial code between a step's loops is its wall time
// minus the loops' minus Own.
func (p *Profile) Own() time.Duration { return time.Duration(p.own.Load()) }

// Outside is the BLAS work done outside every loop.
func (p *Profile) Outside() BLAS { return p.outside.load() }

// Total is all the BLAS work counted. The sites' counts and Outside add up to it but for the
// calls of a deferred part that outlasts the loop it ran in: one that ends just as that loop's
// counts are summed into its site may be left out of them, never out of Total.
func (p *Profile) Total() BLAS { return p.total.load() }

// AddBLAS counts one BLAS call of flops FLOPs that took d towards the loop in progress, or
// towards Outside when none is.
func (p *Profile) AddBLAS(flops int64, d time.Duration) {
	c := &p.outside
	if r := p.cur.Load(); r != nil {
		c = &r.blas
	}
	c.add(flops, d)
	p.total.add(flops, d)
}

type blasCounters struct{ calls, flops, ns atomic.Int64 }

func (c *blasCounters) add(flops int64, d time.Duration) {
	c.calls.Add(1)
	c.flops.Add(flops)
	c.ns.Add(int64(d))
}

func (c *blasCounters) load() BLAS {
	return BLAS{c.calls.Load(), c.flops.Load(), time.Duration(c.ns.Load())}
}

// loopRec is one profiled loop: the job it wraps, timing each part.
type loopRec struct {
	j                  Job
	t0                 int64 // the loop's start (clock)
	id                 int32 // its index in the timeline (−1: none)
	p                  *Profile
	busy               atomic.Int64
	maxPart, lastStart atomic.Int64 // ns
	filled             atomic.Int64 // ns: deferred parts started in the loop's waits (Site.Filled)
	awaited            atomic.Int64 // ns: Await inside the loop's parts (Site.Awaited)
	blas               blasCounters
}

func (r *loopRec) Run(worker, part, lo, hi int) {
	t := clock()
	r.j.Run(worker, part, lo, hi)
	end := clock()
	d := end - t
	if r.id >= 0 {
		r.p.span(r.id, worker, PartSpan, part, t, end)
	}
	r.busy.Add(int64(d))
	atomicMax(&r.maxPart, int64(d))
	atomicMax(&r.lastStart, t-r.t0)
}

// atomicMax sets a to max(a, v).
func atomicMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// run is Run's profiled path.
func (p *Profile) run(pool *Pool, w, n, parts int, segs []int, j Job) {
	t := clock()
	name := siteName()
	r := &loopRec{j: j, id: -1, p: p}
	if p.tl != nil {
		if id := p.tl.nloop.Add(1) - 1; int(id) < len(p.tl.loops) {
			r.id = id
		}
	}
	r.t0 = clock()
	owner := p.cur.CompareAndSwap(nil, r)
	pool.loop(w, n, parts, segs, r)
	end := clock()
	wall := time.Duration(end - r.t0)
	if owner {
		p.cur.CompareAndSwap(r, nil)
		// a loop nested in another's part costs that loop's time instead
		defer func() { p.own.Add(r.t0 - t + clock() - end) }()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.id >= 0 {
		p.tl.loops[r.id] = LoopSpan{name, w, parts, r.t0, end}
	}
	s := p.sites[name]
	if s == nil {
		s = &Site{Name: name}
		p.sites[name] = s
	}
	s.Loops++
	s.W = max(s.W, w)
	s.Parts += int64(parts)
	s.Wall += wall
	s.Capacity += wall * time.Duration(w)
	s.Busy += time.Duration(r.busy.Load())
	s.MaxPart += time.Duration(r.maxPart.Load())
	s.LastStart += time.Duration(r.lastStart.Load())
	s.Filled += time.Duration(r.filled.Load())
	s.Awaited += time.Duration(r.awaited.Load())
	s.BLAS.Add(r.blas.load())
}

// plumbing are prefixes of the functions that only pass a loop on (registered with Plumbing);
// the site of a loop is the first function up its caller's stack that is neither one of them nor
// in this package.
var plumbing struct {
	sync.Mutex
	prefixes []string
}

const thisPackage = "github.com/anelab/anelab/internal/par."

// Plumbing registers function-name prefixes (full import path, as runtime.Frame.Function spells
// it: "github.com/anelab/anelab/anert/model.(*team).") of helpers that start loops for others,
// so that a profile names their callers as the loops' sites instead.
func Plumbing(prefixes ...string) {
	plumbing.Lock()
	defer plumbing.Unlock()
	plumbing.prefixes = append(plumbing.prefixes, prefixes...)
	sites.Clear() // a name may now resolve further up
}

func isPlumbing(fn string) bool {
	if strings.HasPrefix(fn, thisPackage) {
		return true
	}
	plumbing.Lock()
	defer plumbing.Unlock()
	for _, p := range plumbing.prefixes {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// sites caches siteName by call stack (its return addresses as a string): resolving the frames'
// names cost ~6 µs a loop on the model's stacks, beside the ~10–20 of runtime.Callers itself
// (both measured on this project's 2-core machine; Own reports the rest).
var sites sync.Map

// siteName is the site of a loop started by the caller of Run: the first function up the stack
// that is not plumbing, as "pkg.Func:line" (the module path trimmed).
func siteName() string {
	var pcs [32]uintptr
	n := runtime.Callers(2, pcs[:])
	key := unsafe.String((*byte)(unsafe.Pointer(&pcs[0])), n*int(unsafe.Sizeof(pcs[0])))
	if name, ok := sites.Load(key); ok {
		return name.(string)
	}
	name := resolveSite(pcs[:n])
	sites.Store(strings.Clone(key), name) // key points into this frame
	return name
}

// resolveSite is siteName's answer for the stack pcs.
func resolveSite(pcs []uintptr) string {
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function != "" && !isPlumbing(f.Function) {
			fn := f.Function
			if i := strings.LastIndex(fn, "/"); i >= 0 {
				fn = fn[i+1:]
			}
			return fn + ":" + strconv.Itoa(f.Line)
		}
		if !more {
			return "?"
		}
	}
}
