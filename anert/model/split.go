package model

import (
	"errors"
	"fmt"
	"time"

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

// splitState holds a split step's replicas (grown on the first split step) and its jobs.
type splitState struct {
	reps []*Model
	loss []float64
	errs []error
	job  splitJob
	sum  gradSumJob
}

// splitWays is how many shares ForwardBackward splits a batch of batch sequences into on w
// goroutines: w where 2 ≤ w ≤ tune.split, w divides batch, the backend is the CPU's and there is
// no vocab compaction; else 1.
func (m *Model) splitWays(batch, w int) int {
	if _, cpu := m.backend.(*CPU); !cpu || w < 2 || w > tune.split || batch%w != 0 || m.cfg.Compact {
		return 1
	}
	return w
}

// forwardBackwardSplit is ForwardBackward as k shares (see splitState).
func (m *Model) forwardBackwardSplit(inputs, targets []uint16, batch int, gradScale float32, k int) (float64, error) {
	if err := CheckBatch(inputs, targets, batch, m.cfg.Seq, m.cfg.Vocab); err != nil { // before any share adds to G
		return 0, fmt.Errorf("model: %w", err)
	}
	sp := &m.split
	for len(sp.reps) < k-1 {
		r, err := New(m.cfg, 0, NewCPU(), Threads(1), sharing(m.wAll))
		if err != nil {
			return 0, err
		}
		sp.reps = append(sp.reps, r)
	}
	if len(sp.loss) < k {
		sp.loss, sp.errs = make([]float64, k), make([]error, k)
	}
	sp.job = splitJob{m: m, in: inputs, tg: targets, per: batch / k, scale: gradScale / float32(k)}
	par.Run(k, k, k, &sp.job)
	sp.job = splitJob{} // not to keep the batch
	if err := errors.Join(sp.errs[:k]...); err != nil {
		for _, r := range sp.reps[:k-1] {
			clear(r.gAll) // the next step's shares start from zero
		}
		return 0, err
	}
	t0 := time.Now()
	sp.sum = gradSumJob{g: m.gAll, reps: sp.reps[:k-1]}
	par.Run(k, len(m.gAll), par.Chunks(k, len(m.gAll), 1<<14), &sp.sum)
	if tm := m.timings; tm != nil {
		tm.Backward += time.Since(t0)
	}
	var loss float64
	for _, l := range sp.loss[:k] {
		loss += l
	}
	return loss / float64(k), nil
}

// splitJob runs share i: sequences [i·per, (i+1)·per) on the model (i = 0) or replica i−1.
type splitJob struct {
	m      *Model
	in, tg []uint16
	per    int
	scale  float32
}

func (j *splitJob) Run(_, _, lo, hi int) {
	sp, n := &j.m.split, j.per*j.m.cfg.Seq
	for i := lo; i < hi; i++ {
		r := j.m
		if i > 0 {
			r = sp.reps[i-1]
		}
		sp.loss[i], sp.errs[i] = r.forwardBackward(j.in[i*n:(i+1)*n], j.tg[i*n:(i+1)*n], j.per, j.scale, 1)
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
// same config) instead of drawing its own.
func sharing(w []float32) Option { return func(m *Model) { m.wAll = w } }
