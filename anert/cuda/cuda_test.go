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

// bf16 rounding is to nearest, ties to even, on the dropped 16 bits; NaN stays NaN, overflow
// goes to ±Inf, values already bf16 are unchanged. Runs everywhere.
func TestBF16Rounding(t *testing.T) {
	for _, c := range []struct {
		in   uint32 // float32 bits
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // 1 + half an ulp: tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd goes up to even
		{0x3f808001, 0x3f81}, // just above the tie
		{0x3f807fff, 0x3f80}, // just below
		{0xbf818000, 0xbf82}, // negative tie
		{0x7f7fffff, 0x7f80}, // max float rounds to +Inf
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80}, // −Inf
		{0x00000001, 0x0000}, // smallest subnormal rounds to 0
		{0x80000000, 0x8000}, // −0
	} {
		f := math.Float32frombits(c.in)
		if got := ToBF16(f); got != c.want {
			t.Errorf("ToBF16(%#08x = %g) = %#04x, want %#04x", c.in, f, got, c.want)
		}
	}
	nan := ToBF16(float32(math.NaN()))
	if !math.IsNaN(float64(FromBF16(nan))) {
		t.Errorf("NaN became %#04x = %g", nan, FromBF16(nan))
	}
	if n := ToBF16(math.Float32frombits(0x7f800001)); !math.IsNaN(float64(FromBF16(n))) { // a NaN whose payload is all in the dropped bits
		t.Errorf("NaN 0x7f800001 became %#04x", n)
	}
	r := rand.New(rand.NewPCG(9, 9))
	for range 10000 {
		f := float32(r.NormFloat64() * 100)
		b := RoundBF16(f)
		if RoundBF16(b) != b {
			t.Fatalf("RoundBF16 is not idempotent at %g", f)
		}
		if e := math.Abs(float64(b-f)) / math.Abs(float64(f)); e > 1.0/256 {
			t.Fatalf("RoundBF16(%g) = %g: relative error %.3g > 2⁻⁸", f, b, e)
		}
	}
}

func bf16s(x []float32) []uint16 {
	h := make([]uint16, len(x))
	for i, v := range x {
		h[i] = ToBF16(v)
	}
	return h
}

// GemmTyped on bf16 operands (the trainer's bf16 mode): bf16 products are exact in fp32, so
// against a float64 reference on the rounded inputs the fp32 result is off by fp32 summation
// only, the bf16 result by its own rounding; every transpose combination, a batch of 3 with
// strides, C with beta = 1 (gradient accumulation).
func TestGemmTypedBF16(t *testing.T) {
	c := openOrSkip(t, BF16)
	r := rand.New(rand.NewPCG(4, 4))
	m, n, k, batch := 37, 48, 72, 3
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, out := range []DType{TypeF32, TypeBF16} {
				a, b, c0 := randn(r, batch*m*k), randn(r, batch*k*n), randn(r, batch*m*n)
				ar, br, cr := make([]float32, len(a)), make([]float32, len(b)), make([]float32, len(c0))
				for i := range a {
					ar[i] = RoundBF16(a[i])
				}
				for i := range b {
					br[i] = RoundBF16(b[i])
				}
				for i := range c0 {
					cr[i] = c0[i]
					if out == TypeBF16 {
						cr[i] = RoundBF16(c0[i])
					}
				}
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				got := make([]float32, len(c0))
				err := c.Do(func() error {
					pa, _ := c.AllocBF16(len(a))
					pb, _ := c.AllocBF16(len(b))
					pc, _ := c.Alloc(len(c0))
					defer c.Free(pa)
					defer c.Free(pb)
					defer c.Free(pc)
					Upload(c, pa, bf16s(a))
					Upload(c, pb, bf16s(b))
					if out == TypeBF16 {
						Upload(c, pc, bf16s(c0))
					} else {
						Upload(c, pc, c0)
					}
					err := c.GemmTyped(ta, tb, m, n, k, 0.5, Operand{pa, TypeBF16, lda, m * k}, Operand{pb, TypeBF16, ldb, k * n},
						1, Operand{pc, out, n, m * n}, Compute32F, batch)
					if err != nil {
						return err
					}
					if out == TypeBF16 {
						h := make([]uint16, len(got))
						if err := Download(c, h, pc); err != nil {
							return err
						}
						for i, v := range h {
							got[i] = FromBF16(v)
						}
						return nil
					}
					return Download(c, got, pc)
				})
				if err != nil {
					t.Fatal(err)
				}
				tol := 1e-6
				if out == TypeBF16 {
					tol = 4e-3
				}
				for i := range batch {
					want := refGemm(ta, tb, m, n, k, 0.5, ar[i*m*k:], lda, br[i*k*n:], ldb, 1, cr[i*m*n:], n)
					if e := relErr(got[i*m*n:(i+1)*m*n], want); e > tol {
						t.Errorf("bf16→%s transA=%v transB=%v problem %d: relative error %.3g > %g", out, ta, tb, i, e, tol)
					} else if i == 0 {
						t.Logf("bf16→%s transA=%v transB=%v: relative error %.3g", out, ta, tb, e)
					}
				}
			}
		}
	}
}
