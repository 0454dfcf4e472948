// Package optim updates a model's parameters: the Lion, AdamW and Muon (muon.go) optimizers with
// decoupled weight decay and per-group learning rates, the warmup + cosine learning-rate schedule, and the gradient
// preparation that comes before every update (loss-scale and accumulation unscaling, global-norm
// clipping).
//
// One optimizer update, as the training loop drives it:
//
//	// Accum micro-steps, each seeding the loss gradient with GradScale(o) = LossScale/Accum, so the
//	// gradients G accumulate mean(∂L/∂w) × LossScale.
//	p := optim.Prepare(ps, o, micro, threads) // the norm of G·Accum/(micro·LossScale), the clip factor
//	if math.IsNaN(p.Norm) || math.IsInf(p.Norm, 0) { /* declare divergence; do not step */ }
//	opt.Update(ps, optim.LR(o, opt.T()), p)   // steps on the unscaled, clipped G and leaves G = 0
//
// Update is one pass over each parameter's weights, gradients and state (grads.go counts the
// bytes). PrepareGrads (Prepare, then Prep.Apply) rewrites the gradients as Update would read them,
// for callers that need the prepared gradients themselves: the tests that compare another backend's
// (the GPU's, the Neural Engine's) with these.
//
// Every gradient goes through the same unscaling and clipping, the tied embedding's included
// (the original system scattered the classifier part of the embedding gradient in after both;
// shared/reference/seed-system.md §6 #2).
//
// Parameter groups (GroupHyper):
//
//	| group  | learning rate          | weight decay |
//	|--------|------------------------|--------------|
//	| Matrix | lr × MatrixLRScale     | WeightDecay  |
//	| Embed  | lr × EmbedLRScale      | 0            |
//	| Norm   | lr                     | 0            |
package optim

import (
	"fmt"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/par"
)

// NamedTensor is one optimizer state buffer, named after its parameter: "layers.0.wq.m".
type NamedTensor struct {
	Name string
	Data []float32
}

// Optimizer updates parameters in place from their gradients.
type Optimizer interface {
	// Name is "lion", "adamw" or "muon".
	Name() string
	// Update applies one update with the scheduled learning rate lr (before group scales) to the
	// parameters given to New, in the same order, on the prepared gradients g' = (g·p.Unscale)·p.Clip,
	// applied as each gradient is read (G is not rewritten first), and leaves every gradient 0: it
	// writes 0 over each right after reading it, so the next micro-steps accumulate from zero with
	// no pass of their own. It increments T first, so AdamW's bias correction sees the 1-based
	// update count. The weights and state are bit for bit those of separate passes — p.Apply, the
	// update on G as it then is, and zeroing G (the tests' reference: TestUpdateFoldsPrep).
	Update(ps []*tensor.Param, lr float64, p Prep)
	// T is the number of updates done (restored by SetState).
	T() int
	// State is the optimizer's state for a checkpoint. The slices alias the live buffers: copy or
	// write them out before the next Update.
	State() []NamedTensor
	// SetState restores the update count t and state written by State. Every buffer the optimizer
	// owns must be present with the right length, and no others; nothing changes on error.
	SetState(t int, state []NamedTensor) error
}

// Elementwise is an optimizer whose update of an element reads and writes only that element's
// weight, gradient and state (Lion, AdamW; not Muon, whose update of a matrix reads all of it), so
// that one update can be cut into any parts and run in any order: anert/model runs it as deferred
// work in the next forward pass, each layer's parts done before the layer runs (Model.DeferUpdate).
type Elementwise interface {
	Optimizer
	// Begin starts one update as Update does — it checks ps, counts T and fixes the factors of lr
	// and p — and returns the update itself: apply(i, lo, hi) updates ps[i]'s elements [lo, hi)
	// and zeroes their gradients. Every element must be applied exactly once before the next
	// Begin or Update (and before State reads the state); the result is then bit for bit Update's,
	// which is Begin and then apply on every chunk in parallel.
	Begin(ps []*tensor.Param, lr float64, p Prep) (apply func(i, lo, hi int))
}

// A Deferrer runs an elementwise update as deferred work (anert/model's Model: DeferUpdate).
type Deferrer interface {
	DefersUpdate() bool
	DeferUpdate(apply func(i, lo, hi int)) bool
	FinishUpdate()
}

// UpdateOrDefer is opt.Update(ps, lr, p), or, when opt is Elementwise and d defers updates, the
// same update handed to d (Begin): the weights, gradients and state are then current after
// d.FinishUpdate. ps must be d's parameters in d's order. It reports whether it deferred; the
// caller restages weights (WeightsChanged) only when it did not.
func UpdateOrDefer(opt Optimizer, ps []*tensor.Param, lr float64, p Prep, d Deferrer) bool {
	d.FinishUpdate() // the last update's parts, before this one counts T
	if e, ok := opt.(Elementwise); ok && d.DefersUpdate() {
		return d.DeferUpdate(e.Begin(ps, lr, p))
	}
	opt.Update(ps, lr, p)
	return false
}

// An Option configures an optimizer made by New.
type Option func(*base)

// Threads is the optimizer's thread budget: the goroutines an update runs on (n ≤ 0: all cores).
func Threads(n int) Option { return func(b *base) { b.threads = n } }

// New makes the optimizer that o.Name names, with zeroed state, for the parameters ps.
func New(o config.Optim, ps []*tensor.Param, opts ...Option) (Optimizer, error) {
	if o.Beta1 < 0 || o.Beta1 >= 1 || o.Beta2 < 0 || o.Beta2 >= 1 {
		return nil, fmt.Errorf("optim: optim.beta1 = %g, optim.beta2 = %g: each must be in [0, 1)", o.Beta1, o.Beta2)
	}
	b, err := newBase(o, ps)
	if err != nil {
		return nil, err
	}
	for _, opt := range opts {
		opt(&b)
	}
	switch o.Name {
	case "lion":
		return &Lion{base: b, m: zeros(ps)}, nil
	case "adamw":
		if o.Eps <= 0 {
			return nil, fmt.Errorf("optim: optim.eps = %g: AdamW needs a positive eps", o.Eps)
		}
		return &AdamW{base: b, m: zeros(ps), v: zeros(ps)}, nil
	case "muon":
		if o.Eps <= 0 || !(o.MuonLR > 0) || !(o.LR > 0) || !(o.MuonMomentum >= 0 && o.MuonMomentum < 1) {
			return nil, fmt.Errorf("optim: muon needs optim.eps > 0 (got %g), optim.muon_lr > 0 (got %g), optim.lr > 0 (got %g) "+
				"and optim.muon_momentum in [0, 1) (got %g)", o.Eps, o.MuonLR, o.LR, o.MuonMomentum)
		}
		return newMuon(b, ps), nil
	}
	return nil, fmt.Errorf("optim: optim.name = %q: must be \"lion\", \"adamw\" or \"muon\"", o.Name)
}

// GroupHyper is a group's learning-rate multiplier and decoupled weight decay.
func GroupHyper(o config.Optim, g tensor.Group) (lrScale, wd float64) {
	switch g {
	case tensor.Matrix:
		return o.MatrixLRScale, o.WeightDecay
	case tensor.Embed:
		return o.EmbedLRScale, 0
	}
	return 1, 0
}

// base is what both optimizers share: hyperparameters, per-parameter group settings, the update
// count and the work split.
type base struct {
	o       config.Optim
	threads int // thread budget (Threads option; 0: all cores)
	t       int
	scale   []float64 // per parameter: learning-rate multiplier
	wd      []float64 // per parameter: weight decay
	names   []string
	sizes   []int
	chunks  []chunk
}

// chunk is a slice [lo, hi) of parameter p: the unit of parallel work.
type chunk struct{ p, lo, hi int }

// chunkLen is the number of elements one goroutine updates at a time.
const chunkLen = 1 << 15

func newBase(o config.Optim, ps []*tensor.Param) (base, error) {
	b := base{o: o}
	seen := make(map[string]bool, len(ps))
	for i, p := range ps {
		if p == nil {
			return b, fmt.Errorf("optim: parameter %d is nil", i)
		}
		if p.Name == "" || seen[p.Name] {
			return b, fmt.Errorf("optim: parameter %d name %q is empty or repeated: state is saved by name", i, p.Name)
		}
		seen[p.Name] = true
		if n := p.Size(); len(p.W) != n || len(p.G) != n {
			return b, fmt.Errorf("optim: parameter %s: shape %v has %d elements but len(W) = %d, len(G) = %d",
				p.Name, p.Shape, n, len(p.W), len(p.G))
		}
		s, wd := GroupHyper(o, p.Group)
		b.scale = append(b.scale, s)
		b.wd = append(b.wd, wd)
		b.names = append(b.names, p.Name)
		b.sizes = append(b.sizes, len(p.W))
		b.chunks = appendChunks(b.chunks, i, len(p.W))
	}
	return b, nil
}

func appendChunks(cs []chunk, p, n int) []chunk {
	for lo := 0; lo < n; lo += chunkLen {
		cs = append(cs, chunk{p, lo, min(lo+chunkLen, n)})
	}
	return cs
}

func (b *base) T() int { return b.t }

// check panics if ps is not the parameter list the optimizer was made for: a programming error.
func (b *base) check(ps []*tensor.Param) {
	if len(ps) != len(b.sizes) {
		panic(fmt.Sprintf("optim: Update got %d parameters, the optimizer was made for %d", len(ps), len(b.sizes)))
	}
	for i, p := range ps {
		if len(p.W) != b.sizes[i] || len(p.G) != b.sizes[i] {
			panic(fmt.Sprintf("optim: Update: parameter %d (%s) has %d weights and %d gradients, the optimizer was made for %d (%s)",
				i, p.Name, len(p.W), len(p.G), b.sizes[i], b.names[i]))
		}
	}
}

// setState checks that state holds exactly the buffers named <param><suffix> (one per parameter
// and suffix) with the parameter's length, then copies them into dst[suffix][parameter] and sets t.
func (b *base) setState(t int, state []NamedTensor, suffixes []string, dst ...[][]float32) error {
	if t < 0 {
		return fmt.Errorf("optim: SetState: update count t = %d must be ≥ 0", t)
	}
	byName := make(map[string][]float32, len(state))
	for _, s := range state {
		if _, dup := byName[s.Name]; dup {
			return fmt.Errorf("optim: SetState: state %s appears twice", s.Name)
		}
		byName[s.Name] = s.Data
	}
	want := make(map[string]bool, len(suffixes)*len(b.names))
	for _, suf := range suffixes {
		for i, name := range b.names {
			d, ok := byName[name+suf]
			if !ok {
				return fmt.Errorf("optim: SetState: the saved state lacks %s%s, which %s needs "+
					"(written by another optimizer? then start from fresh optimizer state)", name, suf, b.o.Name)
			}
			if len(d) != b.sizes[i] {
				return fmt.Errorf("optim: SetState: %s%s has %d elements, parameter %s has %d",
					name, suf, len(d), name, b.sizes[i])
			}
			want[name+suf] = true
		}
	}
	for _, s := range state {
		if !want[s.Name] {
			return fmt.Errorf("optim: SetState: saved state %s is no %s buffer of this model "+
				"(written by another optimizer or model?)", s.Name, b.o.Name)
		}
	}
	for k, suf := range suffixes {
		for i, name := range b.names {
			copy(dst[k][i], byName[name+suf])
		}
	}
	b.t = t
	return nil
}

func (b *base) state(suffixes []string, bufs ...[][]float32) []NamedTensor {
	var out []NamedTensor
	for k, suf := range suffixes {
		for i, name := range b.names {
			out = append(out, NamedTensor{name + suf, bufs[k][i]})
		}
	}
	return out
}

func zeros(ps []*tensor.Param) [][]float32 {
	out := make([][]float32, len(ps))
	for i, p := range ps {
		out[i] = make([]float32, len(p.W))
	}
	return out
}

// each runs an elementwise update (Begin's apply) on every chunk of the parameters, in parallel.
func (b *base) each(apply func(i, lo, hi int)) {
	parallel(b.threads, b.chunks, func(c chunk) { apply(c.p, c.lo, c.hi) })
}

// parallel runs f on every chunk on threads goroutines (par.Threads resolves 0), which take
// chunks dynamically. Every element is updated by exactly one call, so the result does not depend
// on the schedule.
func parallel(threads int, chunks []chunk, f func(c chunk)) {
	parallelIdx(threads, chunks, func(_ int, c chunk) { f(c) })
}

// parallelIdx is parallel, also passing each chunk's index.
func parallelIdx(threads int, chunks []chunk, f func(k int, c chunk)) {
	par.Each(par.Threads(threads), len(chunks), func(_, k int) { f(k, chunks[k]) })
}
