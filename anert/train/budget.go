package train

import (
	"fmt"
	"math"
	"time"

	"github.com/anelab/anelab/anert/config"
)

// Budget kinds a Result records. Compare runs only within one kind.
const (
	BudgetCompute = "compute" // model FLOPs charged at the reference rate: the same updates under any load
	BudgetWall    = "wall"    // wall-clock seconds: the original's; the number of updates follows machine load
	BudgetSteps   = "steps"   // no budget, only a step limit (--steps)
)

// budget is what a run may spend and where it stands: it says when the run ends and gives the
// schedule its progress (the fraction spent), so that the last update is the one with progress 1.
//
// A compute budget of S seconds buys S × rate model FLOPs; an update costs
// FLOPsPerToken × batch × seq × accum of them, so the budget buys N = ⌊S·rate / cost⌋ updates (at
// least 1), known before the first, and update k (0-based) ends at progress (k+1)/N. A wall-clock
// budget is only known as it is spent: an update ends at progress elapsed/S, and it is the last when
// the next, taking as long as the previous, would overrun S; that update is given progress 1.
// A step limit ends the run at its own progress (k+1)/steps; with both, the larger progress counts.
type budget struct {
	kind       string
	seconds    float64 // the budget in seconds of its kind (0 with kind steps)
	rate       float64 // compute: the reference rate in FLOP/s
	updateCost float64 // model FLOPs per optimizer update
	updates    int     // compute: updates the budget buys
	maxSteps   int     // the step limit (0: none)
}

func newBudget(t config.Train, flopsPerToken float64, tokensPerUpdate int) budget {
	b := budget{kind: t.BudgetKind, seconds: time.Duration(t.Budget).Seconds(), maxSteps: t.Steps,
		rate: t.ComputeRate * 1e9, updateCost: flopsPerToken * float64(tokensPerUpdate)}
	switch {
	case t.Budget == 0:
		b.kind, b.seconds = BudgetSteps, 0
	case b.kind == BudgetCompute:
		// The budget is held in nanoseconds; the small epsilon keeps one that is meant as an exact
		// multiple of the cost from losing an update to that rounding.
		b.updates = max(1, int(math.Floor(b.seconds*b.rate/b.updateCost*(1+1e-6))))
	}
	return b
}

// at is the progress at the end of update k (0-based, of this run) and whether it is the run's last.
// elapsed is the wall-clock time since training started, taken after the update's gradients;
// prev is the duration of the previous update (0 before the second).
func (b budget) at(k int, elapsed, prev time.Duration) (progress float64, last bool) {
	if b.maxSteps > 0 {
		progress = float64(k+1) / float64(b.maxSteps)
		last = k+1 >= b.maxSteps
	}
	switch b.kind {
	case BudgetCompute:
		progress = max(progress, float64(k+1)/float64(b.updates))
		last = last || k+1 >= b.updates
	case BudgetWall:
		// Before the second update the one in progress is the best estimate of the next.
		next := prev
		if k == 0 {
			next = elapsed
		}
		progress = max(progress, elapsed.Seconds()/b.seconds)
		last = last || elapsed+next > time.Duration(b.seconds*float64(time.Second))
	}
	if last {
		progress = 1
	}
	return min(progress, 1), last
}

// amount is the budget in its own unit: seconds (compute, wall) or updates (steps).
func (b budget) amount() float64 {
	if b.kind == BudgetSteps {
		return float64(b.maxSteps)
	}
	return b.seconds
}

func (b budget) String() string {
	switch b.kind {
	case BudgetCompute:
		s := fmt.Sprintf("compute %v = %.3g FLOPs at %.4g GFLOP/s → %d updates of %.3g FLOPs",
			time.Duration(b.seconds*float64(time.Second)), b.seconds*b.rate, b.rate/1e9, b.updates, b.updateCost)
		if b.maxSteps > 0 && b.maxSteps < b.updates {
			s += fmt.Sprintf(" (step limit %d)", b.maxSteps)
		}
		return s
	case BudgetWall:
		s := fmt.Sprintf("wall-clock %v (updates follow machine load)", time.Duration(b.seconds*float64(time.Second)))
		if b.maxSteps > 0 {
			s += fmt.Sprintf(", step limit %d", b.maxSteps)
		}
		return s
	}
	return fmt.Sprintf("steps %d", b.maxSteps)
}
