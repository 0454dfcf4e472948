package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/anelab/anelab/internal/pgtest"
	"github.com/anelab/anelab/kernel/ledger"
)

// TestMain lets the tests run this binary as `anelab`: a child started with ANELAB_TEST_MAIN=1
// runs main() with its arguments, so the tests exercise real, separate processes without a
// separate build. The tests' own labs are SQLite unless a test names a database (a developer's
// ANELAB_DB is not theirs to write to); pgtest.Main stops the PostgreSQL server if one started.
func TestMain(m *testing.M) {
	if os.Getenv("ANELAB_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Unsetenv(ledger.EnvDB)
	pgtest.Main(m)
}

const testdata = "../../harness/testdata/"

// anelab starts `anelab args…` as a child process with the fake runner (tests only).
func anelab(lab string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "ANELAB_TEST_MAIN=1", "ANELAB_FAKE_RUNNER=1", "ANELAB_FAKE_STEP_MS=10", "ANELAB_LAB="+lab)
	return cmd
}

func mustRun(t *testing.T, lab string, args ...string) string {
	t.Helper()
	out, err := anelab(lab, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("anelab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func ledgerRuns(t *testing.T, lab string) []ledger.Run {
	t.Helper()
	l, err := ledger.Open(lab)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	runs, err := l.Runs(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// TestTwoRunsAtOnce starts two `anelab run` processes together on one lab: both rows land in
// the ledger and in results.tsv.
func TestTwoRunsAtOnce(t *testing.T) {
	lab := t.TempDir()
	cmds := []*exec.Cmd{
		anelab(lab, "run", testdata+"baseline.go", "-m", "first", "--steps", "30"),
		anelab(lab, "run", testdata+"worse.go", "-m", "second", "--steps", "30"),
	}
	outs := make([]bytes.Buffer, len(cmds))
	for i, c := range cmds {
		c.Stdout, c.Stderr = &outs[i], &outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cmds))
	for i, c := range cmds {
		wg.Add(1)
		go func(i int, c *exec.Cmd) { defer wg.Done(); errs[i] = c.Wait() }(i, c)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
	}
	runs := ledgerRuns(t, lab)
	if len(runs) != 2 {
		t.Fatalf("%d ledger rows, want 2", len(runs))
	}
	tsv, err := os.ReadFile(filepath.Join(lab, ledger.TSVFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if !strings.Contains(string(tsv), r.ID+"\t") {
			t.Errorf("results.tsv lacks %s:\n%s", r.ID, tsv)
		}
	}
	if n := strings.Count(string(tsv), "\n"); n != 3 {
		t.Errorf("results.tsv has %d lines, want header + 2", n)
	}
}

// TestBestFollowsKeeps: baseline, then a worse run (discard: `anelab best` unchanged), then a
// better one (keep: `anelab best` changes); the printed script type-checks with the compiler
// and, run again, reproduces the best config. Then `anelab plot` draws the ledger.
func TestBestFollowsKeeps(t *testing.T) {
	lab := t.TempDir()
	out := mustRun(t, lab, "run", testdata+"baseline.go")
	if !strings.Contains(out, "result:           keep") {
		t.Fatalf("baseline not kept:\n%s", out)
	}
	best1 := mustRun(t, lab, "best")

	out = mustRun(t, lab, "run", testdata+"worse.go", "-m", "try a tiny lr")
	if !strings.Contains(out, "result:           discard") || !strings.Contains(out, "unchanged; lineage main") {
		t.Fatalf("worse run not discarded:\n%s", out)
	}
	if best2 := mustRun(t, lab, "best"); best2 != best1 {
		t.Errorf("a discarded run changed `anelab best`:\n%s\nwas:\n%s", best2, best1)
	}

	out = mustRun(t, lab, "run", testdata+"better.go")
	if !strings.Contains(out, "result:           keep") {
		t.Fatalf("better run not kept:\n%s", out)
	}
	best3 := mustRun(t, lab, "best")
	if best3 == best1 || !strings.Contains(best3, "c.Optim.LR = 0.0008") {
		t.Errorf("`anelab best` after a keep:\n%s", best3)
	}

	// The printed script compiles with the real toolchain…
	dir, err := os.MkdirTemp(".", "tmp-best-") // inside the module, so its imports resolve
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "best.go")
	if err := os.WriteFile(file, []byte(best3), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "vet", file).CombinedOutput(); err != nil {
		t.Errorf("go vet on `anelab best` output: %v\n%s", err, out)
	}
	// …and running it trains the same config: a tie with the best, so within noise, never a keep.
	out = mustRun(t, lab, "run", file)
	runs := ledgerRuns(t, lab)
	last, kept := runs[len(runs)-1], runs[2]
	if last.Config != kept.Config || last.ValLoss != kept.ValLoss || last.Decision != ledger.WithinNoise {
		t.Errorf("rerun of the best: %s val %g config %s\nwant val %g config %s", last.Decision, last.ValLoss, last.Config,
			kept.ValLoss, kept.Config)
	}

	// A failing script: exit status 1, a clear message, a row.
	cmd := anelab(lab, "run", testdata+"forbidden.go")
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), `import "os" is not allowed`) || !strings.Contains(string(b), "result:           invalid") {
		t.Errorf("forbidden import: err %v\n%s", err, b)
	}

	out = mustRun(t, lab, "results")
	for _, w := range []string{"keep", "discard", "invalid", "lineage main: 5 runs, 2 kept"} {
		if !strings.Contains(out, w) {
			t.Errorf("anelab results lacks %q:\n%s", w, out)
		}
	}

	mustRun(t, lab, "plot")
	f, err := os.Open(filepath.Join(lab, "progress.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("progress.png: %v", err)
	}
}
