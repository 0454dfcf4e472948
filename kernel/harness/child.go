package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/ledger"
)

// StatusOOM and StatusInterrupted are how a supervised run can end besides the trainer's own
// statuses: the child ran out of its memory limit, or the user stopped `anelab run`.
const (
	StatusOOM         = "oom"
	StatusInterrupted = "interrupted"
)

// EnvChild is set to "1" in the environment of every child process the harness starts, so a
// program that re-executes itself as the child (a notebook cell's program: see ChildMain) knows
// it is one.
const EnvChild = "ANELAB_CHILD"

// ChildRequest is the one message the supervisor hands a child process on its stdin, as JSON.
// It is the unit of work a job queue hands a worker too, so it must stay serialisable: plain
// data only, no functions; new fields are optional (omitempty) so older messages still decode.
//
// It asks for one of two things:
//   - Submit set: evaluate a script — its top level and Experiment()/Sweep() — and reply with its
//     jobs (ChildReply.Jobs). Script code never runs in the supervisor, so whatever it does (a
//     panic in a goroutine, unbounded recursion, a huge allocation) ends only the child.
//   - Submit nil: train Job with Config — re-evaluating the script for its hooks when it has any
//     — and reply with the result and curve.
//
// The child writes its ChildReply to the file Reply names; its stdout and stderr are the run's
// console output, of which the supervisor keeps the tail.
type ChildRequest struct {
	Submit      *SubmitRequest `json:"submit,omitempty"`
	Job         Job            `json:"job"`
	Config      config.Config  `json:"config"` // the job's config with the harness's overrides
	Lab         string         `json:"lab"`
	DataDir     string         `json:"data_dir"`
	Lineage     string         `json:"lineage"`
	Resume      string         `json:"resume"`
	Checkpoint  string         `json:"checkpoint"`
	Reply       string         `json:"reply"`
	HookTimeout time.Duration  `json:"hook_timeout"`
	// MemLimit is how many bytes of address space the child may add to what it holds when it
	// starts (0: no limit): see MemLimit and ScriptMemLimit.
	MemLimit int64 `json:"mem_limit"`
	// Events, when set, asks the child to write each training event (train.Event, non-finite
	// numbers as 0) as one JSON line to file descriptor 3: the supervisor's live view.
	Events bool `json:"events,omitempty"`
}

// SubmitRequest asks a child to evaluate a script and return its jobs (Harness.Submit).
type SubmitRequest struct {
	Script        string        `json:"script"`  // path of the script
	Message       string        `json:"message"` // `anelab run -m`
	Repeats       int           `json:"repeats,omitempty"`
	ScriptTimeout time.Duration `json:"script_timeout,omitempty"`
	Now           time.Time     `json:"now"` // the supervisor's clock: run ids and submit times
}

// ChildReply is how the child's work ended, when it got to say so: a training's result and curve,
// or a Submit's jobs.
type ChildReply struct {
	Result  train.Result  `json:"result"`
	Curve   []train.Point `json:"curve"`
	Failure *Failure      `json:"failure,omitempty"`
	Jobs    []Job         `json:"jobs,omitempty"`
}

// MemLimit is the address-space allowance of a training child: three times the analytic need
// of its config (weights, gradients, optimizer state, activations; peak RSS measures 1.1–1.3× of
// it), plus 2 GiB for the script interpreter, BLAS buffers and thread stacks, which count as
// address space whether touched or not. It is added to what the child holds when it starts.
// A GPU run gets none (0): the CUDA driver reserves tens of GiB of address space for unified
// addressing when it starts, and fails to start under a limit sized for host memory; its model
// lives in GPU memory anyway.
func MemLimit(cfg config.Config) int64 {
	if strings.HasPrefix(cfg.Backend, "cuda") {
		return 0
	}
	return int64(3*cfg.MemoryNeed()) + 2<<30
}

// memLimitWhy says in words how MemLimit is derived, for an oom's message.
const memLimitWhy = "3 × the config's analytic need + 2 GiB, above what its process held at start"

// ScriptMemLimit is the address-space allowance of a child that only evaluates a script: far
// more than any sweep needs to build its specs.
const ScriptMemLimit = 4 << 30

// childMaxStack bounds a child goroutine's stack, so unbounded recursion ends as "stack
// overflow" well inside the memory limit (Go's default is 1 GB, whose copy alone would hit it).
const childMaxStack = 64 << 20

// ChildMain makes this program a run's child process when the harness started it as one
// (EnvChild=1): it serves the ChildRequest on stdin with runner (nil: the real trainer) and
// exits; otherwise it returns at once. A program whose experiments run in children of itself
// calls it before doing anything else — package nb calls it from its init, so a notebook cell's
// program is its own child (Options.Child = SelfChild()).
func ChildMain(runner Runner) {
	if os.Getenv(EnvChild) != "1" {
		return
	}
	// SIGINT/SIGTERM from the supervisor stop the work; the reply says interrupted.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := RunChild(ctx, os.Stdin, os.Stdout, runner)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "anelab child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// SelfChild is the Options.Child of a program that serves its own children with ChildMain.
func SelfChild() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start each run's process: %w", err)
	}
	return []string{exe}, nil
}

// RunChild is the child's side: it reads a ChildRequest from r, limits its own memory, does what
// it asks (evaluate a script, or train a job with its hooks), and writes the ChildReply. out gets
// the console output. A panic in a goroutine of the script, a stack overflow or running out of
// memory end this process; the supervisor reads that from its exit and output.
func RunChild(ctx context.Context, r io.Reader, out io.Writer, runner Runner) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var req ChildRequest
	if err := config.DecodeStrict(b, &req); err != nil {
		return fmt.Errorf("child request: %w", err)
	}
	if req.MemLimit > 0 {
		if err := limitMemory(req.MemLimit); err != nil {
			fmt.Fprintf(out, "warning: memory limit not applied: %v\n", err)
		}
	}
	debug.SetMaxStack(childMaxStack)
	l, err := ledger.OpenReadOnly(req.Lab) // lab.Best() and lab.FromRun() of the script
	if err != nil {
		return err
	}
	defer l.Close()
	h := &Harness{opt: Options{Lab: req.Lab, DataDir: req.DataDir, Runner: runner, Out: out, Lineage: req.Lineage,
		HookTimeout: req.HookTimeout, Abandon: 30 * time.Second, Grace: 365 * 24 * time.Hour}, Ledger: l}
	if h.opt.Runner == nil {
		h.opt.Runner = train.Run
	}
	if s := req.Submit; s != nil {
		h.opt.Repeats, h.opt.ScriptTimeout = s.Repeats, s.ScriptTimeout
		h.opt.Now = func() time.Time { return s.Now }
		// The script host bounds the evaluation's time but not by ctx: on a signal, leave at once
		// (the supervisor records the interrupt).
		done := make(chan []Job, 1)
		go func() { done <- h.submitHere(ctx, s.Script, s.Message) }()
		select {
		case jobs := <-done:
			return WriteJSON(req.Reply, ChildReply{Jobs: jobs})
		case <-ctx.Done():
			return errors.New("interrupted while evaluating the script")
		}
	}
	if req.Events {
		h.opt.OnEvent = eventWriter(os.NewFile(3, "events"))
	}
	// The supervisor enforces the time limits; here they are only the trainer's own.
	res, curve, fail := h.train(ctx, req.Job, req.Config, req.Resume, req.Checkpoint, out)
	if fail == nil && ctx.Err() != nil && res.Status != train.StatusOK {
		fail = &Failure{Status: StatusInterrupted, Msg: "stopped by a signal"}
	}
	if len(curve) > 1<<16 {
		curve = curve[len(curve)-1<<16:]
	}
	return WriteJSON(req.Reply, ChildReply{Result: sanitizeResult(res), Curve: cleanCurve(curve), Failure: fail})
}

// eventWriter writes each event as a JSON line to f (a pipe to the supervisor). Writes that fail
// (the supervisor stopped reading) are dropped: the live view is a convenience.
func eventWriter(f *os.File) func(train.Event) {
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	return func(e train.Event) {
		e.Loss, e.LR, e.TimeS, e.Progress = clean(e.Loss), clean(e.LR), clean(e.TimeS), clean(e.Progress)
		e.BudgetS, e.TokensPerS = clean(e.BudgetS), clean(e.TokensPerS)
		if enc.Encode(e) == nil {
			w.Flush()
		}
	}
}

func cleanCurve(c []train.Point) []train.Point {
	out := make([]train.Point, len(c))
	for i, p := range c {
		p.Loss, p.LR, p.TimeS = clean(p.Loss), clean(p.LR), clean(p.TimeS)
		out[i] = p
	}
	return out
}
