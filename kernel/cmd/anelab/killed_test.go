package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anelab/anelab/kernel/ledger"
)

// TestKilledRun kills an `anelab run` with SIGKILL while it trains: `anelab results` and
// results.tsv show it as killed, and the next runs are kept or discarded against the head as if
// it had never run.
func TestKilledRun(t *testing.T) {
	lab := t.TempDir()
	out := mustRun(t, lab, "run", testdata+"baseline.go", "--steps", "30")
	if !strings.Contains(out, "result:           keep") {
		t.Fatalf("baseline not kept:\n%s", out)
	}
	base := ledgerRuns(t, lab)[0]
	best1 := mustRun(t, lab, "best")

	// The better script would be kept; it is killed mid-training instead.
	cmd := anelab(lab, "run", testdata+"better.go", "--steps", "100000")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var victim ledger.Run
	for deadline := time.Now().Add(30 * time.Second); victim.ID == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no running row after 30s:\n%s", buf.String())
		}
		for _, r := range ledgerRuns(t, lab) {
			if r.Status == ledger.StatusRunning {
				victim = r
			}
		}
	}
	if victim.PID != cmd.Process.Pid {
		t.Errorf("running row has pid %d, want %d", victim.PID, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() // reap the child: until then its pid still exists (a zombie)

	out = mustRun(t, lab, "results")
	if !strings.Contains(out, victim.ID) || !strings.Contains(out, "killed") ||
		!strings.Contains(out, "ended without recording a result") || !strings.Contains(out, "1 kept") {
		t.Errorf("anelab results after the kill:\n%s", out)
	}
	// `anelab results` only reads (it works on a read-only lab); the next `anelab run` rewrites
	// results.tsv with the killed row (checked below).
	if best := mustRun(t, lab, "best"); best != best1 {
		t.Errorf("the killed run changed `anelab best`:\n%s\nwas:\n%s", best, best1)
	}

	// The next runs decide against the baseline, as without the killed run.
	out = mustRun(t, lab, "run", testdata+"worse.go", "--steps", "30")
	if !strings.Contains(out, "result:           discard") {
		t.Fatalf("worse run after the kill not discarded:\n%s", out)
	}
	mustRun(t, lab, "run", testdata+"better.go", "--steps", "30")
	runs := ledgerRuns(t, lab)
	if len(runs) != 4 {
		t.Fatalf("%d ledger rows, want 4", len(runs))
	}
	killed, worse, better := runs[1], runs[2], runs[3]
	if killed.ID != victim.ID || killed.Status != ledger.StatusKilled || killed.Decision != "" {
		t.Errorf("killed row: %s %q %q", killed.ID, killed.Status, killed.Decision)
	}
	if worse.Decision != ledger.Discard || worse.PrevHead != base.ID {
		t.Errorf("worse run: %q against %q, want discard against the baseline %s", worse.Decision, worse.PrevHead, base.ID)
	}
	if better.Decision != ledger.Keep || better.PrevHead != base.ID {
		t.Errorf("better run: %q against %q, want keep against the baseline %s", better.Decision, better.PrevHead, base.ID)
	}
	tsv, _ := os.ReadFile(filepath.Join(lab, ledger.TSVFile))
	if n := strings.Count(string(tsv), "\n"); n != 5 || !strings.Contains(string(tsv), "\tkilled\t") {
		t.Errorf("results.tsv, want header + 4 rows with the killed one:\n%s", tsv)
	}
}
