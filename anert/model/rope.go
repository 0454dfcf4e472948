package model

import "math"

// RopeTables returns cos and sin [seq, hd/2] of the rotary angles θ_{p,i} = p·base^(−2i/hd),
// computed in float64 and rounded once: entry p·hd/2 + i belongs to the pair (2i, 2i+1) of every
// head at position p (Shape.Cos, Shape.Sin). Every backend uses these tables (the CPU's, the
// ANE's CPU side, the CUDA trainer's), so the rotation is the same everywhere.
func RopeTables(seq, hd int, base float64) (cos, sin []float32) {
	half := hd / 2
	cos, sin = make([]float32, seq*half), make([]float32, seq*half)
	for p := range seq {
		for i := range half {
			th := float64(p) * math.Pow(base, -2*float64(i)/float64(hd))
			cos[p*half+i], sin[p*half+i] = float32(math.Cos(th)), float32(math.Sin(th))
		}
	}
	return cos, sin
}

// ropeForward rotates, in place, every adjacent pair (2i, 2i+1) of every head of x [n, d]
// (row r is token r mod T of its sequence, so its position is p = r mod T):
//
//	(a, b) ← (a·cos θ − b·sin θ,  a·sin θ + b·cos θ),   θ = θ_{p,i} (see RopeTables).
//
// What runs: ropeJob.Run on blocks of rows (the team's goroutines) → ropeRows: anelab_rope in
// kernels.c on cgo builds, ropeRowsGo below without cgo (TestKernelsMatchGo compares them). In a
// training step without QK-norm, ropeRows runs on each block of q and k as the projections
// compute it (ropeTile, CPU.qkvForward); with QK-norm, after the norm, as this loop.
func ropeForward(t *team, x, cos, sin []float32, n, T, d, hd int) {
	j := &t.rope
	*j = ropeJob{x: x, cos: cos, sin: sin, T: T, d: d, hd: hd, sign: 1}
	t.run(n, t.chunks(n, 16), j)
}

// ropeBackward maps, in place, the gradient w.r.t. the rotated vector to the gradient w.r.t. the
// unrotated one: the rotation is orthogonal, so this is the rotation by −θ:
//
//	(da, db) ← (da·cos θ + db·sin θ,  −da·sin θ + db·cos θ).
//
// What runs: as ropeForward, with sign −1; in a training step, ropeRows on each block of dq and dk
// rows the attention backward's items compute (attnBwdJob.unrotate).
func ropeBackward(t *team, dx, cos, sin []float32, n, T, d, hd int) {
	j := &t.rope
	*j = ropeJob{x: dx, cos: cos, sin: sin, T: T, d: d, hd: hd, sign: -1}
	t.run(n, t.chunks(n, 16), j)
}

// ropeJob rotates rows by +θ (sign 1, ropeForward) or −θ (sign −1, ropeBackward).
type ropeJob struct {
	x, cos, sin []float32
	T, d, hd    int
	sign        float32
}

func (j *ropeJob) Run(_, _, lo, hi int) {
	ropeRows(j.x[lo*j.d:hi*j.d], hi-lo, lo, j.T, j.d, j.d, j.hd, j.cos, j.sin, j.sign)
}

// ropeTile is ropeForward (sign 1) or ropeBackward (sign −1) on a block of x [n, ld] whose columns
// are whole heads: the post op (epilogue) of the q and k projections, whose blocks are then cut on
// head bounds (gemmSpec.unit = hd), so that the rotation needs no loop of its own.
type ropeTile struct {
	x, cos, sin []float32
	T, ld, hd   int
	sign        float32
}

func (j *ropeTile) tile(r0, r1, c0, c1 int) {
	ropeRows(j.x[r0*j.ld+c0:], r1-r0, r0, j.T, c1-c0, j.ld, j.hd, j.cos, j.sin, j.sign)
}

// RoPERows rotates, in place, rows rows of the token-major x [rows, d] (row i is token r0 + i,
// at position (r0 + i) mod T) by θ (sign 1: ropeForward's formula) or by −θ (sign −1:
// ropeBackward's), with tables from RopeTables, on the calling goroutine. It runs the build's
// kernel (ropeRows), the same as the CPU backend's: for a backend that rotates on the CPU between
// its own kernels (the ANE's "split" and "cpu-rope" variants).
func RoPERows(x []float32, rows, r0, T, d, hd int, cos, sin []float32, sign float32) {
	ropeRows(x, rows, r0, T, d, d, hd, cos, sin, sign)
}

// ropeRowsGo is RoPERows in Go on rows of w columns (whole heads) at row stride ld: the formula,
// the !cgo build's kernel and the C kernel's reference. The heads of a block of columns (a GEMM's
// block, one head of the attention) rotate as they would in the whole row: the angle of a pair
// depends only on its position and its index i inside the head.
func ropeRowsGo(x []float32, rows, r0, T, w, ld, hd int, cos, sin []float32, sign float32) {
	half := hd / 2
	for r := range rows {
		p := (r0 + r) % T
		c, s := cos[p*half:(p+1)*half], sin[p*half:(p+1)*half]
		row := x[r*ld : r*ld+w]
		for h := 0; h < w; h += hd {
			v := row[h : h+hd]
			for i := range half {
				a, b, sn := v[2*i], v[2*i+1], sign*s[i]
				v[2*i], v[2*i+1] = a*c[i]-b*sn, a*sn+b*c[i]
			}
		}
	}
}
