package optim

import (
	"math"

	"github.com/anelab/anelab/anert/config"
)

// LR is the scheduled learning rate (before group scales) for the update that follows step
// completed updates (0-based), with W = o.Warmup, H = o.Horizon and floor = o.LR·o.MinLRFrac:
//
//	step < W:  lr·(step+1)/W                                  linear warmup, reaching lr at step W−1
//	else:      r = min(1, (step−W)/(H−W))
//	           floor + ½·(1 + cos(π·r))·(lr − floor)          cosine from lr down to floor,
//	                                                           constant at floor from step H on
//
// A horizon not beyond the warmup (which config.Validate refuses) gives the floor after warmup.
// The step counts updates of the run's own schedule: the caller decides whether a resumed run
// continues its parent's count or starts again at 0.
func LR(o config.Optim, step int) float64 {
	step = max(step, 0)
	if step < o.Warmup {
		return o.LR * float64(step+1) / float64(o.Warmup)
	}
	r := 1.0
	if o.Horizon > o.Warmup {
		r = min(1, float64(step-o.Warmup)/float64(o.Horizon-o.Warmup))
	}
	floor := o.LR * o.MinLRFrac
	return floor + 0.5*(1+math.Cos(math.Pi*r))*(o.LR-floor)
}
