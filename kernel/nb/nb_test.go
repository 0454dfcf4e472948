package nb

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-gota/gota/dataframe"
	"github.com/go-gota/gota/series"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/harness/harnesstest"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/ledger"
)

// recorder is a notebook screen that keeps what it is sent.
type recorder struct {
	mu      sync.Mutex
	html    []string
	text    []string
	pngs    [][]byte
	updates []string // html of every Update, in order
}

func (r *recorder) HTML(h, t string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.html, r.text = append(r.html, h), append(r.text, t)
}
func (r *recorder) PNG(b []byte, _ string) { r.mu.Lock(); r.pngs = append(r.pngs, b); r.mu.Unlock() }
func (r *recorder) Update(_, h, _ string) {
	r.mu.Lock()
	r.updates = append(r.updates, h)
	r.mu.Unlock()
}
func (r *recorder) Sync()          {}
func (r *recorder) Notebook() bool { return true }

func (r *recorder) allHTML() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.html, "\n")
}

// record swaps the screen for a recorder for the test's duration.
func record(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	old := out
	out = r
	t.Cleanup(func() { out = old })
	return r
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// sweepScript records a baseline and three learning rates (the fake runner's val_loss is
// 2 + (log10 mean_lr + 3)² + 1/(1 + 0.05·steps) over the scheduled lrs: peak lr 1e-3 wins).
const sweepScript = `//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func Sweep() []lab.Spec {
	var specs []lab.Spec
	for _, lr := range []float64{3e-4, 1e-3, 1e-2, 1e-4} {
		c := lab.Tiny()
		c.Optim.LR = lr
		c.Train.Steps = 10
		specs = append(specs, lab.Spec{Description: "lr test", Config: c})
	}
	return specs
}
`

// fakeLab makes a lab with the sweep recorded by the fake runner, points ANELAB_LAB and
// ANELAB_DATA at it and returns the recorded runs.
func fakeLab(t *testing.T) []ledger.Run {
	t.Helper()
	dir := t.TempDir()
	labDir, dataDir := filepath.Join(dir, "lab"), filepath.Join(dir, "data")
	os.MkdirAll(dataDir, 0o755)
	os.WriteFile(filepath.Join(dataDir, "manifest.json"), []byte("{}"), 0o644)
	t.Setenv(EnvLab, labDir)
	t.Setenv(EnvData, dataDir)
	t.Setenv(EnvSmoke, "")
	script := filepath.Join(dir, "sweep.go")
	os.WriteFile(script, []byte(sweepScript), 0o644)
	h, err := harness.New(harness.Options{Lab: labDir, DataDir: dataDir, Runner: harnesstest.FakeRunner, Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	runs, err := h.RunScript(context.Background(), script, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 {
		t.Fatalf("%d runs recorded, want 4", len(runs))
	}
	return runs
}

func TestRunsFrame(t *testing.T) {
	runs := fakeLab(t)
	df := Runs()
	if df.Err != nil {
		t.Fatal(df.Err)
	}
	if df.Nrow() != len(runs) {
		t.Fatalf("%d rows, want %d", df.Nrow(), len(runs))
	}
	for _, c := range append([]string{"seq", "status", "train.budget_s", "model.compact", "backend"}, Brief...) {
		if !hasCol(df, c) {
			t.Errorf("no column %q", c)
		}
	}
	lrs, _ := floatCol(df, "optim.lr")
	losses, _ := floatCol(df, "val_loss")
	for i, r := range runs {
		if id := df.Col("id").Elem(i).String(); id != r.ID {
			t.Errorf("row %d id %s, want %s", i, id, r.ID)
		}
		want := []float64{3e-4, 1e-3, 1e-2, 1e-4}[i]
		if lrs[i] != want {
			t.Errorf("row %d optim.lr = %v, want %v", i, lrs[i], want)
		}
		if losses[i] != r.ValLoss {
			t.Errorf("row %d val_loss = %v, want the ledger's %v", i, losses[i], r.ValLoss)
		}
	}
	if got := df.Col("model.dim").Type(); got != series.Int {
		t.Errorf("model.dim has type %v, want int", got)
	}
}

func TestRunsFrameMetricsOfFailedRunsAreNaN(t *testing.T) {
	df := runsFrame([]ledger.Run{{ID: "a", Status: ledger.StatusOK, ValLoss: 2.5, Config: "{}"},
		{ID: "b", Status: ledger.StatusCrash, ValLoss: 0, Config: "not json"}})
	v, err := floatCol(df, "val_loss")
	if err != nil {
		t.Fatal(err)
	}
	if v[0] != 2.5 || !math.IsNaN(v[1]) {
		t.Errorf("val_loss = %v, want [2.5 NaN]", v)
	}
	sorted := SortBy(df, "val_loss")
	if sorted.Col("id").Elem(0).String() != "a" {
		t.Errorf("sorting by val_loss puts %s first, want the ok run a", sorted.Col("id").Elem(0))
	}
}

func TestResolve(t *testing.T) {
	runs := fakeLab(t)
	// Kept: the first (baseline, 3e-4) and the second (1e-3, lower loss); 1e-2 and 1e-4 lose.
	cases := []struct {
		name, want string
	}{
		{"best", runs[1].ID},
		{"best:main", runs[1].ID},
		{"baseline", runs[0].ID},
		{"last", runs[3].ID},
		{"last:*", runs[3].ID},
		{runs[2].ID, runs[2].ID},
		{runs[2].ID[len(runs[2].ID)-6:], runs[2].ID},
	}
	for _, c := range cases {
		r, err := Get(c.name)
		if err != nil {
			t.Errorf("Get(%q): %v", c.name, err)
			continue
		}
		if r.ID != c.want {
			t.Errorf("Get(%q) = %s, want %s", c.name, r.ID, c.want)
		}
	}
	for _, name := range []string{"best:nosuch", "nosuchrun", ""} {
		_, err := Get(name)
		var nd noData
		if err == nil || !asNoData(err, &nd) {
			t.Errorf("Get(%q) = %v, want a noData error", name, err)
		}
	}
	if _, err := Get("r"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Get(\"r\") = %v, want ambiguous", err)
	}
}

func asNoData(err error, nd *noData) bool {
	x, ok := err.(noData)
	if ok {
		*nd = x
	}
	return ok
}

func TestShowFormatsNumbersAndFilters(t *testing.T) {
	runs := fakeLab(t)
	rec := record(t)
	df := Where(Runs(), "optim.lr", "<", 5e-4)
	Show(SortBy(df, "-optim.lr"), "optim.lr", "val_loss")
	h := rec.allHTML()
	i3, i1 := strings.Index(h, ">0.0003<"), strings.Index(h, ">0.0001<")
	if i3 < 0 || i1 < 0 || i3 > i1 {
		t.Errorf("want rows lr 0.0003 then 0.0001 (sorted descending), got %s", h)
	}
	if strings.Contains(h, "0.000300") || strings.Contains(h, ">0.001<") {
		t.Errorf("table shows %%f formatting or an unfiltered row: %s", h)
	}
	if !strings.Contains(h, "<table") || !strings.Contains(h, "2 row(s)") {
		t.Errorf("not a 2-row HTML table: %s", h)
	}
	if want := Num(runs[0].ValLoss); !strings.Contains(h, ">"+want+"<") {
		t.Errorf("val_loss %s missing: %s", want, h)
	}
}

func TestTableErrors(t *testing.T) {
	df := dataframe.New(series.New([]float64{1}, series.Float, "x"))
	for _, c := range []struct {
		df   dataframe.DataFrame
		cols []string
		want string
	}{
		{df, []string{"y"}, `no column "y"`},
		{Where(df, "y", "==", 1), nil, `no column "y"`},
		{Where(df, "x", "~", 1), nil, "operator"},
	} {
		h, txt := TableHTML(c.df, c.cols...)
		if !strings.Contains(txt, c.want) || !strings.Contains(h, "no column") && !strings.Contains(h, "operator") {
			t.Errorf("TableHTML = %q, want it to say %q", txt, c.want)
		}
	}
}

func TestDiffConfigs(t *testing.T) {
	a := config.Default()
	a.Optim.LR = 3e-4
	b := a
	b.Optim.LR = 6e-4
	b.Model.Layers = 8
	b.Train.Budget = lab.Minutes(1)
	got := DiffConfigs(a, b)
	want := []FieldChange{{"model.layers", 6, 8}, {"optim.lr", 3e-4, 6e-4}, {"train.budget_s", 300.0, 60.0}}
	if len(got) != len(want) {
		t.Fatalf("DiffConfigs = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d = %v, want %v", i, got[i], want[i])
		}
	}
	if d := DiffConfigs(a, a); len(d) != 0 {
		t.Errorf("DiffConfigs(a, a) = %v, want none", d)
	}
}

func TestDiffShowsMetricsAndConfig(t *testing.T) {
	runs := fakeLab(t)
	rec := record(t)
	Diff("baseline", "best")
	h := rec.allHTML()
	for _, want := range []string{runs[0].ID, runs[1].ID, "optim.lr", ">0.0003<", ">0.001<",
		Change(3e-4, 1e-3), Change(runs[0].ValLoss, runs[1].ValLoss)} {
		if !strings.Contains(h, want) {
			t.Errorf("diff does not show %q:\n%s", want, h)
		}
	}
}

func TestCurvesAndHyperParam(t *testing.T) {
	runs := fakeLab(t)
	rec := record(t)
	Curves("baseline", "best")
	if len(rec.pngs) != 1 || !bytes.HasPrefix(rec.pngs[0], pngMagic) {
		t.Fatalf("Curves sent %d images, want 1 PNG", len(rec.pngs))
	}
	HyperParam(Runs(), "optim.lr")
	if len(rec.pngs) != 2 || !bytes.HasPrefix(rec.pngs[1], pngMagic) {
		t.Fatalf("HyperParam sent %d images in all, want 2 PNGs", len(rec.pngs))
	}
	h := rec.allHTML()
	// Best value: lr 1e-3 (the fake runner's optimum).
	if want := "lowest val_loss " + Num(runs[1].ValLoss) + " at optim.lr = 0.001"; !strings.Contains(h, want) {
		t.Errorf("want %q in %s", want, h)
	}
	Progress("main")
	if len(rec.pngs) != 3 {
		t.Errorf("Progress sent no image")
	}
}

func TestCurveFile(t *testing.T) {
	runs := fakeLab(t)
	pts, err := Curve(runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 10 || pts[0].Step != 0 && pts[0].Step != 1 {
		t.Errorf("curve has %d points starting at step %d, want 10 points", len(pts), pts[0].Step)
	}
	for _, p := range pts {
		if math.Abs(p.LR-3e-4) > 3e-4 { // the schedule never exceeds the peak
			t.Errorf("point %+v: lr above the peak 3e-4", p)
		}
	}
}

func TestProgressMath(t *testing.T) {
	cases := []struct {
		e          train.Event
		frac, left float64
	}{
		{train.Event{Point: train.Point{Step: 10, TimeS: 15}, BudgetS: 60}, 0.25, 45},
		{train.Event{Point: train.Point{Step: 50, TimeS: 10}, MaxSteps: 200}, 0.25, 30},
		// Both limits: the nearer one wins (steps: 20 s left; budget: 50 s left).
		{train.Event{Point: train.Point{Step: 100, TimeS: 10}, BudgetS: 60, MaxSteps: 300}, 1.0 / 3, 20},
		{train.Event{Point: train.Point{Step: 5, TimeS: 70}, BudgetS: 60}, 1, 0},
	}
	for _, c := range cases {
		f, l := progress(c.e)
		if math.Abs(f-c.frac) > 1e-12 || math.Abs(l-c.left) > 1e-12 {
			t.Errorf("progress(%+v) = %v, %v; want %v, %v", c.e, f, l, c.frac, c.left)
		}
	}
	f, l := progress(train.Event{Point: train.Point{Step: 3, TimeS: 1}})
	if !math.IsNaN(f) || !math.IsNaN(l) {
		t.Errorf("no limits: progress = %v, %v; want NaN, NaN", f, l)
	}
}

func TestLiveView(t *testing.T) {
	rec := record(t)
	l := newLive("run x")
	l.event(train.Event{Point: train.Point{Step: 1, Loss: 8.3, LR: 3e-4, TimeS: 1}, BudgetS: 60, TokensPerS: 1000})
	l.event(train.Event{Point: train.Point{Step: 2, Loss: math.NaN(), TimeS: 2}, BudgetS: 60})
	l.event(train.Event{Point: train.Point{Step: 3, Loss: 7.1, LR: 3e-4, TimeS: 3}, BudgetS: 60, TokensPerS: 1000})
	if n := len(l.snapshot()); n != 2 {
		t.Errorf("the curve keeps %d points, want 2 (the NaN loss skipped)", n)
	}
	l.render()
	l.render() // nothing new: no second update
	if len(rec.updates) != 1 {
		t.Fatalf("%d updates, want 1", len(rec.updates))
	}
	u := rec.updates[0]
	for _, want := range []string{"step 3", "loss 7.1", "lr 0.0003", "1000 tok/s", "57s left", `<progress value="50"`, "data:image/png;base64,"} {
		if !strings.Contains(u, want) {
			t.Errorf("live block lacks %q: %s", want, u)
		}
	}
	l.finish()
	if last := rec.updates[len(rec.updates)-1]; last != "" {
		t.Errorf("finish left %q, want the block cleared", last)
	}
}

// envFakeTrainer makes a run's child process — this test binary, served by nb's init — train
// with the fake runner.
const envFakeTrainer = "ANELAB_NB_TEST_FAKE"

// Package variables are initialised before any init function runs, so the child that nb's init
// serves already has the fake trainer.
var _ = func() bool {
	if os.Getenv(envFakeTrainer) == "1" {
		trainer = harnesstest.FakeRunner
	}
	return true
}()

func TestTrainRecordsAndShows(t *testing.T) {
	fakeLab(t)
	t.Setenv(envFakeTrainer, "1")
	rec := record(t)
	cfg := lab.Tiny()
	cfg.Optim.LR = 1e-3
	r := Train(cfg, "from a test")
	if r.Lineage != NotebookLineage || r.Status != ledger.StatusOK || r.Decision != ledger.Keep {
		t.Errorf("run = %s/%s/%s, want notebook/ok/keep", r.Lineage, r.Status, r.Decision)
	}
	if len(rec.pngs) != 1 || !bytes.HasPrefix(rec.pngs[0], pngMagic) {
		t.Errorf("%d images, want the loss curve", len(rec.pngs))
	}
	if len(rec.updates) == 0 || rec.updates[len(rec.updates)-1] != "" {
		t.Errorf("the live block was not cleared at the end: %q", rec.updates)
	}
	if h := rec.allHTML(); !strings.Contains(h, r.ID) || !strings.Contains(h, "first kept run of lineage notebook") {
		t.Errorf("summary lacks the run id or verdict: %s", h)
	}
	got, err := Get("last:notebook")
	if err != nil || got.ID != r.ID || got.ValLoss != r.ValLoss || !(r.ValLoss > 2) {
		t.Errorf("the ledger's last notebook run = %v, %v; want %s", got.ID, err, r.ID)
	}
}

func TestConsoleScreen(t *testing.T) {
	t.Setenv(EnvLab, t.TempDir())
	var buf bytes.Buffer
	c := &console{w: &buf}
	c.HTML("<b>x</b>", "plain x")
	c.Update("id", "<i>1</i>", "step 1")
	c.Update("id", "<i>1</i>", "step 1") // unchanged: printed once
	c.Update("id", "", "")
	c.PNG(pngMagic, "loss r1")
	s := buf.String()
	if strings.Count(s, "step 1") != 1 || !strings.Contains(s, "plain x") {
		t.Errorf("console printed %q", s)
	}
	path := filepath.Join(LabDir(), "nb", "loss_r1.png")
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, pngMagic) {
		t.Errorf("chart not saved to %s: %v", path, err)
	}
}

func TestConstraintsAndKernels(t *testing.T) {
	rec := record(t)
	bad := config.Default().Model
	bad.Dim, bad.Heads = 100, 4 // dim not a multiple of 128, head dim 25 not a multiple of 32
	Constraints(Named{"default", config.Default().Model}, Named{"bad", bad})
	h := rec.allHTML()
	if !strings.Contains(h, "refused") || !strings.Contains(h, "Violations") {
		t.Errorf("the bad config is not refused: %s", h)
	}
	Kernels(config.Default().Model)
	if h := rec.allHTML(); !strings.Contains(h, "sdpaWoFwd") || !strings.Contains(h, "qkvBwd") {
		t.Errorf("kernel table lacks kernels: %s", h)
	}
}

func TestFindRoot(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+Module+"\n\ngo 1.26\n"), 0o644)
	sub := filepath.Join(dir, "notebooks", "out")
	os.MkdirAll(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "go.mod"), []byte("module example.com/other\n"), 0o644)
	if got, err := findRoot(sub); err != nil || got != dir {
		t.Errorf("findRoot = %q, %v; want %q", got, err, dir)
	}
	if _, err := findRoot(t.TempDir()); err == nil {
		t.Error("findRoot outside the module: no error")
	}
}

// The emulated kernels agree with the CPU to fp16 accuracy on a small config that passes the
// ANE rules (a few roundings of 2⁻¹¹ each: well under 1e-2), and a corrupted comparison would
// show errors of order 1.
func TestCompareKernels(t *testing.T) {
	m := config.Tiny().Model
	res, err := CompareKernels(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 18 {
		t.Fatalf("%d outputs measured, want 18 (Q K V A O, H1 H3 Gate Y, DGate DH1 DH3 DX2n, DA DV DQ DK DXn)", len(res))
	}
	for _, k := range res {
		if !(k.Rel < 1e-2) || !(k.Rel > 0) || !(k.MaxRel < 5e-2) {
			t.Errorf("%s %s: rel %g, max rel %g; want 0 < rel < 1e-2 and max rel < 5e-2", k.Kernel, k.Output, k.Rel, k.MaxRel)
		}
	}
}

// Issue 10: a notebook's runs happen in a child process, so a script that ends its process — a
// goroutine panic in Experiment or in a hook, unbounded recursion, 64 × 1 GiB — is recorded with
// its cause and the notebook (this test) goes on, and then runs a sweep as before.
func TestRunScriptSurvivesScriptDeaths(t *testing.T) {
	fakeLab(t)
	t.Setenv(envFakeTrainer, "1")
	record(t)
	long := Timeouts(2*time.Minute, 2*time.Minute) // a loaded machine must not turn a crash into a timeout
	for _, tc := range []struct{ script, status, want string }{
		{"gopanic_experiment.go", ledger.StatusCrash, "boom in Experiment's goroutine"},
		{"gopanic.go", ledger.StatusCrash, "boom in a hook's goroutine"},
		{"recurse_experiment.go", ledger.StatusCrash, "stack overflow while evaluating the script"},
		{"alloc.go", harness.StatusOOM, "exceeded its memory limit of 4096 MiB"},
	} {
		path, err := filepath.Abs(filepath.Join("..", "harness", "testdata", tc.script))
		if err != nil {
			t.Fatal(err)
		}
		runs := RunScript(path, long, Steps(20))
		if len(runs) != 1 || runs[0].Status != tc.status || !strings.Contains(runs[0].Error, tc.want) {
			for _, r := range runs {
				t.Logf("%s: %s %s", r.ID, r.Status, tail(r.Error, 600))
			}
			t.Errorf("%s: %d runs, want one %s mentioning %q", tc.script, len(runs), tc.status, tc.want)
		}
	}
	runs := RunScript(filepath.Join(filepath.Dir(LabDir()), "sweep.go"), long)
	if len(runs) != 4 || runs[1].Status != ledger.StatusOK {
		t.Errorf("after the deaths, the sweep recorded %d runs (second %v), want 4 ok", len(runs), runs)
	}
}
