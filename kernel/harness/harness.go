// Package harness runs experiments: it loads a script (kernel/script), turns each spec into a
// job with a run id, trains it for its budget through an injectable Runner (train.Run by
// default), classifies how it ended (ok, crash, diverged, invalid, timeout), leaves a run folder
// (config, result, loss curve, manifest, log, script copy, checkpoint of kept runs), and records
// it in the ledger, which decides keep or discard against the lineage's best. A run that trains
// is in the ledger as running from just before training until it is recorded.
package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/script"
)

// Runner trains one config; train.Run is the real one, tests pass a fake.
type Runner func(ctx context.Context, cfg config.Config, opts train.Options) (train.Result, error)

// Options configure a Harness.
type Options struct {
	Lab     string    // lab folder: ledger.db, results.tsv, runs/<id>/ ("" = "lab")
	DataDir string    // prepared data for the runner
	Runner  Runner    // nil: train.Run
	Out     io.Writer // console (nil: os.Stdout); each run's log also goes to runs/<id>/log.txt
	Lineage string    // the lineage lab.Best() reads and unnamed specs join ("" = "main")

	Budget  time.Duration // > 0: overrides every spec's Train.Budget
	Steps   int           // > 0: overrides every spec's Train.Steps
	Repeats int           // > 0: overrides every spec's Repeats (runs per spec, seeds Seed, Seed+1, …)

	ScriptTimeout time.Duration // evaluating a script and its Experiment()/Sweep() (0: 5s)
	HookTimeout   time.Duration // one call of a hook during training (0: 5s)
	Grace         time.Duration // how far a run may overrun its budget before it is stopped (0: 2m)
	Timeout       time.Duration // > 0: hard limit of one run, whatever its budget
	Abandon       time.Duration // after stopping a run, how long to wait for the runner to return (0: 30s)

	// Child, when set, is the command line of a child process that trains each job (`anelab
	// _child`): the supervisor (this harness) owns the ledger row, and whatever ends the child —
	// a panic in a script goroutine, a stack overflow, its memory limit, a signal — is recorded.
	// Empty: jobs train in this process (tests, notebooks).
	Child []string
	// ChildEnv is added to each child's environment (a queue worker's slot pins its GPU with
	// CUDA_VISIBLE_DEVICES).
	ChildEnv []string
	// Threads > 0 overrides every run's train.threads (a queue worker's threads per slot). Threads
	// change speed, not what is learned, so runs pool across thread counts (ConfigHash).
	Threads int

	Commit string // project commit for manifests ("" = ask git)
	Now    func() time.Time
}

// Harness runs scripts against one lab.
type Harness struct {
	opt    Options
	Ledger *ledger.Ledger

	once   sync.Once
	commit string
}

// New opens the lab's ledger.
func New(opt Options) (*Harness, error) {
	if opt.Lab == "" {
		opt.Lab = "lab"
	}
	if opt.Runner == nil {
		opt.Runner = train.Run
	}
	if opt.Out == nil {
		opt.Out = os.Stdout
	}
	if opt.Lineage == "" {
		opt.Lineage = lab.DefaultLineage
	}
	if opt.Grace <= 0 {
		opt.Grace = 2 * time.Minute
	}
	if opt.Abandon <= 0 {
		opt.Abandon = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := ledger.CheckLineage(opt.Lineage); err != nil {
		return nil, err
	}
	l, err := ledger.Open(opt.Lab)
	if err != nil {
		return nil, err
	}
	return &Harness{opt: opt, Ledger: l}, nil
}

// Close closes the ledger.
func (h *Harness) Close() error { return h.Ledger.Close() }

// RunScript submits the script at path (one job per spec) and executes the jobs in order. Every
// job becomes a ledger row, whatever its status; a script that fails before returning specs
// becomes one row. The error is for failures of the lab itself (ledger, file system).
func (h *Harness) RunScript(ctx context.Context, path, message string) ([]ledger.Run, error) {
	jobs := h.Submit(ctx, path, message)
	start := h.SnapshotHeads(ctx, h.opt.Lineage) // a sweep's specs are ranked against the head as it stood now
	var runs []ledger.Run
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			fmt.Fprintf(h.opt.Out, "anelab: interrupted; %d of %d specs not run\n", len(jobs)-i, len(jobs))
			break
		}
		r, err := h.Execute(ctx, j)
		if err != nil {
			return runs, err
		}
		runs = append(runs, r)
	}
	h.PrintRanking(ctx, h.opt.Out, h.opt.Lineage, start, jobs, runs)
	return runs, nil
}

// Submit loads the script and returns one job per spec, run ids assigned. A script that fails
// to load or to return specs gives a single job carrying the Failure.
func (h *Harness) Submit(ctx context.Context, path, message string) []Job {
	now := h.opt.Now()
	prog, err := script.Load(path, h.scriptOptions(ctx, h.opt.Out))
	var specs []lab.Spec
	if err == nil {
		specs, err = prog.Specs()
	}
	if err != nil {
		desc := message
		if desc == "" {
			desc = filepath.Base(path)
		}
		j := Job{ID: ledger.NewID(now), Script: path, Description: desc, Lineage: h.opt.Lineage,
			Submitted: now.UTC(), Failure: scriptFailure(err)}
		if src, rerr := os.ReadFile(path); rerr == nil {
			j.Source, j.ScriptHash = string(src), script.Hash(src)
		}
		return []Job{j}
	}
	var jobs []Job
	for i, s := range specs {
		if s.Lineage == "" {
			s.Lineage = h.opt.Lineage // an unnamed spec joins the harness's lineage
		}
		j := jobFromSpec(ledger.NewID(now), prog, s, i, len(specs), message, now)
		refuseUnserialisable(&j)
		jobs = append(jobs, repeatJobs(j, h.repeats(s), now)...)
	}
	return jobs
}

// refuseUnserialisable marks a job whose config cannot travel as JSON (a NaN or ±Inf, which no
// valid config holds) as invalid up front, so it becomes a row like any other refused spec and
// the rest of a sweep goes on.
func refuseUnserialisable(j *Job) {
	if _, err := json.Marshal(j.Config); err == nil {
		return
	}
	msg := "spec.Config cannot be written as JSON"
	if err := j.Config.Validate(); err != nil {
		msg = err.Error()
	}
	j.Failure, j.Config = &Failure{Status: ledger.StatusInvalid, Msg: msg}, config.Config{}
}

func (h *Harness) scriptOptions(ctx context.Context, out io.Writer) script.Options {
	return script.Options{
		Timeout: h.opt.ScriptTimeout,
		Lineage: h.opt.Lineage,
		Stdout:  out,
		BestOf: func(lineage string) (config.Config, bool) {
			r, ok, err := h.Ledger.Head(ctx, lineage)
			if err != nil || !ok {
				return config.Config{}, false
			}
			c, err := decodeConfig(r.Config)
			return c, err == nil
		},
		FromRun: func(id string) (config.Config, bool) {
			r, err := h.Ledger.Get(ctx, id)
			if err != nil {
				return config.Config{}, false
			}
			c, err := decodeConfig(r.Config)
			return c, err == nil
		},
	}
}

func decodeConfig(s string) (config.Config, error) {
	var c config.Config
	err := json.Unmarshal([]byte(s), &c)
	return c, err
}

// scriptFailure maps a script error to the ledger status it earns.
func scriptFailure(err error) *Failure {
	var se *script.Error
	if errors.As(err, &se) {
		switch se.Kind {
		case script.KindPanic:
			return &Failure{Status: ledger.StatusCrash, Msg: se.Error()}
		case script.KindTimeout:
			return &Failure{Status: ledger.StatusTimeout, Msg: se.Error()}
		}
		return &Failure{Status: ledger.StatusInvalid, Msg: se.Error()}
	}
	return &Failure{Status: ledger.StatusCrash, Msg: err.Error()}
}

// Execute runs one job to the end and records it. The returned run is the ledger row.
func (h *Harness) Execute(ctx context.Context, job Job) (ledger.Run, error) {
	runDir := filepath.Join(h.opt.Lab, "runs", job.ID)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return ledger.Run{}, fmt.Errorf("run folder: %w", err)
	}
	logf, err := os.Create(filepath.Join(runDir, "log.txt"))
	if err != nil {
		return ledger.Run{}, fmt.Errorf("run log: %w", err)
	}
	defer logf.Close()
	out := io.MultiWriter(h.opt.Out, logf)
	started := h.opt.Now()

	cfg := h.effectiveConfig(job)
	r := ledger.Run{ID: job.ID, Lineage: job.Lineage, Script: job.Script, ScriptHash: job.ScriptHash, Index: job.Index,
		Description: job.Description, Seed: cfg.Train.Seed, Commit: h.projectCommit(), Started: started}
	if job.Failure == nil {
		fmt.Fprintf(out, "=== anelab run %s: %s [spec %d/%d, lineage %s]\n", job.ID, job.Script, job.Index+1, job.Count, job.Lineage)
		if job.Description != "" {
			fmt.Fprintf(out, "description: %s\n", job.Description)
		}
	} else {
		fmt.Fprintf(out, "=== anelab run %s: %s\n", job.ID, job.Script)
	}
	if err := WriteJSON(filepath.Join(runDir, "job.json"), job); err != nil {
		return r, err
	}
	if job.Source != "" {
		name := filepath.Base(job.Script)
		if !strings.HasSuffix(name, ".go") {
			name = "script.go"
		}
		if err := os.WriteFile(filepath.Join(runDir, name), []byte(job.Source), 0o644); err != nil {
			return r, err
		}
	}
	if err := WriteJSON(filepath.Join(runDir, "config.json"), cfg); err != nil {
		return r, err
	}
	if b, err := json.Marshal(cfg); err == nil {
		r.Config = string(b)
	}

	var res train.Result
	var curve []train.Point
	var resume string
	fail := job.Failure
	if fail == nil {
		fail, resume = h.prepare(ctx, job, cfg, &r, out)
	}
	if fail == nil {
		// The ledger gets a running row before training, so a process killed hard (which never
		// reaches Record) leaves a trace that readers show as killed.
		if err := h.Ledger.Start(context.WithoutCancel(ctx), &r); err != nil {
			return r, err
		}
		if _, err := h.Ledger.ExportTSV(context.WithoutCancel(ctx)); err != nil {
			return r, err
		}
		res, curve, fail = h.runJob(ctx, job, cfg, resume, runDir, out)
	}

	r.Status, r.Error = runStatus(fail, res)
	if r.Status == ledger.StatusOK || r.Status == ledger.StatusDiverged {
		r.ValLoss, r.ValBPB, r.TrainLoss = clean(res.ValLoss), clean(res.ValBPB), clean(res.TrainLoss)
		r.Steps, r.Tokens, r.MsPerStep = res.Steps, res.Tokens, clean(res.MsPerStep)
		r.WallTimeS, r.UtilPct = clean(res.WallTimeS), clean(res.UtilPct)
		unigram := 0.0
		if m, err := data.ReadManifest(h.opt.DataDir); err == nil {
			unigram = m.UnigramBPB
		}
		train.WriteSummary(out, res, unigram)
	}
	if r.Status != ledger.StatusOK && r.Steps == 0 {
		r.Steps = len(curve) // how far a failed run got
	}
	r.Device = deviceString(cfg, res)
	r.DataSum = dataFingerprint(h.opt.DataDir)
	tagRun(&r, job, cfg)
	ckpt := filepath.Join(runDir, "model.ckpt")
	if _, err := os.Stat(ckpt); err == nil {
		r.Checkpoint, _ = filepath.Rel(h.opt.Lab, ckpt)
	}
	if b, err := json.Marshal(sanitizeResult(res)); err == nil {
		r.Result = string(b)
	}
	r.Finished = h.opt.Now()

	// Record: one transaction replaces the running row, decides keep/discard and moves the head
	// on keep.
	if err := h.Ledger.Record(context.WithoutCancel(ctx), &r); err != nil {
		return r, err
	}
	if r.Checkpoint == "" {
		os.Remove(ckpt) // only kept runs keep their checkpoint
	}
	if len(res.Curve) > 0 {
		curve = res.Curve // the trainer's own; the harness's copy (from OnStep) covers failed runs
	}
	if err := h.writeRunFiles(runDir, r, res, curve, job, cfg, resume); err != nil {
		return r, err
	}
	if _, err := h.Ledger.ExportTSV(context.WithoutCancel(ctx)); err != nil {
		return r, err
	}
	h.printBlock(ctx, out, r, runDir, curve)
	return r, nil
}

// runJob trains the job in a child process when the harness has one, else in this process.
func (h *Harness) runJob(ctx context.Context, job Job, cfg config.Config, resume, runDir string, out io.Writer) (train.Result, []train.Point, *Failure) {
	ckpt := filepath.Join(runDir, "model.ckpt")
	if len(h.opt.Child) > 0 {
		return h.supervise(ctx, job, cfg, resume, ckpt, runDir, out)
	}
	return h.train(ctx, job, cfg, resume, ckpt, out)
}

// runStatus is the ledger status and error of a run from its failure (nil: it trained) and the
// trainer's result. A pure function: see its table test.
func runStatus(fail *Failure, res train.Result) (status, msg string) {
	switch {
	case fail != nil:
		return fail.Status, fail.Msg
	case res.Status == train.StatusOK && finite(res.ValLoss) && res.ValLoss > 0:
		return ledger.StatusOK, ""
	case res.Status == train.StatusOK, res.Status == train.StatusDiverged:
		if res.Error == "" {
			return ledger.StatusDiverged, fmt.Sprintf("non-finite or zero validation loss (%v)", res.ValLoss)
		}
		return ledger.StatusDiverged, res.Error
	}
	return ledger.StatusCrash, fmt.Sprintf("runner returned status %q: %s", res.Status, res.Error)
}

// prepare checks what can be refused before training: the lineage, the config, the head to
// continue from.
func (h *Harness) prepare(ctx context.Context, job Job, cfg config.Config, r *ledger.Run, out io.Writer) (*Failure, string) {
	if err := ledger.CheckLineage(job.Lineage); err != nil {
		r.Lineage = h.opt.Lineage // recorded where the run was started
		return &Failure{Status: ledger.StatusInvalid, Msg: "spec.Lineage: " + err.Error()}, ""
	}
	if cfg == (config.Config{}) {
		return &Failure{Status: ledger.StatusInvalid, Msg: "spec.Config is empty: start from lab.Best() or lab.Baseline() " +
			"and change what the experiment tries"}, ""
	}
	if err := cfg.Validate(); err != nil {
		return &Failure{Status: ledger.StatusInvalid, Msg: err.Error()}, ""
	}
	if need, avail := cfg.MemoryNeed(), availableMemory(); avail > 0 && need > float64(avail) {
		return &Failure{Status: ledger.StatusInvalid, Msg: fmt.Sprintf("the config needs %s to train (weights, gradients, "+
			"optimizer state, activations), more than the %s this machine has available: make the model or batch smaller",
			mib(int64(need)), mib(avail))}, ""
	}
	if !job.Continue {
		return nil, ""
	}
	head, ok, err := h.Ledger.Head(ctx, job.Lineage)
	if err != nil {
		return &Failure{Status: ledger.StatusCrash, Msg: "reading the lineage head: " + err.Error()}, ""
	}
	if !ok {
		fmt.Fprintf(out, "lineage %s has no kept run yet: this Continue run starts fresh\n", job.Lineage)
		return nil, ""
	}
	if head.Checkpoint == "" {
		return &Failure{Status: ledger.StatusInvalid, Msg: fmt.Sprintf("spec.Continue: the head of lineage %s (%s) "+
			"has no checkpoint to continue from; start fresh (Continue: false)", job.Lineage, head.ID)}, ""
	}
	path := filepath.Join(h.opt.Lab, head.Checkpoint)
	if _, err := os.Stat(path); err != nil {
		return &Failure{Status: ledger.StatusInvalid, Msg: fmt.Sprintf("spec.Continue: the checkpoint of %s, head of "+
			"lineage %s, is missing (%v); start fresh (Continue: false)", head.ID, job.Lineage, err)}, ""
	}
	r.Parent = head.ID
	fmt.Fprintf(out, "continuing lineage %s from %s (val_loss %.6f)\n", job.Lineage, head.ID, head.ValLoss)
	return nil, path
}

type outcome struct {
	res      train.Result
	err      error
	panicked any
	stack    string
}

// train runs the runner with the spec's hooks behind the script guard, within the budget plus
// grace (or the hard timeout), and turns every way it can end badly into a Failure.
func (h *Harness) train(ctx context.Context, job Job, cfg config.Config, resume, ckpt string, out io.Writer) (train.Result, []train.Point, *Failure) {
	limit := h.opt.Timeout
	if limit <= 0 && cfg.Train.Budget > 0 {
		limit = time.Duration(cfg.Train.Budget) + h.opt.Grace
		if cfg.Train.BudgetKind != "wall" {
			// A compute budget's wall time grows with machine load and with a small model's lower
			// FLOP rate: allow a quarter of the reference rate before calling it a timeout.
			limit = 4*time.Duration(cfg.Train.Budget) + h.opt.Grace
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var deadline <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		deadline = t.C
	}

	// Hooks: re-interpret the script so this run has its own interpreter (a hook that fails
	// stops it), and take spec Index's hooks.
	var spec lab.Spec
	var guard *script.Guard
	if job.HasLR || job.HasOnStep {
		prog, err := script.LoadSource(job.Script, []byte(job.Source), h.scriptOptions(ctx, out))
		var specs []lab.Spec
		if err == nil {
			specs, err = prog.Specs()
		}
		if err != nil {
			return train.Result{}, nil, scriptFailure(err)
		}
		if len(specs) != job.Count {
			return train.Result{}, nil, &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("the script returned %d specs "+
				"when re-evaluated for its hooks, %d at submit: a sweep must not depend on the ledger's state", len(specs), job.Count)}
		}
		spec = specs[job.Index]
		guard = prog.Guard(spec, h.opt.HookTimeout, func(*script.Error) { cancel() })
		defer guard.Close()
	}

	var mu sync.Mutex
	var curve []train.Point
	var onStep func(lab.Event)
	var lr func(int, float64) float64
	if guard != nil {
		onStep, lr = guard.OnStep(spec.OnStep), guard.LR(spec.LR)
	}
	opts := train.Options{DataDir: h.opt.DataDir, Resume: resume, Checkpoint: ckpt, Out: out, LR: lr,
		OnStep: func(e train.Event) {
			mu.Lock()
			if len(curve) < 1<<20 {
				curve = append(curve, e.Point)
			}
			mu.Unlock()
			if onStep != nil {
				onStep(e)
			}
		}}

	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{panicked: p, stack: string(debug.Stack())}
			}
		}()
		res, err := h.opt.Runner(rctx, cfg, opts)
		done <- outcome{res: res, err: err}
	}()
	var o outcome
	got, timedOut, abandoned := false, false, false
	select {
	case o = <-done:
		got = true
	case <-deadline:
		timedOut = true
		cancel()
	case <-rctx.Done(): // a hook failed, or the caller was interrupted
	}
	if !got { // the run was stopped: give the runner a moment to return
		select {
		case o = <-done:
		case <-time.After(h.opt.Abandon):
			abandoned = true
		}
	}
	mu.Lock()
	pts := append([]train.Point(nil), curve...)
	mu.Unlock()

	if guard != nil {
		guard.Close()
		if e := guard.Err(); e != nil {
			return o.res, pts, scriptFailure(e)
		}
	}
	switch {
	case timedOut:
		msg := fmt.Sprintf("the run did not finish within %v (budget %v + grace %v); it was stopped",
			limit, time.Duration(cfg.Train.Budget), h.opt.Grace)
		if h.opt.Timeout > 0 {
			msg = fmt.Sprintf("the run did not finish within the %v timeout; it was stopped", limit)
		}
		if abandoned {
			msg += fmt.Sprintf(", and the trainer did not return within %v of that", h.opt.Abandon)
		}
		return o.res, pts, &Failure{Status: ledger.StatusTimeout, Msg: msg}
	case abandoned:
		return o.res, pts, &Failure{Status: StatusInterrupted, Msg: fmt.Sprintf("interrupted (%v), and the trainer did not "+
			"return within %v", context.Cause(rctx), h.opt.Abandon)}
	case o.panicked != nil:
		return o.res, pts, &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("panic in the trainer: %v\n%s", o.panicked, o.stack)}
	case o.err != nil:
		var ce config.Errors
		if errors.As(o.err, &ce) {
			return o.res, pts, &Failure{Status: ledger.StatusInvalid, Msg: o.err.Error()}
		}
		if ctx.Err() != nil {
			return o.res, pts, &Failure{Status: StatusInterrupted, Msg: "interrupted: " + o.err.Error()}
		}
		msg := o.err.Error()
		var he *train.HookError
		if errors.As(o.err, &he) && he.Stack != "" {
			msg += "\n" + he.Stack
		}
		return o.res, pts, &Failure{Status: ledger.StatusCrash, Msg: msg}
	}
	return o.res, pts, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func clean(x float64) float64 {
	if finite(x) {
		return x
	}
	return 0
}

// sanitizeResult replaces non-finite numbers by 0 so the result can be JSON.
func sanitizeResult(r train.Result) train.Result {
	for _, f := range []*float64{&r.ValLoss, &r.ValBPB, &r.TrainLoss, &r.TokensPerS, &r.MsPerStep,
		&r.WallTimeS, &r.StartupS, &r.CompileTimeS, &r.UtilPct, &r.PeakMemMB} {
		*f = clean(*f)
	}
	return r
}
