package model

import "github.com/anelab/anelab/internal/par"

// CPU is the reference Backend: fp32 GEMMs through anert/blas over all N = B·T tokens at once
// (blocks of each product spread over s.Workers goroutines, independent products in one loop),
// and attention as GEMMs on strided views per (sequence, head, block of rows), the items spread
// over the same goroutines.
type CPU struct {
	// Block is the query/key block of the causal attention GEMMs (see attnRowsForward).
	Block int

	scratch int // the most floats of the backward's P and dS per group (0: attnScratch; tests)
	t       *team
	pool    *par.Pool // the pool its loops run on (nil: the process's; a split step's team: its own)
	s, dp   []float32 // attention scratch: per worker blk×T (forward); per head of a group T×T (backward)
	act     actJob    // the architecture options' loop bodies (arch.go), reused so a step allocates nothing
	actTile rangeTile // act as a post op (actPost)
	kv      kvJob
	gqa     LayerActs // attnGrads' view
	rows    rowChain  // the model's chain for the next call's last GEMM (fuseRows)
	more    [maxGemms]gemmSpec
	nmore   int // the model's products for the next call's last loop (fuseGemms)
}

// fuseRows makes ch the row epilogue (gemmSpec.rowPost) of the next call's last GEMM, on the
// output the model's chain reads: O = A·Woᵀ (AttnForward), Y = Gate·W2ᵀ (FFNForward), DX2n
// (FFNBackward), DXn (AttnBackward). The model then runs no loop of its own for it (Model.fuse).
func (c *CPU) fuseRows(ch rowChain) { c.rows = ch }

// fuseGemms adds products (the layer's weight gradients, independent of the call's own) to the
// next backward call's last loop: FFNBackward's DX2n, AttnBackward's DXn (Model.fuseDW).
func (c *CPU) fuseGemms(gs []gemmSpec) { c.nmore = copy(c.more[:], gs) }

// takeFused returns what fuseRows and fuseGemms gave for this call (nil if nothing), so that it
// never outlives the call. (A call that fails before taking it leaves it behind, harmlessly: the
// model gives anew before each call that takes it.)
func (c *CPU) takeFused() (rowChain, []gemmSpec) {
	ch, more := c.rows, c.more[:c.nmore]
	c.rows, c.nmore = nil, 0
	return ch, more
}

// NewCPU returns the CPU backend.
func NewCPU() *CPU { return &CPU{Block: 64} }

// block is the attention's query/key block: Block, or ANELAB_CPU_TUNE's ablock when set.
func (c *CPU) block() int {
	if tune.attnBlock > 0 {
		return tune.attnBlock
	}
	return c.Block
}

// Name is "cpu".
func (c *CPU) Name() string { return "cpu" }

// WeightsChanged does nothing: the CPU backend reads the weights in place.
func (c *CPU) WeightsChanged() {}

// attnScratch is the most memory the attention backward's P and dS of a group of heads take
// (floats): 16 MiB, all the heads of the default and the original's shapes at once.
const attnScratch = 4 << 20

// team returns the backend's team for s.Workers goroutines and grows the attention scratch.
func (c *CPU) team(s Shape) *team {
	w := max(1, s.Workers)
	c.t = teamFor(c.t, w, s.D, c.pool)
	if c.Block <= 0 {
		c.Block = s.T
	}
	if need := max(w, c.group(s)) * c.stride(s); len(c.s) < need {
		c.s, c.dp = make([]float32, need), make([]float32, need)
	}
	return c.t
}

// stride is the floats of attention scratch a goroutine (or a pair of a group) has in each of s
// and dp: a T×T P or dS, or what the fused kernels need (attnFusedScratch).
func (c *CPU) stride(s Shape) int {
	if attnFusedFwd(s.HD, s.Workers, s.T) { // attnFused too
		return max(s.T*s.T, attnFusedScratch(s.HD, s.T))
	}
	return s.T * s.T
}

// group is how many (sequence, head) pairs the attention backward takes at a time: all of them
// when their T×T P and dS fit attnScratch, else equal groups of at least one per goroutine.
// It is 0 when whole pairs are the items of one loop, each goroutine keeping a pair's P and dS in
// its own T×T scratch, in cache: when there are at least 4 pairs per goroutine (the dynamic
// hand-out of pairs balances the loop), or a whole number of pairs per goroutine (the pairs cost
// the same, so the goroutines finish together: one loop instead of two, e.g. the default shape's
// 16 pairs on 16 cores).
func (c *CPU) group(s Shape) int {
	bh, w := s.B*s.H, max(1, s.Workers)
	if bh >= 4*w || (bh%w == 0 && tune.wholePairs) {
		return 0
	}
	most := attnScratch
	if c.scratch > 0 {
		most = c.scratch
	}
	g := min(bh, max(s.Workers, most/(2*s.T*s.T), 1))
	groups := (bh + g - 1) / g
	return (bh + groups - 1) / groups
}

// AttnForward: qkvForward (q, k, v = Xn·Wq/k/vᵀ in one loop; QK-norm, RoPE on q, k; the GQA
// repeat); causal attention into A and LSE as one loop over (sequence, head, row block) items;
// O = A·Woᵀ (with the model's chain on its rows, fuseRows).
func (c *CPU) AttnForward(l int, s Shape, w *Layer, a *LayerActs) error {
	t := c.team(s)
	rows, _ := c.takeFused()
	n, d := s.N, s.D
	stages, byPair := t.attnChained()
	j := &t.attnFwd
	blk := min(c.block(), s.T)
	*j = attnFwdJob{c: c, s: s, a: a, blk: blk, nb: (s.T + blk - 1) / blk, byPair: byPair && stages > 0}
	items := s.B * s.H * j.nb
	o := proj(a.O, a.A, w.Wo, w.t().Wo, n, d, d)
	o.rowPost = rows
	if stages >= 2 && qkvPlain(s, w) {
		qkv := qkvProducts(t, s, w, a)
		t.attnThen(qkv[:], j, items, s.B, s.T, blk, s.H, o)
		return nil
	}
	c.qkvForward(t, s, w, a) // projections, QK-norm, RoPE, GQA repeat (arch.go)
	if stages > 0 {
		t.attnThen(nil, j, items, s.B, s.T, blk, s.H, o)
		return nil
	}
	t.run(items, items, j)
	t.gemms(o)
	return nil
}

// attnFwdJob runs attnRowsForward on items i: (sequence, head) pair it = i mod B·H (it = b·H + h),
// row block nb−1 − ⌊i/(B·H)⌋ — the last, costliest blocks first, so that the goroutines finish
// together. byPair (a homed chain, attnChained): pair ⌊i/nb⌋, row block nb−1 − i mod nb instead,
// so that a goroutine's own range of items is whole pairs, each of the same cost.
type attnFwdJob struct {
	c       *CPU
	s       Shape
	a       *LayerActs
	blk, nb int
	byPair  bool
}

// item is item i's pair and row block.
func (j *attnFwdJob) item(i int) (it, rb int) {
	if j.byPair {
		return i / j.nb, j.nb - 1 - i%j.nb
	}
	bh := j.s.B * j.s.H
	return i % bh, j.nb - 1 - i/bh
}

// group is item i's sequence and row block (gatedItems).
func (j *attnFwdJob) group(i int) (b, rb int) {
	it, rb := j.item(i)
	return it / j.s.H, rb
}

// needs is the rows of q, k and v item i reads: its sequence's keys up to its block's last query.
func (j *attnFwdJob) needs(i int) (r0, r1 int) {
	b, rb := j.group(i)
	return b * j.s.T, b*j.s.T + min((rb+1)*j.blk, j.s.T)
}

func (j *attnFwdJob) Run(wk, _, lo, hi int) {
	s, a, T := j.s, j.a, j.s.T
	fused, st := attnFusedFwd(s.HD, s.Workers, s.T), j.c.stride(s)
	scratch := j.c.s[wk*st : (wk+1)*st] // blk×T for attnRowsForward, attnFusedScratch for the fused kernel
	for i := lo; i < hi; i++ {
		it, rb := j.item(i)
		r0 := rb * j.blk
		b, h := it/s.H, it%s.H
		off := b*T*s.D + h*s.HD
		if fused {
			attnRowsForwardFused(a.A[off:], a.LSE[it*T:], a.Q[off:], a.K[off:], a.V[off:], scratch,
				s.HD, s.D, s.Scale, r0, min(r0+j.blk, T))
			continue
		}
		sc := scratch
		if p := keptP(s, a, it); p != nil {
			sc = p[r0*T:] // the block's rows of P, where the backward reads them
		}
		attnRowsForward(a.A[off:], a.LSE[it*T:], a.Q[off:], a.K[off:], a.V[off:], sc,
			T, s.HD, s.D, s.Scale, r0, min(r0+j.blk, T))
	}
}

// keptP is pair it's P (T×T) in a.P where the step keeps it for the backward (Model.keepsP:
// tune.keepP, on the BLAS path), else nil: the forward then writes P there, and the backward
// reads it instead of recomputing it (attnRowsBackward with lse nil).
func keptP(s Shape, a *LayerActs, it int) []float32 {
	tt := s.T * s.T
	if !tune.keepP || attnFusedFwd(s.HD, s.Workers, s.T) || len(a.P) < (it+1)*tt {
		return nil
	}
	return a.P[it*tt : (it+1)*tt]
}

// backwardP is what pair it's BLAS-path backward reads P from: the P the forward kept (keptP) and
// no lse, or else the scratch sc, into which it recomputes P from the pair's lse.
func backwardP(s Shape, a *LayerActs, it int, sc []float32) (p, lse []float32) {
	if kp := keptP(s, a, it); kp != nil {
		return kp, nil
	}
	return sc, a.LSE[it*s.T:]
}

// AttnBackward: the SDPA backward into DQ, DK, DV, each item first computing its rows of its
// head's DA = DO·Wo: one loop over whole (sequence, head) pairs when there are 4 or more per
// goroutine, else per group of pairs two loops, over (pair, row block) items (attnRowsBackward)
// and then (pair, key block) items (attnColsBackward);
// then qkvBackward: the GQA reduce, the QK-norm backward, DXn = DQ·Wq + DK·Wk + DV·Wv (one
// loop, with the model's chain on its rows and the model's products, see fuseRows, fuseGemms).
func (c *CPU) AttnBackward(l int, s Shape, w *Layer, a *LayerActs) error {
	t := c.team(s)
	rows, more := c.takeFused()
	j := &t.attnBwd
	blk := min(c.block(), s.T)
	*j = attnBwdJob{c: c, s: s, a: c.attnGrads(s, a), blk: blk, nb: (s.T + blk - 1) / blk,
		dA: linearInput(a.DA, a.DO, w.Wo.W, s.N, s.D, s.D, 0)}
	bh, g := s.B*s.H, c.group(s)
	if g == 0 { // whole pairs: one loop
		j.p0, j.np, j.whole = 0, bh, true
		// With no GQA reduce or QK-norm between them, dXn's rows right after their heads.
		if stages, _ := t.attnChained(); stages > 0 && len(more) == 0 && qkvPlain(s, w) {
			dxn := dXnProducts(s, w, a, rows)
			t.attnThen(nil, j, bh, s.B, s.T, s.T, s.H, dxn[:]...)
			return nil
		}
		t.run(bh, bh, j)
	}
	for j.p0 = 0; g > 0 && j.p0 < bh; j.p0 += g {
		j.np = min(g, bh-j.p0)
		j.cols = false
		t.run(j.np*j.nb, j.np*j.nb, j)
		j.cols = true
		t.run(j.np*j.nb, j.np*j.nb, j)
	}
	c.qkvBackward(t, s, w, a, rows, more) // GQA reduce, QK-norm backward, DXn (arch.go)
	return nil
}

// attnBwdJob runs the attention backward of the pairs [p0, p0+np) (it = b·H + h). With whole,
// item i is pair i, all its row blocks then all its key blocks, in worker i's scratch. With !cols,
// attnRowsBackward on items i: pair p0 + i mod np, row block nb−1 − ⌊i/np⌋ (costliest first);
// with cols, attnColsBackward on pair p0 + i mod np, key block ⌊i/np⌋ (the first keys are seen
// by the most rows: costliest first). Pair p0 + k keeps its P and dS at k·T·T in the scratch.
// A row item (or a whole pair) first computes the rows of its head's dA it reads, as a block of
// the product DA = DO·Wo (dA: the head's columns, the item's rows), so that DA needs no loop of
// its own; the key items read the rows the row items wrote. Each item then applies RoPE's
// backward to the rows of dQ (or dK) it wrote (unrotate), so the rotation needs no loop either.
type attnBwdJob struct {
	c       *CPU
	s       Shape
	a       *LayerActs
	blk, nb int
	p0, np  int
	cols    bool // the key blocks' loop (else the row blocks')
	whole   bool // items are whole pairs
	dA      gemmSpec
}

// group is whole pair i's sequence (gatedItems: one row block of T rows).
func (j *attnBwdJob) group(i int) (b, rb int) { return (j.p0 + i) / j.s.H, 0 }

// needs is the rows whole pair i reads: its sequence's.
func (j *attnBwdJob) needs(i int) (r0, r1 int) {
	b, _ := j.group(i)
	return b * j.s.T, (b + 1) * j.s.T
}

// da computes dA for the query positions [t0, t1) of head h of sequence b.
func (j *attnBwdJob) da(b, h, t0, t1 int) {
	s := j.s
	j.dA.block(b*s.T+t0, b*s.T+t1, h*s.HD, (h+1)*s.HD, 0)
}

func (j *attnBwdJob) Run(wk, _, lo, hi int) {
	s, a, T := j.s, j.a, j.s.T
	if j.whole {
		st := j.c.stride(s)
		sc, dp := j.c.s[wk*st:(wk+1)*st], j.c.dp[wk*st:(wk+1)*st]
		fused := attnFused(s.HD, s.Workers)
		for it := lo; it < hi; it++ {
			b, h := it/s.H, it%s.H
			off := b*T*s.D + h*s.HD
			j.da(b, h, 0, T)
			if fused {
				attnHeadBackwardFused(a.DQ[off:], a.DK[off:], a.DV[off:], a.DA[off:], a.Q[off:], a.K[off:], a.V[off:],
					a.LSE[it*T:], sc, dp, T, s.HD, s.D, s.Scale)
			} else {
				ps, lse := backwardP(s, a, it, sc)
				attnHeadBackward(a.DQ[off:], a.DK[off:], a.DV[off:], a.DA[off:], a.Q[off:], a.K[off:], a.V[off:],
					lse, ps, dp, T, s.HD, s.D, s.Scale, j.blk)
			}
			j.unrotate(a.DQ[off:], 0, T)
			j.unrotate(a.DK[off:], 0, T)
		}
		return
	}
	for i := lo; i < hi; i++ {
		k := i % j.np
		it := j.p0 + k
		b, h := it/s.H, it%s.H
		off := b*T*s.D + h*s.HD
		sc, lse := backwardP(s, a, it, j.c.s[k*T*T:(k+1)*T*T])
		dp := j.c.dp[k*T*T : (k+1)*T*T]
		if j.cols {
			c0 := i / j.np * j.blk
			attnColsBackward(a.DK[off:], a.DV[off:], a.DA[off:], a.Q[off:], sc, dp, T, s.HD, s.D, c0, min(c0+j.blk, T))
			j.unrotate(a.DK[off:], c0, min(c0+j.blk, T))
			continue
		}
		r0 := (j.nb - 1 - i/j.np) * j.blk
		j.da(b, h, r0, min(r0+j.blk, T))
		attnRowsBackward(a.DQ[off:], a.DA[off:], a.Q[off:], a.K[off:], a.V[off:], lse, sc, dp,
			T, s.HD, s.D, s.Scale, r0, min(r0+j.blk, T))
		j.unrotate(a.DQ[off:], r0, min(r0+j.blk, T))
	}
}

// unrotate is RoPE's backward (ropeBackward: rotation by −θ) on positions [t0, t1) of one head's
// gradient g (a strided view, row t at t·D), right after an item computed them: the rotation is
// per head and per position, so each block of rows can be unrotated alone. With GQA, g is the
// repeated-width dK, unrotated before kvReduce sums it over the query heads: the heads sharing a
// KV head share its angles, so the two commute. Nothing with NoPE (no tables).
func (j *attnBwdJob) unrotate(g []float32, t0, t1 int) {
	if s := j.s; s.Cos != nil && t1 > t0 {
		ropeRows(g[t0*s.D:], t1-t0, t0, s.T, s.HD, s.D, s.HD, s.Cos, s.Sin, -1)
	}
}

// FFNForward, one loop of two stages (gemmChain): H1 = X2n·W1ᵀ and H3 = X2n·W3ᵀ on one grid,
// each block followed by Gate = silu(H1)⊙H3 on it (swigluPost); then Y = Gate·W2ᵀ (with the
// model's chain on its rows), each block of rows as soon as its Gate rows are done.
func (c *CPU) FFNForward(l int, s Shape, w *Layer, a *LayerActs) error {
	t := c.team(s)
	rows, _ := c.takeFused()
	n, d, f := s.N, s.D, s.F
	wt := w.t()
	y := proj(a.Y, a.Gate, w.W2, wt.W2, n, f, d)
	y.rowPost = rows
	if s.Act != SwiGLU { // a plain MLP (arch.go): Gate = act(H1) on each block of H1
		h1 := proj(a.H1, a.X2n, w.W1, wt.W1, n, d, f)
		h1.post = c.actPost(actJob{act: s.Act, out: a.Gate[:n*f], h: a.H1[:n*f]}, f)
		t.gemmChain([]gemmSpec{h1}, []gemmSpec{y})
		return nil
	}
	h1, h3 := proj(a.H1, a.X2n, w.W1, wt.W1, n, d, f), proj(a.H3, a.X2n, w.W3, wt.W3, n, d, f)
	h3.post = swigluPost(t, swigluJob{gate: a.Gate[:n*f], h1: a.H1[:n*f], h3: a.H3[:n*f]}, f)
	t.gemmChain([]gemmSpec{h1, h3}, []gemmSpec{y})
	return nil
}

// FFNBackward: DGate = DY·W2, each block followed by the SwiGLU backward into DH1, DH3 on it
// (swigluPost); then DX2n = DH1·W1 + DH3·W3 on one grid (with the model's chain on its rows).
// With the model's products (the FFN's weight gradients, fuseGemms: they read every row of DH1
// and DH3) DX2n is a second loop, and they run in it; without (deferred weight gradients), the
// two are one loop of two stages (gemmChain), DX2n's rows starting as soon as theirs are done.
func (c *CPU) FFNBackward(l int, s Shape, w *Layer, a *LayerActs) error {
	t := c.team(s)
	rows, more := c.takeFused()
	n, d, f := s.N, s.D, s.F
	dg := linearInput(a.DGate, a.DY, w.W2.W, n, f, d, 0)
	dx := linearInput(a.DX2n, a.DH1, w.W1.W, n, d, f, 0)
	dx.rowPost = rows
	second, ns := [2]gemmSpec{dx}, 1
	if s.Act != SwiGLU { // DH1 = the activation's backward on each block of DGate
		dg.post = c.actPost(actJob{act: s.Act, bwd: true, out: a.DH1[:n*f], h: a.H1[:n*f], dg: a.DGate[:n*f]}, f)
	} else {
		dg.post = swigluPost(t, swigluJob{bwd: true, gate: a.DGate[:n*f], h1: a.H1[:n*f], h3: a.H3[:n*f],
			dh1: a.DH1[:n*f], dh3: a.DH3[:n*f]}, f)
		second[1], ns = linearInput(a.DX2n, a.DH3, w.W3.W, n, d, f, 1), 2
	}
	if len(more) == 0 {
		t.gemmChain([]gemmSpec{dg}, second[:ns])
		return nil
	}
	t.gemms(dg)
	t.gemmLoop(second[:ns], more)
	return nil
}
