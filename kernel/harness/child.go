package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
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

// ChildRequest is what the supervisor hands a child process: the job (serialisable, as a job queue
// will hand it to a worker) and where to train it. The child writes a ChildReply to Reply.
type ChildRequest struct {
	Job         Job           `json:"job"`
	Config      config.Config `json:"config"` // the job's config with the harness's overrides
	Lab         string        `json:"lab"`
	DataDir     string        `json:"data_dir"`
	Lineage     string        `json:"lineage"`
	Resume      string        `json:"resume"`
	Checkpoint  string        `json:"checkpoint"`
	Reply       string        `json:"reply"`
	HookTimeout time.Duration `json:"hook_timeout"`
	MemLimit    int64         `json:"mem_limit"` // bytes of address space (0: none)
}

// ChildReply is how the child's training ended, when it got to say so.
type ChildReply struct {
	Result  train.Result  `json:"result"`
	Curve   []train.Point `json:"curve"`
	Failure *Failure      `json:"failure,omitempty"`
}

// MemLimit is the address-space limit of a run's child: three times the analytic need of its
// config (weights, gradients, optimizer state, activations; peak RSS measures 1.1–1.3× of it),
// plus 2 GiB for the Go runtime, the script interpreter, BLAS buffers and thread stacks, which
// count as address space whether touched or not.
func MemLimit(cfg config.Config) int64 {
	return int64(3*cfg.MemoryNeed()) + 2<<30
}

// childMaxStack bounds a child goroutine's stack, so unbounded recursion ends as "stack
// overflow" well inside the memory limit (Go's default is 1 GB, whose copy alone would hit it).
const childMaxStack = 64 << 20

// RunChild is the child's side: it reads a ChildRequest from r, limits its own memory, trains the
// job with its hooks, and writes the ChildReply. out gets the run's console output. A panic in a
// goroutine of the script, a stack overflow or running out of memory end this process; the
// supervisor reads that from its exit and output.
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
	l, err := ledger.OpenReadOnly(req.Lab) // lab.Best() and lab.FromRun() of the hooks' script
	if err != nil {
		return err
	}
	defer l.Close()
	h := &Harness{opt: Options{Lab: req.Lab, DataDir: req.DataDir, Runner: runner, Out: out, Lineage: req.Lineage,
		HookTimeout: req.HookTimeout, Abandon: 30 * time.Second, Grace: 365 * 24 * time.Hour}, Ledger: l}
	if h.opt.Runner == nil {
		h.opt.Runner = train.Run
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

func cleanCurve(c []train.Point) []train.Point {
	out := make([]train.Point, len(c))
	for i, p := range c {
		p.Loss, p.LR, p.TimeS = clean(p.Loss), clean(p.LR), clean(p.TimeS)
		out[i] = p
	}
	return out
}

// ChildEnd is how a child process ended, as the supervisor saw it.
type ChildEnd struct {
	Reply       *ChildReply // nil when the child wrote none
	ExitCode    int         // -1 when a signal ended it
	Signal      string      // the signal that ended it ("" if it exited)
	Tail        string      // the end of its output
	Interrupted bool        // the supervisor was interrupted (Ctrl-C, SIGTERM) and stopped it
	TimedOut    bool        // the supervisor stopped it at the run's time limit
	Limit       string      // the time limit, in words, for a timeout's message
	MemLimit    int64       // its address-space limit (0: none)
}

// ChildFailure decides how a supervised run ended: nil when the child reported a finished
// training, otherwise the status and message the ledger records. It is a pure function of what
// the supervisor saw, so every case is a line of a table test.
func ChildFailure(e ChildEnd) *Failure {
	tail := strings.TrimSpace(e.Tail)
	switch {
	case e.TimedOut:
		return &Failure{Status: ledger.StatusTimeout, Msg: fmt.Sprintf("the run did not finish within %s; it was stopped", e.Limit)}
	case e.Reply != nil && e.Reply.Failure == nil && !e.Interrupted:
		return nil
	case e.Interrupted && (e.Reply == nil || e.Reply.Failure == nil || e.Reply.Failure.Status != ledger.StatusInvalid):
		if e.Reply != nil && e.Reply.Failure == nil && e.Reply.Result.Status == train.StatusOK && e.Reply.Result.ValLoss > 0 {
			return nil // it finished just as it was interrupted
		}
		return &Failure{Status: StatusInterrupted, Msg: "interrupted (Ctrl-C or SIGTERM): the run was stopped before it finished"}
	case e.Reply != nil:
		return e.Reply.Failure
	case strings.Contains(tail, "out of memory") || strings.Contains(tail, "cannot allocate memory"):
		return &Failure{Status: StatusOOM, Msg: fmt.Sprintf("out of memory: the run exceeded its memory limit of %s "+
			"(3 × the config's analytic need + 2 GiB); make the model or batch smaller\n%s", mib(e.MemLimit), tail)}
	case strings.Contains(tail, "stack overflow") || strings.Contains(tail, "stack exceeds"):
		return &Failure{Status: ledger.StatusCrash, Msg: "stack overflow (unbounded recursion in the script?)\n" + tail}
	case strings.Contains(tail, "panic: "):
		return &Failure{Status: ledger.StatusCrash, Msg: "panic that ended the run's process (e.g. in a goroutine the script started)\n" + tail}
	case e.Signal != "":
		return &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("the run's process was killed by %s\n%s", e.Signal, tail)}
	}
	return &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("the run's process exited with status %d without a result\n%s", e.ExitCode, tail)}
}

func mib(b int64) string {
	if b <= 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// supervise trains the job in a child process (Options.Child) and turns however it ends into a
// result or a Failure.
func (h *Harness) supervise(ctx context.Context, job Job, cfg config.Config, resume, ckpt, runDir string, out io.Writer) (train.Result, []train.Point, *Failure) {
	reply := filepath.Join(runDir, "child-reply.json")
	os.Remove(reply)
	defer os.Remove(reply)
	req := ChildRequest{Job: job, Config: cfg, Lab: h.opt.Lab, DataDir: h.opt.DataDir, Lineage: h.opt.Lineage,
		Resume: resume, Checkpoint: ckpt, Reply: reply, HookTimeout: h.opt.HookTimeout, MemLimit: MemLimit(cfg)}
	b, err := json.Marshal(req)
	if err != nil {
		return train.Result{}, nil, &Failure{Status: ledger.StatusInvalid, Msg: "job: " + err.Error()}
	}
	cmd := exec.Command(h.opt.Child[0], h.opt.Child[1:]...)
	if len(h.opt.ChildEnv) > 0 {
		cmd.Env = append(os.Environ(), h.opt.ChildEnv...)
	}
	cmd.Stdin = bytes.NewReader(b)
	tail := &tailWriter{max: 6 << 10}
	cmd.Stdout = io.MultiWriter(out, tail)
	cmd.Stderr = cmd.Stdout
	setOwnGroup(cmd) // a terminal's Ctrl-C reaches the supervisor, which stops the child itself
	if err := cmd.Start(); err != nil {
		return train.Result{}, nil, &Failure{Status: ledger.StatusCrash, Msg: "starting the run's process: " + err.Error()}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	limit, limitText := h.runLimit(cfg)
	var deadline <-chan time.Time
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		deadline = t.C
	}
	end := ChildEnd{Limit: limitText, MemLimit: req.MemLimit}
	var werr error
	select {
	case werr = <-waited:
	case <-deadline:
		end.TimedOut = true
		werr = stopChild(cmd, waited, h.opt.Abandon)
	case <-ctx.Done():
		end.Interrupted = true
		werr = stopChild(cmd, waited, h.opt.Abandon)
	}
	end.ExitCode, end.Signal = exitOf(werr, cmd)
	end.Tail = tail.String()
	if b, err := os.ReadFile(reply); err == nil {
		var r ChildReply
		if json.Unmarshal(b, &r) == nil {
			end.Reply = &r
		}
	}
	var res train.Result
	var curve []train.Point
	if end.Reply != nil {
		res, curve = end.Reply.Result, end.Reply.Curve
	}
	return res, curve, ChildFailure(end)
}

// stopChild asks the child to stop (SIGINT: it saves what it can and replies), and kills it if it
// has not ended within grace.
func stopChild(cmd *exec.Cmd, waited <-chan error, grace time.Duration) error {
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-waited:
		return err
	case <-time.After(grace):
		cmd.Process.Kill()
		return <-waited
	}
}

func exitOf(err error, cmd *exec.Cmd) (int, string) {
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return -1, ""
	}
	st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && st.Signaled() {
		return -1, st.Signal().String()
	}
	return cmd.ProcessState.ExitCode(), ""
}

// runLimit is the wall-clock limit of a run: the hard timeout, or its budget plus grace.
func (h *Harness) runLimit(cfg config.Config) (time.Duration, string) {
	if h.opt.Timeout > 0 {
		return h.opt.Timeout, fmt.Sprintf("the %v timeout", h.opt.Timeout)
	}
	if cfg.Train.Budget <= 0 {
		return 0, ""
	}
	limit := time.Duration(cfg.Train.Budget) + h.opt.Grace
	if cfg.Train.BudgetKind != "wall" {
		limit = 4*time.Duration(cfg.Train.Budget) + h.opt.Grace
	}
	return limit, fmt.Sprintf("%v (budget %v + grace %v)", limit, time.Duration(cfg.Train.Budget), h.opt.Grace)
}

// tailWriter keeps the last max bytes written to it, and the start of the first Go panic or fatal
// error it sees (the goroutine dump after it would push the cause out of the tail).
type tailWriter struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	fatal []byte
}

var fatalMarks = [][]byte{[]byte("panic: "), []byte("fatal error: "), []byte("runtime: out of memory")}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.buf)
	t.buf = append(t.buf, p...)
	if t.fatal == nil {
		from := max(0, n-64) // a mark split across writes
		for _, m := range fatalMarks {
			if i := bytes.Index(t.buf[from:], m); i >= 0 {
				t.fatal = []byte{} // filled below
				t.fatalAt(from + i)
				break
			}
		}
	} else if len(t.fatal) < 1500 {
		t.fatal = append(t.fatal, p[:min(len(p), 1500-len(t.fatal))]...)
	}
	if len(t.buf) > 2*t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) fatalAt(i int) {
	t.fatal = append(t.fatal, t.buf[i:min(len(t.buf), i+1500)]...)
}

// String is the first panic or fatal error (if any), then the end of the output.
func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	head := ""
	if len(t.fatal) > 0 {
		head = string(t.fatal) + "\n…\n"
	}
	return head + t.tailLocked()
}

func (t *tailWriter) tailLocked() string {
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
