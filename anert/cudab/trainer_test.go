package cudab

import (
	"errors"
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

func needGPU(t *testing.T) {
	t.Helper()
	if err := cuda.Available(); err != nil {
		t.Skipf("needs an NVIDIA GPU with its driver (libcuda.so.1), cuBLAS and NVRTC: %v", err)
	}
}

// Options the backend does not implement are refused by name, and the architecture options it
// runs (relu2, gelu, qk_norm, untied_head, zero_init) are not; runs everywhere.
func TestSupportedNamesWhatIsMissing(t *testing.T) {
	c := config.Tiny()
	if err := Supported(c); err != nil {
		t.Fatalf("the default model is refused: %v", err)
	}
	for _, act := range []string{"relu2", "gelu"} {
		a := config.Tiny()
		a.Model.Act, a.Model.QKNorm, a.Model.UntiedHead, a.Model.ZeroInit = act, true, true, true
		if err := Supported(a); err != nil {
			t.Errorf("act %s with qk_norm, untied_head and zero_init is refused: %v", act, err)
		}
	}
	wide := config.Tiny()
	wide.Model.QKNorm, wide.Model.Dim, wide.Model.Heads = true, 1028, 2 // head dim 514
	if err := Supported(wide); err == nil || !strings.Contains(err.Error(), "model.qk_norm with head dim 514") {
		t.Errorf("qk_norm at head dim 514: %v", err)
	}
	c.Optim.Name = "sgd"
	c.Model.Pos = "alibi"
	c.Model.Act = "swish" // an activation the backend has no kernels for
	c.Model.KVHeads = 2
	c.Model.Dim, c.Model.Heads = 36, 4 // head dim 9
	err := Supported(c)
	for _, want := range []string{`optim.name = "sgd"`, `model.pos = "alibi"`, `model.act = "swish"`, "model.kv_heads = 2", "odd head dim (model.dim/model.heads = 9"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Supported = %v, want %s named", err, want)
		}
	}
}

// Without a GPU, New fails with an error wrapping cuda.ErrNoDriver (or naming the missing library).
func TestNewWithoutGPU(t *testing.T) {
	if cuda.Available() == nil {
		t.Skip("a GPU is present")
	}
	cfg := config.Tiny()
	m, _ := model.New(cfg.Model, 1, nil)
	o, _ := optim.New(cfg.Optim, m.Params())
	_, err := New(cfg, m, o, nil, cuda.FP32, AttentionFlash)
	if err == nil {
		t.Fatal("New succeeded without a GPU")
	}
	if !errors.Is(err, cuda.ErrNoDriver) && !strings.Contains(err.Error(), "cuBLAS") && !strings.Contains(err.Error(), "NVRTC") {
		t.Fatalf("error %v names neither the driver nor a library", err)
	}
}

type agreeCase struct {
	name  string
	edit  func(c *config.Config)
	batch int
	steps int
}

var agreeCases = []agreeCase{
	{"tiny rope softcap lion", func(c *config.Config) {}, 2, 3},
	{"no softcap, batch 3", func(c *config.Config) { c.Model.Softcap = 0 }, 3, 2},
	{"nope", func(c *config.Config) { c.Model.Pos = "nope" }, 2, 2},
	{"compact", func(c *config.Config) { c.Model.Compact = true }, 2, 2},
	{"adamw, 3 layers, loss scale", func(c *config.Config) {
		c.Optim.Name = "adamw"
		c.Model.Layers = 3
		c.Optim.LossScale = 128
		c.Optim.WeightDecay = 0.05
	}, 2, 3},
	{"seq 64, 2 heads, clip", func(c *config.Config) {
		c.Model.Seq, c.Model.Heads, c.Model.Dim, c.Model.FFN = 64, 2, 48, 96
		c.Optim.GradClip = 0.05
	}, 2, 2},
	// Head dims 16/48/64 at sequence lengths that leave partial tiles in every flash kernel
	// (64-row blocks, 32-key and 16-row tiles).
	{"head dim 16, seq 100", func(c *config.Config) {
		c.Model.Seq, c.Model.Heads, c.Model.Dim, c.Model.FFN = 100, 4, 64, 96
	}, 2, 2},
	{"head dim 48, seq 77, nope", func(c *config.Config) {
		c.Model.Seq, c.Model.Heads, c.Model.Dim, c.Model.FFN, c.Model.Pos = 77, 2, 96, 128, "nope"
	}, 3, 2},
	{"head dim 64, seq 130", func(c *config.Config) {
		c.Model.Seq, c.Model.Heads, c.Model.Dim, c.Model.FFN = 130, 2, 128, 128
	}, 2, 2},
	// The architecture options (arch.go), each alone and together; "arch" in every name, so
	// `-test.run 'AgreesWithCPU/.*/arch'` selects them. The head-dim-16 ones run flash's bf16
	// kernels on QK-normed Q and K in bf16 mode.
	{"arch relu2", func(c *config.Config) { c.Model.Act = "relu2" }, 2, 2},
	{"arch gelu", func(c *config.Config) { c.Model.Act = "gelu" }, 2, 2},
	{"arch qknorm", func(c *config.Config) { c.Model.QKNorm = true }, 2, 3},
	{"arch qknorm nope, head dim 16", func(c *config.Config) {
		c.Model.QKNorm, c.Model.Pos = true, "nope"
		c.Model.Seq, c.Model.Heads, c.Model.Dim, c.Model.FFN = 40, 2, 32, 64
	}, 2, 2},
	{"arch untied", func(c *config.Config) { c.Model.UntiedHead = true }, 2, 3},
	{"arch untied compact", func(c *config.Config) { c.Model.UntiedHead, c.Model.Compact = true, true }, 2, 2},
	{"arch gelu qknorm untied adamw, head dim 16", func(c *config.Config) {
		c.Model.Act, c.Model.QKNorm, c.Model.UntiedHead = "gelu", true, true
		c.Model.Seq, c.Model.Heads, c.Model.Dim, c.Model.FFN = 64, 4, 64, 96
		c.Optim.Name, c.Optim.WeightDecay, c.Optim.EmbedLRScale, c.Optim.MatrixLRScale = "adamw", 0.1, 3, 0.5
	}, 2, 3},
	{"arch relu2 qknorm untied compact", func(c *config.Config) {
		c.Model.Act, c.Model.QKNorm, c.Model.UntiedHead, c.Model.Compact = "relu2", true, true, true
		c.Optim.WeightDecay, c.Optim.EmbedLRScale = 0.1, 2
	}, 2, 3},
}

// In fp32 the loss, every gradient, the gradient norm and the optimizer update agree with the CPU
// backend: relative error ≤ 1e-4 for losses and gradients. Each step starts both from the CPU's
// weights and optimizer state (through FromHost, the resume path), so a Lion sign flip on a
// near-zero momentum cannot carry over.
// Every case runs with both attentions (a head dim flash.cu has no kernels for is skipped,
// named); the attention is the first level of the subtest names, so `-test.run AgreesWithCPU/gemm`
// runs the GEMM path alone (a kernel fault can leave the GPU's context unusable for the rest of a
// process: gpucheck.sh runs each attention in its own).
func TestFP32AgreesWithCPU(t *testing.T) {
	needGPU(t)
	for _, a := range []Attention{AttentionGEMM, AttentionFlash} {
		t.Run(string(a), func(t *testing.T) {
			for _, tc := range agreeCases {
				t.Run(tc.name, func(t *testing.T) { agree(t, tc, cuda.FP32, a, 1e-4, 1e-4) })
			}
		})
	}
}

// In bf16 (tensor-core GEMMs on bf16 operands) the loss agrees within 1e-2 and the gradients
// within bf16 tolerance, on every case (bf16 mode has its own kernels for the norms, SwiGLU,
// the head merge, the loss's gradient, compaction's gather and both optimizers); the bf16 weight
// copy is the masters rounded after every update and upload (checkBF16Copy). The earlier mode
// (fp32 tensors rounded on load) on the first case. With flash attention the head-dim cases run
// its bf16 tensor-core kernels (the tiny config's head dim 8 runs its fp32 ones).
func TestBF16AgreesWithCPU(t *testing.T) {
	needGPU(t)
	for _, a := range []Attention{AttentionGEMM, AttentionFlash} {
		t.Run(string(a), func(t *testing.T) {
			for _, tc := range agreeCases {
				t.Run(tc.name, func(t *testing.T) { agree(t, tc, cuda.BF16, a, 1e-2, 5e-2) })
			}
			t.Run("fast16bf", func(t *testing.T) { agree(t, agreeCases[0], cuda.BF16Fast, a, 1e-2, 5e-2) })
		})
	}
}

// checkBF16Copy checks that the device's bf16 weights are its fp32 masters rounded to bf16.
func checkBF16Copy(t *testing.T, tr *Trainer, when string) {
	t.Helper()
	w, wb := make([]float32, tr.nw), make([]uint16, tr.nw)
	err := tr.c.Do(func() error {
		if err := cuda.Download(tr.c, w, tr.w); err != nil {
			return err
		}
		return cuda.Download(tr.c, wb, tr.wb)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range w {
		if want := cuda.ToBF16(v); wb[i] != want {
			t.Fatalf("%s: bf16 weight %d = %#04x, want bf16(%g) = %#04x", when, i, wb[i], v, want)
		}
	}
}

// qkGainTolBF16 is the bf16 agreement tolerance for the QK-norm gains' gradients (q_norm, k_norm)
// in place of the blanket 5e-2. Each is a sum over tokens and heads of dy·x·r whose terms largely
// cancel, so its relative error exceeds the per-element bf16 error: on an H100, "arch qknorm"
// step 2 gave layers.1.k_norm 0.054 (gemm) and 0.055 (flash), and the float64 simulation of the
// bf16 step, rounding only what the GPU rounds (TestBF16QKNormGainErrorSimulated), predicts 0.038
// and 0.049 there and up to 0.052 over 24 seeds (median 0.018). On that step the terms cancel
// 12.8 to 1 (‖Σ|terms|‖/‖Σ terms‖, 4.5 and 6.0 on steps 0 and 1), and perturbing each value by
// 1e-5 (relative, random) before it is rounded, as a different fp32 order or exp would, spreads the
// simulated figure over 0.032–0.058: the H100's 0.054/0.055 lies inside. The other gradients keep
// 5e-2.
const qkGainTolBF16 = 0.1

func isQKGain(name string) bool {
	return strings.HasSuffix(name, ".q_norm") || strings.HasSuffix(name, ".k_norm")
}

func agree(t *testing.T, tc agreeCase, prec cuda.Precision, attn Attention, lossTol, gradTol float64) {
	cfg := config.Tiny()
	cfg.Train.Steps = tc.steps
	tc.edit(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if attn == AttentionFlash {
		if err := flashSupports(cfg.Model.HeadDim()); err != nil {
			t.Skip(err)
		}
	}
	mc := cfg.Model
	cpu, err := model.New(mc, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := model.New(mc, 7, nil)
	r := rand.New(rand.NewPCG(11, 13))
	var active []int
	if mc.Compact {
		for id := range mc.Vocab {
			if id%3 != 1 {
				active = append(active, id)
			}
		}
		if err := cpu.SetActive(active); err != nil {
			t.Fatal(err)
		}
		if err := host.SetActive(active); err != nil {
			t.Fatal(err)
		}
	}
	optC, err := optim.New(cfg.Optim, cpu.Params())
	if err != nil {
		t.Fatal(err)
	}
	optH, _ := optim.New(cfg.Optim, host.Params())
	tr, err := New(cfg, host, optH, active, prec, attn)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Attention() != attn {
		t.Fatalf("asked for %s attention, the trainer runs %s", attn, tr.Attention())
	}
	n := tc.batch * mc.Seq
	in, tgt := make([]uint16, n), make([]uint16, n)
	gs := float32(optim.GradScale(cfg.Optim))
	for step := range tc.steps {
		for i := range in {
			in[i] = uint16(r.IntN(mc.Vocab))
			id := r.IntN(mc.Vocab)
			if active != nil {
				id = active[r.IntN(len(active))]
			}
			tgt[i] = uint16(id)
		}
		lc, err := cpu.ForwardBackward(in, tgt, tc.batch, gs)
		if err != nil {
			t.Fatal(err)
		}
		lg, err := tr.ForwardBackward(in, tgt, tc.batch, gs)
		if err != nil {
			t.Fatal(err)
		}
		if e := math.Abs(lg-lc) / math.Abs(lc); e > lossTol || math.IsNaN(lg) {
			t.Errorf("step %d: loss %.7f on %s, %.7f on CPU: relative error %.2g > %g", step, lg, prec, lc, e, lossTol)
		}
		if err := tr.GradsToHost(); err != nil {
			t.Fatal(err)
		}
		worst, worstName := 0.0, ""
		for i, p := range cpu.Params() {
			e := num.RelErr(host.Params()[i].G, p.G)
			if e > worst {
				worst, worstName = e, p.Name
			}
			tol := gradTol
			if prec != cuda.FP32 && isQKGain(p.Name) {
				tol = qkGainTolBF16
			}
			if e > tol || math.IsNaN(e) {
				t.Errorf("step %d: gradient of %s: relative error %.2g > %g", step, p.Name, e, tol)
			}
		}
		if cfg.Optim.Name == "muon" {
			// Newton–Schulz amplifies the gradients' rounding differences (up to ~30× into the
			// orthogonalised update): compare Muon's update on the same gradients (checkMuonUpdate).
			uploadGrads(t, tr, cpu.Params())
		}
		nc := optim.PrepareGrads(cpu.Params(), cfg.Optim, 1, 0)
		ng, err := tr.PrepareGrads(1)
		if err != nil {
			t.Fatal(err)
		}
		if e := math.Abs(ng-nc) / nc; e > gradTol {
			t.Errorf("step %d: gradient norm %.6g on %s, %.6g on CPU", step, ng, prec, nc)
		}
		t.Logf("%s %s attention step %d: loss %.6f (CPU %.6f, rel %.1e), worst gradient rel err %.1e (%s), grad norm rel %.1e",
			prec, attn, step, lg, lc, math.Abs(lg-lc)/lc, worst, worstName, math.Abs(ng-nc)/nc)
		lr := optim.LR(cfg.Optim, step) * 10 // large enough that the update shows
		w0 := snapshotW(cpu.Params())
		optC.Update(cpu.Params(), lr, optim.AsIs)
		cpu.ZeroGrad()
		if err := tr.Update(lr); err != nil {
			t.Fatal(err)
		}
		if prec == cuda.BF16 {
			checkBF16Copy(t, tr, "after the update")
		}
		if err := tr.ToHost(); err != nil {
			t.Fatal(err)
		}
		if optH.T() != optC.T() {
			t.Errorf("update count %d on the GPU, %d on the CPU", optH.T(), optC.T())
		}
		checkUpdate(t, step, cpu.Params(), host.Params(), prec)
		if cfg.Optim.Name == "muon" {
			checkMuonUpdate(t, step, w0, cpu.Params(), host.Params(), prec)
		}
		// Start the next step from the CPU's state on both sides.
		for i, p := range cpu.Params() {
			copy(host.Params()[i].W, p.W)
		}
		if err := optH.SetState(optC.T(), optC.State()); err != nil {
			t.Fatal(err)
		}
		if err := tr.FromHost(); err != nil {
			t.Fatal(err)
		}
		if prec == cuda.BF16 {
			checkBF16Copy(t, tr, "after FromHost")
		}
	}
	// Evaluation (forward only) agrees with the CPU's.
	lc, err := cpu.Loss(in, tgt, tc.batch)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := tr.Loss(in, tgt, tc.batch)
	if err != nil {
		t.Fatal(err)
	}
	if e := math.Abs(lg-lc) / lc; e > lossTol {
		t.Errorf("evaluation loss %.7f on %s, %.7f on CPU", lg, prec, lc)
	}
	// A bad id is an error naming it.
	in[0] = uint16(mc.Vocab)
	if _, err := tr.ForwardBackward(in, tgt, tc.batch, 1); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("an out-of-vocabulary id gave %v", err)
	}
}

// checkUpdate compares the weights after one optimizer update. AdamW's update is continuous in
// the gradient: relative error ≤ 1e-5 per parameter in fp32. Lion moves each weight by ±lr, and
// where the momentum is ~0 rounding can flip the sign: at most 0.1% of the elements may differ.
func checkUpdate(t *testing.T, step int, want, got []*tensor.Param, prec cuda.Precision) {
	t.Helper()
	if prec != cuda.FP32 {
		return
	}
	var total, off int
	for i, p := range want {
		g := got[i].W
		for j, w := range p.W {
			total++
			if math.Abs(float64(g[j]-w)) > 1e-6+1e-5*math.Abs(float64(w)) {
				off++
			}
		}
	}
	if frac := float64(off) / float64(total); frac > 1e-3 {
		t.Errorf("step %d: %d of %d weights differ after the update (%.3g%%)", step, off, total, 100*frac)
	} else {
		t.Logf("step %d update: %d of %d weights differ by more than 1e-6 + 1e-5·|w|", step, off, total)
	}
}
