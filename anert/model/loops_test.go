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
	for _, tc := range []struct {
		name         string
		edit         func(*config.Model)
		layer, other int
	}{
		// forward (10): attention RMSNorm, QKV (+ RoPE on q, k), attention, Wo, residual, FFN RMSNorm,
		// W1|W3 (+ SwiGLU), W2, residual. backward (11 + 2 dW): residual, DGate (+ SwiGLU backward),
		// dX2n, FFN dW, RMSNorm, residual, DA, attention rows (+ RoPE backward of dq), attention
		// keys (+ of dk), dXn, attention dW, RMSNorm.
		// other (7): final RMSNorm, classifier, loss; dxf, classifier dW, clear dx, final RMSNorm.
		// Before the GEMM epilogues: 27 per layer (RoPE q, k and SwiGLU, forward and backward, as
		// loops of their own).
		{"default", func(*config.Model) {}, 21, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			one := stepLoops(t, cfg, 3, 16)
			cfg.Layers = 2
			two := stepLoops(t, cfg, 3, 16)
			if layer, other := two-one, 2*one-two; layer != tc.layer || other != tc.other {
				t.Errorf("%d loops per layer and %d others, want %d and %d", layer, other, tc.layer, tc.other)
			}
		})
	}
}
