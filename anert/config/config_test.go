package config

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	for name, c := range map[string]Config{"default": Default(), "tiny": Tiny()} {
		c.Train.Steps = 1
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The architecture options are valid together (GQA included), and "" act means swiglu.
func TestArchOptionsValid(t *testing.T) {
	c := Default()
	c.Model.KVHeads, c.Model.Act, c.Model.QKNorm, c.Model.UntiedHead, c.Model.ZeroInit = 2, "relu2", true, true, true
	c.Optim.Name = "muon"
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	c.Model.Act = ""
	if err := c.Validate(); err != nil || c.Model.Activation() != "swiglu" || !c.Model.Gated() {
		t.Errorf("act \"\": %v, activation %q", err, c.Model.Activation())
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"dim not divisible by heads", func(c *Config) { c.Model.Dim = 100; c.Model.Heads = 6 }, []string{"model.dim = 100 is not divisible by model.heads = 6"}},
		{"non-positive sizes", func(c *Config) { c.Model.Layers = 0; c.Model.FFN = -1; c.Train.Batch = 0 },
			[]string{"model.layers = 0", "model.ffn = -1", "train.batch = 0"}},
		{"odd head dim with rope", func(c *Config) { c.Model.Dim = 30; c.Model.Heads = 2 }, []string{"head dim 15"}},
		{"kv_heads not dividing heads", func(c *Config) { c.Model.KVHeads = 3 }, []string{"model.kv_heads = 3 must divide model.heads = 4"}},
		{"activation", func(c *Config) { c.Model.Act = "tanh" }, []string{`model.act = "tanh": must be one of swiglu, relu2, gelu`}},
		{"muon", func(c *Config) { c.Optim.Name, c.Optim.MuonLR, c.Optim.MuonMomentum = "muon", 0, 1 },
			[]string{"optim.muon_lr = 0: muon needs a positive muon_lr", "optim.muon_momentum = 1: must be a finite number in [0, 1)"}},
		{"muon not finite", func(c *Config) { c.Optim.MuonLR, c.Optim.MuonMomentum = math.Inf(1), math.NaN() },
			[]string{"optim.muon_lr = +Inf", "optim.muon_momentum = NaN"}},
		{"vocab past uint16", func(c *Config) { c.Model.Vocab = 70000 }, []string{"model.vocab = 70000"}},
		{"unknown optimizer and pos", func(c *Config) { c.Optim.Name = "sgd"; c.Model.Pos = "alibi" }, []string{"optim.name = \"sgd\"", "model.pos = \"alibi\""}},
		{"schedule", func(c *Config) { c.Optim.ScheduleUnit = "updates"; c.Optim.Warmup = 10; c.Optim.Horizon = 5 }, []string{"optim.horizon = 5 must exceed optim.warmup = 10"}},
		{"schedule names", func(c *Config) { c.Optim.Schedule = "step"; c.Optim.ScheduleUnit = "epochs" },
			[]string{"optim.schedule = \"step\"", "optim.schedule_unit = \"epochs\""}},
		{"budget fractions", func(c *Config) { c.Optim.WarmupFrac = 1; c.Optim.Schedule = "wsd"; c.Optim.DecayFrac = math.NaN() },
			[]string{"optim.warmup_frac = 1", "optim.decay_frac = NaN"}},
		{"wsd phases overlap", func(c *Config) { c.Optim.Schedule = "wsd"; c.Optim.WarmupFrac = 0.5; c.Optim.DecayFrac = 0.6 },
			[]string{"optim.warmup_frac + optim.decay_frac = 0.5 + 0.6 exceeds 1"}},
		{"budget kind", func(c *Config) { c.Train.BudgetKind = "tokens" }, []string{"train.budget_kind = \"tokens\""}},
		{"compute rate", func(c *Config) { c.Train.ComputeRate = math.Inf(1) }, []string{"train.compute_gflops = +Inf"}},
		{"no stopping rule", func(c *Config) { c.Train.Budget = 0; c.Train.Steps = 0 }, []string{"train.budget and train.steps are both 0"}},
		{"backend", func(c *Config) { c.Backend = "gpu" }, []string{"backend = \"gpu\""}},
	}
	for _, tc := range cases {
		c := Default()
		tc.edit(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: valid", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", tc.name, err, w)
			}
		}
		if n := len(err.(Errors)); n < len(tc.want) {
			t.Errorf("%s: %d problems reported, want ≥ %d", tc.name, n, len(tc.want))
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	os.WriteFile(p, []byte(`{"model": {"dim": 128}, "train": {"budget": "90s"}, "optim": {"lr": 0.002}}`), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Model.Dim != 128 || c.Model.Layers != Default().Model.Layers || time.Duration(c.Train.Budget) != 90*time.Second || c.Optim.LR != 0.002 {
		t.Errorf("loaded %+v", c)
	}
	os.WriteFile(p, []byte(`{"model": {"dimm": 128}}`), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "dimm") {
		t.Errorf("unknown field: err = %v, want it named", err)
	}
}
