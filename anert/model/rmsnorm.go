package model

import "math"

// rmsnormForward normalises each of the n rows of x [n, d]:
//
//	r_t = (Σ_i x_{t,i}²/d + ε)^(−1/2),   out_{t,i} = g_i · x_{t,i} · r_t,
//
// and saves r_t in rinv [n] for the backward pass.
//
// What runs: rmsnormJob.Run on blocks of rows → rmsnormRows: anelab_rmsnorm_fwd in kernels.c on
// cgo builds, rmsnormRowsGo below without cgo (TestKernelsMatchGo compares them). In a training
// step it runs in a chain after the residual add (see residualForward), the first layer's after the
// embedding lookup (embedForward), and QK-norm's as loops of their own.
func rmsnormForward(t *team, out, rinv, x, g []float32, n, d int, eps float32) {
	t.rowLoop(n, t.rmsnormOp(out, rinv, x, g, d, eps))
}

// rmsnormOp is rmsnormForward as a row-local op of a team.rowLoop (the team's job, reused).
func (t *team) rmsnormOp(out, rinv, x, g []float32, d int, eps float32) *rmsnormJob {
	t.norm = rmsnormJob{out: out, rinv: rinv, x: x, g: g, d: d, eps: eps}
	return &t.norm
}

type rmsnormJob struct {
	out, rinv, x, g []float32
	d               int
	eps             float32
}

func (j *rmsnormJob) Run(_, _, lo, hi int) {
	d := j.d
	rmsnormRows(j.out[lo*d:hi*d], j.rinv[lo:hi], j.x[lo*d:hi*d], j.g, hi-lo, d, j.eps)
}

// rmsnormRowsGo is rmsnormForward's formula on rows rows: the !cgo build's kernel and the C
// kernel's reference.
func rmsnormRowsGo(out, rinv, x, g []float32, rows, d int, eps float32) {
	for t := range rows {
		xr, or := x[t*d:(t+1)*d], out[t*d:(t+1)*d]
		var ss float32
		for _, v := range xr {
			ss += v * v
		}
		r := float32(1 / math.Sqrt(float64(ss/float32(d)+eps)))
		rinv[t] = r
		for i, v := range xr {
			or[i] = g[i] * v * r
		}
	}
}

// rmsnormBackward is the exact backward of rmsnormForward for any gains. Given dout [n, d] it
// ADDS to dx (so the caller can pre-load the residual path's gradient) and to dg:
//
//	dx_{t,i} += r_t · (g_i·dy_{t,i} − x_{t,i} · r_t² · (Σ_j g_j·dy_{t,j}·x_{t,j}) / d)
//	dg_i     += Σ_t dy_{t,i} · x_{t,i} · r_t
//
// The sums over t are accumulated per part of the loop in the team's scratch and added in part
// order, so the result does not depend on which goroutine ran which part.
//
// What runs: rmsnormBwdJob.Run on blocks of rows → rmsnormBackwardRows: anelab_rmsnorm_bwd in
// kernels.c on cgo builds, rmsnormBackwardRowsGo below without cgo. In a training step it runs in
// a chain before the residual's backward (Model.normBackward), on each block of rows of DX2n (of
// DXn) as the backend's GEMM completes it; the final norm's and QK-norm's as loops of their own.
func rmsnormBackward(t *team, dx, dg, dout, x, rinv, g []float32, n, d int) {
	j := t.rmsnormBwdOp(dx, dout, x, rinv, g, d, false)
	t.rowLoop(n, j)
	j.addTo(dg)
}

// rmsnormBwdOp is rmsnormBackward as a row-local op of a rowChain (the team's job, reused): with
// zero it overwrites dx instead of adding to it. After the loop, addTo(dg) adds the per-part sums
// of dg in part order.
func (t *team) rmsnormBwdOp(dx, dout, x, rinv, g []float32, d int, zero bool) *rmsnormBwdJob {
	t.normBwd = rmsnormBwdJob{dx: dx, buf: &t.partsBuf, dout: dout, x: x, rinv: rinv, g: g, d: d, zero: zero}
	return &t.normBwd
}

type rmsnormBwdJob struct {
	dx, part, dout, x, rinv, g []float32
	buf                        *[]float32 // the team's scratch that part is cut from
	d                          int
	zero                       bool
}

// prepare sets part to zeroed sums for parts parts.
func (j *rmsnormBwdJob) prepare(parts int) {
	if len(*j.buf) < parts*j.d {
		*j.buf = make([]float32, parts*j.d)
	}
	j.part = (*j.buf)[:parts*j.d]
	clear(j.part)
}

func (j *rmsnormBwdJob) Run(_, p, lo, hi int) {
	d := j.d
	if j.zero {
		clear(j.dx[lo*d : hi*d])
	}
	rmsnormBackwardRows(j.dx[lo*d:hi*d], j.part[p*d:(p+1)*d], j.dout[lo*d:hi*d], j.x[lo*d:hi*d],
		j.rinv[lo:hi], j.g, hi-lo, d)
}

// addTo adds the loop's dg sums to dg, in part order (so the result does not depend on which
// goroutine ran which part).
func (j *rmsnormBwdJob) addTo(dg []float32) {
	d := j.d
	for k := range len(j.part) / d {
		for i, v := range j.part[k*d : (k+1)*d] {
			dg[i] += v
		}
	}
}

// rmsnormBackwardRowsGo is rmsnormBackward's formula on rows rows, adding the dg sums to pg: the
// !cgo build's kernel and the C kernel's reference.
func rmsnormBackwardRowsGo(dx, pg, dout, x, rinv, g []float32, rows, d int) {
	for t := range rows {
		xr, dyr, dxr := x[t*d:(t+1)*d], dout[t*d:(t+1)*d], dx[t*d:(t+1)*d]
		r := rinv[t]
		var dot float32
		for i, v := range xr {
			dot += g[i] * dyr[i] * v
			pg[i] += dyr[i] * v * r
		}
		c := r * r * dot / float32(d)
		for i, v := range xr {
			dxr[i] += r * (g[i]*dyr[i] - v*c)
		}
	}
}
