package par

import (
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
// the training step runs one loop at a time, so this never happens there.
//
// Profiling costs a few µs a loop (a stack walk for the site, a timer around every part); off
// (SetProfile(nil)) it costs Run one atomic load.
type Profile struct {
	mu       sync.Mutex
	sites    map[string]*Site
	cur      atomic.Pointer[loopRec] // the loop whose parts BLAS calls count towards
	outside  blasCounters            // BLAS calls made outside every loop
	deferred atomic.Int64            // ns: deferred parts run by workers inside other loops' waits
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

// Outside is the BLAS work done outside every loop.
func (p *Profile) Outside() BLAS { return p.outside.load() }

// AddBLAS counts one BLAS call of flops FLOPs that took d towards the loop in progress, or
// towards Outside when none is.
func (p *Profile) AddBLAS(flops int64, d time.Duration) {
	c := &p.outside
	if r := p.cur.Load(); r != nil {
		c = &r.blas
	}
	c.calls.Add(1)
	c.flops.Add(flops)
	c.ns.Add(int64(d))
}

type blasCounters struct{ calls, flops, ns atomic.Int64 }

func (c *blasCounters) load() BLAS {
	return BLAS{c.calls.Load(), c.flops.Load(), time.Duration(c.ns.Load())}
}

// loopRec is one profiled loop: the job it wraps, timing each part.
type loopRec struct {
	j                  Job
	t0                 time.Time // the loop's start
	busy               atomic.Int64
	maxPart, lastStart atomic.Int64 // ns
	filled             atomic.Int64 // ns: deferred parts started in the loop's waits (Site.Filled)
	blas               blasCounters
}

func (r *loopRec) Run(worker, part, lo, hi int) {
	t := time.Now()
	r.j.Run(worker, part, lo, hi)
	d := time.Since(t)
	r.busy.Add(int64(d))
	atomicMax(&r.maxPart, int64(d))
	atomicMax(&r.lastStart, int64(t.Sub(r.t0)))
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
func (p *Profile) run(w, n, parts int, j Job) {
	name := siteName()
	r := &loopRec{j: j, t0: time.Now()}
	owner := p.cur.CompareAndSwap(nil, r)
	run(w, n, parts, r)
	wall := time.Since(r.t0)
	if owner {
		p.cur.CompareAndSwap(r, nil)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
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

// siteName is the site of a loop started by the caller of Run: the first function up the stack
// that is not plumbing, as "pkg.Func:line" (the module path trimmed).
func siteName() string {
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
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
