package cudab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/model"
)

// TestArchKernelsEmulated runs the architecture options' kernels (kernels.cu: relu2/gelu forward
// and backward, QK-norm's split and its backward), compiled by g++ over the emulation header
// with TestKernelsEmulated's harness, on the trainer's launch geometry: the fp32 outputs against
// float64 references (the activations' formulas; QK-norm's backward against central differences
// of a float64 forward, so the chain rule through RoPE and the norm is checked, not restated),
// every bf16 output exactly its fp32 twin's rounded to nearest even. Needs g++; no GPU.
func TestArchKernelsEmulated(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	var e kemu
	blocks := func(n int) int { return max(1, min((n+255)/256, maxBlocks)) }

	// Activations on bf16-representable h (so the fp32 and bf16 kernels see the same inputs),
	// zero and large values included.
	const nf = 700
	hb := toBF(randF32(r, nf, 2))
	for i, v := range []float32{0, -0.0, 7, -7, 0.5, -0.5, 30, -30} {
		hb[i] = toBF([]float32{v})[0]
	}
	h, dg := fromBF(hb), randF32(r, nf, 1)
	bh, bhb, bdg := e.buf(h), e.buf(hb), e.buf(dg)
	type actRun struct {
		name           string
		gotF, gotDF    []float32
		gotB, gotDB    []uint16
		f, df          func(x float64) float64
		fF, fB, dF, dB ebuf
	}
	var acts []*actRun
	gc, ga := math.Sqrt(2/math.Pi), 0.044715
	for _, a := range []*actRun{
		{name: "relu2", f: func(x float64) float64 { x = max(x, 0); return x * x },
			df: func(x float64) float64 { return 2 * max(x, 0) }},
		{name: "gelu", f: func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(gc*(x+ga*x*x*x))) },
			df: func(x float64) float64 {
				th := math.Tanh(gc * (x + ga*x*x*x))
				return 0.5*(1+th) + 0.5*x*(1-th*th)*gc*(1+3*ga*x*x)
			}},
	} {
		a.fF, a.fB = e.buf(make([]float32, nf)), e.buf(make([]uint16, nf))
		a.dF, a.dB = e.buf(make([]float32, nf)), e.buf(make([]uint16, nf))
		e.launch(a.name+"_fwd", blocks(nf), 256, a.fF, bh, int64(nf))
		e.launch(a.name+"_fwd_bf", blocks(nf), 256, a.fB, bhb, int64(nf))
		e.launch(a.name+"_bwd", blocks(nf), 256, a.dF, bdg, bh, int64(nf))
		e.launch(a.name+"_bwd_bf", blocks(nf), 256, a.dB, bdg, bhb, int64(nf))
		e.read(a.fF, &a.gotF)
		e.read(a.fB, &a.gotB)
		e.read(a.dF, &a.gotDF)
		e.read(a.dB, &a.gotDB)
		acts = append(acts, a)
	}

	// QK-norm on q at columns 0..D of [N, 3D] rows (dQKV's layout), with and without RoPE, on two
	// shapes: 24 heads of 8 in one block of 64 heads' threads (partly filled), and 54 heads of 48
	// in six blocks of 240 threads (the last partly filled).
	const eps = 1e-5
	type qkRun struct {
		B, T, H, HD         int
		rope                bool
		cs, sn, qkv, g, dh  []float32
		out, rinv, dx, dxB  ebuf
		gp, gpB             ebuf
		gotOut, gotR, gotDX []float32
		gotGP, gotGPB       []float32
		gotDXB              []uint16
	}
	var qks []*qkRun
	for _, shape := range [][4]int{{2, 6, 2, 8}, {2, 9, 3, 48}} {
		B, T, H, HD := shape[0], shape[1], shape[2], shape[3]
		N, D, half := B*T, H*HD, HD/2
		cs, sn := make([]float32, T*half), make([]float32, T*half)
		for i := range cs {
			a := r.Float64() * 6
			cs[i], sn[i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
		qkv := randF32(r, N*3*D, 1.5)
		g := randF32(r, HD, 0.3)
		for i := range g {
			g[i] += 1
		}
		dh := randF32(r, N*D, 1)
		bqkv, bg, bdh, bcs, bsn := e.buf(qkv), e.buf(g), e.buf(dh), e.buf(cs), e.buf(sn)
		nh := N * H
		qg, qb := qkGeometry(nh, HD)
		for _, rope := range []bool{true, false} {
			q := &qkRun{B: B, T: T, H: H, HD: HD, rope: rope, cs: cs, sn: sn, qkv: qkv, g: g, dh: dh}
			c, s := bcs, bsn
			if !rope {
				c, s = null, null
			}
			q.out, q.rinv = e.buf(make([]float32, N*D)), e.buf(make([]float32, nh))
			q.dx, q.dxB = e.buf(make([]float32, N*3*D)), e.buf(make([]uint16, N*3*D))
			q.gp, q.gpB = e.buf(make([]float32, nh*HD)), e.buf(make([]float32, nh*HD))
			e.launch("qknorm_split", qg.X, qb.X, q.out, q.rinv, bqkv, bg, N, 3*D, T, H, HD, float32(eps), c, s)
			e.launch("qknorm_merge_bwd", qg.X, qb.X, q.dx, q.gp, bdh, bqkv, q.rinv, bg, N, 3*D, T, H, HD, c, s)
			e.launch("qknorm_merge_bwd_bf", qg.X, qb.X, q.dxB, q.gpB, bdh, bqkv, q.rinv, bg, N, 3*D, T, H, HD, c, s)
			e.read(q.out, &q.gotOut)
			e.read(q.rinv, &q.gotR)
			e.read(q.dx, &q.gotDX)
			e.read(q.dxB, &q.gotDXB)
			e.read(q.gp, &q.gotGP)
			e.read(q.gpB, &q.gotGPB)
			qks = append(qks, q)
		}
	}

	e.run(t)

	for _, a := range acts {
		wantF, wantD := make([]float64, nf), make([]float64, nf)
		for i, x := range h {
			wantF[i] = a.f(float64(x))
			wantD[i] = float64(dg[i]) * a.df(float64(x))
		}
		if err := maxRel(a.gotF, wantF, 1e-2); err > 1e-5 {
			t.Errorf("%s_fwd: relative error %.3g against float64", a.name, err)
		}
		// GELU's ½·(1 + tanh u) cancels in float32 where u ≪ 0 (f' ~ 1e-5 at x ≈ −5), as in the
		// CPU's float32 formula: 5e-7 absolute there.
		tol := 1e-5
		if a.name == "gelu" {
			tol = 1e-4
		}
		if err := maxRel(a.gotDF, wantD, 1e-2); err > tol {
			t.Errorf("%s_bwd: relative error %.3g against float64", a.name, err)
		}
		sameBF(t, a.name+"_fwd_bf", a.gotB, a.gotF)
		sameBF(t, a.name+"_bwd_bf", a.gotDB, a.gotDF)
	}
	if acts[0].gotF[3] != 0 || acts[0].gotDF[3] != 0 || acts[0].gotF[2] != 49 { // relu2 at −7 and 7
		t.Errorf("relu2(−7) = %g, relu2'(−7)·dg = %g, relu2(7) = %g; want 0, 0, 49", acts[0].gotF[3], acts[0].gotDF[3], acts[0].gotF[2])
	}

	for _, q := range qks {
		B, T, H, HD := q.B, q.T, q.H, q.HD
		N, D, half, nh := B*T, H*HD, HD/2, B*T*H
		cs, sn, qkv, g, dh := q.cs, q.sn, q.qkv, q.g, q.dh
		// float64 forward: the head-major output for inputs x (q's columns of qkv) and gains gg.
		fwd := func(x []float64, gg []float64) (out []float64, rinv []float64) {
			out, rinv = make([]float64, N*D), make([]float64, nh)
			for row := range N {
				b, tt := row/T, row%T
				for hh := range H {
					xs := x[row*D+hh*HD : row*D+hh*HD+HD]
					ss := 0.0
					for _, v := range xs {
						ss += v * v
					}
					ri := 1 / math.Sqrt(ss/float64(HD)+eps)
					rinv[row*H+hh] = ri
					dst := out[((b*H+hh)*T+tt)*HD:]
					for i := range half {
						a, bb := gg[2*i]*xs[2*i]*ri, gg[2*i+1]*xs[2*i+1]*ri
						if q.rope {
							c, s := float64(cs[tt*half+i]), float64(sn[tt*half+i])
							a, bb = a*c-bb*s, a*s+bb*c
						}
						dst[2*i], dst[2*i+1] = a, bb
					}
				}
			}
			return out, rinv
		}
		x, gg := make([]float64, N*D), make([]float64, HD)
		for row := range N {
			for j := range D {
				x[row*D+j] = float64(qkv[row*3*D+j])
			}
		}
		for i := range HD {
			gg[i] = float64(g[i])
		}
		want, wantR := fwd(x, gg)
		// Outputs are O(1) (normalised, gains ≈ 1): errors relative to max(|y|, 1), as RoPE's
		// a·c − b·s cancels to small values with the inputs' rounding left in them.
		if err := maxRel(q.gotOut, want, 1); err > 1e-6 {
			t.Errorf("qknorm_split head dim %d rope=%v: error %.3g against float64", HD, q.rope, err)
		}
		t.Logf("head dim %d rope=%v: qknorm_split error %.2g", HD, q.rope, maxRel(q.gotOut, want, 1))
		if err := maxRel(q.gotR, wantR, 1e-3); err > 1e-6 {
			t.Errorf("qknorm_split head dim %d rope=%v: 1/rms relative error %.3g", HD, q.rope, err)
		}
		// L = Σ dh·out; its gradients by central differences.
		loss := func(x, gg []float64) float64 {
			out, _ := fwd(x, gg)
			s := 0.0
			for i, v := range out {
				s += float64(dh[i]) * v
			}
			return s
		}
		const step = 1e-5
		// central is ∂L/∂v at v by central differences (v an entry of x or gg, restored after).
		central := func(v *float64) float64 {
			v0 := *v
			*v = v0 + step
			lp := loss(x, gg)
			*v = v0 - step
			lm := loss(x, gg)
			*v = v0
			return (lp - lm) / (2 * step)
		}
		wantDX := make([]float64, N*3*D)
		for row := range N {
			for j := range D {
				wantDX[row*3*D+j] = central(&x[row*D+j])
			}
		}
		if err := maxRel(q.gotDX, wantDX, 1e-2); err > 1e-4 {
			t.Errorf("qknorm_merge_bwd head dim %d rope=%v: dx relative error %.3g against central differences", HD, q.rope, err)
		}
		for i, v := range q.gotDX {
			if i%(3*D) >= D && v != 0 {
				t.Fatalf("qknorm_merge_bwd rope=%v wrote column %d outside q's D columns", q.rope, i%(3*D))
			}
		}
		gotG, wantG := make([]float32, HD), make([]float64, HD)
		for k := range nh {
			for i := range HD {
				gotG[i] += q.gotGP[k*HD+i]
			}
		}
		for i := range HD {
			wantG[i] = central(&gg[i])
		}
		if err := maxRel(gotG, wantG, 1e-2); err > 1e-4 {
			t.Errorf("qknorm_merge_bwd head dim %d rope=%v: gain gradient (Σ gpart) relative error %.3g against central differences: %v vs %v", HD, q.rope, err, gotG, wantG)
		}
		sameBF(t, fmt.Sprintf("qknorm_merge_bwd_bf rope=%v dx", q.rope), q.gotDXB, q.gotDX)
		for i := range q.gotGP {
			if q.gotGPB[i] != q.gotGP[i] {
				t.Fatalf("qknorm_merge_bwd_bf rope=%v: gpart[%d] = %g, the fp32 kernel's %g", q.rope, i, q.gotGPB[i], q.gotGP[i])
			}
		}
	}
}

// indexParams finds every parameter by role whatever the options' order, the classifier's is
// the untied head when there is one, and the roles a model lacks are −1; host logic, no GPU.
func TestIndexParams(t *testing.T) {
	for _, c := range []struct {
		act           string
		qkNorm, untie bool
	}{{"swiglu", false, false}, {"relu2", true, false}, {"gelu", false, true}, {"gelu", true, true}} {
		cfg := config.Tiny()
		cfg.Model.Act, cfg.Model.QKNorm, cfg.Model.UntiedHead = c.act, c.qkNorm, c.untie
		m, err := model.New(cfg.Model, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		var offs []int
		n := 0
		for _, p := range m.Params() {
			offs = append(offs, n)
			n += len(p.W)
		}
		pi, err := indexParams(m, offs)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		ps := m.Params()
		name := func(i int) string {
			if i < 0 {
				return "-"
			}
			return ps[i].Name
		}
		head := "embed"
		if c.untie {
			head = "head"
		}
		if name(pi.embed) != "embed" || name(pi.finalNorm) != "final_norm" || name(pi.head) != head {
			t.Errorf("%+v: embed %s, final_norm %s, classifier %s", c, name(pi.embed), name(pi.finalNorm), name(pi.head))
		}
		roles := map[int]string{pAttnNorm: "attn_norm", pWq: "wq", pWk: "wk", pWv: "wv", pWo: "wo", pFFNNorm: "ffn_norm",
			pW1: "w1", pW2: "w2", pW3: "w3", pQNorm: "q_norm", pKNorm: "k_norm"}
		for l, r := range pi.layers {
			for role, want := range roles {
				absent := role == pW3 && c.act != "swiglu" || (role == pQNorm || role == pKNorm) && !c.qkNorm
				if absent {
					want = "-"
				} else {
					want = fmt.Sprintf("layers.%d.%s", l, want)
				}
				if got := name(r[role]); got != want {
					t.Errorf("%+v: layer %d role %d is %s, want %s", c, l, role, got, want)
				}
			}
		}
	}
	// The QKV GEMM needs wq, wk, wv contiguous: a layout that breaks it is an error.
	m, _ := model.New(config.Tiny().Model, 1, nil)
	offs := make([]int, len(m.Params()))
	n := 0
	for i, p := range m.Params() {
		offs[i] = n
		n += len(p.W) + 1 // a gap after every parameter
	}
	if _, err := indexParams(m, offs); err == nil || !strings.Contains(err.Error(), "contiguous") {
		t.Errorf("wq, wk, wv apart: %v", err)
	}
}

// The buffer plan with the architecture options: a plain MLP plans no H3 or dh3; QK-norm plans
// per layer the raw projections [N, 3D] (instead of the shared qkv) and 1/rms per (row, head) for
// q and k, fp32 in every mode.
func TestBufferPlanArch(t *testing.T) {
	for _, c := range []struct {
		act    string
		qkNorm bool
	}{{"swiglu", true}, {"relu2", false}, {"gelu", true}} {
		for _, bf := range []bool{false, true} {
			cfg := config.Tiny()
			cfg.Model.Act, cfg.Model.QKNorm = c.act, c.qkNorm
			tr := &Trainer{cfg: cfg, attn: AttentionGEMM, bf: bf}
			var b buffers
			const batch = 2
			names := map[string]bufSpec{}
			for _, s := range tr.bufferPlan(&b, batch) {
				names[s.name] = s
			}
			mc := cfg.Model
			N := batch * mc.Seq
			gated := c.act == "swiglu"
			for _, n := range []string{"layer0.H3", "layer1.H3", "dh3"} {
				if _, ok := names[n]; ok != gated {
					t.Errorf("act %s: %s planned = %v", c.act, n, ok)
				}
			}
			for l := range mc.Layers {
				for _, w := range []struct {
					name string
					n    int
				}{{"QKV", 3 * N * mc.Dim}, {"RQ", N * mc.Heads}, {"RK", N * mc.Heads}} {
					s, ok := names[fmt.Sprintf("layer%d.%s", l, w.name)]
					if ok != c.qkNorm || ok && (s.n != w.n || s.size != sizeF32) {
						t.Errorf("qk_norm %v bf16 %v: layer%d.%s planned %v (%d × %d bytes), want %d fp32", c.qkNorm, bf, l, w.name, ok, s.n, s.size, w.n)
					}
				}
			}
			if _, ok := names["qkv"]; ok == c.qkNorm {
				t.Errorf("qk_norm %v: the shared qkv planned = %v", c.qkNorm, ok)
			}
			if s := names["gpart"]; s.n < N*mc.Heads*mc.HeadDim() {
				t.Errorf("gpart has %d floats, QK-norm's backward needs N·H·HD = %d", s.n, N*mc.Heads*mc.HeadDim())
			}
		}
	}
}

// Every agreement case's config is valid and one the backend takes, checked without a GPU (the
// GPU tests would otherwise fail only on the GPU, where time is scarce).
func TestAgreeCasesValid(t *testing.T) {
	for _, tc := range agreeCases {
		cfg := config.Tiny()
		cfg.Train.Steps = tc.steps
		tc.edit(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if err := Supported(cfg); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if _, err := model.New(cfg.Model, 7, nil); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// Every kernel of kernels.cu has C linkage (inside an extern "C" block), so that NVRTC's module
// has it under the plain name the trainer looks up (the emulated tests, compiled as C++, would
// find a mangled one just as well). No GPU.
func TestKernelsHaveCLinkage(t *testing.T) {
	inC := false
	for i, line := range strings.Split(kernelSrc, "\n") {
		switch {
		case strings.HasPrefix(line, `extern "C" {`):
			inC = true
		case strings.HasPrefix(line, `} // extern "C"`):
			inC = false
		case strings.HasPrefix(line, "__global__") && !inC:
			t.Errorf("kernels.cu:%d: a kernel outside an extern \"C\" block: %s", i+1, line)
		}
	}
}
