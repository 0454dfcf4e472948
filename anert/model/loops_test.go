package model

import (
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/internal/par"
)

// stepLoops is the number of parallel loops (par.Loops) one ForwardBackward of cfg on batch
// sequences runs on threads goroutines (CPU backend, attention blocks of 16 rows), after a first
// step that grew the buffers.
func stepLoops(t *testing.T, cfg config.Model, batch, threads int) int {
	t.Helper()
	cpu := NewCPU()
	cpu.Block = 16
	m, err := New(cfg, 1, cpu, Threads(threads))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, 4))
	in, tg := randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab))
	if _, err := m.ForwardBackward(in, tg, batch, 1); err != nil {
		t.Fatal(err)
	}
	before := par.Loops()
	if _, err := m.ForwardBackward(in, tg, batch, 1); err != nil {
		t.Fatal(err)
	}
	return int(par.Loops() - before)
}

// TestLoopsPerStep: the number of parallel loops a training step runs, per layer and for the rest
// (embedding, head, classifier), on 16 goroutines. Each loop ends in a wait for its slowest part,
// and on many cores a step of small GEMMs pays that wait once per loop: this is the countable
// proxy for the step's cost on 16 cores, which this 2-core machine cannot time. The table says
// which loops a layer runs; a change that fuses or splits loops must update it.
func TestLoopsPerStep(t *testing.T) {
	base := config.Model{Dim: 64, Layers: 1, Heads: 4, FFN: 96, Seq: 40, Vocab: 50,
		Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02}
	saved := tune
	defer func() { tune = saved }()
	tune.deferMin = 0 // the loops of the fused step (deferred weight gradients add up to 2 a layer: TestDeferredWeightGrads)
	for _, tc := range []struct {
		name         string
		edit         func(*config.Model)
		batch        int
		layer, other int
	}{
		// forward (4): QKV (+ RoPE on q, k), attention, Wo (+ residual + FFN RMSNorm on each
		// block of rows), W1|W3 (+ SwiGLU) and then W2 (+ residual + next RMSNorm) on the rows
		// it has finished, as one loop of two stages (gemmChain). (With achain=2, QKV,
		// attention and Wo are one loop of three stages, attnThen: TestAttnChain.) backward (5):
		// DGate (+ SwiGLU backward), dX2n (+ FFN RMSNorm backward + residual on each block of
		// rows, + the FFN's 3 weight gradients), attention rows (+ their block of DA before, RoPE
		// backward of dq after), attention keys (+ of dk), dXn (+ attention RMSNorm backward +
		// residual, + the attention's 4 weight gradients). (With the weight gradients deferred,
		// on 8 goroutines or more, DGate and dX2n are one loop of two stages too.)
		// other (7): embedding lookup (+ first RMSNorm), classifier, loss; dxf, classifier dW,
		// final RMSNorm backward, embedding scatter-add (by vocabulary row).
		// Before the fusions: 27 per layer and 7 others (RoPE q, k and SwiGLU, forward and
		// backward, each residual add, RMSNorm and the clearing of dx as loops of their own, and
		// the weight gradients as two loops).
		{"default", func(*config.Model) {}, 3, 9, 7},
		// 16 (sequence, head) pairs on 16 goroutines: the attention backward's items are whole
		// pairs, one loop instead of two (CPU.group).
		{"16 pairs", func(*config.Model) {}, 4, 8, 7},
		// relu2: W1 (+ the activation on its blocks), W2, and backward DGate (+ the activation's
		// backward), as SwiGLU's; GQA: the repeat of k and v (2), their reduce (2); QK-norm:
		// RMSNorm of q, k (2) and RoPE (2) as loops, and the norms' backward (2).
		{"gqa+qknorm+relu2", func(c *config.Model) { c.KVHeads, c.QKNorm, c.Act = 2, true, "relu2" }, 3, 19, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			one := stepLoops(t, cfg, tc.batch, 16)
			cfg.Layers = 2
			two := stepLoops(t, cfg, tc.batch, 16)
			if layer, other := two-one, 2*one-two; layer != tc.layer || other != tc.other {
				t.Errorf("%d loops per layer and %d others, want %d and %d", layer, other, tc.layer, tc.other)
			}
		})
	}
}
