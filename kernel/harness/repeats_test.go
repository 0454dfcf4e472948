package harness

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/kernel/harness/harnesstest"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/script"
	"github.com/anelab/anelab/kernel/verdict"
)

// TestRepeatsAndRanking runs a sweep of 3 specs × 3 repeats with a known seed-to-seed noise: the
// seeds are Seed, Seed+1, Seed+2; each set is decided once, by its last repeat; the noise floor
// is the pooled spread; the verdict block and the ranking say what decided with which numbers.
func TestRepeatsAndRanking(t *testing.T) {
	harnesstest.FakeSeedNoise = 0.01
	defer func() { harnesstest.FakeSeedNoise = 0 }()
	h, out := newLab(t)
	runs, err := h.RunScript(context.Background(), filepath.Join("testdata", "repeats.go"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 9 {
		t.Fatalf("%d runs, want 9", len(runs))
	}
	noiseOf := func(seed int64) float64 { return 0.01 * float64((seed*7919)%11-5) / 5 }
	var groups [][]float64
	for s := 0; s < 3; s++ {
		var g []float64
		for i := 0; i < 3; i++ {
			r := runs[3*s+i]
			if r.Seed != int64(1+i) || r.Repeat != i || r.Repeats != 3 || r.RepeatOf != runs[3*s].ID {
				t.Errorf("spec %d repeat %d: seed %d, repeat %d/%d of %s", s, i, r.Seed, r.Repeat, r.Repeats, r.RepeatOf)
			}
			// The same config: only the seed's term differs between repeats.
			first := runs[3*s]
			if got, want := r.ValLoss-noiseOf(r.Seed), first.ValLoss-noiseOf(first.Seed); math.Abs(got-want) > 1e-9 {
				t.Errorf("spec %d seed %d: val %v minus its seed's noise is %v, want %v", s, r.Seed, r.ValLoss, got, want)
			}
			g = append(g, r.ValBPB)
		}
		if runs[3*s].ConfigHash == "" || runs[3*s].ConfigHash != runs[3*s+2].ConfigHash || runs[3*s].Budget != "steps 20" {
			t.Errorf("spec %d: hashes %q %q, budget %q", s, runs[3*s].ConfigHash, runs[3*s+2].ConfigHash, runs[3*s].Budget)
		}
		groups = append(groups, g)
	}
	if runs[0].ConfigHash == runs[3].ConfigHash {
		t.Error("different lrs share a config hash")
	}
	// Decisions as stored (the earlier repeats were settled by the last one).
	stored, _ := h.Ledger.Runs(context.Background(), "main")
	want := []string{ledger.Keep, ledger.Keep, ledger.Discard}
	for s := 0; s < 3; s++ {
		for i := 0; i < 3; i++ {
			if got := stored[3*s+i].Decision; got != want[s] {
				t.Errorf("spec %d repeat %d: decision %q, want %q (%s)", s, i, got, want[s], stored[3*s+i].Verdict)
			}
		}
	}
	// Spec 2 was judged by k-sigma with the floor pooled over specs 1 and 2 (spec 3 not yet in).
	info, ok := runs[5].Info()
	floor := verdict.Pool(groups[:2])
	if !ok || info.Test != verdict.TestKSigma || math.Abs(info.Noise.SD-floor.SD) > 1e-12 || info.Noise.DoF != 4 ||
		math.Abs(info.Margin-2*floor.SD*math.Sqrt(2.0/3)) > 1e-12 {
		t.Errorf("spec 2 verdict %+v, want k-sigma with floor %+v", info, floor)
	}
	nf, ok, _ := h.Ledger.Noise(context.Background(), "steps 20")
	if all := verdict.Pool(groups); !ok || nf.DoF != 6 || math.Abs(nf.SD-all.SD) > 1e-12 {
		t.Errorf("stored floor %+v, want %+v", nf, all)
	}
	o := out.String()
	for _, w := range []string{"val_bpb:          ", "budget:           steps 20", "verdict:          keep by k-sigma",
		"vs_head:          Δ val_bpb", "same_step:        train loss at step 20",
		"--- anelab sweep ranking (3 specs", "head at start:    none",
		" 1. spec 2: val_bpb ", " 3. spec 3: val_bpb ", "(seed 2, repeat 2/3)"} {
		if !strings.Contains(o, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if t.Failed() {
		t.Log(o[max(0, len(o)-4000):])
	}
}

// TestDescription: -m and the spec's Description are combined without saying anything twice.
func TestDescription(t *testing.T) {
	for _, c := range []struct{ msg, desc, want string }{
		{"", "lr 4e-4", "lr 4e-4"},
		{"lr 4e-4", "", "lr 4e-4"},
		{"lr 4e-4", "lr 4e-4", "lr 4e-4"},
		{"LR 4e-4", "lr 4e-4 (from 1e-3)", "lr 4e-4 (from 1e-3)"},
		{"try lr 4e-4 after the warmup change", "lr 4e-4", "try lr 4e-4 after the warmup change"},
		{"lr sweep", "lr 3e-4", "lr sweep: lr 3e-4"},
	} {
		if got := jobFromSpec("r", &script.Program{}, lab.Spec{Description: c.desc}, 0, 1, c.msg, time.Now()).Description; got != c.want {
			t.Errorf("-m %q, Description %q: %q, want %q", c.msg, c.desc, got, c.want)
		}
	}
}
