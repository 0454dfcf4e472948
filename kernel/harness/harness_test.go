package harness

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/kernel/harness/harnesstest"
	"github.com/anelab/anelab/kernel/ledger"
)

// newLab is a harness on a fresh lab folder with the fake runner and short script/hook limits.
func newLab(t *testing.T) (*Harness, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	h, err := New(Options{Lab: t.TempDir(), Runner: harnesstest.FakeRunner, Out: &out, Commit: "test",
		ScriptTimeout: 500 * time.Millisecond, HookTimeout: 200 * time.Millisecond, Abandon: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, &out
}

func run(t *testing.T, h *Harness, name string) ledger.Run {
	t.Helper()
	runs, err := h.RunScript(context.Background(), filepath.Join("testdata", name), "")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(runs) != 1 {
		t.Fatalf("%s: %d runs, want 1", name, len(runs))
	}
	return runs[0]
}

// fakeVal is FakeRunner's val_loss for a constant lr over steps steps (no warmup/cosine).
func fakeVal(lr float64, steps int) float64 {
	d := math.Log10(lr) + 3
	return 2 + d*d + 1/(1+0.05*float64(steps))
}

// TestBadScripts: each broken script ends as one ledger row of the right status with a clear
// message, and the process (this test) goes on.
func TestBadScripts(t *testing.T) {
	h, _ := newLab(t)
	cases := []struct {
		script, status string
		want           []string // substrings of the recorded error
	}{
		{"forbidden.go", ledger.StatusInvalid, []string{`forbidden.go:6:2: import "os" is not allowed`, "scripts may import only", "math/rand"}},
		{"syntax.go.txt", ledger.StatusInvalid, []string{"syntax error", "syntax.go.txt:9:2: expected operand"}},
		{"hookpanic.go", ledger.StatusCrash, []string{"panic in the OnStep hook at step 3", "index out of range",
			"hookpanic.go:8:", "hookpanic.go:16:"}},
		{"hookloop.go", ledger.StatusTimeout, []string{"LR hook did not return within 200ms"}},
		{"toploop.go", ledger.StatusTimeout, []string{"calling Experiment() did not finish within 500ms"}},
		{"initloop.go", ledger.StatusTimeout, []string{"evaluating the script's top level did not finish"}},
		{"scriptpanic.go", ledger.StatusCrash, []string{"panic while calling Experiment()", "scriptpanic.go:8:"}},
		{"invalid.go", ledger.StatusInvalid, []string{"2 problem(s)", "model.heads = 5", `optim.name = "sgd"`}},
		{"diverge.go", ledger.StatusDiverged, []string{"mean lr 10 > 1"}},
	}
	for _, c := range cases {
		if raceEnabled && c.script == "initloop.go" {
			continue // yaegi's ExecuteWithContext races with itself on a timeout (see race_on_test.go)
		}
		r := run(t, h, c.script)
		if r.Status != c.status {
			t.Errorf("%s: status %q, want %q (error: %s)", c.script, r.Status, c.status, r.Error)
		}
		for _, w := range c.want {
			if !strings.Contains(r.Error, w) {
				t.Errorf("%s: error does not mention %q:\n%s", c.script, w, r.Error)
			}
		}
		if r.Decision != "" {
			t.Errorf("%s: decision %q for a failed run", c.script, r.Decision)
		}
		got, err := h.Ledger.Get(context.Background(), r.ID)
		if err != nil || got.Status != c.status {
			t.Errorf("%s: ledger row %+v, %v", c.script, got.Status, err)
		}
		log, _ := os.ReadFile(filepath.Join(h.opt.Lab, "runs", r.ID, "log.txt"))
		if !bytes.Contains(log, []byte("result:           "+c.status)) {
			t.Errorf("%s: log.txt lacks the verdict:\n%s", c.script, log)
		}
	}
	if _, ok, _ := h.Ledger.Head(context.Background(), "main"); ok {
		t.Error("failed runs moved the head")
	}
	tsv, _ := os.ReadFile(filepath.Join(h.opt.Lab, ledger.TSVFile))
	if n := strings.Count(string(tsv), "\n"); n != len(cases)+1 && !raceEnabled {
		t.Errorf("results.tsv has %d lines, want %d", n, len(cases)+1)
	}
}

// TestKeepDiscard: a baseline, a worse run (discard: head and best unchanged), a better run
// (keep: head moves).
func TestKeepDiscard(t *testing.T) {
	h, out := newLab(t)
	ctx := context.Background()
	base := run(t, h, "baseline.go")
	if base.Status != ledger.StatusOK || base.Decision != ledger.Keep {
		t.Fatalf("baseline: %s/%s %s", base.Status, base.Decision, base.Error)
	}
	worse := run(t, h, "worse.go")
	if worse.Decision != ledger.Discard || worse.PrevHead != base.ID || worse.ValLoss <= base.ValLoss {
		t.Errorf("worse: %s val %g (base %g), prev head %s", worse.Decision, worse.ValLoss, base.ValLoss, worse.PrevHead)
	}
	head, _, _ := h.Ledger.Head(ctx, "main")
	if head.ID != base.ID {
		t.Errorf("after a discard the head is %s, want %s", head.ID, base.ID)
	}
	if _, err := os.Stat(filepath.Join(h.opt.Lab, "runs", worse.ID, "model.ckpt")); !os.IsNotExist(err) {
		t.Errorf("a discarded run kept its checkpoint (%v)", err)
	}
	better := run(t, h, "better.go")
	if better.Decision != ledger.Keep || better.PrevBest != base.ValLoss {
		t.Errorf("better: %s val %g, prev best %g", better.Decision, better.ValLoss, better.PrevBest)
	}
	head, _, _ = h.Ledger.Head(ctx, "main")
	if head.ID != better.ID {
		t.Errorf("after a keep the head is %s, want %s", head.ID, better.ID)
	}
	// better.go starts from lab.Best(): the baseline's config with lr 8e-4. The fake's loss
	// with warmup 5 / cosine to 100 over 20 steps is below the baseline's (lr 3e-4).
	if better.ValLoss >= base.ValLoss {
		t.Errorf("better val %g ≥ baseline %g", better.ValLoss, base.ValLoss)
	}
	if !strings.Contains(out.String(), "lineage_best:     "+f6(better.ValLoss)+" ("+better.ID+", new best of lineage main; was "+f6(base.ValLoss)) {
		t.Errorf("verdict block missing from the output:\n%s", out.String())
	}
	for _, f := range []string{"config.json", "result.json", "curve.tsv", "manifest.json", "log.txt", "better.go", "job.json", "model.ckpt"} {
		if _, err := os.Stat(filepath.Join(h.opt.Lab, "runs", better.ID, f)); err != nil {
			t.Errorf("run folder: %v", err)
		}
	}
	curve, _ := os.ReadFile(filepath.Join(h.opt.Lab, "runs", better.ID, "curve.tsv"))
	if n := strings.Count(string(curve), "\n"); n != 21 {
		t.Errorf("curve.tsv has %d lines, want header + 20 steps", n)
	}
	job, err := ReadJob(filepath.Join(h.opt.Lab, "runs", better.ID, "job.json"))
	if err != nil || job.Config.Optim.LR != 8e-4 || job.ID != better.ID {
		t.Errorf("job.json: %+v %v", job, err)
	}
}

func f6(x float64) string { return strconv.FormatFloat(x, 'f', 6, 64) }

// TestSweep: three specs, three rows, each with its own hook (the closures capture per-spec
// values) and the lineage the specs name.
func TestSweep(t *testing.T) {
	h, _ := newLab(t)
	runs, err := h.RunScript(context.Background(), "testdata/sweep.go", "lr sweep")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 {
		t.Fatalf("%d runs, want 3", len(runs))
	}
	for i, lr := range []float64{2e-4, 1e-3, 2e-2} {
		r := runs[i]
		if want := fakeVal(lr, 20); math.Abs(r.ValLoss-want) > 1e-9 {
			t.Errorf("spec %d: val %g, want %g (the hook's constant lr %g)", i, r.ValLoss, want, lr)
		}
		if r.Lineage != "sweep" || !strings.HasPrefix(r.Description, "lr sweep: lr ") {
			t.Errorf("spec %d: lineage %q description %q", i, r.Lineage, r.Description)
		}
	}
	want := []string{ledger.Keep, ledger.Keep, ledger.Discard}
	for i, r := range runs {
		if r.Decision != want[i] {
			t.Errorf("spec %d: %s, want %s", i, r.Decision, want[i])
		}
	}
}

// TestContinue: a Continue spec resumes from the lineage head's checkpoint; kept, it moves the
// head; the first one (no head yet) starts fresh.
func TestContinue(t *testing.T) {
	h, _ := newLab(t)
	first := run(t, h, "continue.go")
	if first.Parent != "" || first.Decision != ledger.Keep {
		t.Fatalf("first: parent %q decision %s %s", first.Parent, first.Decision, first.Error)
	}
	second := run(t, h, "continue.go")
	if second.Parent != first.ID || second.Decision != ledger.Keep {
		t.Fatalf("second: parent %q (want %s) decision %s %s", second.Parent, first.ID, second.Decision, second.Error)
	}
	// It resumed 20 steps: its loss is the fake's at 40 total steps.
	if want := fakeVal(1e-3, 40); math.Abs(second.ValLoss-want) > 0.2 {
		t.Errorf("second val %g, want about %g", second.ValLoss, want)
	}
	head, _, _ := h.Ledger.Head(context.Background(), "long")
	if head.ID != second.ID || head.Checkpoint == "" {
		t.Errorf("head %s ckpt %q, want %s with a checkpoint", head.ID, head.Checkpoint, second.ID)
	}
}

// A spec the lab refuses is that spec's invalid row, naming why, and the rest of the sweep runs:
// a NaN learning rate (issue 10, defect 2), a model that needs more memory than the machine has
// (refused before its process starts: train.CheckMemory).
func TestInvalidSpecInSweep(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{"nansweep.go", "optim.lr = NaN"},
		{"oversized.go", "GiB to train"},
	} {
		h, _ := newLab(t)
		runs, err := h.RunScript(context.Background(), filepath.Join("testdata", tc.script), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 2 || runs[0].Status != ledger.StatusInvalid || runs[1].Status != ledger.StatusOK {
			t.Fatalf("%s: runs %+v, want invalid then ok", tc.script, runs)
		}
		if !strings.Contains(runs[0].Error, tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.script, runs[0].Error, tc.want)
		}
	}
}

// Issue 10, defect 10: control characters in a description (newlines, tabs, escapes), from the
// script or from -m, become spaces: the row and results.tsv keep one line per run.
func TestDescriptionsAreOneLine(t *testing.T) {
	h, _ := newLab(t)
	runs, err := h.RunScript(context.Background(), filepath.Join("testdata", "multiline.go"), "try\nthis")
	if err != nil {
		t.Fatal(err)
	}
	if want := "try this: first line second part [2J"; runs[0].Description != want {
		t.Errorf("description %q, want %q", runs[0].Description, want)
	}
	tsv, err := os.ReadFile(filepath.Join(h.opt.Lab, "results.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(tsv), "\n"); n != 2 {
		t.Errorf("results.tsv has %d lines, want header + 1:\n%s", n, tsv)
	}
}

// The verdict block shows a long error's first lines (a crash's start, up to its "…") and says
// where the whole of it is.
func TestErrorLines(t *testing.T) {
	long := strings.Repeat("frame\n", 100) + "end"
	crash := "stack overflow\nfatal error: stack overflow\n\ngoroutine 1\n…\n" + long
	for _, tc := range []struct{ msg, want string }{
		{"one line", "one line"},
		{"a\nb\nc", "a\nb\nc"},
		{long, strings.Repeat("frame\n", 30) + "… (71 more lines: the whole error is in d/result.json)"},
		{crash, "stack overflow\nfatal error: stack overflow\n\ngoroutine 1\n… (102 more lines: the whole error is in d/result.json)"},
	} {
		if got := errorLines(tc.msg, "d"); got != tc.want {
			t.Errorf("errorLines(%.20q…) =\n%s\nwant\n%s", tc.msg, got, tc.want)
		}
	}
}
