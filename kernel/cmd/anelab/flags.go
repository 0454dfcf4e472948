package main

import (
	"flag"
	"time"

	"github.com/anelab/anelab/anert/config"
)

// bindConfig registers one flag per hyperparameter, each bound to a field of c.
func bindConfig(fs *flag.FlagSet, c *config.Config) {
	m, o, t := &c.Model, &c.Optim, &c.Train
	fs.IntVar(&m.Dim, "dim", m.Dim, "model width")
	fs.IntVar(&m.Layers, "layers", m.Layers, "transformer blocks")
	fs.IntVar(&m.Heads, "heads", m.Heads, "attention heads")
	fs.IntVar(&m.KVHeads, "kv-heads", m.KVHeads, "key/value heads (0: = heads)")
	fs.IntVar(&m.FFN, "ffn", m.FFN, "MLP hidden width")
	fs.IntVar(&m.Seq, "seq", m.Seq, "context length")
	fs.IntVar(&m.Vocab, "vocab", m.Vocab, "vocabulary size (≥ the data's)")
	fs.StringVar(&m.Pos, "pos", m.Pos, "positions: rope or nope")
	fs.Float64Var(&m.RopeTheta, "rope-theta", m.RopeTheta, "RoPE base")
	fs.Float64Var(&m.Softcap, "softcap", m.Softcap, "logit soft-cap (0: off)")
	fs.BoolVar(&m.Compact, "compact", m.Compact, "vocab compaction: logits only for ids seen in the data")
	fs.Float64Var(&m.NormEps, "norm-eps", m.NormEps, "RMSNorm epsilon")
	fs.Float64Var(&m.InitStd, "init-std", m.InitStd, "embedding init std")
	fs.StringVar(&m.Act, "act", m.Act, "MLP activation: swiglu, relu2 or gelu")
	fs.BoolVar(&m.QKNorm, "qk-norm", m.QKNorm, "RMSNorm on q and k per head")
	fs.BoolVar(&m.UntiedHead, "untied-head", m.UntiedHead, "a separate output head (not the tied embedding)")
	fs.BoolVar(&m.ZeroInit, "zero-init", m.ZeroInit, "zero-initialise wo, w2 (and an untied head)")
	fs.StringVar(&o.Name, "optim", o.Name, "optimizer: lion, adamw or muon")
	fs.Float64Var(&o.LR, "lr", o.LR, "peak learning rate")
	fs.Float64Var(&o.MinLRFrac, "min-lr-frac", o.MinLRFrac, "the schedule's floor as a fraction of lr")
	fs.StringVar(&o.Schedule, "schedule", o.Schedule, "decay shape: cosine, wsd (warmup-stable-decay) or linear")
	fs.StringVar(&o.ScheduleUnit, "schedule-unit", o.ScheduleUnit, "budget (warmup/decay as fractions of the run's budget) or updates (--warmup/--horizon, for resumed lineages)")
	fs.Float64Var(&o.WarmupFrac, "warmup-frac", o.WarmupFrac, "warmup as a fraction of the budget (schedule unit budget)")
	fs.Float64Var(&o.DecayFrac, "decay-frac", o.DecayFrac, "wsd: the final fraction of the schedule that decays to the floor")
	fs.IntVar(&o.Warmup, "warmup", o.Warmup, "warmup updates (schedule unit updates)")
	fs.IntVar(&o.Horizon, "horizon", o.Horizon, "update count where the floor is reached (schedule unit updates)")
	fs.Float64Var(&o.Beta1, "beta1", o.Beta1, "beta1")
	fs.Float64Var(&o.Beta2, "beta2", o.Beta2, "beta2")
	fs.Float64Var(&o.Eps, "eps", o.Eps, "AdamW epsilon")
	fs.Float64Var(&o.WeightDecay, "wd", o.WeightDecay, "decoupled weight decay (matrices)")
	fs.Float64Var(&o.MatrixLRScale, "matrix-lr-scale", o.MatrixLRScale, "LR multiplier of weight matrices")
	fs.Float64Var(&o.EmbedLRScale, "embed-lr-scale", o.EmbedLRScale, "LR multiplier of the embedding")
	fs.Float64Var(&o.GradClip, "clip", o.GradClip, "global gradient-norm clip (0: off)")
	fs.IntVar(&o.Accum, "accum", o.Accum, "micro-steps per optimizer update")
	fs.Float64Var(&o.LossScale, "loss-scale", o.LossScale, "loss scale (0: off)")
	fs.Float64Var(&o.MuonLR, "muon-lr", o.MuonLR, "muon: peak LR of the weight matrices")
	fs.Float64Var(&o.MuonMomentum, "muon-momentum", o.MuonMomentum, "muon: Nesterov momentum of the matrices")
	fs.IntVar(&t.Batch, "batch", t.Batch, "sequences per micro-step")
	fs.Var(durationFlag{(*time.Duration)(&t.Budget)}, "budget", "training budget in seconds of --budget-kind, e.g. 60s or 5m (0: none)")
	fs.StringVar(&t.BudgetKind, "budget-kind", t.BudgetKind, "compute (model FLOPs at --compute-gflops: the same updates under any load) or wall (wall-clock)")
	fs.Float64Var(&t.ComputeRate, "compute-gflops", t.ComputeRate, "reference rate a compute budget charges model FLOPs at, GFLOP/s")
	fs.IntVar(&t.Steps, "steps", t.Steps, "optimizer-update limit (0: none)")
	fs.Int64Var(&t.Seed, "seed", t.Seed, "init and data seed")
	fs.IntVar(&t.EvalWindows, "eval-windows", t.EvalWindows, "validation windows")
	fs.IntVar(&t.LogEvery, "log-every", t.LogEvery, "print a step line every N updates")
	fs.IntVar(&t.Threads, "threads", t.Threads, "compute threads (0: all cores)")
	fs.StringVar(&c.Backend, "backend", c.Backend, "cpu, ane, cuda (NVIDIA GPU, bf16 GEMMs), cuda-fp32 or auto (cuda when a GPU is present)")
	fs.StringVar(&c.Device, "device", c.Device, "ane backend device: emu, ane or auto")
}

type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}
func (f durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = v
	return nil
}

// parseConfig parses args into a config: defaults, then the --config file if given, then the
// flags that were set on the command line (so flags always win over the file).
func parseConfig(fs *flag.FlagSet, args []string) (config.Config, error) {
	c := config.Default()
	bindConfig(fs, &c)
	file := fs.String("config", "", "JSON config file (flags override its fields)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return c, err
	}
	if err := noArgs(fs.Name(), pos); err != nil {
		return c, err
	}
	if *file == "" {
		return c, nil
	}
	fc, err := config.Load(*file)
	if err != nil {
		return c, err
	}
	again := flag.NewFlagSet("", flag.ContinueOnError)
	bindConfig(again, &fc)
	var serr error
	fs.Visit(func(f *flag.Flag) {
		if again.Lookup(f.Name) != nil {
			if err := again.Set(f.Name, f.Value.String()); err != nil && serr == nil {
				serr = err
			}
		}
	})
	return fc, serr
}
