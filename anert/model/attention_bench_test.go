package model

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/blas"
)

// BenchmarkAttentionHead times one (sequence, head) of the default config (T 256, head dim 64,
// rows 256 floats apart; and of T 512, the original's sequence) forward and backward as the CPU
// backend's items run it: through BLAS at query/key blocks of 32 to 256 (CPU.Block, knob ablock)
// and through the fused kernels (fused: attnFused), in model FLOPs (causal: T·(T+1)/2·hd
// multiply-adds a product, 2 products forward, 4 backward), beside one thread's 1024³ sgemm: the
// attention's rate against the BLAS peak on the same core. On this project's 2-core machine
// (6 Dec 2026, oneDNN): 48–54% forward and 45–50% backward at blocks of 32–128, 40% whole. With
// the fused kernels (7 Dec 2026, AVX-512 instance; sgemm 107 GFLOP/s): T 256, forward 83 GFLOP/s
// against 59 at blocks of 64, backward 72 against 55; T 512, 89 against 55 and 77 against 60.
// On one core of the 16-core device machine's Xeon (7 Dec 2026; sgemm 120): T 256, 75 against 56
// and 70 against 50; T 512, 109 against 66 and 68 against 65.
func BenchmarkAttentionHead(b *testing.B) {
	for _, T := range []int{256, 512} {
		b.Run(fmt.Sprintf("T=%d", T), func(b *testing.B) { benchAttentionHead(b, T) })
	}
}

func benchAttentionHead(b *testing.B, T int) {
	const hd, ld = 64, 256
	r := rand.New(rand.NewPCG(3, 4))
	q, k, v, da := rnd(r, T*ld, -1, 1), rnd(r, T*ld, -1, 1), rnd(r, T*ld, -1, 1), rnd(r, T*ld, -1, 1)
	a, lse, s, dp := make([]float32, T*ld), make([]float32, T), make([]float32, T*T), make([]float32, T*T)
	dq, dk, dv := make([]float32, T*ld), make([]float32, T*ld), make([]float32, T*ld)
	scale := float32(0.125)
	prod := float64(T * (T + 1) * hd) // FLOPs of one causal product: 2 × T(T+1)/2·hd multiply-adds
	old := blas.Threads()
	blas.SetThreads(1)
	defer blas.SetThreads(old)
	b.Run("sgemm1024", func(b *testing.B) {
		const n = 1024
		x, y, z := rnd(r, n*n, -1, 1), rnd(r, n*n, -1, 1), make([]float32, n*n)
		for b.Loop() {
			blas.Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
		}
		b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	for _, width := range []int{512, 256, 0} { // the fused kernels' instances this CPU runs
		if !selectAttnKernels(width) {
			continue
		}
		ws1, ws2 := make([]float32, attnFusedScratch(hd, T)), make([]float32, attnFusedScratch(hd, T))
		b.Run(fmt.Sprintf("fwd/fused%d", width), func(b *testing.B) { // as the items run it: blocks of 64 rows
			for b.Loop() {
				for r0 := 0; r0 < T; r0 += 64 {
					attnRowsForwardFused(a, lse, q, k, v, ws1, hd, ld, scale, r0, r0+64)
				}
			}
			b.ReportMetric(2*prod*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("bwd/fused%d", width), func(b *testing.B) {
			for b.Loop() {
				attnHeadBackwardFused(dq, dk, dv, da, q, k, v, lse, ws1, ws2, T, hd, ld, scale)
			}
			b.ReportMetric(4*prod*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	selectAttnKernels(-1)
	for _, blk := range []int{32, 64, 128, 256} {
		b.Run(fmt.Sprintf("fwd/blk=%d", blk), func(b *testing.B) {
			for b.Loop() {
				attnHeadForward(a, lse, q, k, v, s, T, hd, ld, scale, blk)
			}
			b.ReportMetric(2*prod*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		attnHeadForward(a, lse, q, k, v, s, T, hd, ld, scale, blk)
		b.Run(fmt.Sprintf("bwd/blk=%d", blk), func(b *testing.B) {
			for b.Loop() {
				attnHeadBackward(dq, dk, dv, da, q, k, v, lse, s, dp, T, hd, ld, scale, blk)
			}
			b.ReportMetric(4*prod*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
