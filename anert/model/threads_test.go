package model

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/internal/par"
)

// TestThreadsAgree: a training step on 1, 5 and 16 goroutines gives the same loss and gradients
// (within float32 rounding: the blocks of a GEMM are separate BLAS calls), with the attention
// backward taking all heads at once or in groups of one and two. The config is large enough that
// every loop is cut: a grid of GEMM blocks at 16 goroutines, three row blocks per head (the last
// partial), several (sequence, head) pairs per goroutine.
func TestThreadsAgree(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.Model)
	}{
		{"default", func(*config.Model) {}},
		{"gqa+qknorm+relu2", func(c *config.Model) { c.KVHeads, c.QKNorm, c.Act = 2, true, "relu2" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallModel()
			tc.edit(&cfg)
			const batch = 3
			r := rand.New(rand.NewPCG(3, 3))
			in, tg := randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab))
			step := func(threads, scratch int) (float64, [][]float32) {
				cpu := NewCPU()
				cpu.Block, cpu.scratch = 16, scratch
				return stepGrads(t, cfg, cpu, threads, in, tg, batch)
			}
			loss1, g1 := step(1, 0)
			for _, run := range []struct{ threads, scratch int }{
				{5, 0}, {16, 0}, {2, 2 * 40 * 40}, {5, 4 * 40 * 40}, {16, 2 * 40 * 40},
			} {
				name := fmt.Sprintf("%d threads, scratch %d", run.threads, run.scratch)
				loss, g := step(run.threads, run.scratch)
				if math.Abs(loss-loss1) > 1e-6*math.Abs(loss1) {
					t.Errorf("%s: loss %.9g, 1 thread %.9g", name, loss, loss1)
				}
				sameGrads(t, name, g1, g)
			}
		})
	}
}

// stepGrads runs one training step of a model of cfg (weights perturbed, seed 5) on the backend
// cpu with threads goroutines, returning the loss and every parameter's gradient.
func stepGrads(t *testing.T, cfg config.Model, cpu *CPU, threads int, in, tg []uint16, batch int) (float64, [][]float32) {
	t.Helper()
	m, err := New(cfg, 1, cpu, Threads(threads))
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, 5)
	loss, err := m.ForwardBackward(in, tg, batch, 1)
	if err != nil {
		t.Fatal(err)
	}
	var g [][]float32
	for _, p := range m.Params() {
		g = append(g, p.G)
	}
	return loss, g
}

// sameGrads fails t where a parameter's gradient in got differs from want's by more than 1e-5 of
// want's largest (float32 rounding of GEMM blocks cut differently), or want's is all zero.
func sameGrads(t *testing.T, name string, want, got [][]float32) {
	t.Helper()
	for i, p := range want {
		var top, diff float64
		for j, v := range p {
			top = max(top, math.Abs(float64(v)))
			diff = max(diff, math.Abs(float64(got[i][j]-v)))
		}
		if top == 0 || diff > 1e-5*top {
			t.Errorf("%s: gradient %d: max |Δ| = %.3g of max %.3g", name, i, diff, top)
		}
	}
}

// TestTeamGemms: independent products as one loop (gemms) and a sum of products into one output
// (gemmGrid) on 1 to 16 goroutines against plain blas.Sgemm calls, outputs preloaded and β = 1 or
// 0.5, so that a block computed twice or never shows.
func TestTeamGemms(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 2))
	type dims struct{ m, n, k int }
	spec := func(d dims, ta, tb bool, beta float32) (gemmSpec, []float32) {
		lda, ldb := d.k, d.n
		if ta {
			lda = d.m
		}
		if tb {
			ldb = d.k
		}
		c := rnd(r, d.m*d.n, -1, 1)
		return gemmSpec{ta, tb, d.m, d.n, d.k, 0.5, rnd(r, d.m*d.k, -1, 1), lda, rnd(r, d.k*d.n, -1, 1), ldb,
			beta, append([]float32(nil), c...), d.n, nil, 0, nil}, c
	}
	check := func(name string, got, want []float32, k int) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-5+1e-7*float64(k)*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s: C[%d] = %g, want %g", name, i, got[i], want[i])
			}
		}
	}
	for _, w := range []int{1, 2, 3, 5, 16} {
		// gemms: a layer's q, k, v (equal), W1|W3, the weight gradients (unequal), a tiny one
		for _, set := range [][]dims{
			{{120, 64, 64}, {120, 64, 64}, {120, 64, 64}},
			{{300, 200, 33}, {300, 50, 33}},
			{{64, 96, 120}, {96, 64, 120}, {96, 64, 120}, {5, 3, 4}},
			{{7, 5, 3}},
		} {
			for _, tr := range [][2]bool{{false, true}, {true, false}, {false, false}, {true, true}} {
				var gs []gemmSpec
				var want [][]float32
				for i, d := range set {
					g, c := spec(d, tr[0], tr[1], float32(1-0.5*float64(i%2)))
					blas.Sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, c, g.ldc)
					gs, want = append(gs, g), append(want, c)
				}
				newTeam(w).gemms(gs...)
				for i := range gs {
					check(fmt.Sprintf("gemms w=%d %v trans %v product %d", w, set, tr, i), gs[i].c, want[i], set[i].k)
				}
			}
		}
		// gemmGrid: dXn = dq·Wq + dk·Wk + dv·Wv (k may differ: GQA), β0 = 0 and 1
		for _, beta := range []float32{0, 1} {
			m, n := 130, 48
			g0, c := spec(dims{m, n, 48}, false, false, beta)
			gs := []gemmSpec{g0}
			want := append([]float32(nil), c...)
			blas.Sgemm(false, false, m, n, 48, 0.5, g0.a, g0.lda, g0.b, g0.ldb, beta, want, n)
			for _, k := range []int{24, 24} {
				g, _ := spec(dims{m, n, k}, false, false, 1)
				g.c = g0.c
				blas.Sgemm(false, false, m, n, k, 0.5, g.a, g.lda, g.b, g.ldb, 1, want, n)
				gs = append(gs, g)
			}
			newTeam(w).gemmGrid(gs...)
			check(fmt.Sprintf("gemmGrid w=%d β=%g", w, beta), g0.c, want, 96)
		}
	}
}

// TestGridWeights: gridOf's weights for a block's rows and columns follow the product's
// transposition (gridWeights, tune.ntA … tnB): with packAlpha for all, all three kinds get the same
// grid; weighing columns more for x·Wᵀ (nt, as shipped) gives narrower column blocks, weighing rows
// more for dy·W (nn) or a weight gradient dyᵀ·x (tn) whole rows, each kind's weights leaving the
// others' grids.
func TestGridWeights(t *testing.T) {
	defer func(o cpuTune) { tune = o }(tune)
	if got := [6]int{tune.ntA, tune.ntB, tune.nnA, tune.nnB, tune.tnA, tune.tnB}; got != [6]int{8, 32, packAlpha, packAlpha, packAlpha, packAlpha} {
		t.Errorf("shipped weights %v: the case below marked 'as shipped' has others", got)
	}
	for _, tc := range []struct {
		ntA, ntB, nnA, nnB, tnA, tnB int
		nt, nn, tn                   [2]int // the 64-block grids of 1024×256
	}{
		{packAlpha, packAlpha, packAlpha, packAlpha, packAlpha, packAlpha, [2]int{16, 4}, [2]int{16, 4}, [2]int{16, 4}},
		{8, 32, 64, 4, packAlpha, packAlpha, [2]int{8, 8}, [2]int{64, 1}, [2]int{16, 4}},
		{8, 32, packAlpha, packAlpha, packAlpha, packAlpha, [2]int{8, 8}, [2]int{16, 4}, [2]int{16, 4}}, // as shipped
		{packAlpha, packAlpha, packAlpha, packAlpha, 64, 4, [2]int{16, 4}, [2]int{16, 4}, [2]int{64, 1}},
	} {
		tune.ntA, tune.ntB, tune.nnA, tune.nnB, tune.tnA, tune.tnB = tc.ntA, tc.ntB, tc.nnA, tc.nnB, tc.tnA, tc.tnB
		for _, x := range []struct {
			g    gemmSpec
			want [2]int
		}{{gemmSpec{transB: true}, tc.nt}, {gemmSpec{}, tc.nn}, {gemmSpec{transA: true}, tc.tn}} {
			if pm, pn := gridOf(1024, 256, 64, 16, &x.g); [2]int{pm, pn} != x.want {
				t.Errorf("weights %+v, transA %v transB %v: grid %d×%d, want %v", tc, x.g.transA, x.g.transB, pm, pn, x.want)
			}
		}
	}
}

// TestGemmPlan: up to 4 goroutines every product is cut as if it ran alone (so it spreads evenly
// over the goroutines); more goroutines share them in proportion to work — equal products get
// equal numbers of blocks, a product with 4× the work about 4× the blocks — and the blocks finish
// within 10% of a perfect share; a lone product on many cores gets 4 blocks a goroutine.
func TestGemmPlan(t *testing.T) {
	mk := func(d ...[3]int) []gemmSpec {
		var gs []gemmSpec
		for _, x := range d {
			gs = append(gs, gemmSpec{m: x[0], n: x[1], k: x[2]})
		}
		return gs
	}
	for _, tc := range []struct {
		w      int
		gs     []gemmSpec
		blocks []int // per product
	}{
		{2, mk([3]int{1024, 256, 256}, [3]int{1024, 256, 256}, [3]int{1024, 256, 256}), []int{4, 4, 4}},
		{2, mk([3]int{1024, 768, 256}, [3]int{1024, 768, 256}), []int{4, 4}},
		{2, mk([3]int{256, 768, 1024}, [3]int{768, 256, 1024}, [3]int{768, 256, 1024}), []int{2, 2, 2}},
		{4, mk([3]int{1024, 1024, 256}, [3]int{1024, 256, 256}), []int{4, 4}},
		{3, mk([3]int{600, 64, 64}, [3]int{20, 64, 64}), []int{3, 3}},
		{16, mk([3]int{512, 768, 768}, [3]int{512, 768, 768}, [3]int{512, 768, 768}), []int{5, 5, 5}},
		{16, mk([3]int{1024, 256, 256}, [3]int{1024, 64, 256}, [3]int{1024, 64, 256}), []int{21, 5, 5}},
		{2, mk([3]int{1024, 256, 256}), []int{4}},
		{16, mk([3]int{1024, 256, 256}), []int{64}}, // tune.loneBlocks = 4 a goroutine
	} {
		var j gemmJob
		j.set(tc.gs[:1], tc.gs[1:])
		j.plan(tc.w, tune.loneBlocks)
		var cost []float64
		var got []int
		total := 0.0
		for i, g := range tc.gs {
			got = append(got, j.pm[i]*j.pn[i])
			cost = append(cost, float64(g.m*g.n*g.k))
			total += cost[len(cost)-1]
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.blocks) {
			t.Errorf("w=%d %v: blocks %v, want %v", tc.w, tc.gs, got, tc.blocks)
		}
		if len(tc.gs) > 1 {
			if end := shares(tc.w, cost, got); end > 1.1*total/float64(tc.w) {
				t.Errorf("w=%d: blocks %v finish at %.3g of a perfect %.3g", tc.w, got, end, total/float64(tc.w))
			}
		}
	}
}

// TestLoneNarrow: a team's lone products get tune.loneNarrow blocks a goroutine in a model no
// wider than homedim (and when the width is unknown), tune.loneBlocks in a wider one or with
// lonen=0, and the plan cuts a lone product into that many blocks a goroutine.
func TestLoneNarrow(t *testing.T) {
	saved := tune
	defer func() { setTune(saved) }()
	for _, tc := range []struct{ dim, homeDim, lone, lonen, want int }{
		{256, 256, 4, 8, 8}, {768, 256, 4, 8, 4}, {256, 256, 4, 0, 4}, {0, 256, 4, 8, 8}, {512, 512, 2, 6, 6},
	} {
		tune.homeDim, tune.loneBlocks, tune.loneNarrow = tc.homeDim, tc.lone, tc.lonen
		tm := &team{w: 16, dim: tc.dim}
		if got := tm.lone(); got != tc.want {
			t.Errorf("%+v: lone() = %d, want %d", tc, got, tc.want)
		}
		var j gemmJob
		j.set([]gemmSpec{{m: 1024, n: 256, k: 256}}, nil)
		j.plan(tm.w, tm.lone())
		if b := j.blocks(); b != 16*tc.want {
			t.Errorf("%+v: a lone 1024×256×256 product on 16 goroutines in %d blocks, want %d", tc, b, 16*tc.want)
		}
	}
}

// tileCheck is a post op that checks each block it is given: column bounds on multiples of unit
// (or n), the block of every C in cs already computed (equal to want), and counts how many times
// each element was covered.
type tileCheck struct {
	t         *testing.T
	n, unit   int
	cs, wants [][]float32
	seen      []atomic.Int32
}

func (c *tileCheck) tile(r0, r1, c0, c1 int) {
	if c.unit > 0 && (c0%c.unit != 0 || (c1%c.unit != 0 && c1 != c.n)) {
		c.t.Errorf("block columns [%d, %d) not on multiples of %d", c0, c1, c.unit)
	}
	for r := r0; r < r1; r++ {
		for col := c0; col < c1; col++ {
			c.seen[r*c.n+col].Add(1)
			for i, cm := range c.cs {
				if w := c.wants[i][r*c.n+col]; math.Abs(float64(cm[r*c.n+col]-w)) > 1e-4*(1+math.Abs(float64(w))) {
					c.t.Errorf("post op saw C%d[%d,%d] = %g before it was computed (%g)", i, r, col, cm[r*c.n+col], w)
					return
				}
			}
		}
	}
}

// TestGemmPosts: a spec's post op runs exactly once on every element of its output, after the
// block is computed (in a gemmGrid, after every product's block), on column bounds that are
// multiples of the spec's unit — on 1 to 16 goroutines, with grids that cut columns.
func TestGemmPosts(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const k = 40
	for _, w := range []int{1, 2, 5, 16} {
		for _, tc := range []struct {
			m, n, unit int
			grid       bool
		}{{256, 96, 0, false}, {256, 96, 24, false}, {64, 96, 24, false}, {256, 128, 32, false},
			{64, 96, 24, true}, {64, 64, 0, true}} {
			m := tc.m
			var gs []gemmSpec
			var cs, wants [][]float32
			for range 2 {
				a, b, c := rnd(r, m*k, -1, 1), rnd(r, tc.n*k, -1, 1), rnd(r, m*tc.n, -1, 1)
				want := make([]float32, m*tc.n)
				blas.Sgemm(false, true, m, tc.n, k, 1, a, k, b, k, 0, want, tc.n)
				g := linear(c, a, b, m, k, tc.n)
				g.unit = tc.unit
				gs, cs, wants = append(gs, g), append(cs, c), append(wants, want)
			}
			name := fmt.Sprintf("w=%d %d×%d unit=%d grid=%v", w, m, tc.n, tc.unit, tc.grid)
			var checks []*tileCheck
			if tc.grid { // one post op, after both products
				ch := &tileCheck{t: t, n: tc.n, unit: tc.unit, cs: cs, wants: wants, seen: make([]atomic.Int32, m*tc.n)}
				gs[1].post, checks = ch, append(checks, ch)
				newTeam(w).gemmGrid(gs...)
			} else {
				for i := range gs {
					ch := &tileCheck{t: t, n: tc.n, unit: tc.unit, cs: cs[i : i+1], wants: wants[i : i+1],
						seen: make([]atomic.Int32, m*tc.n)}
					gs[i].post, checks = ch, append(checks, ch)
				}
				newTeam(w).gemms(gs...)
			}
			for _, ch := range checks {
				for i := range ch.seen {
					if v := ch.seen[i].Load(); v != 1 {
						t.Fatalf("%s: element %d seen by the post op %d times", name, i, v)
					}
				}
			}
		}
	}
}

// rowCheck is a rowPost that checks each block of rows it is given: whole rows of every C in cs
// already computed (equal to want), a part index below the prepared count and seen once.
type rowCheck struct {
	t         *testing.T
	n, parts  int
	cs, wants [][]float32
	rows      []atomic.Int32
	partSeen  []atomic.Int32
}

func (c *rowCheck) prepare(parts int) { c.parts, c.partSeen = parts, make([]atomic.Int32, parts) }

func (c *rowCheck) Run(_, p, lo, hi int) {
	if p < 0 || p >= c.parts {
		c.t.Errorf("part %d of %d", p, c.parts)
		return
	}
	c.partSeen[p].Add(1)
	for r := lo; r < hi; r++ {
		c.rows[r].Add(1)
		for i, cm := range c.cs {
			for col := range c.n {
				if w := c.wants[i][r*c.n+col]; math.Abs(float64(cm[r*c.n+col]-w)) > 1e-4*(1+math.Abs(float64(w))) {
					c.t.Errorf("rowPost saw C%d[%d,%d] = %g before it was computed (%g)", i, r, col, cm[r*c.n+col], w)
					return
				}
			}
		}
	}
}

// TestGemmRowPost: a rowPost runs once on every row of C, each time on whole rows already
// computed by every block (and every product of the grid), as a distinct part below the count
// it was prepared with, while other products of the loop (gemmLoop's more) are computed too — on
// 1 to 16 goroutines, with grids that cut columns.
func TestGemmRowPost(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const k = 40
	for _, w := range []int{1, 2, 5, 16} {
		for _, tc := range []struct {
			m, n     int
			products int // on the grid
		}{{256, 96, 1}, {64, 96, 1}, {1000, 256, 1}, {256, 96, 2}, {37, 5, 2}} {
			var gs []gemmSpec
			var cs, wants [][]float32
			for range tc.products {
				a, b, c := rnd(r, tc.m*k, -1, 1), rnd(r, tc.n*k, -1, 1), rnd(r, tc.m*tc.n, -1, 1)
				want := make([]float32, tc.m*tc.n)
				blas.Sgemm(false, true, tc.m, tc.n, k, 1, a, k, b, k, 0, want, tc.n)
				gs, cs, wants = append(gs, linear(c, a, b, tc.m, k, tc.n)), append(cs, c), append(wants, want)
			}
			ch := &rowCheck{t: t, n: tc.n, cs: cs, wants: wants, rows: make([]atomic.Int32, tc.m)}
			gs[0].rowPost = ch
			// and in the same loop (gemmLoop) two independent products of other shapes
			var more []gemmSpec
			var moreWant [][]float32
			for _, d := range []struct{ m, n, k int }{{33, 70, 20}, {128, 48, 64}} {
				a, b, c := rnd(r, d.m*d.k, -1, 1), rnd(r, d.n*d.k, -1, 1), rnd(r, d.m*d.n, -1, 1)
				want := make([]float32, d.m*d.n)
				blas.Sgemm(false, true, d.m, d.n, d.k, 1, a, d.k, b, d.k, 0, want, d.n)
				more, moreWant = append(more, linear(c, a, b, d.m, d.k, d.n)), append(moreWant, want)
			}
			newTeam(w).gemmLoop(gs, more)
			for i, g := range more {
				for e, v := range moreWant[i] {
					if math.Abs(float64(g.c[e]-v)) > 1e-4*(1+math.Abs(float64(v))) {
						t.Fatalf("w=%d: product %d of more: C[%d] = %g, want %g", w, i, e, g.c[e], v)
					}
				}
			}
			name := fmt.Sprintf("w=%d %d×%d products %d", w, tc.m, tc.n, tc.products)
			for i := range ch.rows {
				if v := ch.rows[i].Load(); v != 1 {
					t.Fatalf("%s: row %d seen by the rowPost %d times", name, i, v)
				}
			}
			for p := range ch.partSeen {
				if v := ch.partSeen[p].Load(); v > 1 {
					t.Fatalf("%s: part %d run %d times", name, p, v)
				}
			}
		}
	}
}

// TestDeferredWeightGrads: on 16 goroutines, the weight gradients as deferred work (dwDeferred)
// give the gradients of the fused step, with each layer's products and the classifier's offered to
// the workers (par.Deferreds) and at most two more loops a layer (the fences that drain what the
// workers left), over several steps so that the deferred jobs' slots are reused; also with
// compaction (the classifier's gradient added into E's after its job) and an untied head; with
// a scratch set a layer (dsets); and with the FFN's activation backward in place (swip: the same
// bits, the same kernels on the same blocks).
func TestDeferredWeightGrads(t *testing.T) {
	saved := tune
	defer func() { tune = saved }()
	for _, tc := range []struct {
		name string
		edit func(*config.Model)
	}{
		{"default", func(*config.Model) {}},
		{"compact+untied", func(c *config.Model) { c.Compact, c.UntiedHead = true, true }},
		{"gqa+qknorm+relu2", func(c *config.Model) { c.KVHeads, c.QKNorm, c.Act = 2, true, "relu2" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Model{Dim: 64, Layers: 3, Heads: 4, FFN: 96, Seq: 40, Vocab: 50,
				Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02}
			tc.edit(&cfg)
			const batch, steps = 3, 3
			r := rand.New(rand.NewPCG(5, 5))
			ids := allIDs(cfg.Vocab)
			if cfg.Compact {
				ids = ids[:40]
			}
			in, tg := randTokens(r, batch*cfg.Seq, ids), randTokens(r, batch*cfg.Seq, ids)
			run := func(deferMin int) (loss float64, g [][]float32, deferred, loops uint64) {
				tune.deferMin = deferMin
				m, err := New(cfg, 1, NewCPU(), Threads(16))
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Compact {
					if err := m.SetActive(ids); err != nil {
						t.Fatal(err)
					}
				}
				perturb(m, 5)
				d0, l0 := par.Deferreds(), par.Loops()
				for range steps {
					m.ZeroGrad()
					if loss, err = m.ForwardBackward(in, tg, batch, 1); err != nil {
						t.Fatal(err)
					}
				}
				for _, p := range m.Params() {
					g = append(g, p.G)
				}
				return loss, g, par.Deferreds() - d0, par.Loops() - l0
			}
			loss0, g0, _, loops0 := run(0)
			tune.deferSets = 3 // a scratch set a layer: no drain before the last
			loss3, g3, _, _ := run(8)
			tune.deferSets = saved.deferSets
			loss1, g1, deferred, loops1 := run(8)
			tune.inPlaceSwiGLU = true
			lossIP, gIP, _, _ := run(8)
			tune.inPlaceSwiGLU = saved.inPlaceSwiGLU
			if lossIP != loss1 {
				t.Errorf("loss %.9g with the activation backward in place, %.9g without", lossIP, loss1)
			}
			for i := range g1 {
				if !slices.Equal(gIP[i], g1[i]) {
					t.Errorf("gradient %d differs with the activation backward in place", i)
				}
			}
			if math.Abs(loss1-loss0) > 1e-6*math.Abs(loss0) || math.Abs(loss3-loss0) > 1e-6*math.Abs(loss0) {
				t.Errorf("loss %.9g deferred, %.9g with 3 scratch sets, %.9g fused", loss1, loss3, loss0)
			}
			sameGrads(t, "deferred vs fused", g0, g1)
			sameGrads(t, "deferred with 3 scratch sets vs fused", g0, g3)
			if want := uint64(steps * (2*cfg.Layers + 1)); deferred != want {
				t.Errorf("%d jobs deferred in %d steps, want %d (2 a layer + the classifier's)", deferred, steps, want)
			}
			if most := loops0 + uint64(steps*(2*cfg.Layers+1)); loops1 > most {
				t.Errorf("%d loops deferred, %d fused: more than 2 extra a layer (and 1 for the classifier)", loops1, loops0)
			}
		})
	}
}

// mulTile is a post op on a grid of two products: G = C0 ⊙ C1 on the block (as SwiGLU's gate).
type mulTile struct {
	g, c0, c1 []float32
	n         int
}

func (m mulTile) tile(r0, r1, c0, c1 int) {
	for r := r0; r < r1; r++ {
		for c := c0; c < c1; c++ {
			m.g[r*m.n+c] = m.c0[r*m.n+c] * m.c1[r*m.n+c]
		}
	}
}

// rowScale is a rowPost that divides each whole row of g by 1 + max_c |g_rc|: it reads every
// column, so a stage that reads g's rows before it ran sees other values.
type rowScale struct {
	g []float32
	n int
}

func (rowScale) prepare(int) {}

func (s rowScale) Run(_, _, lo, hi int) { rowScaleRows(s.g, s.n, lo, hi) }

func rowScaleRows(g []float32, n, lo, hi int) {
	for r := lo; r < hi; r++ {
		var most float32
		for _, v := range g[r*n : (r+1)*n] {
			most = max(most, v, -v)
		}
		for c := range n {
			g[r*n+c] /= 1 + most
		}
	}
}

// TestGemmChain: a chain's second stage reads the first stage's output only after its rows — every
// block of them, their post op and rowPost — are done: G = (A·B0ᵀ) ⊙ (A·B1ᵀ) on the first stage's
// grid (a post op), each row of G then scaled by a function of the whole row (a rowPost), and
// Y = G·Wᵀ on the second stage with a rowPost of its own (rowCheck: every block of Y computed,
// each row once), against the same products run one after the other — on 1 to 16 goroutines,
// with row counts whose two stages' row blocks do not line up. With the knob off (tune.chain), the
// stages are two loops and give the same.
func TestGemmChain(t *testing.T) {
	saved := tune
	defer func() { tune = saved }()
	r := rand.New(rand.NewPCG(9, 10))
	const k = 24
	for _, chain := range []bool{true, false} {
		tune.chain = chain
		for _, w := range []int{1, 2, 5, 16} {
			for _, tc := range []struct{ m, n, out int }{{256, 96, 40}, {100, 64, 48}, {1000, 96, 256}, {37, 5, 9}} {
				a, b0, b1 := rnd(r, tc.m*k, -1, 1), rnd(r, tc.n*k, -1, 1), rnd(r, tc.n*k, -1, 1)
				wt := rnd(r, tc.out*tc.n, -1, 1)
				c0, c1, g := make([]float32, tc.m*tc.n), make([]float32, tc.m*tc.n), make([]float32, tc.m*tc.n)
				y := rnd(r, tc.m*tc.out, -1, 1)
				// want: the stages one after the other, serially
				w0, w1, wg := make([]float32, tc.m*tc.n), make([]float32, tc.m*tc.n), make([]float32, tc.m*tc.n)
				blas.Sgemm(false, true, tc.m, tc.n, k, 1, a, k, b0, k, 0, w0, tc.n)
				blas.Sgemm(false, true, tc.m, tc.n, k, 1, a, k, b1, k, 0, w1, tc.n)
				mulTile{wg, w0, w1, tc.n}.tile(0, tc.m, 0, tc.n)
				rowScaleRows(wg, tc.n, 0, tc.m)
				wy := make([]float32, tc.m*tc.out)
				blas.Sgemm(false, true, tc.m, tc.out, tc.n, 1, wg, tc.n, wt, tc.n, 0, wy, tc.out)

				s0, s1 := linear(c0, a, b0, tc.m, k, tc.n), linear(c1, a, b1, tc.m, k, tc.n)
				s1.post = mulTile{g, c0, c1, tc.n}
				s0.rowPost = rowScale{g, tc.n}
				sy := linear(y, g, wt, tc.m, tc.n, tc.out)
				ch := &rowCheck{t: t, n: tc.out, cs: [][]float32{y}, wants: [][]float32{wy}, rows: make([]atomic.Int32, tc.m)}
				sy.rowPost = ch
				newTeam(w).gemmChain([]gemmSpec{s0, s1}, []gemmSpec{sy})
				name := fmt.Sprintf("chain=%v w=%d %d×%d→%d", chain, w, tc.m, tc.n, tc.out)
				for e, v := range wg {
					if math.Abs(float64(g[e]-v)) > 1e-4*(1+math.Abs(float64(v))) {
						t.Fatalf("%s: G[%d] = %g, want %g (C0 %g %g, C1 %g %g)", name, e, g[e], v, c0[e], w0[e], c1[e], w1[e])
					}
				}
				for e, v := range wy {
					if math.Abs(float64(y[e]-v)) > 1e-4*(1+math.Abs(float64(v))) {
						t.Fatalf("%s: Y[%d] = %g, want %g", name, e, y[e], v)
					}
				}
				for i := range ch.rows {
					if v := ch.rows[i].Load(); v != 1 {
						t.Fatalf("%s: row %d seen by the second stage's rowPost %d times", name, i, v)
					}
				}
			}
		}
	}
}

// TestGemmPadded: products whose B is stored transposed with its rows a multiple of padStride
// apart read it through the padded copy (gemmJob.pad) and give the plain product — alone, on a
// grid of two (the copy made once per column block of each), beside a product that is not
// padded, and as a chain's second stage — on 1 to 16 goroutines; a product of fewer rows or with
// another stride is not padded.
func TestGemmPadded(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const k, ld = 40, padStride // B's rows padStride floats apart, k of them used
	mk := func(m, n int) (gemmSpec, []float32) {
		a, b, c := rnd(r, m*k, -1, 1), rnd(r, n*ld, -1, 1), make([]float32, m*n)
		want := make([]float32, m*n)
		blas.Sgemm(false, true, m, n, k, 1, a, k, b, ld, 0, want, n)
		return gemmSpec{false, true, m, n, k, 1, a, k, b, ld, 0, c, n, nil, 0, nil}, want
	}
	check := func(name string, g gemmSpec, want []float32) {
		t.Helper()
		for e, v := range want {
			if math.Abs(float64(g.c[e]-v)) > 1e-4*(1+math.Abs(float64(v))) {
				t.Fatalf("%s: C[%d] = %g, want %g", name, e, g.c[e], v)
			}
		}
	}
	for _, w := range []int{1, 2, 5, 16} {
		tm := newTeam(w)
		g1, w1 := mk(256, 96)
		tm.gemms(g1)
		check(fmt.Sprintf("w=%d alone", w), g1, w1)
		if got := tm.gemm1.padLD[0]; got != ld+16 {
			t.Fatalf("w=%d: product read B with rows %d apart, want the padded copy's %d", w, got, ld+16)
		}
		g2, w2 := mk(256, 96)
		g3, w3 := mk(256, 96)
		tm.gemmGrid(g2, g3)
		check(fmt.Sprintf("w=%d grid 0", w), g2, w2)
		check(fmt.Sprintf("w=%d grid 1", w), g3, w3)
		g4, w4 := mk(128, 200)
		g5, w5 := mk(32, 64) // too few rows: not padded
		tm.gemms(g4, g5)
		check(fmt.Sprintf("w=%d more 0", w), g4, w4)
		check(fmt.Sprintf("w=%d more 1", w), g5, w5)
		if tm.gemm1.padLD[1] != 0 {
			t.Fatalf("w=%d: a product of 32 rows was padded", w)
		}
		// chain: y = (x·Bᵀ)·Wᵀ, both stages padded
		x, b := rnd(r, 200*k, -1, 1), rnd(r, 64*ld, -1, 1)
		wt := rnd(r, 48*ld, -1, 1)
		h, y := make([]float32, 200*64), make([]float32, 200*48)
		wh, wy := make([]float32, 200*64), make([]float32, 200*48)
		blas.Sgemm(false, true, 200, 64, k, 1, x, k, b, ld, 0, wh, 64)
		blas.Sgemm(false, true, 200, 48, 64, 1, wh, 64, wt, ld, 0, wy, 48)
		tm.gemmChain([]gemmSpec{{false, true, 200, 64, k, 1, x, k, b, ld, 0, h, 64, nil, 0, nil}},
			[]gemmSpec{{false, true, 200, 48, 64, 1, h, 64, wt, ld, 0, y, 48, nil, 0, nil}})
		check(fmt.Sprintf("w=%d chain", w), gemmSpec{c: y}, wy)
	}
	for _, tc := range []struct {
		g    gemmSpec
		want bool
	}{
		{gemmSpec{transB: true, m: 64, ldb: 2048}, true},
		{gemmSpec{transB: true, m: 64, ldb: 2064}, false},
		{gemmSpec{transB: true, m: 63, ldb: 2048}, false},
		{gemmSpec{transB: false, m: 512, ldb: 2048}, false},
	} {
		if got := padded(&tc.g); got != tc.want {
			t.Errorf("padded(transB %v, m %d, ldb %d) = %v, want %v", tc.g.transB, tc.g.m, tc.g.ldb, got, tc.want)
		}
	}
}

// TestInPlaceSwiGLUSwitch: switching the FFN's activation backward in place on and off on one
// model (swip, as anebench --alt does between groups of steps) gives the same gradients bit for
// bit each time and moves only DH1, DH3: no other buffer is reallocated, and after the first
// switch back nothing is allocated at all.
func TestInPlaceSwiGLUSwitch(t *testing.T) {
	saved := tune
	defer func() { tune = saved }()
	cfg := tinyCfg()
	m, err := New(cfg, 1, NewCPU(), Threads(4))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	const batch = 2
	in, tg := randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab))
	step := func(inPlace bool) {
		tune.inPlaceSwiGLU = inPlace
		m.ZeroGrad()
		if _, err := m.ForwardBackward(in, tg, batch, 1); err != nil {
			t.Fatal(err)
		}
		a := m.buf.acts[0]
		if same := &a.DH1[0] == &a.H1[0]; same != inPlace {
			t.Fatalf("swip=%v: DH1 is H1: %v", inPlace, same)
		}
	}
	grads := func(inPlace bool) [][]float32 {
		step(inPlace)
		var g [][]float32
		for _, p := range m.Params() {
			g = append(g, slices.Clone(p.G))
		}
		return g
	}
	want := grads(false)
	x := &m.buf.acts[0].X[0]
	for i, inPlace := range []bool{true, false, true, false} {
		got := grads(inPlace)
		for k := range want {
			if !slices.Equal(got[k], want[k]) {
				t.Fatalf("switch %d (swip=%v): gradient %d differs", i, inPlace, k)
			}
		}
		if &m.buf.acts[0].X[0] != x {
			t.Fatalf("switch %d reallocated the activations", i)
		}
	}
	if blas.Backend == "go" {
		return // the pure-Go BLAS fallback (no cgo) allocates its panels (TestStepAllocatesNothing)
	}
	if n := stepAllocs(func() { step(true); step(false) }); n != 0 {
		t.Fatalf("%g allocations a switch pair", n)
	}
}

// TestKeptP: with keepp the forward keeps each (sequence, head) pair's P for the backward
// (LayerActs.P), which then computes neither S = scale·Q·Kᵀ nor its exponentials again. On 16
// goroutines (the BLAS path), with whole pairs (16 pairs) and with the two-loop path (6 pairs),
// at blocks of 16 rows (three a pair, the last short) and of the whole sequence, the loss and
// gradients match the step without it, and the step's BLAS FLOPs (counted by a loop profile)
// fall by exactly the recomputed S's — so the backward does read the kept P. Switching back and
// forth reallocates nothing after the first time; no P is kept where the fused kernels run.
func TestKeptP(t *testing.T) {
	defer func(o cpuTune) { setTune(o) }(tune)
	defer par.SetProfile(nil)
	for _, c := range []struct{ batch, heads, blk int }{{4, 4, 16}, {4, 4, 0}, {3, 2, 16}} {
		name := fmt.Sprintf("batch=%d,heads=%d,ablock=%d", c.batch, c.heads, c.blk)
		cfg := smallModel() // dim 64, seq 40
		cfg.Heads = c.heads
		tune.attnBlock, tune.fusedAttn, tune.fusedAttnFwd = c.blk, 8, 0 // the BLAS path both ways on 16
		m, err := New(cfg, 1, NewCPU(), Threads(16))
		if err != nil {
			t.Fatal(err)
		}
		perturb(m, 5)
		r := rand.New(rand.NewPCG(9, uint64(c.batch)))
		in, tg := randTokens(r, c.batch*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, c.batch*cfg.Seq, allIDs(cfg.Vocab))
		step := func(keep bool) (float64, [][]float32, int64) {
			tune.keepP = keep
			m.ZeroGrad()
			p := par.NewProfile()
			par.SetProfile(p)
			loss, err := m.ForwardBackward(in, tg, c.batch, 1)
			par.SetProfile(nil)
			if err != nil {
				t.Fatal(err)
			}
			flops := p.Total().FLOPs
			var g [][]float32
			for _, p := range m.Params() {
				g = append(g, slices.Clone(p.G))
			}
			return loss, g, flops
		}
		wantLoss, want, wantFLOPs := step(false)
		if m.buf.acts[0].P != nil {
			t.Fatalf("%s: a P kept with keepp=0", name)
		}
		// The S products the backward no longer computes: 2·rows·keys·hd a row block (its
		// queries see the keys up to its last), every pair, every layer.
		T, hd, blk := cfg.Seq, cfg.Dim/cfg.Heads, cmp.Or(c.blk, 64)
		var saved int64
		for r0 := 0; r0 < T; r0 += blk {
			r1 := min(r0+blk, T)
			saved += int64(2 * (r1 - r0) * r1 * hd)
		}
		saved *= int64(cfg.Layers * c.batch * cfg.Heads)
		var kept *float32
		for i, keep := range []bool{true, false, true} {
			loss, got, flops := step(keep)
			if math.Abs(loss-wantLoss) > 1e-6*math.Abs(wantLoss) {
				t.Errorf("%s, switch %d (keepp=%v): loss %.9g, without %.9g", name, i, keep, loss, wantLoss)
			}
			sameGrads(t, fmt.Sprintf("%s, switch %d (keepp=%v)", name, i, keep), want, got)
			if d := wantFLOPs - flops; keep && d != saved || !keep && d != 0 {
				t.Errorf("%s, switch %d (keepp=%v): %d BLAS FLOPs fewer than without, want %d", name, i, keep, d, saved)
			}
			p := m.buf.acts[0].P
			if len(p) != c.batch*cfg.Heads*T*T {
				t.Fatalf("%s: P of %d floats, want B·H·T² = %d", name, len(p), c.batch*cfg.Heads*T*T)
			}
			if kept != nil && &p[0] != kept {
				t.Errorf("%s, switch %d: P reallocated", name, i)
			}
			kept = &p[0]
		}
		if attnPanel > 0 && m.keepsP(2) {
			t.Errorf("%s: a P kept on 2 goroutines, where the fused kernels run", name)
		}
	}
}

// TestHomedLoops: with the row loops homed (home=1: each CPU takes the same row blocks loop after
// loop, par.RunHomed; home=2: each goroutine a range of consecutive blocks) a step on 16
// goroutines — the deferred weight gradients, the FFN's chain — gives the same gradients bit for
// bit: only who runs a block changes; and no loop is homed in a model wider than homedim. (How many loops a step
// runs depends on the schedule here: the fences drain only what the workers left.)
func TestHomedLoops(t *testing.T) {
	saved := tune
	defer func() { setTune(saved) }()
	tune.loneNarrow = 0 // the blocks stay the same when homedim changes (lonen would recut them)
	cfg := smallModel()
	m, err := New(cfg, 1, NewCPU(), Threads(16))
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, 5)
	r := rand.New(rand.NewPCG(9, 9))
	const batch = 3
	in, tg := randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab))
	grads := func(home int) (g [][]float32) {
		tune.home = home
		par.SetSeatByWorker(home == 2)
		h0 := par.HomedLoops()
		m.ZeroGrad()
		if _, err := m.ForwardBackward(in, tg, batch, 1); err != nil {
			t.Fatal(err)
		}
		if h := par.HomedLoops() - h0; (h > 0) != (home > 0 && cfg.Dim <= tune.homeDim) {
			t.Fatalf("home=%d, homedim=%d: %d homed loops at dim %d", home, tune.homeDim, h, cfg.Dim)
		}
		for _, p := range m.Params() {
			g = append(g, slices.Clone(p.G))
		}
		return g
	}
	grads(0) // the first step grows the buffers (a loop of its own)
	want := grads(0)
	for i, home := range []int{1, 0, 2, 1, 2} {
		tune.homeDim = 256
		if i == 4 {
			tune.homeDim = cfg.Dim - 1 // a model wider than homedim: no loop homed
		}
		got := grads(home)
		for k := range want {
			if !slices.Equal(got[k], want[k]) {
				t.Fatalf("step %d (home=%d): gradient %d differs", i, home, k)
			}
		}
	}
}

// TestAttnChain: with the attention's items and the products around them in one loop (achain=1:
// O = A·Woᵀ after the forward's items, dXn after the backward's whole pairs, each block once every
// head of its rows is done; achain=2: also the projections q, k, v before the forward's items,
// each item once the rows it reads are projected) a step gives the same gradients bit for bit as
// with a loop each — on 1 to 16 goroutines, homed or not (the items dealt by pair or costliest
// first), with row blocks of the products that straddle two sequences (T = 40), with whole pairs
// or groups of pairs (the backward's chain only on whole pairs), with the fused kernels (head dim
// 16) or BLAS (head dim 12), with GQA and QK-norm (no chain through those); and runs the loops it
// should, allocating nothing.
func TestAttnChain(t *testing.T) {
	saved := tune
	defer func() { setTune(saved) }()
	tune.split = 0 // the step in loops (a split step's shares run none)
	base := smallModel()
	odd := base
	odd.Dim, odd.Heads = 48, 4 // head dim 12: the BLAS path everywhere
	gqa := base
	gqa.KVHeads, gqa.QKNorm = 2, true
	for _, tc := range []struct {
		name    string
		cfg     config.Model
		batch   int
		threads []int
	}{
		{"hd16", base, 3, []int{1, 3, 8, 16}},
		{"hd16 whole pairs", base, 4, []int{4, 16}},
		{"hd12", odd, 3, []int{2, 12}},
		{"gqa qknorm", gqa, 2, []int{8}},
	} {
		for _, w := range tc.threads {
			for _, home := range []int{0, 2} {
				tune.home = home
				par.SetSeatByWorker(home == 2)
				m, err := New(tc.cfg, 1, NewCPU(), Threads(w))
				if err != nil {
					t.Fatal(err)
				}
				perturb(m, 5)
				r := rand.New(rand.NewPCG(9, 9))
				n := tc.batch * tc.cfg.Seq
				in, tg := randTokens(r, n, allIDs(tc.cfg.Vocab)), randTokens(r, n, allIDs(tc.cfg.Vocab))
				var loops [3]uint64 // a step's loops with achain 0, 1, 2
				grads := func(chain int) (g [][]float32) {
					tune.attnChain = chain
					m.ZeroGrad()
					l0 := par.Loops()
					if _, err := m.ForwardBackward(in, tg, tc.batch, 1); err != nil {
						t.Fatal(err)
					}
					loops[chain] = par.Loops() - l0
					for _, p := range m.Params() {
						g = append(g, slices.Clone(p.G))
					}
					return g
				}
				want := grads(0)
				for i, chain := range []int{1, 2, 0, 2, 1} {
					got := grads(chain)
					for k := range want {
						if !slices.Equal(got[k], want[k]) {
							t.Fatalf("%s, %d goroutines, home=%d, step %d (achain=%d): gradient %d differs", tc.name, w, home, i, chain, k)
						}
					}
				}
				for _, chain := range []int{0, 2} { // (on 8 goroutines or more with the weight gradients deferred)
					tune.attnChain = chain
					if blas.Backend == "go" { // the pure-Go BLAS allocates its panels (TestStepAllocatesNothing)
						break
					}
					if a := stepAllocs(func() { m.ForwardBackward(in, tg, tc.batch, 1) }); a != 0 {
						t.Errorf("%s, %d goroutines, home=%d: %g allocations a step with achain=%d", tc.name, w, home, a, chain)
					}
				}
				// Without deferred weight gradients the loops are the same each step: one fewer a layer
				// with the product after the items, in the forward pass (the backward's dXn loop also
				// runs the layer's weight gradients, which read every row: no chain), and one more
				// with the projections before them where those are one grid.
				if w > 1 && w < tune.deferMin {
					L, plain := tc.cfg.Layers, tc.cfg.KVHeads == 0 && !tc.cfg.QKNorm
					if d := int(loops[0]) - int(loops[1]); d != L {
						t.Errorf("%s, %d goroutines, home=%d: %d loops a step with achain=0, %d with 1: want %d fewer", tc.name, w, home, loops[0], loops[1], L)
					}
					if d := int(loops[1]) - int(loops[2]); d != L*b2i(plain) {
						t.Errorf("%s, %d goroutines, home=%d: %d loops a step with achain=1, %d with 2: want %d fewer", tc.name, w, home, loops[1], loops[2], L*b2i(plain))
					}
				}
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// smallModel is the model of the scheduling tests: 2 layers of width 64 (4 heads of 16), FFN 96,
// sequences of 40 tokens (blocks of rows straddle sequences), vocabulary 50, RoPE and soft-cap.
func smallModel() config.Model {
	return config.Model{Dim: 64, Layers: 2, Heads: 4, FFN: 96, Seq: 40, Vocab: 50,
		Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02}
}

// stepAllocs is testing.AllocsPerRun of 5 steps after a garbage collection: a collection empties
// the runtime's central sudog cache, and a pool worker that blocks on its channel afterwards gets a
// new one — an allocation counted process-wide that is not the step's (the loop's workers block at
// different steps, so with 2 runs a measurement could catch some: TestAttnChain failed 1 run in 20
// at 16 goroutines on 2 cores). Collected first, the warm-up step refills the caches and nothing
// starts a collection during the runs (the step allocates nothing); over 5 steps a stray
// allocation still averages out, and one a step does not.
func stepAllocs(step func()) float64 {
	runtime.GC()
	return testing.AllocsPerRun(5, step)
}
