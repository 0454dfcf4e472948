package model

import (
	"errors"
	"fmt"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/internal/par"
)

// A step split over its goroutines (tune.split): on k goroutines, a batch of B sequences with
// k | B runs as k shares of B/k sequences, each share the whole forward and backward pass on ONE
// goroutine — share 0 on the model itself, share i on a replica that reads the model's weights
// and has its own gradients and activations — and then
//
//	G += Σ_i G_i   (each G_i then zeroed for the next step),
//
// with each share's loss gradient scaled by 1/k (its mean is over B/k of the B sequences), so the
// sum is the gradient of the mean over all B·T tokens and the loss is the mean of the shares'.
// A goroutine alone runs no parallel loop, so a share never waits for another goroutine's part:
// on this project's 2 cores two single-goroutine processes at batch 2 trained 1.23× the tokens
// of one process at batch 4 on both cores (anert/bench/cpu16.sh teams; RESULTS.md, 7 Dec 2026).
// The sum of the shares' gradients is the same gradient up to float rounding (the order of the
// sums over tokens differs: TestSplitStep). Only the CPU backend, without vocab compaction.

// Teams (tune.teams, off by default): on more goroutines than that, k shares each run on a team
// of w/k goroutines with a pool of its own (par.Team(i)), so that the k teams' loops run at once,
// each waiting only for its own goroutines' parts; every share then runs on a replica, the first
// one adding into the model's gradients directly (it shares them), and a deferred optimizer update
// (DeferUpdate) is applied inside the teams' forward passes, each fencing it as the model's own
// pass would (fenceOf). On 16 cores a team of 4 still gets 64 rows of each product a goroutine,
// as in loops of 16, and the step waits for its slowest team, whose work no other team can take:
// 4 teams took 0.996–1.062× the time of the step in loops, 2 teams 1.014–1.031× (tune.teams).

// splitState holds a split step's replicas (grown on the first split step) and its jobs.
type splitState struct {
	ones  []*Model // the shares of a split of one goroutine a share: the model, then its replicas
	teams []*Model // the shares of a split into teams; teams[0] adds into the model's gradients
	loss  []float64
	errs  []error
	job   splitJob
	sum   gradSumJob
}

// splitWays is how a batch of batch sequences on w goroutines is split (ForwardBackward): into k
// shares of per goroutines each, k > 1 when the backend is the CPU's and there is no vocab
// compaction, and then either w shares of one goroutine (2 ≤ w ≤ tune.split, w divides batch) or
// tune.teams shares of w/tune.teams ≥ 2 goroutines (w > tune.split; tune.teams divides batch and
// w); else k = 1, per = w.
func (m *Model) splitWays(batch, w int) (k, per int) {
	_, cpu := m.backend.(*CPU)
	return splitOf(cpu, m.cfg.Compact, batch, w)
}

// splitOf is splitWays for a model on the CPU backend (cpu) or not, with vocab compaction or not.
func splitOf(cpu, compact bool, batch, w int) (k, per int) {
	if !cpu || w < 2 || compact {
		return 1, w
	}
	if w <= tune.split {
		if batch%w == 0 {
			return w, 1
		}
		return 1, w
	}
	if t := tune.teams; t >= 2 && batch%t == 0 && w%t == 0 && w/t >= 2 {
		return t, w / t
	}
	return 1, w
}

// SplitShares is how many shares ForwardBackward splits a batch of batch sequences into on the
// model's thread budget (1: none): each share past the first holds a set of gradients of its own
// (a replica's), beside its sequences' activations.
func (m *Model) SplitShares(batch int) int {
	k, _ := m.splitWays(batch, par.Threads(m.threads))
	return k
}

// SplitSharesOf is SplitShares for a model of cfg on the CPU backend with a thread budget of
// threads (0: all cores), before it is built: for a memory check (anert/train's CheckMemory).
func SplitSharesOf(cfg config.Model, batch, threads int) int {
	if loadTune() != nil {
		return 1 // New reports the bad ANELAB_CPU_TUNE
	}
	k, _ := splitOf(true, cfg.Compact, batch, par.Threads(threads))
	return k
}

// forwardBackwardSplit is ForwardBackward as k shares of per goroutines each (see splitState).
func (m *Model) forwardBackwardSplit(inputs, targets []uint16, batch int, gradScale float32, k, per int) (float64, error) {
	if err := CheckBatch(inputs, targets, batch, m.cfg.Seq, m.cfg.Vocab); err != nil { // before any share adds to G
		return 0, fmt.Errorf("model: %w", err)
	}
	sp := &m.split
	shares, sum, err := m.splitShares(k, per)
	if err != nil {
		return 0, err
	}
	// The shares read the weights and add to the gradients that a deferred update writes: teams
	// fence it in their forward passes as the model's own would (fenceOf), and their workers take
	// its parts in their loops' waits; shares of one goroutine have no waits to fill: it runs first.
	fenced := per > 1 && m.upd.on
	if fenced {
		m.openUpdate()
		for _, r := range shares {
			r.updOf, r.updFenced = &m.upd, 0
		}
	} else {
		m.FinishUpdate()
	}
	if len(sp.loss) < k {
		sp.loss, sp.errs = make([]float64, k), make([]error, k)
	}
	if per > 1 {
		shares[0].timings = m.timings // one share's phases stand for the step's
	}
	sp.job = splitJob{m: m, shares: shares, in: inputs, tg: targets, seqs: batch / k, per: per, scale: gradScale / float32(k)}
	par.Run(k, k, k, &sp.job)
	sp.job = splitJob{} // not to keep the batch
	if per > 1 {
		shares[0].timings = nil
	}
	if fenced {
		for _, r := range shares {
			r.updOf = nil
		}
		m.FinishUpdate() // every part is done (each team fenced them all): this closes it
	}
	if err := errors.Join(sp.errs[:k]...); err != nil {
		for _, r := range sum {
			clear(r.gAll) // the next step's shares start from zero
		}
		return 0, err
	}
	t0 := time.Now()
	w := k * per
	sp.sum = gradSumJob{g: m.gAll, reps: sum}
	par.Run(w, len(m.gAll), par.Chunks(w, len(m.gAll), 1<<14), &sp.sum)
	if tm := m.timings; tm != nil {
		tm.Backward += time.Since(t0)
	}
	var loss float64
	for _, l := range sp.loss[:k] {
		loss += l
	}
	return loss / float64(k), nil
}

// splitShares returns the k models a split of k shares of per goroutines runs on (growing the
// replicas on first use) and those whose gradients are then added into the model's: for one
// goroutine a share, the model itself and k−1 replicas, the replicas' summed; for teams, k
// replicas on the team pools, the first adding into the model's gradients itself.
func (m *Model) splitShares(k, per int) (shares, sum []*Model, err error) {
	sp := &m.split
	if per == 1 {
		if len(sp.ones) == 0 {
			sp.ones = append(sp.ones, m)
		}
		for len(sp.ones) < k {
			r, err := New(m.cfg, 0, NewCPU(), Threads(1), sharing(m.wAll, nil))
			if err != nil {
				return nil, nil, err
			}
			sp.ones = append(sp.ones, r)
		}
		return sp.ones[:k], sp.ones[1:k], nil
	}
	for i := len(sp.teams); i < k; i++ {
		var g []float32
		if i == 0 {
			g = m.gAll
		}
		r, err := New(m.cfg, 0, NewCPU(), Threads(per), sharing(m.wAll, g), onPool(par.Team(i)))
		if err != nil {
			return nil, nil, err
		}
		sp.teams = append(sp.teams, r)
	}
	for _, r := range sp.teams[:k] {
		// Spin between loops as a step on all k·per goroutines would: on 16 cores, 4 teams of 4
		// that slept after 50 µs, as loops of 4 goroutines do, took 1.169× the step in loops
		// against 1.049× spinning (RESULTS.md, 7 Dec 2026).
		r.pool.SpinAs(k * per)
	}
	return sp.teams[:k], sp.teams[1:k], nil
}

// splitJob runs share i: sequences [i·seqs, (i+1)·seqs) on shares[i], on per goroutines.
type splitJob struct {
	m         *Model
	shares    []*Model
	in, tg    []uint16
	seqs, per int
	scale     float32
}

func (j *splitJob) Run(_, _, lo, hi int) {
	sp, n := &j.m.split, j.seqs*j.m.cfg.Seq
	for i := lo; i < hi; i++ {
		sp.loss[i], sp.errs[i] = j.shares[i].forwardBackward(j.in[i*n:(i+1)*n], j.tg[i*n:(i+1)*n], j.seqs, j.scale, j.per)
	}
}

// gradSumJob adds the replicas' gradients into g and zeroes them, elements [lo, hi).
type gradSumJob struct {
	g    []float32
	reps []*Model
}

func (j *gradSumJob) Run(_, _, lo, hi int) {
	g := j.g[lo:hi]
	for _, r := range j.reps {
		for i, x := range r.gAll[lo:hi] {
			g[i] += x
		}
		clear(r.gAll[lo:hi])
	}
}

// sharing makes New build a replica that reads w as its weights (another model's wAll, of the
// same config) instead of drawing its own, and adds its gradients into g (another model's gAll)
// when g is not nil.
func sharing(w, g []float32) Option { return func(m *Model) { m.wAll, m.gAll, m.replica = w, g, true } }

// onPool makes a model run its loops on pool (a split step's team replica), its CPU backend's too.
func onPool(pool *par.Pool) Option { return func(m *Model) { m.pool = pool } }
