package optim

import (
	"math"

	"github.com/anelab/anelab/anert/config"
)

// Scheduled is the learning rate (before group scales) for one update under o's schedule unit:
// LRAt(o, progress) for unit "budget", LR(o, step) for unit "updates". step is the lineage's count of
// completed updates (0-based); progress is the fraction of the run's budget spent once this update is
// done, in (0, 1], exactly 1 on the run's last update (see train's budget).
func Scheduled(o config.Optim, step int, progress float64) float64 {
	if o.ScheduleUnit == "updates" {
		return LR(o, step)
	}
	return LRAt(o, progress)
}

// LRAt is the budget-tied schedule: the learning rate for the update after which the fraction p of
// the run's budget is spent (as the original's progress = elapsed / TIME_BUDGET), with
// w = o.WarmupFrac and floor = o.LR·o.MinLRFrac:
//
//	p ≤ w:  lr·p/w                                            linear warmup, reaching lr at p = w
//	else:   decay(p; w, 1)                                    down to floor at p = 1 (see decay)
//
// The run's last update has p = 1, so every run anneals to its floor there, whatever its length.
// With p = (k+1)/N for update k of N this is LR's warmup with W = w·N.
func LRAt(o config.Optim, p float64) float64 {
	p = min(max(p, 0), 1)
	if w := o.WarmupFrac; w > 0 && p <= w {
		return o.LR * p / w
	}
	return decay(o, p, o.WarmupFrac, 1)
}

// LR is the update-count schedule (unit "updates", for resumed lineages whose position is their
// update count): the learning rate for the update that follows step completed updates (0-based),
// with W = o.Warmup, H = o.Horizon:
//
//	step < W:  lr·(step+1)/W                                  linear warmup, reaching lr at step W−1
//	else:      decay(step; W, H)                              down to floor at step H, constant after
//
// A horizon not beyond the warmup (which config.Validate refuses) gives the floor after warmup.
// The caller decides whether a resumed run continues its parent's count or starts again at 0.
func LR(o config.Optim, step int) float64 {
	step = max(step, 0)
	if step < o.Warmup {
		return o.LR * float64(step+1) / float64(o.Warmup)
	}
	return decay(o, float64(step), float64(o.Warmup), float64(o.Horizon))
}

// decay is the post-warmup part at position x, for a warmup ending at w and a floor reached at end
// (both schedule units: progress with end 1, or updates with end H). With floor = lr·MinLRFrac,
// s the start of the decay and r = clamp((x − s)/(end − s), 0, 1):
//
//	cosine:  s = w                     floor + ½·(1 + cos(π·r))·(lr − floor)
//	linear:  s = w                     floor + (1 − r)·(lr − floor)
//	wsd:     s = max(w, end·(1 − d))   lr until s, then linear to floor (d = o.DecayFrac):
//	                                   warmup-stable-decay
func decay(o config.Optim, x, w, end float64) float64 {
	floor := o.LR * o.MinLRFrac
	s := w
	if o.Schedule == "wsd" {
		s = max(w, end*(1-o.DecayFrac))
	}
	r := 1.0
	if end > s {
		r = min(max((x-s)/(end-s), 0), 1)
	}
	g := 0.5 * (1 + math.Cos(math.Pi*r))
	if o.Schedule == "linear" || o.Schedule == "wsd" {
		g = 1 - r
	}
	return floor + g*(o.LR-floor)
}
