package plots

import (
	"bytes"
	"image/png"
	"testing"

	"github.com/anelab/anelab/kernel/ledger"
	"gonum.org/v1/plot/vg"
)

func runs() []ledger.Run {
	mk := func(val float64, dec, status, desc string) ledger.Run {
		return ledger.Run{ValLoss: val, Decision: dec, Status: status, Description: desc}
	}
	return []ledger.Run{
		mk(3.0, ledger.Keep, ledger.StatusOK, "baseline"),
		mk(3.2, ledger.Discard, ledger.StatusOK, "lr 1e-5"),
		mk(0, "", ledger.StatusCrash, "panics"),
		mk(2.8, ledger.Keep, ledger.StatusOK, "adamw (lr ×3)"),
		mk(2.85, ledger.Keep, ledger.StatusOK, "other lineage, kept but no record"),
		mk(2.5, ledger.Keep, ledger.StatusOK, "a very long description that goes on and on beyond forty-five characters"),
		mk(12, ledger.Discard, ledger.StatusOK, "exploded"),
		mk(2.6, ledger.WithinNoise, ledger.StatusOK, "close call"),
	}
}

func TestPoints(t *testing.T) {
	pts := Points(runs())
	// The crash (no loss) and the run at 12 (≥ 10) are not plotted.
	want := []struct {
		loss   float64
		kept   bool
		record bool
		label  string
	}{
		{3.0, true, true, "baseline"},
		{3.2, false, false, ""},
		{2.8, true, true, "adamw"},
		{2.85, true, false, ""},
		{2.5, true, true, "a very long description that goes on and on …"},
		{2.6, false, false, ""},
	}
	if len(pts) != len(want) {
		t.Fatalf("%d points, want %d", len(pts), len(want))
	}
	for i, w := range want {
		p := pts[i]
		if p.X != i || p.Loss != w.loss || p.Kept != w.kept || p.Record != w.record || p.Label != w.label {
			t.Errorf("point %d: %+v, want %+v", i, p, w)
		}
	}
}

func TestProgressPNG(t *testing.T) {
	b, err := Progress(runs(), 8*vg.Inch, 4*vg.Inch)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if s := img.Bounds().Size(); s.X != 1200 || s.Y != 600 {
		t.Errorf("image %v, want 1200×600 (8×4 in at 150 dpi)", s)
	}
	if pts := Points(runs()); !pts[len(pts)-1].Noise || pts[0].Noise {
		t.Error("within-noise runs are not marked")
	}
	rs := runs()
	rs[0].Budget, rs[5].Budget = "steps 10", "steps 20"
	floors := []ledger.NoiseFloor{{Budget: "steps 10"}, {Budget: "steps 20"}}
	floors[0].SD, floors[1].SD = 0.1, 0.05
	if sd := NoiseFor(rs, floors); sd != 0.05 {
		t.Errorf("NoiseFor = %v, want the floor of the best run's budget, 0.05", sd)
	}
	if _, err := ProgressNoise(rs, 0.05, 8*vg.Inch, 4*vg.Inch); err != nil {
		t.Fatal(err)
	}
	if _, err := Progress(nil, 8*vg.Inch, 4*vg.Inch); err == nil {
		t.Error("no error for an empty ledger")
	}
}
