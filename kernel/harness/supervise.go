package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/ledger"
)

// ChildEnd is how a child process ended, as the supervisor saw it.
type ChildEnd struct {
	Reply       *ChildReply // nil when the child wrote none
	ExitCode    int         // -1 when a signal ended it
	Signal      string      // the signal that ended it ("" if it exited)
	Tail        string      // the end of its output
	Interrupted bool        // the supervisor was interrupted (Ctrl-C, SIGTERM) and stopped it
	TimedOut    bool        // the supervisor stopped it at its time limit
	Limit       string      // the time limit, in words, for a timeout's message
	MemLimit    int64       // its address-space allowance (0: none)
	MemWhy      string      // how MemLimit was derived, in words
	Script      bool        // it was evaluating a script (a Submit), not training
}

// ChildFailure decides how a supervised child ended: nil when it reported finished work (a
// training's result, a script's jobs), otherwise the status and message the ledger records. It is
// a pure function of what the supervisor saw, so every case is a line of a table test.
func ChildFailure(e ChildEnd) *Failure {
	tail := strings.TrimSpace(e.Tail)
	what := "the run"
	if e.Script {
		what = "evaluating the script"
	}
	finished := e.Reply != nil && e.Reply.Failure == nil &&
		(len(e.Reply.Jobs) > 0 || e.Reply.Result.Status == train.StatusOK && e.Reply.Result.ValLoss > 0)
	switch {
	case e.TimedOut:
		return &Failure{Status: ledger.StatusTimeout, Msg: fmt.Sprintf("%s did not finish within %s; it was stopped", what, e.Limit)}
	case e.Reply != nil && e.Reply.Failure == nil && !e.Interrupted:
		return nil
	case e.Interrupted && (e.Reply == nil || e.Reply.Failure == nil || e.Reply.Failure.Status != ledger.StatusInvalid):
		if finished {
			return nil // it finished just as it was interrupted
		}
		return &Failure{Status: StatusInterrupted, Msg: fmt.Sprintf("interrupted (Ctrl-C or SIGTERM): %s was stopped before it finished", what)}
	case e.Reply != nil:
		return e.Reply.Failure
	case strings.Contains(tail, "out of memory") || strings.Contains(tail, "cannot allocate memory"):
		return &Failure{Status: StatusOOM, Msg: fmt.Sprintf("out of memory: %s exceeded its memory limit of %s (%s); %s\n%s",
			what, mib(e.MemLimit), e.MemWhy, oomAdvice(e.Script), tail)}
	case strings.Contains(tail, "stack overflow") || strings.Contains(tail, "stack exceeds"):
		where := "during the run"
		if e.Script {
			where = "while evaluating the script"
		}
		return &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("stack overflow %s (unbounded recursion in the script?)\n%s", where, tail)}
	case strings.Contains(tail, "panic: "):
		return &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("panic that ended the process of %s (e.g. in a goroutine the script started)\n%s", what, tail)}
	case e.Signal != "":
		return &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("the process of %s was killed by %s\n%s", what, e.Signal, tail)}
	}
	return &Failure{Status: ledger.StatusCrash, Msg: fmt.Sprintf("the process of %s exited with status %d without a result\n%s", what, e.ExitCode, tail)}
}

func oomAdvice(script bool) string {
	if script {
		return "a script's top level and Experiment()/Sweep() should only build specs"
	}
	return "make the model or batch smaller, or keep less in the hooks"
}

func mib(b int64) string {
	if b <= 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// childRun is one child process to start: its request, where its reply goes, its limits.
type childRun struct {
	req       ChildRequest
	limit     time.Duration // wall-clock limit (0: none)
	limitText string
	memWhy    string
}

// startChild runs the child for c to its end — or stops it at its limit or when ctx is done —
// and reports how it ended. Its output goes to the console (h.opt.Out, with the bulk of a Go
// crash dump left out: see crashTrim) and in full to log (nil: none); its events, if asked
// for, to h.opt.OnEvent.
func (h *Harness) startChild(ctx context.Context, c childRun, log io.Writer) ChildEnd {
	end := ChildEnd{Limit: c.limitText, MemLimit: c.req.MemLimit, MemWhy: c.memWhy, Script: c.req.Submit != nil}
	os.Remove(c.req.Reply)
	defer os.Remove(c.req.Reply)
	c.req.Events = c.req.Submit == nil && h.opt.OnEvent != nil
	b, err := json.Marshal(c.req)
	if err != nil {
		end.Reply = &ChildReply{Failure: &Failure{Status: ledger.StatusInvalid, Msg: "job: " + err.Error()}}
		return end
	}
	cmd := exec.Command(h.opt.Child[0], h.opt.Child[1:]...)
	cmd.Env = append(append(os.Environ(), EnvChild+"=1"), h.opt.ChildEnv...)
	cmd.Stdin = bytes.NewReader(b)
	tail := &tailWriter{max: 6 << 10}
	console := &crashTrim{w: h.opt.Out, keep: crashLines, where: "the run's log.txt has all of it, the run's error its start and end"}
	if log == nil {
		log = io.Discard
		console.where = "the run's error has its start and end"
	}
	cmd.Stdout = io.MultiWriter(console, log, tail)
	cmd.Stderr = cmd.Stdout
	setOwnGroup(cmd) // a terminal's Ctrl-C reaches the supervisor, which stops the child itself
	var events sync.WaitGroup
	if c.req.Events {
		r, w, err := os.Pipe()
		if err != nil {
			end.Reply = &ChildReply{Failure: &Failure{Status: ledger.StatusCrash, Msg: "event pipe: " + err.Error()}}
			return end
		}
		defer r.Close()
		cmd.ExtraFiles = []*os.File{w} // the child's fd 3
		defer w.Close()
		events.Add(1)
		go func() {
			defer events.Done()
			readEvents(r, h.opt.OnEvent)
		}()
	}
	if err := cmd.Start(); err != nil {
		end.Reply = &ChildReply{Failure: &Failure{Status: ledger.StatusCrash, Msg: "starting the run's process: " + err.Error()}}
		return end
	}
	if len(cmd.ExtraFiles) > 0 {
		cmd.ExtraFiles[0].Close() // the child holds its own copy; EOF when it exits
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var deadline <-chan time.Time
	if c.limit > 0 {
		t := time.NewTimer(c.limit)
		defer t.Stop()
		deadline = t.C
	}
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
	events.Wait()
	console.finish()
	end.ExitCode, end.Signal = exitOf(werr, cmd)
	end.Tail = tail.String()
	if b, err := os.ReadFile(c.req.Reply); err == nil {
		var r ChildReply
		if json.Unmarshal(b, &r) == nil {
			end.Reply = &r
		}
	}
	return end
}

// readEvents calls on for each JSON line of r until r ends.
func readEvents(r io.Reader, on func(train.Event)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var e train.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			on(e)
		}
	}
}

// supervise trains the job in a child process (Options.Child) and turns however it ends into a
// result or a Failure. log is the run's log file.
func (h *Harness) supervise(ctx context.Context, job Job, cfg config.Config, resume, ckpt, runDir string, log io.Writer) (train.Result, []train.Point, *Failure) {
	limit, limitText := h.runLimit(cfg)
	end := h.startChild(ctx, childRun{
		req: ChildRequest{Job: job, Config: cfg, Lab: h.opt.Lab, DataDir: h.opt.DataDir, Lineage: h.opt.Lineage,
			Resume: resume, Checkpoint: ckpt, Reply: filepath.Join(runDir, "child-reply.json"),
			HookTimeout: h.opt.HookTimeout, MemLimit: MemLimit(cfg)},
		limit: limit, limitText: limitText, memWhy: memLimitWhy}, log)
	var res train.Result
	var curve []train.Point
	if end.Reply != nil {
		res, curve = end.Reply.Result, end.Reply.Curve
	}
	return res, curve, ChildFailure(end)
}

// submitInChild evaluates the script in a child process and returns its jobs, or the one job
// that records how the child failed (a panic in a script goroutine, a stack overflow, its memory
// limit, a timeout, an interrupt).
func (h *Harness) submitInChild(ctx context.Context, path, message string) []Job {
	now := h.opt.Now()
	reply, err := os.CreateTemp("", "anelab-submit-*.json")
	if err != nil {
		return []Job{failedSubmit(path, message, h.opt.Lineage, now, &Failure{Status: ledger.StatusCrash,
			Msg: "a file for the script's reply: " + err.Error()})}
	}
	reply.Close()
	st := h.opt.ScriptTimeout
	if st <= 0 {
		st = 5 * time.Second
	}
	// The script host stops a slow script itself after ScriptTimeout, once for the top level and
	// once for Experiment()/Sweep(); this limit is for a child that cannot be stopped that way,
	// with room for a process start on a loaded machine.
	limit := 2*st + time.Minute
	end := h.startChild(ctx, childRun{
		req: ChildRequest{Lab: h.opt.Lab, DataDir: h.opt.DataDir, Lineage: h.opt.Lineage, Reply: reply.Name(),
			MemLimit: ScriptMemLimit, Submit: &SubmitRequest{Script: path, Message: message, Repeats: h.opt.Repeats,
				ScriptTimeout: h.opt.ScriptTimeout, Now: now}},
		limit: limit, limitText: fmt.Sprintf("%v (2 × the script timeout + 1m)", limit),
		memWhy: "a script's allowance, above what its process held at start"}, nil)
	if f := ChildFailure(end); f != nil {
		return []Job{failedSubmit(path, message, h.opt.Lineage, now, f)}
	}
	return end.Reply.Jobs
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

// runLimit is the wall-clock limit of a run: the hard timeout, or its budget plus grace. A
// compute budget's wall time grows with machine load and with a small model's lower FLOP rate:
// it is allowed a quarter of the reference rate before it counts as a timeout.
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
	tail := t.tailLocked()
	if len(t.fatal) == 0 || strings.Contains(tail, string(t.fatal[:min(len(t.fatal), 200)])) {
		return tail // the crash's start is in the tail already
	}
	return string(t.fatal) + "\n…\n" + tail
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

// crashLines is how many lines of a Go crash (panic, fatal error) the console shows.
const crashLines = 24

// crashTrim passes a child's output to the console, except the bulk of a Go crash: after a line
// that starts one ("panic: ", "fatal error: ") it passes keep more lines, then only counts them,
// so a goroutine dump of hundreds of lines does not bury the verdict block that follows. The
// run's log.txt keeps all of it, the row's error its start and end (tailWriter).
type crashTrim struct {
	w       io.Writer
	keep    int    // lines still to pass after the crash began
	line    []byte // the current line's start (enough to recognise a mark)
	crashed bool
	dropped int    // lines left out
	where   string // where the whole crash is kept
}

var crashMarks = [][]byte{[]byte("panic: "), []byte("fatal error: ")}

func (c *crashTrim) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i+1]
		}
		p = p[len(seg):]
		if !c.crashed && len(c.line) < 64 {
			c.line = append(c.line, seg[:min(len(seg), 64-len(c.line))]...)
			for _, m := range crashMarks {
				if !c.crashed && bytes.HasPrefix(c.line, m) {
					c.crashed, c.keep = true, c.keep+1 // the mark's own line, then keep more
				}
			}
		}
		switch {
		case !c.crashed || c.keep > 0:
			c.w.Write(seg)
		case i >= 0:
			c.dropped++
		}
		if i >= 0 { // a line ended
			c.line = c.line[:0]
			if c.crashed && c.keep > 0 {
				c.keep--
			}
		}
	}
	return n, nil
}

// finish says how much of a crash was left out.
func (c *crashTrim) finish() {
	if c.dropped > 0 {
		fmt.Fprintf(c.w, "… (%d more lines of the crash left out: %s)\n", c.dropped, c.where)
	}
}
