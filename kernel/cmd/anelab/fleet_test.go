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

// TestTwoMachinesOnePostgres: two lab folders (two machines) name one PostgreSQL database in
// ANELAB_DB and run `anelab run` at the same time, then once more: every run lands in the one
// ledger, each was judged against the head the previous keep left, no ledger.db is created, and
// `results`, `best` and `plot` read the shared ledger unchanged from either folder — and from a
// third, empty one (a laptop that only has the URL).
func TestTwoMachinesOnePostgres(t *testing.T) {
	url := pgtest.URL(t)
	labA, labB, laptop := t.TempDir(), t.TempDir(), t.TempDir()
	withDB := func(c *exec.Cmd) *exec.Cmd {
		c.Env = append(c.Env, ledger.EnvDB+"="+url)
		return c
	}
	cmds := []*exec.Cmd{
		withDB(anelab(labA, "run", testdata+"baseline.go", "-m", "machine A")),
		withDB(anelab(labB, "run", testdata+"worse.go", "-m", "machine B")),
	}
	outs := make([]bytes.Buffer, len(cmds))
	var wg sync.WaitGroup
	for i, c := range cmds {
		c.Stdout, c.Stderr = &outs[i], &outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.Wait() }()
	}
	wg.Wait()
	for i, c := range cmds {
		if !c.ProcessState.Success() {
			t.Fatalf("machine %d: %v\n%s", i, c.ProcessState, outs[i].String())
		}
	}
	if out, err := withDB(anelab(labB, "run", testdata+"better.go", "-m", "machine B again")).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "result:           keep") {
		t.Fatalf("better run on B: %v\n%s", err, out)
	}

	l, err := ledger.OpenReadOnlyURL(laptop, url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	runs, err := l.Runs(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 {
		t.Fatalf("%d runs in the shared ledger, want 3", len(runs))
	}
	head, kept := "", 0
	for _, r := range runs {
		if r.Status != ledger.StatusOK || r.PrevHead != head {
			t.Errorf("run %s (%s): status %s, judged against %q, head then %q", r.ID, r.Description, r.Status, r.PrevHead, head)
		}
		if r.Decision == ledger.Keep {
			head, kept = r.ID, kept+1
		}
	}
	if runs[2].Decision != ledger.Keep || !strings.Contains(runs[2].Description, "machine B again") {
		t.Errorf("last run %s %q, want the better run kept", runs[2].Decision, runs[2].Description)
	}
	for _, lab := range []string{labA, labB} {
		if _, err := os.Stat(filepath.Join(lab, ledger.File)); !os.IsNotExist(err) {
			t.Errorf("%s has a %s (%v): with %s set the ledger is the database", lab, ledger.File, err, ledger.EnvDB)
		}
	}
	// results.tsv is refreshed by the machine that records: B recorded last, so its file has all.
	if tsv, err := os.ReadFile(filepath.Join(labB, ledger.TSVFile)); err != nil || strings.Count(string(tsv), "\n") != 4 {
		t.Errorf("B's results.tsv (%v):\n%s\nwant header + 3 rows", err, tsv)
	}

	var best []string
	for _, lab := range []string{labA, labB, laptop} {
		out, err := withDB(anelab(lab, "results")).CombinedOutput()
		if err != nil {
			t.Fatalf("results in %s: %v\n%s", lab, err, out)
		}
		for _, r := range runs {
			if !strings.Contains(string(out), r.ID) {
				t.Errorf("results in %s lacks %s:\n%s", lab, r.ID, out)
			}
		}
		if want := "lineage main: 3 runs, " + string(rune('0'+kept)) + " kept"; !strings.Contains(string(out), want) {
			t.Errorf("results in %s lacks %q:\n%s", lab, want, out)
		}
		b, err := withDB(anelab(lab, "best")).CombinedOutput()
		if err != nil {
			t.Fatalf("best in %s: %v\n%s", lab, err, b)
		}
		best = append(best, string(b))
	}
	if best[0] != best[1] || best[1] != best[2] || !strings.Contains(best[0], "c.Optim.LR = 0.0008") {
		t.Errorf("`anelab best` differs between machines or is not the better run:\nA:\n%s\nB:\n%s\nlaptop:\n%s", best[0], best[1], best[2])
	}
	if out, err := withDB(anelab(laptop, "plot")).CombinedOutput(); err != nil {
		t.Fatalf("plot: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(laptop, "progress.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("progress.png: %v", err)
	}
}
