package model

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	p := newHeadPair(T, hd, ld, 3)
	q, k, v, da, a, lse, s, dp, dq, dk, dv := p.q, p.k, p.v, p.da, p.a, p.lse, p.s, p.dp, p.dq, p.dk, p.dv
	scale := float32(headScale)
	r := rand.New(rand.NewPCG(3, 4))
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

// BenchmarkAttentionHeads runs the default config's (sequence, head) pair (T 256, head dim 64,
// rows 256 floats apart) on one goroutine (w=1) and on every processor at once (w=GOMAXPROCS,
// each goroutine its own pair), as the CPU backend's attention loops run on many cores (one whole
// pair a goroutine, 16 on 16 cores): through BLAS at blocks of 64 and through the fused kernels
// (on CPUs that have them), forward and backward; hot (a goroutine's pair over and over, its
// inputs in its caches) and cold (each goroutine sweeps 16 MB of its own before each op, untimed,
// as the step's other work pushes a pair's inputs out between the projections and the attention).
// Beside them, sgemm1024: every goroutine its own 1024³ product, the burst the MFU divides by.
// Metrics: µs/head, the mean time of one op on one goroutine, and GFLOP/s a goroutine (model
// FLOPs, as BenchmarkAttentionHead; the built-in ns/op counts the sweeps too). w=1 runs at the
// full GOMAXPROCS too: at -test.cpu 1 these goroutines ran both paths up to 2× slower on this
// project's machine (anebench --threads 1, which sets GOMAXPROCS 1, ran its step no slower than
// with 2 processors: not the step's concern).
//
// On the 16-core machine (bash anert/bench/cpu16.sh attn) it separates what all cores at once do
// to the fused kernels' lead over BLAS from what the step does: in the 16-core step a fused
// forward item was 1.23× and a backward pair 1.05× faster than BLAS's (RESULTS.md, 7 Dec 2026,
// 07:40 UTC). There (7 Dec 2026, 21:44–21:46 UTC, three counts) the fused backward's lead,
// 1.30–1.34× at w=1, was 1.02–1.34× hot and 1.07–1.20× cold at w=16, the forward's 1.35–1.69× and
// 1.39–1.43×: all cores at once, not the step, take the backward's lead (RESULTS.md, 20:06–21:46
// UTC). On this project's 2-core AMD EPYC (oneDNN's test binary of cpu16.sh build, 7 Dec 2026,
// 20:50 UTC, two counts): w=1, forward 64–78 µs fused against 88–128, backward 139–146 against
// 220–223; w=2, 78–85 against 132–140 and 185–192 against 269–277; cold within the counts' spread
// of hot on both paths.
func BenchmarkAttentionHeads(b *testing.B) {
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("w=%d", w), func(b *testing.B) { benchAttentionHeads(b, w) })
		if w == 1 && runtime.GOMAXPROCS(0) == 1 {
			break
		}
	}
}

func benchAttentionHeads(b *testing.B, w int) {
	const T, hd, ld = 256, 64, 256
	old := blas.Threads()
	blas.SetThreads(1)
	defer blas.SetThreads(old)
	b.Run("sgemm1024", func(b *testing.B) {
		const n = 1024
		ops := make([][3][]float32, w)
		for g := range ops {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			ops[g] = [3][]float32{rnd(r, n*n, -1, 1), rnd(r, n*n, -1, 1), make([]float32, n*n)}
		}
		heads(b, w, 2*n*n*n, nil, func(g int) {
			blas.Sgemm(false, false, n, n, n, 1, ops[g][0], n, ops[g][1], n, 0, ops[g][2], n)
		})
	})
	prod := float64(T * (T + 1) * hd) // model FLOPs of one causal product
	for _, cold := range []bool{false, true} {
		for _, fused := range []bool{false, true} {
			if fused && attnPanel == 0 {
				continue
			}
			ps := make([]*headPair, w)
			for g := range ps {
				ps[g] = newHeadPair(T, hd, ld, uint64(g))
			}
			var sweep func(g int)
			if cold {
				bufs := make([][]float32, w)
				sweep = func(g int) {
					if bufs[g] == nil {
						bufs[g] = make([]float32, 4<<20) // 16 MB: 8 of a core's L2, a share of L3
					}
					for i := 0; i < len(bufs[g]); i += 16 {
						bufs[g][i]++
					}
				}
			}
			name := map[bool]string{false: "blas64", true: "fused"}[fused] + map[bool]string{false: "/hot", true: "/cold"}[cold]
			b.Run("fwd/"+name, func(b *testing.B) {
				heads(b, w, 2*prod, sweep, func(g int) { ps[g].forward(fused) })
			})
			b.Run("bwd/"+name, func(b *testing.B) {
				heads(b, w, 4*prod, sweep, func(g int) { ps[g].backward(fused) })
			})
		}
	}
}

// heads runs op(g) b.N times on each of w goroutines at once (after one untimed op each), each
// op after sweep(g) (untimed, when set), and reports the ops' mean time and rate a goroutine.
func heads(b *testing.B, w int, flops float64, sweep func(g int), op func(g int)) {
	var busy atomic.Int64 // ns inside op, summed over the goroutines
	var start sync.WaitGroup
	start.Add(1)
	var done sync.WaitGroup
	for g := range w {
		done.Go(func() {
			op(g) // untimed: oneDNN generates its kernels for a shape at the first call
			start.Wait()
			for range b.N {
				if sweep != nil {
					sweep(g)
				}
				t := time.Now()
				op(g)
				busy.Add(int64(time.Since(t)))
			}
		})
	}
	b.ResetTimer()
	start.Done()
	done.Wait()
	mean := float64(busy.Load()) / float64(b.N*w) // ns an op
	b.ReportMetric(mean/1e3, "µs/head")
	b.ReportMetric(flops/mean, "GFLOP/s")
}

// headScale is the attention benchmarks' score scale, 1/√64.
const headScale = 0.125

// headPair is one (sequence, head) pair of the attention benchmarks (one a goroutine in
// BenchmarkAttentionHeads): its inputs, its outputs and its scratch for both paths, the forward's
// LSE set for the backward.
type headPair struct {
	T, hd, ld                  int
	q, k, v, da, a, lse, s, dp []float32
	dq, dk, dv, ws1, ws2       []float32
}

func newHeadPair(T, hd, ld int, seed uint64) *headPair {
	r := rand.New(rand.NewPCG(seed, 2))
	p := &headPair{T: T, hd: hd, ld: ld,
		q: rnd(r, T*ld, -1, 1), k: rnd(r, T*ld, -1, 1), v: rnd(r, T*ld, -1, 1), da: rnd(r, T*ld, -1, 1),
		a: make([]float32, T*ld), lse: make([]float32, T), s: make([]float32, T*T), dp: make([]float32, T*T),
		dq: make([]float32, T*ld), dk: make([]float32, T*ld), dv: make([]float32, T*ld)}
	if attnPanel > 0 {
		p.ws1, p.ws2 = make([]float32, attnFusedScratch(hd, T)), make([]float32, attnFusedScratch(hd, T))
	}
	p.forward(false)
	return p
}

// forward is the pair's forward as the CPU backend's items run it: blocks of 64 query rows.
func (p *headPair) forward(fused bool) {
	for r0 := 0; r0 < p.T; r0 += 64 {
		if fused {
			attnRowsForwardFused(p.a, p.lse, p.q, p.k, p.v, p.ws1, p.hd, p.ld, headScale, r0, min(r0+64, p.T))
		} else {
			attnRowsForward(p.a, p.lse, p.q, p.k, p.v, p.s, p.T, p.hd, p.ld, headScale, r0, min(r0+64, p.T))
		}
	}
}

// backward is the pair's backward as a whole pair (attnBwdJob's whole).
func (p *headPair) backward(fused bool) {
	if fused {
		attnHeadBackwardFused(p.dq, p.dk, p.dv, p.da, p.q, p.k, p.v, p.lse, p.ws1, p.ws2, p.T, p.hd, p.ld, headScale)
		return
	}
	attnHeadBackward(p.dq, p.dk, p.dv, p.da, p.q, p.k, p.v, p.lse, p.s, p.dp, p.T, p.hd, p.ld, headScale, 64)
}
