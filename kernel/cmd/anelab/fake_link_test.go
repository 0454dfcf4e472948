package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The test doubles (harness/harnesstest: the fake trainer) are test-only: neither the command nor
// the notebook API links them, so no switch in a shipped binary can make it skip training.
func TestShippedCodeLinksNoFakes(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the packages' dependencies")
	}
	out, err := exec.Command(goBin, "list", "-f", `{{.ImportPath}}|{{join .Deps " "}}`,
		"github.com/anelab/anelab/kernel/cmd/anelab", "github.com/anelab/anelab/kernel/nb").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("go list printed %d lines, want 2:\n%s", len(lines), out)
	}
	for _, l := range lines {
		path, deps, _ := strings.Cut(l, "|")
		deps = " " + deps + " "
		if !strings.Contains(deps, " github.com/anelab/anelab/kernel/harness ") {
			t.Errorf("%s: go list shows no dependency on the harness: is the listing right?", path)
		}
		if strings.Contains(deps, " github.com/anelab/anelab/kernel/harness/harnesstest ") {
			t.Errorf("%s links the test doubles (kernel/harness/harnesstest)", path)
		}
	}
}
