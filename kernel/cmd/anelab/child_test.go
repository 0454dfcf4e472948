package main

import (
	"strings"
	"testing"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
)

// Issue 10, defect 1: what kills the run's process — a panic in a goroutine the script starts, a
// stack overflow, an allocation past the run's memory limit — ends as a recorded run with its
// cause, while `anelab run` itself exits normally (status 1: a run did not train to the end).
func TestChildDeathsAreRecorded(t *testing.T) {
	lab := t.TempDir()
	for _, tc := range []struct {
		script, status string
		want           []string
	}{
		{"gopanic.go", ledger.StatusCrash, []string{"panic that ended the run's process", "boom in a script goroutine"}},
		{"recurse.go", ledger.StatusCrash, []string{"stack overflow"}},
		{"hog.go", harness.StatusOOM, []string{"out of memory", "memory limit of"}},
	} {
		out, code := runCode(t, lab, "run", testdata+tc.script, "--steps", "40", "--hook-timeout", "60s")
		if code != 1 || !strings.Contains(out, "did not train to the end") {
			t.Errorf("%s: exit %d, want 1 with the runs listed\n%s", tc.script, code, tail(out))
		}
		runs := ledgerRuns(t, lab)
		r := runs[len(runs)-1]
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

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}
