package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestKernelsMatchGo checks the build's element-wise kernels (C on cgo builds) against the pure-Go
// reference versions on random data, sizes covering vector tails. The C compiler may fuse a
// multiply-add, so values agree to a few ulp rather than bit for bit. NaN must propagate.
func TestKernelsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 1))
	vec := func(n int, lo, hi float64) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(lo + (hi-lo)*r.Float64())
		}
		return s
	}
	cp := func(s []float32) []float32 { return append([]float32(nil), s...) }
	near := func(name string, got, want []float32, tol float64) {
		t.Helper()
		for i := range want {
			g, w := float64(got[i]), float64(want[i])
			if math.Abs(g-w) > tol*(1+math.Abs(w)) || math.IsNaN(g) != math.IsNaN(w) {
				t.Fatalf("%s[%d] = %g, Go reference %g", name, i, g, w)
			}
		}
	}
	for _, n := range []int{1, 5, 17, 64, 131} {
		// Causal softmax rows: 7 rows starting at query t0, ld ≥ ncols.
		const rows = 7
		t0 := max(0, n-rows)
		ncols := t0 + rows
		ld := ncols + 3
		s := vec(rows*ld, -8, 8)
		lse, lse2 := make([]float32, rows), make([]float32, rows)
		s2 := cp(s)
		softmaxCausal(s, ld, rows, t0, ncols, lse)
		softmaxCausalGo(s2, ld, rows, t0, ncols, lse2)
		near("softmax P", s, s2, 1e-6)
		near("softmax lse", lse, lse2, 1e-6)
		p, dp := vec(rows*ld, -8, 8), vec(rows*ld, -1, 1)
		p2, dp2 := cp(p), cp(dp)
		softmaxCausalBackward(p, dp, ld, rows, t0, ncols, 0.3, lse)
		softmaxCausalBackwardGo(p2, dp2, ld, rows, t0, ncols, 0.3, lse)
		near("softmax bwd P", p, p2, 1e-6)
		near("softmax bwd dS", dp, dp2, 1e-5)
		// lse nil (tune.keepP): p holds P, here the softmax's; dS alike, p left as it was.
		pk, pk2, dpk := cp(s), cp(s), vec(rows*ld, -1, 1)
		dpk2 := cp(dpk)
		softmaxCausalBackward(pk, dpk, ld, rows, t0, ncols, 0.3, nil)
		softmaxCausalBackwardGo(pk2, dpk2, ld, rows, t0, ncols, 0.3, nil)
		near("softmax bwd kept P", pk, s, 0)
		near("softmax bwd kept P, Go", pk2, s, 0)
		near("softmax bwd kept dS", dpk, dpk2, 1e-5)

		h1, h3, dg := vec(n, -12, 12), vec(n, -2, 2), vec(n, -1, 1)
		// one range, and a block: 3 rows of ld/2 columns, ld apart (the rest untouched)
		for _, sh := range [][3]int{{1, n, n}, {3, n / 6, n / 3}} {
			rows, cols, ld := sh[0], sh[1], sh[2]
			if cols == 0 {
				continue
			}
			g, g2 := make([]float32, n), make([]float32, n)
			swigluFwd(g, h1, h3, rows, cols, ld)
			swigluFwdGo(g2, h1, h3, rows, cols, ld)
			near("swiglu", g, g2, 1e-6)
			a, b, a2, b2 := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
			swigluBwd(a, b, dg, h1, h3, rows, cols, ld)
			swigluBwdGo(a2, b2, dg, h1, h3, rows, cols, ld)
			near("swiglu dh1", a, a2, 1e-6)
			near("swiglu dh3", b, b2, 1e-6)
			// In place (tune.inPlaceSwiGLU): dh1 over h1, dh3 over h3, the same values.
			i1, i3, j1, j3 := cp(h1), cp(h3), cp(h1), cp(h3)
			swigluBwd(i1, i3, dg, i1, i3, rows, cols, ld)
			swigluBwdGo(j1, j3, dg, j1, j3, rows, cols, ld)
			for k := range n {
				if k/ld < rows && k%ld < cols {
					if i1[k] != a[k] || i3[k] != b[k] || j1[k] != a2[k] || j3[k] != b2[k] {
						t.Fatalf("swiglu in place on %d×%d (ld %d), element %d: C %g, %g; Go %g, %g; want %g, %g and %g, %g",
							rows, cols, ld, k, i1[k], i3[k], j1[k], j3[k], a[k], b[k], a2[k], b2[k])
					}
				} else if i1[k] != h1[k] || i3[k] != h3[k] {
					t.Fatalf("swiglu in place on %d×%d (ld %d) wrote element %d", rows, cols, ld, k)
				}
			}
			for i := range n {
				if inside := i/ld < rows && i%ld < cols; !inside && (g[i] != 0 || a[i] != 0 || b[i] != 0) {
					t.Fatalf("swiglu on %d×%d (ld %d) wrote element %d", rows, cols, ld, i)
				}
			}
		}

		z := vec(3*n, -60, 60)
		tg := []int32{0, int32(n / 2), int32(n - 1)}
		for _, capc := range []float32{30, 0} {
			for _, train := range []bool{true, false} {
				z1, z2 := cp(z), cp(z)
				l1 := softcapCE(z1, 3, n, tg, capc, 0.25, train)
				l2 := softcapCEGo(z2, 3, n, tg, capc, 0.25, train)
				near("softcapCE rows", z1, z2, 1e-6)
				if math.Abs(l1-l2) > 1e-5*(1+math.Abs(l2)) {
					t.Fatalf("softcapCE loss %g, Go reference %g", l1, l2)
				}
			}
		}

		const d = 3
		x, gain, dout := vec(n*d, -2, 2), vec(d, 0.5, 1.5), vec(n*d, -1, 1)
		out, out2, ri, ri2 := make([]float32, n*d), make([]float32, n*d), make([]float32, n), make([]float32, n)
		rmsnormRows(out, ri, x, gain, n, d, 1e-5)
		rmsnormRowsGo(out2, ri2, x, gain, n, d, 1e-5)
		near("rmsnorm", out, out2, 1e-6)
		near("rmsnorm r", ri, ri2, 1e-6)
		dx, pg := vec(n*d, -1, 1), vec(d, -1, 1)
		dx2, pg2 := cp(dx), cp(pg)
		rmsnormBackwardRows(dx, pg, dout, x, ri, gain, n, d)
		rmsnormBackwardRowsGo(dx2, pg2, dout, x, ri, gain, n, d)
		near("rmsnorm dx", dx, dx2, 1e-5)
		near("rmsnorm dg", pg, pg2, 1e-5)

		const T, hd, rd = 5, 4, 12
		cosT, sinT := RopeTables(T, hd, 10)
		xr := vec(n*rd, -1, 1)
		xr2 := cp(xr)
		for _, sign := range []float32{1, -1} {
			ropeRows(xr, n, 3, T, rd, rd, hd, cosT, sinT, sign)
			ropeRowsGo(xr2, n, 3, T, rd, rd, hd, cosT, sinT, sign)
			near("rope", xr, xr2, 1e-6)
			// one head in the middle of each row (a block of columns): the rest untouched
			ropeRows(xr[hd:], n, 2, T, hd, rd, hd, cosT, sinT, sign)
			ropeRowsGo(xr2[hd:], n, 2, T, hd, rd, hd, cosT, sinT, sign)
			near("rope block", xr, xr2, 1e-6)
		}

		y := vec(n, -1, 1)
		o, o2 := make([]float32, n), make([]float32, n)
		axpy(o, h3, y, 0.3)
		axpyGo(o2, h3, y, 0.3)
		near("axpy", o, o2, 1e-7)
		scaleTo(o, y, 0.3)
		scaleToGo(o2, y, 0.3)
		near("scale", o, o2, 1e-7)
	}

	// NaN propagates through the exponentials; exp's range ends as expf's.
	nan := float32(math.NaN())
	g := make([]float32, 3)
	swigluFwd(g, []float32{nan, -200, 200}, []float32{1, 1, 1}, 1, 3, 3)
	if !math.IsNaN(float64(g[0])) || g[1] != 0 || g[2] != 200 {
		t.Fatalf("swiglu(NaN, −200, 200) = %v, want [NaN 0 200]", g)
	}
	z := []float32{1, nan, 2}
	if l := softcapCE(z, 1, 3, []int32{0}, 30, 1, false); !math.IsNaN(l) {
		t.Fatalf("softcapCE over a NaN logit = %g", l)
	}
}

// BenchmarkKernels times the build's element-wise kernels on one goroutine, in ns per element
// (the C kernels on cgo builds, vectorised for the CPU; compare with CGO_ENABLED=0 for the Go
// ones): the loss over 64 rows of a 4096-word vocabulary (soft-cap, float64 softmax sum, and the
// gradient), the causal softmax of 64 attention rows near the end of a 512-token sequence, and
// SwiGLU forward and backward over 64K elements.
func BenchmarkKernels(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	vec := func(n int, scale float64) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(scale * r.NormFloat64())
		}
		return s
	}
	perElem := func(b *testing.B, n int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
	}
	b.Run("loss", func(b *testing.B) {
		rows, cols := 64, 4096
		src, z, tgt := vec(rows*cols, 3), make([]float32, rows*cols), make([]int32, rows)
		for i := range tgt {
			tgt[i] = int32(r.IntN(cols))
		}
		for b.Loop() {
			copy(z, src)
			softcapCE(z, rows, cols, tgt, 30, 1.0/1024, true)
		}
		perElem(b, rows*cols)
	})
	b.Run("softmax", func(b *testing.B) {
		rows, ld, t0 := 64, 512, 448
		src, s, lse := vec(rows*ld, 2), make([]float32, rows*ld), make([]float32, rows)
		for b.Loop() {
			copy(s, src)
			softmaxCausal(s, ld, rows, t0, ld, lse)
		}
		perElem(b, rows*ld)
	})
	n := 1 << 16
	h1, h3, dg, o1, o2 := vec(n, 2), vec(n, 1), vec(n, 1), make([]float32, n), make([]float32, n)
	b.Run("swiglu", func(b *testing.B) {
		for b.Loop() {
			swigluFwd(o1, h1, h3, 1, n, n)
		}
		perElem(b, n)
	})
	b.Run("swiglu-bwd", func(b *testing.B) {
		for b.Loop() {
			swigluBwd(o1, o2, dg, h1, h3, 1, n, n)
		}
		perElem(b, n)
	})
	// A GEMM block's SwiGLU (the default config's 128×96 blocks of [1024, 768] on 16 cores, lone=4):
	// one call, and one call a row as rangeTile made.
	const rows, cols, ld = 128, 96, 768
	h1, h3, o1 = vec(rows*ld, 2), vec(rows*ld, 1), make([]float32, rows*ld)
	b.Run("swiglu-block", func(b *testing.B) {
		for b.Loop() {
			swigluFwd(o1, h1, h3, rows, cols, ld)
		}
		perElem(b, rows*cols)
	})
	b.Run("swiglu-block-by-row", func(b *testing.B) {
		for b.Loop() {
			for r := range rows {
				swigluFwd(o1[r*ld:], h1[r*ld:], h3[r*ld:], 1, cols, cols)
			}
		}
		perElem(b, rows*cols)
	})
}
