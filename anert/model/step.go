package model

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/internal/par"
)

// buffers is every activation and gradient buffer, sized for rows = B·T tokens and cls
// classifier rows, grown (never shrunk) when a call needs more; a step allocates none.
type buffers struct {
	rows, cls int
	sets      int            // sets of shared scratch: 1, or 2 for an async backend (layer l uses set l mod 2)
	inPlace   bool           // DH1, DH3 are the layer's H1, H3 (inPlaceDH; else the shared set's)
	dh        [][2][]float32 // per set: the shared DH1, DH3 when not in place (allocated when first needed)
	acts      []LayerActs
	xL        []float32 // [N, D] output of the last layer
	xf        []float32 // [N, D] RMSNorm(xL, g_final)
	rf        []float32 // [N]    its 1/rms
	dx        []float32 // [N, D] gradient of the residual stream
	dxf       []float32 // [N, D] gradient of xf
	logits    []float32 // [N, cls] logits, then capped logits z, then dlogits in place
	ec, gec   []float32 // [cls, D] compact classifier E_c (gathered) and its gradient
	tgt       []int32   // [N] targets as classifier rows
	lossPart  []float64 // per-part partial loss sums
}

// ensure grows the buffers to hold n token rows, the current classifier size and w goroutines
// (and a second set of shared scratch for an async backend, see dwQueue; tune.deferSets when the
// weight gradients are deferred).
func (m *Model) ensure(n, w int) {
	D, F, H, L := m.cfg.Dim, m.cfg.FFN, m.cfg.Heads, m.cfg.Layers
	KV, KVD, gated := m.cfg.KV(), m.cfg.KV()*m.cfg.HeadDim(), m.act == SwiGLU
	b := &m.buf
	sets := 1
	if m.async() {
		sets = 2
	} else if m.defers(w) {
		sets = min(max(2, tune.deferSets), L)
	}
	inPlace, grown := m.inPlaceDH(), false
	if n > b.rows || sets != b.sets { // sets change with the scheduling (WithTune), never in training
		n, b.sets = max(n, b.rows), sets
		f := func(k int) []float32 { return make([]float32, k) }
		// opt is f(k) when an architecture option needs the buffer, else nil (arch.go).
		opt := func(on bool, k int) []float32 {
			if !on {
				return nil
			}
			return f(k)
		}
		nd, nf, nkv := n*D, n*F, n*KVD
		gqa, qkn := KV != H, m.cfg.QKNorm
		shared := make([]LayerActs, b.sets)
		for i := range shared {
			shared[i] = LayerActs{O: f(nd), Y: f(nd), DY: f(nd), DGate: f(nf),
				DX2n: f(nd), DO: f(nd), DA: f(nd), DQ: f(nd), DK: f(nkv), DV: f(nkv), DXn: f(nd),
				KC: opt(gqa, nkv), VC: opt(gqa, nkv), DKE: opt(gqa, nd), DVE: opt(gqa, nd),
				DQN: opt(qkn, nd), DKN: opt(qkn, nkv)}
		}
		b.acts = make([]LayerActs, L)
		for l := range b.acts {
			a := shared[l%b.sets]
			a.X, a.Xn, a.RAtt, a.Q, a.K, a.V, a.A = f(nd), f(nd), f(n), f(nd), f(nd), f(nd), f(nd)
			a.LSE = f(n * H)
			a.X2, a.X2n, a.RFFN, a.H1, a.H3, a.Gate = f(nd), f(nd), f(n), f(nf), opt(gated, nf), f(nf)
			a.QRaw, a.KRaw, a.RQ, a.RK = opt(qkn, nd), opt(qkn, nkv), opt(qkn, n*H), opt(qkn, n*KV)
			b.acts[l] = a
		}
		b.dh, grown = make([][2][]float32, b.sets), true // pointDH below
		b.xL, b.xf, b.rf, b.dx, b.dxf = f(nd), f(nd), f(n), f(nd), f(nd)
		b.tgt = make([]int32, n)
		b.rows, b.cls = n, 0 // logits are regrown below
	}
	if grown || inPlace != b.inPlace {
		m.pointDH(inPlace)
	}
	if np := m.keptPFloats(b.rows, w); np > 0 {
		for l := range b.acts {
			if a := &b.acts[l]; len(a.P) < np {
				a.P = make([]float32, np) // kept once made: an A/B of keepp allocates once
			}
		}
	}
	if c := m.classes(); c > b.cls || len(b.logits) < b.rows*c {
		b.cls = max(c, b.cls)
		b.logits = make([]float32, b.rows*b.cls)
		if m.cfg.Compact {
			b.ec, b.gec = make([]float32, b.cls*D), make([]float32, b.cls*D)
		}
	}
	if len(m.dwd.jobs) < 2*b.sets {
		m.dwd.jobs = make([]dwJob, 2*b.sets) // no job is open between steps
	}
	m.team = teamFor(m.team, w, D, m.pool)
	// the loss's parts: one per goroutine in a loop of its own, one per block of rows as the
	// classifier's row epilogue (headChained; a grid too small for 16-row bounds has 1-row blocks)
	if parts := max(m.team.chunks(b.rows, 1), b.rows); len(b.lossPart) < parts {
		b.lossPart = make([]float64, parts)
	}
}

// inPlaceDH reports whether the FFN backward writes DH1 and DH3 over the layer's H1 and H3
// (tune.inPlaceSwiGLU): on the CPU backend, whose activation backward reads each element of H1
// and H3 before it writes the gradient's, and nothing reads them after it. Other backends keep
// their own buffers' contract (LayerActs).
func (m *Model) inPlaceDH() bool {
	_, cpu := m.backend.(*CPU)
	return cpu && tune.inPlaceSwiGLU
}

// keepsP reports whether a step on w goroutines keeps each pair's softmax P for the backward
// (LayerActs.P): on the CPU backend with tune.keepP, where its attention runs on the BLAS path.
func (m *Model) keepsP(w int) bool {
	_, cpu := m.backend.(*CPU)
	return cpu && tune.keepP && !attnFusedFwd(m.cfg.HeadDim(), w, m.cfg.Seq)
}

// keptPFloats is the floats of P [B·H·T·T] = rows·H·T a layer keeps for a step of rows tokens on w
// goroutines (LayerActs.P), 0 where it keeps none (keepsP).
func (m *Model) keptPFloats(rows, w int) int {
	if !m.keepsP(w) {
		return 0
	}
	return rows * m.cfg.Heads * m.cfg.Seq
}

// pointDH makes every layer's DH1, DH3 its H1, H3 (inPlace) or its scratch set's, allocating
// those the first time they are needed: switching between the two (WithTune) reallocates nothing
// else, so that an A/B of the knob (anebench --alt swip=1) measures steps, not allocations.
func (m *Model) pointDH(inPlace bool) {
	b := &m.buf
	b.inPlace = inPlace
	for l := range b.acts {
		a := &b.acts[l]
		if inPlace {
			a.DH1, a.DH3 = a.H1, a.H3
			continue
		}
		dh := &b.dh[l%b.sets]
		if dh[0] == nil {
			dh[0] = make([]float32, len(a.H1))
			if a.H3 != nil { // SwiGLU (a plain MLP has no H3, DH3)
				dh[1] = make([]float32, len(a.H3))
			}
		}
		a.DH1, a.DH3 = dh[0], dh[1]
	}
}

// SavedFloats is the number of float32 values the forward pass of a batch of batch sequences
// keeps for the backward pass (N = batch·Seq tokens, C classifier rows):
//
//	per layer: X, Xn, Q, K, V, A, X2, X2n [N, D] · H1, H3, Gate [N, F] · 1/rms ×2 [N] · LSE [N·H]
//	           (no H3 for a plain MLP; with QK-norm also raw q [N, D], raw k [N, KVD], 1/rms [N·(H+KV)];
//	           where the last step kept the attention's P, tune.keepP, P [N·H·T])
//	head:      xL, xf [N, D] · 1/rms [N] · logits [N, C]
//
// (×4 bytes: the "saved activations" of a memory budget; the backward's scratch is not counted).
func (m *Model) SavedFloats(batch int) int {
	N, D, F, H := batch*m.cfg.Seq, m.cfg.Dim, m.cfg.FFN, m.cfg.Heads
	layer := 8*N*D + 3*N*F + 2*N + N*H
	if m.act != SwiGLU {
		layer -= N * F
	}
	if m.cfg.QKNorm {
		KV := m.cfg.KV()
		layer += N*D + N*KV*m.cfg.HeadDim() + N*(H+KV)
	}
	if m.team != nil {
		layer += m.keptPFloats(N, m.team.w) // P (tune.keepP)
	}
	return m.cfg.Layers*layer + 2*N*D + N + N*m.classes()
}

// shape is the Shape of a call on B sequences of T tokens with w goroutines.
func (m *Model) shape(B, T, w int) Shape {
	hd := m.cfg.HeadDim()
	return Shape{B: B, T: T, N: B * T, D: m.cfg.Dim, H: m.cfg.Heads, HD: hd, F: m.cfg.FFN,
		Scale: float32(1 / math.Sqrt(float64(hd))), Workers: w, Cos: m.cos, Sin: m.sin,
		KV: m.cfg.KV(), Act: m.act, NormEps: float32(m.cfg.NormEps)}
}

// prepare checks a batch (CheckBatch, TargetRows), grows the buffers (for w goroutines) and
// stores the targets as classifier rows in buf.tgt.
func (m *Model) prepare(inputs, targets []uint16, batch, w int) error {
	if err := CheckBatch(inputs, targets, batch, m.cfg.Seq, m.cfg.Vocab); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if m.cfg.Compact && m.active == nil {
		return errors.New("model: model.compact is true but SetActive was not called: pass it the ids seen in the data")
	}
	m.ensure(batch*m.cfg.Seq, w)
	var to []int32
	if m.cfg.Compact {
		to = m.toCompact
	}
	if err := TargetRows(m.buf.tgt, targets, to, len(m.active)); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}

// CheckBatch checks a micro-batch for a model of seq tokens per sequence and vocab ids: batch is
// positive, there are batch·seq inputs and targets, and every id is inside the vocabulary. Every
// backend checks a batch with it, so a bad batch gets the same error on each.
func CheckBatch(inputs, targets []uint16, batch, seq, vocab int) error {
	if batch <= 0 {
		return fmt.Errorf("batch = %d: must be positive", batch)
	}
	n := batch * seq
	if len(inputs) != n || len(targets) != n {
		return fmt.Errorf("got %d inputs and %d targets; batch %d × model.seq %d needs %d of each",
			len(inputs), len(targets), batch, seq, n)
	}
	for _, c := range []struct {
		what string
		ids  []uint16
	}{{"input", inputs}, {"target", targets}} {
		for i, id := range c.ids {
			if int(id) >= vocab {
				return fmt.Errorf("%s token id %d at position %d is outside the vocabulary (model.vocab = %d): "+
					"does the data's tokenizer match the config?", c.what, id, i, vocab)
			}
		}
	}
	return nil
}

// TargetRows writes the classifier row of each target into rows[:len(targets)]: the id itself, or
// with vocab compaction (toCompact: full id → compact row, −1 for an inactive id; nil without
// compaction, active ids in all) its compact row. A target that is not active is an error.
func TargetRows(rows []int32, targets []uint16, toCompact []int32, active int) error {
	for i, id := range targets {
		c := int32(id)
		if toCompact != nil {
			if c = toCompact[id]; c < 0 {
				return fmt.Errorf("target token id %d at position %d is not in the active vocabulary "+
					"(%d ids): build the active set from all the data, validation included", id, i, active)
			}
		}
		rows[i] = c
	}
	return nil
}

// forwardLayers runs the embedding and every block on B sequences of T tokens, leaving the last
// block's output in buf.xL and its final RMSNorm in buf.xf, buf.rf. Each residual add and the
// RMSNorm that reads its output are one chain over blocks of rows (both are row-local), run on
// each block of rows of O (of Y) as the backend's GEMM completes it when the backend can (fuse),
// else as one loop after the call.
func (m *Model) forwardLayers(inputs []uint16, s Shape) error {
	n, d, t, eps := s.N, s.D, m.team, float32(m.cfg.NormEps)
	acts, b := m.buf.acts, &m.buf
	// x = E[ids], then x_n = RMSNorm(x, g_attn) of the first layer: one chain over blocks of rows.
	// With a deferred update, each fence first finishes the weights the next call reads.
	m.currentWT(s.Workers)
	m.fence(updFirst)
	t.rowLoop(n, t.embedOp(acts[0].X, m.Embed.W, inputs[:n], d),
		t.rmsnormOp(acts[0].Xn, acts[0].RAtt, acts[0].X, m.Layers[0].AttnNorm.W, d, eps))
	for l := range m.Layers {
		p, a := &m.Layers[l], &acts[l]
		// x2 = x + α·o, then x2n = RMSNorm(x2, g_ffn).
		ch := t.chainOf(t.residualOp(a.X2, a.X, a.O, m.alpha, d), t.rmsnormOp(a.X2n, a.RFFN, a.X2, p.FFNNorm.W, d, eps))
		fused := m.fuse(ch)
		m.fence(updAttn(l))
		if err := m.backend.AttnForward(l, s, p, a); err != nil {
			return fmt.Errorf("model: layer %d attention on %s backend: %w", l, m.backend.Name(), err)
		}
		if !fused {
			t.runChain(n, ch)
		}
		// x' = x2 + α·y, then the next layer's attention RMSNorm (after the last: the final one).
		next, nextn, r, g := b.xL, b.xf, b.rf, m.FinalNorm.W
		if l+1 < len(acts) {
			an := &acts[l+1]
			next, nextn, r, g = an.X, an.Xn, an.RAtt, m.Layers[l+1].AttnNorm.W
		}
		ch = t.chainOf(t.residualOp(next, a.X2, a.Y, m.alpha, d), t.rmsnormOp(nextn, r, next, g, d, eps))
		fused = m.fuse(ch)
		m.fence(updFFN(l))
		if err := m.backend.FFNForward(l, s, p, a); err != nil {
			return fmt.Errorf("model: layer %d FFN on %s backend: %w", l, m.backend.Name(), err)
		}
		if !fused {
			t.runChain(n, ch)
		}
	}
	m.FinishUpdate() // an untied head's part, and every part before the backward pass writes a gradient
	return nil
}

// rowFuser is a backend that can run the model's row-local chain after a call inside the call's
// last GEMM loop, on each block of rows of its output as soon as it is complete (CPU.fuseRows).
type rowFuser interface{ fuseRows(rowChain) }

// fuse hands ch to the backend for its next call, if it can take it; otherwise the caller runs
// it after the call (runChain).
func (m *Model) fuse(ch rowChain) bool {
	f, ok := m.backend.(rowFuser)
	if ok {
		f.fuseRows(ch)
	}
	return ok
}

// headChained reports whether the head runs its loss (and in training dxf) in the classifier's
// loop (tune.headChain): on more than 4 goroutines, where a product is cut into a grid of blocks.
func (m *Model) headChained() bool { return tune.headChain > 0 && m.team.w > 4 }

// headDXF reports whether a training step's head loop computes dxf too (hchain=2), so that the
// backward pass does not.
func (m *Model) headDXF() bool { return m.headChained() && tune.headChain >= 2 }

// classifier returns E_c: E's values (the untied head's, if any), or with compaction its active
// rows gathered into buf.ec.
func (m *Model) classifier() []float32 {
	if !m.cfg.Compact {
		return m.headParam().W
	}
	gatherRows(m.buf.ec, m.headParam().W, m.active, m.cfg.Dim)
	return m.buf.ec
}

// head runs the classifier, the soft-cap and the loss over the n rows of buf.xf (the final norm
// of buf.xL, from forwardLayers), returning the mean loss. With train, it leaves dlogits =
// gradScale·∂loss/∂logits in buf.logits.
//
// On many goroutines (tune.headChain) the loss is the classifier's row epilogue, and with 2 a
// training step's dxf = dlogits·E_c follows in the same loop (headDXF).
func (m *Model) head(n int, ec []float32, train bool, gradScale float32) float64 {
	d, c, t := m.cfg.Dim, m.classes(), m.team
	b := &m.buf
	parts := t.chunks(n, 1)
	j := &t.loss
	*j = lossJob{logits: b.logits[:n*c], tgt: b.tgt[:n], part: b.lossPart[:parts], c: c,
		capc: float32(m.cfg.Softcap), scale: gradScale / float32(n), train: train}
	if m.headChained() {
		cls := classifierSpec(b.logits, b.xf, ec, n, c, d)
		cls.rowPost = j // its prepare cuts j.part to the grid's blocks of rows
		if train && m.headDXF() {
			t.gemmChain([]gemmSpec{cls}, []gemmSpec{classifierInputSpec(b.dxf, b.logits[:n*c], ec, n, c, d)})
		} else {
			t.gemms(cls)
		}
	} else {
		classifierForward(t, b.logits, b.xf, ec, n, c, d)
		t.run(n, parts, j)
	}
	var sum float64
	for _, v := range j.part {
		sum += v
	}
	return sum / float64(n)
}

// ForwardBackward runs one micro-step on batch sequences (inputs and targets of batch·Seq ids
// each, sequence b at [b·Seq, (b+1)·Seq)) and returns the mean loss over the batch·Seq tokens.
// It ADDS the gradients of gradScale·loss to every Param.G (call ZeroGrad between updates):
// gradScale carries loss scaling and 1/accum. Bad ids are an error, and then no gradient changes.
func (m *Model) ForwardBackward(inputs, targets []uint16, batch int, gradScale float32) (float64, error) {
	w := m.beginStep()
	if k, per := m.splitWays(batch, w); k > 1 {
		return m.forwardBackwardSplit(inputs, targets, batch, gradScale, k, per)
	}
	return m.forwardBackward(inputs, targets, batch, gradScale, w)
}

// forwardBackward is ForwardBackward on w goroutines.
func (m *Model) forwardBackward(inputs, targets []uint16, batch int, gradScale float32, w int) (float64, error) {
	t0 := m.clock()
	if err := m.prepare(inputs, targets, batch, w); err != nil {
		return 0, err
	}
	s := m.shape(batch, m.cfg.Seq, w)
	if err := m.forwardLayers(inputs, s); err != nil {
		return 0, err
	}
	ec := m.classifier()
	loss := m.head(s.N, ec, true, gradScale)
	t1 := m.clock()
	err := m.backward(inputs, s, ec)
	if tm := m.timings; tm != nil {
		t2 := time.Now()
		tm.Forward += t1.Sub(t0)
		tm.Backward += t2.Sub(t1) // minus the weight gradients, below
		tm.Steps++
	}
	return loss, err
}

// Loss is the forward pass only: the mean loss over batch·Seq tokens, defined exactly as in
// ForwardBackward (soft-cap and compaction included). Buffers grow to the largest batch ever
// passed, so evaluate in batches no larger than training's to keep memory flat.
func (m *Model) Loss(inputs, targets []uint16, batch int) (float64, error) {
	w := m.beginStep()
	if err := m.prepare(inputs, targets, batch, w); err != nil {
		return 0, err
	}
	s := m.shape(batch, m.cfg.Seq, w)
	if err := m.forwardLayers(inputs, s); err != nil {
		return 0, err
	}
	return m.head(s.N, m.classifier(), false, 0), nil
}

// Timings is the wall time a model's ForwardBackward calls spent in each phase, accumulated while
// enabled with SetTimings. Forward is the embedding, the blocks, the final norm, the classifier and
// the loss with its gradient; Backward is the input-side backward pass (dlogits down to the
// embedding: the backend's FFNBackward and AttnBackward, the norms, the residuals); WeightGrad is
// the weight-gradient GEMMs (dW += dyᵀ·x, the classifier's included), which run inside the
// backward pass but are not counted in Backward — where they run apart: the CPU backend runs a
// layer's weight gradients inside its backward calls' last loops (Model.fuseDW), so with it
// WeightGrad is the classifier's and the layers' are in Backward; on many cores it defers them
// (dwDeferred), and WeightGrad is then the time the fences waited for what was left of them.
// With an async backend (AsyncBackend) the weight gradients overlap the backward pass: WeightGrad
// is then only the time the backward pass waited for them (the part the overlap did not hide), so
// the phases still add up to wall time.
type Timings struct {
	Forward, Backward, WeightGrad time.Duration
	Steps                         int // ForwardBackward calls timed
}

// SetTimings makes ForwardBackward accumulate its phase times into t (nil turns timing off, the
// default; timing costs a clock read around each phase).
func (m *Model) SetTimings(t *Timings) { m.timings = t }

// clock is the time now when timing is on (the zero time otherwise).
func (m *Model) clock() time.Time {
	if m.timings == nil {
		return time.Time{}
	}
	return time.Now()
}

// wgradSince adds the time since t0 to the weight-gradient phase (moving it out of Backward).
func (m *Model) wgradSince(t0 time.Time) {
	if tm := m.timings; tm != nil {
		d := time.Since(t0)
		tm.WeightGrad += d
		tm.Backward -= d
	}
}

// backward propagates buf.logits (holding dlogits) down to the embedding, accumulating every
// parameter gradient. With an async backend the weight-gradient GEMMs run on the dW worker,
// overlapping the backend's calls (dwQueue says how and why it is safe); otherwise in place.
func (m *Model) backward(inputs []uint16, s Shape, ec []float32) error {
	n, d, c, t := s.N, s.D, m.classes(), m.team
	b := &m.buf
	var q *dwQueue
	var after [2]int // per scratch set: jobs queued up to the last layer that used it
	if m.async() {
		q = &m.dwq
		q.start(m, s, ec)
		defer q.finish() // error returns: no job may outlive ForwardBackward
	}
	if m.dwd.on = m.defers(t.w); m.dwd.on {
		defer m.waitDW(-1, 0) // error returns too: no deferred part may outlive ForwardBackward
	}
	// The classifier's weight gradient reads only dlogits and xf, so it may be offered first, its
	// parts then filling the wait at the end of dxf's loop, which no other deferred work reaches
	// (tune.clsFirst).
	if tune.clsFirst {
		m.dW(q, dwClassifier, 0, s, ec)
	}
	if !m.headDXF() { // else the training step's head computed it
		classifierBackwardInput(t, b.dxf, b.logits[:n*c], ec, n, c, d)
	}
	if !tune.clsFirst {
		m.dW(q, dwClassifier, 0, s, ec)
	}
	dx := b.dx[:n*d]
	// dx = the final norm's backward (the residual stream's first gradient), and since the last
	// layer's x' = x2 + α·y, its dy = α·dx.
	nb, ch := m.normBackward(t, dx, b.dxf, b.xL, b.rf, m.FinalNorm.W, d, true, b.acts[len(m.Layers)-1].DY)
	t.runChain(n, ch)
	nb.addTo(m.FinalNorm.G)
	for l := len(m.Layers) - 1; l >= 0; l-- {
		p, a := &m.Layers[l], &b.acts[l]
		// The FFN's backward; then dx2 = dx + the FFN norm's backward and, as x2 = x + α·o,
		// do = α·dx2 (dx2 flows on to x): on each block of rows of DX2n as the backend completes
		// it when it can (fuse), and the FFN's weight gradients in its last loop (fuseDW).
		// Deferred weight gradients read the scratch set of their layer (l mod sets): the
		// attention's of layer l+sets reads the one this layer's backward writes, and the FFN's of
		// layer l−1+sets the one its attention norm's chain writes dy to.
		m.waitDW(dwAttn, l+b.sets)
		nb, ch := m.normBackward(t, dx, a.DX2n, a.X2, a.RFFN, p.FFNNorm.W, d, false, a.DO)
		fused, dwFused := m.fuse(ch), m.fuseDW(q, dwFFN, l, s)
		if err := m.backend.FFNBackward(l, s, p, a); err != nil {
			return fmt.Errorf("model: layer %d FFN backward on %s backend: %w", l, m.backend.Name(), err)
		}
		if !fused {
			t.runChain(n, ch)
		}
		nb.addTo(p.FFNNorm.G)
		if !dwFused { // async: queued now, to overlap AttnBackward
			m.dW(q, dwFFN, l, s, ec)
		}
		// The attention's backward; then dx += the attention norm's backward and, as the layer
		// below's x' = x2 + α·y, its dy = α·dx: likewise on DXn's blocks of rows.
		var dy []float32
		if l > 0 {
			dy = b.acts[l-1].DY
		}
		m.waitDW(dwFFN, l-1+b.sets)
		nb, ch = m.normBackward(t, dx, a.DXn, a.X, a.RAtt, p.AttnNorm.W, d, false, dy)
		fused, dwFused = m.fuse(ch), m.fuseDW(q, dwAttn, l, s)
		if fused && l > 0 && q != nil { // layer l+1's jobs read the scratch set of layer l−1 (dy)
			q.wait(after[(l-1)%2])
		}
		if err := m.backend.AttnBackward(l, s, p, a); err != nil {
			return fmt.Errorf("model: layer %d attention backward on %s backend: %w", l, m.backend.Name(), err)
		}
		if !dwFused {
			m.dW(q, dwAttn, l, s, ec)
		}
		if !fused {
			if l > 0 && q != nil {
				q.wait(after[(l-1)%2])
			}
			t.runChain(n, ch)
		}
		nb.addTo(p.AttnNorm.G)
		if q != nil {
			after[l%2] = q.sent
		}
	}
	if q != nil {
		q.finish() // the classifier's gE accumulation comes before the embedding's
	}
	m.waitDW(-1, 0)
	embedBackward(t, m.Embed.G, dx, inputs[:n], d)
	return nil
}

// normBackward is the chain (one loop over blocks of rows) of the backward of x_n =
// RMSNorm(x, g) and, when dy is not nil, of the residual add x = x_below + α·y that produced x:
//
//	dx += ∂x_n/∂x·dout   (rmsnormBackward; with first, dx = instead of +=),
//	dy  = α·dx           (residualBackward: the branch's gradient; dx flows on to x_below).
//
// After the chain has run, nb.addTo(gain's gradient) adds the gain's.
func (m *Model) normBackward(t *team, dx, dout, x, rinv, g []float32, d int, first bool, dy []float32) (nb *rmsnormBwdJob, ch rowChain) {
	nb = t.rmsnormBwdOp(dx, dout, x, rinv, g, d, first)
	if dy == nil {
		return nb, t.chainOf(nb)
	}
	return nb, t.chainOf(nb, t.residualBwdOp(dy, dx, m.alpha, d))
}

// gemmFuser is a backend that can run the model's products (a layer's weight gradients) in its
// next backward call's last loop (CPU.fuseGemms).
type gemmFuser interface{ fuseGemms([]gemmSpec) }

// fuseDW hands layer l's weight gradients of kind (dwFFN: to FFNBackward, dwAttn: to
// AttnBackward) to a synchronous backend that can run them in its last loop, with the input-side
// sum that reads the same d-quantities; reports whether it did (else the caller runs dW). Their
// time is then part of Backward.
func (m *Model) fuseDW(q *dwQueue, kind, l int, s Shape) bool {
	f, ok := m.backend.(gemmFuser)
	if !ok || q != nil || m.dwd.on {
		return false
	}
	f.fuseGemms(m.layerWeightGrads(&m.dwFused, kind, l, s))
	return true
}

// dW runs the weight-gradient GEMMs of kind (layer l) now on the step's team, timed as
// WeightGrad, or with q queues them on the dW worker, or on many cores defers them (deferDW).
func (m *Model) dW(q *dwQueue, kind, l int, s Shape, ec []float32) {
	if q != nil {
		q.submit(kind, l)
		return
	}
	if m.dwd.on {
		m.deferDW(kind, l, s)
		return
	}
	tw := m.clock()
	m.weightGrad(m.team, kind, l, s, ec)
	m.wgradSince(tw)
}

// Logits returns the next-token logits after ctx (its last Seq tokens if longer) over the FULL
// vocabulary, soft-capped like the loss's; with compaction, inactive ids get −Inf. For sampling:
// it allocates the returned slice.
func (m *Model) Logits(ctx []uint16) ([]float32, error) {
	V, d := m.cfg.Vocab, m.cfg.Dim
	if len(ctx) == 0 {
		return nil, errors.New("model: Logits needs at least one context token")
	}
	if len(ctx) > m.cfg.Seq {
		ctx = ctx[len(ctx)-m.cfg.Seq:]
	}
	for i, id := range ctx {
		if int(id) >= V {
			return nil, fmt.Errorf("model: context token id %d at position %d is outside the vocabulary (model.vocab = %d)", id, i, V)
		}
	}
	w := m.beginStep()
	m.ensure(m.cfg.Seq, w)
	s := m.shape(1, len(ctx), w)
	if err := m.forwardLayers(ctx, s); err != nil {
		return nil, err
	}
	b := &m.buf
	out := make([]float32, V)
	blas.Sgemm(false, true, 1, V, d, 1, b.xf[(s.N-1)*d:], d, m.headParam().W, d, 0, out, V)
	if c := float32(m.cfg.Softcap); c > 0 {
		softcapForward(out, out, c)
	}
	if m.cfg.Compact && m.active != nil {
		for id := range out {
			if m.toCompact[id] < 0 {
				out[id] = float32(math.Inf(-1))
			}
		}
	}
	return out, nil
}

// dwDeferred is a backward pass's weight gradients as deferred work (par.Defer), on many cores
// (cpuTune.deferMin goroutines or more) with the CPU backend. A third of the step's FLOPs, they are
// needed only by the optimizer: cut into small blocks, they are taken by goroutines that would
// otherwise wait at the end of the backward's loops (16 goroutines were busy 72% of a loop's time,
// waiting the rest for its slowest part), and what is left runs at the fence that needs them done.
//
// Why it is safe, as for the async backend's queue (dwQueue): each block of a parameter's
// gradient is one BLAS call on one goroutine, computed once; the shared scratch comes in S sets
// (layer l uses set l mod S; S = tune.deferSets, 2 by default), and each job is waited for before
// its set is written again: layer l's FFN products (they read DY, DH1, DH3) before
// AttnBackward(l+1−S), whose chain writes DY of layer l−S; its attention products (DO, DQ, DK,
// DV) before FFNBackward(l−S); the classifier's (dlogits, xf; into E's gradient with tied
// embeddings) before the embedding's backward. The gain gradients and the embedding's stay on the
// step's goroutine.
type dwDeferred struct {
	on      bool    // this backward pass defers
	scatter bool    // compaction: the classifier's job writes gE_c, to be added into E's gradient
	jobs    []dwJob // layer l's FFN products in jobs[2l mod 2·sets], its attention's in jobs[(2l+1) mod 2·sets]
	cls     dwJob   // the classifier's
}

// dwJob is one deferred set of weight-gradient products.
type dwJob struct {
	spec [maxGemms]gemmSpec
	g    gemmJob
	d    par.Deferred
}

// defers reports whether a backward pass on w goroutines defers its weight gradients.
func (m *Model) defers(w int) bool { return defersOn(m.backend, w) }

// defersOn is defers for a model on backend b: the CPU backend (a gemmFuser, never async).
func defersOn(b Backend, w int) bool {
	_, cpu := b.(gemmFuser)
	return cpu && tune.deferMin > 0 && w >= tune.deferMin && !isAsync(b)
}

// dwSlot is the job of kind (dwFFN, dwAttn) for layer l.
func (m *Model) dwSlot(kind, l int) *dwJob {
	if kind == dwClassifier {
		return &m.dwd.cls
	}
	return &m.dwd.jobs[(2*l+kind-dwFFN)%len(m.dwd.jobs)]
}

// deferDW defers the weight-gradient products of kind (layer l), in blocks of about
// cpuTune.deferBlocks per goroutine.
func (m *Model) deferDW(kind, l int, s Shape) {
	t, j := m.team, m.dwSlot(kind, l)
	gs := j.spec[:0]
	if kind == dwClassifier {
		n, d, c, b := s.N, s.D, m.classes(), &m.buf
		dst := m.headParam().G
		if m.cfg.Compact {
			dst, m.dwd.scatter = b.gec, true
			clear(b.gec[:c*d])
		}
		j.spec[0] = classifierWeightSpec(dst, b.logits[:n*c], b.xf, n, c, d)
		gs = j.spec[:1]
	} else {
		gs = m.layerWeightGrads(&j.spec, kind, l, s)
	}
	j.g.set(gs[:1], gs[1:])
	j.g.plan(t.w*tune.deferBlocks, t.lone())
	t.pool.Defer(&j.d, t.w, j.g.blocks(), j.g.blocks(), &j.g)
}

// waitDW finishes the deferred products of kind for layer l (nothing when l is not a layer, or
// they are done), timed as WeightGrad; kind −1: all of them, the classifier's last (with
// compaction, then added into E's gradient).
func (m *Model) waitDW(kind, l int) {
	if !m.dwd.on {
		return
	}
	tw := m.clock()
	switch {
	case kind < 0:
		for i := range m.dwd.jobs {
			m.dwd.jobs[i].d.Wait(m.team.w)
		}
		m.dwd.cls.d.Wait(m.team.w)
		if m.dwd.scatter {
			scatterAddRows(m.headParam().G, m.buf.gec, m.active, m.cfg.Dim)
			m.dwd.scatter = false
		}
	case l >= 0 && l < len(m.Layers):
		m.dwSlot(kind, l).d.Wait(m.team.w)
	}
	m.wgradSince(tw)
}
