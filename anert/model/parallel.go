package model

import (
	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/internal/par"
)

// beginStep puts BLAS in serial mode (each call single-threaded) and returns the model's thread
// budget (the Threads option). The model splits each GEMM over its own goroutines instead (see
// team.gemm): then the element-wise loops and per-head attention between GEMMs don't compete with
// an idle BLAS thread pool that spins (OpenBLAS's workers busy-yield for a while after each call),
// a core taken by another process slows one part instead of stalling BLAS's barriers, and small
// GEMMs (one attention head) run in parallel with each other. Serial mode is left on afterwards:
// switching OpenBLAS back to w threads after every step would wake its idle threads each time, and
// they would spin through the next step.
func (m *Model) beginStep() (w int) {
	blas.SetSerial(true)
	return par.Threads(m.threads)
}

// A job is the body of one of the model's parallel loops (see par.Job): run(worker, part, lo, hi)
// processes the items [lo, hi), part number part, with worker's scratch.
type job interface {
	run(worker, part, lo, hi int)
}

// jobFunc makes a function a job. A closure allocates: hot loops use a team's job structs instead.
type jobFunc func(worker, lo, hi int)

func (f jobFunc) run(worker, _, lo, hi int) { f(worker, lo, hi) }

// team is the goroutine budget of a Model (or a CPU backend) and the reusable bodies of its hot
// loops: a loop stores its arguments in the team's job of its kind, so that a training step
// allocates nothing. A team runs one loop at a time (it is not safe for concurrent use, like the
// Model that owns it); a job must not start another loop. The loops run on internal/par's pool.
type team struct {
	w int // goroutines per loop: the caller and w−1 pool workers

	gemm1    gemmJob
	norm     rmsnormJob
	normBwd  rmsnormBwdJob
	resid    residualJob
	rope     ropeJob
	swiglu   swigluJob
	loss     lossJob
	attnFwd  attnFwdJob
	attnBwd  attnBwdJob
	zero     zeroJob
	partsBuf []float32 // rmsnormBackward's per-part partial dg
	cur      asPar     // the loop in progress, as a par.Job
}

// asPar runs a job as a par.Job (a field of the team, so that starting a loop allocates nothing).
type asPar struct{ j job }

func (a *asPar) Run(worker, part, lo, hi int) { a.j.run(worker, part, lo, hi) }

// newTeam returns a team of w goroutines (at least 1).
func newTeam(w int) *team { return &team{w: max(1, w)} }

// run is par.Run of j on the team's goroutines.
func (t *team) run(n, parts int, j job) {
	t.cur.j = j
	par.Run(t.w, n, parts, &t.cur)
	t.cur.j = nil
}

// chunks is par.Chunks for the team's goroutines.
func (t *team) chunks(n, minChunk int) int { return par.Chunks(t.w, n, minChunk) }

// clear zeroes s on the team's goroutines (a memory-bound pass: two cores clear a large buffer
// faster than one).
func (t *team) clear(s []float32) {
	j := &t.zero
	j.s = s
	t.run(len(s), t.chunks(len(s), 1<<16), j)
	j.s = nil
}

type zeroJob struct{ s []float32 }

func (j *zeroJob) run(_, _, lo, hi int) { clear(j.s[lo:hi]) }
