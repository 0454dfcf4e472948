// Command cudagemm measures cuBLAS GEMMs at the model's shapes in the operand types the CUDA
// backend could use, to choose between them (issue 13): fp32 tensors computed in fp32, fp32
// tensors rounded to bf16 on load (CUBLAS_COMPUTE_32F_FAST_16BF: what `--backend cuda` does),
// bf16 operands with an fp32 result, and bf16 throughout. Random data; the median of 7 timed
// calls after 2 untimed; prints TFLOP/s per shape and variant.
//
//	cudagemm [--tokens 16384 --dim 768 --ffn 2048 --vocab 9216]
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"

	"github.com/anelab/anelab/anert/cuda"
)

type shape struct {
	name    string
	ta, tb  bool
	m, n, k int
}

type variant struct {
	name    string
	a, b, c cuda.DType
	comp    cuda.Compute
}

func main() {
	tokens := flag.Int("tokens", 16384, "rows: sequences × seq")
	dim := flag.Int("dim", 768, "model dim")
	ffn := flag.Int("ffn", 2048, "FFN hidden size")
	vocab := flag.Int("vocab", 9216, "vocabulary")
	flag.Parse()
	if err := run(*tokens, *dim, *ffn, *vocab); err != nil {
		fmt.Fprintln(os.Stderr, "cudagemm:", err)
		os.Exit(1)
	}
}

func run(N, D, F, V int) error {
	c, err := cuda.Open(cuda.BF16)
	if err != nil {
		return err
	}
	defer c.Close()
	// Driver calls must come from the thread the context is current on: Do runs f there.
	return c.Do(func() error { return measure(c, N, D, F, V) })
}

func measure(c *cuda.Ctx, N, D, F, V int) error {
	var err error
	shapes := []shape{
		{"qkv fwd  X·Wᵀ", false, true, N, 3 * D, D},
		{"w13 fwd  X·Wᵀ", false, true, N, 2 * F, D},
		{"w2 fwd   H·Wᵀ", false, true, N, D, F},
		{"cls fwd  X·Eᵀ", false, true, N, V, D},
		{"w13 dX   dY·W", false, false, N, D, 2 * F},
		{"w13 dW   dYᵀ·X", true, false, 2 * F, D, N},
		{"cls dW   dZᵀ·X", true, false, V, D, N},
		{"square 8192", false, true, 8192, 8192, 8192},
	}
	variants := []variant{
		{"fp32", cuda.TypeF32, cuda.TypeF32, cuda.TypeF32, cuda.Compute32FPedantic},
		{"fp32→bf16 on load", cuda.TypeF32, cuda.TypeF32, cuda.TypeF32, cuda.Compute32FFast16BF},
		{"bf16 in, fp32 out", cuda.TypeBF16, cuda.TypeBF16, cuda.TypeF32, cuda.Compute32F},
		{"bf16 in, bf16 out", cuda.TypeBF16, cuda.TypeBF16, cuda.TypeBF16, cuda.Compute32F},
	}
	maxEl := 0
	for _, s := range shapes {
		maxEl = max(maxEl, s.m*s.k, s.k*s.n, s.m*s.n)
	}
	// Three fp32-sized buffers of random values; a bf16 view of one holds twice as many values,
	// so the same buffers serve every variant.
	var buf [3]cuda.Ptr
	r := rand.New(rand.NewPCG(1, 2))
	// Each 32-bit word is two bf16 values of N(0, 0.25) (high half, low half), so that read as one
	// float32 it is also an ordinary value (the high half's, with noise below): both views are
	// real data, never denormals, infinities or zeros.
	host := make([]uint32, maxEl)
	bf := func() uint32 { return math.Float32bits(float32(r.NormFloat64()*0.5)) >> 16 }
	for i := range buf {
		if buf[i], err = c.Alloc(maxEl); err != nil {
			return err
		}
		for j := range host {
			host[j] = bf()<<16 | bf()
		}
		if err := cuda.Upload(c, buf[i], host); err != nil {
			return err
		}
	}
	tm, err := c.NewTimer()
	if err != nil {
		return err
	}
	defer tm.Close()
	fmt.Printf("%s; TFLOP/s, median of 7\n%-16s %7s %7s %7s", c.Name(), "shape", "m", "n", "k")
	for _, v := range variants {
		fmt.Printf(" %20s", v.name)
	}
	fmt.Println()
	for _, s := range shapes {
		fmt.Printf("%-16s %7d %7d %7d", s.name, s.m, s.n, s.k)
		for _, v := range variants {
			lda, ldb := s.k, s.n
			if s.ta {
				lda = s.m
			}
			if s.tb {
				ldb = s.k
			}
			var ms []float64
			for i := range 9 {
				tm.Start()
				if err := c.GemmTyped(s.ta, s.tb, s.m, s.n, s.k, 1, buf[0], v.a, lda, buf[1], v.b, ldb, 0, buf[2], v.c, s.n, v.comp); err != nil {
					return err
				}
				d, err := tm.Stop()
				if err != nil {
					return err
				}
				if i >= 2 {
					ms = append(ms, float64(d))
				}
			}
			slices.Sort(ms)
			fmt.Printf(" %20.1f", 2*float64(s.m)*float64(s.n)*float64(s.k)/(ms[len(ms)/2]*1e-3)/1e12)
		}
		fmt.Println()
	}
	return nil
}
