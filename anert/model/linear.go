package model

import "github.com/anelab/anelab/anert/blas"

// A gemmSpec is one BLAS product C = α·op(A)·op(B) + β·C, C [m, n], op(A) [m, k], op(B) [k, n]
// (row-major, leading dimensions lda, ldb, ldc; op(X) = Xᵀ when trans).
type gemmSpec struct {
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
}

// maxGemms is the most products one loop takes (a layer's four attention weight gradients).
const maxGemms = 4

// gemm is one blas.Sgemm split over the team's goroutines (see gemms).
func (t *team) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	t.gemms(gemmSpec{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc})
}

// gemms runs independent products (no output overlaps another's inputs or output: a layer's
// q, k, v projections, W1 and W3, the weight gradients of one backward step) as ONE parallel loop
// over blocks of their outputs, each block a single-threaded BLAS call (see beginStep). The
// products share the goroutines in proportion to their work: each is cut into blocks of about
// the same cost (gemmJob.plan), and the goroutines take blocks until none is left. One loop
// instead of one per product saves a wait for the slowest block per product, and small products
// (a GQA key projection) no longer run alone on many cores.
func (t *team) gemms(gs ...gemmSpec) {
	j := &t.gemm1
	j.set(gs, false)
	j.plan(t.w)
	t.run(j.blocks(), j.blocks(), j)
}

// gemmSum adds up products into one output, C = Σ_i α_i·op(A_i)·op(B_i) + β_0·C (every spec has
// the same C, m and n; the first spec's β applies, the others add): dXn = dq·Wq + dk·Wk + dv·Wv
// and dX2n = dh1·W1 + dh3·W3 as ONE loop over blocks of C, each block computing its part of
// every product in turn (so no block waits for another product's loop).
func (t *team) gemmSum(gs ...gemmSpec) {
	j := &t.gemm1
	j.set(gs, true)
	j.plan(t.w)
	t.run(j.blocks(), j.blocks(), j)
}

// gemmJob is one gemms or gemmSum call: product i (of ng) is cut into a pm[i] × pn[i] grid of
// blocks of C, numbered from start[i]; block b of a product is at row block b/pn and column block
// b mod pn. With sum, there is one grid (product 0's), and each block runs every product.
type gemmJob struct {
	g      [maxGemms]gemmSpec
	ng     int
	sum    bool
	pm, pn [maxGemms]int
	start  [maxGemms + 1]int
}

func (j *gemmJob) set(gs []gemmSpec, sum bool) {
	if len(gs) > maxGemms || len(gs) == 0 {
		panic("model: gemms takes 1 to maxGemms products")
	}
	j.ng, j.sum = copy(j.g[:], gs), sum
}

// blocks is the number of blocks of the loop.
func (j *gemmJob) blocks() int { return j.start[j.grids()] }

// grids is the number of grids: 1 for a sum, ng otherwise.
func (j *gemmJob) grids() int {
	if j.sum {
		return 1
	}
	return j.ng
}

// plan cuts the products into blocks for w goroutines. Each block packs its rows of op(A) and
// its columns of op(B) into BLAS's blocked layout, so the cut is chosen for little repacking:
//
//   - up to 4 goroutines: rows only. A lone product (or a sum) gets one block per goroutine, or
//     two when each still has 256 rows or more (so that a goroutine slowed by another process can
//     leave its second to the other). With blocks of 128 rows, repacking all of op(B) per block
//     cost ~10% of the GEMM time; splitting columns measured no faster on two cores.
//   - more goroutines: a pm × pn grid per product (pm·pn = its blocks), pm chosen to minimise the
//     data packed, pn·m·k + pm·k·n, with bounds on multiples of 16 (gridOf). A lone product gets
//     w blocks, or 2w for 10⁸ multiply-adds or more. On 16 cores, splitting rows 16 ways repacked
//     op(B) 16 times and ran the model's shapes at a third to a half of the grid's rate
//     (anert/bench/cmd/gemmsplit).
//   - several independent products: blocks of about equal cost, product i getting
//     p_i ≈ q·w·cost_i/Σcost blocks, q the smallest of 1…4 whose blocks, taken in order by w
//     goroutines, finish within 10% of a perfect share (shares); up to 4 goroutines, q = 2 first
//     when its blocks keep 256 rows or more, as for a lone product.
func (j *gemmJob) plan(w int) {
	if j.sum || j.ng == 1 {
		g := &j.g[0]
		k := 0
		if j.sum {
			for _, s := range j.g[:j.ng] {
				k += s.k
			}
		} else {
			k = g.k
		}
		j.pm[0], j.pn[0] = lonePlan(w, g.m, g.n, k)
		j.start[0], j.start[1] = 0, j.pm[0]*j.pn[0]
		return
	}
	var cost [maxGemms]float64
	total := 0.0
	for i, s := range j.g[:j.ng] {
		cost[i] = float64(s.m) * float64(s.n) * float64(s.k)
		total += cost[i]
	}
	var p [maxGemms]int
	// cut sets p for q blocks per goroutine, reporting whether they finish within 10% of a
	// perfect share and the fewest rows of a block.
	cut := func(q int) (balanced bool, rows int) {
		rows = 1 << 30
		for i := range j.ng {
			p[i] = max(1, int(float64(q*w)*cost[i]/max(total, 1)+0.5))
			if w <= 4 { // row blocks of at least 16 rows
				p[i] = min(p[i], max(1, j.g[i].m/16))
			}
			rows = min(rows, j.g[i].m/p[i])
		}
		return shares(w, cost[:j.ng], p[:j.ng]) <= 1.1*total/float64(w), rows
	}
	done := false
	if w <= 4 { // two blocks per goroutine when they keep 256 rows, as for a lone product
		ok, rows := cut(2)
		done = ok && rows >= 256
	}
	for q := 1; !done && q <= 4; q++ {
		done, _ = cut(q)
	}
	j.start[0] = 0
	for i := range j.ng {
		if w <= 4 {
			j.pm[i], j.pn[i] = p[i], 1
		} else {
			j.pm[i], j.pn[i] = gridOf(j.g[i].m, j.g[i].n, p[i])
		}
		j.start[i+1] = j.start[i] + j.pm[i]*j.pn[i]
	}
}

// lonePlan is the grid of a lone product (or a sum) of m×n×k on w goroutines (see plan).
func lonePlan(w, m, n, k int) (pm, pn int) {
	if w <= 4 {
		return w * max(1, min(2, m/(256*w))), 1
	}
	parts := w
	if m*n*k >= 1e8 {
		parts *= 2
	}
	return gridOf(m, n, parts)
}

// shares is when w goroutines, each taking the next block as soon as it is free, finish the
// blocks of products of the given costs cut into p[i] equal blocks each (in product order).
func shares(w int, cost []float64, p []int) float64 {
	var free [256]float64 // when each goroutine is next free (w ≤ par's 255 workers + 1)
	w = min(w, len(free))
	end := 0.0
	for i, c := range cost {
		for range p[i] {
			g := 0
			for k := 1; k < w; k++ {
				if free[k] < free[g] {
					g = k
				}
			}
			free[g] += c / float64(p[i])
			end = max(end, free[g])
		}
	}
	return end
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

// Run computes blocks [lo, hi) of the loop.
func (j *gemmJob) Run(_, _, lo, hi int) {
	for b := lo; b < hi; b++ {
		i := 0
		for b >= j.start[i+1] {
			i++
		}
		bi, bj := (b-j.start[i])/j.pn[i], (b-j.start[i])%j.pn[i]
		g := &j.g[i]
		r0, r1 := bound(g.m, j.pm[i], bi), bound(g.m, j.pm[i], bi+1)
		c0, c1 := bound(g.n, j.pn[i], bj), bound(g.n, j.pn[i], bj+1)
		if !j.sum {
			g.block(r0, r1, c0, c1, g.beta)
			continue
		}
		for k := range j.ng {
			beta := j.g[0].beta
			if k > 0 {
				beta = 1
			}
			j.g[k].block(r0, r1, c0, c1, beta)
		}
	}
}

// block computes C[r0:r1, c0:c1] with β = beta.
func (g *gemmSpec) block(r0, r1, c0, c1 int, beta float32) {
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
	blas.Sgemm(g.transA, g.transB, r1-r0, c1-c0, g.k, g.alpha, g.a[aoff:], g.lda, g.b[boff:], g.ldb, beta, g.c[r0*g.ldc+c0:], g.ldc)
}

// linear is the spec of y = x·Wᵀ for x [n, in], W [out, in] (llama2.c layout), y [n, out]
// (overwritten).
func linear(y, x, wt []float32, n, in, out int) gemmSpec {
	return gemmSpec{false, true, n, out, in, 1, x, in, wt, in, 0, y, out}
}

// linearInput is the spec of dx = beta·dx + dy·W for dy [n, out], W [out, in], dx [n, in].
func linearInput(dx, dy, wt []float32, n, in, out int, beta float32) gemmSpec {
	return gemmSpec{false, false, n, in, out, 1, dy, out, wt, in, beta, dx, in}
}

// linearWeight is the spec of the weight gradient dW += dyᵀ·x for dy [n, out], x [n, in],
// dW [out, in]: one GEMM over all n = B·T tokens.
func linearWeight(dw, dy, x []float32, n, in, out int) gemmSpec {
	return gemmSpec{true, false, out, in, n, 1, dy, out, x, in, 1, dw, in}
}

// linearForward is y = x·Wᵀ (see linear) on the team.
func linearForward(t *team, y, x, wt []float32, n, in, out int) {
	t.gemms(linear(y, x, wt, n, in, out))
}

// linearBackwardInput is dx = beta·dx + dy·W (see linearInput) on the team (beta 0 overwrites;
// a sum of products into one dx is one gemmSum).
func linearBackwardInput(t *team, dx, dy, wt []float32, n, in, out int, beta float32) {
	t.gemms(linearInput(dx, dy, wt, n, in, out, beta))
}

// linearBackwardWeight accumulates dW += dyᵀ·x (see linearWeight) on the team.
func linearBackwardWeight(t *team, dw, dy, x []float32, n, in, out int) {
	t.gemms(linearWeight(dw, dy, x, n, in, out))
}
