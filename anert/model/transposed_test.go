package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/optim"
)

// TestTransposedWeights: training on 16 goroutines with the forward products reading transposed
// copies of the layer matrices (wt) gives the losses of reading W itself, step after step, and
// leaves copies that are W transposed bit for bit. The updates are deferred with every part
// slowed, so the forward pass reaches each layer while parts are open: a part that updated W but
// not its copy, or a fence passed before the copy was written, leaves a layer reading last step's
// weights — a loss off by far more than the 1e-6 the two products' rounding allows (tried: not
// transposing in the deferred parts fails it at the second step). A load of new weights
// (WeightsChanged) between steps must reach the copies too; and on 2 goroutines (no deferred
// update) the layers read W.
func TestTransposedWeights(t *testing.T) {
	defer func(o cpuTune) { tune = o }(tune)
	for _, tc := range []struct {
		name string
		edit func(*config.Model)
	}{
		{"swiglu", func(*config.Model) {}},
		{"relu2, gqa, qk-norm, untied head", func(c *config.Model) { c.Act, c.KVHeads, c.QKNorm, c.UntiedHead = "relu2", 2, true, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Model{Dim: 64, Layers: 2, Heads: 4, FFN: 96, Seq: 40, Vocab: 50,
				Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02}
			tc.edit(&cfg)
			o := config.Default().Optim
			o.LR = 1e-2
			plain, opA := modelOn16(t, cfg, o)
			wt, opB := modelOn16(t, cfg, o)
			slow := &slowDeferrer{Model: wt}
			r := rand.New(rand.NewPCG(7, 7))
			read := 0
			for step := range 6 {
				if step == 3 { // a checkpoint load: new weights in both, announced
					wt.FinishUpdate()
					for i, p := range plain.Params() {
						for j := range p.W {
							p.W[j] *= 0.5
						}
						copy(wt.Params()[i].W, p.W)
					}
					plain.WeightsChanged()
					wt.WeightsChanged()
				}
				in, tg := randTokens(r, 2*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, 2*cfg.Seq, allIDs(cfg.Vocab))
				tune.transW = false
				la, err := plain.ForwardBackward(in, tg, 2, 1)
				if err != nil {
					t.Fatal(err)
				}
				tune.transW = true
				lb, err := wt.ForwardBackward(in, tg, 2, 1)
				if err != nil {
					t.Fatal(err)
				}
				if wt.Layers[0].T != nil {
					read++
				}
				if d := math.Abs(la - lb); d > 1e-6*math.Abs(la) {
					t.Fatalf("step %d: loss %.9g reading W, %.9g reading its transposed copies", step, la, lb)
				}
				tune.transW = false
				opA.Update(plain.Params(), o.LR, optim.Prepare(plain.Params(), o, 1, 16))
				tune.transW = true
				optim.UpdateOrDefer(opB, wt.Params(), o.LR, optim.Prepare(wt.Params(), o, 1, 16), slow)
			}
			if read < 5 {
				t.Fatalf("the forward pass read the copies in %d of 6 steps", read)
			}
			wt.FinishUpdate()
			checkTransposed(t, wt)
			held := 0
			for _, c := range wt.wt.of {
				held += len(c)
			}
			if f, of := wt.TransposedFloats(), TransposedFloatsOf(cfg, 16); f != held || of != f {
				t.Fatalf("TransposedFloats = %d, TransposedFloatsOf = %d; the copies hold %d", f, of, held)
			}

			// On 2 goroutines the update runs in place and the layers read W.
			wt.SetThreads(2)
			if _, err := wt.ForwardBackward(randTokens(r, 2*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, 2*cfg.Seq, allIDs(cfg.Vocab)), 2, 1); err != nil {
				t.Fatal(err)
			}
			for l := range wt.Layers {
				if wt.Layers[l].T != nil {
					t.Fatalf("layer %d reads transposed copies on 2 goroutines", l)
				}
			}
			if f := wt.TransposedFloats(); f != 0 {
				t.Fatalf("TransposedFloats = %d on 2 goroutines, which keep no copies", f)
			}
		})
	}
}

// checkTransposed fails unless every layer matrix's copy is its transpose, bit for bit.
func checkTransposed(t *testing.T, m *Model) {
	t.Helper()
	n := 0
	for i, p := range m.Params() {
		c := m.wt.of[i]
		if c == nil {
			continue
		}
		n++
		rows, cols := p.Shape[0], p.Shape[1]
		for r := range rows {
			for k := range cols {
				if math.Float32bits(c[k*rows+r]) != math.Float32bits(p.W[r*cols+k]) {
					t.Fatalf("%s[%d, %d] = %g, its transposed copy has %g", p.Name, r, k, p.W[r*cols+k], c[k*rows+r])
				}
			}
		}
	}
	if want := len(m.Layers) * 6; n < want {
		t.Fatalf("%d copies, want at least %d", n, want)
	}
}

// TestTransposeRange: a deferred update's part writes exactly its elements into the copy, for
// ranges that start and end mid-row, span one row or less, or many rows (the kernel's tiles and
// their ragged edges), against the formula Wᵀ[c, r] = W[r, c]; elements outside stay untouched.
func TestTransposeRange(t *testing.T) {
	for _, tc := range []struct{ rows, cols, lo, hi int }{
		{256, 256, 0, 16384}, {768, 256, 16384, 32768}, {256, 768, 16384, 32768}, {37, 21, 5, 700},
		{37, 21, 22, 30}, {37, 21, 21, 42}, {40, 33, 0, 40 * 33}, {17, 16, 16, 17 * 16}, {3, 5, 4, 6},
	} {
		n := tc.rows * tc.cols
		w, got := make([]float32, n), make([]float32, n)
		for i := range w {
			w[i] = float32(i + 1)
		}
		for i := range got {
			got[i] = -1
		}
		wt := &wtState{of: [][]float32{got}, rows: []int{tc.rows}}
		wt.transposeRange(w, 0, tc.lo, tc.hi)
		for r := range tc.rows {
			for c := range tc.cols {
				want, i := float32(-1), r*tc.cols+c
				if i >= tc.lo && i < tc.hi {
					want = w[i]
				}
				if g := got[c*tc.rows+r]; g != want {
					t.Fatalf("%+v: Wᵀ[%d, %d] = %g, want %g", tc, c, r, g, want)
				}
			}
		}
	}
}

// BenchmarkTransposeChunk times what wt adds to a deferred update's part: one part (updChunk
// elements) of a layer matrix written into its copy (anert/bench/RESULTS.md, 7 Dec 2026).
func BenchmarkTransposeChunk(b *testing.B) {
	for _, sh := range [][2]int{{256, 256}, {768, 256}, {256, 768}} {
		rows, cols := sh[0], sh[1]
		w := make([]float32, rows*cols)
		wt := &wtState{of: [][]float32{make([]float32, rows*cols)}, rows: []int{rows}}
		b.Run(fmt.Sprintf("w=%dx%d", rows, cols), func(b *testing.B) {
			b.SetBytes(updChunk * 8) // read and written
			for i := 0; i < b.N; i++ {
				lo := i * updChunk % len(w)
				wt.transposeRange(w, 0, lo, min(lo+updChunk, len(w)))
			}
		})
	}
}
