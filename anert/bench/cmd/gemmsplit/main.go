// Command gemmsplit measures how the model's GEMM shapes run on w cores: one BLAS-threaded call,
// the rows of C split over w goroutines with single-threaded BLAS (what the model did), and C
// split into a 2-D grid of blocks. It prints GFLOP/s per shape and strategy.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/internal/par"
)

type shape struct {
	name    string
	tA, tB  bool
	m, n, k int
}

func main() {
	w := flag.Int("threads", runtime.NumCPU(), "threads")
	reps := flag.Int("reps", 20, "repetitions")
	flag.Parse()
	runtime.GOMAXPROCS(*w)
	fmt.Println("BLAS:", blas.Describe())
	var shapes []shape
	for _, c := range []struct {
		name       string
		N, D, F, V int
	}{{"default", 1024, 256, 768, 4096}, {"default288", 1024, 288, 768, 4096}, {"original", 512, 768, 2048, 9216}} {
		p := c.name + "/"
		shapes = append(shapes,
			shape{p + "qkv fwd", false, true, c.N, c.D, c.D},
			shape{p + "w1 fwd", false, true, c.N, c.F, c.D},
			shape{p + "w2 fwd", false, true, c.N, c.D, c.F},
			shape{p + "w1 dx", false, false, c.N, c.D, c.F},
			shape{p + "w2 dx", false, false, c.N, c.F, c.D},
			shape{p + "wq dW", true, false, c.D, c.D, c.N},
			shape{p + "w1 dW", true, false, c.F, c.D, c.N},
			shape{p + "w2 dW", true, false, c.D, c.F, c.N},
			shape{p + "cls fwd", false, true, c.N, c.V, c.D},
			shape{p + "cls dx", false, false, c.N, c.D, c.V},
			shape{p + "cls dW", true, false, c.V, c.D, c.N},
		)
	}
	fmt.Printf("%-22s %6s %6s %6s | %9s %9s %9s %9s %9s\n", "shape", "m", "n", "k", "threaded", "rows", "rows2x", "grid", "grid2x")
	for _, s := range shapes {
		a := make([]float32, s.m*s.k)
		b := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		for i := range a {
			a[i] = float32(i%7) * 0.1
		}
		for i := range b {
			b[i] = float32(i%5) * 0.1
		}
		lda, ldb := s.k, s.n
		if s.tA {
			lda = s.m
		}
		if s.tB {
			ldb = s.k
		}
		gemm := func(r0, r1, c0, c1 int) {
			aoff := r0 * lda
			if s.tA {
				aoff = r0
			}
			boff := c0
			if s.tB {
				boff = c0 * ldb
			}
			blas.Sgemm(s.tA, s.tB, r1-r0, c1-c0, s.k, 1, a[aoff:], lda, b[boff:], ldb, 0, c[r0*s.n+c0:], s.n)
		}
		time1 := func(f func()) float64 {
			f()
			best := math.Inf(1)
			for range *reps {
				t := time.Now()
				f()
				best = min(best, time.Since(t).Seconds())
			}
			return 2 * float64(s.m) * float64(s.n) * float64(s.k) / best / 1e9
		}
		blas.SetThreads(*w)
		thr := time1(func() { gemm(0, s.m, 0, s.n) })
		blas.SetSerial(true)
		rows := func(parts int) float64 {
			return time1(func() {
				par.Run(*w, s.m, parts, par.Func(func(_, lo, hi int) { gemm(lo, hi, 0, s.n) }))
			})
		}
		grid := func(parts int) float64 {
			pm, pn := gridOf(s.m, s.n, parts)
			return time1(func() {
				par.Run(*w, pm*pn, pm*pn, par.Func(func(_, lo, hi int) {
					for i := lo; i < hi; i++ {
						bi, bj := i/pn, i%pn
						r0, r1 := split(s.m, pm, bi), split(s.m, pm, bi+1)
						c0, c1 := split(s.n, pn, bj), split(s.n, pn, bj+1)
						gemm(r0, r1, c0, c1)
					}
				}))
			})
		}
		fmt.Printf("%-22s %6d %6d %6d | %9.0f %9.0f %9.0f %9.0f %9.0f\n", s.name, s.m, s.n, s.k, thr, rows(*w), rows(2**w), grid(*w), grid(2**w))
	}
	os.Stdout.Sync()
}

// split is the i-th of p boundaries of [0, n) rounded to multiples of 16.
func split(n, p, i int) int {
	if i >= p {
		return n
	}
	return min(n, (i*n/p+8)/16*16)
}

// gridOf picks pm × pn = parts (pm, pn dividing parts) minimising the packed data pn·m + pm·n.
func gridOf(m, n, parts int) (int, int) {
	best, bm := math.Inf(1), 1
	for pm := 1; pm <= parts; pm++ {
		if parts%pm != 0 {
			continue
		}
		pn := parts / pm
		if c := float64(pn*m + pm*n); c < best {
			best, bm = c, pm
		}
	}
	return bm, parts / bm
}
