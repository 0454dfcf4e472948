package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
)

// Issue 10, defect 1: what kills the process running script code — a panic in a goroutine the
// script starts (in Experiment, in Sweep, in a hook), a stack overflow (in Experiment, in a hook),
// an allocation past the memory limit (64 × 1 GiB in Experiment; 512 MiB per step in a hook) —
// ends as a recorded run with its cause and output tail, while `anelab run` itself exits
// normally (status 1: a run did not train to the end). The script and hook timeouts are far
// longer than any of these takes, so a loaded machine cannot turn a crash into a timeout.
func TestChildDeathsAreRecorded(t *testing.T) {
	lab := t.TempDir()
	for _, tc := range []struct {
		script, status string
		want           []string
	}{
		{"gopanic_experiment.go", ledger.StatusCrash, []string{"panic that ended the process of evaluating the script", "boom in Experiment's goroutine"}},
		{"gopanic_sweep.go", ledger.StatusCrash, []string{"panic that ended the process of evaluating the script", "boom in Sweep's goroutine"}},
		{"gopanic.go", ledger.StatusCrash, []string{"panic that ended the process of the run", "boom in a hook's goroutine"}},
		{"recurse_experiment.go", ledger.StatusCrash, []string{"stack overflow while evaluating the script"}},
		{"recurse.go", ledger.StatusCrash, []string{"stack overflow during the run"}},
		{"alloc.go", harness.StatusOOM, []string{"out of memory: evaluating the script exceeded its memory limit of 4096 MiB"}},
		{"hog.go", harness.StatusOOM, []string{"out of memory: the run exceeded its memory limit of", "MiB (3 × the config's analytic need + 2 GiB, above what its process held at start)"}},
	} {
		before := len(ledgerRuns(t, lab))
		out, code := runCode(t, lab, "run", testdata+tc.script, "--steps", "40", "--hook-timeout", "2m", "--script-timeout", "2m")
		if code != 1 || !strings.Contains(out, "did not train to the end") {
			t.Errorf("%s: exit %d, want 1 with the runs listed\n%s", tc.script, code, tail(out))
		}
		runs := ledgerRuns(t, lab)
		if len(runs) != before+1 {
			t.Errorf("%s: %d new rows, want 1", tc.script, len(runs)-before)
			continue
		}
		r := runs[len(runs)-1]
		t.Logf("%s: %s\n%s", tc.script, r.Status, r.Error[:min(len(r.Error), 400)])
		if r.Status != tc.status {
			t.Errorf("%s: status %q, want %q\n%s", tc.script, r.Status, tc.status, r.Error[:min(len(r.Error), 600)])
		}
		for _, w := range tc.want {
			if !strings.Contains(r.Error, w) {
				t.Errorf("%s: error does not mention %q:\n%s", tc.script, w, tail(r.Error))
			}
		}
	}
}

// A spec whose run's process dies is recorded, and the sweep goes on with the next spec.
func TestSweepGoesOnAfterChildDeath(t *testing.T) {
	lab := t.TempDir()
	out, code := runCode(t, lab, "run", testdata+"sweepdeath.go", "--steps", "20", "--hook-timeout", "2m")
	if code != 1 {
		t.Errorf("exit %d, want 1 (one run did not train)\n%s", code, tail(out))
	}
	runs := ledgerRuns(t, lab)
	var got []string
	for _, r := range runs {
		got = append(got, r.Description+"="+r.Status)
	}
	want := []string{"spec A=ok", "spec B=crash", "spec C=ok"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("runs %v, want %v\n%s", got, want, tail(out))
	}
	if len(runs) == 3 && !strings.Contains(runs[1].Error, "boom in spec B") {
		t.Errorf("spec B's error does not name its panic:\n%s", tail(runs[1].Error))
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// Ctrl-C (SIGINT to `anelab run`) while the script is being evaluated, and while a run trains:
// each ends as a recorded run with status interrupted (not crash), and `anelab run` exits
// normally. The signal is sent once the child has printed that it is under way.
func TestRunInterrupted(t *testing.T) {
	for _, tc := range []struct {
		script, marker string
		args           []string
	}{
		{"slowexperiment.go", "evaluating: started", []string{"--script-timeout", "2m"}},
		{"baseline.go", "fake runner (tests only)", []string{"--steps", "100000"}},
	} {
		lab := t.TempDir()
		cmd := anelab(lab, append([]string{"run", testdata + tc.script}, tc.args...)...)
		pr, pw := io.Pipe()
		cmd.Stdout, cmd.Stderr = pw, pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		seen := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				if strings.Contains(sc.Text(), tc.marker) {
					select {
					case seen <- true:
					default:
					}
				}
			}
		}()
		select {
		case <-seen:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("%s: %q never printed", tc.script, tc.marker)
		}
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		pw.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s: anelab run ended with %v, want exit status 1", tc.script, err)
		}
		runs := ledgerRuns(t, lab)
		if len(runs) != 1 || runs[0].Status != harness.StatusInterrupted {
			for _, r := range runs {
				t.Logf("%s %s: %s", r.ID, r.Status, tail(r.Error))
			}
			t.Errorf("%s: %d rows, want one interrupted", tc.script, len(runs))
		}
	}
}
