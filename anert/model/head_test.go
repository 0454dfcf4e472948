package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/config"
)

// TestHeadChain: the head's loss as the classifier's row epilogue (hchain=1), and dxf in the same
// loop as a chain's second stage (hchain=2), give the loss, the evaluation loss and every gradient
// of the head in loops of their own (hchain=0), on 16 goroutines — and so does the classifier's
// deferred weight gradient offered before dxf's loop (clsfirst): with 300 classes (off the blocks'
// 16-column bounds; an 8×16 grid for 128 rows), and with vocab compaction (150 active ids) on 80
// rows (blocks too small for 16-element bounds: whole rows). A loss run on a block of rows
// before all its columns are computed, or a dxf block that does not wait for its rows' loss, reads
// logits not yet written (tried: each fails it); the chained grid must give every goroutine a
// block of rows of the loss.
func TestHeadChain(t *testing.T) {
	defer func(o cpuTune) { setTune(o) }(tune)
	for _, tc := range []struct {
		name    string
		batch   int
		compact bool
	}{
		{"128 rows", 2, false},
		{"80 rows, compaction", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Model{Dim: 64, Layers: 2, Heads: 4, FFN: 96, Seq: 64, Vocab: 300,
				Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02, Act: "swiglu",
				Compact: tc.compact}
			if tc.compact {
				cfg.Seq = 80
			}
			r := rand.New(rand.NewPCG(3, 9))
			ids := allIDs(cfg.Vocab)
			if tc.compact {
				ids = ids[:150]
			}
			in, tg := randTokens(r, tc.batch*cfg.Seq, ids), randTokens(r, tc.batch*cfg.Seq, ids)
			var ref []float64
			var refG [][]float32
			for _, v := range []struct {
				hc       int
				clsFirst bool
			}{{0, false}, {1, false}, {2, false}, {0, true}, {1, true}} {
				hc := v.hc
				tt := tune
				tt.headChain, tt.clsFirst = hc, v.clsFirst
				setTune(tt)
				m, err := New(cfg, 3, NewCPU(), Threads(16))
				if err != nil {
					t.Fatal(err)
				}
				if tc.compact {
					if err := m.SetActive(ids); err != nil {
						t.Fatal(err)
					}
				}
				for rep := range 6 { // a missing wait shows only in some runs' timing
					m.ZeroGrad()
					loss, err := m.ForwardBackward(in, tg, tc.batch, 1)
					if err != nil {
						t.Fatal(err)
					}
					eval, err := m.Loss(in, tg, tc.batch)
					if err != nil {
						t.Fatal(err)
					}
					var gs [][]float32
					for _, p := range m.Params() {
						gs = append(gs, append([]float32(nil), p.G...))
					}
					if hc == 0 && !v.clsFirst {
						ref, refG = []float64{loss, eval}, gs
						break
					}
					for i, x := range []float64{loss, eval} {
						if d := math.Abs(x - ref[i]); d > 1e-9*math.Abs(ref[i]) {
							t.Fatalf("hchain=%d clsfirst=%v, run %d: loss %d %.12g, in loops of their own %.12g", hc, v.clsFirst, rep, i, x, ref[i])
						}
					}
					for i, p := range m.Params() {
						scale := 0.0
						for _, g := range refG[i] {
							scale = max(scale, math.Abs(float64(g)))
						}
						for j, x := range gs[i] {
							if d := math.Abs(float64(x - refG[i][j])); d > 1e-5*scale {
								t.Fatalf("hchain=%d clsfirst=%v, run %d: %s's gradient [%d] = %g, in loops of their own %g", hc, v.clsFirst, rep, p.Name, j, x, refG[i][j])
							}
						}
					}
				}
				if hc > 0 {
					if !m.headChained() {
						t.Fatal("16 goroutines: the head should run chained")
					}
					checkHeadGrid(t, m, tc.batch*cfg.Seq)
				}
			}
		})
	}
}

// checkHeadGrid: the classifier's grid with the loss as its row epilogue has a block of rows per
// goroutine at least (as many as n rows allow on 16-row bounds).
func checkHeadGrid(t *testing.T, m *Model, n int) {
	t.Helper()
	j := &m.team.loss
	cls := classifierSpec(m.buf.logits, m.buf.xf, m.classifier(), n, m.classes(), m.cfg.Dim)
	cls.rowPost = j
	pm, _ := lonePlan(m.team.w, m.team.lone(), cls.m, cls.n, cls.k, 0, &cls)
	if want := min(m.team.w, n/16); pm < want {
		t.Errorf("the chained classifier's grid has %d rows of blocks for %d goroutines and %d rows", pm, m.team.w, n)
	}
}
