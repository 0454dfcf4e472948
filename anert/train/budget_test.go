package train

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/config"
)

// tinyFLOPsPerUpdate is 6·P + 6·L·D·(T+1) FLOPs per token (P = matmul parameters with the tied
// classifier), times the tokens of one update, computed here from the shape on its own.
func tinyFLOPsPerUpdate(c config.Config) float64 {
	m := c.Model
	L, D, F, T, V := float64(m.Layers), float64(m.Dim), float64(m.FFN), float64(m.Seq), float64(m.Vocab)
	P := L*(4*D*D+3*D*F) + V*D
	return (6*P + 6*L*D*(T+1)) * float64(c.Train.Batch*m.Seq*c.Optim.Accum)
}

// Every run's learning rate reaches its floor at its last update under the default schedule,
// whatever ends it: a compute budget, a wall-clock budget or a step limit (and each schedule shape).
func TestEveryRunEndsAtItsFloor(t *testing.T) {
	dir := tinyData(t)
	def := config.Default()
	for _, kind := range []string{BudgetCompute, BudgetWall, BudgetSteps} {
		for _, sched := range []string{def.Optim.Schedule, "cosine", "wsd", "linear"} {
			cfg := tinyConfig()
			cfg.Optim = def.Optim // the default schedule and its fractions
			cfg.Optim.Schedule = sched
			cfg.Train.Steps = 0
			if kind != BudgetSteps {
				cfg.Train.BudgetKind = kind
			}
			switch kind {
			case BudgetCompute:
				// 17.5 updates' worth at the reference rate: 17 updates.
				cfg.Train.Budget = config.Duration(17.5 * tinyFLOPsPerUpdate(cfg) / (def.Train.ComputeRate * 1e9) * float64(time.Second))
			case BudgetWall:
				cfg.Train.Budget = config.Duration(400 * time.Millisecond)
			case BudgetSteps:
				cfg.Train.Budget, cfg.Train.Steps = 0, 13
			}
			res, err := Run(context.Background(), cfg, Options{DataDir: dir})
			if err != nil {
				t.Fatalf("%s/%s: %v", kind, sched, err)
			}
			n := len(res.Curve)
			if n == 0 || n != res.Steps {
				t.Fatalf("%s/%s: %d curve points for %d steps", kind, sched, n, res.Steps)
			}
			floor := cfg.Optim.LR * cfg.Optim.MinLRFrac
			last := res.Curve[n-1]
			if math.Abs(last.LR-floor) > 1e-12*cfg.Optim.LR || last.Progress != 1 {
				t.Errorf("%s/%s: last update (%d) has lr %g at progress %g, want the floor %g at 1", kind, sched, n, last.LR, last.Progress, floor)
			}
			for i := 1; i < n; i++ {
				if res.Curve[i].Progress <= res.Curve[i-1].Progress && !(kind == BudgetWall && i == n-1) {
					t.Errorf("%s/%s: progress %g after %g at update %d: must grow", kind, sched, res.Curve[i].Progress, res.Curve[i-1].Progress, i+1)
				}
			}
			if res.BudgetKind != kind {
				t.Errorf("%s/%s: result records budget kind %q", kind, sched, res.BudgetKind)
			}
			switch kind {
			case BudgetCompute:
				if res.Steps != 17 {
					t.Errorf("compute/%s: %d updates, want ⌊17.5⌋ = 17 (the budget ÷ the model's FLOPs per update)", sched, res.Steps)
				}
			case BudgetSteps:
				if res.Steps != 13 {
					t.Errorf("steps/%s: %d updates, want 13", sched, res.Steps)
				}
			}
		}
	}
}

// A compute budget buys the same updates whatever the machine does, and the result says what it was.
func TestComputeBudgetIsRecorded(t *testing.T) {
	cfg := tinyConfig()
	cfg.Train.Steps = 0
	cfg.Train.BudgetKind = BudgetCompute
	cfg.Train.ComputeRate = 50
	cost := tinyFLOPsPerUpdate(cfg)
	cfg.Train.Budget = config.Duration(9 * cost / 50e9 * float64(time.Second)) // exactly 9 updates
	a, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Steps != 9 || b.Steps != 9 || a.ValLoss != b.ValLoss {
		t.Errorf("steps %d and %d, val_loss %v and %v: want 9 each and identical", a.Steps, b.Steps, a.ValLoss, b.ValLoss)
	}
	budgetS := time.Duration(cfg.Train.Budget).Seconds()
	if a.Budget != budgetS || math.Abs(a.BudgetFLOPs-budgetS*50e9) > 1e-6*a.BudgetFLOPs || a.ComputeGFLOPS != 50 {
		t.Errorf("recorded budget %g s, %g FLOPs at %g GFLOP/s; want %g s, %g FLOPs at 50", a.Budget, a.BudgetFLOPs, a.ComputeGFLOPS, budgetS, budgetS*50e9)
	}
	if math.Abs(a.FLOPs-9*cost) > 1e-9*a.FLOPs || math.Abs(a.ComputeS-9*cost/50e9) > 1e-9*a.ComputeS {
		t.Errorf("spent %g FLOPs = %g s, want %g = %g s", a.FLOPs, a.ComputeS, 9*cost, 9*cost/50e9)
	}
	var out bytes.Buffer
	WriteSummary(&out, a, 0)
	s := out.String()
	if !strings.Contains(s, "budget:           compute ") {
		t.Errorf("summary has no budget line:\n%s", s)
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(s[strings.Index(s, "###JSON###")+len("###JSON###"):]), &js); err != nil {
		t.Fatal(err)
	}
	if js["budget_kind"] != "compute" || js["budget"] != budgetS || js["flops"] == nil || js["compute_s"] == nil {
		t.Errorf("###JSON### lacks the budget: %v", js)
	}
}
