package model

import (
	"sync/atomic"

	"github.com/anelab/anelab/internal/par"
)

// The attention's items and the products around them as ONE loop (tune.attnChain): the
// forward's projections q, k, v, its (sequence, head, row block) items and then O = A·Woᵀ; the
// backward's whole (sequence, head) pairs and then dXn = dQ·Wq + dK·Wk + dV·Wv. An item waits
// only for the projections' rows it reads (its sequence's keys up to its block), and a block of
// the product after for the items that write its rows — every head of them: a rowGate — instead
// of each stage waiting for the slowest part of the one before. The goroutines that finish early
// start on what is ready, and the loops end in one wait. As in gemmChain, a stage's parts are all
// claimed before the next stage's (the loop's segments), so a part that waits only waits for
// parts in progress. Which goroutine runs what changes; what each computes does not
// (TestAttnChain: the same gradients bit for bit with the knob off).

// gatedItems are a loop's middle stage: item i reads the rows needs(i) of the stage before and
// writes, for one head, the rows of row block rb of sequence b (group).
type gatedItems interface {
	par.Job
	group(i int) (b, rb int)
	needs(i int) (r0, r1 int)
}

// rowGate counts, per row block of each sequence (blocks of blk rows of T, the last one shorter),
// the items still to write it: a block of the next stage may read rows [r0, r1) once every
// block they overlap is at 0. The atomic count orders the items' writes before the reads.
type rowGate struct {
	T, blk, nb int
	left       []atomic.Int32
}

// arm sets every row block of B sequences to need items.
func (g *rowGate) arm(B, T, blk, need int) {
	g.T, g.blk, g.nb = T, blk, (T+blk-1)/blk
	if n := B * g.nb; len(g.left) < n {
		g.left = make([]atomic.Int32, n)
	}
	for i := range B * g.nb {
		g.left[i].Store(int32(need))
	}
}

// done counts one item of row block rb of sequence b written.
func (g *rowGate) done(b, rb int) { g.left[b*g.nb+rb].Add(-1) }

// wait returns once every row block overlapping the rows [r0, r1) (of all sequences, b·T + t) is
// written; it yields while it waits (par.Await).
func (g *rowGate) wait(r0, r1 int) {
	for r := r0; r < r1; {
		b, rb := r/g.T, r%g.T/g.blk
		c := &g.left[b*g.nb+rb]
		par.Await(func() bool { return c.Load() == 0 })
		r = b*g.T + min((rb+1)*g.blk, g.T)
	}
}

// attnChainJob is the loop: parts [0, npre) the blocks of pre (none without), then the items,
// then the blocks of post.
type attnChainJob struct {
	pre         *gemmJob
	npre, items int
	mid         gatedItems
	gate        rowGate
	post        *gemmJob
}

func (j *attnChainJob) Run(wk, p, lo, hi int) {
	for i := lo; i < hi; i++ {
		switch {
		case i < j.npre:
			j.pre.Run(wk, p, i, i+1)
		case i < j.npre+j.items:
			it := i - j.npre
			if j.pre != nil {
				r0, r1 := j.mid.needs(it)
				j.pre.waitRows(0, r0, r1)
			}
			j.mid.Run(wk, p, it, it+1)
			j.gate.done(j.mid.group(it))
		default:
			b := i - j.npre - j.items
			_, _, r0, r1 := j.post.rowsOf(b)
			j.gate.wait(r0, r1)
			j.post.Run(wk, p, b, b+1)
		}
	}
}

// attnThen runs the products of pre (as gemmGrid; none when empty), then items of mid (B
// sequences of T rows in row blocks of blk, each written by need items), then the products of
// post (as gemmGrid) as one loop: see attnChainJob.
func (t *team) attnThen(pre []gemmSpec, mid gatedItems, items, B, T, blk, need int, post ...gemmSpec) {
	j := &t.attnChain
	*j = attnChainJob{items: items, mid: mid, gate: j.gate}
	if len(pre) > 0 {
		j.pre = &t.gemm2
		j.pre.set(pre, nil)
		j.pre.feeds = true
		j.pre.plan(t.w, t.lone())
		j.pre.armRows()
		j.npre = j.pre.blocks()
	}
	j.post = &t.gemm1
	j.post.set(post, nil)
	j.post.plan(t.w, t.lone())
	j.post.armRows()
	j.gate.arm(B, T, blk, need)
	n := j.npre + items + j.post.blocks()
	segs := [3]int{j.npre, j.npre + items, n}
	s := segs[:]
	if j.npre == 0 {
		s = segs[1:]
	}
	t.runRows(n, n, s, j)
	j.mid, j.pre, j.post = nil, nil, nil
}

// attnChained reports how the attention's items run with the products around them
// (tune.attnChain: 0 in loops of their own, 1 with the product after them, 2 also with the
// projections before them where those are one grid, qkvPlain), and whether in an items order dealt
// by pairs, where the loop is homed (pairMajor).
func (t *team) attnChained() (stages int, pairMajor bool) {
	return tune.attnChain, tune.home != 0 && t.narrow()
}
