// Package harness runs experiments: it loads a script (kernel/script), turns each spec into a
// job with a run id, trains it for its budget through an injectable Runner (train.Run by
// default), classifies how it ended (ok, crash, diverged, invalid, timeout), leaves a run folder
// (config, result, loss curve, manifest, log, script copy, checkpoint of kept runs), and records
// it in the ledger, which decides keep or discard against the lineage's best. A run that trains
// is in the ledger as running from just before training until it is recorded.
//
// With Options.Child (as `anelab run`, `vet` and the notebooks use it) no script code runs in the
// supervisor: the script is evaluated (Submit) and each job trained (Execute) in a child process
// given a ChildRequest, so a panic in a script goroutine, a stack overflow or an allocation past
// the child's memory limit ends the child only, and the supervisor records the cause
// (ChildFailure) in the row it owns.
package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/internal/num"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/ledger"
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

	// OnEvent, when set, is called after every optimizer update of a run, whether it trains in
	// this process or in the child (which relays its events): a live view.
	OnEvent func(train.Event)

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
// becomes one row, and a spec whose run dies does not stop the rest of a sweep. The error is for
// failures of the lab itself (ledger, file system).
func (h *Harness) RunScript(ctx context.Context, path, message string) ([]ledger.Run, error) {
	jobs := h.Submit(ctx, path, message)
	start := h.SnapshotHeads(ctx, h.opt.Lineage) // a sweep's specs are ranked against the head as it stood now
	var runs []ledger.Run
	for i, j := range jobs {
		if err := ctx.Err(); err != nil && j.Failure == nil {
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

func clean(x float64) float64 {
	if num.Finite(x) {
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
