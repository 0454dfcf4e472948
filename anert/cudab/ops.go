package cudab

import (
	"math"

	"github.com/anelab/anelab/anert/cuda"
)

// maxBlocks caps the grid of the grid-stride kernels and sizes the partial-sum buffer.
const maxBlocks = 4096

type kernels struct {
	embedFwd, embedBwd, gatherRows, scatterAddRows, rmsFwd, rmsBwd, colSumAdd, split, merge,
	softmaxFwd, softmaxBwd, swigluFwd, swigluBwd, axpy, scaleTo, softcapCE, sumD, scaleSumsq,
	scaleInplace, lion, adamw *cuda.Func
}

func compile(c *cuda.Ctx) (*kernels, error) {
	m, err := c.Compile("cudab_kernels.cu", kernelSrc)
	if err != nil {
		return nil, err
	}
	k := &kernels{}
	for _, f := range []struct {
		p    **cuda.Func
		name string
	}{
		{&k.embedFwd, "embed_fwd"}, {&k.embedBwd, "embed_bwd"}, {&k.gatherRows, "gather_rows"},
		{&k.scatterAddRows, "scatter_add_rows"}, {&k.rmsFwd, "rmsnorm_fwd"}, {&k.rmsBwd, "rmsnorm_bwd"},
		{&k.colSumAdd, "col_sum_add"}, {&k.split, "split_heads"}, {&k.merge, "merge_heads"},
		{&k.softmaxFwd, "softmax_causal_fwd"}, {&k.softmaxBwd, "softmax_causal_bwd"},
		{&k.swigluFwd, "swiglu_fwd"}, {&k.swigluBwd, "swiglu_bwd"}, {&k.axpy, "axpy"}, {&k.scaleTo, "scale_to"},
		{&k.softcapCE, "softcap_ce"}, {&k.sumD, "sum_d"}, {&k.scaleSumsq, "scale_sumsq"},
		{&k.scaleInplace, "scale_inplace"}, {&k.lion, "lion"}, {&k.adamw, "adamw"},
	} {
		if *f.p, err = m.Func(f.name); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// layerBufs is one layer's saved activations (device). P ([B·H, T, T]) is the GEMM attention's,
// LSE ([B·H, T]) the flash attention's.
type layerBufs struct {
	X, Xn, RAtt, Qh, Kh, Vh, P, LSE, A, X2, X2n, RFFN, H1, H3, Gate cuda.Ptr
}

// buffers is every activation and scratch buffer for up to rows = batch·Seq tokens.
type buffers struct {
	batch                                                 int
	layers                                                []layerBufs
	xL, xf, rf, dx, dxf, logits, ec, gec                  cuda.Ptr
	qkv, o, y, dy, dgate, dh1, dh3, dx2n, do, da, dah, dp cuda.Ptr
	dqh, dkh, dvh, dqkv, dxn, gpart, ah                   cuda.Ptr
	dvec                                                  cuda.Ptr // flash: D = rowsum(dO∘O), [B·H, T]
	lossRow, part, ids, tgt                               cuda.Ptr
	all                                                   []cuda.Ptr
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
	mc := t.cfg.Model
	N, D, F, H, T, C := batch*mc.Seq, mc.Dim, mc.FFN, mc.Heads, mc.Seq, t.classes()
	var err error
	alloc := func(n int) cuda.Ptr {
		if err != nil {
			return 0
		}
		var p cuda.Ptr
		if p, err = t.c.Alloc(n); err == nil {
			b.all = append(b.all, p)
		}
		return p
	}
	nd, nf, ss := N*D, N*F, N*H*T
	flash := t.attn == AttentionFlash
	b.layers = make([]layerBufs, mc.Layers)
	for l := range b.layers {
		a := layerBufs{X: alloc(nd), Xn: alloc(nd), RAtt: alloc(N), Qh: alloc(nd), Kh: alloc(nd), Vh: alloc(nd),
			A: alloc(nd), X2: alloc(nd), X2n: alloc(nd), RFFN: alloc(N), H1: alloc(nf), H3: alloc(nf), Gate: alloc(nf)}
		if flash {
			a.LSE = alloc(N * H)
		} else {
			a.P = alloc(ss)
		}
		b.layers[l] = a
	}
	b.xL, b.xf, b.rf, b.dx, b.dxf = alloc(nd), alloc(nd), alloc(N), alloc(nd), alloc(nd)
	b.logits = alloc(N * C)
	if t.active != nil {
		b.ec, b.gec = alloc(C*D), alloc(C*D)
	}
	b.qkv, b.o, b.y, b.dy = alloc(3*nd), alloc(nd), alloc(nd), alloc(nd)
	b.dgate, b.dh1, b.dh3 = alloc(nf), alloc(nf), alloc(nf)
	b.dx2n, b.do, b.da, b.dah = alloc(nd), alloc(nd), alloc(nd), alloc(nd)
	if flash {
		b.dvec = alloc(N * H)
	} else {
		b.dp = alloc(ss)
	}
	b.dqh, b.dkh, b.dvh, b.dqkv, b.dxn, b.gpart, b.ah = alloc(nd), alloc(nd), alloc(nd), alloc(3*nd), alloc(nd), alloc(nd), alloc(nd)
	b.lossRow, b.part = alloc(2*N), alloc(2*maxBlocks)
	b.ids, b.tgt = alloc(N), alloc(N)
	if err != nil {
		for _, p := range b.all {
			t.c.Free(p)
		}
		*b = buffers{}
		return err
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

func (t *Trainer) gemm(ta, tb bool, m, n, k int, alpha float32, a cuda.Ptr, lda int, b cuda.Ptr, ldb int, beta float32, c cuda.Ptr, ldc int) {
	if t.err == nil {
		t.fail(t.c.Gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
	}
}

func (t *Trainer) gemmB(ta, tb bool, m, n, k int, alpha float32, a cuda.Ptr, lda, sa int, b cuda.Ptr, ldb, sb int,
	beta float32, c cuda.Ptr, ldc, sc, batch int) {
	if t.err == nil {
		t.fail(t.c.GemmBatched(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch))
	}
}

// param returns the device weight and gradient of parameter i.
func (t *Trainer) param(i int) (w, g cuda.Ptr) { return t.w.Add(t.offs[i]), t.g.Add(t.offs[i]) }

// Parameter indices in model.Params order: embed, per layer 9 (attn_norm, wq, wk, wv, wo,
// ffn_norm, w1, w2, w3), final_norm.
const (
	pAttnNorm = iota
	pWq
	pWk
	pWv
	pWo
	pFFNNorm
	pW1
	pW2
	pW3
	perLayer
)

func (t *Trainer) lp(l, which int) (w, g cuda.Ptr) { return t.param(1 + l*perLayer + which) }

// rmsnormBwd is model's rmsnormBackward: dx += …, dgain += Σ_rows dy·x·r.
func (t *Trainer) rmsnormBwd(dx, dg, dout, x, rinv, g cuda.Ptr, n, d int) {
	t.rows(t.k.rmsBwd, n, dx, t.buf.gpart, dout, x, rinv, g, d)
	rowsPer := max(64, (n+65534)/65535) // grid.y ≤ 65535
	t.launch(t.k.colSumAdd, cuda.Dim3{X: (d + 255) / 256, Y: (n + rowsPer - 1) / rowsPer}, cuda.Dim3{X: 256},
		dg, t.buf.gpart, n, d, rowsPer)
}

// forward runs the embedding and every block, leaving the last block's output in buf.xL.
func (t *Trainer) forward(batch int) {
	mc := t.cfg.Model
	T, D, F, H := mc.Seq, mc.Dim, mc.FFN, mc.Heads
	HD := D / H
	N := batch * T
	BH := batch * H
	b := &t.buf
	eps := float32(mc.NormEps)
	scale := float32(1 / sqrtF(float64(HD)))
	E, _ := t.param(0)
	t.ew(t.k.embedFwd, int64(N*D), b.layers[0].X, E, b.ids, N, D)
	for l := range b.layers {
		a := &b.layers[l]
		gAtt, _ := t.lp(l, pAttnNorm)
		wqkv, _ := t.lp(l, pWq)
		wo, _ := t.lp(l, pWo)
		gFFN, _ := t.lp(l, pFFNNorm)
		w1, _ := t.lp(l, pW1)
		w2, _ := t.lp(l, pW2)
		w3, _ := t.lp(l, pW3)
		t.rows(t.k.rmsFwd, N, a.Xn, a.RAtt, a.X, gAtt, D, eps)
		t.gemm(false, true, N, 3*D, D, 1, a.Xn, D, wqkv, D, 0, b.qkv, 3*D)
		pairs := int64(N * D / 2)
		t.ew(t.k.split, pairs, a.Qh, b.qkv, N, 3*D, T, H, HD, t.cos, t.sin, float32(1))
		t.ew(t.k.split, pairs, a.Kh, b.qkv.Add(D), N, 3*D, T, H, HD, t.cos, t.sin, float32(1))
		t.ew(t.k.split, pairs, a.Vh, b.qkv.Add(2*D), N, 3*D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
		if t.attn == AttentionFlash {
			if t.err == nil {
				t.fail(flashForward(t.c, t.fk, b.ah, a.LSE, a.Qh, a.Kh, a.Vh, T, BH, HD))
			}
		} else {
			t.gemmB(false, true, T, T, HD, scale, a.Qh, HD, T*HD, a.Kh, HD, T*HD, 0, a.P, T, T*T, BH)
			t.rows(t.k.softmaxFwd, BH*T, a.P, T)
			t.gemmB(false, false, T, HD, T, 1, a.P, T, T*T, a.Vh, HD, T*HD, 0, b.ah, HD, T*HD, BH)
		}
		t.ew(t.k.merge, pairs, a.A, b.ah, N, D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
		t.gemm(false, true, N, D, D, 1, a.A, D, wo, D, 0, b.o, D)
		t.ew(t.k.axpy, int64(N*D), a.X2, a.X, b.o, t.alpha, int64(N*D))
		t.rows(t.k.rmsFwd, N, a.X2n, a.RFFN, a.X2, gFFN, D, eps)
		t.gemm(false, true, N, F, D, 1, a.X2n, D, w1, D, 0, a.H1, F)
		t.gemm(false, true, N, F, D, 1, a.X2n, D, w3, D, 0, a.H3, F)
		t.ew(t.k.swigluFwd, int64(N*F), a.Gate, a.H1, a.H3, int64(N*F))
		t.gemm(false, true, N, D, F, 1, a.Gate, F, w2, F, 0, b.y, D)
		next := b.xL
		if l+1 < len(b.layers) {
			next = b.layers[l+1].X
		}
		t.ew(t.k.axpy, int64(N*D), next, a.X2, b.y, t.alpha, int64(N*D))
	}
}

// classifier returns E_c (E, or its active rows gathered into buf.ec).
func (t *Trainer) classifier() cuda.Ptr {
	E, _ := t.param(0)
	if t.active == nil {
		return E
	}
	D := t.cfg.Model.Dim
	t.ew(t.k.gatherRows, int64(len(t.active)*D), t.buf.ec, E, t.actDev, len(t.active), D)
	return t.buf.ec
}

// head is the final norm, the classifier and the soft-capped loss per row (buf.lossRow); with
// train buf.logits ends holding dlogits = gradScale/N·∂loss/∂logits.
func (t *Trainer) head(n int, train bool, gradScale float32) {
	mc := t.cfg.Model
	D, C := mc.Dim, t.classes()
	b := &t.buf
	gF, _ := t.param(len(t.ps) - 1)
	t.rows(t.k.rmsFwd, n, b.xf, b.rf, b.xL, gF, D, float32(mc.NormEps))
	ec := t.classifier()
	t.gemm(false, true, n, C, D, 1, b.xf, D, ec, D, 0, b.logits, C)
	tr := 0
	if train {
		tr = 1
	}
	t.launch(t.k.softcapCE, cuda.Dim3{X: n}, cuda.Dim3{X: 256}, b.logits, b.lossRow, b.tgt, C,
		float32(mc.Softcap), gradScale/float32(n), tr)
}

// backward propagates buf.logits (dlogits) down to the embedding, adding every gradient.
func (t *Trainer) backward(batch int) {
	mc := t.cfg.Model
	T, D, F, H := mc.Seq, mc.Dim, mc.FFN, mc.Heads
	HD := D / H
	N := batch * T
	BH := batch * H
	C := t.classes()
	b := &t.buf
	scale := float32(1 / sqrtF(float64(HD)))
	E, gE := t.param(0)
	ec := E
	if t.active != nil {
		ec = b.ec // gathered by head's classifier call
	}
	t.gemm(false, false, N, D, C, 1, b.logits, C, ec, D, 0, b.dxf, D)
	if t.active != nil {
		t.fail(t.c.Zero(b.gec, C*D))
		t.gemm(true, false, C, D, N, 1, b.logits, C, b.xf, D, 1, b.gec, D)
		t.ew(t.k.scatterAddRows, int64(C*D), gE, b.gec, t.actDev, C, D)
	} else {
		t.gemm(true, false, C, D, N, 1, b.logits, C, b.xf, D, 1, gE, D)
	}
	t.fail(t.c.Zero(b.dx, N*D))
	gFw, gFg := t.param(len(t.ps) - 1)
	t.rmsnormBwd(b.dx, gFg, b.dxf, b.xL, b.rf, gFw, N, D)
	nd := int64(N * D)
	pairs := nd / 2
	for l := len(b.layers) - 1; l >= 0; l-- {
		a := &b.layers[l]
		gAttW, gAttG := t.lp(l, pAttnNorm)
		wqkv, gqkv := t.lp(l, pWq)
		wo, gwo := t.lp(l, pWo)
		gFFNW, gFFNG := t.lp(l, pFFNNorm)
		w1, gw1 := t.lp(l, pW1)
		w2, gw2 := t.lp(l, pW2)
		w3, gw3 := t.lp(l, pW3)
		// x' = x2 + α·y
		t.ew(t.k.scaleTo, nd, b.dy, b.dx, t.alpha, nd)
		t.gemm(false, false, N, F, D, 1, b.dy, D, w2, F, 0, b.dgate, F)
		t.gemm(true, false, D, F, N, 1, b.dy, D, a.Gate, F, 1, gw2, F)
		t.ew(t.k.swigluBwd, int64(N*F), b.dh1, b.dh3, b.dgate, a.H1, a.H3, int64(N*F))
		t.gemm(false, false, N, D, F, 1, b.dh1, F, w1, D, 0, b.dx2n, D)
		t.gemm(false, false, N, D, F, 1, b.dh3, F, w3, D, 1, b.dx2n, D)
		t.gemm(true, false, F, D, N, 1, b.dh1, F, a.X2n, D, 1, gw1, D)
		t.gemm(true, false, F, D, N, 1, b.dh3, F, a.X2n, D, 1, gw3, D)
		t.rmsnormBwd(b.dx, gFFNG, b.dx2n, a.X2, a.RFFN, gFFNW, N, D)
		// x2 = x + α·o
		t.ew(t.k.scaleTo, nd, b.do, b.dx, t.alpha, nd)
		t.gemm(false, false, N, D, D, 1, b.do, D, wo, D, 0, b.da, D)
		t.gemm(true, false, D, D, N, 1, b.do, D, a.A, D, 1, gwo, D)
		t.ew(t.k.split, pairs, b.dah, b.da, N, D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
		if t.attn == AttentionFlash {
			// O head-major again (a permutation of the saved A; no RoPE on the value side) for
			// D = rowsum(dO∘O).
			t.ew(t.k.split, pairs, b.ah, a.A, N, D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
			if t.err == nil {
				t.fail(flashBackward(t.c, t.fk, b.dqh, b.dkh, b.dvh, b.dvec, a.Qh, a.Kh, a.Vh, b.ah, b.dah, a.LSE, T, BH, HD))
			}
		} else {
			t.gemmB(false, true, T, T, HD, 1, b.dah, HD, T*HD, a.Vh, HD, T*HD, 0, b.dp, T, T*T, BH)
			t.gemmB(true, false, T, HD, T, 1, a.P, T, T*T, b.dah, HD, T*HD, 0, b.dvh, HD, T*HD, BH)
			t.rows(t.k.softmaxBwd, BH*T, b.dp, a.P, T, scale)
			t.gemmB(false, false, T, HD, T, 1, b.dp, T, T*T, a.Kh, HD, T*HD, 0, b.dqh, HD, T*HD, BH)
			t.gemmB(true, false, T, HD, T, 1, b.dp, T, T*T, a.Qh, HD, T*HD, 0, b.dkh, HD, T*HD, BH)
		}
		t.ew(t.k.merge, pairs, b.dqkv, b.dqh, N, 3*D, T, H, HD, t.cos, t.sin, float32(-1))
		t.ew(t.k.merge, pairs, b.dqkv.Add(D), b.dkh, N, 3*D, T, H, HD, t.cos, t.sin, float32(-1))
		t.ew(t.k.merge, pairs, b.dqkv.Add(2*D), b.dvh, N, 3*D, T, H, HD, cuda.Ptr(0), cuda.Ptr(0), float32(1))
		t.gemm(false, false, N, D, 3*D, 1, b.dqkv, 3*D, wqkv, D, 0, b.dxn, D)
		t.gemm(true, false, 3*D, D, N, 1, b.dqkv, 3*D, a.Xn, D, 1, gqkv, D)
		t.rmsnormBwd(b.dx, gAttG, b.dxn, a.X, a.RAtt, gAttW, N, D)
	}
	t.ew(t.k.embedBwd, nd, gE, b.dx, b.ids, N, D)
}

func sqrtF(x float64) float64 { return math.Sqrt(x) }
