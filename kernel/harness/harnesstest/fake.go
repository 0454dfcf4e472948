// Package harnesstest holds the harness's test doubles; only tests import it, so no command links it.
package harnesstest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/lab"
)

// FakeSeedNoise, when set, adds FakeSeedNoise·(((seed·7919) mod 11) − 5)/5 to val_loss: a
// known seed-to-seed spread for tests of noise-aware verdicts (0: the seed changes nothing).
var FakeSeedNoise float64

// FakeStepDelay is how long FakeRunner sleeps per step (tests that need runs to overlap raise it).
var FakeStepDelay = time.Millisecond

// FakeRunner is a stand-in trainer for tests only (the command's tests switch `anelab run` to it with ANELAB_FAKE_RUNNER=1):
// it trains nothing, but honours everything the harness relies on — config validation, the step
// limit and budget, ctx, the LR and OnStep hooks, Resume and Checkpoint — and reports a val_loss
// that is a known function of what it was given:
//
//	val_loss = 2 + (log10(mean lr) + 3)² + 1/(1 + 0.05·total_steps)
//
// where mean lr is the mean of the learning rates actually used (after the LR hook) and
// total_steps counts the steps of the checkpoint it resumed from. So lr 1e-3 is best, more steps
// help, and continuing a lineage lowers the loss. A mean lr above 1 "diverges".
func FakeRunner(ctx context.Context, cfg config.Config, opts train.Options) (train.Result, error) {
	if err := cfg.Validate(); err != nil {
		return train.Result{}, err
	}
	out := opts.Out
	if out == nil {
		out = nopWriter{}
	}
	var prior fakeCkpt
	if opts.Resume != "" {
		b, err := os.ReadFile(opts.Resume)
		if err != nil {
			return train.Result{}, fmt.Errorf("resume: %w", err)
		}
		if err := json.Unmarshal(b, &prior); err != nil {
			return train.Result{}, fmt.Errorf("resume %s: %w", opts.Resume, err)
		}
	}
	steps := cfg.Train.Steps
	if steps == 0 {
		steps = 20
	}
	fmt.Fprintf(out, "fake runner (tests only): %d steps, resume from %d steps\n", steps, prior.TotalSteps)
	start := time.Now()
	budget := time.Duration(cfg.Train.Budget)
	res := train.Result{Status: train.StatusOK, Backend: "fake", Device: "none"}
	sumLR := 0.0
	for s := 0; s < steps; s++ {
		if budget > 0 && time.Since(start) > budget {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("stopped: %w", err)
		}
		lr := lab.WarmupCosine(s, cfg.Optim.Warmup, cfg.Optim.Horizon, cfg.Optim.LR, cfg.Optim.MinLRFrac)
		if opts.LR != nil {
			lr = opts.LR(s, lr)
			if math.IsNaN(lr) || math.IsInf(lr, 0) || lr < 0 {
				return res, fmt.Errorf("LR hook returned %v at step %d: a learning rate must be finite and ≥ 0", lr, s)
			}
		}
		sumLR += lr
		time.Sleep(FakeStepDelay)
		res.Steps++
		res.Tokens += int64(cfg.Train.Batch * cfg.Model.Seq * cfg.Optim.Accum)
		loss := 2 + 4/(1+0.05*float64(prior.TotalSteps+res.Steps))
		p := train.Point{Step: res.Steps, Loss: loss, LR: lr, TimeS: time.Since(start).Seconds(), Tokens: res.Tokens}
		res.Curve = append(res.Curve, p)
		if opts.OnStep != nil {
			opts.OnStep(train.Event{Point: p, BudgetS: budget.Seconds(), MaxSteps: cfg.Train.Steps})
		}
	}
	if res.Steps == 0 {
		return res, fmt.Errorf("fake runner: no step fit in the budget")
	}
	mean := sumLR / float64(res.Steps)
	total := prior.TotalSteps + res.Steps
	res.WallTimeS = time.Since(start).Seconds()
	res.MsPerStep = 1e3 * res.WallTimeS / float64(res.Steps)
	res.TrainLoss = res.Curve[len(res.Curve)-1].Loss
	if mean > 1 {
		res.Status, res.Error = train.StatusDiverged, fmt.Sprintf("mean lr %g > 1", mean)
		return res, nil
	}
	d := math.Log10(mean) + 3
	res.ValLoss = 2 + d*d + 1/(1+0.05*float64(total)) + FakeSeedNoise*float64((cfg.Train.Seed*7919)%11-5)/5
	res.ValBPB = res.ValLoss / math.Ln2 / 4
	if opts.Checkpoint != "" {
		b, _ := json.Marshal(fakeCkpt{TotalSteps: total})
		if err := os.WriteFile(opts.Checkpoint, b, 0o644); err != nil {
			return res, err
		}
		res.Checkpoint = opts.Checkpoint
	}
	return res, nil
}

type fakeCkpt struct {
	TotalSteps int `json:"total_steps"`
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
