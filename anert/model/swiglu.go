package model

import "github.com/anelab/anelab/internal/par"

// swigluForward is the SwiGLU gate over n elements, with σ(x) = 1/(1+e⁻ˣ):
//
//	gate = silu(h1) ⊙ h3 = h1·σ(h1)·h3.
//
// What runs: swigluJob.Run on ranges → swigluFwd: anelab_swiglu_fwd in kernels.c on cgo builds,
// swigluFwdGo below without cgo (TestKernelsMatchGo compares them). In a training step the job
// runs on each block of the W1|W3 grid as it is computed (swigluPost, CPU.FFNForward); this
// function runs it as a loop of its own (the op's gradient test).
func swigluForward(t *team, gate, h1, h3 []float32, n int) {
	j := &t.swiglu
	*j = swigluJob{gate: gate[:n], h1: h1[:n], h3: h3[:n]}
	t.run(n, t.chunks(n, 4096), j)
}

// swigluBackward is the backward of swigluForward (σ recomputed from h1):
//
//	dh1 = dgate · h3 · σ(h1) · (1 + h1·(1 − σ(h1))),   dh3 = dgate · h1 · σ(h1).
//
// What runs: swigluJob.Run on ranges → swigluBwd: anelab_swiglu_bwd in kernels.c on cgo builds,
// swigluBwdGo below without cgo; in a training step on each block of DGate (swigluPost,
// CPU.FFNBackward).
func swigluBackward(t *team, dh1, dh3, dgate, h1, h3 []float32, n int) {
	j := &t.swiglu
	*j = swigluJob{bwd: true, gate: dgate[:n], h1: h1[:n], h3: h3[:n], dh1: dh1[:n], dh3: dh3[:n]}
	t.run(n, t.chunks(n, 4096), j)
}

// swigluPost makes j (a swigluForward or swigluBackward job over whole [n, ld] matrices) the post
// op of a GEMM loop over blocks of those matrices: the forward on each block of H1 and H3 once the
// W1|W3 grid (team.gemmGrid) has computed it, the backward on each block of DGate = DY·W2. The
// gate then needs no loop of its own and reads its inputs while they are in cache.
func swigluPost(t *team, j swigluJob, ld int) tileOp {
	t.swiglu = j
	t.swigluTile = swigluTile{&t.swiglu, ld}
	return &t.swigluTile
}

// swigluTile runs a swigluJob over [n, ld] matrices on blocks of them: one kernel call a block
// (a call per row of a 128×96 block cost more than the row's work).
type swigluTile struct {
	j  *swigluJob
	ld int
}

func (t *swigluTile) tile(r0, r1, c0, c1 int) { t.j.block(r0*t.ld+c0, r1-r0, c1-c0, t.ld) }

// SwiGLUBackward is swigluBackward over len(h1) elements on w goroutines (par.Threads(w)), the
// same kernel as the CPU backend's: for a backend that runs the SwiGLU backward on the CPU
// between its own kernels (the ANE's FFNBackward). It allocates its loop body.
func SwiGLUBackward(w int, dh1, dh3, dgate, h1, h3 []float32) {
	n := len(h1)
	j := &swigluJob{bwd: true, gate: dgate[:n], h1: h1, h3: h3[:n], dh1: dh1[:n], dh3: dh3[:n]}
	w = par.Threads(w)
	par.Run(w, n, par.Chunks(w, n, 4096), j)
}

// swigluJob is one swigluForward or swigluBackward call (gate is dgate for the backward).
type swigluJob struct {
	bwd                    bool
	gate, h1, h3, dh1, dh3 []float32
}

func (j *swigluJob) Run(_, _, lo, hi int) { j.block(lo, 1, hi-lo, hi-lo) }

// block runs j on rows × cols elements from offset off, rows ld apart.
func (j *swigluJob) block(off, rows, cols, ld int) {
	if j.bwd {
		swigluBwd(j.dh1[off:], j.dh3[off:], j.gate[off:], j.h1[off:], j.h3[off:], rows, cols, ld)
	} else {
		swigluFwd(j.gate[off:], j.h1[off:], j.h3[off:], rows, cols, ld)
	}
}

// swigluFwdGo is swigluForward's formula on rows × cols elements, rows ld apart: the !cgo
// build's kernel and the C kernel's reference.
func swigluFwdGo(gate, h1, h3 []float32, rows, cols, ld int) {
	for r := range rows {
		o := r * ld
		g, a, b := gate[o:o+cols], h1[o:o+cols], h3[o:o+cols]
		for i, x := range a {
			g[i] = x * sigmoidf(x) * b[i]
		}
	}
}

// swigluBwdGo is swigluBackward's formula on rows × cols elements, rows ld apart: the !cgo
// build's kernel and the C kernel's reference. dh1 may be h1 and dh3 h3 (in place: each element
// of both is read before either is written).
func swigluBwdGo(dh1, dh3, dg, h1, h3 []float32, rows, cols, ld int) {
	for r := range rows {
		o := r * ld
		d1, d3, g, a, b := dh1[o:o+cols], dh3[o:o+cols], dg[o:o+cols], h1[o:o+cols], h3[o:o+cols]
		for i, x := range a {
			y, s := b[i], sigmoidf(x)
			d3[i] = g[i] * x * s
			d1[i] = g[i] * y * s * (1 + x*(1-s))
		}
	}
}
