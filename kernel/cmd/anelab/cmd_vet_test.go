package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anelab/anelab/kernel/script"
)

// TestVet: vet refuses what run refuses, with the same message (the allow-list in full), accepts
// what run accepts, lists the runs it would start, and creates no lab.
func TestVet(t *testing.T) {
	lab := filepath.Join(t.TempDir(), "lab")
	out, err := anelab(lab, "vet", testdata+"forbidden.go").CombinedOutput()
	if err == nil {
		t.Fatalf("vet of a forbidden import succeeded:\n%s", out)
	}
	for _, a := range script.Allowed {
		if !strings.Contains(string(out), "\n  "+a+"\n") {
			t.Errorf("the refusal does not list allowed package %s:\n%s", a, out)
		}
	}
	out, err = anelab(lab, "vet", testdata+"invalid.go").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "model.heads = 5") || !strings.Contains(string(out), `optim.name = "sgd"`) {
		t.Errorf("vet of an invalid config: %v\n%s", err, out)
	}
	o := mustRun(t, lab, "vet", testdata+"repeats.go", "--steps", "7")
	if !strings.Contains(o, "spec 3/3 repeat 3/3: ok — lr 0.003 (seed 3, repeat 3/3) [lineage main, budget steps 7, seed 3]") ||
		!strings.Contains(o, "ok: 9 run(s) would train") {
		t.Errorf("vet of a sweep with repeats:\n%s", o)
	}
	if _, err := os.Stat(lab); !os.IsNotExist(err) {
		t.Errorf("vet created the lab folder (%v)", err)
	}
	// FromRun of a run the lab does not hold: refused as run would refuse it.
	src := filepath.Join(t.TempDir(), "fromrun.go")
	os.WriteFile(src, []byte("package experiment\n\nimport \"github.com/anelab/anelab/kernel/lab\"\n\n"+
		"func Experiment() lab.Spec { return lab.Spec{Description: \"x\", Config: lab.FromRun(\"r1\")} }\n"), 0o644)
	out, err = anelab(lab, "vet", src).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `lab.FromRun("r1"): no such run`) {
		t.Errorf("vet of FromRun without the run: %v\n%s", err, out)
	}
	// Vet evaluates the script in a child, as run does: a goroutine panic there is reported as a
	// refused run, and vet itself exits normally (status 1, no Go panic of its own).
	out2, code := runCode(t, lab, "vet", testdata+"gopanic_experiment.go", "--script-timeout", "2m")
	if code != 1 || !strings.Contains(out2, "spec 1/1: crash") || !strings.Contains(out2, "boom in Experiment's goroutine") ||
		!strings.Contains(out2, "1 of 1 runs would be refused") {
		t.Errorf("vet of a script whose goroutine panics: exit %d\n%s", code, tail(out2))
	}
}
