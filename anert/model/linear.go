package model

import "github.com/anelab/anelab/anert/blas"

// gemm is blas.Sgemm with the rows of C split over the team's goroutines, each part a
// single-threaded BLAS call (see beginStep): one part per goroutine, or two when each part still
// has 256 rows or more, so that a goroutine slowed by another process can leave its second part
// to the other. Parts are few because each one packs all of op(B) (a weight matrix, or the
// activations of a weight gradient) into BLAS's blocked layout again: with parts of 128 rows that
// repacking cost ~10% of the GEMM time. (Splitting the columns of C instead, which repacks op(A),
// measured no faster even where op(A) is the smaller operand.)
func (t *team) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := &t.gemm1
	*g = gemmJob{transA, transB, n, k, alpha, a, lda, b, ldb, beta, c, ldc}
	t.run(m, t.w*max(1, min(2, m/(256*t.w))), g)
}

// gemmJob is one gemm call; run computes rows [lo, hi) of C.
type gemmJob struct {
	transA, transB bool
	n, k           int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
}

func (g *gemmJob) run(_, _, lo, hi int) {
	aoff := lo * g.lda
	if g.transA {
		aoff = lo
	}
	blas.Sgemm(g.transA, g.transB, hi-lo, g.n, g.k, g.alpha, g.a[aoff:], g.lda, g.b, g.ldb, g.beta, g.c[lo*g.ldc:], g.ldc)
}

// linearForward is y = x·Wᵀ for x [n, in], W [out, in] (llama2.c layout), y [n, out] (overwritten).
func linearForward(t *team, y, x, wt []float32, n, in, out int) {
	t.gemm(false, true, n, out, in, 1, x, in, wt, in, 0, y, out)
}

// linearBackwardInput is dx = beta·dx + dy·W for dy [n, out], W [out, in], dx [n, in]
// (beta 0 overwrites, beta 1 accumulates: dxn = dq·Wq + dk·Wk + dv·Wv is three calls).
func linearBackwardInput(t *team, dx, dy, wt []float32, n, in, out int, beta float32) {
	t.gemm(false, false, n, in, out, 1, dy, out, wt, in, beta, dx, in)
}

// linearBackwardWeight accumulates the weight gradient dW += dyᵀ·x for dy [n, out], x [n, in],
// dW [out, in]: one GEMM over all n = B·T tokens, split over the rows of dW.
func linearBackwardWeight(t *team, dw, dy, x []float32, n, in, out int) {
	t.gemm(true, false, out, in, n, 1, dy, out, x, in, 1, dw, in)
}
