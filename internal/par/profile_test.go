package par_test

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anelab/anelab/internal/par"
)

// sleepJob sleeps d[part] in each part.
type sleepJob struct{ d []time.Duration }

func (j *sleepJob) Run(_, part, _, _ int) { time.Sleep(j.d[part]) }

// blasJob reports a BLAS call of flops FLOPs (taking 1 µs) per part to the profile in force.
type blasJob struct{ flops int64 }

func (j *blasJob) Run(_, _, _, _ int) { par.Profiling().AddBLAS(j.flops, time.Microsecond) }

func startDirect(w, parts int, j par.Job) { par.Run(w, parts, parts, j) }

func startEach(w, parts int, _ par.Job) { par.Each(w, parts, func(int, int) {}) }

// plumbStart passes a loop on for its caller: registered as plumbing, so the caller is the site.
func plumbStart(w, parts int, j par.Job) { par.Run(w, parts, parts, j) }

func startViaPlumbing(w, parts int, j par.Job) { plumbStart(w, parts, j) }

func init() { par.Plumbing("github.com/anelab/anelab/internal/par_test.plumbStart") }

// withProfile runs f with a fresh profile in force and returns it.
func withProfile(f func()) *par.Profile {
	p := par.NewProfile()
	par.SetProfile(p)
	defer par.SetProfile(nil)
	f()
	return p
}

// TestProfileSites: a loop is attributed to the function that started it — through par's own
// helpers (Each) and registered plumbing — with its goroutines and parts, serial loops included.
func TestProfileSites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(w, parts int, j par.Job)
		w     int
		site  string
	}{
		{"direct", startDirect, 2, "par_test.startDirect:"},
		{"serial", startDirect, 1, "par_test.startDirect:"},
		{"Each", startEach, 2, "par_test.startEach:"},
		{"plumbing", startViaPlumbing, 2, "par_test.startViaPlumbing:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := withProfile(func() {
				tc.start(tc.w, 4, &sleepJob{make([]time.Duration, 4)})
				tc.start(tc.w, 4, &sleepJob{make([]time.Duration, 4)})
			})
			s := p.Sites()
			if len(s) != 1 || !strings.HasPrefix(s[0].Name, tc.site) || s[0].Loops != 2 || s[0].W != tc.w || s[0].Parts != 8 {
				t.Fatalf("sites %+v, want one %q×2 on %d goroutines, 8 parts", s, tc.site, tc.w)
			}
		})
	}
}

// TestProfileBusy: a loop's busy time covers its parts' sleeps, and fits in wall × goroutines; its
// longest part and its last part's start are within its wall time.
func TestProfileBusy(t *testing.T) {
	for _, w := range []int{1, 2, 3} {
		d := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, time.Millisecond, 0}
		var sum, longest time.Duration
		for _, x := range d {
			sum, longest = sum+x, max(longest, x)
		}
		p := withProfile(func() { startDirect(w, len(d), &sleepJob{d}) })
		s := p.Sites()[0]
		if s.Busy < sum || s.Wall < longest || s.Capacity != s.Wall*time.Duration(w) || s.Busy > s.Capacity {
			t.Fatalf("w %d: busy %v (sleeps %v), wall %v (longest part %v), capacity %v", w, s.Busy, sum, s.Wall, longest, s.Capacity)
		}
		if s.MaxPart < longest || s.MaxPart > s.Wall || s.LastStart > s.Wall {
			t.Fatalf("w %d: longest part %v (slept %v), last start %v, wall %v", w, s.MaxPart, longest, s.LastStart, s.Wall)
		}
		if w == 1 && s.LastStart < sum { // one goroutine: the last part (0 ms) starts after all the others
			t.Fatalf("one goroutine: last part started at %v, after %v of parts", s.LastStart, sum)
		}
	}
}

// TestProfileBLAS: BLAS calls count towards the loop in progress, else towards Outside, exactly,
// and all of them towards Total.
func TestProfileBLAS(t *testing.T) {
	p := withProfile(func() {
		startDirect(2, 5, &blasJob{flops: 1000})
		par.Profiling().AddBLAS(7, 2*time.Microsecond)
	})
	s := p.Sites()
	if len(s) != 1 || s[0].BLAS != (par.BLAS{Calls: 5, FLOPs: 5000, Time: 5 * time.Microsecond}) {
		t.Fatalf("sites %+v", s)
	}
	if o := p.Outside(); o != (par.BLAS{Calls: 1, FLOPs: 7, Time: 2 * time.Microsecond}) {
		t.Fatalf("outside %+v", o)
	}
	if a := p.Total(); a != (par.BLAS{Calls: 6, FLOPs: 5007, Time: 7 * time.Microsecond}) {
		t.Fatalf("total %+v", a)
	}
}

// TestProfileOffAllocs: with profiling off, a loop of a reusable job allocates nothing.
func TestProfileOffAllocs(t *testing.T) {
	par.SetProfile(nil)
	j := &sleepJob{make([]time.Duration, 8)}
	if n := testing.AllocsPerRun(20, func() { startDirect(2, 8, j) }); n != 0 {
		t.Fatalf("%v allocations a loop", n)
	}
}

// TestProfileFilled: deferred parts that workers run while a loop waits for its slowest part count
// as that loop's Filled (and towards Deferred), not as its Busy.
func TestProfileFilled(t *testing.T) {
	var d par.Deferred
	fill := &sleepJob{[]time.Duration{time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond}}
	p := withProfile(func() {
		par.Defer(&d, 3, 4, 4, fill)
		// One part of 20 ms: the two other goroutines have nothing of the loop's to do and take
		// the deferred parts meanwhile.
		startDirect(3, 3, &sleepJob{[]time.Duration{20 * time.Millisecond, 0, 0}})
		d.Wait(3)
	})
	var s par.Site
	for _, x := range p.Sites() {
		if strings.HasPrefix(x.Name, "par_test.startDirect:") {
			s = x
		}
	}
	// A worker still in an earlier loop's tail may take a part before this loop starts (filler
	// time of no loop), so at least one of the four, not all, is this loop's.
	if s.Filled < time.Millisecond || s.Filled > p.Deferred() || s.Busy > 21*time.Millisecond+s.Wall/2 {
		t.Fatalf("loop filled %v (4 deferred parts of 1 ms; all deferred %v), busy %v, wall %v", s.Filled, p.Deferred(), s.Busy, s.Wall)
	}
}

// TestProfileTimeline: with Record, a profile keeps every loop (site, goroutines, parts, start ≤
// end, in start order) and every part as a span inside its loop's window, on one of its
// goroutines, each of its parts once (Part), with the CPU it ran on (on Linux); deferred parts run
// as filler or by Wait's loop are spans of their kinds; without Record there is no timeline, and
// past its room spans are left out, not written over.
func TestProfileTimeline(t *testing.T) {
	var d par.Deferred
	var ran atomic.Int32
	p := par.NewProfile()
	p.Record(1000)
	par.SetProfile(p)
	par.Defer(&d, 4, 40, 40, par.Func(func(_, _, _ int) { ran.Add(1); time.Sleep(20 * time.Microsecond) }))
	startDirect(4, 8, &sleepJob{make([]time.Duration, 8)})
	startDirect(3, 5, &sleepJob{[]time.Duration{0, time.Millisecond, 0, 0, 0}})
	d.Wait(4)
	par.SetProfile(nil)
	loops, spans := p.Timeline()
	if len(loops) < 2 || loops[0].Parts != 8 || loops[0].W != 4 || loops[1].Parts != 5 || loops[1].W != 3 {
		t.Fatalf("loops %+v", loops)
	}
	parts := map[int32]int{}
	seen := map[[2]int32]bool{}
	var fill, drain int
	for _, s := range spans {
		switch s.Kind {
		case par.PartSpan:
			l := loops[s.Loop]
			if s.Start < l.Start || s.End > l.End || s.End < s.Start || int(s.Worker) >= l.W {
				t.Fatalf("span %+v outside loop %+v", s, l)
			}
			parts[s.Loop]++
			if key := [2]int32{s.Loop, s.Part}; seen[key] || s.Part < 0 || int(s.Part) >= l.Parts {
				t.Fatalf("span %+v: part %d twice or outside loop %+v", s, s.Part, l)
			} else {
				seen[key] = true
			}
			if (runtime.GOOS == "linux") != (s.CPU >= 0) {
				t.Fatalf("span %+v: CPU %d on %s", s, s.CPU, runtime.GOOS)
			}
		case par.FillSpan:
			fill++
		case par.DrainSpan:
			drain++
		}
	}
	for i, l := range loops {
		if parts[int32(i)] != l.Parts || l.End < l.Start || (i > 0 && l.Start < loops[i-1].Start) {
			t.Fatalf("loop %d %+v: %d part spans", i, l, parts[int32(i)])
		}
		if !strings.Contains(l.Site, "par_test.") && !strings.Contains(l.Site, "par.") {
			t.Fatalf("loop %d site %q", i, l.Site)
		}
	}
	if fill+drain != int(ran.Load()) || ran.Load() != 40 {
		t.Fatalf("%d fill + %d drain spans for %d deferred parts run (of 40)", fill, drain, ran.Load())
	}
	if l, s := par.NewProfile().Timeline(); l != nil || s != nil {
		t.Fatal("a timeline without Record")
	}
	small := par.NewProfile()
	small.Record(3)
	par.SetProfile(small)
	startDirect(2, 8, &sleepJob{make([]time.Duration, 8)})
	par.SetProfile(nil)
	if _, s := small.Timeline(); len(s) != 3 {
		t.Fatalf("%d spans kept in room for 3", len(s))
	}
}

// awaitJob: part 0 waits (Await) until part 1, which sleeps 2 ms first, has run.
type awaitJob struct{ done atomic.Bool }

func (j *awaitJob) Run(_, part, _, _ int) {
	if part == 1 {
		time.Sleep(2 * time.Millisecond)
		j.done.Store(true)
		return
	}
	par.Await(j.done.Load)
}

// TestProfileAwaited: the time a part spends in Await for another part counts towards its loop's
// site (Site.Awaited, within Busy), and a loop whose parts never wait has none.
func TestProfileAwaited(t *testing.T) {
	p := withProfile(func() {
		startDirect(2, 2, &awaitJob{})
		startEach(2, 4, nil)
	})
	for _, s := range p.Sites() {
		waits := strings.Contains(s.Name, "startDirect")
		if waits && (s.Awaited < time.Millisecond || s.Awaited > s.Busy) || !waits && s.Awaited != 0 {
			t.Fatalf("site %s: awaited %v, busy %v", s.Name, s.Awaited, s.Busy)
		}
	}
}

// startInner starts a loop from inside another loop's part (it runs nested, on the part's goroutine).
func startInner(w, parts int, j par.Job) { par.Run(w, parts, parts, j) }

// TestProfileOwn: the profile's own work between loops (naming the site, adding up the loop) is
// measured, lies within the time outside the loops, and leaves out loops nested in another's
// part, whose bookkeeping is inside that loop's wall already (100 of them here, far more than the
// outer loop's own time).
func TestProfileOwn(t *testing.T) {
	var outside time.Duration
	p := withProfile(func() {
		for range 20 {
			t0 := time.Now()
			startDirect(2, 4, &sleepJob{make([]time.Duration, 4)})
			outside += time.Since(t0)
		}
		t0 := time.Now()
		startEach(2, 2, nil) // a plain loop, then one whose parts start 50 loops each
		par.Run(2, 2, 2, par.Func(func(_, lo, hi int) {
			for range 50 {
				startInner(2, 4, &sleepJob{make([]time.Duration, 4)})
			}
		}))
		outside += time.Since(t0)
	})
	var top time.Duration // the walls of the loops not nested in another
	for _, s := range p.Sites() {
		if !strings.HasPrefix(s.Name, "par_test.startInner:") {
			top += s.Wall
		}
	}
	outside -= top
	if own := p.Own(); own <= 0 || own > outside {
		t.Fatalf("the profile's own time %v, want within (0, %v], the time outside the top-level loops", own, outside)
	}
}

func plumbLate(w, parts int, j par.Job) { par.Run(w, parts, parts, j) }

var lateRegistered bool

func startViaLate(w, parts int, j par.Job) { plumbLate(w, parts, j) }

// TestProfilePlumbingLate: sites are named once per call stack and remembered; plumbing
// registered after a site was named renames it from then on.
func TestProfilePlumbingLate(t *testing.T) {
	site := func() string {
		p := withProfile(func() { startViaLate(2, 4, &sleepJob{make([]time.Duration, 4)}) })
		return p.Sites()[0].Name
	}
	if !lateRegistered { // a second run (go test -count) finds it registered
		if s := site(); !strings.HasPrefix(s, "par_test.plumbLate:") {
			t.Fatalf("site %q, want par_test.plumbLate:…", s)
		}
		par.Plumbing("github.com/anelab/anelab/internal/par_test.plumbLate")
		lateRegistered = true
	}
	if s := site(); !strings.HasPrefix(s, "par_test.startViaLate:") {
		t.Fatalf("after Plumbing: site %q, want par_test.startViaLate:…", s)
	}
}
