package model

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/optim"
)

// TestDeferredUpdate: training with the optimizer's update deferred into the next forward pass
// (DeferUpdate, on 16 goroutines) gives bit for bit the losses, weights and optimizer state of
// updating in place, step after step: every fence finishes the weights its layer reads before the
// layer runs. Each part of the update is slowed (a sleep) so that the forward pass reaches every
// layer while parts of it are still open: a missing fence then reads stale weights and changes
// the loss (tried: removing the first fence, or the FFN's, fails this test).
func TestDeferredUpdate(t *testing.T) {
	base := config.Model{Dim: 64, Layers: 3, Heads: 4, FFN: 96, Seq: 40, Vocab: 50,
		Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02}
	for _, tc := range []struct {
		name string
		opt  string
		edit func(*config.Model)
	}{
		{"lion", "lion", func(*config.Model) {}},
		{"adamw, untied head, qk-norm, gqa", "adamw", func(c *config.Model) { c.UntiedHead, c.QKNorm, c.KVHeads = true, true, 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			o := config.Default().Optim
			o.Name, o.LossScale, o.GradClip, o.WeightDecay = tc.opt, 64, 1, 0.1
			inPlace, opA := modelOn16(t, cfg, o)
			deferred, opB := modelOn16(t, cfg, o)
			slow := &slowDeferrer{Model: deferred}
			r := rand.New(rand.NewPCG(6, 6))
			deferredSteps := 0
			for step := range 5 {
				in, tg := randTokens(r, 2*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, 2*cfg.Seq, allIDs(cfg.Vocab))
				// The deferred model's pass first, right after its update was deferred: the
				// other model's loops would fill their waits with its parts.
				lb, err := deferred.ForwardBackward(in, tg, 2, 64)
				if err != nil {
					t.Fatal(err)
				}
				la, err := inPlace.ForwardBackward(in, tg, 2, 64)
				if err != nil {
					t.Fatal(err)
				}
				if math.Float64bits(la) != math.Float64bits(lb) {
					t.Fatalf("step %d: loss %.9g in place, %.9g with the update deferred", step, la, lb)
				}
				lr := 1e-2
				opA.Update(inPlace.Params(), lr, optim.Prepare(inPlace.Params(), o, 1, 16))
				if optim.UpdateOrDefer(opB, deferred.Params(), lr, optim.Prepare(deferred.Params(), o, 1, 16), slow) {
					deferredSteps++
				}
			}
			if deferredSteps < 4 { // the first step's update may come before the pool's goroutines exist
				t.Fatalf("%d of 5 updates were deferred: the test did not test DeferUpdate", deferredSteps)
			}
			deferred.FinishUpdate()
			for i, p := range inPlace.Params() {
				q := deferred.Params()[i]
				for j := range p.W {
					if math.Float32bits(p.W[j]) != math.Float32bits(q.W[j]) || q.G[j] != 0 {
						t.Fatalf("%s[%d]: %g in place, %g deferred (gradient %g, want 0)", p.Name, j, p.W[j], q.W[j], q.G[j])
					}
				}
			}
			sa, sb := opA.State(), opB.State()
			for k := range sa {
				for j := range sa[k].Data {
					if math.Float32bits(sa[k].Data[j]) != math.Float32bits(sb[k].Data[j]) {
						t.Fatalf("state %s[%d] differs", sa[k].Name, j)
					}
				}
			}
		})
	}
}

// modelOn16 is a model of cfg (seed 3) and its optimizer o, both on 16 goroutines.
func modelOn16(t *testing.T, cfg config.Model, o config.Optim) (*Model, optim.Optimizer) {
	t.Helper()
	m, err := New(cfg, 3, NewCPU(), Threads(16))
	if err != nil {
		t.Fatal(err)
	}
	op, err := optim.New(o, m.Params(), optim.Threads(16))
	if err != nil {
		t.Fatal(err)
	}
	return m, op
}

// slowDeferrer defers a Model's updates with every part slowed by 200 µs.
type slowDeferrer struct{ *Model }

func (s *slowDeferrer) DeferUpdate(apply func(i, lo, hi int)) bool {
	return s.Model.DeferUpdate(func(i, lo, hi int) {
		time.Sleep(200 * time.Microsecond)
		apply(i, lo, hi)
	})
}

// TestUpdateGroups: every parameter is in the group whose fence comes before the forward pass
// first reads it, and each group's parts cover its parameters exactly once.
func TestUpdateGroups(t *testing.T) {
	cfg := config.Model{Dim: 64, Layers: 2, Heads: 4, FFN: 96, Seq: 40, Vocab: 50, UntiedHead: true,
		Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02}
	m, err := New(cfg, 1, NewCPU(), Threads(16))
	if err != nil {
		t.Fatal(err)
	}
	g := m.updGroupOf()
	want := map[string]int{"embed": updFirst, "layers.0.attn_norm": updFirst, "layers.1.ffn_norm": updFirst,
		"final_norm": updFirst, "layers.0.wq": updAttn(0), "layers.1.wo": updAttn(1), "layers.0.w2": updFFN(0),
		"layers.1.w3": updFFN(1), "head": m.updGroups() - 1}
	for i, p := range m.Params() {
		if w, ok := want[p.Name]; ok && g[i] != w {
			t.Errorf("%s is in group %d, want %d", p.Name, g[i], w)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	in := randTokens(r, cfg.Seq, allIDs(cfg.Vocab))
	if _, err := m.ForwardBackward(in, in, 1, 1); err != nil {
		t.Fatal(err)
	}
	covered := make([][]int, len(m.Params()))
	for i, p := range m.Params() {
		covered[i] = make([]int, p.Size())
	}
	if !m.DeferUpdate(func(i, lo, hi int) {
		for j := lo; j < hi; j++ {
			covered[i][j]++
		}
	}) {
		t.Fatal("DeferUpdate declined on 16 goroutines")
	}
	m.FinishUpdate()
	for i, c := range covered {
		for j, n := range c {
			if n != 1 {
				t.Fatalf("%s[%d] updated %d times", m.Params()[i].Name, j, n)
			}
		}
	}
}
