package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/script"
)

// train trains the job in this process (the child's work, or a harness without one). The steps:
//
//  1. loadHooks: re-interpret the script for the spec's LR and OnStep, behind the script guard;
//  2. the trainer's options: the hooks, a copy of the curve (a failed run still has one), events;
//  3. runGuarded: the runner in a goroutine that turns a panic into an outcome;
//  4. wait for it within the run's limit, or until a hook fails or the caller stops it;
//  5. trainFailure: how it ended, as the ledger's status and message (a pure function).
func (h *Harness) train(ctx context.Context, job Job, cfg config.Config, resume, ckpt string, out io.Writer) (train.Result, []train.Point, *Failure) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	spec, guard, fail := h.loadHooks(ctx, job, out, cancel)
	if fail != nil {
		return train.Result{}, nil, fail
	}
	if guard != nil {
		defer guard.Close()
	}
	rec := &curveRecorder{}
	opts := train.Options{DataDir: h.opt.DataDir, Resume: resume, Checkpoint: ckpt, Out: out}
	var onStep func(lab.Event)
	if guard != nil {
		onStep, opts.LR = guard.OnStep(spec.OnStep), guard.LR(spec.LR)
	}
	opts.OnStep = func(e train.Event) {
		rec.add(e.Point)
		if h.opt.OnEvent != nil {
			h.opt.OnEvent(e)
		}
		if onStep != nil {
			onStep(e)
		}
	}

	limit, limitText := h.runLimit(cfg)
	var deadline <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		deadline = t.C
	}
	done := h.runGuarded(rctx, cfg, opts)
	end := trainEnd{Limit: limitText, Abandon: h.opt.Abandon}
	got := false
	select {
	case end.outcome = <-done:
		got = true
	case <-deadline:
		end.TimedOut = true
		cancel()
	case <-rctx.Done(): // a hook failed, or the caller was interrupted
	}
	if !got { // the run was stopped: give the runner a moment to return
		select {
		case end.outcome = <-done:
		case <-time.After(h.opt.Abandon):
			end.Abandoned = true
		}
	}
	if guard != nil {
		guard.Close()
		if e := guard.Err(); e != nil {
			end.HookErr = e
		}
	}
	end.Interrupted = ctx.Err() != nil
	end.Cause = context.Cause(rctx)
	return end.res, rec.points(), trainFailure(end)
}

// loadHooks re-interprets the script so this run has its own interpreter (a hook that fails calls
// stop) and returns spec Index with the guard its hooks run behind; nil guard when the spec has
// no hooks.
func (h *Harness) loadHooks(ctx context.Context, job Job, out io.Writer, stop func()) (lab.Spec, *script.Guard, *Failure) {
	if !job.HasLR && !job.HasOnStep {
		return lab.Spec{}, nil, nil
	}
	prog, err := script.LoadSource(job.Script, []byte(job.Source), h.scriptOptions(ctx, out))
	var specs []lab.Spec
	if err == nil {
		specs, err = prog.Specs()
	}
	if err != nil {
		return lab.Spec{}, nil, scriptFailure(err)
	}
	if len(specs) != job.Count {
		return lab.Spec{}, nil, &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("the script returned %d specs "+
			"when re-evaluated for its hooks, %d at submit: a sweep must not depend on the ledger's state", len(specs), job.Count)}
	}
	spec := specs[job.Index]
	return spec, prog.Guard(spec, h.opt.HookTimeout, func(*script.Error) { stop() }), nil
}

// curveRecorder keeps the curve as the trainer reports it, step by step (bounded).
type curveRecorder struct {
	mu  sync.Mutex
	pts []train.Point
}

func (c *curveRecorder) add(p train.Point) {
	c.mu.Lock()
	if len(c.pts) < 1<<20 {
		c.pts = append(c.pts, p)
	}
	c.mu.Unlock()
}

func (c *curveRecorder) points() []train.Point {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]train.Point(nil), c.pts...)
}

type outcome struct {
	res      train.Result
	err      error
	panicked any
	stack    string
}

// runGuarded runs the runner in a goroutine; a panic in it (not in goroutines it starts) becomes
// the outcome's panicked.
func (h *Harness) runGuarded(ctx context.Context, cfg config.Config, opts train.Options) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{panicked: p, stack: string(debug.Stack())}
			}
		}()
		res, err := h.opt.Runner(ctx, cfg, opts)
		done <- outcome{res: res, err: err}
	}()
	return done
}

// trainEnd is how a training in this process ended.
type trainEnd struct {
	outcome                   // what the runner returned, if it did
	HookErr     error         // a hook failed (the script guard's error)
	TimedOut    bool          // the run's time limit stopped it
	Abandoned   bool          // it was stopped and the runner did not return within Abandon
	Interrupted bool          // the caller stopped it (Ctrl-C, SIGTERM)
	Limit       string        // the time limit in words
	Abandon     time.Duration // how long the runner was given to return
	Cause       error         // why the run's context ended
}

// trainFailure decides how a training ended: nil when it trained, else the status and message
// the ledger records. A pure function: see its table test. A hook's failure comes first (it is
// why the run was stopped), then the time limit, a runner that would not stop, a panic, the
// runner's error.
func trainFailure(e trainEnd) *Failure {
	switch {
	case e.HookErr != nil:
		return scriptFailure(e.HookErr)
	case e.TimedOut:
		msg := fmt.Sprintf("the run did not finish within %s; it was stopped", e.Limit)
		if e.Abandoned {
			msg += fmt.Sprintf(", and the trainer did not return within %v of that", e.Abandon)
		}
		return &Failure{Status: ledger.StatusTimeout, Msg: msg}
	case e.Abandoned:
		return &Failure{Status: StatusInterrupted, Msg: fmt.Sprintf("interrupted (%v), and the trainer did not "+
			"return within %v", e.Cause, e.Abandon)}
	case e.panicked != nil:
		return &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("panic in the trainer: %v\n%s", e.panicked, e.stack)}
	case e.err != nil:
		var ce config.Errors
		if errors.As(e.err, &ce) {
			return &Failure{Status: ledger.StatusInvalid, Msg: e.err.Error()}
		}
		if e.Interrupted {
			return &Failure{Status: StatusInterrupted, Msg: "interrupted: " + e.err.Error()}
		}
		msg := e.err.Error()
		var he *train.HookError
		if errors.As(e.err, &he) && he.Stack != "" {
			msg += "\n" + he.Stack
		}
		return &Failure{Status: ledger.StatusCrash, Msg: msg}
	}
	return nil
}
