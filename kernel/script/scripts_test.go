package script

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/kernel/lab"
)

// The experiment scripts of the project (scripts/*.go).
const scriptsDir = "../../scripts"

func scriptFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(scriptsDir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in %s (%v)", scriptsDir, err)
	}
	return files
}

// TestScriptsCompile type-checks every script with the real Go toolchain (`go vet FILE`, one
// file at a time: each script is its own package and carries //go:build ignore, so the module's
// ./... never sees them together).
func TestScriptsCompile(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	for _, f := range scriptFiles(t) {
		if out, err := exec.Command(gobin, "vet", f).CombinedOutput(); err != nil {
			t.Errorf("go vet %s: %v\n%s", f, err, out)
		}
	}
}

// TestScriptsRun runs every script through the host as `anelab run` would: it must load, return
// specs with valid configs, and its hooks must survive a few calls.
func TestScriptsRun(t *testing.T) {
	for _, f := range scriptFiles(t) {
		p, err := Load(f, Options{})
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		ss, err := p.Specs()
		if err != nil && strings.Contains(err.Error(), "lab.FromRun(") {
			// A script that starts from a recorded run can only be evaluated against a lab holding it
			// (`anelab vet SCRIPT --lab DIR` does that); this test has no lab.
			t.Logf("%s: needs a lab holding its lab.FromRun run; not evaluated here: %v", f, err)
			continue
		}
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for i, s := range ss {
			if s.Description == "" {
				t.Errorf("%s spec %d: no description", f, i)
			}
			if err := s.Config.Validate(); err != nil {
				t.Errorf("%s spec %d: %v", f, i, err)
			}
			if s.LR == nil && s.OnStep == nil {
				continue
			}
			// A Guard's Close stops its interpreter: give each spec with hooks a fresh one.
			p2, err := Load(f, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ss2, err := p2.Specs()
			if err != nil {
				t.Fatal(err)
			}
			s = ss2[i]
			g := p2.Guard(s, time.Second, nil)
			lr, on := g.LR(s.LR), g.OnStep(s.OnStep)
			for step := 0; step < 200; step++ {
				if on != nil {
					e := lab.Event{BudgetS: 300, MaxSteps: 0}
					e.Step, e.TimeS, e.Loss = step+1, float64(step), 3
					on(e)
				}
				if lr != nil {
					if v := lr(step, s.Config.Optim.LR); !(v >= 0 && v <= 10*s.Config.Optim.LR) {
						t.Errorf("%s spec %d: lr(%d) = %g", f, i, step, v)
						break
					}
				}
			}
			g.Close()
			if e := g.Err(); e != nil {
				t.Errorf("%s spec %d: %v", f, i, e)
			}
		}
	}
}
