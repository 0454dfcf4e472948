package model

import "github.com/anelab/anelab/anert/blas"

// gemm is blas.Sgemm with C split into blocks over the team's goroutines, each block a
// single-threaded BLAS call (see beginStep). Each block packs its rows of op(A) and its columns
// of op(B) into BLAS's blocked layout, so the split is chosen for little repacking:
//
//   - up to 4 goroutines: rows only, one part per goroutine or two when each part still has 256
//     rows or more (so that a goroutine slowed by another process can leave its second part to the
//     other). With parts of 128 rows, repacking all of op(B) per part cost ~10% of the GEMM time;
//     splitting columns measured no faster on two cores.
//   - more goroutines: a pm × pn grid of blocks (pm·pn = w, or 2w for a GEMM of 10⁸ multiply-adds
//     or more), pm chosen to minimise the data packed, pn·m·k + pm·k·n, with bounds on multiples of
//     16. On 16 cores, splitting rows 16 ways repacked op(B) 16 times and ran the model's shapes at
//     a third to a half of the grid's rate (anert/bench/cmd/gemmsplit).
func (t *team) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := &t.gemm1
	*g = gemmJob{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1, 1}
	if t.w <= 4 {
		t.run(m, t.w*max(1, min(2, m/(256*t.w))), g)
		return
	}
	parts := t.w
	if m*n*k >= 1e8 {
		parts *= 2
	}
	g.pm, g.pn = gridOf(m, n, parts)
	t.run(g.pm*g.pn, g.pm*g.pn, g)
}

// gridOf is the pm × pn = parts split (pm a divisor of parts, at most m/16 rows of blocks and n/16
// columns where possible) that minimises the packed data pn·m + pm·n (× k).
func gridOf(m, n, parts int) (pm, pn int) {
	best := -1
	for d := 1; d <= parts; d++ {
		if parts%d != 0 {
			continue
		}
		e := parts / d
		if (d > 1 && m < 16*d) || (e > 1 && n < 16*e) {
			continue
		}
		if c := e*m + d*n; best < 0 || c < best {
			best, pm, pn = c, d, e
		}
	}
	if best < 0 { // too small to split on 16-element bounds: rows
		return min(parts, max(1, m)), 1
	}
	return pm, pn
}

// bound is the i-th of p block boundaries of [0, n): i·n/p rounded to a multiple of 16 when the
// blocks are at least 16 wide (n when i = p).
func bound(n, p, i int) int {
	if i >= p {
		return n
	}
	if n >= 16*p {
		return min(n, (i*n/p+8)/16*16)
	}
	return i * n / p
}

// gemmJob is one gemm call. With pm = pn = 1, run computes rows [lo, hi) of C; otherwise blocks
// [lo, hi) of the pm × pn grid, block i at row block i/pn and column block i mod pn.
type gemmJob struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
	pm, pn         int
}

func (g *gemmJob) Run(_, _, lo, hi int) {
	if g.pm == 1 && g.pn == 1 {
		g.block(lo, hi, 0, g.n)
		return
	}
	for i := lo; i < hi; i++ {
		bi, bj := i/g.pn, i%g.pn
		g.block(bound(g.m, g.pm, bi), bound(g.m, g.pm, bi+1), bound(g.n, g.pn, bj), bound(g.n, g.pn, bj+1))
	}
}

// block computes C[r0:r1, c0:c1].
func (g *gemmJob) block(r0, r1, c0, c1 int) {
	if r1 <= r0 || c1 <= c0 {
		return
	}
	aoff := r0 * g.lda
	if g.transA {
		aoff = r0
	}
	boff := c0
	if g.transB {
		boff = c0 * g.ldb
	}
	blas.Sgemm(g.transA, g.transB, r1-r0, c1-c0, g.k, g.alpha, g.a[aoff:], g.lda, g.b[boff:], g.ldb, g.beta, g.c[r0*g.ldc+c0:], g.ldc)
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
