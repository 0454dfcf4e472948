package cuda

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// openOrSkip opens the GPU, or skips the test naming what it needs.
func openOrSkip(t *testing.T, p Precision) *Ctx {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("needs an NVIDIA GPU with its driver (libcuda.so.1), cuBLAS and NVRTC: %v", err)
	}
	c, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Without a driver the error says so and wraps ErrNoDriver; this runs everywhere.
func TestAvailableErrorNamesTheDriver(t *testing.T) {
	err := Available()
	if err == nil {
		t.Log("a CUDA GPU is present")
		return
	}
	if !errors.Is(err, ErrNoDriver) && !strings.Contains(err.Error(), "cuBLAS") && !strings.Contains(err.Error(), "NVRTC") {
		t.Fatalf("error %q neither wraps ErrNoDriver nor names the missing library", err)
	}
	if errors.Is(err, ErrNoDriver) && !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Fatalf("error %q does not name libcuda.so.1", err)
	}
	if _, err2 := Open(FP32); err2 == nil {
		t.Fatal("Open succeeded where Available failed")
	}
}

func randn(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// refGemm is C = alpha·op(A)·op(B) + beta·C in float64, row-major.
func refGemm(ta, tb bool, m, n, k int, alpha float64, a []float32, lda int, b []float32, ldb int, beta float64, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float32
				if ta {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tb {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			out[i*n+j] = alpha*s + beta*float64(c[i*ldc+j])
		}
	}
	return out
}

func relErr(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
		if math.IsNaN(float64(got[i])) {
			return math.Inf(1)
		}
	}
	return math.Sqrt(num / den)
}

// Every transpose combination of the row-major Gemm against a float64 reference, in both
// precisions: fp32 far under 1e-5, bf16 operands under 1e-2.
func TestGemmMatchesReference(t *testing.T) {
	for _, p := range []Precision{FP32, BF16} {
		c := openOrSkip(t, p)
		r := rand.New(rand.NewPCG(1, uint64(p)))
		m, n, k := 37, 53, 71
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				a, b, cc := randn(r, m*k), randn(r, k*n), randn(r, m*n)
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				want := refGemm(ta, tb, m, n, k, 0.5, a, lda, b, ldb, 2, cc, n)
				got := make([]float32, m*n)
				err := c.Do(func() error {
					pa, _ := c.Alloc(len(a))
					pb, _ := c.Alloc(len(b))
					pc, _ := c.Alloc(len(cc))
					defer c.Free(pa)
					defer c.Free(pb)
					defer c.Free(pc)
					Upload(c, pa, a)
					Upload(c, pb, b)
					Upload(c, pc, cc)
					if err := c.Gemm(ta, tb, m, n, k, 0.5, pa, lda, pb, ldb, 2, pc, n); err != nil {
						return err
					}
					return Download(c, got, pc)
				})
				if err != nil {
					t.Fatal(err)
				}
				tol := 1e-5
				if p == BF16 {
					tol = 1e-2
				}
				if e := relErr(got, want); e > tol {
					t.Errorf("%s transA=%v transB=%v: relative error %.3g > %g", p, ta, tb, e, tol)
				} else {
					t.Logf("%s transA=%v transB=%v: relative error %.3g", p, ta, tb, e)
				}
			}
		}
	}
}

// A batched GEMM whose problems are the heads of a [T, H·HD] matrix (strides HD): the layout the
// attention uses.
func TestGemmBatchedMatchesReference(t *testing.T) {
	c := openOrSkip(t, FP32)
	r := rand.New(rand.NewPCG(2, 2))
	batch, m, n, k := 5, 16, 24, 8
	a, b := randn(r, batch*m*k), randn(r, batch*n*k)
	got := make([]float32, batch*m*n)
	err := c.Do(func() error {
		pa, _ := c.Alloc(len(a))
		pb, _ := c.Alloc(len(b))
		pc, _ := c.Alloc(len(got))
		Upload(c, pa, a)
		Upload(c, pb, b)
		if err := c.GemmBatched(false, true, m, n, k, 1, pa, k, m*k, pb, k, n*k, 0, pc, n, m*n, batch); err != nil {
			return err
		}
		return Download(c, got, pc)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		want := refGemm(false, true, m, n, k, 1, a[i*m*k:], k, b[i*n*k:], k, 0, make([]float32, m*n), n)
		if e := relErr(got[i*m*n:(i+1)*m*n], want); e > 1e-5 {
			t.Errorf("problem %d: relative error %.3g", i, e)
		}
	}
}

// NVRTC compiles a kernel that is launched with every argument kind; a broken source returns
// NVRTC's log.
func TestCompileLaunch(t *testing.T) {
	c := openOrSkip(t, FP32)
	src := `extern "C" __global__ void axpb(float* y, const float* x, float a, double b, int n) {
		int i = blockIdx.x * blockDim.x + threadIdx.x;
		if (i < n) y[i] = a * x[i] + (float)b;
	}`
	n := 1000
	x := randn(rand.New(rand.NewPCG(3, 3)), n)
	y := make([]float32, n)
	for i := range y {
		y[i] = float32(math.NaN()) // poison: every element must be written
	}
	err := c.Do(func() error {
		m, err := c.Compile("axpb.cu", src)
		if err != nil {
			return err
		}
		f, err := m.Func("axpb")
		if err != nil {
			return err
		}
		px, _ := c.Alloc(n)
		py, _ := c.Alloc(n)
		Upload(c, px, x)
		Upload(c, py, y)
		if err := c.Launch(f, Dim3{X: (n + 255) / 256}, Dim3{X: 256}, 0, py, px, float32(3), 0.5, n); err != nil {
			return err
		}
		if err := c.Sync(); err != nil {
			return err
		}
		return Download(c, y, py)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range y {
		// NVRTC contracts a·x + b into one FMA (rounded once), Go rounds twice: allow an ulp or two.
		if w := 3*float64(x[i]) + 0.5; math.Abs(float64(y[i])-w) > 4e-7*(math.Abs(w)+1) || math.IsNaN(float64(y[i])) {
			t.Fatalf("y[%d] = %v, want %v", i, y[i], w)
		}
	}
	err = c.Do(func() error {
		_, err := c.Compile("broken.cu", `extern "C" __global__ void k() { undefined_thing(); }`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "undefined_thing") {
		t.Fatalf("compile error %v does not carry NVRTC's log", err)
	}
	t.Log(c.Name(), c.Versions())
}
