package model

// residualForward is the scaled residual add out = x + α·y over n rows of d (α = 1/√(2·layers)).
//
// What runs: residualJob.Run on blocks of rows → axpy: anelab_axpby in kernels.c on cgo builds,
// axpyGo below without cgo. In a training step it runs in a chain with the RMSNorm after it, on
// each block of rows of O (of Y) as the backend's GEMM completes it (forwardLayers, Model.fuse).
func residualForward(t *team, out, x, y []float32, alpha float32, n, d int) {
	t.rowLoop(n, t.residualOp(out, x, y, alpha, d))
}

// residualBackward is its backward for the branch: dy = α·dout. The skip path's gradient is dout
// itself, which the caller keeps accumulating in place (dx = dout).
//
// What runs: residualJob.Run on blocks of rows → scaleTo: anelab_scale in kernels.c on cgo builds,
// scaleToGo below without cgo. In a training step it runs in a chain after the RMSNorm backward,
// on each block of rows of DX2n (of DXn) as the backend's GEMM completes it (Model.normBackward).
func residualBackward(t *team, dy, dout []float32, alpha float32, n, d int) {
	t.rowLoop(n, t.residualBwdOp(dy, dout, alpha, d))
}

// residualOp is residualForward as a row-local op of a team.rowLoop (the team's job, reused).
func (t *team) residualOp(out, x, y []float32, alpha float32, d int) *residualJob {
	t.resid = residualJob{out: out, x: x, y: y, alpha: alpha, d: d}
	return &t.resid
}

// residualBwdOp is residualBackward as a row-local op of a team.rowLoop.
func (t *team) residualBwdOp(dy, dout []float32, alpha float32, d int) *residualJob {
	t.resid = residualJob{out: dy, y: dout, alpha: alpha, d: d}
	return &t.resid
}

// residualJob is one residualForward (out = x + α·y) or residualBackward (out = α·y, x nil) on
// the rows [lo, hi) of d columns.
type residualJob struct {
	out, x, y []float32
	alpha     float32
	d         int
}

func (j *residualJob) Run(_, _, lo, hi int) {
	lo, hi = lo*j.d, hi*j.d
	if j.x == nil {
		scaleTo(j.out[lo:hi], j.y[lo:hi], j.alpha)
	} else {
		axpy(j.out[lo:hi], j.x[lo:hi], j.y[lo:hi], j.alpha)
	}
}

// axpyGo is out = x + a·y: the !cgo build's kernel and the C kernel's reference.
func axpyGo(out, x, y []float32, a float32) {
	x, y = x[:len(out)], y[:len(out)]
	for i := range out {
		out[i] = x[i] + a*y[i]
	}
}

// scaleToGo is out = a·x: the !cgo build's kernel and the C kernel's reference.
func scaleToGo(out, x []float32, a float32) {
	x = x[:len(out)]
	for i := range out {
		out[i] = a * x[i]
	}
}
