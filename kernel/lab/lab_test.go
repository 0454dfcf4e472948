package lab

import (
	"math"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/config"
)

func TestWarmupCosine(t *testing.T) {
	// warmup 4, horizon 12, lr 1, floor 0.1: hand-computed from the doc comment.
	cases := []struct {
		step int
		want float64
	}{
		{0, 0.25}, {3, 1}, // linear warmup (step+1)/4
		{4, 1}, // cos(0): the peak
		{8, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi/2))}, // half way: 0.55
		{12, 0.1}, {100, 0.1}, // the floor from the horizon on
	}
	for _, c := range cases {
		if got := WarmupCosine(c.step, 4, 12, 1, 0.1); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("step %d: %g, want %g", c.step, got, c.want)
		}
	}
}

func TestLookups(t *testing.T) {
	defer SetLookup(Lookup{})
	SetLookup(Lookup{})
	if Best() != Baseline() || BestOf("x") != config.Default() {
		t.Error("without a lookup Best is not the baseline")
	}
	c := config.Default()
	c.Optim.LR = 42
	SetLookup(Lookup{
		BestOf:  func(l string) (config.Config, bool) { return c, l == DefaultLineage },
		FromRun: func(id string) (config.Config, bool) { return c, id == "r1" },
	})
	if Best().Optim.LR != 42 || BestOf("other") != Baseline() || FromRun("r1").Optim.LR != 42 {
		t.Error("lookups not used")
	}
	defer func() {
		if recover() == nil {
			t.Error("FromRun of an unknown run did not panic")
		}
	}()
	FromRun("r2")
}

func TestDurations(t *testing.T) {
	if Minutes(1.5) != config.Duration(90*time.Second) || Seconds(2) != config.Duration(2*time.Second) {
		t.Error("Minutes/Seconds")
	}
}
