package model

// CPU is the reference Backend: fp32 GEMMs through anert/blas over all N = B·T tokens at once
// (rows split over s.Workers goroutines), and attention per (sequence, head) with GEMMs on
// strided views, the (sequence, head) pairs spread over the same goroutines.
type CPU struct {
	// Block is the query/key block of the causal attention GEMMs (see attnHeadForward).
	Block int

	s, dp []float32 // per-worker T×T scratch
}

// NewCPU returns the CPU backend.
func NewCPU() *CPU { return &CPU{Block: 64} }

// Name is "cpu".
func (c *CPU) Name() string { return "cpu" }

// WeightsChanged does nothing: the CPU backend reads the weights in place.
func (c *CPU) WeightsChanged() {}

// AttnForward: q, k, v = Xn·Wq/k/vᵀ; RoPE on q, k; per (b, h) causal attention into A and LSE;
// O = A·Woᵀ.
func (c *CPU) AttnForward(l int, s Shape, w *Layer, a *LayerActs) error {
	n, d, nw := s.N, s.D, s.Workers
	linearForward(a.Q, a.Xn, w.Wq.W, n, d, d, nw)
	linearForward(a.K, a.Xn, w.Wk.W, n, d, d, nw)
	linearForward(a.V, a.Xn, w.Wv.W, n, d, d, nw)
	if s.Cos != nil {
		ropeForward(a.Q, s.Cos, s.Sin, n, s.T, d, s.HD, nw)
		ropeForward(a.K, s.Cos, s.Sin, n, s.T, d, s.HD, nw)
	}
	c.heads(s, func(wk, b, h int) {
		off := b*s.T*d + h*s.HD
		attnHeadForward(a.A[off:], a.LSE[(b*s.H+h)*s.T:], a.Q[off:], a.K[off:], a.V[off:],
			c.s[wk*s.T*s.T:], s.T, s.HD, d, s.Scale, c.Block)
	})
	linearForward(a.O, a.A, w.Wo.W, n, d, d, nw)
	return nil
}

// AttnBackward: DA = DO·Wo; per (b, h) the SDPA backward into DQ, DK, DV; RoPE backward on DQ,
// DK; DXn = DQ·Wq + DK·Wk + DV·Wv.
func (c *CPU) AttnBackward(l int, s Shape, w *Layer, a *LayerActs) error {
	n, d, nw := s.N, s.D, s.Workers
	linearBackwardInput(a.DA, a.DO, w.Wo.W, n, d, d, 0, nw)
	c.heads(s, func(wk, b, h int) {
		off := b*s.T*d + h*s.HD
		tt := s.T * s.T
		attnHeadBackward(a.DQ[off:], a.DK[off:], a.DV[off:], a.DA[off:], a.Q[off:], a.K[off:],
			a.V[off:], a.LSE[(b*s.H+h)*s.T:], c.s[wk*tt:], c.dp[wk*tt:], s.T, s.HD, d, s.Scale, c.Block)
	})
	if s.Cos != nil {
		ropeBackward(a.DQ, s.Cos, s.Sin, n, s.T, d, s.HD, nw)
		ropeBackward(a.DK, s.Cos, s.Sin, n, s.T, d, s.HD, nw)
	}
	linearBackwardInput(a.DXn, a.DQ, w.Wq.W, n, d, d, 0, nw)
	linearBackwardInput(a.DXn, a.DK, w.Wk.W, n, d, d, 1, nw)
	linearBackwardInput(a.DXn, a.DV, w.Wv.W, n, d, d, 1, nw)
	return nil
}

// FFNForward: H1 = X2n·W1ᵀ, H3 = X2n·W3ᵀ, Gate = silu(H1)⊙H3, Y = Gate·W2ᵀ.
func (c *CPU) FFNForward(l int, s Shape, w *Layer, a *LayerActs) error {
	n, d, f, nw := s.N, s.D, s.F, s.Workers
	linearForward(a.H1, a.X2n, w.W1.W, n, d, f, nw)
	linearForward(a.H3, a.X2n, w.W3.W, n, d, f, nw)
	swigluForward(a.Gate, a.H1, a.H3, n*f, nw)
	linearForward(a.Y, a.Gate, w.W2.W, n, f, d, nw)
	return nil
}

// FFNBackward: DGate = DY·W2, SwiGLU backward into DH1, DH3, DX2n = DH1·W1 + DH3·W3.
func (c *CPU) FFNBackward(l int, s Shape, w *Layer, a *LayerActs) error {
	n, d, f, nw := s.N, s.D, s.F, s.Workers
	linearBackwardInput(a.DGate, a.DY, w.W2.W, n, f, d, 0, nw)
	swigluBackward(a.DH1, a.DH3, a.DGate, a.H1, a.H3, n*f, nw)
	linearBackwardInput(a.DX2n, a.DH1, w.W1.W, n, d, f, 0, nw)
	linearBackwardInput(a.DX2n, a.DH3, w.W3.W, n, d, f, 1, nw)
	return nil
}

// heads runs fn(worker, b, h) for every (sequence, head) pair, spread over s.Workers goroutines,
// and grows the per-worker scratch.
func (c *CPU) heads(s Shape, fn func(wk, b, h int)) {
	nw := max(1, s.Workers)
	if need := nw * s.T * s.T; len(c.s) < need {
		c.s, c.dp = make([]float32, need), make([]float32, need)
	}
	if c.Block <= 0 {
		c.Block = s.T
	}
	parallelFor(nw, s.B*s.H, 1, func(wk, lo, hi int) {
		for it := lo; it < hi; it++ {
			fn(wk, it/s.H, it%s.H)
		}
	})
}
