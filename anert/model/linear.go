package model

import (
	"sync/atomic"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/par"
)

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

	// post, when set, runs on each block of C once the block is computed (in a gemmGrid, once
	// every product of the block is): an element-wise op fused into the GEMM's loop as its
	// epilogue (RoPE on q and k, SwiGLU on h1 and h3), which then needs no loop of its own and
	// finds the block still in cache. unit, when set, makes the blocks' column bounds multiples of
	// unit (the head width, for an op on whole heads); else they are multiples of 16 where the
	// blocks are that wide.
	post tileOp
	unit int

	// rowPost, when set (on a loop's only grid: one gemms product, or a gemmGrid's first spec),
	// runs on each block of rows of C once every block of those rows is computed — by the
	// goroutine that finishes the last of them, so no goroutine waits — as part number ⌊row
	// block⌋: a row-local chain that needs whole rows (a residual add and an RMSNorm) fused into
	// the GEMM's loop as its row epilogue.
	rowPost rowChain
}

// A tileOp is an element-wise op on a block of a matrix: the rows [r0, r1) and columns [c0, c1).
// It is called on different blocks from several goroutines at once.
type tileOp interface {
	tile(r0, r1, c0, c1 int)
}

// rangeTile runs a range op (a par.Job over [lo, hi) of a flat row-major matrix of ld columns,
// such as swigluJob) on a block of that matrix: as one range when the block spans whole rows,
// else one range per row.
type rangeTile struct {
	j  par.Job
	ld int
}

func (t rangeTile) tile(r0, r1, c0, c1 int) {
	if c0 == 0 && c1 == t.ld {
		t.j.Run(0, 0, r0*t.ld, r1*t.ld)
		return
	}
	for r := r0; r < r1; r++ {
		t.j.Run(0, 0, r*t.ld+c0, r*t.ld+c1)
	}
}

// maxGemms is the most products one loop takes (a layer's seven weight gradients).
const maxGemms = 8

// gemms runs independent products (no output overlaps another's inputs or output: a layer's
// q, k, v projections, the weight gradients of one backward step) as ONE parallel loop over
// blocks of their outputs, each block a single-threaded BLAS call (see beginStep) followed by its
// spec's post op. The products share the goroutines in proportion to their work: each is cut into
// blocks of about the same cost (gemmJob.plan), and the goroutines take blocks until none is
// left. One loop instead of one per product saves a wait for the slowest block per product, and
// small products (a GQA key projection) no longer run alone on many cores.
func (t *team) gemms(gs ...gemmSpec) { t.gemmLoop(gs[:1], gs[1:]) }

// gemmGrid runs products of the same m × n output shape on ONE grid of blocks: each block
// computes the same rows and columns of every product in turn (each with its own C and β), then
// runs the specs' post ops on them, so that a post op may combine the products' blocks (SwiGLU
// on h1 = x·W1ᵀ and h3 = x·W3ᵀ). Products sharing one C with β = 1 after the first add up:
// C = Σ_i α_i·op(A_i)·op(B_i) + β_0·C — dXn = dq·Wq + dk·Wk + dv·Wv and dX2n = dh1·W1 + dh3·W3
// as one loop (no block waits for another product's loop). Product 0's unit applies.
func (t *team) gemmGrid(gs ...gemmSpec) { t.gemmLoop(gs, nil) }

// gemmLoop is gemmGrid on grid and, in the same loop, gemms on more (independent of grid's
// products and of each other): a backward step's input-side sum and the weight gradients that
// read the same inputs, as one loop.
func (t *team) gemmLoop(grid, more []gemmSpec) {
	j := &t.gemm1
	j.set(grid, more)
	t.runGemms(j)
}

// runGemms cuts j's products into blocks for the team's goroutines and runs them as one loop.
func (t *team) runGemms(j *gemmJob) {
	j.plan(t.w, t.lone())
	j.armRows()
	t.runRows(j.blocks(), j.blocks(), j.start[1:j.ngrid+1], j)
}

// gemmChain runs two grids (each as gemmGrid) as stages of ONE loop, where the second reads the
// first's output row by row (the FFN's W1|W3 grid and then W2 on its rows): a block of the
// second stage starts as soon as the first stage's blocks covering its rows, their post ops and
// rowPost are done, rather than after the first stage's slowest block. The goroutines that finish
// their share of the first stage early start on the second's ready rows, so the loop ends in one
// wait instead of two. Every block of the first stage is claimed before any of the second's
// (parts are claimed in order), so a block that waits only waits for blocks in progress. The
// stages must be row-local to each other: the second's rows [r0, r1) read only the first's rows
// [r0, r1) (and nothing the first stage's other rows write). Each stage is cut as if it ran alone.
func (t *team) gemmChain(first, second []gemmSpec) {
	if !tune.chain {
		t.gemmGrid(first...)
		t.gemmGrid(second...)
		return
	}
	for i, g := range second {
		if g.m != first[0].m || g.n != second[0].n || (i > 0 && g.rowPost != nil) {
			panic("model: a chain's stages have the same rows, a stage's products the same shape, and a rowPost goes on its first")
		}
	}
	j := &t.gemm1
	j.set(first, nil)
	if j.ng+len(second) > maxGemms {
		panic("model: a gemm loop takes 1 to maxGemms products")
	}
	j.ng += copy(j.g[j.ng:], second)
	j.ngrid, j.first[2], j.chained = 2, j.ng, true
	t.runGemms(j)
}

// gemmJob is one gemmLoop: its products in grids, grid i made of the products [first[i],
// first[i+1]) (same output shape), cut into a pm[i] × pn[i] grid of blocks of C numbered from
// start[i]; block b of a grid is at row block b/pn and column block b mod pn, and runs every
// product of its grid.
type gemmJob struct {
	g      [maxGemms]gemmSpec
	ng     int
	ngrid  int
	first  [maxGemms + 1]int
	pm, pn [maxGemms]int
	start  [maxGemms + 1]int
	// chained: grid 1 is the second stage of a gemmChain (it waits for grid 0's rows).
	chained bool
	// feeds: a later stage of the loop reads grid 0's rows once ready (team.attnThen).
	feeds bool
	// For the grids with a rowPost, and grid 0 of a chain: left, the blocks of each row block not
	// yet computed; ready, set once a row block's blocks, post ops and rowPost are all done.
	// Grid i's row blocks are at rows[i].
	left  []atomic.Int32
	ready []atomic.Bool
	rows  [maxGemms]int
	// Product k with padLD[k] > 0 reads op(B) from pad[k], a copy of its B with rows padLD[k]
	// apart (padded), made column block by column block by the first block that needs it:
	// padState[padAt[k]+bj] is 0 (not copied), 1 (being copied) or 2 (copied).
	pad      [maxGemms][]float32
	padLD    [maxGemms]int
	padAt    [maxGemms]int
	padState []atomic.Int32
}

// padStride: a product whose B is stored transposed (y = x·Wᵀ: B's rows are C's columns) with
// its rows a multiple of padStride floats (4 KB) apart reads B from a copy with the rows 16
// floats further apart (gemmJob.pad). At such a stride the rows of a column block all fall in
// the same few L1 sets, and packing them for the GEMM thrashes: oneDNN ran the original shape's
// Y = Gate·W2ᵀ blocks (128×96, k = 2048, B's rows 2048 floats apart) at 68–88 GFLOP/s on one
// core of this project's machine, and at 155–163 with the rows 2064 apart (1024³: 145–190).
const padStride = 1024

// padded reports whether g reads B through a padded copy (padStride): a product of at least 64
// rows, so that the copy (n·k) is small beside the product (m·n·k).
func padded(g *gemmSpec) bool { return g.transB && g.ldb%padStride == 0 && g.m >= 64 }

// set stores the products: grid's on one grid, each of more on its own.
func (j *gemmJob) set(grid, more []gemmSpec) {
	if len(grid)+len(more) > maxGemms || len(grid) == 0 {
		panic("model: a gemm loop takes 1 to maxGemms products")
	}
	for _, g := range grid[1:] {
		if g.m != grid[0].m || g.n != grid[0].n {
			panic("model: gemmGrid's products must have the same output shape")
		}
	}
	j.chained, j.feeds, j.padLD = false, false, [maxGemms]int{} // gemmChain, attnThen and armPads set them
	j.ng = copy(j.g[:], grid)
	j.ng += copy(j.g[j.ng:], more)
	j.ngrid = 1 + len(more)
	j.first[0], j.first[1] = 0, len(grid)
	for i := range more {
		j.first[i+2] = len(grid) + i + 1
	}
	for i, g := range j.g[:j.ng] {
		if g.rowPost != nil && i > 0 {
			panic("model: a rowPost goes on the loop's first product (its first grid)")
		}
	}
}

// tracked reports whether grid i's row blocks are counted (armRows): it has a rowPost, or a
// chain's second stage (or a later stage, feeds) waits for them.
func (j *gemmJob) tracked(i int) bool {
	return j.g[j.first[i]].rowPost != nil || ((j.chained || j.feeds) && i == 0)
}

// armRows prepares the tracked grids' row blocks — the count of blocks left in each, not ready,
// and the rowPost's parts — and the padded copies of B (armPads).
func (j *gemmJob) armRows() {
	j.armPads()
	n := 0
	for i := range j.ngrid {
		j.rows[i] = n
		if j.tracked(i) {
			n += j.pm[i]
		}
	}
	if n == 0 {
		return
	}
	if len(j.left) < n {
		j.left, j.ready = make([]atomic.Int32, n), make([]atomic.Bool, n)
	}
	for i := range j.ngrid {
		if !j.tracked(i) {
			continue
		}
		for r := range j.pm[i] {
			j.left[j.rows[i]+r].Store(int32(j.pn[i]))
			j.ready[j.rows[i]+r].Store(false)
		}
		if rp := j.g[j.first[i]].rowPost; rp != nil {
			rp.prepare(j.pm[i])
		}
	}
}

// armPads sizes the padded copies of the products that read B through one (padded), none of
// whose column blocks is copied yet.
func (j *gemmJob) armPads() {
	n := 0
	for i := range j.ngrid {
		for k := j.first[i]; k < j.first[i+1]; k++ {
			g := &j.g[k]
			if !padded(g) {
				continue
			}
			j.padLD[k], j.padAt[k] = g.ldb+16, n
			n += j.pn[i]
			if need := g.n * j.padLD[k]; len(j.pad[k]) < need {
				j.pad[k] = make([]float32, need)
			}
		}
	}
	if len(j.padState) < n {
		j.padState = make([]atomic.Int32, n)
	}
	for i := range n {
		j.padState[i].Store(0)
	}
}

// padB makes sure the rows [c0, c1) of product k's B (its column block bj) are in its padded
// copy: the first block to need them copies them, the others wait for it (it is copying: a
// block's copy never waits).
func (j *gemmJob) padB(k, bj, c0, c1 int) {
	st := &j.padState[j.padAt[k]+bj]
	if st.CompareAndSwap(0, 1) {
		g, ld := &j.g[k], j.padLD[k]
		for r := c0; r < c1; r++ {
			copy(j.pad[k][r*ld:r*ld+g.k], g.b[r*g.ldb:r*g.ldb+g.k])
		}
		st.Store(2)
		return
	}
	par.Await(func() bool { return st.Load() == 2 })
}

// waitRows waits until grid i's row blocks that overlap the rows [r0, r1) are ready (a chain's
// second stage, before its block of those rows). The blocks it waits for are in progress on other
// goroutines (see gemmChain); it yields while it waits (par.Await), as on fewer cores than goroutines.
func (j *gemmJob) waitRows(i, r0, r1 int) {
	m := j.g[j.first[i]].m
	for r := range j.pm[i] {
		if bound(m, j.pm[i], r, 16) >= r1 || bound(m, j.pm[i], r+1, 16) <= r0 {
			continue
		}
		par.Await(j.ready[j.rows[i]+r].Load)
	}
}

// blocks is the number of blocks of the loop.
func (j *gemmJob) blocks() int { return j.start[j.ngrid] }

// gridCost is grid i's output shape, its k summed over its products, and its column unit.
func (j *gemmJob) gridCost(i int) (m, n, k, unit int) {
	g0 := j.g[j.first[i]]
	for _, g := range j.g[j.first[i]:j.first[i+1]] {
		k += g.k
	}
	return g0.m, g0.n, k, g0.unit
}

// plan cuts the products into blocks for w goroutines. Each block packs its rows of op(A) and
// its columns of op(B) into BLAS's blocked layout, so the cut is chosen for little repacking:
//
//   - up to 4 goroutines: rows only, each grid (a product, or gemmGrid's products) cut as if it ran alone: one block
//     per goroutine, or two when each still has 256 rows or more (so that a goroutine slowed by
//     another process can leave its second to the other). Every product then spreads evenly over
//     the goroutines, so products of any sizes share them in proportion to their work. With blocks
//     of 128 rows, repacking all of op(B) per block cost ~10% of the GEMM time; splitting columns
//     measured no faster on two cores.
//   - more goroutines: a pm × pn grid per product, pm chosen to minimise the data packed,
//     pn·m·k + pm·k·n, with bounds on multiples of 16 or the spec's unit (gridOf). A lone grid
//     gets lone·w blocks (lone: tune.loneBlocks, 4, or in a narrow model tune.loneNarrow, 8
//     — team.lone; smaller blocks, a shorter wait at the loop's end; a deferred lone product,
//     planned for w·dblocks, lone·w·dblocks). On 16 cores, splitting rows 16
//     ways repacked op(B) 16 times and ran the model's shapes at a third to a half of the grid's
//     rate (anert/bench/cmd/gemmsplit). Several grids get blocks of about equal cost: grid i
//     p_i ≈ q·w·cost_i/Σcost, q the smallest of 1…4 whose blocks, taken in order by w goroutines,
//     finish within 10% of a perfect share (shares), rather than w blocks each, which would cut
//     a small product (a GQA key projection) into slivers.
func (j *gemmJob) plan(w, lone int) {
	var p [maxGemms]int
	if w <= 4 || j.ngrid == 1 || j.chained { // a chain's stages run one after the other
		for i := range j.ngrid {
			m, n, k, u := j.gridCost(i)
			j.pm[i], j.pn[i] = lonePlan(w, lone, m, n, k, u, &j.g[j.first[i]])
		}
	} else {
		var cost [maxGemms]float64
		total := 0.0
		for i := range j.ngrid {
			m, n, k, _ := j.gridCost(i)
			cost[i] = float64(m) * float64(n) * float64(k)
			total += cost[i]
		}
		for q := 1; q <= 4; q++ {
			for i := range j.ngrid {
				p[i] = max(1, int(float64(q*w)*cost[i]/max(total, 1)+0.5))
			}
			if shares(w, cost[:j.ngrid], p[:j.ngrid]) <= tune.shareTol*total/float64(w) {
				break
			}
		}
		for i := range j.ngrid {
			m, n, _, u := j.gridCost(i)
			j.pm[i], j.pn[i] = gridOf(m, n, p[i], u, &j.g[j.first[i]])
		}
	}
	j.start[0] = 0
	for i := range j.ngrid {
		j.start[i+1] = j.start[i] + j.pm[i]*j.pn[i]
	}
}

// lonePlan is the grid of a lone product (or a shared grid) of m×n×k on w goroutines (see plan),
// lone blocks per goroutine (0: 1, or 2 for 10⁸ multiply-adds or more), columns cut on multiples
// of unit (0: 16), of g's transposition.
func lonePlan(w, lone, m, n, k, unit int, g *gemmSpec) (pm, pn int) {
	if w <= 4 {
		return w * max(1, min(2, m/(256*w))), 1
	}
	parts := w
	if lone > 0 {
		parts *= lone
	} else if m*n*k >= 1e8 {
		parts *= 2
	}
	if _, ok := g.rowPost.(interface{ spreadRows() }); ok {
		return gridOfRows(m, n, parts, min(w, m/16), unit, g)
	}
	return gridOf(m, n, parts, unit, g)
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

// gridOf is the pm × pn = parts split (pm a divisor of parts, at most m/16 rows of blocks and
// n/unit columns where possible; unit 0 is 16) whose largest block takes least: rows·cols
// multiply-adds plus a·rows + b·cols for the elements of op(A) and op(B) it reads, per unit of k
// (a, b: g's gridWeights; packAlpha each by default).
// With equal blocks and a = b that is the packed data, pn·m + pm·n (× k); with column bounds on
// whole heads that do not divide evenly it also counts the largest block (12 heads in 5 column
// blocks: 3 heads where the mean is 2.4, so that block's goroutine ends the loop 25% late).
func gridOf(m, n, parts, unit int, g *gemmSpec) (pm, pn int) {
	return gridOfRows(m, n, parts, 1, unit, g)
}

// gridOfRows is gridOf with at least minPM rows of blocks (a rowPost with work to spread).
func gridOfRows(m, n, parts, minPM, unit int, g *gemmSpec) (pm, pn int) {
	pa, pb := gridWeights(g)
	unit = colUnit(unit)
	best := -1
	for d := max(1, minPM); d <= parts; d++ {
		if parts%d != 0 {
			continue
		}
		e := parts / d
		if (d > 1 && m < 16*d) || (e > 1 && n < unit*e) {
			continue
		}
		r, c := largest(m, d, 16), largest(n, e, unit)
		if t := r*c + pa*r + pb*c; best < 0 || t < best {
			best, pm, pn = t, d, e
		}
	}
	if best < 0 { // too small to split on 16-element bounds: rows
		return min(parts, max(1, m)), 1
	}
	return pm, pn
}

// gridWeights is what gridOf counts per element of a block's rows of op(A) and columns of op(B)
// for g's kind of product: a weight gradient dyᵀ·x (A stored transposed: tune.tnA, tnB), x·Wᵀ
// (B stored transposed: ntA, ntB) or dy·W (nnA, nnB).
func gridWeights(g *gemmSpec) (a, b int) {
	switch {
	case g.transA:
		return tune.tnA, tune.tnB
	case g.transB:
		return tune.ntA, tune.ntB
	}
	return tune.nnA, tune.nnB
}

// packAlpha is what packing one element of a block's operands costs, in multiply-adds: on two
// cores, repacking all of op(B) for blocks of 128 rows cost ~10% of the GEMM time (plan), 12.8.
const packAlpha = 16

// largest is the widest of the p blocks of [0, n) (bound with u).
func largest(n, p, u int) int {
	most := 0
	for i := range p {
		most = max(most, bound(n, p, i+1, u)-bound(n, p, i, u))
	}
	return most
}

// colUnit is a spec's column unit: unit, or 16 when unset.
func colUnit(unit int) int {
	if unit > 0 {
		return unit
	}
	return 16
}

// bound is the i-th of p block boundaries of [0, n): i·n/p rounded to a multiple of u when the
// blocks are at least u wide (n when i = p). (Blocks of whole heads: n is a multiple of u = hd
// and the grid has at most n/u columns of blocks, so the bounds always round.)
func bound(n, p, i, u int) int {
	if i >= p {
		return n
	}
	if n >= u*p {
		return min(n, (i*n/p+u/2)/u*u)
	}
	return i * n / p
}

// Run computes blocks [lo, hi) of the loop. The block that completes a row block runs the rowPost
// on it: the atomic count orders every other block's writes before it.
func (j *gemmJob) Run(wk, _, lo, hi int) {
	for b := lo; b < hi; b++ {
		i, bi, r0, r1 := j.rowsOf(b)
		bj := (b - j.start[i]) % j.pn[i]
		gs := j.g[j.first[i]:j.first[i+1]]
		u := colUnit(gs[0].unit)
		c0, c1 := bound(gs[0].n, j.pn[i], bj, u), bound(gs[0].n, j.pn[i], bj+1, u)
		if j.chained && i == 1 {
			j.waitRows(0, r0, r1)
		}
		if r1 > r0 && c1 > c0 {
			for k := range gs {
				g := &gs[k]
				if p := j.first[i] + k; j.padLD[p] > 0 { // B from its padded copy
					j.padB(p, bj, c0, c1)
					cp := *g
					cp.b, cp.ldb = j.pad[p], j.padLD[p]
					g = &cp
				}
				g.block(r0, r1, c0, c1, g.beta)
			}
			for k := range gs {
				if gs[k].post != nil {
					gs[k].post.tile(r0, r1, c0, c1)
				}
			}
		}
		if j.tracked(i) && j.left[j.rows[i]+bi].Add(-1) == 0 {
			if rp := gs[0].rowPost; rp != nil {
				rp.Run(wk, bi, r0, r1)
			}
			j.ready[j.rows[i]+bi].Store(true)
		}
	}
}

// rowsOf is block b's grid i, its row block bi in that grid and its rows [r0, r1).
func (j *gemmJob) rowsOf(b int) (i, bi, r0, r1 int) {
	for b >= j.start[i+1] {
		i++
	}
	bi, m := (b-j.start[i])/j.pn[i], j.g[j.first[i]].m
	return i, bi, bound(m, j.pm[i], bi, 16), bound(m, j.pm[i], bi+1, 16)
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
	return gemmSpec{false, true, n, out, in, 1, x, in, wt, in, 0, y, out, nil, 0, nil}
}

// proj is linear from the weights w or, when the layer has it (Layer.T), from their transposed
// copy wT [in, out]: y = x·(Wᵀ), a product whose B lies as it is read (transposed.go).
func proj(y, x []float32, w *tensor.Param, wT []float32, n, in, out int) gemmSpec {
	if wT == nil {
		return linear(y, x, w.W, n, in, out)
	}
	return gemmSpec{false, false, n, out, in, 1, x, in, wT, out, 0, y, out, nil, 0, nil}
}

// linearInput is the spec of dx = beta·dx + dy·W for dy [n, out], W [out, in], dx [n, in].
func linearInput(dx, dy, wt []float32, n, in, out int, beta float32) gemmSpec {
	return gemmSpec{false, false, n, in, out, 1, dy, out, wt, in, beta, dx, in, nil, 0, nil}
}

// linearWeight is the spec of the weight gradient dW += dyᵀ·x for dy [n, out], x [n, in],
// dW [out, in]: one GEMM over all n = B·T tokens.
func linearWeight(dw, dy, x []float32, n, in, out int) gemmSpec {
	return gemmSpec{true, false, out, in, n, 1, dy, out, x, in, 1, dw, in, nil, 0, nil}
}

// linearForward is y = x·Wᵀ (see linear) on the team.
func linearForward(t *team, y, x, wt []float32, n, in, out int) {
	t.gemms(linear(y, x, wt, n, in, out))
}

// linearBackwardInput is dx = beta·dx + dy·W (see linearInput) on the team (beta 0 overwrites;
// a sum of products into one dx is one gemmGrid).
func linearBackwardInput(t *team, dx, dy, wt []float32, n, in, out int, beta float32) {
	t.gemms(linearInput(dx, dy, wt, n, in, out, beta))
}

// linearBackwardWeight accumulates dW += dyᵀ·x (see linearWeight) on the team.
func linearBackwardWeight(t *team, dw, dy, x []float32, n, in, out int) {
	t.gemms(linearWeight(dw, dy, x, n, in, out))
}
