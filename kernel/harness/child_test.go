package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/kernel/script"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/ledger"
)

// ChildFailure: every way a supervised run's process can end, and the status it earns.
func TestChildFailure(t *testing.T) {
	ok := &ChildReply{Result: train.Result{Status: train.StatusOK, ValLoss: 2.5}}
	invalid := &ChildReply{Failure: &Failure{Status: ledger.StatusInvalid, Msg: "bad config"}}
	hook := &ChildReply{Failure: &Failure{Status: ledger.StatusCrash, Msg: "panic in the OnStep hook"}}
	cases := []struct {
		name   string
		end    ChildEnd
		status string // "" = no failure
		want   string
	}{
		{"finished", ChildEnd{Reply: ok}, "", ""},
		{"reported failure", ChildEnd{Reply: hook, ExitCode: 0}, ledger.StatusCrash, "OnStep"},
		{"timed out", ChildEnd{TimedOut: true, Limit: "the 1m0s timeout", Signal: "killed"}, ledger.StatusTimeout, "within the 1m0s timeout"},
		{"interrupted without reply", ChildEnd{Interrupted: true, ExitCode: 1}, StatusInterrupted, "interrupted"},
		{"interrupted, child says stopped", ChildEnd{Interrupted: true, Reply: &ChildReply{Failure: &Failure{Status: StatusInterrupted}}}, StatusInterrupted, "interrupted"},
		{"interrupted after finishing", ChildEnd{Interrupted: true, Reply: ok}, "", ""},
		{"interrupted but invalid anyway", ChildEnd{Interrupted: true, Reply: invalid}, ledger.StatusInvalid, "bad config"},
		{"go out of memory", ChildEnd{ExitCode: 2, MemLimit: 3 << 30, Tail: "fatal error: runtime: out of memory\n\ngoroutine 1"}, StatusOOM, "memory limit of 3072 MiB"},
		{"cgo out of memory", ChildEnd{ExitCode: 2, MemLimit: 1 << 30, Tail: "mmap: cannot allocate memory"}, StatusOOM, "out of memory"},
		{"stack overflow", ChildEnd{ExitCode: 2, Tail: "runtime: goroutine stack exceeds 67108864-byte limit\nfatal error: stack overflow"}, ledger.StatusCrash, "stack overflow"},
		{"goroutine panic", ChildEnd{ExitCode: 2, Tail: "panic: boom\n\ngoroutine 7 [running]:"}, ledger.StatusCrash, "panic: boom"},
		{"signal", ChildEnd{ExitCode: -1, Signal: "killed", Tail: "step 3"}, ledger.StatusCrash, "killed by killed"},
		{"silent exit", ChildEnd{ExitCode: 3}, ledger.StatusCrash, "exited with status 3 without a result"},
		{"script's jobs", ChildEnd{Script: true, Reply: &ChildReply{Jobs: []Job{{ID: "r1"}}}}, "", ""},
		{"script's jobs as interrupted", ChildEnd{Script: true, Interrupted: true, Reply: &ChildReply{Jobs: []Job{{ID: "r1"}}}}, "", ""},
		{"script interrupted", ChildEnd{Script: true, Interrupted: true, Signal: "interrupt"}, StatusInterrupted, "evaluating the script was stopped"},
		{"script timed out", ChildEnd{Script: true, TimedOut: true, Limit: "1m10s"}, ledger.StatusTimeout, "evaluating the script did not finish within 1m10s"},
		{"script out of memory", ChildEnd{Script: true, ExitCode: 2, MemLimit: 4 << 30, MemWhy: "a script's allowance",
			Tail: "fatal error: out of memory"}, StatusOOM, "evaluating the script exceeded its memory limit of 4096 MiB (a script's allowance)"},
		{"script stack overflow", ChildEnd{Script: true, ExitCode: 2, Tail: "fatal error: stack overflow"}, ledger.StatusCrash, "stack overflow while evaluating the script"},
	}
	for _, tc := range cases {
		checkFailure(t, tc.name, ChildFailure(tc.end), tc.status, tc.want)
	}
}

// runStatus: the status a run's row gets from its failure and the trainer's result.
func TestRunStatus(t *testing.T) {
	cases := []struct {
		name   string
		fail   *Failure
		res    train.Result
		status string
		want   string
	}{
		{"ok", nil, train.Result{Status: train.StatusOK, ValLoss: 2}, ledger.StatusOK, ""},
		{"failure wins", &Failure{Status: StatusOOM, Msg: "oom"}, train.Result{Status: train.StatusOK, ValLoss: 2}, StatusOOM, "oom"},
		{"nan val loss", nil, train.Result{Status: train.StatusOK, ValLoss: math.NaN()}, ledger.StatusDiverged, "non-finite"},
		{"zero val loss", nil, train.Result{Status: train.StatusOK}, ledger.StatusDiverged, "zero"},
		{"diverged", nil, train.Result{Status: train.StatusDiverged, Error: "loss NaN at step 4"}, ledger.StatusDiverged, "step 4"},
		{"unknown status", nil, train.Result{Status: "weird", Error: "?"}, ledger.StatusCrash, `"weird"`},
	}
	for _, tc := range cases {
		s, msg := runStatus(tc.fail, tc.res)
		if s != tc.status || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %s %q, want %s mentioning %q", tc.name, s, msg, tc.status, tc.want)
		}
	}
}

// trainFailure: every way a training in this process can end, and the status it earns.
func TestTrainFailure(t *testing.T) {
	hookPanic := &script.Error{Kind: script.KindPanic, Path: "s.go", Msg: "panic in the OnStep hook at step 3"}
	hookSlow := &script.Error{Kind: script.KindTimeout, Path: "s.go", Msg: "the LR hook did not return within 5s"}
	cases := []struct {
		name   string
		end    trainEnd
		status string // "" = no failure
		want   string
	}{
		{"trained", trainEnd{outcome: outcome{res: train.Result{Status: train.StatusOK}}}, "", ""},
		{"hook panicked", trainEnd{HookErr: hookPanic, outcome: outcome{err: context.Canceled}}, ledger.StatusCrash, "OnStep hook at step 3"},
		{"hook too slow", trainEnd{HookErr: hookSlow, TimedOut: true}, ledger.StatusTimeout, "did not return within 5s"},
		{"timed out", trainEnd{TimedOut: true, Limit: "the 1m0s timeout", outcome: outcome{err: context.Canceled}}, ledger.StatusTimeout, "within the 1m0s timeout; it was stopped"},
		{"timed out, runner stuck", trainEnd{TimedOut: true, Abandoned: true, Limit: "2m", Abandon: 30 * time.Second}, ledger.StatusTimeout, "did not return within 30s of that"},
		{"interrupted, runner stuck", trainEnd{Abandoned: true, Interrupted: true, Cause: context.Canceled, Abandon: time.Second}, StatusInterrupted, "did not return within 1s"},
		{"runner panicked", trainEnd{outcome: outcome{panicked: "nil map", stack: "goroutine 9"}}, ledger.StatusCrash, "panic in the trainer: nil map\ngoroutine 9"},
		{"invalid config", trainEnd{outcome: outcome{err: config.Errors{"model.heads = 5"}}}, ledger.StatusInvalid, "model.heads = 5"},
		{"interrupted", trainEnd{Interrupted: true, outcome: outcome{err: context.Canceled}}, StatusInterrupted, "interrupted: context canceled"},
		{"hook error with stack", trainEnd{outcome: outcome{err: &train.HookError{Hook: "LR", Value: "bad lr", Stack: "at s.go:4"}}}, ledger.StatusCrash, "at s.go:4"},
		{"runner error", trainEnd{outcome: outcome{err: errors.New("shard 3: checksum mismatch")}}, ledger.StatusCrash, "checksum mismatch"},
	}
	for _, tc := range cases {
		checkFailure(t, tc.name, trainFailure(tc.end), tc.status, tc.want)
	}
}

// The request a child (or a queue's worker) gets is plain JSON: it survives a round trip, and the
// child's strict decoder takes what the supervisor writes.
func TestChildRequestIsJSON(t *testing.T) {
	cfg := config.Tiny()
	for _, req := range []ChildRequest{
		{Job: Job{ID: "r1", Script: "s.go", Source: "package experiment", Index: 1, Count: 2, Config: cfg, HasOnStep: true,
			Submitted: time.Unix(1e9, 0).UTC()}, Config: cfg, Lab: "lab", DataDir: "d", Lineage: "main", Reply: "reply.json",
			HookTimeout: 5 * time.Second, MemLimit: MemLimit(cfg), Events: true},
		{Lab: "lab", Reply: "r.json", MemLimit: ScriptMemLimit, Submit: &SubmitRequest{Script: "s.go", Message: "m", Repeats: 3,
			ScriptTimeout: time.Second, Now: time.Unix(2e9, 0).UTC()}},
	} {
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var back ChildRequest
		if err := config.DecodeStrict(b, &back); err != nil {
			t.Fatalf("decoding %s: %v", b, err)
		}
		if !reflect.DeepEqual(back, req) {
			t.Errorf("round trip changed the request:\n%+v\n%+v", req, back)
		}
	}
}

// Submit in a child (this test binary, through TestMain's ChildMain) gives the jobs Submit in
// this process gives: the same specs, descriptions, configs, sources and repeats, stamped with
// the supervisor's clock. Only the random part of the run ids differs.
func TestSubmitInChild(t *testing.T) {
	child, err := SelfChild()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lab := t.TempDir()
	var jobs [2][]Job
	for i, c := range [][]string{nil, child} {
		h, err := New(Options{Lab: lab, Child: c, Repeats: 2, Out: io.Discard, Now: func() time.Time { return now }, Commit: "test"})
		if err != nil {
			t.Fatal(err)
		}
		jobs[i] = h.Submit(context.Background(), filepath.Join("testdata", "sweep.go"), "from\na test")
		h.Close()
	}
	if len(jobs[1]) != len(jobs[0]) || len(jobs[0]) < 4 {
		t.Fatalf("%d jobs in the child, %d here; want the same, at least 4", len(jobs[1]), len(jobs[0]))
	}
	for i := range jobs[0] {
		here, there := jobs[0][i], jobs[1][i]
		if !strings.HasPrefix(there.ID, "r20260102T030405Z-") || there.Submitted != now {
			t.Errorf("job %d: id %s submitted %v, want the supervisor's clock %v", i, there.ID, there.Submitted, now)
		}
		if there.RepeatOf != "" {
			there.RepeatOf = here.RepeatOf
		}
		there.ID = here.ID
		if !reflect.DeepEqual(here, there) {
			t.Errorf("job %d differs:\nhere  %+v\nchild %+v", i, here, there)
		}
	}
}

// The cost of evaluating a script in a child instead of in this process (one process start, the
// ledger opened read-only, the request and reply as JSON): compare the two ns/op.
func BenchmarkSubmit(b *testing.B) {
	child, err := SelfChild()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		child []string
	}{{"here", nil}, {"child", child}} {
		b.Run(bc.name, func(b *testing.B) {
			h, err := New(Options{Lab: b.TempDir(), Child: bc.child, Out: io.Discard, Commit: "test"})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			for i := 0; i < b.N; i++ {
				if jobs := h.Submit(context.Background(), filepath.Join("testdata", "baseline.go"), ""); jobs[0].Failure != nil {
					b.Fatal(jobs[0].Failure)
				}
			}
		})
	}
}

// crashTrim: the console gets everything up to a Go crash and crashLines lines of it, then one
// line saying how much was left out — however the output is split into writes.
func TestCrashTrim(t *testing.T) {
	var in strings.Builder
	in.WriteString("step 1 loss 5.0\nstep 2 loss 4.9\nno panic: here (not at a line start)? fine\n")
	in.WriteString("panic: boom [recovered]\n\ngoroutine 8 [running]:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&in, "frame %d\n", i)
	}
	for _, chunk := range []int{1, 7, 1 << 20} {
		var out strings.Builder
		c := &crashTrim{w: &out, keep: 5, where: "see the log"}
		b := []byte(in.String())
		for len(b) > 0 {
			n, err := c.Write(b[:min(chunk, len(b))])
			if err != nil || n != min(chunk, len(b)) {
				t.Fatalf("chunk %d: Write = %d, %v", chunk, n, err)
			}
			b = b[n:]
		}
		c.finish()
		want := "step 1 loss 5.0\nstep 2 loss 4.9\nno panic: here (not at a line start)? fine\n" +
			"panic: boom [recovered]\n\ngoroutine 8 [running]:\nframe 0\nframe 1\nframe 2\n" +
			"… (97 more lines of the crash left out: see the log)\n"
		if out.String() != want {
			t.Errorf("chunk %d: console got\n%s\nwant\n%s", chunk, out.String(), want)
		}
	}
}

// tailWriter: the row's error is the crash's start (when the tail no longer holds it) and the end
// of the output, never the same lines twice.
func TestTailWriter(t *testing.T) {
	short := "step 1\npanic: boom\n\ngoroutine 1 [running]:\nmain.f()\n"
	tw := &tailWriter{max: 1 << 10}
	tw.Write([]byte(short))
	if got := tw.String(); got != short {
		t.Errorf("short output: %q, want it once as it was", got)
	}
	tw = &tailWriter{max: 1 << 10}
	tw.Write([]byte("step 1\nfatal error: stack overflow\n"))
	for i := 0; i < 500; i++ {
		fmt.Fprintf(tw, "frame %d\n", i)
	}
	got := tw.String()
	if !strings.HasPrefix(got, "fatal error: stack overflow\nframe 0\n") || !strings.Contains(got, "\n…\n") ||
		!strings.HasSuffix(got, "frame 499\n") || strings.Count(got, "fatal error") != 1 || len(got) > 1500+1024+10 {
		t.Errorf("long output: %d bytes\n%s", len(got), got)
	}
}

// MemLimit: 3 × the analytic need + 2 GiB on the CPU; none for a GPU run (the CUDA driver's
// address-space reservation would fail under it).
func TestMemLimit(t *testing.T) {
	cfg := config.Default()
	if got, want := MemLimit(cfg), int64(3*cfg.MemoryNeed())+2<<30; got != want || got <= 2<<30 {
		t.Errorf("cpu: MemLimit = %d, want %d", got, want)
	}
	for _, b := range []string{"cuda", "cuda-fp32"} {
		cfg.Backend = b
		if got := MemLimit(cfg); got != 0 {
			t.Errorf("%s: MemLimit = %d, want 0 (no limit)", b, got)
		}
	}
}

// checkFailure: f is nil when status is "", else has that status and a message mentioning want.
func checkFailure(t *testing.T, name string, f *Failure, status, want string) {
	t.Helper()
	switch {
	case status == "" && f != nil:
		t.Errorf("%s: failure %v, want none", name, f)
	case status != "" && f == nil:
		t.Errorf("%s: no failure, want %s", name, status)
	case f != nil && (f.Status != status || !strings.Contains(f.Msg, want)):
		t.Errorf("%s: %s %q, want %s mentioning %q", name, f.Status, f.Msg, status, want)
	}
}
