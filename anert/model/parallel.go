package model

import (
	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/internal/par"
)

// beginStep puts BLAS in serial mode (each call single-threaded) and returns the model's thread
// budget (the Threads option). The model splits each GEMM over its own goroutines instead (see
// team.gemms): then the element-wise loops and per-head attention between GEMMs don't compete with
// an idle BLAS thread pool that spins (OpenBLAS's workers busy-yield for a while after each call),
// a core taken by another process slows one part instead of stalling BLAS's barriers, and small
// GEMMs (one attention head) run in parallel with each other. Serial mode is left on afterwards:
// switching OpenBLAS back to w threads after every step would wake its idle threads each time, and
// they would spin through the next step.
func (m *Model) beginStep() (w int) {
	blas.SetSerial(true)
	return par.Threads(m.threads)
}

// team is the goroutine budget of a Model (or a CPU backend) and the reusable bodies of its hot
// loops: each op stores its arguments in the team's job of its kind (a par.Job: Run(worker,
// part, lo, hi) does the items [lo, hi)), so that a training step allocates nothing. A team runs
// one loop at a time (it is not safe for concurrent use, like the Model that owns it); a job must
// not start another loop. The loops run on internal/par's pool.
type team struct {
	w    int       // goroutines per loop: the caller and w−1 pool workers
	dim  int       // the model's width, for tune.homeDim (0: unknown, taken as narrow)
	pool *par.Pool // the pool the loops run on (nil: the process's; a team of a split step: its own)

	gemm1   gemmJob
	gemm2   gemmJob // a loop's second GEMM job (attnThen's projections before the attention)
	norm    rmsnormJob
	normBwd rmsnormBwdJob
	chain   chainJob
	resid   residualJob
	rope    ropeJob
	swiglu  swigluJob
	ropeQ   ropeTile // RoPE on q's blocks (the projections' post ops)
	ropeK   ropeTile
	// the post ops as tileOps (stored here, so that making one allocates nothing)
	swigluTile swigluTile
	loss       lossJob
	attnFwd    attnFwdJob
	attnBwd    attnBwdJob
	attnChain  attnChainJob
	zero       zeroJob
	embed      embedJob
	embedBwd   embedBwdJob
	partsBuf   []float32 // rmsnormBackward's per-part partial dg
}

// A loop profile (par.Profile) names the function that called the team's loop helpers as a loop's
// site, not the helper.
func init() { par.Plumbing("github.com/anelab/anelab/anert/model.(*team).") }

// newTeam returns a team of w goroutines (at least 1) on the process's pool.
func newTeam(w int) *team { return &team{w: max(1, w)} }

// teamFor returns t when it has w goroutines on pool, else a new team of w on pool, either way for
// a model of width dim: each owner of a team (the Model, the CPU backend, the weight-gradient
// queue) keeps its own from step to step.
func teamFor(t *team, w, dim int, pool *par.Pool) *team {
	if t == nil || t.w != max(1, w) || t.pool != pool {
		t = newTeam(w)
		t.pool = pool
	}
	t.dim = dim
	return t
}

// run is par.Run of j on the team's goroutines: j's Run(worker, part, lo, hi) is called on
// every part of [0, n) split into parts.
func (t *team) run(n, parts int, j par.Job) { t.pool.Run(t.w, n, parts, j) }

// runRows is run for a loop whose parts are blocks of rows in order (a row chain, a GEMM's grid
// in row-major order), split into segments at segs (each segment's parts claimed before the
// next's): with tune.home = 1, each CPU takes first the parts at the same place in each segment loop
// after loop (par.RunHomed), so the rows a core wrote are the rows it reads next; with home=2
// each goroutine runs consecutive parts (cpuTune.home; only in a model no wider than homeDim).
func (t *team) runRows(n, parts int, segs []int, j par.Job) {
	if tune.home == 0 || !t.narrow() {
		t.run(n, parts, j)
		return
	}
	t.pool.RunHomed(t.w, n, parts, segs, j)
}

// lone is the blocks per goroutine of the team's lone products (plan): tune.loneNarrow in a model
// no wider than homeDim, where it is set, else tune.loneBlocks.
func (t *team) lone() int {
	if tune.loneNarrow > 0 && t.narrow() {
		return tune.loneNarrow
	}
	return tune.loneBlocks
}

// narrow reports whether the team's model is no wider than tune.homeDim, where the choices measured
// best for narrow models apply (home, loneNarrow).
func (t *team) narrow() bool { return t.dim <= tune.homeDim }

// chunks is par.Chunks for the team's goroutines.
func (t *team) chunks(n, minChunk int) int { return par.Chunks(t.w, n, minChunk) }

// rowLoop runs row-local ops (each op's Run(worker, part, lo, hi) does the rows [lo, hi) of its
// matrices) one after the other on each block of rows, as ONE loop: a chain of ops that need no
// other block's rows (a residual add and the RMSNorm after it) then waits once for the slowest
// block instead of once per op, and each block's rows are still in cache for the next op.
func (t *team) rowLoop(n int, ops ...par.Job) { t.runChain(n, t.chainOf(ops...)) }

// chainOf sets the team's chain job to run ops in turn on each block of rows.
func (t *team) chainOf(ops ...par.Job) *chainJob {
	j := &t.chain
	j.n = copy(j.ops[:], ops)
	if j.n != len(ops) {
		panic("model: a chain takes at most 3 ops")
	}
	return j
}

// runChain runs a chain as one loop over n rows, in chunks of at least 16 rows.
func (t *team) runChain(n int, c rowChain) {
	parts := t.chunks(n, 16)
	c.prepare(parts)
	t.runRows(n, parts, []int{parts}, c)
}

// A rowChain is row-local work on blocks of rows: Run(worker, part, lo, hi) does the rows
// [lo, hi) as part number part. prepare(parts) is called before a loop with the number of parts
// it will see (an op that sums over rows, rmsnormBwdJob's dg, keeps per-part sums, added in part
// order afterwards). It runs as a loop of its own (runChain) or as the row epilogue of a GEMM's
// loop (gemmSpec.rowPost), its parts then the GEMM's blocks of rows.
type rowChain interface {
	par.Job
	prepare(parts int)
}

// chainJob runs its ops in turn on each part.
type chainJob struct {
	ops [3]par.Job
	n   int
}

func (j *chainJob) Run(w, p, lo, hi int) {
	for _, op := range j.ops[:j.n] {
		op.Run(w, p, lo, hi)
	}
}

// prepare prepares the ops that keep per-part sums.
func (j *chainJob) prepare(parts int) {
	for _, op := range j.ops[:j.n] {
		if p, ok := op.(interface{ prepare(int) }); ok {
			p.prepare(parts)
		}
	}
}

// clear zeroes s on the team's goroutines (a memory-bound pass: two cores clear a large buffer
// faster than one).
func (t *team) clear(s []float32) {
	j := &t.zero
	j.s = s
	t.run(len(s), t.chunks(len(s), 1<<16), j)
	j.s = nil
}

type zeroJob struct{ s []float32 }

func (j *zeroJob) Run(_, _, lo, hi int) { clear(j.s[lo:hi]) }
