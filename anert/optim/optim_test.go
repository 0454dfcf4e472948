package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
)

func param(name string, g tensor.Group, w ...float32) *tensor.Param {
	return &tensor.Param{Name: name, Shape: []int{len(w)}, W: w, G: make([]float32, len(w)), Group: g}
}

func optimCfg(name string) config.Optim {
	o := config.Default().Optim
	o.Name = name
	o.MatrixLRScale, o.EmbedLRScale, o.WeightDecay = 1, 1, 0
	return o
}

func near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*math.Max(1, math.Abs(want[i])) || math.IsNaN(d) {
			t.Errorf("%s[%d] = %.9g, want %.9g", what, i, got[i], want[i])
		}
	}
}

// TestLionByHand follows three Lion steps (β1 = 0.9, β2 = 0.99, lr = 0.1, no decay) on three
// elements, the arithmetic written out.
func TestLionByHand(t *testing.T) {
	o := optimCfg("lion")
	o.Beta1, o.Beta2 = 0.9, 0.99
	p := param("g", tensor.Norm, 1, -2, 0.5)
	opt, err := New(o, []*tensor.Param{p})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		g     []float32
		w, m  []float64
		label string
	}{
		// m = 0: c = 0.1·g = [0.05, -0.1, 0] → sign [+, −, 0] → w = [1−0.1, −2+0.1, 0.5];
		// m = 0.01·g = [0.005, −0.01, 0].
		{[]float32{0.5, -1, 0}, []float64{0.9, -1.9, 0.5}, []float64{0.005, -0.01, 0}, "step 1"},
		// c = 0.9·[0.005, −0.01, 0] + 0.1·[−0.2, 0.3, 0] = [0.0045−0.02, −0.009+0.03, 0] = [−0.0155, 0.021, 0]
		// → sign [−, +, 0] → w = [0.9+0.1, −1.9−0.1, 0.5];
		// m = 0.99·[0.005, −0.01, 0] + 0.01·[−0.2, 0.3, 0] = [0.00495−0.002, −0.0099+0.003, 0] = [0.00295, −0.0069, 0].
		{[]float32{-0.2, 0.3, 0}, []float64{1, -2, 0.5}, []float64{0.00295, -0.0069, 0}, "step 2"},
		// c = 0.9·[0.00295, −0.0069, 0] + 0.1·[0.01, 0.05, 1] = [0.002655+0.001, −0.00621+0.005, 0.1]
		//   = [0.003655, −0.00121, 0.1]: element 2 follows its momentum (c < 0) against g > 0
		// → w = [1−0.1, −2+0.1, 0.5−0.1];
		// m = 0.99·m + 0.01·g = [0.0029205+0.0001, −0.006831+0.0005, 0.01] = [0.0030205, −0.006331, 0.01].
		{[]float32{0.01, 0.05, 1}, []float64{0.9, -1.9, 0.4}, []float64{0.0030205, -0.006331, 0.01}, "step 3"},
	}
	for _, s := range steps {
		copy(p.G, s.g)
		plainStep(opt, []*tensor.Param{p}, 0.1)
		near(t, s.label+" w", p.W, s.w, 1e-6)
		near(t, s.label+" m", opt.State()[0].Data, s.m, 1e-6)
	}
	if opt.T() != 3 {
		t.Errorf("T() = %d after 3 steps, want 3", opt.T())
	}
}

// TestAdamWByHand follows two AdamW steps (β1 = 0.9, β2 = 0.999, ε = 1e-8, lr = 0.1, no decay).
func TestAdamWByHand(t *testing.T) {
	o := optimCfg("adamw")
	o.Beta1, o.Beta2, o.Eps = 0.9, 0.999, 1e-8
	p := param("g", tensor.Norm, 1, -2, 0.5)
	opt, err := New(o, []*tensor.Param{p})
	if err != nil {
		t.Fatal(err)
	}
	ps := []*tensor.Param{p}
	// t = 1, g = [0.5, −1, 0]: m = 0.1·g = [0.05, −0.1, 0], v = 0.001·g² = [0.00025, 0.001, 0];
	// m̂ = m/(1−0.9) = g, v̂ = v/(1−0.999) = g², so w ← w − 0.1·g/(|g| + 1e-8); element 3 has m = 0.
	copy(p.G, []float32{0.5, -1, 0})
	plainStep(opt, ps, 0.1)
	near(t, "t=1 w", p.W, []float64{1 - 0.1*0.5/(0.5+1e-8), -2 + 0.1*1/(1+1e-8), 0.5}, 1e-7)
	st := opt.State()
	near(t, "t=1 m", st[0].Data, []float64{0.05, -0.1, 0}, 1e-7)
	near(t, "t=1 v", st[1].Data, []float64{0.00025, 0.001, 0}, 1e-7)

	// t = 2, g = [−0.2, 0.3, 0]:
	// m = 0.9·[0.05, −0.1] + 0.1·[−0.2, 0.3] = [0.045−0.02, −0.09+0.03] = [0.025, −0.06]
	// v = 0.999·[0.00025, 0.001] + 0.001·[0.04, 0.09] = [0.00024975+0.00004, 0.000999+0.00009] = [0.00028975, 0.001089]
	// 1−β1² = 1−0.81 = 0.19, 1−β2² = 1−0.998001 = 0.001999
	// w = w − 0.1·(m/0.19)/(√(v/0.001999) + 1e-8)
	copy(p.G, []float32{-0.2, 0.3, 0})
	plainStep(opt, ps, 0.1)
	w1 := 1 - 0.1*0.5/(0.5+1e-8)
	w2 := -2 + 0.1*1/(1+1e-8)
	near(t, "t=2 w", p.W, []float64{
		w1 - 0.1*(0.025/0.19)/(math.Sqrt(0.00028975/0.001999)+1e-8), // ≈ 0.9 − 0.03456 = 0.86544
		w2 - 0.1*(-0.06/0.19)/(math.Sqrt(0.001089/0.001999)+1e-8),   // ≈ −1.9 + 0.04279 = −1.85721
		0.5}, 2e-6)
	near(t, "t=2 m", st[0].Data, []float64{0.025, -0.06, 0}, 1e-7)
	near(t, "t=2 v", st[1].Data, []float64{0.00028975, 0.001089, 0}, 1e-7)
}

// TestGroups checks each group's learning rate and weight decay. With zero gradients and zero
// state both optimizers' gradient term is 0 (sign(0) = 0; m̂ = 0), so only decay moves w:
// w ← w·(1 − lr·scale·wd) for matrices, unchanged for embeddings and norms. A gradient of 1 then
// shows the group learning rate (Lion moves by exactly lr·scale).
func TestGroups(t *testing.T) {
	for _, name := range []string{"lion", "adamw"} {
		o := optimCfg(name)
		o.MatrixLRScale, o.EmbedLRScale, o.WeightDecay = 0.5, 2, 0.1
		mat := param("mat", tensor.Matrix, 1, -2)
		emb := param("emb", tensor.Embed, 1, -2)
		nrm := param("nrm", tensor.Norm, 1, -2)
		ps := []*tensor.Param{mat, emb, nrm}
		opt, err := New(o, ps)
		if err != nil {
			t.Fatal(err)
		}
		plainStep(opt, ps, 0.1) // matrix: lr = 0.1·0.5 = 0.05, factor 1 − 0.05·0.1 = 0.995
		near(t, name+" decay mat", mat.W, []float64{0.995, -1.99}, 1e-7)
		near(t, name+" decay emb", emb.W, []float64{1, -2}, 0)
		near(t, name+" decay nrm", nrm.W, []float64{1, -2}, 0)
		if name != "lion" {
			continue
		}
		for _, p := range ps {
			p.G[0], p.G[1] = 1, 1
		}
		plainStep(opt, ps, 0.1) // m stayed 0 (g was 0), so c = 0.1·g > 0 and w ← w·f − lr·scale
		near(t, "lion lr mat", mat.W, []float64{0.995*0.995 - 0.05, -1.99*0.995 - 0.05}, 1e-6)
		near(t, "lion lr emb", emb.W, []float64{1 - 0.2, -2 - 0.2}, 1e-6)
		near(t, "lion lr nrm", nrm.W, []float64{1 - 0.1, -2 - 0.1}, 1e-6)
	}
}

func TestLR(t *testing.T) {
	o := config.Optim{LR: 1e-3, MinLRFrac: 0.1, Warmup: 10, Horizon: 110}
	// floor = 1e-4; cosine span 100 updates.
	for _, c := range []struct {
		step int
		want float64
	}{
		{0, 1e-3 * 1 / 10},                     // warmup start
		{4, 1e-3 * 5 / 10},                     // warmup middle
		{9, 1e-3},                              // warmup end: lr·10/10
		{10, 1e-3},                             // r = 0: cos 0 = 1 → lr
		{35, 1e-4 + 0.5*(1+math.Sqrt2/2)*9e-4}, // r = 0.25: cos(π/4) = √2/2 → 8.6820e-4
		{60, 1e-4 + 0.5*9e-4},                  // r = 0.5: cos(π/2) = 0 → 5.5e-4
		{110, 1e-4},                            // r = 1: horizon → floor
		{5000, 1e-4},                           // past the horizon: clamped at the floor
		{-3, 1e-4},                             // negative steps count as 0
	} {
		if got := LR(o, c.step); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("LR(step %d) = %.10g, want %.10g", c.step, got, c.want)
		}
	}
	o.Warmup = 0 // no warmup: step 0 is the peak
	if got := LR(o, 0); got != 1e-3 {
		t.Errorf("LR without warmup at step 0 = %g, want 1e-3", got)
	}
}

func TestClipGradNorm(t *testing.T) {
	mk := func(a ...float32) []*tensor.Param {
		p, q := param("p", tensor.Matrix, 0, 0), param("q", tensor.Norm, 0)
		copy(p.G, a[:2])
		q.G[0] = a[2]
		return []*tensor.Param{p, q}
	}
	// ‖(3, 4, 12)‖ = √(9+16+144) = √169 = 13.
	for _, c := range []struct {
		max  float64
		want []float64
	}{
		{0, []float64{3, 4, 12}},    // disabled
		{20, []float64{3, 4, 12}},   // under the limit
		{6.5, []float64{1.5, 2, 6}}, // ×6.5/13 = ×0.5
		{1, []float64{3. / 13, 4. / 13, 12. / 13}},
	} {
		ps := mk(3, 4, 12)
		if n := clipGradNorm(ps, c.max, 2); n != 13 {
			t.Errorf("max %g: norm = %g, want 13", c.max, n)
		}
		near(t, "clipped", append(append([]float32{}, ps[0].G...), ps[1].G...), c.want, 1e-7)
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		ps := mk(3, 4, bad)
		n := clipGradNorm(ps, 1, 2)
		if !math.IsNaN(n) && !math.IsInf(n, 0) {
			t.Errorf("gradient %g: norm = %g, want non-finite", bad, n)
		}
		if ps[0].G[0] != 3 {
			t.Errorf("gradient %g: gradients changed to %v; a non-finite norm must leave them", bad, ps[0].G)
		}
	}
	// Many chunks (parallel path): 100000 gradients of 0.5 have norm 0.5·√100000.
	big := &tensor.Param{Name: "big", Shape: []int{100000}, W: make([]float32, 100000), G: make([]float32, 100000)}
	for i := range big.G {
		big.G[i] = 0.5
	}
	if n, want := clipGradNorm([]*tensor.Param{big}, 0, 2), 0.5*math.Sqrt(100000); math.Abs(n-want) > 1e-9*want {
		t.Errorf("big norm = %.12g, want %.12g", n, want)
	}
}

// randParams makes parameters of several groups and sizes (some span several chunks).
func randParams(r *rand.Rand) []*tensor.Param {
	var ps []*tensor.Param
	for i, n := range []int{3, 70000, 1000, 40000} {
		g := []tensor.Group{tensor.Norm, tensor.Matrix, tensor.Embed, tensor.Matrix}[i]
		p := &tensor.Param{Name: "p" + string(rune('a'+i)), Shape: []int{n}, W: make([]float32, n), G: make([]float32, n), Group: g}
		for j := range p.W {
			p.W[j] = float32(r.NormFloat64())
		}
		ps = append(ps, p)
	}
	return ps
}

func cloneParams(ps []*tensor.Param) []*tensor.Param {
	var out []*tensor.Param
	for _, p := range ps {
		q := *p
		q.W = append([]float32(nil), p.W...)
		q.G = append([]float32(nil), p.G...)
		out = append(out, &q)
	}
	return out
}

// TestScaledAccumulation: accumulating Accum micro-gradients seeded with GradScale and preparing
// them (unscale, then clip) gives the same gradients, norm and update as stepping on the plain mean
// gradient clipped the same way — for a full and a partial accumulation, for both optimizers.
func TestScaledAccumulation(t *testing.T) {
	for _, name := range []string{"lion", "adamw"} {
		for _, micro := range []int{4, 3} {
			r := rand.New(rand.NewPCG(1, uint64(micro)))
			o := optimCfg(name)
			o.Accum, o.LossScale, o.GradClip, o.WeightDecay = 4, 1024, 50, 0.1
			scaled := randParams(r)
			plain := cloneParams(scaled)
			micros := make([][][]float32, micro)
			for k := range micros {
				for _, p := range scaled {
					g := make([]float32, len(p.G))
					for j := range g {
						g[j] = float32(r.NormFloat64())
					}
					micros[k] = append(micros[k], g)
				}
			}
			gs := float32(GradScale(o)) // 1024/4 = 256
			for k := range micros {
				for i, p := range scaled {
					for j, g := range micros[k][i] {
						p.G[j] += gs * g // what a backward pass seeded with gs accumulates
						plain[i].G[j] += g / float32(micro)
					}
				}
			}
			nScaled := PrepareGrads(scaled, o, micro, 2)
			nPlain := clipGradNorm(plain, o.GradClip, 2)
			if math.Abs(nScaled-nPlain) > 1e-5*nPlain || nPlain <= o.GradClip {
				t.Fatalf("%s micro %d: norm %g (scaled) vs %g (plain); plain must exceed the clip %g", name, micro, nScaled, nPlain, o.GradClip)
			}
			for i := range scaled {
				for j := range scaled[i].G {
					if d := math.Abs(float64(scaled[i].G[j] - plain[i].G[j])); d > 1e-5 {
						t.Fatalf("%s micro %d: %s.G[%d] = %g (scaled) vs %g (plain)", name, micro, scaled[i].Name, j, scaled[i].G[j], plain[i].G[j])
					}
				}
			}
			o1, _ := New(o, scaled)
			o2, _ := New(o, plain)
			plainStep(o1, scaled, 1e-2)
			plainStep(o2, plain, 1e-2)
			for i := range scaled {
				for j := range scaled[i].W {
					if d := math.Abs(float64(scaled[i].W[j] - plain[i].W[j])); d > 1e-5 {
						t.Fatalf("%s micro %d: %s.W[%d] = %g (scaled) vs %g (plain)", name, micro, scaled[i].Name, j, scaled[i].W[j], plain[i].W[j])
					}
				}
			}
		}
	}
}

// TestLargeMatchesFormula runs both optimizers on multi-chunk parameters and checks every element
// against the update formula evaluated in float64.
func TestLargeMatchesFormula(t *testing.T) {
	for _, name := range []string{"lion", "adamw"} {
		r := rand.New(rand.NewPCG(2, 3))
		o := optimCfg(name)
		o.Beta1, o.Beta2, o.Eps, o.WeightDecay, o.MatrixLRScale, o.EmbedLRScale = 0.9, 0.95, 1e-6, 0.1, 0.5, 2
		ps := randParams(r)
		opt, err := New(o, ps)
		if err != nil {
			t.Fatal(err)
		}
		type ref struct{ w, m, v []float64 }
		refs := make([]ref, len(ps))
		for i, p := range ps {
			refs[i] = ref{make([]float64, len(p.W)), make([]float64, len(p.W)), make([]float64, len(p.W))}
			for j, w := range p.W {
				refs[i].w[j] = float64(w)
			}
		}
		const lr = 1e-2
		for step := 1; step <= 3; step++ {
			for i, p := range ps {
				s, wd := GroupHyper(o, p.Group)
				plr := lr * s
				for j := range p.G {
					p.G[j] = float32(r.NormFloat64())
					g, rf := float64(p.G[j]), &refs[i]
					rf.w[j] -= plr * wd * rf.w[j]
					if name == "lion" {
						c := o.Beta1*rf.m[j] + (1-o.Beta1)*g
						if math.Abs(c) > 1e-5 { // a c this near 0 may round to either sign in float32
							rf.w[j] -= plr * math.Copysign(1, c)
						} else {
							rf.w[j] = math.NaN()
						}
						rf.m[j] = o.Beta2*rf.m[j] + (1-o.Beta2)*g
					} else {
						rf.m[j] = o.Beta1*rf.m[j] + (1-o.Beta1)*g
						rf.v[j] = o.Beta2*rf.v[j] + (1-o.Beta2)*g*g
						mh := rf.m[j] / (1 - math.Pow(o.Beta1, float64(step)))
						vh := rf.v[j] / (1 - math.Pow(o.Beta2, float64(step)))
						rf.w[j] -= plr * mh / (math.Sqrt(vh) + o.Eps)
					}
				}
			}
			plainStep(opt, ps, lr)
			for i, p := range ps {
				for j, w := range p.W {
					want := refs[i].w[j]
					if !math.IsNaN(want) && math.Abs(float64(w)-want) > 1e-5*math.Max(1, math.Abs(want)) {
						t.Fatalf("%s step %d: %s.W[%d] = %.8g, want %.8g", name, step, p.Name, j, w, want)
					}
					if math.IsNaN(want) {
						refs[i].w[j] = float64(w) // resynchronise after an ambiguous sign
					}
				}
			}
		}
	}
}

// TestStateRoundTrip: saving after two steps and restoring into a fresh optimizer continues
// exactly as the original does on the third step.
func TestStateRoundTrip(t *testing.T) {
	for _, name := range []string{"lion", "adamw"} {
		r := rand.New(rand.NewPCG(4, 5))
		o := optimCfg(name)
		a := randParams(r)
		oa, _ := New(o, a)
		grads := func(ps []*tensor.Param, seed uint64) {
			rg := rand.New(rand.NewPCG(seed, 0))
			for _, p := range ps {
				for j := range p.G {
					p.G[j] = float32(rg.NormFloat64())
				}
			}
		}
		for s := range 2 {
			grads(a, uint64(s))
			plainStep(oa, a, 1e-3)
		}
		b := cloneParams(a)
		ob, _ := New(o, b)
		var saved []NamedTensor
		for _, st := range oa.State() {
			saved = append(saved, NamedTensor{st.Name, append([]float32(nil), st.Data...)})
		}
		if err := ob.SetState(oa.T(), saved); err != nil {
			t.Fatal(err)
		}
		grads(a, 7)
		grads(b, 7)
		plainStep(oa, a, 1e-3)
		plainStep(ob, b, 1e-3)
		for i := range a {
			for j := range a[i].W {
				if a[i].W[j] != b[i].W[j] {
					t.Fatalf("%s: after restore, %s.W[%d] = %g, continuing original %g", name, a[i].Name, j, b[i].W[j], a[i].W[j])
				}
			}
		}
	}
}

func TestSetStateErrors(t *testing.T) {
	p := param("layers.0.wq", tensor.Matrix, 1, 2)
	ps := []*tensor.Param{p}
	lion, _ := New(optimCfg("lion"), ps)
	adam, _ := New(optimCfg("adamw"), ps)
	for _, c := range []struct {
		opt   Optimizer
		state []NamedTensor
		want  string
	}{
		{adam, lion.State(), "lacks layers.0.wq.v"},
		{lion, adam.State(), "layers.0.wq.v is no lion buffer"},
		{lion, []NamedTensor{{"layers.0.wq.m", []float32{1}}}, "layers.0.wq.m has 1 elements, parameter layers.0.wq has 2"},
		{lion, []NamedTensor{{"layers.0.wq.m", []float32{1, 2}}, {"layers.0.wq.m", []float32{1, 2}}}, "appears twice"},
	} {
		err := c.opt.SetState(1, c.state)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s.SetState: error %v, want one containing %q", c.opt.Name(), err, c.want)
		}
		if c.opt.T() != 0 {
			t.Errorf("%s: T changed to %d by a failed SetState", c.opt.Name(), c.opt.T())
		}
	}
}

func TestNewErrors(t *testing.T) {
	good := param("a", tensor.Matrix, 1)
	for _, c := range []struct {
		o    func(*config.Optim)
		ps   []*tensor.Param
		want string
	}{
		{func(o *config.Optim) { o.Name = "sgd" }, []*tensor.Param{good}, `optim.name = "sgd"`},
		{func(o *config.Optim) { o.Name, o.Eps = "adamw", 0 }, []*tensor.Param{good}, "optim.eps"},
		{func(o *config.Optim) { o.Beta1 = 1 }, []*tensor.Param{good}, "optim.beta1"},
		{func(*config.Optim) {}, []*tensor.Param{good, param("a", tensor.Norm, 1)}, `"a" is empty or repeated`},
		{func(*config.Optim) {}, []*tensor.Param{{Name: "b", Shape: []int{2, 3}, W: make([]float32, 6), G: make([]float32, 5)}}, "len(G) = 5"},
	} {
		o := optimCfg("lion")
		c.o(&o)
		_, err := New(o, c.ps)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New: error %v, want one containing %q", err, c.want)
		}
	}
}

// stories15MParams is the default config's parameter set (~6.2M: 4096×256 embedding, 6 layers).
func stories15MParams() []*tensor.Param {
	m := config.Default().Model
	mk := func(name string, g tensor.Group, shape ...int) *tensor.Param {
		p := &tensor.Param{Name: name, Shape: shape, Group: g}
		p.W, p.G = make([]float32, p.Size()), make([]float32, p.Size())
		for i := range p.G {
			p.G[i] = float32(i%7) - 3
		}
		return p
	}
	ps := []*tensor.Param{mk("embed", tensor.Embed, m.Vocab, m.Dim)}
	for l := range m.Layers {
		for _, n := range []string{"wq", "wk", "wv", "wo"} {
			ps = append(ps, mk(n+string(rune('0'+l)), tensor.Matrix, m.Dim, m.Dim))
		}
		ps = append(ps, mk("w1"+string(rune('0'+l)), tensor.Matrix, m.FFN, m.Dim),
			mk("w2"+string(rune('0'+l)), tensor.Matrix, m.Dim, m.FFN),
			mk("w3"+string(rune('0'+l)), tensor.Matrix, m.FFN, m.Dim),
			mk("att"+string(rune('0'+l)), tensor.Norm, m.Dim), mk("ffn"+string(rune('0'+l)), tensor.Norm, m.Dim))
	}
	return append(ps, mk("final", tensor.Norm, m.Dim))
}

func benchStep(b *testing.B, name string) {
	ps := stories15MParams()
	n := 0
	for _, p := range ps {
		n += len(p.W)
	}
	o := config.Default().Optim
	o.Name = name
	opt, err := New(o, ps)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(n) * 4 * 3) // w, g, m (AdamW also v)
	b.ReportAllocs()
	for b.Loop() {
		plainStep(opt, ps, 1e-4)
	}
	b.ReportMetric(float64(n), "params")
}

func BenchmarkLionStep(b *testing.B)  { benchStep(b, "lion") }
func BenchmarkAdamWStep(b *testing.B) { benchStep(b, "adamw") }

// BenchmarkUpdate is one update as the training loop runs it on the default model's parameters
// with loss scaling and clipping active: "passes" the earlier way (PrepareGrads rewriting G to
// unscale and clip, the plain update, a zeroing pass), "fused" Prepare and Update. Both refill G first (not
// timed apart: the same cost in each).
func BenchmarkUpdate(b *testing.B) {
	for _, name := range []string{"lion", "adamw"} {
		for _, way := range []string{"passes", "fused"} {
			b.Run(name+"/"+way, func(b *testing.B) {
				ps := stories15MParams()
				n := 0
				for _, p := range ps {
					n += len(p.W)
				}
				o := config.Default().Optim
				o.Name, o.LossScale, o.GradClip = name, 2, 1
				opt, err := New(o, ps, Threads(2))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					for _, p := range ps {
						for i := range p.G {
							p.G[i] = float32(i%7) - 3
						}
					}
					b.StartTimer()
					if way == "passes" {
						PrepareGrads(ps, o, 1, 2)
						plainStep(opt, ps, 1e-4)
						parallel(2, gradChunks(ps), func(c chunk) { clear(ps[c.p].G[c.lo:c.hi]) }) // as Model.ZeroGrad: one loop
					} else {
						opt.Update(ps, 1e-4, Prepare(ps, o, 1, 2))
					}
				}
				b.ReportMetric(float64(n), "params")
			})
		}
	}
}

func BenchmarkPrepareGrads(b *testing.B) {
	ps := stories15MParams()
	o := config.Default().Optim
	o.LossScale, o.GradClip = 1, 0 // measure the norm pass alone (no scaling, no clipping)
	b.ReportAllocs()
	for b.Loop() {
		PrepareGrads(ps, o, 1, 2)
	}
}

func TestLRAt(t *testing.T) {
	// lr 1e-3, floor 1e-4, warmup the first 10% of the budget; wsd decays over the last 30%.
	base := config.Optim{LR: 1e-3, MinLRFrac: 0.1, WarmupFrac: 0.1, DecayFrac: 0.3, ScheduleUnit: "budget"}
	for _, c := range []struct {
		sched string
		p     float64
		want  float64
	}{
		{"cosine", 0.01, 1e-3 * 0.1},                        // warmup: lr·p/w
		{"cosine", 0.05, 1e-3 * 0.5},                        //
		{"cosine", 0.1, 1e-3},                               // warmup end: the peak
		{"cosine", 0.325, 1e-4 + 0.5*(1+math.Sqrt2/2)*9e-4}, // r = (p−w)/(1−w) = 0.25
		{"cosine", 0.55, 1e-4 + 0.5*9e-4},                   // r = 0.5
		{"cosine", 1, 1e-4},                                 // the last update: the floor
		{"linear", 0.55, 1e-4 + 0.5*9e-4},                   // r = 0.5: halfway down
		{"linear", 0.775, 1e-4 + 0.25*9e-4},                 // r = 0.75
		{"linear", 1, 1e-4},                                 //
		{"wsd", 0.1, 1e-3},                                  // warmup end
		{"wsd", 0.5, 1e-3},                                  // stable
		{"wsd", 0.7, 1e-3},                                  // decay starts at 1 − 0.3
		{"wsd", 0.85, 1e-4 + 0.5*9e-4},                      // halfway through the decay
		{"wsd", 1, 1e-4},                                    // floor
		{"wsd", 1.5, 1e-4},                                  // past the budget: clamped
		{"cosine", -1, 0},                                   // before the start: nothing
	} {
		o := base
		o.Schedule = c.sched
		if got := LRAt(o, c.p); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%s LRAt(%g) = %.10g, want %.10g", c.sched, c.p, got, c.want)
		}
		if got := Scheduled(o, 12345, c.p); got != LRAt(o, c.p) {
			t.Errorf("%s Scheduled with unit budget = %g, want LRAt = %g (the update count must not matter)", c.sched, got, LRAt(o, c.p))
		}
	}
	// No warmup: the first update is at the peak (cosine's r ≈ 0).
	o := base
	o.WarmupFrac = 0
	if got := LRAt(o, 1e-9); math.Abs(got-1e-3) > 1e-12 {
		t.Errorf("LRAt without warmup near p = 0: %g, want 1e-3", got)
	}
	// Update k of N with p = (k+1)/N reproduces the update-count warmup with W = w·N.
	o.WarmupFrac = 0.1
	u := o
	u.Warmup, u.Horizon = 10, 100
	for k := 0; k < 10; k++ {
		if a, b := LRAt(o, float64(k+1)/100), LR(u, k); math.Abs(a-b) > 1e-15 {
			t.Errorf("warmup update %d: LRAt %g, LR %g", k, a, b)
		}
	}
}

func TestLRUpdatesWSD(t *testing.T) {
	// Unit updates: warmup 10, horizon 110, decay over the last 20% of the horizon (from update 88).
	o := config.Optim{LR: 1e-3, MinLRFrac: 0, Warmup: 10, Horizon: 110, Schedule: "wsd", DecayFrac: 0.2, ScheduleUnit: "updates"}
	for _, c := range []struct {
		step int
		want float64
	}{{0, 1e-4}, {9, 1e-3}, {50, 1e-3}, {88, 1e-3}, {99, 0.5e-3}, {110, 0}, {200, 0}} {
		if got := LR(o, c.step); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("wsd LR(%d) = %.10g, want %.10g", c.step, got, c.want)
		}
		if got := Scheduled(o, c.step, 0.5); got != LR(o, c.step) {
			t.Errorf("Scheduled with unit updates = %g, want LR = %g (progress must not matter)", got, LR(o, c.step))
		}
	}
}

// TestUpdateFoldsPrep: Update on Prepare's factors — unscaling and clipping applied as each
// gradient is read, the gradient zeroed right after — leaves the weights and the optimizer state
// bit for bit where PrepareGrads (rewriting G), plainStep and zeroGrads leave them, for every optimizer,
// with loss scaling and a partial accumulation, with clipping active, inactive and off, over two
// updates; and the gradients all 0.
func TestUpdateFoldsPrep(t *testing.T) {
	mk := func(r *rand.Rand) []*tensor.Param {
		var ps []*tensor.Param
		for i, shape := range [][]int{{3}, {350, 200}, {1000}, {120, 300}, {40, 33}} {
			g := []tensor.Group{tensor.Norm, tensor.Matrix, tensor.Embed, tensor.Matrix, tensor.Matrix}[i]
			n := shape[0]
			if len(shape) == 2 {
				n *= shape[1]
			}
			p := &tensor.Param{Name: "p" + string(rune('a'+i)), Shape: shape, W: make([]float32, n), G: make([]float32, n), Group: g}
			for j := range p.W {
				p.W[j] = float32(r.NormFloat64())
			}
			ps = append(ps, p)
		}
		return ps
	}
	for _, name := range []string{"lion", "adamw", "muon"} {
		for _, c := range []struct {
			what                string
			accum, micro        int
			lossScale, gradClip float64
			clips               bool
		}{
			{"scaled, partial accumulation, clipped", 4, 3, 1024, 50, true},
			{"scaled, not clipped", 2, 2, 512, 1e9, false},
			{"plain, clipping off", 1, 1, 0, 0, false},
		} {
			r := rand.New(rand.NewPCG(7, uint64(len(c.what))))
			o := optimCfg(name)
			if name == "muon" {
				o = muonCfg()
			}
			o.Accum, o.LossScale, o.GradClip, o.WeightDecay = c.accum, c.lossScale, c.gradClip, 0.1
			fused, passes := mk(r), []*tensor.Param(nil)
			passes = cloneParams(fused)
			of, err := New(o, fused, Threads(2))
			if err != nil {
				t.Fatal(err)
			}
			op, _ := New(o, passes, Threads(2))
			gs := GradScale(o) * float64(c.micro)
			for step := range 2 {
				for i, p := range fused {
					for j := range p.G {
						p.G[j] = float32(gs * r.NormFloat64())
						passes[i].G[j] = p.G[j]
					}
				}
				pr := Prepare(fused, o, c.micro, 2)
				norm := PrepareGrads(passes, o, c.micro, 2)
				if pr.Norm != norm || (pr.Clip < 1) != c.clips || pr.Clip > 1 {
					t.Fatalf("%s, %s: Prepare = %+v, PrepareGrads' norm %g; clipping expected: %v", name, c.what, pr, norm, c.clips)
				}
				lr := 1e-2 * float64(step+1)
				of.Update(fused, lr, pr)
				plainStep(op, passes, lr)
				zeroGrads(passes)
				for i, p := range fused {
					for j := range p.W {
						if math.Float32bits(p.W[j]) != math.Float32bits(passes[i].W[j]) || p.G[j] != 0 {
							t.Fatalf("%s, %s, step %d: %s.W[%d] = %g (Update) vs %g (passes), G = %g (want 0)",
								name, c.what, step, p.Name, j, p.W[j], passes[i].W[j], p.G[j])
						}
					}
				}
				sf, sp := of.State(), op.State()
				for k := range sf {
					for j := range sf[k].Data {
						if math.Float32bits(sf[k].Data[j]) != math.Float32bits(sp[k].Data[j]) {
							t.Fatalf("%s, %s, step %d: state %s[%d] = %g (Update) vs %g (passes)",
								name, c.what, step, sf[k].Name, j, sf[k].Data[j], sp[k].Data[j])
						}
					}
				}
			}
		}
	}
}

// TestUpdateRefusesZeroPrep: Update with a Prep that Prepare did not make panics (a programming
// error) rather than stepping on zeroed gradients.
func TestUpdateRefusesZeroPrep(t *testing.T) {
	ps := randParams(rand.New(rand.NewPCG(1, 1)))
	for _, name := range []string{"lion", "adamw", "muon"} {
		o := optimCfg(name)
		if name == "muon" {
			o = muonCfg()
		}
		opt, err := New(o, ps)
		if err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "Prepare") {
					t.Errorf("%s: Update(Prep{}) recovered %v, want a panic naming Prepare", name, r)
				}
			}()
			opt.Update(ps, 1e-3, Prep{})
		}()
	}
}

// TestPrepareNonFinite: a NaN or infinite gradient makes Prepare's norm non-finite (the loop
// then declares divergence), with no clip factor, and Prepare writes no gradient.
func TestPrepareNonFinite(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		ps := randParams(rand.New(rand.NewPCG(3, 3)))
		for _, p := range ps {
			for j := range p.G {
				p.G[j] = 1
			}
		}
		ps[3].G[39999] = bad // the last element of a multi-chunk parameter
		o := optimCfg("lion")
		o.LossScale, o.GradClip = 8, 1
		pr := Prepare(ps, o, 1, 2)
		if !math.IsNaN(pr.Norm) && !math.IsInf(pr.Norm, 0) || pr.Clip != 1 || pr.Unscale != 0.125 {
			t.Fatalf("gradient %g: Prepare = %+v, want a non-finite norm, Clip 1, Unscale 1/8", bad, pr)
		}
		if ps[1].G[5] != 1 || ps[3].G[0] != 1 {
			t.Fatalf("gradient %g: Prepare changed the gradients", bad)
		}
	}
}

// TestBeginMatchesUpdate: an Elementwise optimizer's update run through Begin on parts of random
// sizes, in random order (as the model's deferred update runs it), gives bit for bit Update's
// weights, state and zeroed gradients, step after step; Muon is not Elementwise.
func TestBeginMatchesUpdate(t *testing.T) {
	for _, name := range []string{"lion", "adamw"} {
		r := rand.New(rand.NewPCG(5, uint64(len(name))))
		o := optimCfg(name)
		o.LossScale, o.GradClip, o.WeightDecay = 64, 1, 0.1
		whole := randParams(r)
		parts := cloneParams(whole)
		ow, _ := New(o, whole, Threads(2))
		op, _ := New(o, parts, Threads(2))
		ew, ok := op.(Elementwise)
		if !ok {
			t.Fatalf("%s is not Elementwise", name)
		}
		for step := range 3 {
			for i, p := range whole {
				for j := range p.G {
					p.G[j] = float32(64 * r.NormFloat64())
					parts[i].G[j] = p.G[j]
				}
			}
			lr := 1e-2 * float64(step+1)
			ow.Update(whole, lr, Prepare(whole, o, 1, 2))
			apply := ew.Begin(parts, lr, Prepare(parts, o, 1, 2))
			type rng struct{ i, lo, hi int }
			var rs []rng
			for i, p := range parts {
				for lo := 0; lo < len(p.W); {
					hi := min(len(p.W), lo+1+r.IntN(5000))
					rs = append(rs, rng{i, lo, hi})
					lo = hi
				}
			}
			r.Shuffle(len(rs), func(a, b int) { rs[a], rs[b] = rs[b], rs[a] })
			for _, x := range rs {
				apply(x.i, x.lo, x.hi)
			}
			if ow.T() != op.T() {
				t.Fatalf("%s step %d: T = %d (Update) vs %d (Begin)", name, step, ow.T(), op.T())
			}
			for i, p := range whole {
				for j := range p.W {
					if math.Float32bits(p.W[j]) != math.Float32bits(parts[i].W[j]) || parts[i].G[j] != 0 {
						t.Fatalf("%s step %d: %s.W[%d] = %g (Update) vs %g (Begin), G = %g (want 0)",
							name, step, p.Name, j, p.W[j], parts[i].W[j], parts[i].G[j])
					}
				}
			}
			sw, sp := ow.State(), op.State()
			for k := range sw {
				for j := range sw[k].Data {
					if math.Float32bits(sw[k].Data[j]) != math.Float32bits(sp[k].Data[j]) {
						t.Fatalf("%s step %d: state %s[%d] differs", name, step, sw[k].Name, j)
					}
				}
			}
		}
	}
	mo, _ := New(muonCfg(), randParams(rand.New(rand.NewPCG(1, 1))))
	if _, ok := mo.(Elementwise); ok {
		t.Error("Muon claims to be Elementwise: its update of a matrix reads all of it")
	}
}
