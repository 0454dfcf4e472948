package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestSgemmPacked checks PackB + SgemmPacked against the float64 triple loop: both transposes of
// A and B, strided operands, β = 0 and 1, a product of fewer rows than the pack was made for (a
// grid's last row block), one packed B shared by several row blocks of C.
func TestSgemmPacked(t *testing.T) {
	if !CanPack() {
		t.Skipf("this build (%s) does not pack", Backend)
	}
	SetSerial(true)
	defer SetThreads(Threads())
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		transA, transB bool
		m, n, k        int
		pad            int // extra columns in every stride
		beta           float32
		rows           []int // the row blocks sharing one pack (m rows each at most)
	}{
		{false, true, 64, 64, 256, 0, 0, []int{64, 64, 48}},  // y = x·Wᵀ
		{false, false, 64, 96, 768, 5, 0, []int{64, 17}},     // dx = dy·W
		{true, false, 48, 64, 1024, 0, 1, []int{48, 48}},     // dW += dyᵀ·x
		{true, true, 32, 40, 70, 3, 1, []int{32, 1, 31}},     // odd sizes
		{false, true, 16, 8, 8, 0, 0, []int{16, 3}},          // the smallest pack
		{false, true, 128, 192, 2048, 16, 0, []int{128, 96}}, // a stride of 2064
	} {
		t.Run(fmt.Sprintf("%v%v_%dx%dx%d", tc.transA, tc.transB, tc.m, tc.n, tc.k), func(t *testing.T) {
			ldb := tc.n + tc.pad
			if tc.transB {
				ldb = tc.k + tc.pad
			}
			b := randSlice(r, max(tc.k, tc.n)*ldb)
			p := make([]float32, PackedSize(tc.transB, tc.m, tc.n, tc.k, ldb))
			PackB(tc.transB, tc.m, tc.n, tc.k, b, ldb, p)
			for i, rows := range tc.rows {
				lda, ldc := tc.k+tc.pad, tc.n+tc.pad
				if tc.transA {
					lda = rows + tc.pad
				}
				a := randSlice(r, max(rows, tc.k)*lda)
				c := randSlice(r, rows*ldc)
				want := append([]float32(nil), c...)
				naive(tc.transA, tc.transB, rows, tc.n, tc.k, 1, a, lda, b, ldb, tc.beta, want, ldc)
				SgemmPacked(tc.transA, rows, tc.n, tc.k, a, lda, p, tc.beta, c, ldc)
				for x := range c {
					if x%ldc >= tc.n {
						continue // between rows: C's stride padding, untouched by both
					}
					if d := math.Abs(float64(c[x] - want[x])); d > 1e-4*math.Sqrt(float64(tc.k))*4 {
						t.Fatalf("row block %d (%d rows): C[%d,%d] = %g, want %g", i, rows, x/ldc, x%ldc, c[x], want[x])
					}
				}
			}
		})
	}
}

// TestPackedErrors: a short operand or pack buffer is a clear panic naming it, not a crash.
func TestPackedErrors(t *testing.T) {
	if !CanPack() {
		for _, f := range []func(){
			func() { PackedSize(false, 4, 4, 4, 4) },
		} {
			if msg := panicMessage(f); msg == "" {
				t.Fatal("PackedSize did not panic on a build that does not pack")
			}
		}
		return
	}
	p := make([]float32, PackedSize(true, 16, 8, 8, 8))
	for _, tc := range []struct {
		name string
		f    func()
		want string
	}{
		{"too few rows", func() { PackedSize(true, 15, 8, 8, 8) }, "at least 16 rows"},
		{"short B", func() { PackB(true, 16, 8, 8, make([]float32, 63), 8, p) }, "B has 63 elements"},
		{"short dst", func() { PackB(true, 16, 8, 8, make([]float32, 64), 8, p[:10]) }, "dst has 10 floats"},
		{"short A", func() { SgemmPacked(false, 8, 8, 8, make([]float32, 10), 8, p, 0, make([]float32, 64), 8) }, "A has 10 elements"},
		{"short C", func() { SgemmPacked(false, 8, 8, 8, make([]float32, 64), 8, p, 0, make([]float32, 60), 8) }, "C has 60 elements"},
	} {
		if msg := panicMessage(tc.f); !contains(msg, tc.want) {
			t.Errorf("%s: panic %q, want one naming %q", tc.name, msg, tc.want)
		}
	}
}

func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }
