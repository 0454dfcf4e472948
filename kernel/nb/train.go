package nb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/data/prep"
	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
)

// NotebookLineage is the lineage Train records runs in unless told otherwise, so that runs
// started by hand from a notebook do not compete with the experiments of lineage "main".
const NotebookLineage = "notebook"

// Smoke-mode sizes (see the package comment).
const (
	smokeBudget = 12 * time.Second
	smokeVocab  = 512
	smokeTokens = 300_000
)

// trainer trains one run, in the run's child process; tests replace it with
// harnesstest.FakeRunner (before init runs: see nb_test.go).
var trainer harness.Runner = train.Run

// A notebook's runs — the script's evaluation, its hooks and the training — happen in a child
// process: the cell's own program, started again with harness.EnvChild set, becomes that child
// here, before anything else of it runs. Whatever a script does there (a panic in a goroutine,
// unbounded recursion, an allocation past the run's memory limit) ends the child, and the
// notebook records it as the run's status and goes on.
func init() {
	harness.ChildMain(func(ctx context.Context, c config.Config, o train.Options) (train.Result, error) {
		return trainer(ctx, c, o)
	})
}

// Option adjusts Train and RunScript.
type Option func(*runOptions)

type runOptions struct {
	lineage string
	budget  time.Duration
	steps   int
	message string
	// limits of the script's evaluation and of one hook call (0: the harness's 5 s)
	scriptTimeout, hookTimeout time.Duration
}

// Lineage records the runs in the named lineage.
func Lineage(name string) Option { return func(o *runOptions) { o.lineage = name } }

// Budget overrides the wall-clock budget of every run.
func Budget(d time.Duration) Option { return func(o *runOptions) { o.budget = d } }

// Steps overrides the optimizer-update limit of every run.
func Steps(n int) Option { return func(o *runOptions) { o.steps = n } }

// Timeouts bound evaluating the script (its top level, then Experiment()/Sweep()) and one call
// of a hook, as `anelab run --script-timeout --hook-timeout` do (0 keeps the default, 5 s).
func Timeouts(script, hook time.Duration) Option {
	return func(o *runOptions) { o.scriptTimeout, o.hookTimeout = script, hook }
}

// Message is prepended to the descriptions of a script's runs (as `anelab run -m`).
func Message(m string) Option { return func(o *runOptions) { o.message = m } }

// Train trains cfg as one run of the lab, with a live view while it runs (step, loss, tokens/s,
// time left, a small loss chart), records it in the ledger (lineage "notebook" unless Lineage
// says otherwise) and leaves the loss curve and a summary in the notebook. The run folder
// lab/runs/<id>/ keeps its config, curve, log and, if kept, its checkpoint.
//
//	cfg := config.Default()
//	cfg.Train.Budget = lab.Minutes(1)
//	nb.Train(cfg, "default model, one minute")
//
// A cell that cannot train (no data, an invalid config) stops with the error; a run that
// diverges or crashes is recorded and shown as such.
func Train(cfg config.Config, description string, opts ...Option) ledger.Run {
	runs, err := trainOrRun(context.Background(), "", &cfg, description, opts)
	check(err)
	return runs[0]
}

// RunScript runs an experiment script (path relative to the project root) as `anelab run`
// does: every spec of the script becomes a run of the ledger, each with a live view and its
// loss curve and summary left in the notebook.
//
//	nb.RunScript("scripts/baseline.go", nb.Budget(time.Minute))
func RunScript(path string, opts ...Option) []ledger.Run {
	runs, err := trainOrRun(context.Background(), path, nil, "", opts)
	check(err)
	return runs
}

// noData is an error that only means the lab has nothing to show yet (no such run, no kept
// run): display functions show it as a note and the cell goes on.
type noData struct{ error }

func (e noData) Unwrap() error { return e.error }

// report shows a noData error as a note and stops the cell on any other error (see check).
func report(err error) {
	var nd noData
	if errors.As(err, &nd) {
		Note("%v", err)
		return
	}
	check(err)
}

// check stops the cell on err: the error is shown, and the program exits with status 1, which
// GoNB reports as the cell's failure (so a headless run of the notebook fails too).
func check(err error) {
	if err == nil {
		return
	}
	showError(err)
	fmt.Fprintln(os.Stderr, "anelab:", err)
	os.Exit(1)
}

func trainOrRun(ctx context.Context, script string, cfg *config.Config, description string, opts []Option) ([]ledger.Run, error) {
	o := runOptions{}
	for _, f := range opts {
		f(&o)
	}
	if cfg != nil && o.lineage == "" {
		o.lineage = NotebookLineage
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	dataDir, err := ensureData()
	if err != nil {
		return nil, err
	}
	var log io.Writer = os.Stdout
	var logBuf bytes.Buffer
	if out.Notebook() {
		log = &logBuf // the live view replaces the step lines; runs/<id>/log.txt keeps them
	}
	child, err := harness.SelfChild()
	if err != nil {
		return nil, err
	}
	var current atomic.Pointer[live] // the live view of the run in progress
	hopt := harness.Options{Lab: LabDir(), DataDir: dataDir, Child: child, Out: log, Lineage: o.lineage,
		Budget: o.budget, Steps: o.steps, ScriptTimeout: o.scriptTimeout, HookTimeout: o.hookTimeout, OnEvent: func(e train.Event) {
			if l := current.Load(); l != nil {
				l.event(e)
			}
		}}
	if Smoke() {
		hopt.Budget, hopt.Steps = 0, 0 // smokeConfig sets them
	}
	h, err := harness.New(hopt)
	if err != nil {
		return nil, err
	}
	defer h.Close()

	var jobs []harness.Job
	if cfg != nil {
		now := time.Now()
		jobs = []harness.Job{{ID: ledger.NewID(now), Script: "(notebook)", Index: 0, Count: 1, Description: description,
			Lineage: o.lineage, Config: *cfg, Submitted: now.UTC()}}
	} else {
		if !filepath.IsAbs(script) {
			script = filepath.Join(Root(), script)
		}
		if _, err := os.Stat(script); err != nil {
			return nil, fmt.Errorf("experiment script: %w", err)
		}
		jobs = h.Submit(ctx, script, o.message)
	}
	if Smoke() {
		for i := range jobs {
			jobs[i].Config = smokeConfig(jobs[i].Config, dataDir)
		}
		Note("smoke test (%s=1): each run trains a tiny model for %v instead of the config's", EnvSmoke, smokeBudget)
	}

	var runs []ledger.Run
	for i, j := range jobs {
		if ctx.Err() != nil {
			Note("interrupted: %d of %d runs not started", len(jobs)-i, len(jobs))
			break
		}
		title := fmt.Sprintf("run %s", j.ID)
		if j.Description != "" {
			title += " — " + j.Description
		}
		l := newLive(title)
		current.Store(l)
		l.start()
		r, err := h.Execute(ctx, j)
		current.Store(nil)
		pts := l.snapshot()
		l.finish()
		if err != nil {
			return runs, err
		}
		showRun(r, pts)
		runs = append(runs, r)
	}
	return runs, nil
}

// snapshot is the curve so far.
func (l *live) snapshot() []train.Point {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]train.Point(nil), l.pts...)
}

// showRun leaves a run's summary and loss curve in the notebook.
func showRun(r ledger.Run, pts []train.Point) {
	if len(pts) < 2 {
		if c, err := Curve(r.ID); err == nil {
			pts = c
		}
	}
	if len(pts) > 1 {
		title := "run " + r.ID
		if r.Description != "" {
			title += ": " + r.Description
		}
		if png, err := lossPNG(title, []curveSeries{{Points: pts}}, 6, 3.2); err == nil {
			out.PNG(png, "loss-"+r.ID)
		}
	}
	h, t := runSummary(r)
	out.HTML(h, t)
	out.Sync()
}

// runSummary is a run's verdict and metrics as a small table.
func runSummary(r ledger.Run) (string, string) {
	type kv struct{ k, v string }
	verdict := r.Mark()
	switch {
	case r.Decision == ledger.Keep && r.PrevHead == "":
		verdict += " (first kept run of lineage " + r.Lineage + ")"
	case r.Decision == ledger.Keep:
		verdict += fmt.Sprintf(" (new best of lineage %s; was %s)", r.Lineage, Num(r.PrevBest))
	case r.PrevHead != "":
		verdict += fmt.Sprintf(" (lineage %s best stays %s, %s)", r.Lineage, Num(r.PrevBest), r.PrevHead)
	}
	rows := []kv{{"run", r.ID}, {"result", verdict}}
	if r.Status == ledger.StatusOK {
		rows = append(rows, kv{"val_loss", Num(r.ValLoss)}, kv{"val_bpb", Num(r.ValBPB)},
			kv{"train_loss", Num(r.TrainLoss)}, kv{"steps", Num(float64(r.Steps))},
			kv{"ms_per_step", Num(r.MsPerStep)}, kv{"wall_time_s", Num(r.WallTimeS)})
	}
	if r.Error != "" {
		rows = append(rows, kv{"error", r.Error})
	}
	rows = append(rows, kv{"folder", RunDir(r.ID)})
	var h, t bytes.Buffer
	h.WriteString(`<table style="border-collapse:collapse;font-size:90%">`)
	for _, x := range rows {
		fmt.Fprintf(&h, `<tr><td style="text-align:left;padding:1px 8px"><b>%s</b></td><td style="text-align:left;padding:1px 8px;white-space:pre-wrap">%s</td></tr>`,
			esc(x.k), esc(x.v))
		fmt.Fprintf(&t, "%-12s %s\n", x.k+":", x.v)
	}
	h.WriteString("</table>")
	return h.String(), t.String()
}

// ensureData returns the data folder, preparing the default synthetic corpus when the default
// folder is missing (a minute or two, once). In smoke mode the data is a small corpus under
// notebooks/out/data unless ANELAB_DATA names one.
func ensureData() (string, error) {
	dir := DataDir()
	vocab, tokens := prep.DefaultVocab, prep.DefaultTrainTokens
	if Smoke() && os.Getenv(EnvData) == "" {
		dir = filepath.Join(Root(), "notebooks", "out", "data")
		vocab, tokens = smokeVocab, smokeTokens
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		return dir, nil
	}
	if os.Getenv(EnvData) != "" && !Smoke() {
		return "", fmt.Errorf("%s=%s has no manifest.json: prepare it with `anelab data default --out %s`", EnvData, dir, dir)
	}
	Note("preparing the synthetic corpus in %s (once; vocab %d, %d train tokens)…", dir, vocab, tokens)
	var log bytes.Buffer
	if err := prep.PrepareDefault(dir, vocab, tokens, &log); err != nil {
		return "", fmt.Errorf("preparing data in %s: %w\n%s", dir, err, log.String())
	}
	return dir, nil
}

// smokeConfig shrinks c to a tiny model on the data's vocabulary with a short budget.
func smokeConfig(c config.Config, dataDir string) config.Config {
	t := config.Tiny()
	c.Model.Dim, c.Model.Layers, c.Model.Heads, c.Model.KVHeads, c.Model.FFN = 64, 2, 4, 0, 128
	c.Model.Seq = 64
	if m, err := data.ReadManifest(dataDir); err == nil {
		c.Model.Vocab = m.VocabSize
	}
	c.Train.Batch = 4
	c.Train.Budget = config.Duration(smokeBudget)
	// Wall-clock: a compute budget of 12 s buys this tiny model thousands of updates.
	c.Train.BudgetKind = "wall"
	c.Train.Steps = 0
	c.Train.EvalWindows = t.Train.EvalWindows
	c.Optim.Accum = 1
	if c.Optim.Horizon <= c.Optim.Warmup {
		c.Optim.Horizon = c.Optim.Warmup + 100
	}
	return c
}
