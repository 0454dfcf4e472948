package model

// residualForward is the scaled residual add out = x + α·y over n elements (α = 1/√(2·layers)).
//
// What runs: residualJob.Run on ranges (the team's goroutines) → axpy: anelab_axpby in kernels.c
// on cgo builds, axpyGo below without cgo.
func residualForward(t *team, out, x, y []float32, alpha float32, n int) {
	j := &t.resid
	*j = residualJob{out: out[:n], x: x[:n], y: y[:n], alpha: alpha}
	t.run(n, t.chunks(n, 8192), j)
}

// residualBackward is its backward for the branch: dy = α·dout. The skip path's gradient is dout
// itself, which the caller keeps accumulating in place (dx = dout).
//
// What runs: residualJob.Run on ranges → scaleTo: anelab_scale in kernels.c on cgo builds,
// scaleToGo below without cgo.
func residualBackward(t *team, dy, dout []float32, alpha float32, n int) {
	j := &t.resid
	*j = residualJob{out: dy[:n], y: dout[:n], alpha: alpha}
	t.run(n, t.chunks(n, 8192), j)
}

// residualJob is one residualForward (out = x + α·y) or residualBackward (out = α·y, x nil) call.
type residualJob struct {
	out, x, y []float32
	alpha     float32
}

func (j *residualJob) Run(_, _, lo, hi int) {
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
