package harness

import (
	"context"
	"fmt"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/kernel/ledger"
)

// effectiveConfig is the config job trains with: its spec's, with the harness's --budget and
// --steps overrides applied.
func (h *Harness) effectiveConfig(job Job) config.Config {
	cfg := job.Config
	if h.opt.Budget > 0 {
		cfg.Train.Budget = config.Duration(h.opt.Budget)
	}
	if h.opt.Steps > 0 {
		cfg.Train.Steps = h.opt.Steps
	}
	if h.opt.Threads > 0 && cfg != (config.Config{}) {
		cfg.Train.Threads = h.opt.Threads
	}
	return cfg
}

// Resolve is job with the harness's --budget and --steps applied to its config, as a queue
// carries it: every worker then trains what was submitted, whatever its own flags.
func (h *Harness) Resolve(job Job) Job {
	if job.Failure == nil && job.Config != (config.Config{}) {
		job.Config = h.effectiveConfig(job)
	}
	return job
}

// Checked is one job as `anelab vet` reports it: the config it would train, and the failure
// that would end it before training (nil: it would train).
type Checked struct {
	Job     Job
	Config  config.Config
	Budget  string
	Failure *Failure
}

// Vet runs every check `anelab run` makes before training — loading the script (syntax, the import
// allow-list, yaegi's type check), calling Experiment()/Sweep(), and for each spec the lineage,
// the config's validation after the overrides, and a Continue's head checkpoint — through the very
// code Execute uses (Submit and prepare), without training or recording anything.
func (h *Harness) Vet(ctx context.Context, path, message string) []Checked {
	var out []Checked
	for _, j := range h.Submit(ctx, path, message) {
		c := Checked{Job: j, Failure: j.Failure}
		if c.Failure == nil {
			c.Config = h.effectiveConfig(j)
			c.Budget = BudgetKey(c.Config)
			r := ledger.Run{ID: j.ID, Lineage: j.Lineage}
			c.Failure, _ = h.prepare(ctx, j, c.Config, &r, discard{})
			if c.Failure == nil {
				c.Failure = h.checkVocab(c.Config)
			}
		}
		out = append(out, c)
	}
	return out
}

// checkVocab is the trainer's first check of a config against the data (train.checkData), from the
// manifest alone: the model's vocabulary must hold the data's.
func (h *Harness) checkVocab(cfg config.Config) *Failure {
	m, err := data.ReadManifest(h.opt.DataDir)
	if err != nil || cfg.Model.Vocab >= m.VocabSize {
		return nil
	}
	return &Failure{Status: ledger.StatusInvalid, Msg: config.Errors{fmt.Sprintf("model.vocab = %d is smaller than the data's "+
		"vocabulary (%d, from %s): set model.vocab ≥ %d", cfg.Model.Vocab, m.VocabSize, h.opt.DataDir, m.VocabSize)}.Error()}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// String is one line per checked job.
func (c Checked) String() string {
	rep := ""
	if c.Job.Repeats > 1 {
		rep = fmt.Sprintf(" repeat %d/%d", c.Job.Repeat+1, c.Job.Repeats)
	}
	if c.Failure != nil {
		return fmt.Sprintf("spec %d/%d%s: %s\n%s", c.Job.Index+1, max(c.Job.Count, 1), rep, c.Failure.Status, c.Failure.Msg)
	}
	return fmt.Sprintf("spec %d/%d%s: ok — %s [lineage %s, budget %s, seed %d]", c.Job.Index+1, c.Job.Count, rep,
		c.Job.Description, c.Job.Lineage, c.Budget, c.Config.Train.Seed)
}
