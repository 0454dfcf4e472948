package model

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/blas"
)

// asyncCPU is the CPU backend reporting Async() = on, so that the model runs its weight
// gradients on the dW worker (the calls then compete with it for the cores, but compute the same
// numbers); failAt ≥ 0 makes AttnBackward of that layer fail.
type asyncCPU struct {
	*CPU
	on     bool
	failAt int
}

func (a *asyncCPU) Async() bool { return a.on }

func (a *asyncCPU) AttnBackward(l int, s Shape, w *Layer, la *LayerActs) error {
	if l == a.failAt {
		return errors.New("injected")
	}
	return a.CPU.AttnBackward(l, s, w, la)
}

// TestAsyncWeightGradMatchesSync: ForwardBackward with the weight gradients on the dW worker
// (forced on through AsyncBackend) leaves exactly the gradients of the synchronous path — every
// parameter gets the same GEMMs in the same order, split the same way — over several steps that
// accumulate, a batch that grows the buffers, an odd layer count (the double-buffered scratch
// wraps unevenly) and a model switched from sync to async midway. Run it under -race too: a
// missing wait would be a data race on the shared scratch.
func TestAsyncWeightGradMatchesSync(t *testing.T) {
	old := blas.Threads()
	blas.SetThreads(2) // two goroutines per loop: the worker's and the step's loops share the pool
	defer blas.SetThreads(old)
	saved := tune
	defer func() { setTune(saved) }()
	tune.split = 0 // the sync model's step in loops, as the async one's (a split step sums in another order: TestSplitStep)
	for _, tc := range []struct {
		name     string
		compact  bool
		switchOn int // step at which the async model turns async on (0: from the start)
	}{
		{"full", false, 0},
		{"compact", true, 0},
		{"switch", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyCfg()
			cfg.Layers, cfg.Compact = 5, tc.compact
			back := &asyncCPU{CPU: NewCPU(), on: tc.switchOn == 0, failAt: -1}
			sync, _ := New(cfg, 1, nil)
			async, _ := New(cfg, 1, back)
			for _, m := range []*Model{sync, async} {
				perturb(m, 7)
				if tc.compact {
					if err := m.SetActive([]int{0, 2, 3, 7, 8, 11, 15, 19}); err != nil {
						t.Fatal(err)
					}
				}
			}
			ids := allIDs(cfg.Vocab)
			if tc.compact {
				ids = []int{0, 2, 3, 7, 8, 11, 15, 19}
			}
			r := rand.New(rand.NewPCG(8, 8))
			for step, batch := range []int{1, 3, 2} {
				back.on = back.on || step == tc.switchOn
				n := batch * cfg.Seq
				in, tg := randTokens(r, n, ids), randTokens(r, n, ids)
				ls, err := sync.ForwardBackward(in, tg, batch, 0.5)
				if err != nil {
					t.Fatal(err)
				}
				la, err := async.ForwardBackward(in, tg, batch, 0.5)
				if err != nil {
					t.Fatal(err)
				}
				if ls != la {
					t.Fatalf("step %d: loss %v async, %v sync", step, la, ls)
				}
				for i, p := range sync.Params() {
					q := async.Params()[i]
					for j := range p.G {
						if p.G[j] != q.G[j] {
							t.Fatalf("step %d: %s.G[%d] = %g async, %g sync", step, p.Name, j, q.G[j], p.G[j])
						}
					}
				}
			}
			if async.buf.sets != 2 || sync.buf.sets != 1 {
				t.Errorf("scratch sets: async %d, sync %d; want 2 and 1", async.buf.sets, sync.buf.sets)
			}
		})
	}
}

// TestAsyncBackendError: a failing backend call in the async backward pass returns its error
// with the dW worker drained (no job outlives ForwardBackward), and the next step works.
func TestAsyncBackendError(t *testing.T) {
	cfg := tinyCfg()
	cfg.Layers = 3
	back := &asyncCPU{CPU: NewCPU(), on: true, failAt: 1}
	m, _ := New(cfg, 1, back)
	in := make([]uint16, cfg.Seq)
	if _, err := m.ForwardBackward(in, in, 1, 1); err == nil {
		t.Fatal("no error from a failing AttnBackward")
	}
	if m.dwq.on {
		t.Fatal("dW worker still running after the error")
	}
	back.failAt = -1
	if _, err := m.ForwardBackward(in, in, 1, 1); err != nil {
		t.Fatal(err)
	}
}
