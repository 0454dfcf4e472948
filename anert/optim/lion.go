package optim

import (
	"math"

	"github.com/anelab/anelab/anert/tensor"
)

// Lion is the sign-momentum optimizer of Chen et al. 2023 ("Symbolic Discovery of Optimization
// Algorithms"), with decoupled weight decay applied first. Per element, with the group's lr and wd:
//
//	w ← w − lr·wd·w
//	c = β1·m + (1−β1)·g
//	w ← w − lr·sign(c)        sign(0) = 0
//	m ← β2·m + (1−β2)·g
//
// Its only state is m (no v, no ε; T is counted but unused).
type Lion struct {
	base
	m [][]float32
}

var lionSuffixes = []string{".m"}

func (l *Lion) Name() string { return "lion" }

// Update applies one Lion update on prepared gradients and zeroes them. See Optimizer.
func (l *Lion) Update(ps []*tensor.Param, lr float64, p Prep) {
	p.check()
	l.update(ps, lr, p, true)
}

func (l *Lion) update(ps []*tensor.Param, lr float64, p Prep, zero bool) {
	l.each(l.begin(ps, lr, p, zero))
}

// Begin starts one update as Update does and returns it, to be run on parts of the parameters.
// See Elementwise.
func (l *Lion) Begin(ps []*tensor.Param, lr float64, p Prep) func(i, lo, hi int) {
	p.check()
	return l.begin(ps, lr, p, true)
}

func (l *Lion) begin(ps []*tensor.Param, lr float64, p Prep, zero bool) func(i, lo, hi int) {
	l.check(ps)
	l.t++
	b1, b2 := float32(l.o.Beta1), float32(l.o.Beta2)
	a1, a2 := float32(1-l.o.Beta1), float32(1-l.o.Beta2) // 1−β in float64: 1 − float32(0.99) is off by 1e-7 absolute
	return func(i, lo, hi int) {
		plr := lr * l.scale[i]
		lionUpdate(ps[i].W[lo:hi], ps[i].G[lo:hi], l.m[i][lo:hi], p.Unscale, p.Clip,
			float32(plr), float32(1-plr*l.wd[i]), b1, a1, b2, a2, zero)
	}
}

// lionUpdate is the Lion update of one slice on the gradient g' = (g·u)·cl (u, cl: Prep's
// factors), with f = 1 − lr·wd (exactly 1 without decay, so w·f = w), a1 = 1−b1 and a2 = 1−b2:
//
//	c = b1·m + a1·g';  w ← w·f − lr·sign(c);  m ← b2·m + a2·g';  with zero, g ← 0
//
// sign(c)·lr is built from c's sign bit and lr's magnitude bits, and is 0 where c = ±0.
// lionUpdate is the build's version (C on cgo builds, this function otherwise).
func lionUpdateGo(w, g, m []float32, u, cl, lr, f, b1, a1, b2, a2 float32, zero bool) {
	n := len(w)
	g, m = g[:n], m[:n]
	lrBits := math.Float32bits(lr) &^ signBit
	for i := range w {
		gi, mi := (g[i]*u)*cl, m[i]
		if zero {
			g[i] = 0
		}
		c := b1*mi + a1*gi
		u := math.Float32bits(c)
		s := math.Float32frombits(u&signBit | lrBits)
		if u&^signBit == 0 {
			s = 0
		}
		w[i] = w[i]*f - s
		m[i] = b2*mi + a2*gi
	}
}

const signBit = 1 << 31

// T, State and SetState: see Optimizer. Lion's state is "<param>.m" for every parameter.
func (l *Lion) State() []NamedTensor { return l.state(lionSuffixes, l.m) }

func (l *Lion) SetState(t int, state []NamedTensor) error {
	return l.setState(t, state, lionSuffixes, l.m)
}

var _ Elementwise = (*Lion)(nil)
