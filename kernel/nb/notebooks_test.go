package nb

// The notebook tests execute notebooks/*.ipynb headlessly with Jupyter's nbconvert and the GoNB
// kernel, in smoke mode (tiny models, seconds-long budgets) against a lab of their own. They
// need Jupyter and the registered kernel, so they run only when ANELAB_NOTEBOOKS=1, as
// notebooks/run_notebooks.sh (make test-notebooks) sets it after notebooks/setup.sh.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/nb/nbcheck"
)

func needNotebooks(t *testing.T) (root, jupyter string) {
	t.Helper()
	if os.Getenv("ANELAB_NOTEBOOKS") != "1" {
		t.Skip("notebook tests run with ANELAB_NOTEBOOKS=1 (make test-notebooks)")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err = findRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	jupyter = os.Getenv("ANELAB_JUPYTER")
	if jupyter == "" {
		jupyter = "jupyter"
	}
	if _, err := exec.LookPath(jupyter); err != nil {
		t.Fatalf("jupyter not found (%v): run notebooks/setup.sh, or make test-notebooks", err)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("JUPYTER_DATA_DIR"), "kernels", "gonb", "kernel.json")); err != nil {
		t.Fatalf("the GoNB kernel is not registered in JUPYTER_DATA_DIR=%q: run eval \"$(notebooks/setup.sh --env)\" first", os.Getenv("JUPYTER_DATA_DIR"))
	}
	return root, jupyter
}

// execute runs one notebook with nbconvert into outDir and returns the executed file's path.
func execute(t *testing.T, jupyter, notebook, outDir string, env []string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(jupyter, "nbconvert", "--to", "notebook", "--execute", notebook,
		"--output-dir", outDir, "--ExecutePreprocessor.timeout=600", "--ExecutePreprocessor.kernel_name=gonb")
	cmd.Env = append(os.Environ(), env...)
	outb, err := cmd.CombinedOutput()
	executed := filepath.Join(outDir, filepath.Base(notebook))
	if err != nil {
		// Show what the notebook says, then nbconvert's own output.
		if r, cerr := nbcheck.File(executed); cerr == nil {
			t.Logf("outputs of %s: %v", executed, r.Require())
		}
		t.Fatalf("nbconvert --execute %s: %v\n%s", notebook, err, tail(string(outb), 4000))
	}
	t.Logf("%s executed in %.1fs", filepath.Base(notebook), time.Since(start).Seconds())
	return executed
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// seedScript is a sweep on a tiny model: the baseline (3 seeds) and three learning rates (one of
// them with 2 seeds), so the research log has a baseline, a best run, a measured noise floor,
// verdicts and a hyperparameter to plot: 7 real training runs.
const seedScript = `//go:build ignore

package experiment

import (
	"fmt"

	"github.com/anelab/anelab/kernel/lab"
)

func Sweep() []lab.Spec {
	var specs []lab.Spec
	repeats := []int{3, 1, 2, 1}
	for i, lr := range []float64{1e-3, 3e-4, 3e-3, 1e-2} {
		c := lab.Tiny()
		c.Model.Dim, c.Model.Heads, c.Model.FFN, c.Model.Seq, c.Model.Vocab = 64, 4, 128, 64, VOCAB
		c.Train.Steps, c.Train.Batch = 40, 4
		c.Optim.LR = lr
		desc := "lr " + fmt.Sprint(lr)
		if i == 0 {
			desc = "baseline (tiny model)"
		}
		specs = append(specs, lab.Spec{Description: desc, Config: c, Repeats: repeats[i]})
	}
	return specs
}
`

// TestNotebooks executes every notebook in smoke mode and requires: no error output, no panic
// on stderr, every code cell run, at least one image/png and one text/html output.
func TestNotebooks(t *testing.T) {
	root, jupyter := needNotebooks(t)
	work := filepath.Join(root, "notebooks", "out")
	labDir := filepath.Join(work, "lab")
	if err := os.RemoveAll(labDir); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvSmoke, "1")
	t.Setenv(EnvLab, labDir)
	t.Setenv(EnvData, "") // smoke mode then prepares (once) and uses notebooks/out/data
	dataDir, err := ensureData()
	if err != nil {
		t.Fatal(err)
	}
	seed(t, labDir, dataDir)

	env := []string{EnvSmoke + "=1", EnvLab + "=" + labDir, EnvData + "=" + dataDir}
	nbs, _ := filepath.Glob(filepath.Join(root, "notebooks", "*.ipynb"))
	if len(nbs) == 0 {
		t.Fatal("no notebooks in notebooks/")
	}
	order := map[string]int{"quickstart.ipynb": 0, "research-log.ipynb": 1}
	sortBy(nbs, func(p string) int {
		if o, ok := order[filepath.Base(p)]; ok {
			return o
		}
		return 2
	})
	for _, nbPath := range nbs {
		t.Run(strings.TrimSuffix(filepath.Base(nbPath), ".ipynb"), func(t *testing.T) {
			executed := execute(t, jupyter, nbPath, work, env)
			r, err := nbcheck.File(executed)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Require("image/png", "text/html"); err != nil {
				t.Fatal(err)
			}
			if filepath.Base(nbPath) == "research-log.ipynb" {
				requireDrawn(t, executed, r.MIME["image/png"])
			}
			t.Logf("%s: %d code cells, outputs %v", filepath.Base(executed), r.Cells, r.MIME)
		})
	}
}

// requireDrawn checks that the research log ran against a lab with runs: every chart drew (progress,
// curves, hyperparameter), no cell fell back to a "nothing yet" note, and the noise floor,
// verdicts and the equal-step comparison are shown.
func requireDrawn(t *testing.T, executed string, pngs int) {
	t.Helper()
	b, err := os.ReadFile(executed)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if pngs < 3 {
		t.Errorf("research-log drew %d images, want 3 (progress, curves, hyperparameter)", pngs)
	}
	for _, bad := range []string{"no runs", "no kept run", "has no ok run", "no noise floor", "nothing to plot", "no run with"} {
		if strings.Contains(s, bad) {
			t.Errorf("research-log says %q: a cell ran without data", bad)
		}
	}
	for _, want := range []string{"σ(val_bpb)", "same step", "pooled val_bpb", "by k-sigma"} {
		if !strings.Contains(s, want) && !strings.Contains(s, strings.ReplaceAll(want, "σ", "\u03c3")) {
			t.Errorf("research-log does not show %q", want)
		}
	}
}

// seed records the sweep of seedScript in the lab with the real trainer.
func seed(t *testing.T, labDir, dataDir string) {
	t.Helper()
	m, err := data.ReadManifest(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "seed_sweep.go")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(seedScript, "VOCAB", fmt.Sprint(m.VocabSize))), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := harness.New(harness.Options{Lab: labDir, DataDir: dataDir, Out: &strings.Builder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	runs, err := h.RunScript(context.Background(), script, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if r.Status != "ok" {
			t.Fatalf("seed run %s: %s: %s", r.ID, r.Status, r.Error)
		}
	}
}

func sortBy(s []string, key func(string) int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && key(s[j]) < key(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// editProbe is the throwaway library package of TestNotebookSeesLibraryEdit.
const editProbe = `// Package editprobe is written and rewritten by TestNotebookSeesLibraryEdit.
package editprobe

// Answer is what the notebook prints.
func Answer() string { return "answer-v1" }
`

// editNotebook imports editprobe, prints Answer(), edits the library from a shell cell, and
// prints Answer() again in the same kernel session.
const editNotebook = `{"cells": [
 {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": [
  "!*rm -f go.work && go work init && go work use . \"$(cd \"$GONB_DIR\" && go list -m -f '{{.Dir}}')\"\n",
  "%goworkfix\n", "%noautoget"]},
 {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": [
  "import \"github.com/anelab/anelab/notebooks/out/PKG\"\n", "%%\n", "fmt.Println(\"first:\", PKG.Answer())"]},
 {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": [
  "!sed -i 's/answer-v1/answer-v2/' \"$GONB_DIR/PKG/probe.go\""]},
 {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": [
  "%%\n", "fmt.Println(\"second:\", PKG.Answer())"]}
 ],
 "metadata": {"kernelspec": {"display_name": "Go (gonb)", "language": "go", "name": "gonb"}},
 "nbformat": 4, "nbformat_minor": 5}
`

// TestNotebookSeesLibraryEdit is must-show 2: a notebook cell that imports a library function
// sees an edit of that function on its next run, in the same kernel, with nothing reinstalled.
func TestNotebookSeesLibraryEdit(t *testing.T) {
	root, jupyter := needNotebooks(t)
	work := filepath.Join(root, "notebooks", "out")
	pkg := fmt.Sprintf("editprobe%d", os.Getpid())
	dir := filepath.Join(work, pkg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "probe.go"), []byte(strings.ReplaceAll(editProbe, "editprobe", pkg)), 0o644); err != nil {
		t.Fatal(err)
	}
	nbPath := filepath.Join(work, pkg+".ipynb")
	if err := os.WriteFile(nbPath, []byte(strings.ReplaceAll(editNotebook, "PKG", pkg)), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(nbPath)
	outDir := filepath.Join(work, "edit-out")
	executed := execute(t, jupyter, nbPath, outDir, nil)
	defer os.Remove(executed)
	b, err := os.ReadFile(executed)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"first: answer-v1", "second: answer-v2"} {
		if !strings.Contains(s, want) {
			t.Errorf("the executed notebook does not print %q:\n%s", want, tail(s, 3000))
		}
	}
	if r, err := nbcheck.File(executed); err != nil || len(r.Problems) > 0 {
		t.Errorf("outputs: %v %v", err, r.Problems)
	}
}
