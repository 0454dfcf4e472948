//go:build cgo && amd64

package blas

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// TestSmallKernelInUse checks that a CPU with AVX-512 runs SgemmSmall on this package's kernel,
// not on the fallback (TestSgemm checks its results).
func TestSmallKernelInUse(t *testing.T) {
	want := ""
	if cpu.X86.HasAVX512F && cpu.X86.HasFMA {
		want = "avx512"
	}
	if got := SmallKernel(); got != want {
		t.Fatalf("SmallKernel() = %q on a CPU with AVX-512F %v, FMA %v: want %q", got, cpu.X86.HasAVX512F, cpu.X86.HasFMA, want)
	}
}

// BenchmarkAttentionShapes times the attention's per-block products (head dimension 64, 64 rows,
// 256 keys) on one goroutine in Sgemm (serial) and SgemmSmall: GFLOP/s as a metric.
func BenchmarkAttentionShapes(b *testing.B) {
	SetSerial(true)
	defer SetSerial(false)
	const hd, rows, keys, ld = 64, 64, 256, 256
	q, k, s, o := make([]float32, keys*ld), make([]float32, keys*ld), make([]float32, rows*keys), make([]float32, keys*ld)
	for i := range q {
		q[i], k[i] = float32(i%7)*0.1, float32(i%5)*0.2
	}
	for i := range s {
		s[i] = float32(i%3) * 0.3
	}
	shapes := []struct {
		name    string
		tA, tB  bool
		m, n, k int
		a       []float32
		lda     int
		b       []float32
		ldb     int
		c       []float32
		ldc     int
	}{
		{"S=QKt", false, true, rows, keys, hd, q, ld, k, ld, s, keys},
		{"A=PV", false, false, rows, hd, keys, s, keys, k, ld, o, ld},
		{"dV=PtdA", true, false, rows, hd, keys, s, rows, q, ld, o, ld},
	}
	for _, sh := range shapes {
		for _, impl := range []struct {
			name string
			f    gemmFunc
		}{{"Sgemm", Sgemm}, {"SgemmSmall", SgemmSmall}} {
			b.Run(sh.name+"/"+impl.name, func(b *testing.B) {
				if sh.tA { // A is k×m: P's first rows as its k = 256 rows of 64
					sh.a, sh.lda = s, rows
				}
				for b.Loop() {
					impl.f(sh.tA, sh.tB, sh.m, sh.n, sh.k, 1, sh.a, sh.lda, sh.b, sh.ldb, 0, sh.c, sh.ldc)
				}
				b.ReportMetric(2*float64(sh.m*sh.n*sh.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
