package optim

import (
	"math"

	"github.com/anelab/anelab/anert/tensor"
)

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter 2019), decay applied first. Per
// element, with the group's lr and wd, and t the 1-based update count:
//
//	w ← w − lr·wd·w
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	m̂ = m/(1−β1ᵗ),  v̂ = v/(1−β2ᵗ)
//	w ← w − lr·m̂/(√v̂ + ε)
type AdamW struct {
	base
	m, v [][]float32
}

var adamSuffixes = []string{".m", ".v"}

func (a *AdamW) Name() string { return "adamw" }

// Update applies one AdamW update on prepared gradients and zeroes them. See Optimizer.
func (a *AdamW) Update(ps []*tensor.Param, lr float64, p Prep) {
	p.check()
	a.update(ps, lr, p, true)
}

func (a *AdamW) update(ps []*tensor.Param, lr float64, p Prep, zero bool) {
	a.each(a.begin(ps, lr, p, zero))
}

// Begin starts one update as Update does and returns it, to be run on parts of the parameters.
// See Elementwise.
func (a *AdamW) Begin(ps []*tensor.Param, lr float64, p Prep) func(i, lo, hi int) {
	p.check()
	return a.begin(ps, lr, p, true)
}

func (a *AdamW) begin(ps []*tensor.Param, lr float64, p Prep, zero bool) func(i, lo, hi int) {
	a.check(ps)
	a.t++
	t := float64(a.t)
	bc1 := 1 - math.Pow(a.o.Beta1, t)
	bc2 := 1 - math.Pow(a.o.Beta2, t)
	b1, b2, eps := float32(a.o.Beta1), float32(a.o.Beta2), float32(a.o.Eps)
	a1, a2 := float32(1-a.o.Beta1), float32(1-a.o.Beta2) // in float64: 1 − float32(0.999) is 5e-5 off relative
	return func(i, lo, hi int) {
		plr := lr * a.scale[i]
		adamUpdate(ps[i].W[lo:hi], ps[i].G[lo:hi], a.m[i][lo:hi], a.v[i][lo:hi], p.Unscale, p.Clip,
			float32(plr/bc1), float32(1/bc2), float32(1-plr*a.wd[i]), b1, a1, b2, a2, eps, zero)
	}
}

// adamUpdate is the AdamW update of one slice on the gradient g' = (g·u)·cl (u, cl: Prep's
// factors), with f = 1 − lr·wd (exactly 1 without decay), k = lr/(1−β1ᵗ), r = 1/(1−β2ᵗ),
// a1 = 1−b1 and a2 = 1−b2:
//
//	m ← b1·m + a1·g';  v ← b2·v + a2·g'²;  w ← w·f − k·m/(√(r·v) + ε);  with zero, g ← 0
//
// adamUpdate is the build's version (C on cgo builds, this function otherwise).
func adamUpdateGo(w, g, m, v []float32, u, cl, k, r, f, b1, a1, b2, a2, eps float32, zero bool) {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	for i := range w {
		gi := (g[i] * u) * cl
		if zero {
			g[i] = 0
		}
		mi := b1*m[i] + a1*gi
		vi := b2*v[i] + a2*gi*gi
		m[i], v[i] = mi, vi
		w[i] = w[i]*f - k*mi/(float32(math.Sqrt(float64(r*vi)))+eps)
	}
}

// State is "<param>.m" for every parameter, then "<param>.v" for every parameter.
func (a *AdamW) State() []NamedTensor { return a.state(adamSuffixes, a.m, a.v) }

func (a *AdamW) SetState(t int, state []NamedTensor) error {
	return a.setState(t, state, adamSuffixes, a.m, a.v)
}

var _ Elementwise = (*AdamW)(nil)
