package train

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/optim"
	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/data/prep"
)

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// tinyData prepares (once per test binary) a small synthetic-stories dataset with a 320-token BPE.
func tinyData(t *testing.T) string {
	t.Helper()
	tinyOnce.Do(func() {
		tinyDir, tinyErr = os.MkdirTemp("", "anelab-train-test-")
		if tinyErr == nil {
			tinyErr = prep.PrepareDefault(tinyDir, 320, 120_000, nil)
		}
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyDir
}

// TestMain removes the shared dataset after the package's tests: it lives outside t.TempDir so
// that one preparation serves every test of the binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

func tinyConfig() config.Config {
	c := config.Tiny()
	c.Model.Vocab = 320
	c.Model.Seq = 32
	c.Train.Batch = 4
	c.Train.Steps = 60
	c.Optim.LR = 3e-3
	c.Optim.Warmup = 5
	c.Optim.Horizon = 200
	c.Train.EvalWindows = 8
	c.Train.LogEvery = 0
	return c
}

func TestShortRunLossFalls(t *testing.T) {
	cfg := tinyConfig()
	ckptPath := filepath.Join(t.TempDir(), "m.ckpt")
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t), Checkpoint: ckptPath, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusOK || res.Steps != 60 || len(res.Curve) != 60 {
		t.Fatalf("status %s, %d steps, %d curve points", res.Status, res.Steps, len(res.Curve))
	}
	first := (res.Curve[0].Loss + res.Curve[1].Loss + res.Curve[2].Loss) / 3
	// At init the loss is about ln(vocab); a working trainer takes it well below within 60 steps.
	if math.Abs(first-math.Log(320)) > 0.5 {
		t.Errorf("initial loss %.3f, want ≈ ln(320) = %.3f", first, math.Log(320))
	}
	if res.TrainLoss > first-1 {
		t.Errorf("train loss fell only from %.3f to %.3f in 60 steps", first, res.TrainLoss)
	}
	if !(res.ValLoss > 0 && res.ValLoss < first-1) {
		t.Errorf("val loss %.3f, want finite and well below the initial %.3f", res.ValLoss, first)
	}
	ds, _ := data.Open(tinyData(t))
	if want := res.ValLoss / math.Ln2 / ds.Manifest.BytesPerToken; math.Abs(res.ValBPB-want) > 1e-9 {
		t.Errorf("val_bpb %.6f, want val_loss/ln2/bytes_per_token = %.6f", res.ValBPB, want)
	}
	if _, err := os.Stat(ckptPath); err != nil {
		t.Fatal("no checkpoint written:", err)
	}
	var js bytes.Buffer
	WriteSummary(&js, res, ds.Manifest.UnigramBPB)
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if lines[len(lines)-2] != "###JSON###" {
		t.Fatalf("summary does not end with ###JSON### + one line:\n%s", js.String())
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &back); err != nil {
		t.Fatalf("JSON line: %v", err)
	}
	if back["status"] != "ok" || back["val_loss"].(float64) != res.ValLoss {
		t.Errorf("JSON line %v does not match the result", back)
	}
	// The summary and the JSON line name the BLAS, its core and the sgemm rate measured.
	if back["blas"] != blas.Backend || back["blas_core"] == "" || !(back["sgemm_gflops"].(float64) > 0) {
		t.Errorf("JSON line names BLAS %v, core %v, sgemm %v GFLOP/s: want %s, a core, a positive rate",
			back["blas"], back["blas_core"], back["sgemm_gflops"], blas.Backend)
	}
	if !strings.Contains(js.String(), "blas:             "+blas.Backend+" core ") {
		t.Errorf("summary has no blas line:\n%s", js.String())
	}
	// A core pinned by the environment (as on this project's machines) is named in both.
	if env := blas.Describe().EnvCore; env != "" {
		if back["blas_env_core"] != env || !strings.Contains(js.String(), "(OPENBLAS_CORETYPE="+env+" from the environment") {
			t.Errorf("OPENBLAS_CORETYPE=%s from the environment is not named: JSON %v, summary:\n%s", env, back["blas_env_core"], js.String())
		}
	}
}

func TestSameSeedSameRunDifferentSeedDifferentWindows(t *testing.T) {
	cfg := tinyConfig()
	cfg.Train.Steps = 3
	run := func(seed int64) []Point {
		c := cfg
		c.Train.Seed = seed
		res, err := Run(context.Background(), c, Options{DataDir: tinyData(t)})
		if err != nil {
			t.Fatal(err)
		}
		return res.Curve
	}
	a, b, c := run(1), run(1), run(2)
	if a[2].Loss != b[2].Loss {
		t.Errorf("same seed, different losses: %v vs %v", a[2].Loss, b[2].Loss)
	}
	if a[2].Loss == c[2].Loss {
		t.Errorf("different seeds gave identical losses %v: windows are not drawn from the seed", a[2].Loss)
	}
}

func TestResumeUsesThisRunsSchedule(t *testing.T) {
	dir := tinyData(t)
	cfg := tinyConfig()
	cfg.Train.Steps = 20
	ck := filepath.Join(t.TempDir(), "a.ckpt")
	a, err := Run(context.Background(), cfg, Options{DataDir: dir, Checkpoint: ck})
	if err != nil {
		t.Fatal(err)
	}
	// The continued run asks for a different peak LR and schedule: they must be in effect.
	cfg2 := cfg
	cfg2.Optim.LR = 1e-3
	cfg2.Optim.ScheduleUnit = "updates" // the lineage's update count places the resumed run
	cfg2.Optim.Warmup = 0
	cfg2.Optim.Horizon = 100
	cfg2.Train.Steps = 5
	cfg2.Train.Seed = 7
	b, err := Run(context.Background(), cfg2, Options{DataDir: dir, Resume: ck})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range b.Curve {
		if want := optim.LR(cfg2.Optim, 20+i); math.Abs(p.LR-want) > 1e-12 {
			t.Errorf("resumed update %d used lr %g, want this run's schedule at update %d: %g", i, p.LR, 20+i, want)
		}
	}
	// It continued from the trained weights, not from scratch.
	if b.Curve[0].Loss > a.Curve[len(a.Curve)-1].Loss+0.5 {
		t.Errorf("resumed loss %.3f vs %.3f at the end of the first run: weights not restored", b.Curve[0].Loss, a.Curve[len(a.Curve)-1].Loss)
	}
	// A different model shape is refused, naming the field.
	cfg3 := cfg
	cfg3.Model.FFN = 96
	if _, err := Run(context.Background(), cfg3, Options{DataDir: dir, Resume: ck}); err == nil || !strings.Contains(err.Error(), "ffn") {
		t.Errorf("resume into a different ffn: err = %v, want it to name ffn", err)
	}
}

func TestBadInputIsRefusedBeforeTraining(t *testing.T) {
	dir := tinyData(t)
	cases := []struct {
		name string
		edit func(*config.Config)
		want []string
	}{
		{"every config problem at once", func(c *config.Config) { c.Model.Dim = 30; c.Model.Heads = 4; c.Optim.LR = -1 },
			[]string{"model.dim = 30 is not divisible by model.heads = 4", "optim.lr"}},
		{"vocab below the data's", func(c *config.Config) { c.Model.Vocab = 100 }, []string{"model.vocab = 100 is smaller than the data's vocabulary"}},
		{"seq longer than a split", func(c *config.Config) { c.Model.Seq = 1 << 16 }, []string{"model.seq = 65536 is longer than the val split"}},
	}
	for _, tc := range cases {
		c := tinyConfig()
		tc.edit(&c)
		_, err := Run(context.Background(), c, Options{DataDir: dir})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
	if _, err := Run(context.Background(), tinyConfig(), Options{DataDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "anelab data default") {
		t.Errorf("missing data: err = %v, want advice to run 'anelab data default'", err)
	}
}

func TestDivergedRunIsReportedNotNaN(t *testing.T) {
	cfg := tinyConfig()
	cfg.Optim.Name = "adamw"
	cfg.Optim.LR = 1e9
	cfg.Optim.Warmup = 0
	cfg.Optim.GradClip = 0
	cfg.Train.Steps = 30
	res, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusDiverged {
		t.Fatalf("status %q with lr 1e9, want diverged", res.Status)
	}
	var js bytes.Buffer
	WriteSummary(&js, res, 0)
	if s := js.String(); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
		t.Errorf("summary carries a bare non-finite number:\n%s", s)
	}
}

func TestHookPanicIsAnError(t *testing.T) {
	cfg := tinyConfig()
	cfg.Train.Steps = 3
	_, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t), OnStep: func(e Event) {
		if e.Step == 2 {
			panic("boom")
		}
	}})
	var he *HookError
	if err == nil || !strings.Contains(err.Error(), "boom") || !asHook(err, &he) || !strings.Contains(he.Stack, "run_test.go") {
		t.Fatalf("err = %v, want a HookError with the hook's stack", err)
	}
}

func asHook(err error, he **HookError) bool {
	h, ok := err.(*HookError)
	*he = h
	return ok
}
