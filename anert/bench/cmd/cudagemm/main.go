// Command cudagemm measures the cuda backend's GEMM shapes on the GPU in each way the backend can
// run them: fp32 (pedantic), fp32 tensors rounded to bf16 on load (COMPUTE_32F_FAST_16BF, the
// earlier bf16 mode), and bf16 operands with fp32 accumulation into an fp32 or a bf16 result
// (bf16 mode). It prints TFLOP/s per shape and variant, and the GEMM time of one training step
// (each shape times its count per step) per variant.
//
//	cudagemm [--configs default,original] [--batch default=64,original=32] [--reps 10]
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/anelab/anelab/anert/bench"
	"github.com/anelab/anelab/anert/cuda"
)

// shape is one GEMM of a training step: row-major C[m, n] = op(A)·op(B) (+ C when acc), batch
// problems, count times per step.
type shape struct {
	name       string
	tA, tB     bool
	m, n, k    int
	batch, cnt int
	acc        bool // weight gradient: beta = 1
}

// variant is one way of running a GEMM.
type variant struct {
	name    string
	prec    cuda.Precision
	in, out cuda.DType
	compute cuda.Compute
}

var variants = []variant{
	{"fp32", cuda.FP32, cuda.TypeF32, cuda.TypeF32, cuda.Compute32FPedantic},
	{"fast16bf", cuda.BF16Fast, cuda.TypeF32, cuda.TypeF32, cuda.Compute32FFast16BF},
	{"bf16→f32", cuda.BF16, cuda.TypeBF16, cuda.TypeF32, cuda.Compute32F},
	{"bf16→bf16", cuda.BF16, cuda.TypeBF16, cuda.TypeBF16, cuda.Compute32F},
}

func shapes(N, D, F, C, T, HD, BH, L int) []shape {
	return []shape{
		{"qkv", false, true, N, 3 * D, D, 1, L, false},
		{"wo", false, true, N, D, D, 1, L, false},
		{"w1,w3", false, true, N, F, D, 1, 2 * L, false},
		{"w2", false, true, N, D, F, 1, L, false},
		{"logits", false, true, N, C, D, 1, 1, false},
		{"dgate", false, false, N, F, D, 1, L, false},
		{"dx2n", false, false, N, D, F, 1, 2 * L, false},
		{"da", false, false, N, D, D, 1, L, false},
		{"dxn", false, false, N, D, 3 * D, 1, L, false},
		{"dxf", false, false, N, D, C, 1, 1, false},
		{"gW2", true, false, D, F, N, 1, L, true},
		{"gW1,gW3", true, false, F, D, N, 1, 2 * L, true},
		{"gWo", true, false, D, D, N, 1, L, true},
		{"gQKV", true, false, 3 * D, D, N, 1, L, true},
		{"gE", true, false, C, D, N, 1, 1, true},
		{"attn S=QKᵀ", false, true, T, T, HD, BH, L, false},
		{"attn O=PV", false, false, T, HD, T, BH, L, false},
		{"attn dP=dOVᵀ", false, true, T, T, HD, BH, L, false},
		{"attn dV=PᵀdO", true, false, T, HD, T, BH, L, false},
		{"attn dQ=dSK", false, false, T, HD, T, BH, L, false},
		{"attn dK=dSᵀQ", true, false, T, HD, T, BH, L, false},
	}
}

func main() {
	configs := flag.String("configs", "default,original", "comma-separated configs (anebench's)")
	batches := flag.String("batch", "", "sequences per config, e.g. original=32 (default: anebench's GPU batch)")
	reps := flag.Int("reps", 10, "timed repetitions per shape and variant (the median is reported)")
	flag.Parse()
	if err := run(strings.Split(*configs, ","), *batches, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "cudagemm:", err)
		os.Exit(1)
	}
}

func run(configs []string, batches string, reps int) error {
	batch := map[string]int{}
	for k, v := range bench.GPUBatch {
		batch[k] = v
	}
	for _, kv := range strings.Split(batches, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n <= 0 {
			return fmt.Errorf("--batch %q: want config=sequences", kv)
		}
		batch[k] = n
	}
	c, err := cuda.Open(cuda.FP32)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("%s (%s)\n", c.Name(), c.Versions())
	return c.Do(func() error {
		for _, name := range configs {
			spec, err := bench.SpecByName(name)
			if err != nil {
				return err
			}
			m := spec.Config.Model
			B := batch[name]
			if B == 0 {
				B = 32
			}
			N, HD := B*m.Seq, m.Dim/m.Heads
			fmt.Printf("\n%s: dim %d, %d layers, %d heads, FFN %d, seq %d, vocab %d, batch %d (N = %d rows)\n",
				name, m.Dim, m.Layers, m.Heads, m.FFN, m.Seq, m.Vocab, B, N)
			if err := measure(c, shapes(N, m.Dim, m.FFN, m.Vocab, m.Seq, HD, B*m.Heads, m.Layers), reps); err != nil {
				return err
			}
		}
		return nil
	})
}

func measure(c *cuda.Ctx, ss []shape, reps int) error {
	// One set of buffers, as large as the largest operand, filled with random values in each type.
	maxN := 0
	for _, s := range ss {
		maxN = max(maxN, s.batch*s.m*s.k, s.batch*s.k*s.n, s.batch*s.m*s.n)
	}
	r := rand.New(rand.NewPCG(1, 2))
	host := make([]float32, maxN)
	for i := range host {
		host[i] = float32(r.NormFloat64())
	}
	hb := make([]uint16, maxN)
	for i, v := range host {
		hb[i] = cuda.ToBF16(v)
	}
	var f32, b16 [3]cuda.Ptr
	for i := range 3 {
		var err error
		if f32[i], err = c.Alloc(maxN); err != nil {
			return err
		}
		defer c.Free(f32[i])
		if b16[i], err = c.AllocBF16(maxN); err != nil {
			return err
		}
		defer c.Free(b16[i])
		if err := cuda.Upload(c, f32[i], host); err != nil {
			return err
		}
		if err := cuda.Upload(c, b16[i], hb); err != nil {
			return err
		}
	}
	tm, err := c.NewTimer()
	if err != nil {
		return err
	}
	defer tm.Close()
	fmt.Printf("\n| GEMM | m × n × k (× batch) | per step |")
	for _, v := range variants {
		fmt.Printf(" %s TFLOP/s |", v.name)
	}
	fmt.Print("\n|---|---|---|" + strings.Repeat("---|", len(variants)) + "\n")
	total := make([]float64, len(variants)) // ms per step
	attn := make([]float64, len(variants))
	for _, s := range ss {
		fmt.Printf("| %s | %d × %d × %d", s.name, s.m, s.n, s.k)
		if s.batch > 1 {
			fmt.Printf(" × %d", s.batch)
		}
		fmt.Printf(" | %d |", s.cnt)
		lda, ldb := s.k, s.n
		if s.tA {
			lda = s.m
		}
		if s.tB {
			ldb = s.k
		}
		for vi, v := range variants {
			c.SetPrecision(v.prec)
			buf := func(i int, t cuda.DType) cuda.Ptr {
				if t == cuda.TypeBF16 {
					return b16[i]
				}
				return f32[i]
			}
			a := cuda.Operand{P: buf(0, v.in), Type: v.in, LD: lda, Stride: s.m * s.k}
			b := cuda.Operand{P: buf(1, v.in), Type: v.in, LD: ldb, Stride: s.k * s.n}
			cc := cuda.Operand{P: buf(2, v.out), Type: v.out, LD: s.n, Stride: s.m * s.n}
			beta := float32(0)
			if s.acc {
				beta = 1
			}
			med, err := tm.Median(2, reps, func() error {
				return c.GemmTyped(s.tA, s.tB, s.m, s.n, s.k, 1, a, b, beta, cc, v.compute, s.batch)
			})
			if err != nil {
				return err
			}
			flop := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(s.batch)
			fmt.Printf(" %.0f |", flop/(med*1e-3)/1e12)
			total[vi] += med * float64(s.cnt)
			if strings.HasPrefix(s.name, "attn") {
				attn[vi] += med * float64(s.cnt)
			}
		}
		fmt.Println()
	}
	fmt.Printf("| **GEMM ms per step** (attention's batched GEMMs in it) | | |")
	for vi := range variants {
		fmt.Printf(" %.2f (%.2f) |", total[vi], attn[vi])
	}
	fmt.Println()
	return nil
}
