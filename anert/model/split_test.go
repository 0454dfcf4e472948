package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/internal/par"
)

// TestSplitStep: a step split into one share of the batch a goroutine, or into teams of
// goroutines on pools of their own (split.go), gives the loss and gradients of the step in loops
// up to float rounding (the sums over tokens run in another order), adds to the gradients as a
// step does (two steps without ZeroGrad), finishes a deferred update before its shares read the
// weights, leaves the replicas' gradients at zero for the next step, rejects a bad id before any
// gradient changes, allocates nothing after its first step, and runs only where it applies: the
// goroutines divide the batch and are at most split, or teams divides both, the CPU backend, no
// vocab compaction.
func TestSplitStep(t *testing.T) {
	saved := tune
	defer func() { setTune(saved) }()
	base := smallModel()
	gqa := base
	gqa.KVHeads, gqa.QKNorm, gqa.UntiedHead = 2, true, true
	for _, tc := range []struct {
		name           string
		cfg            config.Model
		threads, batch int
		split, teams   int // tune.split, tune.teams
		shares         int // shares after the steps (1: not split)
	}{
		{"2 goroutines, batch 4", base, 2, 4, 2, 0, 2},
		{"2 goroutines, batch 2", base, 2, 2, 2, 0, 2},
		{"4 goroutines, batch 8", base, 4, 8, 4, 0, 4},
		{"gqa+qknorm+untied", gqa, 2, 2, 2, 0, 2},
		{"batch 3 on 2 goroutines: not split", base, 2, 3, 2, 0, 1},
		{"4 goroutines above split=2: not split", base, 4, 4, 2, 0, 1},
		{"split=0", base, 2, 4, 0, 0, 1},
		{"4 goroutines, 2 teams of 2", base, 4, 4, 2, 2, 2},
		{"16 goroutines, 4 teams of 4", base, 16, 4, 2, 4, 4},
		{"16 goroutines, 2 teams of 8 (deferred weight gradients)", base, 16, 2, 2, 2, 2},
		{"gqa+qknorm+untied, 2 teams", gqa, 8, 2, 2, 2, 2},
		{"teams=4, batch 2: not split", base, 16, 2, 2, 4, 1},
		{"teams=3, 16 goroutines: not split", base, 16, 6, 2, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tune.split, tune.teams = 0, 0
			ref, err := New(tc.cfg, 3, NewCPU(), Threads(tc.threads))
			if err != nil {
				t.Fatal(err)
			}
			m, err := New(tc.cfg, 3, NewCPU(), Threads(tc.threads))
			if err != nil {
				t.Fatal(err)
			}
			perturb(ref, 5)
			perturb(m, 5)
			r := rand.New(rand.NewPCG(7, 7))
			n := tc.batch * tc.cfg.Seq
			in0, tg0 := randTokens(r, n, allIDs(tc.cfg.Vocab)), randTokens(r, n, allIDs(tc.cfg.Vocab))
			// both runs a step of ref in loops and of m as tc splits it, and returns their losses.
			both := func(in, tg []uint16) (split, loops float64) {
				tune.split, tune.teams = 0, 0
				loops, err := ref.ForwardBackward(in, tg, tc.batch, 0.5)
				if err != nil {
					t.Fatal(err)
				}
				tune.split, tune.teams = tc.split, tc.teams
				if split, err = m.ForwardBackward(in, tg, tc.batch, 0.5); err != nil {
					t.Fatal(err)
				}
				return split, loops
			}
			for step := range 2 { // no ZeroGrad: the second step adds to the first's gradients
				in, tg := randTokens(r, n, allIDs(tc.cfg.Vocab)), randTokens(r, n, allIDs(tc.cfg.Vocab))
				got, want := both(in, tg)
				if math.Abs(got-want) > 1e-6*want {
					t.Fatalf("step %d: loss %v split, %v in loops", step, got, want)
				}
				for i, p := range m.Params() {
					q := ref.Params()[i]
					scale := 0.0
					for _, g := range q.G {
						scale = max(scale, math.Abs(float64(g)))
					}
					for j := range p.G {
						if d := math.Abs(float64(p.G[j] - q.G[j])); d > 1e-5*scale {
							t.Fatalf("step %d: %s.G[%d] = %g split, %g in loops (largest |G| %g)", step, p.Name, j, p.G[j], q.G[j], scale)
						}
					}
				}
			}
			sp := &m.split
			if shares := max(len(sp.ones), len(sp.teams), 1); shares != tc.shares {
				t.Fatalf("%d shares, want %d", shares, tc.shares)
			}
			if k := m.SplitShares(tc.batch); k != tc.shares {
				t.Fatalf("SplitShares = %d, the step split into %d", k, tc.shares)
			}
			var summed []*Model // the replicas whose gradients are added into the model's
			if len(sp.ones) > 1 {
				summed = sp.ones[1:]
			}
			for i, rep := range sp.teams {
				if rep.pool != par.Team(i) || rep.backend.(*CPU).pool != par.Team(i) {
					t.Fatalf("team %d does not run on team pool %d", i, i)
				}
				if i == 0 && &rep.gAll[0] != &m.gAll[0] {
					t.Fatal("team 0 does not add into the model's gradients")
				}
				if i > 0 {
					summed = append(summed, rep)
				}
			}
			for i, rep := range summed {
				if slices.ContainsFunc(rep.gAll, func(g float32) bool { return g != 0 }) {
					t.Fatalf("replica %d's gradients not zeroed after the sum", i)
				}
				if &rep.wAll[0] != &m.wAll[0] {
					t.Fatalf("replica %d does not read the model's weights", i)
				}
			}
			if tc.threads >= tune.deferMin {
				// An update deferred into the next forward pass (the trainer's on many cores): a
				// step split into teams fences it in the teams' forward passes as they go.
				for _, x := range []*Model{ref, m} {
					if _, err := x.Loss(in0, tg0, tc.batch); err != nil { // a step's team, as after an evaluation
						t.Fatal(err)
					}
					ps := x.Params()
					if !x.DeferUpdate(func(i, lo, hi int) {
						for j := lo; j < hi; j++ {
							ps[i].W[j] -= 0.05 * ps[i].G[j]
							ps[i].G[j] = 0
						}
					}) {
						t.Fatal("no deferred update on", tc.threads, "goroutines")
					}
				}
				if got, want := both(in0, tg0); math.Abs(got-want) > 1e-6*want {
					t.Fatalf("after a deferred update: loss %v split, %v in loops", got, want)
				}
				if m.upd.on || m.upd.d.Left(1<<20) != 0 {
					t.Fatal("the deferred update is still open after the step")
				}
			}
			// A bad id in the last share: an error naming it, and no gradient changes.
			before := slices.Clone(m.gAll)
			in, tg := randTokens(r, n, allIDs(tc.cfg.Vocab)), randTokens(r, n, allIDs(tc.cfg.Vocab))
			tg[n-1] = uint16(tc.cfg.Vocab)
			if _, err := m.ForwardBackward(in, tg, tc.batch, 0.5); err == nil {
				t.Fatal("a target id outside the vocabulary: no error")
			}
			if !slices.Equal(before, m.gAll) {
				t.Fatal("a rejected batch changed the gradients")
			}
			if blas.Backend != "go" && tc.shares > 1 {
				tg[n-1] = 0
				if a := stepAllocs(func() { m.ForwardBackward(in, tg, tc.batch, 0.5) }); a != 0 { // 2 of 25 runs caught a sudog over 2 plain steps
					t.Errorf("%g allocations a split step", a)
				}
			}
		})
	}
	// Vocab compaction: not split.
	tune.split = 2
	cfg := base
	cfg.Compact = true
	m, err := New(cfg, 3, NewCPU(), Threads(2))
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{0, 2, 3, 7, 8, 11}
	if err := m.SetActive(ids); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	in, tg := randTokens(r, 2*cfg.Seq, ids), randTokens(r, 2*cfg.Seq, ids)
	if _, err := m.ForwardBackward(in, tg, 2, 1); err != nil {
		t.Fatal(err)
	}
	if len(m.split.ones) != 0 {
		t.Fatal("a model with vocab compaction split its step")
	}
}
