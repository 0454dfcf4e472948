package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/internal/par"
)

// profileSteps is how many steps a loop profile (Options.ProfileLoops) records.
const profileSteps = 3

// LoopProfile is where a config's steps spend their time, loop by loop (par.Profile): recorded
// over Steps extra steps after the timed ones, with the sgemm rate of one goroutine alone (one
// BLAS thread, SgemmN³ products) measured in the same process right before, which the BLAS calls'
// rate inside the loops is compared with.
type LoopProfile struct {
	Steps      int
	StepNs     int64   // Σ wall time of the profiled steps
	ModelFLOPs float64 // the model's FLOPs over the profiled steps (FLOPsPerToken × tokens)
	SgemmN     int
	Single     float64    // GFLOP/s of one goroutine's back-to-back SgemmN³ products
	Sites      []par.Site // the longest wall time first
	Outside    par.BLAS   // BLAS calls outside every loop
	Total      par.BLAS   // every BLAS call (par.Profile.Total: exact where the sites may miss a few)
	Deferred   int64      // ns of goroutine time deferred parts ran in other loops' waits (par.Profile.Deferred)
	Own        int64      // ns the profile took between the loops (par.Profile.Own): not the step's
}

// traceSpans is the room of a timeline (Options.Trace): a profiled step of the original shape
// runs ~60 loops and a few thousand parts.
const traceSpans = 1 << 17

// traceFile is where the timeline of config goes (Options.Trace; "" for none).
func traceFile(prefix, config string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "." + config + ".txt"
}

// profileLoops records a LoopProfile of profileSteps steps of rig, and their timeline into the
// file trace unless it is "".
func profileLoops(rig *Rig, n int, d time.Duration, flopsPerStep float64, trace string) (*LoopProfile, error) {
	blas.SetSerial(true)
	lp := &LoopProfile{Steps: profileSteps, SgemmN: n, Single: newBurster(n, 1).parallel(d).Mean,
		ModelFLOPs: flopsPerStep * profileSteps}
	// One step unprofiled first: the burst displaced the step's data from the caches, which in
	// training the step before leaves there.
	if _, _, err := rig.Step(); err != nil {
		return nil, err
	}
	p := par.NewProfile()
	if trace != "" {
		p.Record(traceSpans)
	}
	par.SetProfile(p)
	defer par.SetProfile(nil)
	for range profileSteps {
		st, _, err := rig.Step()
		if err != nil {
			return nil, err
		}
		lp.StepNs += st.Ns
	}
	par.SetProfile(nil)
	lp.Sites, lp.Outside, lp.Total, lp.Deferred, lp.Own = p.Sites(), p.Outside(), p.Total(), int64(p.Deferred()), int64(p.Own())
	if trace != "" {
		f, err := os.Create(trace)
		if err != nil {
			return nil, fmt.Errorf("bench: the timeline: %w", err)
		}
		loops, spans := p.Timeline()
		if err := errors.Join(WriteTimeline(f, loops, spans), f.Close()); err != nil {
			return nil, fmt.Errorf("bench: writing the timeline %s: %w", trace, err)
		}
	}
	return lp, nil
}

// WriteTimeline writes a timeline as text, times in µs from the first loop's start: a line
// "loop i site w parts start end" per loop, then "span loop worker kind start end part cpu" per part
// (kind: part, fill — a deferred part run in loop's wait, loop −1 between loops — or drain, one run
// by the deferred job's own loop; part: its index in its loop or job; cpu: where its goroutine ran,
// −1 unknown). anert/bench/timeline.py summarises it.
func WriteTimeline(w io.Writer, loops []par.LoopSpan, spans []par.Span) error {
	var t0 int64
	if len(loops) > 0 {
		t0 = loops[0].Start
	}
	us := func(t int64) float64 { return float64(t-t0) / 1e3 }
	bw := bufio.NewWriter(w)
	for i, l := range loops {
		fmt.Fprintf(bw, "loop %d %s %d %d %.1f %.1f\n", i, l.Site, l.W, l.Parts, us(l.Start), us(l.End))
	}
	kinds := [...]string{par.PartSpan: "part", par.FillSpan: "fill", par.DrainSpan: "drain"}
	for _, s := range spans {
		fmt.Fprintf(bw, "span %d %d %s %.1f %.1f %d %d\n", s.Loop, s.Worker, kinds[s.Kind], us(s.Start), us(s.End), s.Part, s.CPU)
	}
	return bw.Flush() // the first write error, if any
}

// WriteLoopProfile prints r's loop profile as a table, one row per site, the longest first: loops
// per step; wall ms per step and its share of the step; busy % (time inside the parts ÷ wall ×
// goroutines: the rest is goroutines waiting at the loop's end for the slowest part), filled % (the
// deferred parts workers started in those waits, par.Site.Filled) and idle % (the rest); BLAS ms per
// step (summed over goroutines ÷ goroutines); the BLAS calls' GFLOP/s per goroutine and that ÷ one
// goroutine's sgemm rate alone; the busy time outside BLAS (÷ goroutines); per step, the loops'
// longest parts and their last parts' start after the loop's (par.Site); the busy time spent waiting
// on other parts (par.Await: a chain's rows, a padded copy; ÷ goroutines). Then the totals.
func WriteLoopProfile(w io.Writer, r Result) {
	lp := r.Loops
	if lp == nil || lp.Steps == 0 {
		return
	}
	steps := float64(lp.Steps)
	step := float64(lp.StepNs) / 1e6 / steps
	fmt.Fprintf(w, "\nloops of a %s step: %d threads, %d profiled steps of %.2f ms; sgemm %d³ on one goroutine alone %.1f GFLOP/s\n",
		r.Name, r.Threads, lp.Steps, step, lp.SgemmN, lp.Single)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "site\tloops\tw\twall ms\t% step\tbusy %\tfilled %\tidle %\tBLAS ms\tBLAS GF/s/gor\t÷ alone\tother ms\tmax part ms\tlast start ms\tawait ms\t")
	var wall, capacity, busy time.Duration
	var inLoops par.BLAS
	var loops int64
	for _, s := range lp.Sites {
		wall, capacity, busy, loops = wall+s.Wall, capacity+s.Capacity, busy+s.Busy, loops+s.Loops
		inLoops.Add(s.BLAS)
		gw := float64(max(s.W, 1))
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 / steps }
		rate, eff := "-", "-"
		if s.BLAS.Time > 0 {
			g := float64(s.BLAS.FLOPs) / float64(s.BLAS.Time)
			rate = fmt.Sprintf("%.1f", g)
			if lp.Single > 0 {
				eff = fmt.Sprintf("%.2f", g/lp.Single)
			}
		}
		busyPct, fillPct := 100*pct(s.Busy, s.Capacity), 100*pct(s.Filled, s.Capacity)
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%.3f\t%.1f\t%.0f\t%.0f\t%.0f\t%.3f\t%s\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t\n", s.Name, float64(s.Loops)/steps, s.W,
			ms(s.Wall), 100*ms(s.Wall)/step, busyPct, fillPct, max(0, 100-busyPct-fillPct), ms(s.BLAS.Time)/gw, rate, eff, ms(s.Busy-s.BLAS.Time)/gw,
			ms(s.MaxPart), ms(s.LastStart), ms(s.Awaited)/gw)
	}
	tw.Flush()
	loopMs := float64(wall) / 1e6 / steps
	all := lp.Total
	own := float64(lp.Own) / 1e6 / steps
	fmt.Fprintf(w, "total: step %.2f ms = loops %.2f ms (%.1f loops, %.0f%%) + outside loops %.2f ms (serial code %.2f, the profile's own work between loops %.2f); "+
		"busy %.0f%% of the loops' goroutine time (%.0f%% with the deferred parts run in their waits); BLAS %.2f GFLOP a step, %.0f%% of the model's FLOPs (%.1f GF/s per goroutine, %.2f of alone; outside loops %d calls)\n",
		step, loopMs, float64(loops)/steps, 100*loopMs/step, step-loopMs, step-loopMs-own, own, 100*pct(busy, capacity),
		100*pct(busy+time.Duration(lp.Deferred), capacity),
		float64(all.FLOPs)/1e9/steps, 100*float64(all.FLOPs)/max(lp.ModelFLOPs, 1),
		float64(inLoops.FLOPs)/max(float64(inLoops.Time), 1), float64(inLoops.FLOPs)/max(float64(inLoops.Time), 1)/max(lp.Single, 1e-9),
		lp.Outside.Calls/int64(lp.Steps))
}

func pct(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}
