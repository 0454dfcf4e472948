package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/internal/par"
)

// naive is the textbook triple loop in float64: C = alpha·op(A)·op(B) + beta·C.
func naive(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			old := float64(beta) * float64(c[i*ldc+j])
			if beta == 0 {
				old = 0
			}
			c[i*ldc+j] = float32(float64(alpha)*s + old)
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int)

func TestSgemm(t *testing.T) {
	goGemm := func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
		b []float32, ldb int, beta float32, c []float32, ldc int) {
		if m == 0 || n == 0 {
			return
		}
		sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 3)
	}
	impls := []struct {
		name string
		f    gemmFunc
	}{{"Sgemm/" + Backend, Sgemm}, {"go", goGemm}}
	sizes := []struct{ m, n, k, pad int }{
		{1, 1, 1, 0}, {3, 5, 7, 0}, {17, 1, 33, 2}, {1, 19, 4, 1}, {31, 29, 130, 3},
		{64, 64, 64, 0}, {70, 600, 9, 5}, {5, 3, 0, 0},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, impl := range impls {
		for _, s := range sizes {
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				for _, ab := range [][2]float32{{1, 0}, {0.5, 1}, {-2, 0.25}} {
					name := fmt.Sprintf("%s/%dx%dx%d/tA=%v,tB=%v/alpha=%g,beta=%g", impl.name, s.m, s.n, s.k, tr[0], tr[1], ab[0], ab[1])
					t.Run(name, func(t *testing.T) {
						ar, ac := s.m, s.k
						if tr[0] {
							ar, ac = s.k, s.m
						}
						br, bc := s.k, s.n
						if tr[1] {
							br, bc = s.n, s.k
						}
						lda, ldb, ldc := ac+s.pad, bc+s.pad, s.n+s.pad
						a := randSlice(r, max(ar*lda, 1))
						b := randSlice(r, max(br*ldb, 1))
						c := randSlice(r, s.m*ldc)
						if ab[1] == 0 {
							for i := range c {
								c[i] = float32(math.NaN()) // beta = 0 must overwrite, not scale
							}
						}
						want := append([]float32(nil), c...)
						naive(tr[0], tr[1], s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], want, ldc)
						impl.f(tr[0], tr[1], s.m, s.n, s.k, ab[0], a, lda, b, ldb, ab[1], c, ldc)
						for i := range s.m {
							for j := range ldc {
								got, w := c[i*ldc+j], want[i*ldc+j]
								if j >= s.n { // padding must be untouched
									if !(got == w || (got != got && w != w)) {
										t.Fatalf("padding C[%d,%d] changed: %g -> %g", i, j, w, got)
									}
									continue
								}
								tol := 1e-5 * (1 + float64(s.k)) * (1 + math.Abs(float64(w)))
								if math.Abs(float64(got-w)) > tol || got != got {
									t.Fatalf("C[%d,%d] = %g, want %g (tol %g)", i, j, got, w, tol)
								}
							}
						}
					})
				}
			}
		}
	}
}

func TestSgemmPanicsOnShortSlice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a too-short A")
		}
	}()
	Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
}

func TestThreads(t *testing.T) {
	old := Threads()
	defer SetThreads(old)
	SetThreads(1)
	if Backend != "accelerate" && Threads() != 1 {
		t.Fatalf("Threads() = %d after SetThreads(1)", Threads())
	}
	if g := PeakGFLOPS(64, time.Millisecond); !(g > 0) {
		t.Fatalf("PeakGFLOPS = %g", g)
	}
}

func BenchmarkSgemm(b *testing.B) {
	const n = 1024
	r := rand.New(rand.NewPCG(1, 2))
	x, y, z := randSlice(r, n*n), randSlice(r, n*n), make([]float32, n*n)
	Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
	b.ResetTimer()
	for b.Loop() {
		Sgemm(false, false, n, n, n, 1, x, n, y, n, 0, z, n)
	}
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(float64(Threads()), "threads")
}

func BenchmarkSgemmGo(b *testing.B) {
	const n = 256
	r := rand.New(rand.NewPCG(1, 2))
	x, y, z := randSlice(r, n*n), randSlice(r, n*n), make([]float32, n*n)
	for b.Loop() {
		sgemmGo(false, false, n, n, n, 1, x, n, y, n, 0, z, n, Threads())
	}
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// TestSerial: serial mode makes the library single-threaded without changing Threads, and
// PeakGFLOPS and SetThreads end it.
func TestSerial(t *testing.T) {
	old := Threads()
	defer SetThreads(old)
	SetThreads(3)
	SetSerial(true)
	if Threads() != 3 {
		t.Fatalf("Threads() = %d in serial mode, want 3", Threads())
	}
	if Backend == "openblas" || Backend == "go" {
		if n := libThreads(); n != 1 {
			t.Fatalf("library threads %d in serial mode", n)
		}
	}
	PeakGFLOPS(16, time.Millisecond)
	if threadState.serial {
		t.Fatal("PeakGFLOPS left serial mode on")
	}
	SetSerial(true)
	SetThreads(2)
	if threadState.serial || Threads() != 2 {
		t.Fatalf("after SetThreads(2): serial %v, Threads %d", threadState.serial, Threads())
	}
}

// TestSgemmProfile: with a loop profile in force, every Sgemm call counts 2·m·n·k FLOPs towards
// the loop it runs in (here one per part), else towards the profile's Outside; calls that
// multiply nothing (k = 0) count nothing.
func TestSgemmProfile(t *testing.T) {
	a, b, c := make([]float32, 3*7), make([]float32, 7*5), make([]float32, 4*3*5)
	p := par.NewProfile()
	par.SetProfile(p)
	Sgemm(false, false, 3, 5, 7, 1, a, 7, b, 5, 0, c, 5)
	Sgemm(false, false, 3, 5, 0, 1, a, 7, b, 5, 0, c, 5)
	par.Run(2, 4, 4, par.Func(func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			Sgemm(false, true, 3, 5, 2, 1, a, 7, b, 7, 0, c[i*15:], 5)
		}
	}))
	par.SetProfile(nil)
	Sgemm(false, false, 3, 5, 7, 1, a, 7, b, 5, 0, c, 5) // off: not counted
	if o := p.Outside(); o.Calls != 1 || o.FLOPs != 2*3*5*7 || o.Time <= 0 {
		t.Fatalf("outside loops: %+v, want 1 call of %d FLOPs", o, 2*3*5*7)
	}
	s := p.Sites()
	if len(s) != 1 || s[0].BLAS.Calls != 4 || s[0].BLAS.FLOPs != 4*2*3*5*2 || !strings.HasPrefix(s[0].Name, "blas.TestSgemmProfile") {
		t.Fatalf("sites %+v, want blas.TestSgemmProfile with 4 calls of %d FLOPs", s, 2*3*5*2)
	}
}
