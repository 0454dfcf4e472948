package model

import (
	"math"
	"sync/atomic"

	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/par"
)

// The optimizer's update as deferred work in the next forward pass (DeferUpdate).
//
// On many cores the update is a memory-bound pass over every weight, gradient and optimizer state
// (Lion: 24 bytes a parameter), a loop of its own after the backward pass: 10–11% of the
// original's step on 16 cores. But a layer's new weights are needed only when the next forward
// pass reaches that layer. So DeferUpdate keeps the update, the next forward pass offers its parts
// to the pool (par.Defer) in the order it reads the weights, and waits at each layer only for that
// layer's parts (fence); the goroutines that finish a loop's parts early take the later layers'
// parts instead of waiting for the loop's slowest part.
//
// Why it is safe: a part updates one range of one parameter's weights, gradient and state, and
// nothing reads or writes them between DeferUpdate and the fence the forward pass passes before it
// first reads that parameter's weights. The forward pass reads only weights (each after its
// fence); the gradients are written by the backward pass, after the last fence (forwardLayers
// ends with FinishUpdate); everything else that reads the weights, the gradients or the optimizer
// state calls FinishUpdate first — ZeroGrad and SetActive here, and the training loop's stepper
// before a gradient norm, an update or a checkpoint (train.hostStepper).

// updChunk is the elements of one part of a deferred update: about 0.4 MB of memory traffic with
// Lion, tens of µs, so that a goroutine that takes one at a loop's end joins the next loop late by
// little.
const updChunk = 1 << 14

// updDeferred is a deferred optimizer update (DeferUpdate).
type updDeferred struct {
	on     bool // an update is deferred
	open   bool // and offered to the pool (at the first fence)
	apply  func(i, lo, hi int)
	wt     *wtState        // with wt: the copies a part writes the weights it updated into
	params []*tensor.Param // the model's, whose weights those are
	parts  []updPart       // every parameter's chunks, group by group in the order the forward pass needs them
	ends   []int           // group g's parts are parts[ends[g−1]:ends[g]]
	done   []atomic.Int64  // parts of group g finished
	fenced int             // groups fenced so far
	d      par.Deferred
}

// updPart is one part of a deferred update: elements [lo, hi) of parameter i, in group g.
type updPart struct{ i, lo, hi, g int }

// Run is the deferred job: parts [lo, hi) of the update.
func (u *updDeferred) Run(_, _, lo, hi int) {
	for _, p := range u.parts[lo:hi] {
		u.apply(p.i, p.lo, p.hi)
		if u.wt != nil {
			u.wt.transposeRange(u.params[p.i].W, p.i, p.lo, p.hi)
		}
		u.done[p.g].Add(1)
	}
}

// Update groups, in the order the forward pass reads their weights: the embedding with every
// norm gain (small; the embedding's loop normalises with the first layer's), then each layer's
// attention projections (updAttn(l)) and its FFN's (updFFN(l)), then an untied head.
const updFirst = 0

func updAttn(l int) int         { return 1 + 2*l }
func updFFN(l int) int          { return 2 + 2*l }
func (m *Model) updGroups() int { return 2 + 2*len(m.Layers) } // the last: an untied head

// updGroupOf is the group of each parameter (Params order).
func (m *Model) updGroupOf() []int {
	g := make(map[*tensor.Param]int, len(m.params))
	for l := range m.Layers {
		y := &m.Layers[l]
		for _, p := range []*tensor.Param{y.Wq, y.Wk, y.Wv, y.Wo} {
			g[p] = updAttn(l)
		}
		for _, p := range []*tensor.Param{y.W1, y.W2, y.W3} {
			if p != nil {
				g[p] = updFFN(l)
			}
		}
	}
	if m.Head != nil {
		g[m.Head] = m.updGroups() - 1
	}
	out := make([]int, len(m.params))
	for i, p := range m.params {
		out[i] = g[p] // the embedding and the gains: updFirst
	}
	return out
}

// DefersUpdate reports whether DeferUpdate would take an update: with the CPU backend on enough
// goroutines that the weight gradients are deferred work too (cpuTune.deferMin), once a step has
// run (the pool's goroutines exist), unless ANELAB_CPU_TUNE has update=0.
func (m *Model) DefersUpdate() bool {
	return tune.update && m.team != nil && m.defers(par.Threads(m.threads))
}

// DeferUpdate takes an elementwise optimizer update (optim.Elementwise's Begin: apply(i, lo, hi)
// updates elements [lo, hi) of Params()[i] and zeroes their gradients) to run as deferred work in
// the next forward pass (offered to the pool's goroutines when it starts), each parameter's parts
// before the pass reads its weights; FinishUpdate
// runs what is left. Until then Params' weights and gradients and the optimizer's state are not
// current: read them only after FinishUpdate (ZeroGrad and SetActive call it). It reports false,
// running nothing, when the model does not defer updates (DefersUpdate): the caller then updates
// in place.
func (m *Model) DeferUpdate(apply func(i, lo, hi int)) bool {
	if !m.DefersUpdate() {
		return false
	}
	m.FinishUpdate()
	u := &m.upd
	if u.parts == nil {
		groups, ng := m.updGroupOf(), m.updGroups()
		u.ends, u.done = make([]int, ng), make([]atomic.Int64, ng)
		for g := range ng {
			for i, p := range m.params {
				if groups[i] != g {
					continue
				}
				for lo := 0; lo < p.Size(); lo += updChunk {
					u.parts = append(u.parts, updPart{i, lo, min(lo+updChunk, p.Size()), g})
				}
			}
			u.ends[g] = len(u.parts)
		}
	}
	for g := range u.done {
		u.done[g].Store(0)
	}
	u.on, u.open, u.apply, u.fenced = true, false, apply, 0
	u.wt, u.params = nil, m.params
	if m.wt.of != nil { // the parts write the copies too, which makes them current (transposed.go)
		u.wt, m.wt.fresh = &m.wt, true
	}
	return true
}

// fence returns when the deferred update's parts of groups up to g are done: it runs those no
// goroutine has taken on the step's goroutines, then waits for any still running.
func (m *Model) fence(g int) {
	if m.updOf != nil {
		m.fenceOf(g)
		return
	}
	u := &m.upd
	if !u.on || g < u.fenced {
		return
	}
	g = min(g, len(u.ends)-1)
	m.openUpdate()
	u.d.RunTo(m.team.w, u.ends[g])
	u.fenced = u.awaitGroups(u.fenced, g)
	if u.fenced == len(u.ends) {
		u.d.Wait(m.team.w) // every part is done: this only closes d
		u.on, u.apply = false, nil
	}
}

// openUpdate offers a deferred update's parts to the pool's goroutines, once: at the first fence,
// when the forward pass starts (between steps no loop runs whose waits the parts could fill, and
// a worker still in one could take them outside any step), or when a step split into teams starts
// (the teams' workers take them too: par.Pool.fill).
func (m *Model) openUpdate() {
	if u := &m.upd; u.on && !u.open {
		n := len(u.parts)
		m.team.pool.Defer(&u.d, m.team.w, n, n, u)
		u.open = true
	}
}

// A split step's team replica reads its parent's weights while the parent's deferred update is
// still being applied (forwardBackwardSplit): its forward pass fences each group of that update as
// the parent's own would, running the parts no goroutine has claimed on the team's goroutines
// (par.Deferred.Take) and waiting for those in progress; the parent closes the update afterwards.
// updOf is the parent's update during such a step (nil otherwise), updFenced the groups this
// replica has fenced, updDrain the loop that runs the unclaimed parts.

// fenceOf is fence for a team replica: groups up to g of m.updOf done.
func (m *Model) fenceOf(g int) {
	u := m.updOf
	if g < m.updFenced {
		return
	}
	g = min(g, len(u.ends)-1)
	if left := u.d.Left(u.ends[g]); left > 0 {
		m.updDrain = updDrainJob{d: &u.d, upto: u.ends[g]}
		m.team.run(left, min(left, m.team.w), &m.updDrain)
	}
	m.updFenced = u.awaitGroups(m.updFenced, g)
}

// awaitGroups returns when the parts of groups from to g are done (goroutines may still be running
// them when it is called): g+1, the next group to wait for.
func (u *updDeferred) awaitGroups(from, g int) int {
	for ; from <= g; from++ {
		want := int64(u.ends[from])
		if from > 0 {
			want -= int64(u.ends[from-1])
		}
		done := &u.done[from]
		par.Await(func() bool { return done.Load() >= want })
	}
	return from
}

// updDrainJob runs unclaimed parts of d below upto, one a item (none once all are claimed).
type updDrainJob struct {
	d    *par.Deferred
	upto int
}

func (j *updDrainJob) Run(k, _, lo, hi int) {
	for range hi - lo {
		if !j.d.Take(k, j.upto) {
			return
		}
	}
}

// FinishUpdate runs what is left of a deferred update (DeferUpdate) and returns when it is done:
// after it, Params' weights and gradients and the optimizer's state are current. Nothing when no
// update is deferred.
func (m *Model) FinishUpdate() { m.fence(math.MaxInt) } // every group (a team replica: of its parent's update)
