// Package config holds every knob of a training run — model shape, optimizer, loop — in one
// serialisable struct, with defaults and a validator that lists every problem at once.
package config

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Model is the Llama-style transformer's shape.
type Model struct {
	Dim     int `json:"dim"`      // model width
	Layers  int `json:"layers"`   // transformer blocks
	Heads   int `json:"heads"`    // query heads
	KVHeads int `json:"kv_heads"` // key/value heads; 0 means Heads (MHA)
	FFN     int `json:"ffn"`      // MLP hidden width (FFNFromRatio turns a ratio to dim into one)
	Seq     int `json:"seq"`      // context length (tokens per sequence)
	Vocab   int `json:"vocab"`    // tokenizer vocabulary size (full ids)

	Pos       string  `json:"pos"`        // "rope" (default) or "nope"
	RopeTheta float64 `json:"rope_theta"` // RoPE base, 10000 by default
	Softcap   float64 `json:"softcap"`    // logit soft-cap z = c·tanh(l/c); 0 disables
	Compact   bool    `json:"compact"`    // vocab compaction: logits only for ids seen in the data
	NormEps   float64 `json:"norm_eps"`   // RMSNorm ε
	InitStd   float64 `json:"init_std"`   // embedding init std

	// Architecture knobs (anert/model documents each op; the ANE backend supports the defaults).
	Act        string `json:"act"`         // MLP activation: "swiglu" (default, gated, 3 matrices), "relu2" or "gelu" (2 matrices); "" = swiglu
	QKNorm     bool   `json:"qk_norm"`     // RMSNorm (learned gain per head dim) on q and k of every head, before RoPE
	UntiedHead bool   `json:"untied_head"` // a separate output head instead of the tied embedding
	ZeroInit   bool   `json:"zero_init"`   // zero-initialise the residual output projections (wo, w2) and an untied head
}

// Activations lists the MLP activations model.act accepts.
var Activations = []string{"swiglu", "relu2", "gelu"}

// Activation is the MLP activation, with "" read as "swiglu".
func (m Model) Activation() string {
	if m.Act == "" {
		return "swiglu"
	}
	return m.Act
}

// Gated reports whether the MLP is gated (SwiGLU: w1, w2, w3) rather than plain (w1, w2).
func (m Model) Gated() bool { return m.Activation() == "swiglu" }

// FFNFromRatio is the MLP width for a ratio r of the model width, rounded to a multiple of 32 (what
// the ANE's matmuls want) and at least 32: c.Model.FFN = c.Model.FFNFromRatio(4). A plain MLP is
// usually 4×dim; SwiGLU's 8/3×dim has the same parameter count with its third matrix.
func (m Model) FFNFromRatio(r float64) int {
	if !(r > 0) || math.IsInf(r, 0) {
		return 0 // Validate then reports model.ffn
	}
	return max(32, int(math.Round(r*float64(m.Dim)/32))*32)
}

// Optim is the optimizer, its parameter groups and the learning-rate schedule.
type Optim struct {
	Name          string  `json:"name"`            // "lion" (default), "adamw" or "muon" (Muon for the matrices, AdamW for the rest)
	LR            float64 `json:"lr"`              // peak learning rate
	MinLRFrac     float64 `json:"min_lr_frac"`     // the schedule's floor as a fraction of LR
	Schedule      string  `json:"schedule"`        // decay shape: "cosine", "wsd" (warmup-stable-decay) or "linear"
	ScheduleUnit  string  `json:"schedule_unit"`   // "budget": warmup_frac/decay_frac of the run's budget; "updates": warmup/horizon
	WarmupFrac    float64 `json:"warmup_frac"`     // unit budget: linear warmup as a fraction of the budget
	DecayFrac     float64 `json:"decay_frac"`      // schedule wsd: the final fraction of the schedule that decays to the floor
	Warmup        int     `json:"warmup"`          // unit updates: linear warmup, in optimizer updates
	Horizon       int     `json:"horizon"`         // unit updates: the update count at which the floor is reached
	Beta1         float64 `json:"beta1"`           //
	Beta2         float64 `json:"beta2"`           //
	Eps           float64 `json:"eps"`             // AdamW only
	WeightDecay   float64 `json:"weight_decay"`    // decoupled; matrices only
	MatrixLRScale float64 `json:"matrix_lr_scale"` // LR multiplier of the weight matrices
	EmbedLRScale  float64 `json:"embed_lr_scale"`  // LR multiplier of the tied embedding
	GradClip      float64 `json:"grad_clip"`       // global L2 norm; 0 disables
	Accum         int     `json:"accum"`           // micro-steps per optimizer update
	LossScale     float64 `json:"loss_scale"`      // 0 or 1 disables; gradients are unscaled before clipping
	MuonLR        float64 `json:"muon_lr"`         // muon: peak LR of the 2-D weight matrices (scheduled like lr; lr is then the AdamW groups')
	MuonMomentum  float64 `json:"muon_momentum"`   // muon: the matrices' Nesterov momentum
}

// Train is the loop: batch, budget, limits, seed, evaluation.
type Train struct {
	Batch       int      `json:"batch"`          // sequences per micro-step
	Budget      Duration `json:"budget"`         // training budget in seconds of budget_kind (0: no limit)
	BudgetKind  string   `json:"budget_kind"`    // "compute" (model FLOPs charged at compute_gflops) or "wall" (wall-clock)
	ComputeRate float64  `json:"compute_gflops"` // the reference rate a compute budget charges model FLOPs at, GFLOP/s
	Steps       int      `json:"steps"`          // optimizer-update limit (0: no limit)
	Seed        int64    `json:"seed"`           // init and data-window seed
	EvalWindows int      `json:"eval_windows"`   // validation windows of Seq tokens
	LogEvery    int      `json:"log_every"`      // print a step line every N updates
	Threads     int      `json:"threads"`        // compute threads (0: all cores)
}

// Config is one run's full recipe.
type Config struct {
	Model   Model  `json:"model"`
	Optim   Optim  `json:"optim"`
	Train   Train  `json:"train"`
	Backend string `json:"backend"` // "cpu", "ane", "cuda" (bf16 GEMMs), "cuda-fp32" or "auto"
	Device  string `json:"device"`  // for the ane backend: "emu", "ane" or "auto"
}

// ReferenceGFLOPS is the lab's reference rate: a compute budget of one second buys this many
// GFLOPs of model FLOPs (model.FLOPsPerToken × tokens). It is about what this project's 2-core
// machine sustains on the default config, so a 5m compute budget takes about 5 minutes there when the
// machine is quiet — and the same number of updates however loaded it is.
const ReferenceGFLOPS = 100

// Default is the default small config, a little smaller than llama2.c's stories15M: dim 256 with
// head dim 64, so the ANE checker accepts it as it is.
func Default() Config {
	return Config{
		Model: Model{Dim: 256, Layers: 6, Heads: 4, FFN: 768, Seq: 256, Vocab: 4096,
			Pos: "rope", RopeTheta: 10000, Softcap: 30, Compact: false, NormEps: 1e-5, InitStd: 0.02, Act: "swiglu"},
		Optim: Optim{Name: "lion", LR: 3e-4, MinLRFrac: 0.1,
			Schedule: "cosine", ScheduleUnit: "budget", WarmupFrac: 0.02, DecayFrac: 0.2, Warmup: 20, Horizon: 2000,
			Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, MatrixLRScale: 1, EmbedLRScale: 1,
			GradClip: 1, Accum: 1, LossScale: 0, MuonLR: 0.02, MuonMomentum: 0.95},
		Train: Train{Batch: 4, Budget: Duration(5 * time.Minute), BudgetKind: "compute", ComputeRate: ReferenceGFLOPS,
			Seed: 1, EvalWindows: 64, LogEvery: 10},
		Backend: "cpu",
		Device:  "emu",
	}
}

// Tiny is a config small enough for tests.
func Tiny() Config {
	c := Default()
	c.Model = Model{Dim: 32, Layers: 2, Heads: 4, FFN: 64, Seq: 16, Vocab: 64,
		Pos: "rope", RopeTheta: 10000, Softcap: 30, NormEps: 1e-5, InitStd: 0.02, Act: "swiglu"}
	c.Train.Batch = 2
	c.Train.Budget = 0
	c.Train.EvalWindows = 4
	c.Optim.Warmup = 5
	c.Optim.Horizon = 100
	return c
}

// HeadDim is Dim/Heads.
func (m Model) HeadDim() int { return m.Dim / max(m.Heads, 1) }

// KV is the number of key/value heads (Heads when KVHeads is 0).
func (m Model) KV() int {
	if m.KVHeads == 0 {
		return m.Heads
	}
	return m.KVHeads
}

// Errors is every problem found in a config; its message lists them all.
type Errors []string

func (e Errors) Error() string {
	return fmt.Sprintf("invalid config (%d problem(s)):\n  - %s", len(e), strings.Join(e, "\n  - "))
}

// Validate returns every problem with c as Errors, or nil.
func (c Config) Validate() error {
	var e Errors
	bad := func(format string, a ...any) { e = append(e, fmt.Sprintf(format, a...)) }
	m, o, t := c.Model, c.Optim, c.Train
	e = append(e, c.checkFields()...)
	if m.Heads > 0 && m.Dim > 0 && m.Dim%m.Heads != 0 {
		bad("model.dim = %d is not divisible by model.heads = %d: pick heads that divide dim", m.Dim, m.Heads)
	}
	if m.Heads > 0 && m.Dim%max(m.Heads, 1) == 0 && m.HeadDim()%2 != 0 && m.Pos != "nope" {
		bad("head dim %d (model.dim/model.heads) is odd: RoPE rotates pairs, so it must be even (or set model.pos = \"nope\")", m.HeadDim())
	}
	if m.KVHeads < 0 || (m.KVHeads > 0 && m.Heads%m.KVHeads != 0) {
		bad("model.kv_heads = %d must divide model.heads = %d", m.KVHeads, m.Heads)
	}
	if !slices.Contains(Activations, m.Activation()) {
		bad("model.act = %q: must be one of %s", m.Act, strings.Join(Activations, ", "))
	}
	if m.Pos != "rope" && m.Pos != "nope" {
		bad("model.pos = %q: must be \"rope\" or \"nope\"", m.Pos)
	}
	if o.Name != "lion" && o.Name != "adamw" && o.Name != "muon" {
		bad("optim.name = %q: must be \"lion\", \"adamw\" or \"muon\"", o.Name)
	}
	if o.Name == "muon" && o.MuonLR == 0 {
		bad("optim.muon_lr = 0: muon needs a positive muon_lr")
	}
	switch o.Schedule {
	case "cosine", "wsd", "linear":
	default:
		bad("optim.schedule = %q: must be \"cosine\", \"wsd\" or \"linear\"", o.Schedule)
	}
	switch o.ScheduleUnit {
	case "budget":
		if !(o.WarmupFrac >= 0 && o.WarmupFrac < 1) {
			bad("optim.warmup_frac = %g: must be in [0, 1) (a fraction of the run's budget)", o.WarmupFrac)
		}
	case "updates":
		if o.Horizon <= o.Warmup {
			bad("optim.horizon = %d must exceed optim.warmup = %d (the decay runs between them)", o.Horizon, o.Warmup)
		}
	default:
		bad("optim.schedule_unit = %q: must be \"budget\" (fractions of the run's budget) or \"updates\" (warmup/horizon in updates)", o.ScheduleUnit)
	}
	if o.Schedule == "wsd" && !(o.DecayFrac > 0 && o.DecayFrac <= 1) {
		bad("optim.decay_frac = %g: must be in (0, 1] (the final fraction of the schedule that decays)", o.DecayFrac)
	}
	if o.Schedule == "wsd" && o.ScheduleUnit == "budget" && o.WarmupFrac+o.DecayFrac > 1 {
		bad("optim.warmup_frac + optim.decay_frac = %g + %g exceeds 1: warmup and decay must fit in the budget", o.WarmupFrac, o.DecayFrac)
	}
	if (o.Name == "adamw" || o.Name == "muon") && o.Eps <= 0 {
		bad("optim.eps = %g: AdamW (and muon's AdamW groups) need a positive eps", o.Eps)
	}
	if t.Budget == 0 && t.Steps == 0 {
		bad("train.budget and train.steps are both 0: set a wall-clock budget, a step limit, or both")
	}
	switch t.BudgetKind {
	case "compute":
		if !(t.ComputeRate > 0) || math.IsInf(t.ComputeRate, 0) {
			bad("train.compute_gflops = %g: a compute budget needs a finite positive reference rate (GFLOP/s; the lab's is %d)", t.ComputeRate, ReferenceGFLOPS)
		}
	case "wall":
	default:
		bad("train.budget_kind = %q: must be \"compute\" (model FLOPs at train.compute_gflops; reproducible under load) or \"wall\" (wall-clock)", t.BudgetKind)
	}
	switch c.Backend {
	case "cpu", "ane", "auto", "cuda", "cuda-fp32":
	default:
		bad("backend = %q: must be \"cpu\", \"ane\", \"cuda\", \"cuda-fp32\" or \"auto\"", c.Backend)
	}
	switch c.Device {
	case "emu", "ane", "auto", "":
	default:
		bad("device = %q: must be \"emu\", \"ane\" or \"auto\"", c.Device)
	}
	if len(e) == 0 {
		return nil
	}
	return e
}

// Load reads a JSON config file over Default(): fields the file omits keep their defaults.
// Unknown fields are an error, so a typo never passes silently.
func Load(path string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if err := DecodeStrict(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %v (fields are listed in anert/config/config.go)", path, err)
	}
	return c, nil
}

// Duration is a time.Duration that reads and writes as "5m0s" in JSON (numbers are seconds).
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "5m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "90s", "5m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %v (use e.g. \"90s\" or \"5m\")", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("duration %s: want a string like \"5m\" or seconds", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}
