package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/data/prep"
	"github.com/anelab/anelab/kernel/ledger"
)

// A tiny config on the 400-token test corpus, with both hooks, continuing lineage "it".
const realScript = `//go:build ignore

package experiment

import "github.com/anelab/anelab/kernel/lab"

func Experiment() lab.Spec {
	c := lab.Tiny()
	c.Model.Vocab = 400
	c.Train.Steps = 6
	c.Train.LogEvery = 2
	steps := 0
	return lab.Spec{Description: "tiny, real trainer", Config: c, Lineage: "it", Continue: true,
		LR:     func(step int, s float64) float64 { return 1e-3 },
		OnStep: func(e lab.Event) { steps++ },
	}
}
`

// TestMain lets this test binary serve as a run's child process (TestRealTrainerInChild starts it
// with EnvChild=1): the real trainer, as in `anelab run`.
func TestMain(m *testing.M) {
	ChildMain(nil)
	code := m.Run()
	if tinyRoot != "" {
		os.RemoveAll(tinyRoot)
	}
	os.Exit(code)
}

// tinyData prepares the 400-token test corpus once for the package's tests, in tinyRoot.
var (
	tinyRoot string
	tinyData = sync.OnceValues(func() (string, error) {
		var err error
		if tinyRoot, err = os.MkdirTemp("", "harness-tiny-"); err != nil {
			return "", err
		}
		dir := filepath.Join(tinyRoot, "data")
		return dir, prep.PrepareDefault(dir, 400, 30_000, nil)
	})
)

// TestRealTrainer runs a script through train.Run in this process on a freshly prepared tiny
// corpus: the first run trains, is kept and keeps its checkpoint; the second continues from it.
func TestRealTrainer(t *testing.T) { testRealTrainer(t, nil) }

// TestRealTrainerInChild is TestRealTrainer with the script evaluated and trained in a child
// process (this test binary, through ChildMain), as `anelab run` does: the child's memory limit
// is counted from what it already holds, else OpenBLAS hangs in its first sgemm.
func TestRealTrainerInChild(t *testing.T) {
	child, err := SelfChild()
	if err != nil {
		t.Fatal(err)
	}
	testRealTrainer(t, child)
}

func testRealTrainer(t *testing.T, child []string) {
	if testing.Short() {
		t.Skip("trains a tiny model")
	}
	ctx := context.Background()
	dataDir, err := tinyData()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.go")
	if err := os.WriteFile(path, []byte(realScript), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var events atomic.Int64 // OnEvent sees every step, relayed from the child when there is one
	h, err := New(Options{Lab: filepath.Join(dir, "lab"), DataDir: dataDir, Out: &out, Commit: "test", Child: child,
		OnEvent: func(e train.Event) { events.Add(1) },
		Timeout: 2 * time.Minute}) // a hung child fails the test here
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	var prev ledger.Run
	for i := 0; i < 2; i++ {
		runs, err := h.RunScript(ctx, path, "")
		if err != nil {
			t.Fatal(err)
		}
		r := runs[0]
		if r.Status != ledger.StatusOK || r.Steps != 6 || !(r.ValLoss > 0) {
			t.Fatalf("run %d: %s steps %d val %g: %s\n%s", i, r.Status, r.Steps, r.ValLoss, r.Error, out.String())
		}
		if i == 1 && r.Parent != prev.ID {
			t.Errorf("second run: parent %q, want %s (Continue)", r.Parent, prev.ID)
		}
		if r.Decision == ledger.Keep && r.Checkpoint == "" {
			t.Errorf("run %d: kept without a checkpoint", i)
		}
		curve, _ := os.ReadFile(filepath.Join(h.opt.Lab, "runs", r.ID, "curve.tsv"))
		if n := strings.Count(string(curve), "\n"); n != 7 {
			t.Errorf("run %d: curve.tsv has %d lines, want header + 6", i, n)
		}
		if !strings.Contains(string(curve), "\t0.001\t") {
			t.Errorf("run %d: the LR hook's 1e-3 is not in the curve:\n%s", i, curve)
		}
		if r.Decision == ledger.Keep {
			prev = r
		}
		if n := events.Swap(0); n != 6 {
			t.Errorf("run %d: OnEvent saw %d steps, want 6", i, n)
		}
	}
}
