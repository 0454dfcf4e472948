package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
)

// tinyCfg is a model small enough for finite differences over its parameters.
func tinyCfg() config.Model {
	return config.Model{Dim: 16, Layers: 2, Heads: 2, FFN: 24, Seq: 6, Vocab: 20,
		Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02}
}

func randTokens(r *rand.Rand, n int, ids []int) []uint16 {
	s := make([]uint16, n)
	for i := range s {
		s[i] = uint16(ids[r.IntN(len(ids))])
	}
	return s
}

func allIDs(v int) []int {
	s := make([]int, v)
	for i := range s {
		s[i] = i
	}
	return s
}

// perturb replaces the init with larger random weights and non-unit gains, so that every
// nonlinearity (soft-cap, softmax, SiLU, the norms' gains) is exercised and gradients are not tiny.
func perturb(m *Model, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 99))
	for _, p := range m.Params() {
		for i := range p.W {
			switch p.Group {
			case tensor.Norm:
				p.W[i] = float32(0.6 + 0.8*r.Float64())
			case tensor.Embed:
				p.W[i] = float32(0.7 * r.NormFloat64())
			default:
				p.W[i] = float32(r.NormFloat64() / math.Sqrt(float64(p.Shape[1])))
			}
		}
	}
}

// TestModelGradient compares the model's gradients (float32) with central differences of the
// independent float64 reference (h = 1e-5, error ≈ 1e-10), for every element of small tensors and
// 30 random elements plus the largest-gradient one of the others. Tolerance per element:
// |g − fd| ≤ 1e-3·max|fd| (over the tensor's checked elements) + 1e-3·|fd|; float32 rounding
// gives ≈ 1e-5, a wrong formula O(1). The loss itself must match the reference to 1e-5.
func TestModelGradient(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*config.Model)
		active []int
	}{
		{"rope+softcap", func(c *config.Model) {}, nil},
		{"nope", func(c *config.Model) { c.Pos = "nope"; c.Softcap = 0 }, nil},
		{"rope+nocap", func(c *config.Model) { c.Softcap = 0 }, nil},
		{"compact+rope+softcap", func(c *config.Model) { c.Compact = true }, []int{0, 2, 3, 7, 8, 11, 15, 19}},
		// The architecture options (arch.go), alone and together.
		{"relu2", func(c *config.Model) { c.Act = "relu2" }, nil},
		{"gelu", func(c *config.Model) { c.Act = "gelu" }, nil},
		{"gqa", func(c *config.Model) { c.Heads, c.KVHeads = 4, 2 }, nil},
		{"mqa+nope", func(c *config.Model) { c.Heads, c.KVHeads, c.Pos = 4, 1, "nope" }, nil},
		{"qknorm", func(c *config.Model) { c.QKNorm = true }, nil},
		{"untied", func(c *config.Model) { c.UntiedHead = true }, nil},
		{"all+compact", func(c *config.Model) {
			c.Heads, c.KVHeads, c.QKNorm, c.UntiedHead, c.Act, c.Compact = 4, 2, true, true, "relu2", true
		}, []int{0, 2, 3, 7, 8, 11, 15, 19}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyCfg()
			tc.edit(&cfg)
			cpu := NewCPU()
			cpu.Block = 4 // two causal blocks, the second partial (T = 6)
			m, err := New(cfg, 1, cpu)
			if err != nil {
				t.Fatal(err)
			}
			ids := allIDs(cfg.Vocab)
			if tc.active != nil {
				if err := m.SetActive(tc.active); err != nil {
					t.Fatal(err)
				}
				ids = tc.active
			}
			perturb(m, 2)
			const batch = 2
			r := rand.New(rand.NewPCG(3, 3))
			in := randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab)) // inputs may be any id
			tg := randTokens(r, batch*cfg.Seq, ids)
			const gradScale = 1.5 // gradients are of gradScale·loss
			loss, err := m.ForwardBackward(in, tg, batch, gradScale)
			if err != nil {
				t.Fatal(err)
			}
			ref := newRef(m)
			if want := ref.loss(in, tg, batch); math.Abs(loss-want) > 1e-5*(1+want) {
				t.Fatalf("loss = %.8f, reference %.8f", loss, want)
			}
			pick := rand.New(rand.NewPCG(4, 4))
			for _, p := range m.Params() {
				w := ref.p[p.Name]
				idx := allIDs(len(w))
				if len(w) > 64 {
					idx = []int{argmaxAbs(p.G)}
					for range 30 {
						idx = append(idx, pick.IntN(len(w)))
					}
				}
				fd := make([]float64, len(idx))
				var scale float64
				for j, i := range idx {
					v := w[i]
					const h = 1e-5
					w[i] = v + h
					lp := ref.loss(in, tg, batch)
					w[i] = v - h
					lm := ref.loss(in, tg, batch)
					w[i] = v
					fd[j] = gradScale * (lp - lm) / (2 * h)
					scale = max(scale, math.Abs(fd[j]))
				}
				for j, i := range idx {
					if d := math.Abs(float64(p.G[i]) - fd[j]); d > 1e-4*scale+1e-4*math.Abs(fd[j]) {
						t.Errorf("%s[%d]: model %.6g, finite difference %.6g (max %.3g)", p.Name, i, p.G[i], fd[j], scale)
					}
				}
				if scale == 0 && !(tc.active != nil && p.Name == "embed") {
					t.Errorf("%s: every checked gradient is 0", p.Name)
				}
			}
		})
	}
}

func argmaxAbs(s []float32) int {
	best := 0
	for i, v := range s {
		if math.Abs(float64(v)) > math.Abs(float64(s[best])) {
			best = i
		}
	}
	return best
}

// TestGradAccumulates: ForwardBackward adds gradScale·∇loss to G.
func TestGradAccumulates(t *testing.T) {
	cfg := tinyCfg()
	m, _ := New(cfg, 1, nil)
	perturb(m, 5)
	r := rand.New(rand.NewPCG(1, 1))
	in, tg := randTokens(r, cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, cfg.Seq, allIDs(cfg.Vocab))
	if _, err := m.ForwardBackward(in, tg, 1, 1); err != nil {
		t.Fatal(err)
	}
	once := slices.Clone(m.gAll)
	m.ZeroGrad()
	for range 2 {
		if _, err := m.ForwardBackward(in, tg, 1, 2); err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range m.gAll {
		if math.Abs(float64(g-4*once[i])) > 1e-5*(1+math.Abs(float64(4*once[i]))) {
			t.Fatalf("G[%d] = %g after two steps at gradScale 2, want 4×%g", i, g, once[i])
		}
	}
}

// TestBatchIndependence: the batch loss is the mean of the sequences' losses (nothing leaks
// between sequences), buffers grow from batch 1 to 3, and Loss equals ForwardBackward's loss.
func TestBatchIndependence(t *testing.T) {
	cfg := tinyCfg()
	m, _ := New(cfg, 1, nil)
	perturb(m, 6)
	r := rand.New(rand.NewPCG(2, 2))
	T := cfg.Seq
	in, tg := randTokens(r, 3*T, allIDs(cfg.Vocab)), randTokens(r, 3*T, allIDs(cfg.Vocab))
	var sum float64
	for b := range 3 {
		l, err := m.Loss(in[b*T:(b+1)*T], tg[b*T:(b+1)*T], 1)
		if err != nil {
			t.Fatal(err)
		}
		sum += l
	}
	all, err := m.Loss(in, tg, 3)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := m.ForwardBackward(in, tg, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(all-sum/3) > 1e-6 || all != fb {
		t.Fatalf("Loss(batch 3) = %.8f, mean of singles %.8f, ForwardBackward %.8f", all, sum/3, fb)
	}
}

// TestInitLoss: at init the logits are near 0, so the loss is ≈ ln(classes).
func TestInitLoss(t *testing.T) {
	for _, compact := range []bool{false, true} {
		cfg := config.Tiny().Model
		cfg.Compact = compact
		m, err := New(cfg, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids := allIDs(cfg.Vocab)
		if compact {
			ids = []int{1, 2, 3, 5, 8, 13, 21, 34, 55}
			if err := m.SetActive(ids); err != nil {
				t.Fatal(err)
			}
		}
		r := rand.New(rand.NewPCG(1, 1))
		in, tg := randTokens(r, 4*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, 4*cfg.Seq, ids)
		loss, err := m.Loss(in, tg, 4)
		if err != nil {
			t.Fatal(err)
		}
		if want := math.Log(float64(len(ids))); math.Abs(loss-want) > 0.05 {
			t.Errorf("compact=%v: loss at init %.4f, want ln(%d) = %.4f ± 0.05", compact, loss, len(ids), want)
		}
	}
}

// TestTrainingReducesLoss: a few Adam steps (written here) on a repeating pattern.
func TestTrainingReducesLoss(t *testing.T) {
	cfg := config.Tiny().Model
	cfg.Vocab = 16
	m, err := New(cfg, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	const batch, period = 2, 5
	T := cfg.Seq
	in, tg := make([]uint16, batch*T), make([]uint16, batch*T)
	for b := range batch {
		for t := range T {
			in[b*T+t] = uint16((t + 3*b) % period)
			tg[b*T+t] = uint16((t + 3*b + 1) % period)
		}
	}
	mom := make([][2][]float32, len(m.Params()))
	for i, p := range m.Params() {
		mom[i] = [2][]float32{make([]float32, len(p.W)), make([]float32, len(p.W))}
	}
	const lr, b1, b2, steps = 1e-2, 0.9, 0.99, 60
	var first, last float64
	for step := 1; step <= steps; step++ {
		m.ZeroGrad()
		loss, err := m.ForwardBackward(in, tg, batch, 1)
		if err != nil {
			t.Fatal(err)
		}
		if step == 1 {
			first = loss
		}
		last = loss
		c1, c2 := 1-math.Pow(b1, float64(step)), 1-math.Pow(b2, float64(step))
		for i, p := range m.Params() {
			mm, vv := mom[i][0], mom[i][1]
			for j, g := range p.G {
				mm[j] = b1*mm[j] + (1-b1)*g
				vv[j] = b2*vv[j] + (1-b2)*g*g
				p.W[j] -= float32(lr * float64(mm[j]) / c1 / (math.Sqrt(float64(vv[j])/c2) + 1e-8))
			}
		}
		m.WeightsChanged()
	}
	if !(last < 0.25*first) {
		t.Fatalf("loss went from %.4f to %.4f in %d Adam steps; want below a quarter", first, last, steps)
	}
}

func TestErrors(t *testing.T) {
	cfg := tinyCfg()
	cfg.Compact = true
	m, err := New(cfg, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	T := cfg.Seq
	ok := make([]uint16, T)
	bad := func(pos int, id uint16) []uint16 { s := make([]uint16, T); s[pos] = id; return s }
	if _, err := m.Loss(ok, ok, 1); err == nil || !strings.Contains(err.Error(), "SetActive") {
		t.Errorf("compact without SetActive: err = %v", err)
	}
	for _, tc := range []struct {
		ids  []int
		want string
	}{{nil, "no active ids"}, {[]int{3, 2}, "sorted"}, {[]int{1, 1}, "sorted"}, {[]int{0, 20}, "outside"}, {[]int{-1}, "outside"}} {
		if err := m.SetActive(tc.ids); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetActive(%v): err = %v, want %q", tc.ids, err, tc.want)
		}
	}
	if err := m.SetActive([]int{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		in, tg  []uint16
		batch   int
		wantErr string
	}{
		{"input id ≥ vocab", bad(3, 20), ok, 1, "input token id 20 at position 3"},
		{"target id ≥ vocab", ok, bad(5, 65535), 1, "target token id 65535 at position 5 is outside"},
		{"target not active", ok, bad(2, 7), 1, "target token id 7 at position 2 is not in the active"},
		{"short inputs", ok[:T-1], ok, 1, "batch 1 × model.seq 6 needs 6"},
		{"batch 0", nil, nil, 0, "batch = 0"},
		{"batch/len mismatch", ok, ok, 2, "needs 12"},
	} {
		_, err1 := m.ForwardBackward(tc.in, tc.tg, tc.batch, 1)
		_, err2 := m.Loss(tc.in, tc.tg, tc.batch)
		for _, err := range []error{err1, err2} {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
		}
	}
	for i, g := range m.gAll {
		if g != 0 {
			t.Fatalf("a failed call changed G[%d] to %g", i, g)
		}
	}
	if _, err := m.Logits(nil); err == nil {
		t.Error("Logits(empty): no error")
	}
	if _, err := m.Logits([]uint16{1, 99}); err == nil || !strings.Contains(err.Error(), "context token id 99 at position 1") {
		t.Errorf("Logits(bad id): err = %v", err)
	}
	m2, _ := New(tinyCfg(), 1, nil)
	if err := m2.SetActive([]int{1}); err == nil || !strings.Contains(err.Error(), "model.compact") {
		t.Errorf("SetActive without compaction: err = %v", err)
	}
	c := tinyCfg()
	c.Dim, c.Pos = 15, "alibi"
	if _, err := New(c, 1, nil); err == nil || !strings.Contains(err.Error(), "model.dim") || !strings.Contains(err.Error(), "model.pos") {
		t.Errorf("New(bad config): err = %v, want every problem listed", err)
	}
}

// TestLogits: last-position logits over the full vocabulary match the reference; inactive ids
// are −Inf; a context longer than Seq uses its last Seq tokens.
func TestLogits(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compact=%v", compact), func(t *testing.T) {
			cfg := tinyCfg()
			cfg.Compact = compact
			m, _ := New(cfg, 1, nil)
			perturb(m, 9)
			active := []int{1, 4, 6, 9, 10}
			if compact {
				if err := m.SetActive(active); err != nil {
					t.Fatal(err)
				}
			}
			ctx := []uint16{3, 1, 4, 1, 5, 9, 2, 6, 5}
			got, err := m.Logits(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ref := newRef(m)
			ref.active = allIDs(cfg.Vocab)
			xf := ref.forward(ctx[len(ctx)-cfg.Seq:])
			want := ref.logits(xf[cfg.Seq-1])
			for id := range cfg.Vocab {
				if compact && !slices.Contains(active, id) {
					if !math.IsInf(float64(got[id]), -1) {
						t.Errorf("inactive id %d: logit %g, want -Inf", id, got[id])
					}
					continue
				}
				if math.Abs(float64(got[id])-want[id]) > 1e-4 {
					t.Errorf("logit[%d] = %g, want %g", id, got[id], want[id])
				}
			}
			short, _ := m.Logits(ctx[:3]) // a context shorter than Seq works too
			if len(short) != cfg.Vocab {
				t.Fatalf("len = %d", len(short))
			}
		})
	}
}

func TestParamsAndInit(t *testing.T) {
	cfg := config.Default().Model
	m, err := New(cfg, 42, nil)
	if err != nil {
		t.Fatal(err)
	}
	D, F, V, L := cfg.Dim, cfg.FFN, cfg.Vocab, cfg.Layers
	if want := V*D + L*(4*D*D+3*D*F+2*D) + D; m.NumParams() != want {
		t.Errorf("NumParams = %d, want %d", m.NumParams(), want)
	}
	ps := m.Params()
	names := []string{ps[0].Name, ps[1].Name, ps[2].Name, ps[9].Name, ps[10].Name, ps[len(ps)-1].Name}
	if want := []string{"embed", "layers.0.attn_norm", "layers.0.wq", "layers.0.w3", "layers.1.attn_norm", "final_norm"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	std := func(w []float32) float64 {
		var s float64
		for _, v := range w {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s / float64(len(w)))
	}
	alpha := 1 / math.Sqrt(2*float64(L))
	for _, p := range ps {
		if p.Size() != len(p.W) || len(p.G) != len(p.W) {
			t.Fatalf("%s: shape %v, %d values, %d grads", p.Name, p.Shape, len(p.W), len(p.G))
		}
		var want float64
		switch {
		case p.Group == tensor.Norm:
			want = 1
		case p.Name == "embed":
			want = cfg.InitStd
		case strings.HasSuffix(p.Name, ".wo"):
			want = alpha / math.Sqrt(float64(D))
		case strings.HasSuffix(p.Name, ".w2"):
			want = alpha / math.Sqrt(float64(F))
		default:
			want = 1 / math.Sqrt(float64(D))
		}
		if got := std(p.W); math.Abs(got-want) > 0.05*want {
			t.Errorf("%s: init rms %.5f, want %.5f", p.Name, got, want)
		}
	}
	m2, _ := New(cfg, 42, nil)
	m3, _ := New(cfg, 43, nil)
	if !slices.Equal(m.wAll, m2.wAll) || slices.Equal(m.wAll, m3.wAll) {
		t.Error("init is not a function of the seed")
	}
}

func TestFLOPsPerToken(t *testing.T) {
	cfg := tinyCfg() // D 16, L 2, F 24, T 6, V 20
	m, _ := New(cfg, 1, nil)
	mat := 2*(4*16*16+3*16*24) + 20*16
	if got, want := m.FLOPsPerToken(), float64(6*mat+6*2*16*7); got != want {
		t.Errorf("FLOPsPerToken = %g, want %g", got, want)
	}
	cfg.Compact = true
	m, _ = New(cfg, 1, nil)
	_ = m.SetActive([]int{1, 2, 3, 4})
	if got, want := m.FLOPsPerToken(), float64(6*(mat-16*16)+6*2*16*7); got != want {
		t.Errorf("compact FLOPsPerToken = %g, want %g", got, want)
	}
}

// recorder is a Backend that delegates to CPU and counts calls: the seam is used as documented.
type recorder struct {
	*CPU
	calls map[string]int
}

func (r *recorder) AttnForward(l int, s Shape, w *Layer, a *LayerActs) error {
	r.calls["af"]++
	return r.CPU.AttnForward(l, s, w, a)
}
func (r *recorder) FFNBackward(l int, s Shape, w *Layer, a *LayerActs) error {
	r.calls["fb"]++
	return r.CPU.FFNBackward(l, s, w, a)
}
func (r *recorder) WeightsChanged() { r.calls["wc"]++ }

func TestBackendSeam(t *testing.T) {
	rec := &recorder{CPU: NewCPU(), calls: map[string]int{}}
	cfg := tinyCfg()
	m, _ := New(cfg, 1, rec)
	in := make([]uint16, cfg.Seq)
	if _, err := m.ForwardBackward(in, in, 1, 1); err != nil {
		t.Fatal(err)
	}
	m.WeightsChanged()
	if rec.calls["af"] != cfg.Layers || rec.calls["fb"] != cfg.Layers || rec.calls["wc"] != 1 {
		t.Errorf("calls %v", rec.calls)
	}
}

// BenchmarkForwardBackward is the default config (dim 256, 6 layers, 4 heads, ffn 768, seq 256,
// vocab 4096) at batch 4 on the CPU backend.
func BenchmarkForwardBackward(b *testing.B) {
	cfg := config.Default()
	m, err := New(cfg.Model, 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	batch := cfg.Train.Batch
	n := batch * cfg.Model.Seq
	r := rand.New(rand.NewPCG(1, 1))
	in, tg := randTokens(r, n, allIDs(cfg.Model.Vocab)), randTokens(r, n, allIDs(cfg.Model.Vocab))
	if _, err := m.ForwardBackward(in, tg, batch, 1); err != nil { // grow buffers, warm up
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.ForwardBackward(in, tg, batch, 1); err != nil {
			b.Fatal(err)
		}
	}
	tps := float64(n) * float64(b.N) / b.Elapsed().Seconds()
	b.StopTimer()
	peak := blas.PeakGFLOPS(1024, 500*time.Millisecond) // right after, under the same conditions
	b.ReportMetric(tps, "tokens/s")
	b.ReportMetric(tps*m.FLOPsPerToken()/1e9, "GFLOP/s")
	b.ReportMetric(100*tps*m.FLOPsPerToken()/1e9/peak, "%peak")
}

// TestStepAllocatesNothing: after the first call grew the buffers, a training step (forward,
// backward, on two goroutines) allocates nothing.
func TestStepAllocatesNothing(t *testing.T) {
	if blas.Backend == "go" {
		t.Skip("the pure-Go BLAS fallback (no cgo) allocates its panels; the step's own code is checked on cgo builds")
	}
	old := blas.Threads()
	blas.SetThreads(2)
	defer blas.SetThreads(old)
	cfg := tinyCfg()
	m, err := New(cfg, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	const batch = 2
	in, tg := randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab))
	if _, err := m.ForwardBackward(in, tg, batch, 1); err != nil {
		t.Fatal(err)
	}
	var tm Timings
	m.SetTimings(&tm)
	if n := testing.AllocsPerRun(5, func() {
		if _, err := m.ForwardBackward(in, tg, batch, 1); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ForwardBackward allocates %g times per call", n)
	}
	if tm.Steps != 6 || tm.Forward <= 0 || tm.Backward <= 0 || tm.WeightGrad <= 0 {
		t.Fatalf("timings %+v after 6 timed steps", tm)
	}
}
