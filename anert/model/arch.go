package model

import (
	"fmt"

	"github.com/anelab/anelab/anert/config"
)

// The architecture options an experiment can turn (config.Model: act, kv_heads, qk_norm,
// untied_head, zero_init), each op's forward and backward side by side. The CPU backend runs all
// of them; the ANE kernels (anert/aneb) only the default model, and refuse the others by name.

// Act is an MLP activation. Its zero value is SwiGLU, the default.
type Act uint8

const (
	SwiGLU Act = iota // gated: Gate = silu(H1)⊙H3 (swiglu.go), matrices W1, W3, W2
	ReLU2             // Gate = relu(H1)², matrices W1, W2 (Primer; modded-nanogpt's MLP)
	GELU              // Gate = gelu(H1) (tanh approximation, GPT-2), matrices W1, W2
)

// ActOf maps config.Model.Activation() to an Act.
func ActOf(m config.Model) (Act, error) {
	switch m.Activation() {
	case "swiglu":
		return SwiGLU, nil
	case "relu2":
		return ReLU2, nil
	case "gelu":
		return GELU, nil
	}
	return 0, fmt.Errorf("model: model.act = %q: must be one of %v", m.Act, config.Activations)
}

// KVHeads is s.KV, or H when it is 0 (multi-head attention).
func (s Shape) KVHeads() int {
	if s.KV <= 0 {
		return s.H
	}
	return s.KV
}

// KVD is the width of the key and value projections, KVHeads·HD.
func (s Shape) KVD() int { return s.KVHeads() * s.HD }

// actForward is a plain (non-gated) MLP activation over n elements, gate = f(h):
//
//	relu2: f(x) = max(x, 0)²
//	gelu:  f(x) = ½·x·(1 + tanh u),   u = √(2/π)·(x + 0.044715·x³)
//
// What runs: actJob.Run (Go) on ranges; in a training step on each block of H1 as W1's loop
// computes it (actPost, CPU.FFNForward), here as a loop of its own (the op's gradient test).
func actForward(t *team, j *actJob, act Act, gate, h []float32, n int) {
	*j = actJob{act: act, out: gate[:n], h: h[:n]}
	t.run(n, t.chunks(n, 4096), j)
}

// actBackward is its backward, dh = dgate·f'(h) (overwritten), f' recomputed from h:
//
//	relu2: f'(x) = 2·max(x, 0)
//	gelu:  f'(x) = ½·(1 + tanh u) + ½·x·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·x²)
//
// What runs: actJob.Run; in a training step on each block of DGate (actPost, CPU.FFNBackward).
func actBackward(t *team, j *actJob, act Act, dh, dgate, h []float32, n int) {
	*j = actJob{act: act, bwd: true, out: dh[:n], h: h[:n], dg: dgate[:n]}
	t.run(n, t.chunks(n, 4096), j)
}

// actPost makes j (an actForward or actBackward job over whole [n, ld] matrices) the post op of
// a GEMM loop over blocks of them (as swigluPost): the activation on each block of H1 as W1's
// loop computes it, its backward on each block of DGate = DY·W2.
func (c *CPU) actPost(j actJob, ld int) tileOp {
	c.act = j
	c.actTile = rangeTile{&c.act, ld}
	return &c.actTile
}

// actJob is one actForward (out = gate) or actBackward (out = dh) call.
type actJob struct {
	act        Act
	bwd        bool
	out, h, dg []float32
}

func (j *actJob) Run(_, _, lo, hi int) {
	out, h := j.out[lo:hi], j.h[lo:hi]
	switch {
	case j.act == ReLU2 && !j.bwd:
		for i, x := range h {
			x = max(x, 0)
			out[i] = x * x
		}
	case j.act == ReLU2:
		dg := j.dg[lo:hi]
		for i, x := range h {
			out[i] = dg[i] * 2 * max(x, 0)
		}
	case j.act == GELU && !j.bwd:
		for i, x := range h {
			out[i] = 0.5 * x * (1 + tanhf(geluC*(x+geluA*x*x*x)))
		}
	case j.act == GELU:
		dg := j.dg[lo:hi]
		for i, x := range h {
			th := tanhf(geluC * (x + geluA*x*x*x))
			out[i] = dg[i] * (0.5*(1+th) + 0.5*x*(1-th*th)*geluC*(1+3*geluA*x*x))
		}
	default:
		panic(fmt.Sprintf("model: actJob: activation %d is not a plain MLP activation", j.act))
	}
}

// The constants of the tanh-approximated GELU: √(2/π) and the cubic coefficient.
const (
	geluC = 0.7978845608028654
	geluA = 0.044715
)

// kvRepeat is grouped-query attention's sharing of key/value heads: with G = H/KV query heads per
// KV head, query head h reads KV head ⌊h/G⌋. Over n rows of in [n, KV·hd] it writes out [n, H·hd]:
//
//	out[r, h·hd + i] = in[r, ⌊h/G⌋·hd + i]
//
// so the attention runs unchanged on out (copies cost O(n·H·hd), nothing next to attention itself).
func kvRepeat(t *team, j *kvJob, out, in []float32, n, H, KV, hd int) {
	*j = kvJob{out: out, in: in, H: H, KV: KV, hd: hd}
	t.run(n, t.chunks(n, 64), j)
}

// kvReduce is kvRepeat's backward: each KV head's gradient is the sum over its G query heads,
//
//	din[r, g·hd + i] = Σ_{j<G} dout[r, (g·G + j)·hd + i]     (overwritten).
func kvReduce(t *team, j *kvJob, din, dout []float32, n, H, KV, hd int) {
	*j = kvJob{bwd: true, out: dout, in: din, H: H, KV: KV, hd: hd}
	t.run(n, t.chunks(n, 64), j)
}

// kvJob is one kvRepeat (in → out) or kvReduce (out → in) call over rows.
type kvJob struct {
	bwd       bool
	out, in   []float32 // [n, H·hd], [n, KV·hd]
	H, KV, hd int
}

func (j *kvJob) Run(_, _, lo, hi int) {
	hd, G := j.hd, j.H/j.KV
	wo, wi := j.H*hd, j.KV*hd
	for r := lo; r < hi; r++ {
		o, in := j.out[r*wo:(r+1)*wo], j.in[r*wi:(r+1)*wi]
		if !j.bwd {
			for h := range j.H {
				copy(o[h*hd:(h+1)*hd], in[(h/G)*hd:(h/G+1)*hd])
			}
			continue
		}
		for g := range j.KV {
			d := in[g*hd : (g+1)*hd]
			copy(d, o[g*G*hd:(g*G+1)*hd])
			for k := 1; k < G; k++ {
				for i, v := range o[(g*G+k)*hd : (g*G+k+1)*hd] {
					d[i] += v
				}
			}
		}
	}
}

// QK-norm (Dehghani et al. 2023; OLMo 2; modded-nanogpt) is RMSNorm over each head's hd values of
// q and of k, with a learned gain [hd] shared by the heads, applied to the projections before RoPE:
// it bounds the attention logits, which lets the learning rate rise without logit blow-up. A row
// [n, H·hd] is [n·H, hd] for rmsnorm.go's ops, so the forward is rmsnormForward over n·H rows of
// width hd and the backward is rmsnormBackward (dx and dg formulas in rmsnorm.go).

// qkvForward is the attention block's input stage on the CPU: the projections and, per option,
// QK-norm, RoPE and the KV-head repeat, leaving in a.Q, a.K, a.V what the attention reads
// (without QK-norm, RoPE runs on each block of q and k in the projections' loop: ropeTile):
//
//	q = Xn·Wqᵀ, k = Xn·Wkᵀ, v = Xn·Wvᵀ  (k, v at KV·hd columns);
//	q, k ← RMSNorm_head(q, g_q), RMSNorm_head(k, g_k)   (QK-norm; raw q, k and 1/rms saved);
//	q, k ← RoPE(q), RoPE(k);   k, v ← kvRepeat(k), kvRepeat(v)   (GQA).
func (c *CPU) qkvForward(t *team, s Shape, w *Layer, a *LayerActs) {
	n, kvd, kv := s.N, s.KVD(), s.KVHeads()
	gqa, qkn := kv != s.H, w.QNorm != nil
	q, k, v := a.Q, a.K, a.V // after norm and RoPE, before the repeat
	if gqa {
		k, v = a.KC, a.VC
	}
	g := qkvProducts(t, s, w, a)
	if kvd == s.D { // one grid: each block of rows and heads of q, k and v in turn (3 products cut
		// separately made 15 blocks for 16 goroutines, 5 each)
		t.gemmGrid(g[:]...)
	} else {
		t.gemms(g[:]...)
	}
	if qkn { // the projections landed in QRaw, KRaw
		rmsnormForward(t, q, a.RQ, a.QRaw, w.QNorm.W, n*s.H, s.HD, s.NormEps)
		rmsnormForward(t, k, a.RK, a.KRaw, w.KNorm.W, n*kv, s.HD, s.NormEps)
	}
	if s.Cos != nil && qkn {
		ropeForward(t, q, s.Cos, s.Sin, n, s.T, s.D, s.HD)
		ropeForward(t, k, s.Cos, s.Sin, n, s.T, kvd, s.HD)
	}
	if gqa {
		kvRepeat(t, &c.kv, a.K, k, n, s.H, kv, s.HD)
		kvRepeat(t, &c.kv, a.V, v, n, s.H, kv, s.HD)
	}
}

// qkvProducts are the projections q = Xn·Wqᵀ, k = Xn·Wkᵀ, v = Xn·Wvᵀ (into a.Q, a.K, a.V; with
// QK-norm q and k into a.QRaw, a.KRaw; with GQA k and v into a.KC, a.VC), without QK-norm with
// RoPE on each block of q and k (whole heads) as their post ops.
func qkvProducts(t *team, s Shape, w *Layer, a *LayerActs) [3]gemmSpec {
	n, d, kvd := s.N, s.D, s.KVD()
	qkn := w.QNorm != nil
	q, k, v := a.Q, a.K, a.V
	if s.KVHeads() != s.H {
		k, v = a.KC, a.VC
	}
	qp, kp := q, k // where the projections land
	if qkn {
		qp, kp = a.QRaw, a.KRaw
	}
	wt := w.t()
	gq, gk := proj(qp, a.Xn, w.Wq, wt.Wq, n, d, d), proj(kp, a.Xn, w.Wk, wt.Wk, n, d, kvd)
	if s.Cos != nil && !qkn {
		t.ropeQ = ropeTile{x: q, cos: s.Cos, sin: s.Sin, T: s.T, ld: d, hd: s.HD, sign: 1}
		t.ropeK = ropeTile{x: k, cos: s.Cos, sin: s.Sin, T: s.T, ld: kvd, hd: s.HD, sign: 1}
		gq.post, gq.unit, gk.post, gk.unit = &t.ropeQ, s.HD, &t.ropeK, s.HD
	}
	return [3]gemmSpec{gq, gk, proj(v, a.Xn, w.Wv, wt.Wv, n, d, kvd)}
}

// qkvPlain reports whether the projections' grid (qkvProducts) is all of qkvForward and of
// qkvBackward's work before dXn: no GQA repeat or reduce, no QK-norm.
func qkvPlain(s Shape, w *Layer) bool { return s.KVHeads() == s.H && w.QNorm == nil }

// attnGrads is the LayerActs the per-head attention backward writes its dK, dV into: a itself,
// or with GQA a copy (held by c, so nothing allocates) whose DK, DV are the repeated-width DKE, DVE.
func (c *CPU) attnGrads(s Shape, a *LayerActs) *LayerActs {
	if s.KVHeads() == s.H {
		return a
	}
	c.gqa = *a
	c.gqa.DK, c.gqa.DV = a.DKE, a.DVE
	return &c.gqa
}

// qkvBackward is qkvForward's backward: from the attention's a.DQ and dK, dV (a.DK, a.DV, or with
// GQA a.DKE, a.DVE) it leaves in a.DQ, a.DK, a.DV the gradients of the projections and adds
// a.DXn = DQ·Wq + DK·Wk + DV·Wv (overwritten), accumulating the QK-norm gains' gradients:
//
//	dq, dK ← RoPE⁻¹(dq), RoPE⁻¹(dK)   (in the attention backward's items, see attnBwdJob);
//	dk, dv = kvReduce(dK), kvReduce(dV);
//	dq, dk ← RMSNorm_head backward (rmsnorm.go);  dXn = dq·Wq + dk·Wk + dv·Wv,
//
// the last as one loop with rows on its blocks of rows (rowPost) and the products more.
func (c *CPU) qkvBackward(t *team, s Shape, w *Layer, a *LayerActs, rows rowChain, more []gemmSpec) {
	n, d, kvd, kv := s.N, s.D, s.KVD(), s.KVHeads()
	if kv != s.H {
		kvReduce(t, &c.kv, a.DK, a.DKE, n, s.H, kv, s.HD)
		kvReduce(t, &c.kv, a.DV, a.DVE, n, s.H, kv, s.HD)
	}
	// RoPE's backward ran in the attention backward's items (attnBwdJob.unrotate).
	if w.QNorm != nil {
		dq, dk := a.DQN[:n*d], a.DKN[:n*kvd]
		// rmsnormBackward with dq, dk overwritten rather than added to (no loop to clear them)
		nq := t.rmsnormBwdOp(dq, a.DQ, a.QRaw, a.RQ, w.QNorm.W, s.HD, true)
		t.rowLoop(n*s.H, nq)
		nq.addTo(w.QNorm.G)
		nk := t.rmsnormBwdOp(dk, a.DK, a.KRaw, a.RK, w.KNorm.W, s.HD, true)
		t.rowLoop(n*kv, nk)
		nk.addTo(w.KNorm.G)
		copy(a.DQ, dq)
		copy(a.DK, dk)
	}
	dxn := dXnProducts(s, w, a, rows)
	t.gemmLoop(dxn[:], more)
}

// dXnProducts are dXn = DQ·Wq + DK·Wk + DV·Wv as one grid's products (gemmGrid), with rows on
// its blocks of rows.
func dXnProducts(s Shape, w *Layer, a *LayerActs, rows rowChain) [3]gemmSpec {
	n, d, kvd := s.N, s.D, s.KVD()
	dx := linearInput(a.DXn, a.DQ, w.Wq.W, n, d, d, 0)
	dx.rowPost = rows
	return [3]gemmSpec{dx, linearInput(a.DXn, a.DK, w.Wk.W, n, d, kvd, 1), linearInput(a.DXn, a.DV, w.Wv.W, n, d, kvd, 1)}
}
