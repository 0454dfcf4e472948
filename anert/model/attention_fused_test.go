package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/config"
)

// TestFusedAttention checks the fused attention kernels (attnRowsForwardFused,
// attnHeadBackwardFused) against the BLAS path (attnRowsForward, attnHeadBackward: the formulas,
// checked by finite differences in TestAttentionGrad) over head dims, sequence lengths that are
// and are not multiples of the panel, row blocks and strides: the outputs agree to float32
// rounding, nothing outside the head's columns or the block's rows is written, and garbage in the
// scratch does not leak in. Every instance this CPU runs is checked (AVX-512, AVX2, generic: the
// one arm64 runs).
func TestFusedAttention(t *testing.T) {
	if Kernels != "c" {
		t.Skip("no fused attention in this build (cgo off)")
	}
	defer selectAttnKernels(-1)
	for _, width := range []int{512, 256, 0} {
		t.Run(fmt.Sprintf("width=%d", width), func(t *testing.T) {
			if !selectAttnKernels(width) {
				t.Skipf("this CPU does not run the %d-bit instance", width)
			}
			testFusedAttention(t)
		})
	}
}

func testFusedAttention(t *testing.T) {
	for _, c := range []struct{ T, hd, heads, blk int }{
		{1, 16, 1, 64}, {5, 16, 2, 64}, {16, 32, 2, 16}, {37, 64, 2, 64}, {64, 64, 1, 64},
		{100, 48, 3, 32}, {130, 128, 2, 64}, {256, 64, 4, 64},
	} {
		t.Run(fmt.Sprintf("T=%d,hd=%d,blk=%d", c.T, c.hd, c.blk), func(t *testing.T) {
			T, hd := c.T, c.hd
			ld := c.heads*hd + 8 // rows a little wider than the heads
			off := (c.heads - 1) * hd
			scale := float32(1 / math.Sqrt(float64(hd)))
			r := rand.New(rand.NewPCG(uint64(T), uint64(hd)))
			q, k, v, da := rnd(r, T*ld, -1.5, 1.5), rnd(r, T*ld, -1.5, 1.5), rnd(r, T*ld, -1.5, 1.5), rnd(r, T*ld, -1, 1)
			const sentinel = 12345
			fill := func(n int) []float32 {
				s := make([]float32, n)
				for i := range s {
					s[i] = sentinel
				}
				return s
			}
			near := func(name string, got, want []float32) {
				t.Helper()
				var top float64
				for _, w := range want {
					top = max(top, math.Abs(float64(w)))
				}
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > 2e-5*top+1e-5*math.Abs(float64(want[i])) || math.IsNaN(float64(got[i])) {
						t.Fatalf("%s[%d] (row %d, column %d) = %g, BLAS path %g", name, i, i/ld, i%ld, got[i], want[i])
					}
				}
			}

			// Forward, block by block, against attnRowsForward; rows outside the block untouched.
			a, lse := fill(T*ld), fill(T)
			wa, wlse := fill(T*ld), fill(T)
			s := rnd(r, T*T, -9, 9)
			ws := rnd(r, attnFusedScratch(hd, T), -9, 9)
			for r0 := 0; r0 < T; r0 += c.blk {
				r1 := min(r0+c.blk, T)
				attnRowsForwardFused(a[off:], lse, q[off:], k[off:], v[off:], ws, hd, ld, scale, r0, r1)
				attnRowsForward(wa[off:], wlse, q[off:], k[off:], v[off:], s, T, hd, ld, scale, r0, r1)
				for i := r1 * ld; i < T*ld; i++ {
					if a[i] != sentinel {
						t.Fatalf("forward of rows [%d, %d) wrote element %d (row %d)", r0, r1, i, i/ld)
					}
				}
			}
			near("A", a, wa)
			near("lse", lse, wlse)

			// Backward over the whole head against attnHeadBackward.
			dq, dk, dv := fill(T*ld), fill(T*ld), fill(T*ld)
			wq, wk, wv := fill(T*ld), fill(T*ld), fill(T*ld)
			sc, dp := rnd(r, T*T, -9, 9), rnd(r, T*T, -9, 9)
			ws1, ws2 := rnd(r, attnFusedScratch(hd, T), -9, 9), rnd(r, attnFusedScratch(hd, T), -9, 9)
			attnHeadBackwardFused(dq[off:], dk[off:], dv[off:], da[off:], q[off:], k[off:], v[off:], wlse, ws1, ws2, T, hd, ld, scale)
			attnHeadBackward(wq[off:], wk[off:], wv[off:], da[off:], q[off:], k[off:], v[off:], wlse, sc, dp, T, hd, ld, scale, c.blk)
			near("dQ", dq, wq)
			near("dK", dk, wk)
			near("dV", dv, wv)
			for i := range T * ld {
				if col := i % ld; col < off || col >= off+hd {
					if a[i] != sentinel || dq[i] != sentinel || dk[i] != sentinel || dv[i] != sentinel {
						t.Fatalf("column %d of row %d, outside the head, was written", col, i/ld)
					}
				}
			}
		})
	}
}

// TestFusedAttentionModel: a training step with the fused attention (fattn=16) and without it
// (fattn=0) gives the same loss and gradients, on 1 goroutine (whole heads: the fused backward)
// and on 16 (more goroutines than heads: the fused forward, the backward's two-loop BLAS path), so
// that the kernels are wired to the right rows, heads and scratch in the step; and on 16 with the
// forward alone fused (fattnf=16), at 16 pairs, where the backward's whole pairs stay on BLAS.
func TestFusedAttentionModel(t *testing.T) {
	if attnPanel == 0 {
		t.Skip("no fused attention in this build (cgo off)")
	}
	defer func(o cpuTune) { tune = o }(tune)
	cfg := config.Model{Dim: 96, Layers: 2, Heads: 3, FFN: 64, Seq: 70, Vocab: 50,
		Pos: "rope", RopeTheta: 10000, Softcap: 3, NormEps: 1e-5, InitStd: 0.02}
	const batch = 2
	r := rand.New(rand.NewPCG(8, 8))
	in, tg := randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, batch*cfg.Seq, allIDs(cfg.Vocab))
	step := func(threads int, fused bool) (float64, [][]float32) {
		tune.fusedAttn, tune.fusedAttnFwd = 0, 0
		if fused {
			tune.fusedAttn = 16
		}
		if attnFused(cfg.Dim/cfg.Heads, threads) != fused {
			t.Fatalf("attnFused = %v with fattn=%d", !fused, tune.fusedAttn)
		}
		return stepGrads(t, cfg, NewCPU(), threads, in, tg, batch)
	}
	for _, threads := range []int{1, 16} {
		want, wg := step(threads, false)
		got, g := step(threads, true)
		name := fmt.Sprintf("%d threads", threads)
		if math.Abs(got-want) > 1e-6*math.Abs(want) {
			t.Errorf("%s: loss %.9g fused, %.9g not", name, got, want)
		}
		sameGrads(t, name, wg, g)
	}
	// The forward alone (fattnf): 8 sequences × 2 heads, whole pairs on 16 goroutines.
	cfg.Heads, cfg.Dim = 2, 64
	const b8 = 8
	in, tg = randTokens(r, b8*cfg.Seq, allIDs(cfg.Vocab)), randTokens(r, b8*cfg.Seq, allIDs(cfg.Vocab))
	tune.fusedAttn, tune.fusedAttnFwd = 8, 0
	want, wg := stepGrads(t, cfg, NewCPU(), 16, in, tg, b8)
	tune.fusedAttnFwd, tune.fusedFwdSeq = 16, cfg.Seq
	if !attnFusedFwd(32, 16, cfg.Seq) || attnFused(32, 16) {
		t.Fatal("fattnf=16 does not fuse the forward alone on 16 goroutines")
	}
	got, g := stepGrads(t, cfg, NewCPU(), 16, in, tg, b8)
	if math.Abs(got-want) > 1e-6*math.Abs(want) {
		t.Errorf("fattnf=16: loss %.9g, %.9g without", got, want)
	}
	sameGrads(t, "fattnf=16", wg, g)
}

// TestFusedAttentionWorkers: with fattn=8 (the default) the fused kernels run on teams of up to 8
// goroutines and not on more (on 16 cores the step ran faster without them, cpuTune.fusedAttn),
// never for head dims that are not multiples of 16; fattn=0 turns them off. Beyond fattn the
// forward alone runs fused on teams up to fattnf (16) for sequences of at least fattnft (512)
// tokens: the original's shape on 16 cores, not the default config's (cpuTune.fusedFwdSeq).
func TestFusedAttentionWorkers(t *testing.T) {
	if attnPanel == 0 {
		t.Skip("no fused attention in this build (cgo off)")
	}
	defer func(o cpuTune) { tune = o }(tune)
	if !attnFusedFwd(64, 16, 512) || attnFusedFwd(64, 16, 256) || attnFused(64, 16) {
		t.Errorf("the defaults on 16 goroutines: forward fused at T 512 %v, at T 256 %v, backward %v; want true, false, false",
			attnFusedFwd(64, 16, 512), attnFusedFwd(64, 16, 256), attnFused(64, 16))
	}
	for _, c := range []struct {
		fattn, fattnf, fattnft, hd, workers, T int
		want, wantFwd                          bool
	}{
		{8, 0, 512, 64, 0, 256, true, true}, {8, 0, 512, 64, 1, 256, true, true}, {8, 0, 512, 64, 2, 256, true, true},
		{8, 0, 512, 64, 8, 256, true, true}, {8, 0, 512, 64, 9, 512, false, false}, {8, 0, 512, 64, 16, 512, false, false},
		{8, 0, 512, 24, 2, 256, false, false}, {8, 0, 512, 16, 2, 256, true, true},
		{0, 0, 512, 64, 1, 256, false, false}, {16, 0, 512, 64, 16, 256, true, true}, {16, 0, 512, 64, 17, 256, false, false},
		// the defaults' forward on 16 goroutines: fused at the original's T = 512, not the default config's 256
		{8, 16, 512, 64, 16, 512, false, true}, {8, 16, 512, 64, 16, 256, false, false}, {8, 16, 512, 64, 16, 1024, false, true},
		{8, 16, 512, 64, 4, 256, true, true}, {8, 16, 512, 64, 17, 512, false, false}, {8, 16, 512, 24, 16, 512, false, false},
		{8, 16, 0, 64, 16, 70, false, true}, {0, 16, 0, 64, 1, 70, false, true}, {0, 16, 512, 64, 1, 70, false, false},
		{16, 8, 512, 64, 16, 256, true, true},
	} {
		tune.fusedAttn, tune.fusedAttnFwd, tune.fusedFwdSeq = c.fattn, c.fattnf, c.fattnft
		if got, fwd := attnFused(c.hd, c.workers), attnFusedFwd(c.hd, c.workers, c.T); got != c.want || fwd != c.wantFwd {
			t.Errorf("fattn=%d fattnf=%d fattnft=%d, hd %d, %d goroutines, T %d: attnFused %v, attnFusedFwd %v; want %v, %v",
				c.fattn, c.fattnf, c.fattnft, c.hd, c.workers, c.T, got, fwd, c.want, c.wantFwd)
		}
	}
}
