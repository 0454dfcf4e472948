package optim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
)

func muonCfg() config.Optim {
	o := optimCfg("muon")
	o.LR, o.MuonLR, o.MuonMomentum = 1e-3, 0.02, 0.95
	return o
}

// TestNewtonSchulzByHand: on a diagonal matrix the iteration acts on each singular value alone.
// G = diag(3, 4) has ‖G‖_F = 5, so X₀ = diag(0.6, 0.8), and five times σ ← 3.4445σ − 4.7750σ³ +
// 2.0315σ⁵ (written out below) give the diagonal; the off-diagonal stays 0.
func TestNewtonSchulzByHand(t *testing.T) {
	// σ ← p(σ) five times, by hand (7 decimals):
	//   0.6 → 1.1932694 → 0.9119177 → 0.8011377 → 0.9747024 → 0.7228762
	//   0.8 → 0.9764819 → 0.7211176 → 1.0894568 → 0.6960447 → 1.1192039
	p := func(s float64) float64 { return 3.4445*s - 4.7750*s*s*s + 2.0315*s*s*s*s*s }
	want := []float64{0.6, 0.8}
	for range 5 {
		want[0], want[1] = p(want[0]), p(want[1])
	}
	if math.Abs(want[0]-0.7228762) > 1e-7 || math.Abs(want[1]-1.1192039) > 1e-7 {
		t.Fatalf("p⁵(0.6), p⁵(0.8) = %v, the hand values are 0.7228762, 1.1192039", want)
	}
	x := []float32{0.6, 0, 0, 0.8}
	y, a, b := make([]float32, 4), make([]float32, 4), make([]float32, 4)
	newtonSchulz(x, y, a, b, 2, 2)
	near(t, "NS5(diag(0.6, 0.8))", x, []float64{want[0], 0, 0, want[1]}, 1e-5)
}

// refNS5 is NS5 in float64 with naive loops: X [s, l] with s ≤ l.
func refNS5(x []float64, s, l int) []float64 {
	mul := func(a, b []float64, n, k, m int) []float64 { // [n,k]·[k,m]
		c := make([]float64, n*m)
		for i := range n {
			for j := range m {
				for q := range k {
					c[i*m+j] += a[i*k+q] * b[q*m+j]
				}
			}
		}
		return c
	}
	xt := make([]float64, l*s)
	for range 5 {
		for i := range s {
			for j := range l {
				xt[j*s+i] = x[i*l+j]
			}
		}
		A := mul(x, xt, s, l, s)
		AA := mul(A, A, s, s, s)
		B := make([]float64, s*s)
		for i := range B {
			B[i] = -4.7750*A[i] + 2.0315*AA[i]
		}
		BX := mul(B, x, s, s, l)
		for i := range x {
			x[i] = 3.4445*x[i] + BX[i]
		}
	}
	return x
}

// refMuonStep is one Muon step of W [r, c] in float64, as Muon's doc writes it.
func refMuonStep(w, g, m []float64, r, c int, mu, eta, wd float64) {
	u := make([]float64, r*c)
	var ss float64
	for k := range g {
		m[k] = mu*m[k] + (1-mu)*g[k]
		u[k] = (1-mu)*g[k] + mu*m[k]
		ss += u[k] * u[k]
	}
	s, l := min(r, c), max(r, c)
	x := make([]float64, r*c)
	for i := range r {
		for j := range c {
			v := u[i*c+j] / (math.Sqrt(ss) + 1e-7)
			if r > c {
				x[j*r+i] = v
			} else {
				x[i*c+j] = v
			}
		}
	}
	x = refNS5(x, s, l)
	for i := range r {
		for j := range c {
			o := x[i*c+j]
			if r > c {
				o = x[j*r+i]
			}
			w[i*c+j] = w[i*c+j]*(1-eta*wd) - eta*math.Sqrt(max(1, float64(r)/float64(c)))*o
		}
	}
}

// TestMuonMatrixSteps: three Muon steps of a 3×2 (tall: transposed, scale √1.5) and a 2×2 matrix,
// with weight decay and a scheduled lr at half the peak, against the float64 reference; a norm
// gain in the same optimizer gets exactly AdamW's update.
func TestMuonMatrixSteps(t *testing.T) {
	o := muonCfg()
	o.WeightDecay, o.MatrixLRScale = 0.1, 2
	tall := &tensor.Param{Name: "tall", Shape: []int{3, 2}, W: []float32{0.5, -0.2, 0.1, 0.9, -0.7, 0.3}, G: make([]float32, 6), Group: tensor.Matrix}
	sq := &tensor.Param{Name: "sq", Shape: []int{2, 2}, W: []float32{1, 0.5, -0.25, 2}, G: make([]float32, 4), Group: tensor.Matrix}
	gain := param("gain", tensor.Norm, 1, 1.5)
	opt, err := New(o, []*tensor.Param{tall, sq, gain})
	if err != nil {
		t.Fatal(err)
	}
	gainA := param("gain", tensor.Norm, 1, 1.5)
	adam, _ := New(func() config.Optim { a := o; a.Name = "adamw"; return a }(), []*tensor.Param{gainA})
	ref := map[*tensor.Param][3][]float64{} // w, m, shape
	for _, p := range []*tensor.Param{tall, sq} {
		w := make([]float64, len(p.W))
		for i, v := range p.W {
			w[i] = float64(v)
		}
		ref[p] = [3][]float64{w, make([]float64, len(w)), {float64(p.Shape[0]), float64(p.Shape[1])}}
	}
	r := rand.New(rand.NewPCG(1, 2))
	const lr = 5e-4 // half the peak: η = 0.02·2·0.5 = 0.02
	for it := range 3 {
		for _, p := range []*tensor.Param{tall, sq, gain} {
			for i := range p.G {
				p.G[i] = float32(r.NormFloat64())
			}
		}
		copy(gainA.G, gain.G)
		plainStep(opt, []*tensor.Param{tall, sq, gain}, lr)
		plainStep(adam, []*tensor.Param{gainA}, lr)
		for _, p := range []*tensor.Param{tall, sq} {
			s := ref[p]
			g := make([]float64, len(p.G))
			for i, v := range p.G {
				g[i] = float64(v)
			}
			refMuonStep(s[0], g, s[1], int(s[2][0]), int(s[2][1]), 0.95, 0.02, 0.1)
			near(t, p.Name+" it "+string(rune('1'+it)), p.W, s[0], 2e-6)
		}
		for i := range gain.W {
			if gain.W[i] != gainA.W[i] {
				t.Fatalf("it %d: gain %v, AdamW gives %v", it+1, gain.W, gainA.W)
			}
		}
	}
}

func TestMuonState(t *testing.T) {
	o := muonCfg()
	mk := func() []*tensor.Param {
		r := rand.New(rand.NewPCG(3, 3))
		var ps []*tensor.Param
		for _, s := range []struct {
			name  string
			g     tensor.Group
			shape []int
		}{{"embed", tensor.Embed, []int{5, 4}}, {"wq", tensor.Matrix, []int{4, 4}}, {"w1", tensor.Matrix, []int{6, 4}}, {"norm", tensor.Norm, []int{4}}} {
			p := &tensor.Param{Name: s.name, Shape: s.shape, Group: s.g}
			p.W, p.G = make([]float32, p.Size()), make([]float32, p.Size())
			for i := range p.W {
				p.W[i], p.G[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			}
			ps = append(ps, p)
		}
		return ps
	}
	a, b := mk(), mk()
	oa, _ := New(o, a)
	plainStep(oa, a, 1e-3)
	plainStep(oa, a, 1e-3)
	var names []string
	for _, s := range oa.State() {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "embed.m wq.m w1.m norm.m embed.v norm.v" {
		t.Errorf("state names %q", got)
	}
	ob, _ := New(o, b)
	for i := range a {
		copy(b[i].W, a[i].W)
	}
	if err := ob.SetState(oa.T(), oa.State()); err != nil {
		t.Fatal(err)
	}
	plainStep(oa, a, 1e-3)
	plainStep(ob, b, 1e-3)
	for i := range a {
		for j := range a[i].W {
			if a[i].W[j] != b[i].W[j] {
				t.Fatalf("after restore %s.W[%d] = %g, continuing original %g", a[i].Name, j, b[i].W[j], a[i].W[j])
			}
		}
	}
	adam, _ := New(optimCfg("adamw"), a)
	for _, c := range []struct {
		state []NamedTensor
		want  string
	}{
		{adam.State(), "wq.v is no muon buffer"},
		{oa.State()[:5], "lacks norm.v"},
		{append(oa.State()[:1:1], NamedTensor{"wq.m", []float32{1}}), "wq.m has 1 elements"},
	} {
		if err := ob.SetState(9, c.state); err == nil || !strings.Contains(err.Error(), c.want) || ob.T() != 3 {
			t.Errorf("SetState: error %v (T %d), want %q", err, ob.T(), c.want)
		}
	}
	bad := muonCfg()
	bad.MuonLR = 0
	if _, err := New(bad, a); err == nil || !strings.Contains(err.Error(), "optim.muon_lr") {
		t.Errorf("muon_lr 0: %v", err)
	}
}
func BenchmarkMuonStep(b *testing.B) { benchStep(b, "muon") }
