package cudab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/optim"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/num"
)

// muonTestParams is a flat buffer with a wide [8, 12] and a tall [12, 8] matrix (one NS group:
// X is [8, 12] for both) and a vector between them, as the trainer's flat buffers hold them.
func muonTestParams() ([]*tensor.Param, []int, int) {
	ps := []*tensor.Param{
		{Name: "gain", Shape: []int{7}, Group: tensor.Norm},
		{Name: "wide", Shape: []int{8, 12}, Group: tensor.Matrix},
		{Name: "bias", Shape: []int{3}, Group: tensor.Norm},
		{Name: "tall", Shape: []int{12, 8}, Group: tensor.Matrix},
		{Name: "embed", Shape: []int{5, 4}, Group: tensor.Embed},
	}
	var offs []int
	n := 0
	for _, p := range ps {
		offs = append(offs, n)
		n += p.Size()
	}
	return ps, offs, n
}

// TestMuonPlan: the matrices Muon orthogonalises are grouped by their operand's shape [s, l]
// (wide and tall together, the tall one flagged), the embedding and gains left out; a group
// larger than the chunk limit runs as several batches; the scratch sizes fit the largest chunk.
// And the model's own parameters: Tiny's wq/wk/wv/wo (32×32, 2 layers) in one group of 8, w1, w2,
// w3 ([64, 32], [32, 64], [64, 32]) in one of 6 with w1 and w3 tall.
func TestMuonPlan(t *testing.T) {
	ps, offs, _ := muonTestParams()
	chunks, tab, maxX, maxA, maxPart, err := muonPlan(ps, offs, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 1 || chunks[0].s != 8 || chunks[0].l != 12 || len(chunks[0].params) != 2 {
		t.Fatalf("chunks %+v, want one [8, 12] group of 2", chunks)
	}
	want := []int32{int32(offs[1]), 0, int32(offs[3]), 1}
	if len(tab) != len(want) {
		t.Fatalf("table %v, want %v", tab, want)
	}
	for i := range want {
		if tab[i] != want[i] {
			t.Fatalf("table %v, want %v", tab, want)
		}
	}
	if maxX != 192 || maxA != 128 || maxPart != 2 {
		t.Errorf("scratch X %d, A %d, partial sums %d; want 192, 128, 2", maxX, maxA, maxPart)
	}
	// A limit of one matrix: two chunks, the second's table entries after the first's.
	chunks, _, maxX, _, _, err = muonPlan(ps, offs, 96)
	if err != nil || len(chunks) != 2 || chunks[1].tabOff != 2 || !chunks[1].tall[0] || maxX != 96 {
		t.Fatalf("limit 96: chunks %+v, X %d, err %v", chunks, maxX, err)
	}

	m, err := model.New(config.Tiny().Model, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var moffs []int
	n := 0
	for _, p := range m.Params() {
		moffs = append(moffs, n)
		n += p.Size()
	}
	chunks, _, _, _, _, err = muonPlan(m.Params(), moffs, muonChunkFloats)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 2 || len(chunks[0].params) != 8 || chunks[0].s != 32 || chunks[0].l != 32 ||
		len(chunks[1].params) != 6 || chunks[1].s != 32 || chunks[1].l != 64 {
		t.Fatalf("Tiny: chunks %+v", chunks)
	}
	for k, i := range chunks[1].params {
		name := m.Params()[i].Name
		if tall := strings.HasSuffix(name, ".w1") || strings.HasSuffix(name, ".w3"); chunks[1].tall[k] != tall {
			t.Errorf("%s: tall %v", name, chunks[1].tall[k])
		}
	}
}

// TestMuonStateSlots: the device's m and v buffers map onto the host optimizer's State by name:
// Muon has m for every parameter and v only for those it leaves to AdamW (the embedding, the
// gains), AdamW v everywhere, Lion none; a state that lacks a buffer or has the wrong length is
// an error naming it.
func TestMuonStateSlots(t *testing.T) {
	cfg := config.Tiny()
	m, _ := model.New(cfg.Model, 1, nil)
	ps := m.Params()
	for _, c := range []struct {
		name  string
		withV func(p *tensor.Param) bool
	}{
		{"muon", func(p *tensor.Param) bool { return p.Group != tensor.Matrix }},
		{"adamw", func(p *tensor.Param) bool { return true }},
		{"lion", func(p *tensor.Param) bool { return false }},
	} {
		o := cfg.Optim
		o.Name = c.name
		opt, err := optim.New(o, ps)
		if err != nil {
			t.Fatal(err)
		}
		ms, vs, err := optSlots(opt, ps)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		byName := map[string][]float32{}
		for _, s := range opt.State() {
			byName[s.Name] = s.Data
		}
		for i, p := range ps {
			if len(ms[i]) != len(p.W) || &ms[i][0] != &byName[p.Name+".m"][0] {
				t.Errorf("%s: m of %s is not the host state's %s.m", c.name, p.Name, p.Name)
			}
			if (vs[i] != nil) != c.withV(p) {
				t.Errorf("%s: %s has v %v, want %v", c.name, p.Name, vs[i] != nil, c.withV(p))
			}
			if vs[i] != nil && &vs[i][0] != &byName[p.Name+".v"][0] {
				t.Errorf("%s: v of %s is not the host state's %s.v", c.name, p.Name, p.Name)
			}
		}
	}
	// A state of the wrong shape (another model's optimizer) is an error naming the buffer.
	o := cfg.Optim
	o.Name = "muon"
	mc := cfg.Model
	mc.FFN = 96
	other, _ := model.New(mc, 1, nil)
	opt, _ := optim.New(o, other.Params())
	if _, _, err := optSlots(opt, ps); err == nil || !strings.Contains(err.Error(), "layers.0.w1.m") {
		t.Errorf("another model's muon state: %v", err)
	}
}

// The refusal list no longer names muon; sgd is still refused by name.
func TestSupportedMuon(t *testing.T) {
	c := config.Tiny()
	c.Optim.Name = "muon"
	if err := Supported(c); err != nil {
		t.Fatalf("muon refused: %v", err)
	}
	c.Optim.Name = "sgd"
	if err := Supported(c); err == nil || !strings.Contains(err.Error(), "lion, adamw and muon") {
		t.Fatalf("sgd: %v", err)
	}
}

// TestEmulatedMuonKernels runs kernels.cu's Muon kernels under the g++ emulation (as
// TestKernelsEmulated does the others) on muonTestParams' group, with fewer blocks per matrix
// than its elements need (the blocks stride): muon_momentum's momentum against the float64
// formula and its X (transposed for the tall matrix) with muon_scale's normalisation against U/‖U‖
// in float64; muon_update's weights against w·f − step·O in float64, bit-identical with and
// without the bf16 copy, and the copy exactly the masters rounded to nearest-even bf16.
func TestEmulatedMuonKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ps, offs, nw := muonTestParams()
	_, tab, _, _, _, err := muonPlan(ps, offs, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	const s, l, k, nb = 8, 12, 2, 2 // 96 elements, 2 blocks of 32 threads: they stride
	const block = 32
	n := s * l
	g0, m0, w0 := randF32(r, nw, 1), randF32(r, nw, 0.3), randF32(r, nw, 0.1)
	mu := float32(0.95)
	am := 1 - mu
	var e kemu
	x, part, mB := e.buf(make([]float32, k*n)), e.buf(make([]float64, k*nb)), e.buf(m0)
	tabB := e.buf(tab)
	e.launch("muon_momentum", k*nb, block, x, part, mB, e.buf(g0), tabB, nb, s, l, mu, am)
	var gotU []float32
	e.read(x, &gotU)
	e.launch("muon_scale", k*nb, block, x, part, nb, int64(n))
	var gotX, gotM []float32
	var gotPart []float64
	e.read(x, &gotX)
	e.read(mB, &gotM)
	e.read(part, &gotPart)
	// The update from a given X (the Newton–Schulz output).
	o := randF32(r, k*n, 0.3)
	oB := e.buf(o)
	const step, stepTall, f = float32(0.01), float32(0.0129), float32(0.999)
	wPlain, wCopy, wb := e.buf(w0), e.buf(w0), e.buf(make([]uint16, nw))
	e.launch("muon_update", k*nb, block, wPlain, null, oB, tabB, nb, s, l, step, stepTall, f)
	e.launch("muon_update", k*nb, block, wCopy, wb, oB, tabB, nb, s, l, step, stepTall, f)
	var gotW, gotWC []float32
	var gotWB []uint16
	e.read(wPlain, &gotW)
	e.read(wCopy, &gotWC)
	e.read(wb, &gotWB)
	e.run(t)

	for y, pi := range []int{1, 3} {
		p := ps[pi]
		rows, cols := p.Shape[0], p.Shape[1]
		tall := rows > cols
		off := offs[pi]
		wantU := make([]float64, n)
		ss := 0.0
		for i := range rows {
			for j := range cols {
				q := off + i*cols + j
				gk, mk := float64(g0[q]), float64(mu)*float64(m0[q])+float64(am)*float64(g0[q])
				if e := math.Abs(float64(gotM[q]) - mk); e > 1e-6*max(1, math.Abs(mk)) {
					t.Fatalf("%s: m[%d,%d] = %g, want %g", p.Name, i, j, gotM[q], mk)
				}
				u := float64(am)*gk + float64(mu)*mk
				at := i*cols + j
				if tall {
					at = j*rows + i
				}
				wantU[at] = u
				ss += u * u
			}
		}
		// float32 rounding of the products (|U| ~ 0.3) against float64: relative to a floor of 0.1.
		if e := maxRel(gotU[y*n:(y+1)*n], wantU, 0.1); e > 1e-6 {
			t.Errorf("%s: U (before scaling) relative error %.3g", p.Name, e)
		}
		if sum := gotPart[y*nb] + gotPart[y*nb+1]; math.Abs(sum-ss)/ss > 1e-6 {
			t.Errorf("%s: Σ U² = %g, want %g", p.Name, sum, ss)
		}
		wantX := make([]float64, n)
		for i, u := range wantU {
			wantX[i] = u / (math.Sqrt(ss) + 1e-7)
		}
		if e := maxRel(gotX[y*n:(y+1)*n], wantX, 0.03); e > 1e-6 {
			t.Errorf("%s: X = U/‖U‖ relative error %.3g", p.Name, e)
		}
		st := step
		if tall {
			st = stepTall
		}
		wantW := make([]float64, n)
		for i := range rows {
			for j := range cols {
				at := i*cols + j
				if tall {
					at = j*rows + i
				}
				wantW[i*cols+j] = float64(w0[off+i*cols+j])*float64(f) - float64(st)*float64(o[y*n+at])
			}
		}
		if e := maxRel(gotW[off:off+n], wantW, 1e-2); e > 1e-6 {
			t.Errorf("%s: updated weights relative error %.3g", p.Name, e)
		}
	}
	for i := range nw {
		if gotW[i] != gotWC[i] {
			t.Fatalf("muon_update: weight %d is %g with the bf16 copy, %g without", i, gotWC[i], gotW[i])
		}
	}
	// Only the matrices move; the other parameters (AdamW's, in their own kernel) are untouched.
	for _, pi := range []int{0, 2, 4} {
		for q := offs[pi]; q < offs[pi]+ps[pi].Size(); q++ {
			if gotW[q] != w0[q] || gotM[q] != m0[q] {
				t.Fatalf("muon kernels changed %s element %d", ps[pi].Name, q-offs[pi])
			}
		}
	}
	for _, pi := range []int{1, 3} {
		lo, hi := offs[pi], offs[pi]+ps[pi].Size()
		sameBF(t, "muon_update bf16 copy of "+ps[pi].Name, gotWB[lo:hi], gotWC[lo:hi])
	}
}

// uploadGrads copies the host Params' G to the device gradients (the test's way to give both
// sides the same gradients).
func uploadGrads(t *testing.T, tr *Trainer, ps []*tensor.Param) {
	t.Helper()
	err := tr.c.Do(func() error {
		for i, p := range ps {
			if err := cuda.Upload(tr.c, tr.g.Add(tr.offs[i]), p.G); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// muonAgreeCases join the agreement tests' table (TestFP32AgreesWithCPU, TestBF16AgreesWithCPU,
// both attentions; "muon" in every name) and run alone, GEMM attention, in TestMuonAgreesWithCPU.
// Their shapes give every kind of Newton–Schulz group: square (wq/wk/wv/wo), and wide (w2) with tall (w1, w3,
// transposed) in one group; weight decay and a matrix learning-rate scale exercise MuonFactors.
var muonAgreeCases = []agreeCase{
	{"muon", func(c *config.Config) {
		c.Optim.Name = "muon"
		c.Optim.WeightDecay = 0.05
	}, 2, 3},
	{"muon, seq 64, 2 heads, dim 48, clip, matrix lr scale", func(c *config.Config) {
		c.Optim.Name = "muon"
		c.Model.Seq, c.Model.Heads, c.Model.Dim, c.Model.FFN = 64, 2, 48, 96
		c.Optim.GradClip = 0.05
		c.Optim.MatrixLRScale = 0.5
	}, 2, 2},
	{"muon, 3 layers, nope, compact, loss scale", func(c *config.Config) {
		c.Optim.Name = "muon"
		c.Model.Layers, c.Model.Pos, c.Model.Compact = 3, "nope", true
		c.Optim.LossScale = 128
	}, 2, 2},
	// The architecture options change the parameter list: QK-norm's gains and the untied head
	// go to AdamW, relu2 has no W3 (its group: W1 tall, W2 wide).
	{"muon, relu2, qk_norm, untied head", func(c *config.Config) {
		c.Optim.Name = "muon"
		c.Model.Act, c.Model.QKNorm, c.Model.UntiedHead = "relu2", true, true
	}, 2, 2},
}

func init() { agreeCases = append(agreeCases, muonAgreeCases...) }

// TestMuonAgreesWithCPU is the agreement tests' Muon cases alone (GEMM attention), fp32 and
// bf16, for gpucheck.sh's early Muon step.
func TestMuonAgreesWithCPU(t *testing.T) {
	needGPU(t)
	for _, tc := range muonAgreeCases {
		t.Run("fp32/"+tc.name, func(t *testing.T) { agree(t, tc, cuda.FP32, AttentionGEMM, 1e-4, 1e-4) })
		t.Run("bf16/"+tc.name, func(t *testing.T) { agree(t, tc, cuda.BF16, AttentionGEMM, 1e-2, 5e-2) })
	}
}

func snapshotW(ps []*tensor.Param) [][]float32 {
	out := make([][]float32, len(ps))
	for i, p := range ps {
		out[i] = append([]float32(nil), p.W...)
	}
	return out
}

// muonUpdateTol is the relative error allowed in a Muon matrix's update ΔW against the CPU's,
// from the same gradients and state. fp32: the GEMMs' summation order differs from the CPU
// BLAS's (2.5e-6 in O, simulated on these configs' gradients), so 1e-4. bf16 modes: Newton–Schulz's GEMMs round their operands to bf16 (2⁻⁹ relative each, five
// iterations of three GEMMs): simulated on these configs' gradients, O differs from fp32's by
// 1.6–1.9% (relative Frobenius), so 5e-2 as the gradients' bf16 tolerance.
func muonUpdateTol(prec cuda.Precision) float64 {
	if prec == cuda.FP32 {
		return 1e-4
	}
	return 5e-2
}

// checkMuonUpdate compares each parameter's update ΔW = W − w0 with the CPU's (relative error,
// Frobenius): the matrices within muonUpdateTol, the parameters Muon leaves to AdamW (the same
// fp32 kernel in every mode, same gradients) within 1e-4.
func checkMuonUpdate(t *testing.T, step int, w0 [][]float32, want, got []*tensor.Param, prec cuda.Precision) {
	t.Helper()
	worst, worstName := 0.0, ""
	for i, p := range want {
		dw, dg := make([]float32, len(p.W)), make([]float32, len(p.W))
		for j := range p.W {
			dw[j], dg[j] = p.W[j]-w0[i][j], got[i].W[j]-w0[i][j]
		}
		e := num.RelErr(dg, dw)
		tol := 1e-4
		if optim.MuonMatrix(p) {
			tol = muonUpdateTol(prec)
			if e > worst {
				worst, worstName = e, p.Name
			}
		}
		if e > tol || math.IsNaN(e) {
			t.Errorf("step %d: the update of %s: relative error %.3g > %g (%s)", step, p.Name, e, tol, prec)
		}
	}
	t.Logf("step %d: Muon updates, worst matrix relative error %.2g (%s)", step, worst, worstName)
}

// muonCaseConfig is a case's config as agree builds it.
func muonCaseConfig(tc agreeCase) config.Config {
	cfg := config.Tiny()
	cfg.Train.Steps = tc.steps
	tc.edit(&cfg)
	return cfg
}

// The Muon cases' configs are valid and the backend takes them (no GPU needed: a config the
// GPU test cannot build is caught here, not in a device call).
func TestMuonCasesValidate(t *testing.T) {
	for _, tc := range muonAgreeCases {
		cfg := muonCaseConfig(tc)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err := Supported(cfg); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := muonUpdateConfig().Validate(); err != nil {
		t.Errorf("TestMuonUpdateMatchesCPU's config: %v", err)
	}
}

// muonUpdateConfig is TestMuonUpdateMatchesCPU's model: dim 64, FFN 160 (groups [64, 64] of 8
// and [64, 160] of 6, w1/w3 tall), weight decay, a matrix learning-rate scale.
func muonUpdateConfig() config.Config {
	cfg := config.Tiny()
	cfg.Model.Dim, cfg.Model.FFN, cfg.Model.Heads = 64, 160, 4
	cfg.Optim.Name = "muon"
	cfg.Optim.WeightDecay = 0.1
	cfg.Optim.MatrixLRScale = 0.7
	cfg.Train.Steps = 4
	return cfg
}

// TestMuonUpdateMatchesCPU gives the GPU's Muon and the CPU's the same gradients (random, four
// updates on the device's own state, not resynchronised) and compares every parameter's update
// (checkMuonUpdate: fp32 ≤ 1e-4, bf16 within muonUpdateTol) and, through ToHost, every state
// buffer (the momentum and AdamW's m and v, fp32 ≤ 1e-5; they see only gradients) and the update
// count; in bf16 the weights' bf16 copy is the masters rounded. Then the checkpoint path: the
// host model and optimizer, filled by ToHost, go into a fresh trainer (New uploads them, as a
// resumed run does) and one more update on each side agrees.
func TestMuonUpdateMatchesCPU(t *testing.T) {
	needGPU(t)
	for _, prec := range []cuda.Precision{cuda.FP32, cuda.BF16} {
		t.Run(prec.String(), func(t *testing.T) {
			cfg := muonUpdateConfig()
			cpu, _ := model.New(cfg.Model, 3, nil)
			host, _ := model.New(cfg.Model, 3, nil)
			optC, err := optim.New(cfg.Optim, cpu.Params())
			if err != nil {
				t.Fatal(err)
			}
			optH, _ := optim.New(cfg.Optim, host.Params())
			tr, err := New(cfg, host, optH, nil, prec, AttentionGEMM)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(8, 9))
			update := func(tr *Trainer, step int) {
				t.Helper()
				for i, p := range cpu.Params() {
					for j := range p.G {
						p.G[j] = float32(0.01 * r.NormFloat64())
					}
					copy(host.Params()[i].G, p.G)
				}
				uploadGrads(t, tr, cpu.Params())
				lr := optim.LR(cfg.Optim, step) * 10
				w0 := snapshotW(cpu.Params())
				optC.Update(cpu.Params(), lr, optim.AsIs)
				if err := tr.Update(lr); err != nil {
					t.Fatal(err)
				}
				if prec == cuda.BF16 {
					checkBF16Copy(t, tr, fmt.Sprintf("update %d", step))
				}
				if err := tr.ToHost(); err != nil {
					t.Fatal(err)
				}
				// The update against the CPU's, from w0: both sides started each update from
				// their own weights, so measure from the GPU's own start.
				checkMuonUpdate(t, step, w0, cpu.Params(), host.Params(), prec)
				if optH.T() != optC.T() {
					t.Errorf("update %d: update count %d on the GPU, %d on the CPU", step, optH.T(), optC.T())
				}
				want := map[string][]float32{}
				for _, s := range optC.State() {
					want[s.Name] = s.Data
				}
				st := optH.State()
				if len(st) != len(want) {
					t.Fatalf("%d state buffers on the GPU's side, %d on the CPU's", len(st), len(want))
				}
				for _, s := range st {
					if e := num.RelErr(s.Data, want[s.Name]); e > 1e-5 || math.IsNaN(e) {
						t.Errorf("update %d: state %s: relative error %.3g", step, s.Name, e)
					}
				}
				// Both sides go on from the CPU's weights (the comparison stays one update deep).
				for i, p := range cpu.Params() {
					copy(host.Params()[i].W, p.W)
				}
			}
			for step := range 3 {
				update(tr, step)
				if err := tr.FromHost(); err != nil { // the CPU's weights; the device's own state
					t.Fatal(err)
				}
			}
			tr.Close()
			// Resume: a fresh trainer from the host model and optimizer (the state ToHost wrote).
			tr2, err := New(cfg, host, optH, nil, prec, AttentionGEMM)
			if err != nil {
				t.Fatal(err)
			}
			defer tr2.Close()
			update(tr2, 3)
		})
	}
}
