package model

import "math"

// rmsnormForward normalises each of the n rows of x [n, d]:
//
//	r_t = (Σ_i x_{t,i}²/d + ε)^(−1/2),   out_{t,i} = g_i · x_{t,i} · r_t,
//
// and saves r_t in rinv [n] for the backward pass.
//
// What runs: rmsnormJob.Run on blocks of rows (the team's goroutines) → rmsnormRows:
// anelab_rmsnorm_fwd in kernels.c on cgo builds, rmsnormRowsGo below without cgo
// (TestKernelsMatchGo compares them).
func rmsnormForward(t *team, out, rinv, x, g []float32, n, d int, eps float32) {
	j := &t.norm
	*j = rmsnormJob{out: out, rinv: rinv, x: x, g: g, d: d, eps: eps}
	t.run(n, t.chunks(n, 16), j)
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
// kernels.c on cgo builds, rmsnormBackwardRowsGo below without cgo.
func rmsnormBackward(t *team, dx, dg, dout, x, rinv, g []float32, n, d int) {
	parts := t.chunks(n, 16)
	if len(t.partsBuf) < parts*d {
		t.partsBuf = make([]float32, parts*d)
	}
	part := t.partsBuf[:parts*d]
	clear(part)
	j := &t.normBwd
	*j = rmsnormBwdJob{dx: dx, part: part, dout: dout, x: x, rinv: rinv, g: g, d: d}
	t.run(n, parts, j)
	for k := range parts {
		for i, v := range part[k*d : (k+1)*d] {
			dg[i] += v
		}
	}
}

type rmsnormBwdJob struct {
	dx, part, dout, x, rinv, g []float32
	d                          int
}

func (j *rmsnormBwdJob) Run(_, p, lo, hi int) {
	d := j.d
	rmsnormBackwardRows(j.dx[lo*d:hi*d], j.part[p*d:(p+1)*d], j.dout[lo*d:hi*d], j.x[lo*d:hi*d],
		j.rinv[lo:hi], j.g, hi-lo, d)
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
