package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Range is the allowed interval of a float field. Zero, when OffAtZero, is allowed whatever the
// interval (the field's "off" value).
type Range struct {
	Min, Max         float64
	MinOpen, MaxOpen bool // the bound itself is excluded
	OffAtZero        bool
}

func (r Range) String() string {
	lo, hi := "[", "]"
	if r.MinOpen {
		lo = "("
	}
	if r.MaxOpen {
		hi = ")"
	}
	s := fmt.Sprintf("%s%g, %g%s", lo, r.Min, r.Max, hi)
	if r.OffAtZero {
		s = "0 (off) or " + s
	}
	return s
}

// Contains reports whether x is finite and inside r.
func (r Range) Contains(x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	if r.OffAtZero && x == 0 {
		return true
	}
	if x < r.Min || (r.MinOpen && x == r.Min) || x > r.Max || (r.MaxOpen && x == r.Max) {
		return false
	}
	return true
}

// FloatField is one float field of a config with its allowed range.
type FloatField struct {
	Name  string // the JSON path, e.g. "optim.lr"
	Value float64
	Range Range
}

// FloatFields lists every float field of c with its range. NaN and ±Inf are outside every range
// (a comparison with NaN is false, so `x <= 0` alone lets NaN through). A float field added to the
// config gets a row here.
func (c Config) FloatFields() []FloatField {
	m, o := c.Model, c.Optim
	pos := Range{Min: 0, Max: math.MaxFloat32, MinOpen: true}
	unit := Range{Min: 0, Max: 1}
	below1 := Range{Min: 0, Max: 1, MaxOpen: true}
	theta := pos
	if m.Pos == "nope" {
		theta = Range{Min: 0, Max: math.MaxFloat32} // unused without RoPE, but still a number
	}
	return []FloatField{
		{"model.rope_theta", m.RopeTheta, theta},
		{"model.softcap", m.Softcap, Range{Min: 0, Max: 1e6}},
		{"model.norm_eps", m.NormEps, Range{Min: 0, Max: 1, MinOpen: true}},
		{"model.init_std", m.InitStd, Range{Min: 0, Max: 10, MinOpen: true}},
		{"optim.lr", o.LR, Range{Min: 0, Max: 1e9, MinOpen: true}}, // high: tests drive runs to diverge with it
		{"optim.min_lr_frac", o.MinLRFrac, unit},
		{"optim.beta1", o.Beta1, below1},
		{"optim.beta2", o.Beta2, below1},
		{"optim.eps", o.Eps, Range{Min: 0, Max: 1}},
		{"optim.weight_decay", o.WeightDecay, Range{Min: 0, Max: 100}},
		{"optim.matrix_lr_scale", o.MatrixLRScale, Range{Min: 0, Max: 1e3, MinOpen: true}},
		{"optim.embed_lr_scale", o.EmbedLRScale, Range{Min: 0, Max: 1e3, MinOpen: true}},
		{"optim.grad_clip", o.GradClip, Range{Min: 0, Max: math.MaxFloat32}},
		{"optim.loss_scale", o.LossScale, Range{Min: 0, Max: 1 << 24}},
		{"optim.muon_lr", o.MuonLR, Range{Min: 0, Max: 1e9}},
		{"optim.warmup_frac", o.WarmupFrac, below1},
		{"optim.decay_frac", o.DecayFrac, unit},
		{"train.compute_gflops", c.Train.ComputeRate, Range{Min: 0, Max: 1e9}},
		{"optim.muon_momentum", o.MuonMomentum, below1},
	}
}

// IntField is one integer field of a config with its allowed closed interval.
type IntField struct {
	Name     string
	Value    int64
	Min, Max int64
}

// Size limits: far beyond anything this CPU/ANE trainer can run, and small enough that every count
// derived from them (parameters, activations, tokens per step) fits an int64 without overflow.
const (
	MaxDim    = 1 << 16
	MaxLayers = 1 << 10
	MaxFFN    = 1 << 18
	MaxSeq    = 1 << 16
	MaxVocab  = 1 << 16 // token shards hold uint16 ids
	MaxBatch  = 1 << 12
	MaxAccum  = 1 << 14
	MaxSteps  = 1 << 40
	// MaxThreads bounds train.threads: more threads than this only thrash (and a huge count made
	// the startup sgemm check hang).
	MaxThreads = 1024
)

// IntFields lists every integer field of c with its interval.
func (c Config) IntFields() []IntField {
	m, o, t := c.Model, c.Optim, c.Train
	return []IntField{
		{"model.dim", int64(m.Dim), 1, MaxDim},
		{"model.layers", int64(m.Layers), 1, MaxLayers},
		{"model.heads", int64(m.Heads), 1, MaxDim},
		{"model.kv_heads", int64(m.KVHeads), 0, MaxDim},
		{"model.ffn", int64(m.FFN), 1, MaxFFN},
		{"model.seq", int64(m.Seq), 1, MaxSeq},
		{"model.vocab", int64(m.Vocab), 1, MaxVocab},
		{"optim.warmup", int64(o.Warmup), 0, MaxSteps},
		{"optim.horizon", int64(o.Horizon), 0, MaxSteps},
		{"optim.accum", int64(o.Accum), 1, MaxAccum},
		{"train.batch", int64(t.Batch), 1, MaxBatch},
		{"train.steps", int64(t.Steps), 0, MaxSteps},
		{"train.eval_windows", int64(t.EvalWindows), 1, 1 << 20},
		{"train.log_every", int64(t.LogEvery), 0, MaxSteps},
		{"train.threads", int64(t.Threads), 0, MaxThreads},
	}
}

// checkFields is every range problem of c, one line per field.
func (c Config) checkFields() []string {
	var e []string
	for _, f := range c.FloatFields() {
		if !f.Range.Contains(f.Value) {
			e = append(e, fmt.Sprintf("%s = %g: must be a finite number in %v", f.Name, f.Value, f.Range))
		}
	}
	for _, f := range c.IntFields() {
		if f.Value < f.Min || f.Value > f.Max {
			e = append(e, fmt.Sprintf("%s = %d: must be in [%d, %d]", f.Name, f.Value, f.Min, f.Max))
		}
	}
	if b := c.Train.Budget; b < 0 || b > maxBudget {
		e = append(e, fmt.Sprintf("train.budget = %v: must be in [0, %v]", b, maxBudget))
	}
	return e
}

const maxBudget = Duration(30 * 24 * 3600 * 1e9)

// Params is the model's parameter count (embedding, tied classifier, per-layer attention, SwiGLU
// and norm weights, final norm), from the config alone. Only meaningful for a config whose sizes
// pass Validate, which keeps it far from overflowing.
func (m Model) Params() int64 {
	L, D, F, V := int64(m.Layers), int64(m.Dim), int64(m.FFN), int64(m.Vocab)
	return V*D + L*(4*D*D+3*D*F+2*D) + D
}

// MemoryNeed is the analytic memory need of training c, in bytes: fp32 weights, gradients and
// optimizer state (Lion one slot, AdamW two), plus the activations the backward pass keeps
// (anert/model's SavedFloats for the full vocabulary). `make bench` measures peak RSS at 1.1–1.3×.
// It is computed in float64, so even sizes Validate refuses give a (huge) number, not an overflow.
func (c Config) MemoryNeed() float64 {
	m := c.Model
	L, D, F, V, H := float64(m.Layers), float64(m.Dim), float64(m.FFN), float64(m.Vocab), float64(m.Heads)
	p := V*D + L*(4*D*D+3*D*F+2*D) + D
	states := 1.0
	if c.Optim.Name == "adamw" {
		states = 2
	}
	N := float64(c.Train.Batch) * float64(m.Seq)
	act := L*(8*N*D+3*N*F+2*N+N*H) + 2*N*D + N + N*V
	return 4 * ((2+states)*p + act)
}

// DecodeStrict decodes exactly one JSON object from b into v: unknown fields, `null`, and anything
// after the object but white space are errors.
func DecodeStrict(b []byte, v any) error {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return errors.New("want one JSON object ({…})")
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}
