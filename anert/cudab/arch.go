package cudab

import (
	"fmt"

	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/tensor"
)

// The architecture options of anert/model (arch.go there) on the GPU, each as the CPU runs it:
//   - model.act relu2 | gelu: a plain MLP, gate = f(x2n·W1ᵀ), y = gate·W2ᵀ (no W3, H3, dh3),
//     with f and f' in kernels.cu (act_fwd_t, act_bwd_t; GELU the tanh approximation);
//   - model.qk_norm: RMSNorm over each head's HD values of q and of k with gains [HD] shared by
//     the heads, before RoPE: one kernel normalises, rotates and splits into head-major Q/K
//     (qknorm_split, so both attentions read normalised Q and K), one takes the attention's dQ/dK
//     back through RoPE and the norm into dQKV (qknorm_merge_bwd); the raw projections (the
//     per-layer QKV buffer) and 1/rms per (row, head) are saved for it. The gains are group Norm
//     parameters like the other gains (the optimizer's group rules apply as on the CPU);
//   - model.untied_head: the classifier reads its own [Vocab, D] parameter instead of the
//     embedding (group Embed, as model.New makes it), whose gradient the classifier's backward
//     fills; the embedding's comes from the embedding's backward alone.
// Parameters are found by role (paramIndex), since the options change model.Params' order.

// archKernels are kernels.cu's kernels for the architecture options.
type archKernels struct {
	relu2Fwd, relu2FwdBF, relu2Bwd, relu2BwdBF, geluFwd, geluFwdBF, geluBwd, geluBwdBF *cuda.Func
	qkSplit, qkMergeBwd, qkMergeBwdBF                                                  *cuda.Func
}

func (a *archKernels) load(m *cuda.Module) error {
	return lookup(m, []kernelRef{
		{&a.relu2Fwd, "relu2_fwd"}, {&a.relu2FwdBF, "relu2_fwd_bf"}, {&a.relu2Bwd, "relu2_bwd"}, {&a.relu2BwdBF, "relu2_bwd_bf"},
		{&a.geluFwd, "gelu_fwd"}, {&a.geluFwdBF, "gelu_fwd_bf"}, {&a.geluBwd, "gelu_bwd"}, {&a.geluBwdBF, "gelu_bwd_bf"},
		{&a.qkSplit, "qknorm_split"}, {&a.qkMergeBwd, "qknorm_merge_bwd"}, {&a.qkMergeBwdBF, "qknorm_merge_bwd_bf"},
	})
}

// paramIndex is the index in model.Params of each parameter by role.
type paramIndex struct {
	embed, finalNorm int
	head             int           // the classifier's parameter: the untied head, or embed
	layers           [][nRoles]int // per layer, by role (pAttnNorm …); −1 where the model has none
}

// indexParams finds m's parameters by role and checks that each layer's Wq, Wk, Wv are
// contiguous in the flat buffers (the forward pass's one GEMM against [Wq; Wk; Wv] and the
// backward's one weight gradient for the three rely on it).
func indexParams(m *model.Model, offs []int) (paramIndex, error) {
	at := map[*tensor.Param]int{}
	for i, p := range m.Params() {
		at[p] = i
	}
	idx := func(p *tensor.Param) int {
		if p == nil {
			return -1
		}
		i, ok := at[p]
		if !ok {
			return -2
		}
		return i
	}
	pi := paramIndex{embed: idx(m.Embed), finalNorm: idx(m.FinalNorm), head: idx(m.Embed)}
	if m.Head != nil {
		pi.head = idx(m.Head)
	}
	for l := range m.Layers {
		y := &m.Layers[l]
		var r [nRoles]int
		r[pAttnNorm], r[pWq], r[pWk], r[pWv], r[pWo] = idx(y.AttnNorm), idx(y.Wq), idx(y.Wk), idx(y.Wv), idx(y.Wo)
		r[pFFNNorm], r[pW1], r[pW2], r[pW3] = idx(y.FFNNorm), idx(y.W1), idx(y.W2), idx(y.W3)
		r[pQNorm], r[pKNorm] = idx(y.QNorm), idx(y.KNorm)
		for role, i := range r {
			if i == -2 {
				return pi, fmt.Errorf("cudab: layer %d's parameter (role %d) is not among the model's Params", l, role)
			}
		}
		q, k, v := r[pWq], r[pWk], r[pWv]
		nq, nk := len(m.Params()[q].W), len(m.Params()[k].W)
		if q < 0 || k < 0 || v < 0 || offs[k] != offs[q]+nq || offs[v] != offs[k]+nk {
			return pi, fmt.Errorf("cudab: layer %d's wq, wk, wv are not contiguous in the parameter order", l)
		}
		pi.layers = append(pi.layers, r)
	}
	if pi.embed < 0 || pi.finalNorm < 0 || pi.head < 0 {
		return pi, fmt.Errorf("cudab: the model's embed, final_norm or head is not among its Params")
	}
	return pi, nil
}

// gated is whether the MLP is SwiGLU's (W1, W3, W2) rather than a plain one (W1, W2).
func (t *Trainer) gated() bool { return t.cfg.Model.Activation() == "swiglu" }

// qkNorm is whether q and k are RMS-normalised per head (model.qk_norm).
func (t *Trainer) qkNorm() bool { return t.cfg.Model.QKNorm }

// actKernels are the plain MLP activation's forward and backward for the mode (bf16 H1, gate
// and dh1 in bf16 mode).
func (t *Trainer) actKernels() (fwd, bwd *cuda.Func) {
	a := &t.k.arch
	if t.cfg.Model.Activation() == "gelu" {
		return t.pick(a.geluFwd, a.geluFwdBF), t.pick(a.geluBwd, a.geluBwdBF)
	}
	return t.pick(a.relu2Fwd, a.relu2FwdBF), t.pick(a.relu2Bwd, a.relu2BwdBF)
}

// ffnForward is layer l's MLP from X2n to buf.y:
//
//	SwiGLU: gate = silu(x2n·W1ᵀ) ⊙ (x2n·W3ᵀ);  plain: gate = f(x2n·W1ᵀ);  y = gate·W2ᵀ.
func (t *Trainer) ffnForward(l int, a *layerBufs, N, D, F int) {
	k := t.k
	t.mm(false, true, N, F, D, t.act(a.X2n, D), t.lwop(l, pW1, D), 0, t.act(a.H1, F))
	if t.gated() {
		t.mm(false, true, N, F, D, t.act(a.X2n, D), t.lwop(l, pW3, D), 0, t.act(a.H3, F))
		t.ew(t.pick(k.swigluFwd, k.swigluFwdBF), int64(N*F), a.Gate, a.H1, a.H3, int64(N*F))
	} else {
		fwd, _ := t.actKernels()
		t.ew(fwd, int64(N*F), a.Gate, a.H1, int64(N*F))
	}
	t.mm(false, true, N, D, F, t.act(a.Gate, F), t.lwop(l, pW2, F), 0, cuda.F32(t.buf.y, D))
}

// ffnBackward is ffnForward's backward from buf.dy (the branch's output gradient) to
// buf.dx2n = dh1·W1 (+ dh3·W3), adding the weight gradients dW2 += dyᵀ·gate, dW1 += dh1ᵀ·x2n
// (dW3 += dh3ᵀ·x2n).
func (t *Trainer) ffnBackward(l int, a *layerBufs, N, D, F int) {
	b, k := &t.buf, t.k
	_, gw1 := t.lp(l, pW1)
	_, gw2 := t.lp(l, pW2)
	t.mm(false, false, N, F, D, t.act(b.dy, D), t.lwop(l, pW2, F), 0, cuda.F32(b.dgate, F))
	t.mm(true, false, D, F, N, t.act(b.dy, D), t.act(a.Gate, F), 1, cuda.F32(gw2, F))
	if t.gated() {
		_, gw3 := t.lp(l, pW3)
		t.ew(t.pick(k.swigluBwd, k.swigluBwdBF), int64(N*F), b.dh1, b.dh3, b.dgate, a.H1, a.H3, int64(N*F))
		t.mm(false, false, N, D, F, t.act(b.dh1, F), t.lwop(l, pW1, D), 0, cuda.F32(b.dx2n, D))
		t.mm(false, false, N, D, F, t.act(b.dh3, F), t.lwop(l, pW3, D), 1, cuda.F32(b.dx2n, D))
		t.mm(true, false, F, D, N, t.act(b.dh1, F), t.act(a.X2n, D), 1, cuda.F32(gw1, D))
		t.mm(true, false, F, D, N, t.act(b.dh3, F), t.act(a.X2n, D), 1, cuda.F32(gw3, D))
		return
	}
	_, bwd := t.actKernels()
	t.ew(bwd, int64(N*F), b.dh1, b.dgate, a.H1, int64(N*F))
	t.mm(false, false, N, D, F, t.act(b.dh1, F), t.lwop(l, pW1, D), 0, cuda.F32(b.dx2n, D))
	t.mm(true, false, F, D, N, t.act(b.dh1, F), t.act(a.X2n, D), 1, cuda.F32(gw1, D))
}

// splitQK splits q and k of the projections qkv [N, 3D] into head-major a.Qh, a.Kh with RoPE
// (when the model has it), QK-norm first when the model has that (1/rms per (row, head) into
// a.RQ, a.RK).
func (t *Trainer) splitQK(l int, a *layerBufs, qkv cuda.Ptr, N int) {
	mc := t.cfg.Model
	T, D, H := mc.Seq, mc.Dim, mc.Heads
	HD := D / H
	if !t.qkNorm() {
		pairs := int64(N * D / 2)
		t.ew(t.k.split, pairs, a.Qh, qkv, N, 3*D, T, H, HD, t.cos, t.sin, float32(1))
		t.ew(t.k.split, pairs, a.Kh, qkv.Add(D), N, 3*D, T, H, HD, t.cos, t.sin, float32(1))
		return
	}
	eps := float32(mc.NormEps)
	gq, _ := t.lp(l, pQNorm)
	gk, _ := t.lp(l, pKNorm)
	grid, block := qkGeometry(N*H, HD)
	t.launch(t.k.arch.qkSplit, grid, block, a.Qh, a.RQ, qkv, gq, N, 3*D, T, H, HD, eps, t.cos, t.sin)
	t.launch(t.k.arch.qkSplit, grid, block, a.Kh, a.RK, qkv.Add(D), gk, N, 3*D, T, H, HD, eps, t.cos, t.sin)
}

// qkGeometry is the launch of the QK-norm kernels over heads = N·H heads of hd values (kernels.cu,
// "QK-norm's launch geometry"): one thread per pair of a head, ⌊256/(hd/2)⌋ whole heads per block.
func qkGeometry(heads, hd int) (grid, block cuda.Dim3) {
	half := hd / 2
	per := 256 / half
	return cuda.Dim3{X: (heads + per - 1) / per}, cuda.Dim3{X: per * half}
}

// mergeDQK is splitQK's backward: the attention's head-major dQ, dK (buf.dqh, buf.dkh) back
// through RoPE (and QK-norm, adding the gains' gradients) into dQKV's first 2·D columns (bf16
// in bf16 mode).
func (t *Trainer) mergeDQK(l int, a *layerBufs, N int) {
	mc := t.cfg.Model
	T, D, H := mc.Seq, mc.Dim, mc.Heads
	HD := D / H
	b, k := &t.buf, t.k
	at := cuda.Ptr.Add // dQKV's element offsets
	if t.bf {
		at = cuda.Ptr.AddBF16
	}
	if !t.qkNorm() {
		pairs := int64(N * D / 2)
		merge := t.pick(k.merge, k.mergeBF)
		t.ew(merge, pairs, b.dqkv, b.dqh, N, 3*D, T, H, HD, t.cos, t.sin, float32(-1))
		t.ew(merge, pairs, at(b.dqkv, D), b.dkh, N, 3*D, T, H, HD, t.cos, t.sin, float32(-1))
		return
	}
	bwd := t.pick(k.arch.qkMergeBwd, k.arch.qkMergeBwdBF)
	gqW, gqG := t.lp(l, pQNorm)
	gkW, gkG := t.lp(l, pKNorm)
	grid, block := qkGeometry(N*H, HD)
	t.launch(bwd, grid, block, b.dqkv, b.gpart, b.dqh, a.QKV, a.RQ, gqW, N, 3*D, T, H, HD, t.cos, t.sin)
	t.colSumAdd(gqG, b.gpart, N*H, HD)
	t.launch(bwd, grid, block, at(b.dqkv, D), b.gpart, b.dkh, a.QKV.Add(D), a.RK, gkW, N, 3*D, T, H, HD, t.cos, t.sin)
	t.colSumAdd(gkG, b.gpart, N*H, HD)
}
