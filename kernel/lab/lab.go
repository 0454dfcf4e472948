// Package lab is the experiment API: what a script in scripts/ imports to describe one run (a
// Spec) or several (a sweep), starting from the current best config or from a named baseline.
//
// A script is a small Go file interpreted by yaegi:
//
//	package experiment
//
//	import "github.com/anelab/anelab/kernel/lab"
//
//	func Experiment() lab.Spec {
//		c := lab.Best()
//		c.Optim.LR = 4e-4
//		return lab.Spec{Description: "lr 4e-4", Config: c}
//	}
//
// The script host (kernel/script) answers Best, BestOf and FromRun from the ledger for each
// evaluation; compiled callers (tests, notebooks) install answers with SetLookup.
package lab

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
)

// DefaultLineage is the lineage of a spec that names none, and the one Best() reads.
const DefaultLineage = "main"

// Spec is one run an experiment asks for.
type Spec struct {
	Description string        // one line: what this run tries (the results.tsv description)
	Config      config.Config // the full training config; start from Best() or Baseline()
	Lineage     string        // the lineage this run competes in ("" = "main")
	// Continue resumes from the lineage head's checkpoint instead of starting fresh. Runs that
	// start fresh are comparable with each other; a continued run only moves the head if kept.
	Continue bool
	// Repeats is how many runs of this config to train, with seeds Seed, Seed+1, …; 0 or 1 is one
	// run. Runs of identical configs (seed aside) pool in the ledger's verdicts, and repeats also
	// measure the lab's noise floor, so a spec with repeats is judged on its mean with a narrower
	// margin. The set is decided once, by its last-recorded repeat. `anelab run --repeats N` overrides it.
	Repeats int

	// LR, when set, overrides the schedule: the learning rate for optimizer update step
	// (0-based), given the schedule's own value. Called once per update.
	LR func(step int, scheduled float64) float64
	// OnStep, when set, is called after every optimizer update.
	OnStep func(e Event)
}

// Event is what OnStep receives after every optimizer update: e.Step, e.Loss, e.LR, e.TimeS,
// e.Tokens, e.Progress (the fraction of the budget spent, 1 at the last update), e.BudgetKind,
// e.BudgetS, e.MaxSteps, e.TokensPerS.
type Event = train.Event

// Lookup answers a script's questions about the ledger. Each function reports false when it
// has no answer (no kept run in that lineage, no such run).
type Lookup struct {
	BestOf  func(lineage string) (config.Config, bool)
	FromRun func(id string) (config.Config, bool)
}

var (
	mu     sync.RWMutex
	lookup Lookup
)

// SetLookup installs the answers compiled callers of Best, BestOf and FromRun get. (Scripts
// run by the host get answers bound to their own evaluation instead.)
func SetLookup(l Lookup) {
	mu.Lock()
	lookup = l
	mu.Unlock()
}

// installed is the Lookup SetLookup installed last.
func installed() Lookup {
	mu.RLock()
	defer mu.RUnlock()
	return lookup
}

// Baseline is the named starting point of every lineage: config.Default().
func Baseline() config.Config { return config.Default() }

// Tiny is config.Tiny(): a model small enough for a smoke test (set Train.Steps or a budget).
func Tiny() config.Config {
	c := config.Tiny()
	c.Train.Steps = 20
	return c
}

// Best is the config of the best kept run of the lineage the run was started with ("main"
// unless `anelab run --lineage` says otherwise), or Baseline() while it has none.
func Best() config.Config { return BestOf(DefaultLineage) }

// BestOf is the config of the best kept run of the named lineage, or Baseline() while it has
// none.
func BestOf(lineage string) config.Config { return BestWith(installed().BestOf, lineage) }

// BestWith answers BestOf with f (nil: no ledger); the script host binds it per evaluation.
func BestWith(f func(string) (config.Config, bool), lineage string) config.Config {
	if f != nil {
		if c, ok := f(lineage); ok {
			return c
		}
	}
	return Baseline()
}

// FromRun is the config run id trained with (as `anelab results` lists ids). It panics, ending
// the script with a clear message, if the ledger has no such run.
func FromRun(id string) config.Config { return FromRunWith(installed().FromRun, id) }

// FromRunWith answers FromRun with f; the script host binds it per evaluation.
func FromRunWith(f func(string) (config.Config, bool), id string) config.Config {
	if f != nil {
		if c, ok := f(id); ok {
			return c
		}
	}
	panic(fmt.Sprintf("lab.FromRun(%q): no such run in the ledger (see `anelab results`)", id))
}

// Minutes is a training budget of n minutes, for Config.Train.Budget.
func Minutes(n float64) config.Duration { return config.Duration(n * float64(time.Minute)) }

// Seconds is a training budget of n seconds, for Config.Train.Budget.
func Seconds(n float64) config.Duration { return config.Duration(n * float64(time.Second)) }

// WarmupCosine is the usual schedule, as a value for Spec.LR to return:
//
//	step < warmup:           lr · (step+1)/warmup
//	warmup ≤ step < horizon: lr · (f + (1−f)·½(1 + cos(π·(step−warmup)/(horizon−warmup))))
//	step ≥ horizon:          lr · f
//
// with f = minFrac, the floor as a fraction of lr.
func WarmupCosine(step, warmup, horizon int, lr, minFrac float64) float64 {
	if step < warmup {
		return lr * float64(step+1) / float64(warmup)
	}
	if step >= horizon || horizon <= warmup {
		return lr * minFrac
	}
	p := float64(step-warmup) / float64(horizon-warmup)
	return lr * (minFrac + (1-minFrac)*0.5*(1+math.Cos(math.Pi*p)))
}
