package model

// CPU is the reference Backend: fp32 GEMMs through anert/blas over all N = B·T tokens at once
// (rows split over s.Workers goroutines), and attention per (sequence, head) with GEMMs on
// strided views, the (sequence, head) pairs spread over the same goroutines.
type CPU struct {
	// Block is the query/key block of the causal attention GEMMs (see attnHeadForward).
	Block int

	t     *team
	s, dp []float32 // per-worker T×T scratch
	act   actJob    // the architecture options' loop bodies (arch.go), reused so a step allocates nothing
	kv    kvJob
	gqa   LayerActs // attnGrads' view
}

// NewCPU returns the CPU backend.
func NewCPU() *CPU { return &CPU{Block: 64} }

// Name is "cpu".
func (c *CPU) Name() string { return "cpu" }

// WeightsChanged does nothing: the CPU backend reads the weights in place.
func (c *CPU) WeightsChanged() {}

// team returns the backend's team for s.Workers goroutines and grows the per-worker scratch.
func (c *CPU) team(s Shape) *team {
	w := max(1, s.Workers)
	if c.t == nil || c.t.w != w {
		c.t = newTeam(w)
	}
	if need := w * s.T * s.T; len(c.s) < need {
		c.s, c.dp = make([]float32, need), make([]float32, need)
	}
	if c.Block <= 0 {
		c.Block = s.T
	}
	return c.t
}

// AttnForward: qkvForward (q, k, v = Xn·Wq/k/vᵀ; QK-norm, RoPE on q, k; the GQA repeat); per
// (b, h) causal attention into A and LSE; O = A·Woᵀ.
func (c *CPU) AttnForward(l int, s Shape, w *Layer, a *LayerActs) error {
	t := c.team(s)
	n, d := s.N, s.D
	c.qkvForward(t, s, w, a) // projections, QK-norm, RoPE, GQA repeat (arch.go)
	j := &t.attnFwd
	*j = attnFwdJob{c: c, s: s, a: a}
	t.run(s.B*s.H, s.B*s.H, j)
	linearForward(t, a.O, a.A, w.Wo.W, n, d, d)
	return nil
}

// attnFwdJob runs attnHeadForward on (sequence, head) pairs it = b·H + h.
type attnFwdJob struct {
	c *CPU
	s Shape
	a *LayerActs
}

func (j *attnFwdJob) Run(wk, _, lo, hi int) {
	s, a, T := j.s, j.a, j.s.T
	for it := lo; it < hi; it++ {
		b, h := it/s.H, it%s.H
		off := b*T*s.D + h*s.HD
		attnHeadForward(a.A[off:], a.LSE[it*T:], a.Q[off:], a.K[off:], a.V[off:],
			j.c.s[wk*T*T:], T, s.HD, s.D, s.Scale, j.c.Block)
	}
}

// AttnBackward: DA = DO·Wo; per (b, h) the SDPA backward into DQ, DK, DV; then qkvBackward: the
// GQA reduce, RoPE backward on DQ, DK, the QK-norm backward, DXn = DQ·Wq + DK·Wk + DV·Wv.
func (c *CPU) AttnBackward(l int, s Shape, w *Layer, a *LayerActs) error {
	t := c.team(s)
	n, d := s.N, s.D
	linearBackwardInput(t, a.DA, a.DO, w.Wo.W, n, d, d, 0)
	j := &t.attnBwd
	*j = attnBwdJob{c: c, s: s, a: c.attnGrads(s, a)}
	t.run(s.B*s.H, s.B*s.H, j)
	c.qkvBackward(t, s, w, a) // GQA reduce, RoPE, QK-norm backward, DXn (arch.go)
	return nil
}

// attnBwdJob runs attnHeadBackward on (sequence, head) pairs it = b·H + h.
type attnBwdJob struct {
	c *CPU
	s Shape
	a *LayerActs
}

func (j *attnBwdJob) Run(wk, _, lo, hi int) {
	s, a, T := j.s, j.a, j.s.T
	for it := lo; it < hi; it++ {
		b, h := it/s.H, it%s.H
		off := b*T*s.D + h*s.HD
		attnHeadBackward(a.DQ[off:], a.DK[off:], a.DV[off:], a.DA[off:], a.Q[off:], a.K[off:],
			a.V[off:], a.LSE[it*T:], j.c.s[wk*T*T:], j.c.dp[wk*T*T:], T, s.HD, s.D, s.Scale, j.c.Block)
	}
}

// FFNForward: H1 = X2n·W1ᵀ, H3 = X2n·W3ᵀ, Gate = silu(H1)⊙H3, Y = Gate·W2ᵀ.
func (c *CPU) FFNForward(l int, s Shape, w *Layer, a *LayerActs) error {
	t := c.team(s)
	n, d, f := s.N, s.D, s.F
	linearForward(t, a.H1, a.X2n, w.W1.W, n, d, f)
	if s.Act != SwiGLU {
		actForward(t, &c.act, s.Act, a.Gate, a.H1, n*f) // a plain MLP (arch.go)
	} else {
		linearForward(t, a.H3, a.X2n, w.W3.W, n, d, f)
		swigluForward(t, a.Gate, a.H1, a.H3, n*f)
	}
	linearForward(t, a.Y, a.Gate, w.W2.W, n, f, d)
	return nil
}

// FFNBackward: DGate = DY·W2, SwiGLU backward into DH1, DH3, DX2n = DH1·W1 + DH3·W3.
func (c *CPU) FFNBackward(l int, s Shape, w *Layer, a *LayerActs) error {
	t := c.team(s)
	n, d, f := s.N, s.D, s.F
	linearBackwardInput(t, a.DGate, a.DY, w.W2.W, n, f, d, 0)
	if s.Act != SwiGLU {
		actBackward(t, &c.act, s.Act, a.DH1, a.DGate, a.H1, n*f)
		linearBackwardInput(t, a.DX2n, a.DH1, w.W1.W, n, d, f, 0)
		return nil
	}
	swigluBackward(t, a.DH1, a.DH3, a.DGate, a.H1, a.H3, n*f)
	linearBackwardInput(t, a.DX2n, a.DH1, w.W1.W, n, d, f, 0)
	linearBackwardInput(t, a.DX2n, a.DH3, w.W3.W, n, d, f, 1)
	return nil
}
