// Package cudab trains the model (anert/model) entirely on an NVIDIA GPU: weights, gradients,
// optimizer state and activations live in device memory, and a micro-step takes token ids in and
// gives the loss out. It is the same model and update as the CPU path, op for op (each kernel in
// kernels.cu carries the formula of the Go op it mirrors); the GEMMs go through cuBLAS, in fp32
// (for exact agreement with the CPU backend) or with bf16 tensor-core operands, fp32
// accumulation and fp32 master weights (cuda.BF16).
//
// bf16 mode (cuda.BF16) stores the GEMMs' operands in bf16: the weights are read from a bf16 copy
// that the optimizer kernels refresh in the same pass that updates the fp32 masters (and
// FromHost after an upload), and each activation or gradient that only GEMMs consume is written
// in bf16 by the kernel that produces it (bufferPlan lists them); GEMMs run on bf16 A and B with
// fp32 accumulation, into fp32 where an fp32 consumer reads the result (the residual stream,
// the weight gradients accumulated into the fp32 gradient buffer) and bf16 where only a GEMM or a
// bf16-reading kernel does. Weights, gradients, optimizer state, the residual stream and the
// loss stay fp32. cuda.BF16Fast is the earlier bf16 mode, kept to measure against: every tensor
// fp32, cuBLAS rounding the operands to bf16 as it loads them (COMPUTE_32F_FAST_16BF). In both
// bf16 modes the GEMM attention's batched GEMMs run on fp32 Q/K/V/P as BF16Fast does.
//
// The host model and optimizer stay the source of truth for checkpoints: New uploads their
// weights and optimizer state, and ToHost copies the device's back into them (their Params' W and
// the slices of the optimizer's State), so checkpoints save and restore as on the CPU.
//
// Attention (Attention, chosen by --attention or ANELAB_CUDA_ATTENTION) is either batched GEMMs
// around a fused causal softmax (S = scale·Q·Kᵀ per (sequence, head), P saved per layer for the
// backward pass) or the fused flash-style kernels of flash.cu (only the log-sum-exp per row saved,
// P recomputed in the backward pass); Q, K and V are computed by one GEMM against the contiguous
// [Wq; Wk; Wv] and split into head-major [B·H, T, HD] with RoPE applied in the same pass.
package cudab

import (
	_ "embed"
	"errors"
	"fmt"
	"math"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/optim"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/num"
)

//go:embed kernels.cu
var kernelSrc string

// Supported returns nil if cfg's model and optimizer are ones this backend implements, else an
// error naming every option it does not (so that nothing silently trains something else).
func Supported(cfg config.Config) error {
	var e []string
	m, o := cfg.Model, cfg.Optim
	if m.KV() != m.Heads {
		e = append(e, fmt.Sprintf("model.kv_heads = %d (grouped-query attention)", m.KVHeads))
	}
	if m.Pos != "rope" && m.Pos != "nope" {
		e = append(e, fmt.Sprintf("model.pos = %q", m.Pos))
	}
	if o.Name != "lion" && o.Name != "adamw" && o.Name != "muon" {
		e = append(e, fmt.Sprintf("optim.name = %q (the cuda backend has lion, adamw and muon)", o.Name))
	}
	e = append(e, unsupportedExtra(cfg)...)
	if len(e) > 0 {
		return fmt.Errorf("the cuda backend does not support: %s; use --backend cpu for these", joinList(e))
	}
	return nil
}

func joinList(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// Trainer runs micro-steps, evaluation and optimizer updates of one model on the GPU.
type Trainer struct {
	c    *cuda.Ctx
	k    *kernels
	attn Attention
	fk   *flashKernels // attn == AttentionFlash
	cfg  config.Config
	m    *model.Model
	opt  optim.Optimizer
	ps   []*tensor.Param
	offs []int // offset of each parameter in the flat buffers
	nw   int   // parameter count
	pi   paramIndex

	w, g, om, ov cuda.Ptr // flat weights, gradients, optimizer m and v (AdamW; Muon's non-matrix parameters)
	mu           *muonDev // Muon's plan and scratch (muon.go); nil for Lion and AdamW
	bf           bool     // bf16 mode: bf16 GEMM operands (prec == cuda.BF16)
	wb           cuda.Ptr // bf16 mode: bf16 copy of w, the GEMMs' weights
	t            int      // optimizer updates done
	alpha        float32
	cos, sin     cuda.Ptr // RoPE tables [Seq, HD/2]; 0 for NoPE

	active    []int32 // compact id → full id (nil: no compaction)
	toCompact []int32
	actDev    cuda.Ptr

	buf  buffers
	ids  []int32
	tgt  []int32
	part []float64
	peak float64 // PeakGFLOPS, once measured
	err  error   // first error of the current call (see fail)
}

// New uploads m's weights and opt's state to the GPU and compiles the kernels. active is the
// compaction set (model.SetActive's ids) or nil. prec chooses the GEMM precision, attn the
// attention ("" is DefaultAttention).
func New(cfg config.Config, m *model.Model, opt optim.Optimizer, active []int, prec cuda.Precision, attn Attention) (*Trainer, error) {
	if err := Supported(cfg); err != nil {
		return nil, err
	}
	if attn == "" {
		attn = DefaultAttention
	}
	switch attn {
	case AttentionGEMM:
	case AttentionFlash:
		if err := flashSupports(cfg.Model.HeadDim()); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cudab: attention %q: must be %q or %q", attn, AttentionFlash, AttentionGEMM)
	}
	if opt.Name() != cfg.Optim.Name {
		return nil, fmt.Errorf("cudab: optimizer %s does not match optim.name = %q", opt.Name(), cfg.Optim.Name)
	}
	if cfg.Model.Compact && len(active) == 0 {
		return nil, errors.New("cudab: model.compact is true but no active ids were given")
	}
	if prec != cuda.FP32 && prec != cuda.BF16 && prec != cuda.BF16Fast {
		return nil, fmt.Errorf("cudab: unknown GEMM precision %d", prec)
	}
	c, err := cuda.Open(prec)
	if err != nil {
		return nil, err
	}
	t := &Trainer{c: c, cfg: cfg, m: m, opt: opt, ps: m.Params(), attn: attn, bf: prec == cuda.BF16,
		alpha: float32(1 / math.Sqrt(2*float64(cfg.Model.Layers)))}
	for _, p := range t.ps {
		t.offs = append(t.offs, t.nw)
		t.nw += len(p.W)
	}
	if t.pi, err = indexParams(m, t.offs); err != nil {
		c.Close()
		return nil, err
	}
	if cfg.Model.Compact {
		t.toCompact = make([]int32, cfg.Model.Vocab)
		for i := range t.toCompact {
			t.toCompact[i] = -1
		}
		for c, id := range active {
			t.active = append(t.active, int32(id))
			t.toCompact[id] = int32(c)
		}
	}
	err = c.Do(func() error {
		if t.k, err = compile(c); err != nil {
			return err
		}
		if attn == AttentionFlash {
			if t.fk, err = compileFlash(c, cfg.Model.HeadDim()); err != nil {
				return err
			}
		}
		if t.w, err = c.Alloc(t.nw); err != nil {
			return err
		}
		if t.g, err = c.Alloc(t.nw); err != nil {
			return err
		}
		if t.bf {
			if t.wb, err = c.AllocBF16(t.nw); err != nil {
				return err
			}
		}
		if t.om, err = c.Alloc(t.nw); err != nil {
			return err
		}
		if cfg.Optim.Name == "adamw" || cfg.Optim.Name == "muon" {
			if t.ov, err = c.Alloc(t.nw); err != nil {
				return err
			}
		}
		if cfg.Optim.Name == "muon" {
			if err := t.newMuon(); err != nil {
				return err
			}
		}
		if err := c.Zero(t.g, t.nw); err != nil {
			return err
		}
		if cfg.Model.Pos == "rope" {
			cs, sn := model.RopeTables(cfg.Model.Seq, cfg.Model.HeadDim(), cfg.Model.RopeTheta)
			if t.cos, err = c.Alloc(len(cs)); err != nil {
				return err
			}
			if t.sin, err = c.Alloc(len(sn)); err != nil {
				return err
			}
			cuda.Upload(c, t.cos, cs)
			cuda.Upload(c, t.sin, sn)
		}
		if t.active != nil {
			if t.actDev, err = c.Alloc(len(t.active)); err != nil {
				return err
			}
			if err := cuda.Upload(c, t.actDev, t.active); err != nil {
				return err
			}
		}
		if t.part, err = make([]float64, maxBlocks), nil; err != nil {
			return err
		}
		return t.fromHost()
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return t, nil
}

// Name is "cuda".
func (t *Trainer) Name() string { return "cuda" }

// DeviceName is the GPU's name.
func (t *Trainer) DeviceName() string { return t.c.Name() }

// Attention is the attention this trainer runs.
func (t *Trainer) Attention() Attention { return t.attn }

// Precision is the GEMM precision.
func (t *Trainer) Precision() cuda.Precision { return t.c.Precision() }

// Ctx is the CUDA context (for benchmarks).
func (t *Trainer) Ctx() *cuda.Ctx { return t.c }

// Close frees the device memory.
func (t *Trainer) Close() error { return t.c.Close() }

// optState is the host optimizer's state buffers in the order of the flat device buffers: per
// parameter m, and v where the optimizer keeps one (optSlots, muon.go).
func (t *Trainer) optState() (ms, vs [][]float32, err error) { return optSlots(t.opt, t.ps) }

// fromHost uploads the host weights and optimizer state (and its update count).
func (t *Trainer) fromHost() error {
	ms, vs, err := t.optState()
	if err != nil {
		return err
	}
	for i, p := range t.ps {
		if err := cuda.Upload(t.c, t.w.Add(t.offs[i]), p.W); err != nil {
			return err
		}
		if err := cuda.Upload(t.c, t.om.Add(t.offs[i]), ms[i]); err != nil {
			return err
		}
		if vs[i] != nil {
			if err := cuda.Upload(t.c, t.ov.Add(t.offs[i]), vs[i]); err != nil {
				return err
			}
		}
	}
	t.t = t.opt.T()
	if t.bf {
		t.err = nil
		t.ew(t.k.toBF16, int64(t.nw), t.wb, t.w, int64(t.nw))
		return t.err
	}
	return nil
}

// FromHost uploads the host model's weights and the host optimizer's state, after they changed
// on the host (a checkpoint restored into them).
func (t *Trainer) FromHost() error { return t.c.Do(t.fromHost) }

// ToHost copies the device weights and optimizer state (with its update count) into the host
// model's Params and the host optimizer, for a checkpoint or for sampling.
func (t *Trainer) ToHost() error {
	return t.c.Do(func() error {
		ms, vs, err := t.optState()
		if err != nil {
			return err
		}
		for i, p := range t.ps {
			if err := cuda.Download(t.c, p.W, t.w.Add(t.offs[i])); err != nil {
				return err
			}
			if err := cuda.Download(t.c, ms[i], t.om.Add(t.offs[i])); err != nil {
				return err
			}
			if vs[i] != nil {
				if err := cuda.Download(t.c, vs[i], t.ov.Add(t.offs[i])); err != nil {
					return err
				}
			}
		}
		if err := t.opt.SetState(t.t, t.opt.State()); err != nil {
			return err
		}
		t.m.WeightsChanged()
		return nil
	})
}

// GradsToHost copies the device gradients into the host Params' G (for tests and inspection).
func (t *Trainer) GradsToHost() error {
	return t.c.Do(func() error {
		for i, p := range t.ps {
			if err := cuda.Download(t.c, p.G, t.g.Add(t.offs[i])); err != nil {
				return err
			}
		}
		return nil
	})
}

// ZeroGrad sets every device gradient to 0.
func (t *Trainer) ZeroGrad() error { return t.c.Do(func() error { return t.c.Zero(t.g, t.nw) }) }

// prepare checks a batch as the CPU model does (model.CheckBatch, model.TargetRows) and converts
// ids and targets (as classifier rows) to int32 for the device.
func (t *Trainer) prepare(inputs, targets []uint16, batch int) error {
	if err := model.CheckBatch(inputs, targets, batch, t.cfg.Model.Seq, t.cfg.Model.Vocab); err != nil {
		return fmt.Errorf("cudab: %w", err)
	}
	n := batch * t.cfg.Model.Seq
	if cap(t.ids) < n {
		t.ids, t.tgt = make([]int32, n), make([]int32, n)
	}
	t.ids, t.tgt = t.ids[:n], t.tgt[:n]
	for i, id := range inputs {
		t.ids[i] = int32(id)
	}
	if err := model.TargetRows(t.tgt, targets, t.toCompact, len(t.active)); err != nil {
		return fmt.Errorf("cudab: %w", err)
	}
	if err := t.ensure(batch); err != nil {
		return err
	}
	if err := cuda.Upload(t.c, t.buf.ids, t.ids); err != nil {
		return err
	}
	return cuda.Upload(t.c, t.buf.tgt, t.tgt)
}

// classes is the classifier's rows: the active ids with compaction, else Vocab.
func (t *Trainer) classes() int {
	if t.active != nil {
		return len(t.active)
	}
	return t.cfg.Model.Vocab
}

// ForwardBackward is model.Model.ForwardBackward on the GPU: it returns the mean loss over the
// batch·Seq tokens and ADDS the gradients of gradScale·loss to the device gradients.
func (t *Trainer) ForwardBackward(inputs, targets []uint16, batch int, gradScale float32) (loss float64, err error) {
	err = t.c.Do(func() error {
		if err := t.prepare(inputs, targets, batch); err != nil {
			return err
		}
		t.err = nil
		t.forward(batch)
		n := batch * t.cfg.Model.Seq
		t.head(n, true, gradScale)
		t.backward(batch)
		if t.err != nil {
			return t.err
		}
		loss, err = t.lossSum(n)
		return err
	})
	return loss, err
}

// Loss is the forward pass only (model.Model.Loss on the GPU).
func (t *Trainer) Loss(inputs, targets []uint16, batch int) (loss float64, err error) {
	err = t.c.Do(func() error {
		if err := t.prepare(inputs, targets, batch); err != nil {
			return err
		}
		t.err = nil
		t.forward(batch)
		n := batch * t.cfg.Model.Seq
		t.head(n, false, 0)
		if t.err != nil {
			return t.err
		}
		loss, err = t.lossSum(n)
		return err
	})
	return loss, err
}

// PrepareGrads is optim.PrepareGrads on the device gradients: G ← G·Accum/(micro·S), the global
// norm, clipping. It returns the pre-clip norm (the one value that comes back per update).
func (t *Trainer) PrepareGrads(micro int) (norm float64, err error) {
	o := t.cfg.Optim
	accum := max(o.Accum, 1)
	if micro <= 0 {
		micro = accum
	}
	f := float32(float64(accum) / (float64(micro) * optim.LossScale(o)))
	err = t.c.Do(func() error {
		t.err = nil
		blocks := t.blocks(int64(t.nw))
		t.launch(t.k.scaleSumsq, cuda.Dim3{X: blocks}, cuda.Dim3{X: 256}, t.buf.part, t.g, f, int64(t.nw))
		if t.err != nil {
			return t.err
		}
		if err := t.c.DownloadF64(t.part[:blocks], t.buf.part); err != nil {
			return err
		}
		var ss float64
		for _, v := range t.part[:blocks] {
			ss += v
		}
		norm = math.Sqrt(ss)
		if o.GradClip > 0 && num.Finite(norm) && norm > o.GradClip {
			t.launch(t.k.scaleInplace, t.grid(int64(t.nw)), cuda.Dim3{X: 256}, t.g, float32(o.GradClip/norm), int64(t.nw))
		}
		return t.err
	})
	return norm, err
}

// Update applies one optimizer step with the scheduled learning rate lr (before group scales),
// exactly as optim's Lion, AdamW or Muon would on the host, then zeroes the gradients. Muon's
// non-matrix parameters take the adamw kernel here, its matrices muonStep (muon.go).
func (t *Trainer) Update(lr float64) error {
	o := t.cfg.Optim
	return t.c.Do(func() error {
		t.err = nil
		t.t++
		b1, b2 := float32(o.Beta1), float32(o.Beta2)
		a1, a2 := float32(1-o.Beta1), float32(1-o.Beta2)
		bc1 := 1 - math.Pow(o.Beta1, float64(t.t))
		bc2 := 1 - math.Pow(o.Beta2, float64(t.t))
		for i, p := range t.ps {
			scale, wd := optim.GroupHyper(o, p.Group)
			plr := lr * scale
			n := int64(len(p.W))
			w, g, m := t.w.Add(t.offs[i]), t.g.Add(t.offs[i]), t.om.Add(t.offs[i])
			wb := cuda.Ptr(0) // fp32 modes: no bf16 copy
			if t.bf {
				wb = t.wb.AddBF16(t.offs[i])
			}
			switch o.Name {
			case "lion":
				t.launch(t.k.lion, t.grid(n), cuda.Dim3{X: 256}, w, wb, g, m, n, float32(plr), float32(1-plr*wd), b1, a1, b2, a2)
			case "adamw", "muon":
				if o.Name == "muon" && optim.MuonMatrix(p) {
					continue // muonStep below
				}
				t.launch(t.k.adamw, t.grid(n), cuda.Dim3{X: 256}, w, wb, g, m, t.ov.Add(t.offs[i]), n,
					float32(plr/bc1), float32(1/bc2), float32(1-plr*wd), b1, a1, b2, a2, float32(o.Eps))
			}
		}
		if o.Name == "muon" {
			t.muonStep(lr)
		}
		if t.err != nil {
			return t.err
		}
		return t.c.Zero(t.g, t.nw)
	})
}

// lossSum is the mean of the per-row losses of the last head call, summed in float64.
func (t *Trainer) lossSum(n int) (float64, error) {
	blocks := t.blocks(int64(n))
	t.launch(t.k.sumD, cuda.Dim3{X: blocks}, cuda.Dim3{X: 256}, t.buf.part, t.buf.lossRow, int64(n))
	if t.err != nil {
		return 0, t.err
	}
	if err := t.c.DownloadF64(t.part[:blocks], t.buf.part); err != nil {
		return 0, err
	}
	var s float64
	for _, v := range t.part[:blocks] {
		s += v
	}
	return s / float64(n), nil
}

// Sync waits for the GPU's queued work.
func (t *Trainer) Sync() error { return t.c.Do(t.c.Sync) }
