package model

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/config"
)

// TestActivationGrad: each plain activation against its float64 formula, and its backward
// against finite differences (op-level tolerances, see ops_test.go).
func TestActivationGrad(t *testing.T) {
	for _, tc := range []struct {
		act  Act
		name string
		f    func(x float64) float64
	}{
		{ReLU2, "relu2", func(x float64) float64 { return max(x, 0) * max(x, 0) }},
		{GELU, "gelu", func(x float64) float64 {
			return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tc.act)))
			const n = 23
			h, w := rnd(r, n, -3, 3), rnd(r, n, -1, 1)
			for i := range h { // keep away from relu's kink, where the difference quotient straddles it
				if math.Abs(float64(h[i])) < 0.05 {
					h[i] += 0.2
				}
			}
			var j actJob
			g := make([]float32, n)
			f := func() float64 { actForward(newTeam(2), &j, tc.act, g, h, n); return dotw(w, g) }
			f()
			for i := range n {
				if want := tc.f(float64(h[i])); math.Abs(float64(g[i])-want) > 2e-6*(1+math.Abs(want)) {
					t.Fatalf("%s(%g) = %g, want %g", tc.name, h[i], g[i], want)
				}
			}
			dh := make([]float32, n)
			actBackward(newTeam(2), &j, tc.act, dh, w, h, n)
			fdCheck(t, "dh", h, dh, f)
		})
	}
}

// TestKVRepeat: kvRepeat copies KV head ⌊h/G⌋ to query head h, and kvReduce is its adjoint
// (⟨repeat(x), y⟩ = ⟨x, reduce(y)⟩ exactly enough), checked by finite differences too.
func TestKVRepeat(t *testing.T) {
	const n, H, KV, hd = 5, 6, 2, 4
	r := rand.New(rand.NewPCG(8, 8))
	in, w := rnd(r, n*KV*hd, -1, 1), rnd(r, n*H*hd, -1, 1)
	out := make([]float32, n*H*hd)
	var j kvJob
	f := func() float64 { kvRepeat(newTeam(2), &j, out, in, n, H, KV, hd); return dotw(w, out) }
	f()
	for row := range n {
		for h := range H {
			for i := range hd {
				if got, want := out[row*H*hd+h*hd+i], in[row*KV*hd+(h/3)*hd+i]; got != want {
					t.Fatalf("out[%d, head %d, %d] = %g, want KV head %d's %g", row, h, i, got, h/3, want)
				}
			}
		}
	}
	din := make([]float32, len(in))
	kvReduce(newTeam(2), &j, din, w, n, H, KV, hd)
	fdCheck(t, "din", in, din, f)
}

// TestArchConfig: the parameter set each option builds, the zero-init, FLOPs and saved floats.
func TestArchConfig(t *testing.T) {
	cfg := tinyCfg() // D 16, H 2, F 24, V 20
	cfg.Heads, cfg.KVHeads, cfg.QKNorm, cfg.UntiedHead, cfg.Act, cfg.ZeroInit = 4, 2, true, true, "gelu", true
	m, err := New(cfg, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	D, F, V, HD, KVD := 16, 24, 20, 4, 8
	want := map[string][]int{"embed": {V, D}, "layers.0.q_norm": {HD}, "layers.0.k_norm": {HD},
		"layers.0.wk": {KVD, D}, "layers.0.wv": {KVD, D}, "layers.1.w1": {F, D}, "head": {V, D}}
	total := V*D + 2*(D+2*HD+D*D+2*KVD*D+D*D+D+2*F*D) + D + V*D
	if m.NumParams() != total {
		t.Errorf("NumParams = %d, want %d", m.NumParams(), total)
	}
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, ".w3") {
			t.Errorf("a plain MLP has %s", p.Name)
		}
		if s, ok := want[p.Name]; ok {
			if len(s) != len(p.Shape) || s[0] != p.Shape[0] {
				t.Errorf("%s: shape %v, want %v", p.Name, p.Shape, s)
			}
			delete(want, p.Name)
		}
		zero := strings.HasSuffix(p.Name, ".wo") || strings.HasSuffix(p.Name, ".w2") || p.Name == "head"
		var ss float64
		for _, v := range p.W {
			ss += float64(v) * float64(v)
		}
		if zero != (ss == 0) {
			t.Errorf("%s: Σw² = %g with zero_init", p.Name, ss)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing parameters %v", want)
	}
	// Zero-init leaves the other weights exactly as without it (same draws).
	c2 := cfg
	c2.ZeroInit = false
	m2, _ := New(c2, 1, nil)
	if got, want := m.Layers[1].Wq.W[3], m2.Layers[1].Wq.W[3]; got != want {
		t.Errorf("zero_init changed wq: %g vs %g", got, want)
	}
	mat := 2*(2*D*D+2*D*KVD+2*D*F) + V*D
	if got, want := m.FLOPsPerToken(), float64(6*mat+6*2*D*(cfg.Seq+1)); got != want {
		t.Errorf("FLOPsPerToken = %g, want %g", got, want)
	}
	N := 3 * cfg.Seq
	layer := 8*N*D + 2*N*F + 2*N + N*4 + N*D + N*KVD + N*(4+2)
	if got, want := m.SavedFloats(3), 2*layer+2*N*D+N+N*V; got != want {
		t.Errorf("SavedFloats = %d, want %d", got, want)
	}
	c3 := tinyCfg()
	c3.Act, c3.KVHeads = "tanh", 3
	if _, err := New(c3, 1, nil); err == nil || !strings.Contains(err.Error(), "model.act") || !strings.Contains(err.Error(), "model.kv_heads") {
		t.Errorf("bad act and kv_heads: err = %v", err)
	}
}

// TestArchStepAllocatesNothing: with every option on, a step still allocates nothing after the first.
func TestArchStepAllocatesNothing(t *testing.T) {
	if blas.Backend == "go" {
		t.Skip("the pure-Go BLAS fallback allocates its panels")
	}
	old := blas.Threads()
	blas.SetThreads(2)
	defer blas.SetThreads(old)
	cfg := tinyCfg()
	cfg.Heads, cfg.KVHeads, cfg.QKNorm, cfg.UntiedHead, cfg.Act = 4, 2, true, true, "relu2"
	m, err := New(cfg, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	in, tg := randTokens(r, 2*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, 2*cfg.Seq, allIDs(cfg.Vocab))
	if _, err := m.ForwardBackward(in, tg, 2, 1); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(5, func() {
		if _, err := m.ForwardBackward(in, tg, 2, 1); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ForwardBackward allocates %g times per call", n)
	}
}

func TestFFNFromRatio(t *testing.T) {
	m := config.Default().Model
	m.Dim = 288 // the numbers below are for dim 288
	for _, tc := range []struct {
		r    float64
		want int
	}{{4, 1152}, {8.0 / 3, 768}, {1, 288}, {0.01, 32}, {0, 0}, {math.NaN(), 0}, {math.Inf(1), 0}} {
		if got := m.FFNFromRatio(tc.r); got != tc.want {
			t.Errorf("FFNFromRatio(%g) = %d, want %d", tc.r, got, tc.want)
		}
	}
}
