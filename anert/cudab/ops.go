package cudab

import (
	"fmt"
	"math"

	"github.com/anelab/anelab/anert/cuda"
)

// maxBlocks caps the grid of the grid-stride kernels and sizes the partial-sum buffer.
const maxBlocks = 4096

type kernels struct {
	embedFwd, embedBwd, gatherRows, scatterAddRows, rmsFwd, rmsBwd, colSumAdd, split, merge,
	softmaxFwd, softmaxBwd, swigluFwd, swigluBwd, axpy, scaleTo, softcapCE, sumD, scaleSumsq,
	scaleInplace, lion, adamw *cuda.Func
	// bf16 mode's variants: the same formulas, bf16 where the kernel's comment says.
	toBF16, gatherRowsBF, rmsFwdBF, splitBF, mergeBF, swigluFwdBF, swigluBwdBF, scaleToBF, softcapCEBF *cuda.Func

	arch archKernels // the architecture options' (arch.go)
	muon muonKernels // Muon's (muon.go)
}

// kernelRef names a kernel of a compiled module and where its handle goes.
type kernelRef struct {
	p    **cuda.Func
	name string
}

// lookup sets every ref's handle from m, or fails on the first kernel m lacks.
func lookup(m *cuda.Module, refs []kernelRef) error {
	for _, r := range refs {
		var err error
		if *r.p, err = m.Func(r.name); err != nil {
			return err
		}
	}
	return nil
}

func compile(c *cuda.Ctx) (*kernels, error) {
	m, err := c.Compile("cudab_kernels.cu", kernelSrc)
	if err != nil {
		return nil, err
	}
	k := &kernels{}
	if err := lookup(m, []kernelRef{
		{&k.embedFwd, "embed_fwd"}, {&k.embedBwd, "embed_bwd"}, {&k.gatherRows, "gather_rows"},
		{&k.scatterAddRows, "scatter_add_rows"}, {&k.rmsFwd, "rmsnorm_fwd"}, {&k.rmsBwd, "rmsnorm_bwd"},
		{&k.colSumAdd, "col_sum_add"}, {&k.split, "split_heads"}, {&k.merge, "merge_heads"},
		{&k.softmaxFwd, "softmax_causal_fwd"}, {&k.softmaxBwd, "softmax_causal_bwd"},
		{&k.swigluFwd, "swiglu_fwd"}, {&k.swigluBwd, "swiglu_bwd"}, {&k.axpy, "axpy"}, {&k.scaleTo, "scale_to"},
		{&k.softcapCE, "softcap_ce"}, {&k.sumD, "sum_d"}, {&k.scaleSumsq, "scale_sumsq"},
		{&k.scaleInplace, "scale_inplace"}, {&k.lion, "lion"}, {&k.adamw, "adamw"},
		{&k.toBF16, "to_bf16"}, {&k.gatherRowsBF, "gather_rows_bf"}, {&k.rmsFwdBF, "rmsnorm_fwd_bf"},
		{&k.splitBF, "split_heads_bf"}, {&k.mergeBF, "merge_heads_bf"}, {&k.swigluFwdBF, "swiglu_fwd_bf"},
		{&k.swigluBwdBF, "swiglu_bwd_bf"}, {&k.scaleToBF, "scale_to_bf"}, {&k.softcapCEBF, "softcap_ce_bf"},
	}); err != nil {
		return nil, err
	}
	if err := k.arch.load(m); err != nil {
		return nil, err
	}
	if err := k.muon.load(m); err != nil {
		return nil, err
	}
	return k, nil
}

// layerBufs is one layer's saved activations (device). P ([B·H, T, T]) is the GEMM attention's,
// LSE ([B·H, T]) the flash attention's; QKV (the raw projections [N, 3D]) and RQ, RK (1/rms per
// row and head, [N·H]) QK-norm's; H3 SwiGLU's. In bf16 mode Xn, A, X2n, H1, H3 and Gate are bf16
// (bufferPlan).
type layerBufs struct {
	X, Xn, RAtt, Qh, Kh, Vh, P, LSE, A, X2, X2n, RFFN, H1, H3, Gate cuda.Ptr
	QKV, RQ, RK                                                     cuda.Ptr
}

// buffers is every activation and scratch buffer for up to rows = batch·Seq tokens.
type buffers struct {
	batch                                                 int
	layers                                                []layerBufs
	xL, xf, rf, dx, dxf, logits, dlogits, ec, gec         cuda.Ptr
	qkv, o, y, dy, dgate, dh1, dh3, dx2n, do, da, dah, dp cuda.Ptr
	dqh, dkh, dvh, dqkv, dxn, gpart, ah                   cuda.Ptr
	dvec                                                  cuda.Ptr // flash: D = rowsum(dO∘O), [B·H, T]
	lossRow, part, ids, tgt                               cuda.Ptr
	all                                                   []cuda.Ptr
}

// Element sizes of the buffer plan.
const (
	sizeBF16 = 2
	sizeF32  = 4 // also int32 (ids, targets)
	sizeF64  = 8
)

// bufSpec is one device buffer: the field its address goes to, its elements and their size.
type bufSpec struct {
	name string
	p    *cuda.Ptr
	n    int
	size int
}

// bufferPlan lists every buffer for batch sequences into b's fields. In bf16 mode (t.bf) the
// activations that only GEMMs (and kernels that read bf16) consume are bf16: the norms' outputs
// Xn, X2n and xf, the merged attention output A, the FFN's H1, H3 and Gate, and on the backward
// side dlogits, dy, do, dh1, dh3 and dQKV; the residual stream, the GEMM outputs that fp32
// kernels read, the attention's Q/K/V/P and every gradient summed into a weight's stay fp32.
// Other modes have every buffer fp32 (and no dlogits: dl overwrites the logits). A plain MLP
// (model.act relu2, gelu) has no H3 and dh3; QK-norm adds per layer the raw projections QKV (in
// place of the shared qkv) and 1/rms per (row, head) RQ, RK, all fp32 (fp32 kernels read them).
func (t *Trainer) bufferPlan(b *buffers, batch int) []bufSpec {
	mc := t.cfg.Model
	N, D, F, H, T, C := batch*mc.Seq, mc.Dim, mc.FFN, mc.Heads, mc.Seq, t.classes()
	nd, nf, ss := N*D, N*F, N*H*T
	act := sizeF32 // GEMM-only activations
	if t.bf {
		act = sizeBF16
	}
	var ps []bufSpec
	add := func(name string, p *cuda.Ptr, n, size int) { ps = append(ps, bufSpec{name, p, n, size}) }
	flash := t.attn == AttentionFlash
	b.layers = make([]layerBufs, mc.Layers)
	for l := range b.layers {
		a := &b.layers[l]
		L := func(s string) string { return fmt.Sprintf("layer%d.%s", l, s) }
		add(L("X"), &a.X, nd, sizeF32)
		add(L("Xn"), &a.Xn, nd, act)
		add(L("RAtt"), &a.RAtt, N, sizeF32)
		add(L("Qh"), &a.Qh, nd, sizeF32)
		add(L("Kh"), &a.Kh, nd, sizeF32)
		add(L("Vh"), &a.Vh, nd, sizeF32)
		add(L("A"), &a.A, nd, act)
		add(L("X2"), &a.X2, nd, sizeF32)
		add(L("X2n"), &a.X2n, nd, act)
		add(L("RFFN"), &a.RFFN, N, sizeF32)
		add(L("H1"), &a.H1, nf, act)
		if t.gated() {
			add(L("H3"), &a.H3, nf, act)
		}
		add(L("Gate"), &a.Gate, nf, act)
		if flash {
			add(L("LSE"), &a.LSE, N*H, sizeF32)
		} else {
			add(L("P"), &a.P, ss, sizeF32)
		}
		if t.qkNorm() {
			add(L("QKV"), &a.QKV, 3*nd, sizeF32)
			add(L("RQ"), &a.RQ, N*H, sizeF32)
			add(L("RK"), &a.RK, N*H, sizeF32)
		}
	}
	add("xL", &b.xL, nd, sizeF32)
	add("xf", &b.xf, nd, act)
	add("rf", &b.rf, N, sizeF32)
	add("dx", &b.dx, nd, sizeF32)
	add("dxf", &b.dxf, nd, sizeF32)
	add("logits", &b.logits, N*C, sizeF32)
	if t.bf {
		add("dlogits", &b.dlogits, N*C, sizeBF16)
	}
	if t.active != nil {
		add("ec", &b.ec, C*D, act)
		add("gec", &b.gec, C*D, sizeF32)
	}
	if !t.qkNorm() { // QK-norm's projections go to the layer's QKV
		add("qkv", &b.qkv, 3*nd, sizeF32)
	}
	add("o", &b.o, nd, sizeF32)
	add("y", &b.y, nd, sizeF32)
	add("dy", &b.dy, nd, act)
	add("dgate", &b.dgate, nf, sizeF32)
	add("dh1", &b.dh1, nf, act)
	if t.gated() {
		add("dh3", &b.dh3, nf, act)
	}
	add("dx2n", &b.dx2n, nd, sizeF32)
	add("do", &b.do, nd, act)
	add("da", &b.da, nd, sizeF32)
	add("dah", &b.dah, nd, sizeF32)
	if flash {
		add("dvec", &b.dvec, N*H, sizeF32)
	} else {
		add("dp", &b.dp, ss, sizeF32)
	}
	add("dqh", &b.dqh, nd, sizeF32)
	add("dkh", &b.dkh, nd, sizeF32)
	add("dvh", &b.dvh, nd, sizeF32)
	add("dqkv", &b.dqkv, 3*nd, act)
	add("dxn", &b.dxn, nd, sizeF32)
	add("gpart", &b.gpart, nd, sizeF32)
	add("ah", &b.ah, nd, sizeF32)
	add("lossRow", &b.lossRow, N, sizeF64)
	add("part", &b.part, maxBlocks, sizeF64)
	add("ids", &b.ids, N, sizeF32)
	add("tgt", &b.tgt, N, sizeF32)
	return ps
}

// ensure sizes the buffers for batch sequences (reallocating everything when a larger batch
// comes; evaluation batches are no larger than training's).
func (t *Trainer) ensure(batch int) error {
	b := &t.buf
	if batch <= b.batch {
		return nil
	}
	for _, p := range b.all {
		t.c.Free(p)
	}
	*b = buffers{batch: batch}
	for _, s := range t.bufferPlan(b, batch) {
		p, err := t.c.AllocBytes(s.n * s.size)
		if err != nil {
			for _, p := range b.all {
				t.c.Free(p)
			}
			*b = buffers{}
			return fmt.Errorf("cudab: buffer %s (%d × %d bytes, batch %d): %w", s.name, s.n, s.size, batch, err)
		}
		*s.p = p
		b.all = append(b.all, p)
	}
	return nil
}

// fail keeps the first error of a call.
func (t *Trainer) fail(err error) {
	if err != nil && t.err == nil {
		t.err = err
	}
}

func (t *Trainer) launch(f *cuda.Func, grid, block cuda.Dim3, args ...any) {
	if t.err == nil {
		t.fail(t.c.Launch(f, grid, block, 0, args...))
	}
}

func (t *Trainer) blocks(n int64) int { return int(max(1, min((n+255)/256, maxBlocks))) }

func (t *Trainer) grid(n int64) cuda.Dim3 { return cuda.Dim3{X: t.blocks(n)} }

// ew launches an element-wise grid-stride kernel over n elements.
func (t *Trainer) ew(f *cuda.Func, n int64, args ...any) {
	t.launch(f, t.grid(n), cuda.Dim3{X: 256}, args...)
}

// rows launches a block-per-row kernel on n rows.
func (t *Trainer) rows(f *cuda.Func, n int, args ...any) {
	t.launch(f, cuda.Dim3{X: n}, cuda.Dim3{X: 256}, args...)
}

// mm is C = op(A)·op(B) + beta·C on operands of the types given: bf16 A and B compute natively
// (fp32 accumulation), fp32 ones in the context's precision (pedantic fp32, or rounded to bf16
// on load in the bf16 modes).
func (t *Trainer) mm(ta, tb bool, m, n, k int, a, b cuda.Operand, beta float32, c cuda.Operand) {
	if t.err != nil {
		return
	}
	compute := t.c.Precision().F32Compute()
	if a.Type == cuda.TypeBF16 {
		compute = cuda.Compute32F
	}
	t.fail(t.c.GemmTyped(ta, tb, m, n, k, 1, a, b, beta, c, compute, 1))
}

// act is an activation buffer of the plan's GEMM-only kind as a GEMM operand (bf16 in bf16 mode).
func (t *Trainer) act(p cuda.Ptr, ld int) cuda.Operand {
	if t.bf {
		return cuda.BF16Op(p, ld)
	}
	return cuda.F32(p, ld)
}

// wop is parameter i's weights as a GEMM operand: the bf16 copy in bf16 mode, else the fp32
// master.
func (t *Trainer) wop(i, ld int) cuda.Operand {
	if t.bf {
		return cuda.BF16Op(t.wb.AddBF16(t.offs[i]), ld)
	}
	return cuda.F32(t.w.Add(t.offs[i]), ld)
}

// lwop is layer l's parameter which (pAttnNorm …) as a GEMM operand.
func (t *Trainer) lwop(l, which, ld int) cuda.Operand { return t.wop(t.pi.layers[l][which], ld) }

// pick is k's bf16 variant in bf16 mode, else k.
func (t *Trainer) pick(k, bf *cuda.Func) *cuda.Func {
	if t.bf {
		return bf
	}
	return k
}

func (t *Trainer) gemmB(ta, tb bool, m, n, k int, alpha float32, a cuda.Ptr, lda, sa int, b cuda.Ptr, ldb, sb int,
	beta float32, c cuda.Ptr, ldc, sc, batch int) {
	if t.err == nil {
		t.fail(t.c.GemmBatched(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch))
	}
}

// param returns the device weight and gradient of parameter i.
func (t *Trainer) param(i int) (w, g cuda.Ptr) { return t.w.Add(t.offs[i]), t.g.Add(t.offs[i]) }

// The roles of a layer's parameters (model.Layer's fields), for lp and lwop; t.pi maps them to
// indices in model.Params, whose order depends on the architecture options (paramIndex).
const (
	pAttnNorm = iota
	pWq
	pWk
	pWv
	pWo
	pFFNNorm
	pW1
	pW2
	pW3    // SwiGLU only
	pQNorm // QK-norm only
	pKNorm // QK-norm only
	nRoles
)

func (t *Trainer) lp(l, which int) (w, g cuda.Ptr) { return t.param(t.pi.layers[l][which]) }

// rmsnormBwd is model's rmsnormBackward: dx += …, dgain += Σ_rows dy·x·r.
func (t *Trainer) rmsnormBwd(dx, dg, dout, x, rinv, g cuda.Ptr, n, d int) {
	t.rows(t.k.rmsBwd, n, dx, t.buf.gpart, dout, x, rinv, g, d)
	t.colSumAdd(dg, t.buf.gpart, n, d)
}

// colSumAdd is dst[j] += Σ_rows part[row, j] over part [n, d].
func (t *Trainer) colSumAdd(dst, part cuda.Ptr, n, d int) {
	rowsPer := max(64, (n+65534)/65535) // grid.y ≤ 65535
	t.launch(t.k.colSumAdd, cuda.Dim3{X: (d + 255) / 256, Y: (n + rowsPer - 1) / rowsPer}, cuda.Dim3{X: 256},
		dst, part, n, d, rowsPer)
}

// forward runs the embedding and every block, leaving the last block's output in buf.xL.
func (t *Trainer) forward(batch int) {
	mc := t.cfg.Model
	T, D, F, H := mc.Seq, mc.Dim, mc.FFN, mc.Heads
	HD := D / H
	N := batch * T
	BH := batch * H
	b := &t.buf
	k := t.k
	eps := float32(mc.NormEps)
	scale := float32(1 / sqrtF(float64(HD)))
	E, _ := t.param(t.pi.embed)
	t.ew(k.embedFwd, int64(N*D), b.layers[0].X, E, b.ids, N, D)
	for l := range b.layers {
		a := &b.layers[l]
		gAtt, _ := t.lp(l, pAttnNorm)
		gFFN, _ := t.lp(l, pFFNNorm)
		t.rows(t.pick(k.rmsFwd, k.rmsFwdBF), N, a.Xn, a.RAtt, a.X, gAtt, D, eps)
		qkv := b.qkv
		if t.qkNorm() { // kept for the backward pass
			qkv = a.QKV
		}
		t.mm(false, true, N, 3*D, D, t.act(a.Xn, D), t.lwop(l, pWq, D), 0, cuda.F32(qkv, 3*D))
		pairs := int64(N * D / 2)
		t.splitQK(l, a, qkv, N)
		t.ew(k.split, pairs, a.Vh, qkv.Add(2*D), N, 3*D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
		if t.attn == AttentionFlash {
			if t.err == nil {
				t.fail(flashForward(t.c, t.fk, b.ah, a.LSE, a.Qh, a.Kh, a.Vh, T, BH, HD))
			}
		} else {
			t.gemmB(false, true, T, T, HD, scale, a.Qh, HD, T*HD, a.Kh, HD, T*HD, 0, a.P, T, T*T, BH)
			t.rows(k.softmaxFwd, BH*T, a.P, T)
			t.gemmB(false, false, T, HD, T, 1, a.P, T, T*T, a.Vh, HD, T*HD, 0, b.ah, HD, T*HD, BH)
		}
		t.ew(t.pick(k.merge, k.mergeBF), pairs, a.A, b.ah, N, D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
		t.mm(false, true, N, D, D, t.act(a.A, D), t.lwop(l, pWo, D), 0, cuda.F32(b.o, D))
		t.ew(k.axpy, int64(N*D), a.X2, a.X, b.o, t.alpha, int64(N*D))
		t.rows(t.pick(k.rmsFwd, k.rmsFwdBF), N, a.X2n, a.RFFN, a.X2, gFFN, D, eps)
		t.ffnForward(l, a, N, D, F)
		next := b.xL
		if l+1 < len(b.layers) {
			next = b.layers[l+1].X
		}
		t.ew(k.axpy, int64(N*D), next, a.X2, b.y, t.alpha, int64(N*D))
	}
}

// classifier returns E_c as a GEMM operand (E or the untied head, or its active rows gathered
// into buf.ec; bf16 in bf16 mode).
func (t *Trainer) classifier() cuda.Operand {
	D, h := t.cfg.Model.Dim, t.pi.head
	if t.active == nil {
		return t.wop(h, D)
	}
	if t.bf {
		t.ew(t.k.gatherRowsBF, int64(len(t.active)*D), t.buf.ec, t.wb.AddBF16(t.offs[h]), t.actDev, len(t.active), D)
	} else {
		t.ew(t.k.gatherRows, int64(len(t.active)*D), t.buf.ec, t.w.Add(t.offs[h]), t.actDev, len(t.active), D)
	}
	return t.act(t.buf.ec, D)
}

// head is the final norm, the classifier and the soft-capped loss per row (buf.lossRow); with
// train dl = gradScale/N·∂loss/∂logits ends in buf.logits (fp32 modes) or buf.dlogits (bf16).
func (t *Trainer) head(n int, train bool, gradScale float32) {
	mc := t.cfg.Model
	D, C := mc.Dim, t.classes()
	b := &t.buf
	gF, _ := t.param(t.pi.finalNorm)
	t.rows(t.pick(t.k.rmsFwd, t.k.rmsFwdBF), n, b.xf, b.rf, b.xL, gF, D, float32(mc.NormEps))
	t.mm(false, true, n, C, D, t.act(b.xf, D), t.classifier(), 0, cuda.F32(b.logits, C))
	tr := 0
	if train {
		tr = 1
	}
	if t.bf {
		t.launch(t.k.softcapCEBF, cuda.Dim3{X: n}, cuda.Dim3{X: 256}, b.logits, b.dlogits, b.lossRow, b.tgt, C,
			float32(mc.Softcap), gradScale/float32(n), tr)
	} else {
		t.launch(t.k.softcapCE, cuda.Dim3{X: n}, cuda.Dim3{X: 256}, b.logits, b.lossRow, b.tgt, C,
			float32(mc.Softcap), gradScale/float32(n), tr)
	}
}

// backward propagates dlogits (head's) down to the embedding, adding every gradient.
func (t *Trainer) backward(batch int) {
	mc := t.cfg.Model
	T, D, F, H := mc.Seq, mc.Dim, mc.FFN, mc.Heads
	HD := D / H
	N := batch * T
	BH := batch * H
	C := t.classes()
	b := &t.buf
	k := t.k
	scale := float32(1 / sqrtF(float64(HD)))
	_, gE := t.param(t.pi.embed)
	_, gC := t.param(t.pi.head) // the classifier's gradient: gE, or the untied head's
	ec := t.wop(t.pi.head, D)
	if t.active != nil {
		ec = t.act(b.ec, D) // gathered by head's classifier call
	}
	dl := cuda.F32(b.logits, C)
	if t.bf {
		dl = cuda.BF16Op(b.dlogits, C)
	}
	t.mm(false, false, N, D, C, dl, ec, 0, cuda.F32(b.dxf, D))
	if t.active != nil {
		t.fail(t.c.Zero(b.gec, C*D))
		t.mm(true, false, C, D, N, dl, t.act(b.xf, D), 1, cuda.F32(b.gec, D))
		t.ew(k.scatterAddRows, int64(C*D), gC, b.gec, t.actDev, C, D)
	} else {
		t.mm(true, false, C, D, N, dl, t.act(b.xf, D), 1, cuda.F32(gC, D))
	}
	t.fail(t.c.Zero(b.dx, N*D))
	gFw, gFg := t.param(t.pi.finalNorm)
	t.rmsnormBwd(b.dx, gFg, b.dxf, b.xL, b.rf, gFw, N, D)
	nd := int64(N * D)
	pairs := nd / 2
	for l := len(b.layers) - 1; l >= 0; l-- {
		a := &b.layers[l]
		gAttW, gAttG := t.lp(l, pAttnNorm)
		_, gqkv := t.lp(l, pWq)
		_, gwo := t.lp(l, pWo)
		gFFNW, gFFNG := t.lp(l, pFFNNorm)
		// x' = x2 + α·y
		t.ew(t.pick(k.scaleTo, k.scaleToBF), nd, b.dy, b.dx, t.alpha, nd)
		t.ffnBackward(l, a, N, D, F)
		t.rmsnormBwd(b.dx, gFFNG, b.dx2n, a.X2, a.RFFN, gFFNW, N, D)
		// x2 = x + α·o
		t.ew(t.pick(k.scaleTo, k.scaleToBF), nd, b.do, b.dx, t.alpha, nd)
		t.mm(false, false, N, D, D, t.act(b.do, D), t.lwop(l, pWo, D), 0, cuda.F32(b.da, D))
		t.mm(true, false, D, D, N, t.act(b.do, D), t.act(a.A, D), 1, cuda.F32(gwo, D))
		t.ew(k.split, pairs, b.dah, b.da, N, D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
		if t.attn == AttentionFlash {
			// O head-major again (a permutation of the saved A, bf16 in bf16 mode; no RoPE on
			// the value side) for D = rowsum(dO∘O).
			t.ew(t.pick(k.split, k.splitBF), pairs, b.ah, a.A, N, D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
			if t.err == nil {
				t.fail(flashBackward(t.c, t.fk, b.dqh, b.dkh, b.dvh, b.dvec, a.Qh, a.Kh, a.Vh, b.ah, b.dah, a.LSE, T, BH, HD))
			}
		} else {
			t.gemmB(false, true, T, T, HD, 1, b.dah, HD, T*HD, a.Vh, HD, T*HD, 0, b.dp, T, T*T, BH)
			t.gemmB(true, false, T, HD, T, 1, a.P, T, T*T, b.dah, HD, T*HD, 0, b.dvh, HD, T*HD, BH)
			t.rows(k.softmaxBwd, BH*T, b.dp, a.P, T, scale)
			t.gemmB(false, false, T, HD, T, 1, b.dp, T, T*T, a.Kh, HD, T*HD, 0, b.dqh, HD, T*HD, BH)
			t.gemmB(true, false, T, HD, T, 1, b.dp, T, T*T, a.Qh, HD, T*HD, 0, b.dkh, HD, T*HD, BH)
		}
		// dQKV: bf16 in bf16 mode, at element offsets D and 2·D of its rows.
		merge, at := k.merge, cuda.Ptr.Add
		if t.bf {
			merge, at = k.mergeBF, cuda.Ptr.AddBF16
		}
		t.mergeDQK(l, a, N)
		t.ew(merge, pairs, at(b.dqkv, 2*D), b.dvh, N, 3*D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
		t.mm(false, false, N, D, 3*D, t.act(b.dqkv, 3*D), t.lwop(l, pWq, D), 0, cuda.F32(b.dxn, D))
		t.mm(true, false, 3*D, D, N, t.act(b.dqkv, 3*D), t.act(a.Xn, D), 1, cuda.F32(gqkv, D))
		t.rmsnormBwd(b.dx, gAttG, b.dxn, a.X, a.RAtt, gAttW, N, D)
	}
	t.ew(k.embedBwd, nd, gE, b.dx, b.ids, N, D) // after the classifier's: tied, both add to gE
}

func sqrtF(x float64) float64 { return math.Sqrt(x) }
