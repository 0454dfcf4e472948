//go:build ignore

// A custom schedule written in the script: warmup-stable-decay (WSD) driven by the budget's progress
// instead of a step horizon. Linear warmup over the first updates, the peak learning rate while 80%
// of the budget remains, then a linear decay to 10% of the peak over the last 20%. OnStep records how
// much of the budget has passed (e.Progress, whatever the budget kind); LR reads it for the next
// update. (The built-in optim.schedule = "wsd" does this without a hook; this script shows the hook.)
package experiment

import "github.com/anelab/anelab/kernel/lab"

const (
	warmup    = 50  // updates
	decayFrom = 0.8 // fraction of the budget where the decay starts
	floor     = 0.1 // final lr as a fraction of the peak
)

// wsd is the learning rate for update step when fraction used of the budget has passed.
func wsd(step int, used, peak float64) float64 {
	if step < warmup {
		return peak * float64(step+1) / warmup
	}
	if used < decayFrom {
		return peak
	}
	left := (1 - used) / (1 - decayFrom) // 1 → 0 over the decay
	if left < 0 {
		left = 0
	}
	return peak * (floor + (1-floor)*left)
}

func Experiment() lab.Spec {
	c := lab.Best()
	peak := c.Optim.LR
	used := 0.0 // fraction of the budget (or of the step limit) used so far
	return lab.Spec{
		Description: "WSD schedule: warmup 50, flat, linear decay over the last 20% of the budget",
		Config:      c,
		OnStep:      func(e lab.Event) { used = e.Progress },
		LR:          func(step int, scheduled float64) float64 { return wsd(step, used, peak) },
	}
}
