package bench

import (
	"bytes"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/model"
)

func tinySpec() Spec {
	c := config.Tiny()
	return Spec{Name: "tiny", Config: c, Steps: 2}
}

// TestMeasureTiny runs the whole measurement on the tiny config and checks what can be checked
// without timing assertions: every step and phase was timed, the memory need is the formula's,
// and the loss is about ln(vocab) (random tokens, near-uniform initial predictions).
func TestMeasureTiny(t *testing.T) {
	spec := tinySpec()
	r, err := Measure(spec, Options{Threads: 2, Steps: 3, Group: 2, Warmup: 1, PeakDur: 5 * time.Millisecond, PeakN: 128})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 3 || r.Threads != 2 || r.Tokens() != spec.Config.Train.Batch*spec.Config.Model.Seq {
		t.Fatalf("steps %d, threads %d, tokens %d", len(r.Steps), r.Threads, r.Tokens())
	}
	// Groups of 2: a burst before steps 0 and 2, which come right after it; step 1 follows step 0.
	if !r.Steps[0].AfterBurst || r.Steps[1].AfterBurst || !r.Steps[2].AfterBurst ||
		r.Steps[1].Sgemm != r.Steps[0].Sgemm || r.Steps[2].Sgemm == r.Steps[0].Sgemm {
		t.Fatalf("groups: %+v", r.Steps)
	}
	for i, s := range r.Steps {
		if s.Ns <= 0 || s.Forward <= 0 || s.Backward <= 0 || s.WeightGrad <= 0 || s.Optimizer <= 0 || s.Loops <= 0 ||
			s.Forward+s.Backward+s.WeightGrad+s.Optimizer > s.Ns || !(s.Sgemm.Mean > 0) || !(s.Sgemm.Best > 0) {
			t.Fatalf("step %d: %+v", i, s)
		}
		if m := r.MFU(i); !(m > 0) || math.IsInf(m, 0) {
			t.Fatalf("step %d: MFU %g", i, m)
		}
	}
	if !(r.Threaded[0].Mean > 0) || !(r.Threaded[1].Mean > 0) || !(r.SgemmAfter.Mean > 0) {
		t.Fatalf("bursts: threaded %+v, after %+v", r.Threaded, r.SgemmAfter)
	}
	m, err := model.New(spec.Config.Model, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := int64(m.NumParams()) * 4
	mc := spec.Config.Model
	N := int64(spec.Config.Train.Batch * mc.Seq)
	D, F, H, L, V := int64(mc.Dim), int64(mc.FFN), int64(mc.Heads), int64(mc.Layers), int64(mc.Vocab)
	acts := 4 * (L*(8*N*D+3*N*F+2*N+N*H) + 2*N*D + N + N*V)
	// 2 goroutines split the batch of 2 in two: a replica's gradients besides the model's
	if want := (Memory{p, 2 * p, p, acts}); r.Need != want || r.Params != m.NumParams() {
		t.Fatalf("need %+v, want %+v (params %d)", r.Need, want, m.NumParams())
	}
	if d := math.Abs(r.Loss - math.Log(float64(mc.Vocab))); d > 0.5 {
		t.Fatalf("loss %g, want about ln(%d) = %g", r.Loss, mc.Vocab, math.Log(float64(mc.Vocab)))
	}
	if runtime.GOOS == "linux" && r.PeakRSS <= 0 {
		t.Fatalf("peak RSS %d", r.PeakRSS)
	}
}

// TestSummarize checks the report's arithmetic on a hand-made result, every step right after a
// burst (Options.Group 1).
func TestSummarize(t *testing.T) {
	r := Result{Batch: 2, Seq: 50, FLOPsPerToken: 1e9, // 100 tokens, 100 GFLOP per step
		Steps: []Step{
			{Ns: 1e9, Forward: 3e8, Backward: 3e8, WeightGrad: 2e8, Optimizer: 1e8, Sgemm: Burst{Mean: 200, Best: 250}, AfterBurst: true},
			{Ns: 2e9, Forward: 6e8, Backward: 6e8, WeightGrad: 4e8, Optimizer: 2e8, Sgemm: Burst{Mean: 100, Best: 120}, AfterBurst: true},
			{Ns: 5e8, Forward: 1e8, Backward: 1e8, WeightGrad: 1e8, Optimizer: 1e8, Sgemm: Burst{Mean: 300, Best: 310}, AfterBurst: true},
		},
		SgemmAfter: Burst{Mean: 200, Best: 200},
		Threaded:   [2]Burst{{Mean: 150, Best: 400}, {Mean: 150, Best: 160}},
	}
	// Step i runs at 100/Ns GFLOP/s against max((mean_i + mean_{i+1})/2, threaded mean 150).
	wantMFU := []float64{100 * 100 / 150.0, 100 * 50 / 200.0, 100 * 200 / 250.0}
	for i, w := range wantMFU {
		if got := r.MFU(i); math.Abs(got-w) > 1e-9 {
			t.Fatalf("MFU(%d) = %g, want %g", i, got, w)
		}
	}
	s := Summarize(r)
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*(1+math.Abs(want)) {
			t.Fatalf("%s = %g, want %g", name, got, want)
		}
	}
	near("median ms", s.MedianStepMs, 1000)
	near("best ms", s.BestStepMs, 500)
	near("tokens/s", s.TokensPerS, 100)
	near("best tokens/s", s.BestTokensPerS, 200)
	near("model GFLOP/s", s.ModelGFLOPS, 100)
	near("sgemm", s.Sgemm, 200) // median of 150, 200, 250
	near("best sgemm", s.BestSgemm, 400)
	near("MFU", s.MFU, wantMFU[0])
	near("best MFU", s.BestMFU, 100*200/400.0)
	near("forward", s.Forward, 1000/3.0)
	near("optimizer", s.Optimizer, 400/3.0)
	near("other", s.Other, (3500-1000-1000-700-400)/3.0)
	near("after a burst", s.AfterBurstMs, 0) // none apart: every step is one

	// PyTorch: 100 tokens per step (batch 2 × seq 50), median steps of 1 s and 0.5 s.
	tr := func(med, best, sg float64) TorchRun {
		return TorchRun{TorchResult{Version: "x", Batch: 2, Seq: 50, MsPerStepMed: med, MsPerStepMin: best},
			[2]Burst{{Mean: sg}, {Mean: sg}}}
	}
	ts := SummarizeTorch(1e9, []TorchRun{tr(1000, 800, 200), tr(500, 400, 250)})
	near("torch tokens/s", ts.TokensPerS, 150) // median of 100 and 200
	near("torch best", ts.BestTokensPerS, 250) // 100 tokens in 0.4 s
	near("torch MFU", ts.MFU, (50+80)/2.0)     // 100/200 and 200/250 GFLOP/s
	if SummarizeTorch(1e9, nil) != nil {
		t.Fatal("SummarizeTorch of no runs is not nil")
	}
}

// TestSummarizeGroups checks that steps in groups are measured against the bursts around their
// group, and that the steps right after a burst are summarised apart from those after a step.
func TestSummarizeGroups(t *testing.T) {
	step := func(ns int64, sg float64, first bool) Step {
		return Step{Ns: ns, Forward: ns / 2, Backward: ns / 4, Sgemm: Burst{Mean: sg, Best: sg}, AfterBurst: first}
	}
	r := Result{Batch: 2, Seq: 50, FLOPsPerToken: 1e9, // 100 GFLOP per step
		Steps:      []Step{step(3e9, 100, true), step(1e9, 100, false), step(2e9, 100, false), step(4e9, 300, true), step(5e8, 300, false)},
		SgemmAfter: Burst{Mean: 200, Best: 200},
		Threaded:   [2]Burst{{Mean: 150, Best: 150}, {Mean: 150, Best: 150}},
	}
	// Steps 0–2 between the bursts of 100 and 300, steps 3–4 between 300 and the last, 200.
	for i, want := range []float64{200, 200, 200, 250, 250} {
		if got := r.Sgemm(i); got != want {
			t.Fatalf("Sgemm(%d) = %g, want %g", i, got, want)
		}
	}
	s := Summarize(r)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"median ms", s.MedianStepMs, 1000}, // of 1000, 2000, 500: the steps after a step
		{"best ms", s.BestStepMs, 500},
		{"after a burst", s.AfterBurstMs, 3500}, // of 3000 and 4000
		{"MFU", s.MFU, 50},                      // of 100/200, 50/200, 200/250 GFLOP/s
		{"sgemm", s.Sgemm, 200},                 // of 200, 200, 250
		{"forward", s.Forward, 3500 / 6.0},      // mean of 500, 1000, 250 ms
	} {
		if math.Abs(c.got-c.want) > 1e-9*(1+math.Abs(c.want)) {
			t.Fatalf("%s = %g, want %g", c.name, c.got, c.want)
		}
	}
}

// TestReportAndBenchstat runs Run in this process on the tiny config and checks the report's
// tables and that every benchmark line has the format benchstat reads.
func TestReportAndBenchstat(t *testing.T) {
	out := filepath.Join(t.TempDir(), "runs", "bench.txt") // the folder is created
	var w bytes.Buffer
	err := Run(&w, RunOptions{Specs: []Spec{tinySpec()}, Benchstat: out,
		Options: Options{Threads: 2, Steps: 2, Warmup: 1, PeakDur: 5 * time.Millisecond, PeakN: 128}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MFU %", "tokens/s", "forward", "weight-grad", "optimizer", "peak RSS", "RSS/need", "tiny"} {
		if !strings.Contains(w.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, w.String())
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^Benchmark(Train|TrainAfterBurst)/config=tiny-2 \t1\t\d+ ns/op(\t[-+0-9.eE]+ [A-Za-z_/%]+)+$`)
	n, cold := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			if !line.MatchString(l) {
				t.Fatalf("bad benchmark line %q", l)
			}
			if strings.HasPrefix(l, "BenchmarkTrainAfterBurst/") {
				cold++
			}
			for _, unit := range []string{" tokens/s", " mfu_pct", " sgemm_GFLOP/s", " fwd_ms/op", " optim_ms/op", " peak_rss_MiB"} {
				if !strings.Contains(l, unit) {
					t.Fatalf("line %q lacks %q", l, unit)
				}
			}
			n++
		}
	}
	// One group of 2 steps: the first right after the burst, apart; the second after it.
	if n != 2 || cold != 1 || !strings.Contains(string(b), "goos: ") {
		t.Fatalf("%d benchmark lines, %d after a burst (want 2, 1):\n%s", n, cold, b)
	}
}

// TestRunTorch reads the reference's JSON lines from a stand-in script and reports a config it
// did not print as an error.
func TestRunTorch(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "run.sh")
	body := `#!/usr/bin/env bash
echo "installing nothing" >&2
for c in $CONFIGS; do
  [ "$c" = missing ] && continue
  echo "{\"config\": \"$c\", \"threads\": $1, \"batch\": 4, \"seq\": 256, \"tokens_per_s\": 1000.0, \"ms_per_step\": 1024.0, \"ms_per_step_min\": 512.0, \"ms_per_step_median\": 1000.0, \"torch_version\": \"1.13\", \"steps\": 3}"
done
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := RunTorch(script, 2, []string{"default"})
	if err != nil {
		t.Fatal(err)
	}
	r := res["default"]
	if r.Threads != 2 || r.Version != "1.13" || math.Abs(r.MedianTokensPerS()-1024) > 1e-9 || math.Abs(r.BestTokensPerS()-2000) > 1e-9 {
		t.Fatalf("parsed %+v (median %g, best %g tokens/s)", r, r.MedianTokensPerS(), r.BestTokensPerS())
	}
	if _, err := RunTorch(script, 2, []string{"default", "missing"}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a config without a result: err = %v", err)
	}
	if _, err := RunTorch(filepath.Join(dir, "nope.sh"), 2, []string{"default"}); err == nil {
		t.Fatal("no error for a missing script")
	}
}

// BenchmarkTrain times optimizer steps of the bench configs (go test -bench Train ./anert/bench),
// reporting tokens/s and MFU against an sgemm burst measured right after, as `make bench` does.
// It runs at GOMAXPROCS threads.
func BenchmarkTrain(b *testing.B) {
	for _, spec := range Specs() {
		b.Run("config="+spec.Name, func(b *testing.B) {
			w := runtime.GOMAXPROCS(0)
			rig, err := NewRig(spec.Config)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := rig.Step(); err != nil { // grow the buffers
				b.Fatal(err)
			}
			for b.Loop() {
				if _, _, err := rig.Step(); err != nil {
					b.Fatal(err)
				}
			}
			tps := float64(spec.Config.Train.Batch*spec.Config.Model.Seq) * float64(b.N) / b.Elapsed().Seconds()
			sg := newBurster(1024, w).parallel(300 * time.Millisecond)
			b.ReportMetric(tps, "tokens/s")
			b.ReportMetric(100*tps*rig.Model.FLOPsPerToken()/1e9/sg.Mean, "mfu_pct")
		})
	}
}

// TestLoopProfileTiny runs Run with ProfileLoops on the tiny config: the profile counts exactly the
// loops a step runs (par.Loops), names the model's op functions (never the team's loop helpers)
// as sites, accounts busy time within each loop's goroutine time, finds the model's GEMMs in BLAS,
// and its table goes to the report and beside the benchstat lines.
func TestLoopProfileTiny(t *testing.T) {
	restore, err := model.WithTune("split=0") // the step's own loops (split, its 2 goroutines would run one loop of whole shares)
	if err != nil {
		t.Fatal(err)
	}
	defer restore()
	out := filepath.Join(t.TempDir(), "bench.txt")
	var w bytes.Buffer
	trace := filepath.Join(t.TempDir(), "tl")
	o := Options{Threads: 2, Steps: 1, Warmup: 1, PeakDur: 5 * time.Millisecond, PeakN: 128, ProfileLoops: true, Trace: trace}
	if a := o.ChildArgs(); !slices.Contains(a, "--profile-loops") || !slices.Contains(a, trace) {
		t.Fatalf("child args %q lack --profile-loops or --trace", a)
	}
	r, err := Measure(tinySpec(), o)
	if err != nil {
		t.Fatal(err)
	}
	lp := r.Loops
	if lp == nil || lp.Steps != profileSteps || lp.StepNs <= 0 || !(lp.Single > 0) {
		t.Fatalf("profile %+v", lp)
	}
	var loops int64
	var flops int64
	sites := map[string]bool{}
	for _, s := range lp.Sites {
		loops, flops = loops+s.Loops, flops+s.BLAS.FLOPs
		name, _, _ := strings.Cut(s.Name, ":")
		sites[name] = true
		if strings.Contains(s.Name, "(*team)") || strings.Contains(s.Name, "par.") || s.Busy > s.Capacity || s.W < 1 || s.W > 2 {
			t.Fatalf("site %+v", s)
		}
	}
	if want := int64(profileSteps) * r.Steps[0].Loops; loops != want {
		t.Fatalf("%d loops profiled, want %d (%d a step)", loops, want, r.Steps[0].Loops)
	}
	for _, want := range []string{"model.(*CPU).FFNForward", "model.(*CPU).AttnBackward", "model.classifierForward"} {
		if !sites[want] {
			t.Fatalf("no site %s in %v", want, sites)
		}
	}
	if flops <= 0 || lp.Outside.Calls != 0 {
		t.Fatalf("BLAS FLOPs in loops %d, calls outside %d", flops, lp.Outside.Calls)
	}
	// The timeline (Options.Trace): a line per loop profiled, a part span per part.
	tl, err := os.ReadFile(traceFile(trace, "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	var nloops, nparts, wantParts int64
	for _, line := range strings.Split(string(tl), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 7 && f[0] == "loop":
			nloops++
			n, _ := strconv.Atoi(f[4])
			wantParts += int64(n)
		case len(f) == 8 && f[0] == "span" && f[3] == "part":
			nparts++
		}
	}
	if nloops != loops || nparts != wantParts || nparts == 0 {
		t.Fatalf("timeline: %d loops (profiled %d), %d part spans (its loops have %d parts)", nloops, loops, nparts, wantParts)
	}
	// timeline.py reads what WriteTimeline writes: a row per site and the totals.
	if py, err := exec.LookPath("python3"); err == nil {
		out, err := exec.Command(py, "timeline.py", traceFile(trace, "tiny")).CombinedOutput()
		if err != nil {
			t.Fatalf("timeline.py: %v\n%s", err, out)
		}
		for _, want := range []string{"model.(*CPU).FFNForward:", "(these sites)", "busy%", "late%", "tail%", "idle%", "gap µs", "adj%", "moved%"} {
			if !strings.Contains(string(out), want) {
				t.Fatalf("timeline.py's summary lacks %q:\n%s", want, out)
			}
		}
	}
	err = Run(&w, RunOptions{Specs: []Spec{tinySpec()}, Benchstat: out, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(LoopsFile(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{w.String(), string(b)} {
		for _, want := range []string{"loops of a tiny step", "busy %", "filled %", "idle %", "÷ alone", "FFNForward", "total: step", "outside loops"} {
			if !strings.Contains(s, want) {
				t.Fatalf("loop profile lacks %q:\n%s", want, s)
			}
		}
	}
}

// TestOptionsCheck: a negative setting is an error naming its flag, before anything is measured.
func TestOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		flag string
	}{
		{Options{Group: -1}, "--group"}, {Options{Steps: -2}, "--steps"}, {Options{Warmup: -1}, "--warmup"},
		{Options{Threads: -4}, "--threads"}, {Options{PeakDur: -time.Second}, "--peak-dur"}, {Options{PeakN: -8}, "--peak-n"},
	} {
		if _, err := Measure(tinySpec(), tc.o); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("Measure(%+v): %v, want an error naming %s", tc.o, err, tc.flag)
		}
	}
	if err := Run(io.Discard, RunOptions{Specs: []Spec{tinySpec()}, Rounds: -1}); err == nil || !strings.Contains(err.Error(), "--rounds") {
		t.Errorf("Run with Rounds -1: %v, want an error naming --rounds", err)
	}
	if err := (Options{}).Check(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
}

// TestBatch: --batch measures a config at another number of sequences a step (the tokens a step,
// the memory need and the FLOPs follow), passes to a child process and back as the same flag, and
// bad values fail naming the entry: not config=n, not positive, a config not measured, with --torch.
func TestBatch(t *testing.T) {
	spec := tinySpec()
	o := Options{Threads: 2, Steps: 1, Group: 1, Warmup: 1, PeakDur: 5 * time.Millisecond, PeakN: 128}
	base, err := Measure(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Batch = map[string]int{"tiny": 3 * spec.Config.Train.Batch}
	r, err := Measure(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Batch != 3*spec.Config.Train.Batch || r.Tokens() != 3*base.Tokens() ||
		r.Need.Activations != 3*base.Need.Activations || r.Need.Weights != base.Need.Weights {
		t.Fatalf("batch %d: %d tokens (want %d), activations %d (want %d), weights %d (want %d)", r.Batch, r.Tokens(), 3*base.Tokens(),
			r.Need.Activations, 3*base.Need.Activations, r.Need.Weights, base.Need.Weights)
	}
	// On 2 goroutines a batch they divide runs split in two: a replica's gradients count.
	if base.Need.Grads != 2*base.Need.Weights || r.Need.Grads != 2*r.Need.Weights {
		t.Errorf("split steps: gradients %d and %d, want twice the weights' %d", base.Need.Grads, r.Need.Grads, base.Need.Weights)
	}
	if got := o.ChildArgs(); !slices.Contains(got, "--batch") || !slices.Contains(got, "tiny=6") {
		t.Errorf("child flags %q lack --batch tiny=6", got)
	}
	m, err := ParseBatch(FormatBatch(map[string]int{"default": 8, "original": 2}))
	if err != nil || !maps.Equal(m, map[string]int{"default": 8, "original": 2}) {
		t.Errorf("ParseBatch(FormatBatch(…)) = %v, %v", m, err)
	}
	for _, bad := range []string{"default", "default=0", "default=-1", "=4", "default=x"} {
		if _, err := ParseBatch(bad); err == nil || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("ParseBatch(%q): %v, want an error naming it", bad, err)
		}
	}
	for _, tc := range []struct {
		ro   RunOptions
		want string
	}{
		{RunOptions{Specs: []Spec{spec}, Options: Options{Batch: map[string]int{"tiny": -1}}}, "--batch tiny"},
		{RunOptions{Specs: []Spec{spec}, Options: Options{Batch: map[string]int{"tinny": 2}}}, `"tinny", not a config measured`},
		{RunOptions{Specs: []Spec{spec}, Options: Options{Batch: map[string]int{"tiny": 2}}, Torch: true}, "--batch with --torch"},
	} {
		if err := Run(io.Discard, tc.ro); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(batch %v, torch %v): %v, want an error containing %q", tc.ro.Batch, tc.ro.Torch, err, tc.want)
		}
	}
}

// TestAlt: with Options.Alt every other group of steps runs with the alternative scheduling (twice
// the steps), the process's own comes back afterwards, the report has a row for each and the
// groups' comparison, and a bad alternative fails before any step, naming its key.
func TestAlt(t *testing.T) {
	before := model.TuneString()
	o := Options{Threads: 2, Steps: 4, Group: 2, Warmup: 1, PeakDur: 5 * time.Millisecond, PeakN: 128, Alt: "ablock=8", ProfileLoops: true}
	r, err := Measure(tinySpec(), o)
	if err != nil {
		t.Fatal(err)
	}
	var alts []bool
	for _, st := range r.Steps {
		alts = append(alts, st.Alt)
	}
	if want := []bool{false, false, true, true, false, false, true, true}; !slices.Equal(alts, want) {
		t.Fatalf("steps' Alt %v, want %v", alts, want)
	}
	if !strings.Contains(r.AltTune, "ablock=8") || strings.Contains(before, "ablock=8") || model.TuneString() != before {
		t.Fatalf("alternative %q; before %q, after %q", r.AltTune, before, model.TuneString())
	}
	if a, b := r.Variant(false), r.Variant(true); len(a.Steps) != 4 || len(b.Steps) != 4 || b.Name != "tiny+alt" ||
		a.Loops == nil || b.Loops != nil {
		t.Fatalf("variants: %d and %d steps, %q; loop profiles %v, %v", len(a.Steps), len(b.Steps), b.Name, a.Loops != nil, b.Loops != nil)
	}
	// The alternative's row counts the memory its scheduling needs: without the split (split=0),
	// one set of gradients where the 2-goroutine step keeps one a share.
	so := o
	so.Alt, so.ProfileLoops = "split=0", false
	rs, err := Measure(tinySpec(), so)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := rs.Variant(false).Need, rs.Variant(true).Need; a.Grads != 2*b.Grads || a.Weights != b.Weights {
		t.Errorf("memory need %+v, with split=0 %+v: want half the gradients", a, b)
	}
	var out bytes.Buffer
	if err := Run(&out, RunOptions{Specs: []Spec{tinySpec()}, Options: o}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tiny+alt", "A/B tiny, 2 groups with the alternative", "of 2 (sign test p = ", "alternative: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "loops of a tiny step"); n != 1 {
		t.Errorf("%d loop profiles in the report, want 1", n)
	}
	o.Alt = "ablock=8,nosuch=1"
	if _, err := Measure(tinySpec(), o); err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Fatalf("bad alternative: error %v", err)
	}
}

// TestSignTest: the two-sided sign test's p-values against the binomial sums by hand.
func TestSignTest(t *testing.T) {
	for _, tc := range []struct {
		k, n int
		p    float64
	}{
		{8, 8, 2.0 / 256}, {0, 8, 2.0 / 256}, {7, 8, 2 * 9.0 / 256}, {6, 8, 2 * 37.0 / 256},
		{2, 4, 1}, {4, 4, 2.0 / 16}, {0, 0, 1}, {1, 1, 1}, {10, 12, 2 * 79.0 / 4096},
	} {
		if got := signTest(tc.k, tc.n); math.Abs(got-tc.p) > 1e-12 {
			t.Errorf("signTest(%d, %d) = %g, want %g", tc.k, tc.n, got, tc.p)
		}
	}
}
