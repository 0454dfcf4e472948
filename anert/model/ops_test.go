package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/anelab/anelab/anert/blas"
)

// Op-level gradient checks. Each op runs in float32 on O(1) inputs; the scalar under test is
// L = Σ_i w_i·out_i (w random), accumulated in float64. The analytic gradient (the op's backward
// with dout = w) is compared with central differences (L(x+h) − L(x−h))/(2h), h = 1e-2, element by
// element: |fd − g| ≤ 2e-3·max|fd| + 2e-3·|fd|. With h = 1e-2 the truncation error is O(h²) ≈ 1e-4
// relative and float32 rounding of L contributes ≈ 1e-7/h ≈ 1e-5, so the tolerance has ~10× slack
// while a wrong formula (a missing factor, a sign, a dropped term) is off by O(1).

func rnd(r *rand.Rand, n int, lo, hi float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return s
}

func dotw(w, out []float32) float64 {
	var s float64
	for i := range out {
		s += float64(w[i]) * float64(out[i])
	}
	return s
}

// fdCheck compares grad with central differences of f over every element of x.
func fdCheck(t *testing.T, name string, x, grad []float32, f func() float64) {
	t.Helper()
	const h = 1e-2
	fd := make([]float64, len(x))
	var scale float64
	for i := range x {
		v := x[i]
		x[i] = v + h
		fp := f()
		up := x[i]
		x[i] = v - h
		fm := f()
		dn := x[i]
		x[i] = v
		fd[i] = (fp - fm) / float64(up-dn)
		scale = max(scale, math.Abs(fd[i]))
	}
	if scale == 0 {
		t.Fatalf("%s: all finite differences are 0: the check would test nothing", name)
	}
	for i := range x {
		if d := math.Abs(fd[i] - float64(grad[i])); d > 2e-3*scale+2e-3*math.Abs(fd[i]) {
			t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g (scale %.3g)", name, i, grad[i], fd[i], scale)
		}
	}
}

func TestRMSNormGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const n, d, eps = 9, 7, 1e-5
	x, g, w := rnd(r, n*d, -2, 2), rnd(r, d, 0.5, 1.5), rnd(r, n*d, -1, 1) // non-unit gains
	out, rinv := make([]float32, n*d), make([]float32, n)
	f := func() float64 { rmsnormForward(newTeam(2), out, rinv, x, g, n, d, eps); return dotw(w, out) }
	f()
	for t0 := range n { // forward against the definition, in float64
		var ss float64
		for i := range d {
			ss += float64(x[t0*d+i]) * float64(x[t0*d+i])
		}
		rr := 1 / math.Sqrt(ss/d+eps)
		for i := range d {
			if want := float64(g[i]) * float64(x[t0*d+i]) * rr; math.Abs(float64(out[t0*d+i])-want) > 1e-6*(1+math.Abs(want)) {
				t.Fatalf("out[%d,%d] = %g, want %g", t0, i, out[t0*d+i], want)
			}
		}
	}
	// The backward adds: pre-load dx and dg and subtract afterwards.
	dx0, dg0 := rnd(r, n*d, -1, 1), rnd(r, d, -1, 1)
	dx, dg := append([]float32(nil), dx0...), append([]float32(nil), dg0...)
	rmsnormBackward(newTeam(2), dx, dg, w, x, rinv, g, n, d)
	for i := range dx {
		dx[i] -= dx0[i]
	}
	for i := range dg {
		dg[i] -= dg0[i]
	}
	fdCheck(t, "dx", x, dx, f)
	fdCheck(t, "dg", g, dg, f)
}

func TestLinearGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 1))
	const n, in, out = 4, 5, 3
	x, wt, w := rnd(r, n*in, -1, 1), rnd(r, out*in, -1, 1), rnd(r, n*out, -1, 1)
	y := make([]float32, n*out)
	f := func() float64 { linearForward(newTeam(2), y, x, wt, n, in, out); return dotw(w, y) }
	dx, dw := make([]float32, n*in), make([]float32, out*in)
	linearBackwardInput(newTeam(2), dx, w, wt, n, in, out, 0)
	linearBackwardWeight(newTeam(2), dw, w, x, n, in, out)
	fdCheck(t, "dx", x, dx, f)
	fdCheck(t, "dW", wt, dw, f)
}

func TestRoPEGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 1))
	const B, T, d, hd = 2, 3, 8, 4
	cos, sin := RopeTables(T, hd, 10) // base 10: large angles even for the last pair
	x, w := rnd(r, B*T*d, -1, 1), rnd(r, B*T*d, -1, 1)
	y := make([]float32, len(x))
	f := func() float64 { copy(y, x); ropeForward(newTeam(2), y, cos, sin, B*T, T, d, hd); return dotw(w, y) }
	f()
	// Forward against the definition: pair (2i, 2i+1) of head h at position p turns by p·10^(−2i/hd).
	for row := range B * T {
		p := row % T
		for h := 0; h < d; h += hd {
			for i := range hd / 2 {
				th := float64(p) * math.Pow(10, -2*float64(i)/hd)
				a, b := float64(x[row*d+h+2*i]), float64(x[row*d+h+2*i+1])
				wa, wb := a*math.Cos(th)-b*math.Sin(th), a*math.Sin(th)+b*math.Cos(th)
				if math.Abs(float64(y[row*d+h+2*i])-wa) > 1e-6 || math.Abs(float64(y[row*d+h+2*i+1])-wb) > 1e-6 {
					t.Fatalf("row %d head %d pair %d: got (%g, %g), want (%g, %g)", row, h/hd, i, y[row*d+h+2*i], y[row*d+h+2*i+1], wa, wb)
				}
			}
		}
	}
	dx := append([]float32(nil), w...)
	ropeBackward(newTeam(2), dx, cos, sin, B*T, T, d, hd)
	fdCheck(t, "dx", x, dx, f)
}

// naiveAttention is causal softmax attention for one head in float64, straight from the formula.
func naiveAttention(q, k, v []float32, T, hd, ld int, scale float64) []float64 {
	a := make([]float64, T*hd)
	for t := range T {
		s := make([]float64, t+1)
		m := math.Inf(-1)
		for j := range s {
			for i := range hd {
				s[j] += float64(q[t*ld+i]) * float64(k[j*ld+i])
			}
			s[j] *= scale
			m = max(m, s[j])
		}
		var z float64
		for j := range s {
			s[j] = math.Exp(s[j] - m)
			z += s[j]
		}
		for j := range s {
			for i := range hd {
				a[t*hd+i] += s[j] / z * float64(v[j*ld+i])
			}
		}
	}
	return a
}

// attnHeadForward is attention over one whole head, block by block, as the CPU backend's items
// compute it (attnRowsForward; s is T×T scratch).
func attnHeadForward(a, lse, q, k, v, s []float32, T, hd, ld int, scale float32, blk int) {
	for r0 := 0; r0 < T; r0 += blk {
		attnRowsForward(a, lse, q, k, v, s[r0*T:], T, hd, ld, scale, r0, min(r0+blk, T))
	}
}

func TestAttentionGrad(t *testing.T) {
	const T, hd, ld = 5, 3, 7 // the head sits at column offset 2 of rows of width 7
	scale := float32(1 / math.Sqrt(hd))
	for _, blk := range []int{1, 2, 5, 64} {
		t.Run(fmt.Sprintf("block=%d", blk), func(t *testing.T) {
			r := rand.New(rand.NewPCG(4, uint64(blk)))
			q, k, v := rnd(r, T*ld, -1.5, 1.5), rnd(r, T*ld, -1.5, 1.5), rnd(r, T*ld, -1.5, 1.5)
			w := rnd(r, T*ld, -1, 1)
			a, lse := make([]float32, T*ld), make([]float32, T)
			s, dp := rnd(r, T*T, -9, 9), rnd(r, T*T, -9, 9) // garbage scratch must not leak in
			const off = 2
			f := func() float64 {
				attnHeadForward(a[off:], lse, q[off:], k[off:], v[off:], s, T, hd, ld, scale, blk)
				var sum float64
				for t0 := range T {
					for i := range hd {
						sum += float64(w[t0*ld+off+i]) * float64(a[t0*ld+off+i])
					}
				}
				return sum
			}
			f()
			want := naiveAttention(q[off:], k[off:], v[off:], T, hd, ld, float64(scale))
			for t0 := range T {
				for i := range hd {
					if got := float64(a[t0*ld+off+i]); math.Abs(got-want[t0*hd+i]) > 1e-5 {
						t.Fatalf("A[%d,%d] = %g, want %g", t0, i, got, want[t0*hd+i])
					}
				}
			}
			// Recomputing P from lse, and (tune.keepP) reading the P the forward left in s, whose
			// entries it did not write (above each block's last key) are still garbage.
			for _, kept := range []bool{false, true} {
				f()
				dq, dk, dv := make([]float32, T*ld), make([]float32, T*ld), make([]float32, T*ld)
				l, sc := lse, s
				if kept {
					l, sc = nil, slices.Clone(s)
				}
				attnHeadBackward(dq[off:], dk[off:], dv[off:], w[off:], q[off:], k[off:], v[off:], l, sc, dp, T, hd, ld, scale, blk)
				name := fmt.Sprintf("kept P %v: ", kept)
				fdCheck(t, name+"dq", q, dq, f)
				fdCheck(t, name+"dk", k, dk, f)
				fdCheck(t, name+"dv", v, dv, f)
			}
		})
	}
}

func TestSwiGLUGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 1))
	const n = 11
	h1, h3, w := rnd(r, n, -4, 4), rnd(r, n, -2, 2), rnd(r, n, -1, 1)
	g := make([]float32, n)
	f := func() float64 { swigluForward(newTeam(2), g, h1, h3, n); return dotw(w, g) }
	f()
	for i := range n {
		x := float64(h1[i])
		if want := x / (1 + math.Exp(-x)) * float64(h3[i]); math.Abs(float64(g[i])-want) > 1e-6*(1+math.Abs(want)) {
			t.Fatalf("gate[%d] = %g, want %g", i, g[i], want)
		}
	}
	dh1, dh3 := make([]float32, n), make([]float32, n)
	swigluBackward(newTeam(2), dh1, dh3, w, h1, h3, n)
	fdCheck(t, "dh1", h1, dh1, f)
	fdCheck(t, "dh3", h3, dh3, f)
}

func TestResidualGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 1))
	const n, alpha = 6, 0.3
	x, y, w := rnd(r, n, -1, 1), rnd(r, n, -1, 1), rnd(r, n, -1, 1)
	out := make([]float32, n)
	f := func() float64 { residualForward(newTeam(2), out, x, y, alpha, n, 1); return dotw(w, out) }
	dy := make([]float32, n)
	residualBackward(newTeam(2), dy, w, alpha, n, 1)
	fdCheck(t, "dy", y, dy, f)
	fdCheck(t, "dx", x, w, f) // the skip path passes dout through
}

// The unfused loss ops, the reference softcapCE is checked against (test-only: the model runs the
// fused softcapCE).

// softcapBackward is its backward, written in terms of the capped z: since
// dz/dl = 1 − tanh²(l/c) = 1 − (z/c)²,  dl_j = dz_j·(1 − (z_j/c)²) (dl may alias dz).
func softcapBackward(dl, dz, z []float32, c float32) {
	inv := 1 / c
	for j, g := range dz {
		u := z[j] * inv
		dl[j] = g * (1 - u*u)
	}
}

// crossEntropyForward is the cross-entropy of softmax(z) against class tgt for one row:
//
//	m = max_j z_j,  e_j = exp(z_j − m),  S = Σ_j e_j,  loss = m + log S − z_tgt.
//
// It returns loss and S, and leaves e in e (scratch of len(z)) for the backward pass.
func crossEntropyForward(e, z []float32, tgt int) (loss float64, sum float64) {
	m := z[0]
	for _, x := range z[1:] {
		m = max(m, x)
	}
	e = e[:len(z)]
	for j, x := range z {
		e[j] = expf(x - m)
		sum += float64(e[j])
	}
	return float64(m) + math.Log(sum) - float64(z[tgt]), sum
}

// crossEntropyBackward is its backward, scaled: dz_j = scale·(e_j/S − [j = tgt]), where
// e_j/S = softmax(z)_j (dz may alias e). The model uses scale = gradScale/N, N the number of
// tokens the loss averages over.
func crossEntropyBackward(dz, e []float32, sum float64, tgt int, scale float32) {
	k := float32(float64(scale) / sum)
	for j, v := range e {
		dz[j] = k * v
	}
	dz[tgt] -= scale
}

// TestSoftcapCrossEntropyGrad checks CE alone, softcap alone, their composition, and the fused
// in-place backward the model uses, all against finite differences.
func TestSoftcapCrossEntropyGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 1))
	const n, tgt, c, scale = 9, 4, 2.5, 0.7
	l := rnd(r, n, -5, 5) // |l| > c: the cap bends hard
	z, e := make([]float32, n), make([]float32, n)
	ce := func() float64 { loss, _ := crossEntropyForward(e, l, tgt); return scale * loss }
	capped := func() float64 {
		softcapForward(z, l, c)
		loss, _ := crossEntropyForward(e, z, tgt)
		return scale * loss
	}

	// CE alone, and its forward against the definition.
	loss, sum := crossEntropyForward(e, l, tgt)
	var s64 float64
	for _, x := range l {
		s64 += math.Exp(float64(x))
	}
	if want := math.Log(s64) - float64(l[tgt]); math.Abs(loss-want) > 1e-6 {
		t.Fatalf("CE = %g, want %g", loss, want)
	}
	dz := make([]float32, n)
	crossEntropyBackward(dz, e, sum, tgt, scale)
	fdCheck(t, "CE dz", l, dz, ce)

	// softcap alone: L = Σ w·z.
	w := rnd(r, n, -1, 1)
	sc := func() float64 { softcapForward(z, l, c); return dotw(w, z) }
	sc()
	for j := range n {
		if want := c * math.Tanh(float64(l[j])/c); math.Abs(float64(z[j])-want) > 1e-6 {
			t.Fatalf("softcap(%g) = %g, want %g", l[j], z[j], want)
		}
	}
	dl := make([]float32, n)
	softcapBackward(dl, w, z, c)
	fdCheck(t, "softcap dl", l, dl, sc)

	// Composition, separate buffers.
	softcapForward(z, l, c)
	_, sum = crossEntropyForward(e, z, tgt)
	crossEntropyBackward(dz, e, sum, tgt, scale)
	softcapBackward(dl, dz, z, c)
	fdCheck(t, "softcap+CE dl", l, dl, capped)

	// The fused in-place kernel the model runs, in both implementations, on two rows: the row
	// above and the same row uncapped (checked against CE alone).
	for _, impl := range []struct {
		name string
		f    func(z []float32, rows, ncols int, tgt []int32, capc, scale float32, train bool) float64
	}{{"softcapCE", softcapCE}, {"softcapCEGo", softcapCEGo}} {
		for _, capc := range []float32{c, 0} {
			rows := append(append([]float32(nil), l...), l...)
			tg := []int32{tgt, 1}
			got := impl.f(rows, 2, n, tg, capc, scale, true)
			// The row's loss, then its gradient, against the separate ops.
			var want float64
			for i := range 2 {
				zz := append([]float32(nil), l...)
				if capc > 0 {
					softcapForward(zz, l, capc)
				}
				loss, sum := crossEntropyForward(e, zz, int(tg[i]))
				want += loss
				crossEntropyBackward(dz, e, sum, int(tg[i]), scale)
				if capc > 0 {
					softcapBackward(dl, dz, zz, capc)
				} else {
					copy(dl, dz)
				}
				for j := range n {
					if d := math.Abs(float64(rows[i*n+j] - dl[j])); d > 1e-6*(1+math.Abs(float64(dl[j]))) {
						t.Fatalf("%s cap %g row %d: dl[%d] = %g, separate ops give %g", impl.name, capc, i, j, rows[i*n+j], dl[j])
					}
				}
			}
			if math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("%s cap %g: loss sum %g, separate ops give %g", impl.name, capc, got, want)
			}
		}
	}
}

// TestEmbeddingClassifierGrad checks the tied embedding: E feeds the input lookup and, whole or
// compacted to its active rows, the classifier. L = Σ w·(x·E_cᵀ) with x = E[ids]; dE collects both.
// classifierBackward is the classifier's whole backward: dxf = dlogits·E_c (overwritten) and
// dE_c += dlogitsᵀ·xf (the model runs the two halves at different times).
func classifierBackward(t *team, dxf, dec, dlogits, xf, ec []float32, n, vc, d int) {
	classifierBackwardInput(t, dxf, dlogits, ec, n, vc, d)
	classifierBackwardWeight(t, dec, dlogits, xf, n, vc, d)
}

func TestEmbeddingClassifierGrad(t *testing.T) {
	const V, d = 6, 3
	ids := []uint16{4, 1, 4, 0} // a repeated id: its gradients must add
	for _, active := range [][]int32{nil, {0, 2, 4, 5}} {
		t.Run(fmt.Sprintf("active=%v", active), func(t *testing.T) {
			r := rand.New(rand.NewPCG(8, uint64(len(active))))
			e := rnd(r, V*d, -1, 1)
			n, c := len(ids), V
			if active != nil {
				c = len(active)
			}
			w := rnd(r, n*c, -1, 1)
			x, ec, logits := make([]float32, n*d), make([]float32, c*d), make([]float32, n*c)
			f := func() float64 {
				embedForward(x, e, ids, d)
				cls := e
				if active != nil {
					gatherRows(ec, e, active, d)
					cls = ec
				}
				classifierForward(newTeam(2), logits, x, cls, n, c, d)
				return dotw(w, logits)
			}
			f()
			de, dx := make([]float32, V*d), make([]float32, n*d)
			if active != nil {
				dec := make([]float32, c*d)
				classifierBackward(newTeam(2), dx, dec, w, x, ec, n, c, d)
				scatterAddRows(de, dec, active, d)
			} else {
				classifierBackward(newTeam(2), dx, de, w, x, e, n, c, d)
			}
			embedBackward(newTeam(2), de, dx, ids, d)
			fdCheck(t, "dE", e, de, f)
		})
	}
}

// TestEmbedThreads: the embedding lookup as a row op on blocks of rows, and the scatter-add split
// by vocabulary row, on 1 to 16 goroutines, give bit for bit the serial loops' results: x = E[id]
// row by row, and dE[id] += dx[t] in token order. The ids repeat (a skewed draw: a few ids take
// most tokens) and the vocabulary does not divide evenly into parts; dE starts non-zero, as with
// the classifier's part of a tied embedding's gradient already in it.
func TestEmbedThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 2))
	const V, d, n = 1037, 24, 700
	ids := make([]uint16, n)
	for i := range ids {
		ids[i] = uint16(min(V-1, int(r.ExpFloat64()*20))) // mostly small ids
	}
	e, dx, de0 := rnd(r, V*d, -1, 1), rnd(r, n*d, -1, 1), rnd(r, V*d, -1, 1)
	wantX := make([]float32, n*d)
	for i, id := range ids {
		copy(wantX[i*d:(i+1)*d], e[int(id)*d:(int(id)+1)*d])
	}
	wantDE := append([]float32(nil), de0...)
	for i, id := range ids {
		for k := range d {
			wantDE[int(id)*d+k] += dx[i*d+k]
		}
	}
	for _, w := range []int{1, 2, 5, 16} {
		tm := newTeam(w)
		x := make([]float32, n*d)
		tm.rowLoop(n, tm.embedOp(x, e, ids, d))
		de := append([]float32(nil), de0...)
		embedBackward(tm, de, dx, ids, d)
		for i := range wantX {
			if math.Float32bits(x[i]) != math.Float32bits(wantX[i]) {
				t.Fatalf("%d goroutines: x[%d] = %g, want %g", w, i, x[i], wantX[i])
			}
		}
		for i := range wantDE {
			if math.Float32bits(de[i]) != math.Float32bits(wantDE[i]) {
				t.Fatalf("%d goroutines: dE[%d] = %g, want %g (the serial sum in token order)", w, i, de[i], wantDE[i])
			}
		}
	}
}

// TestTeamGemm checks the split GEMM against one blas.Sgemm call, for every transpose, for
// splits into one part and into several (rows ≥ 512 with two goroutines give four parts).
func TestTeamGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 1))
	for _, sz := range []struct{ m, n, k, w int }{{5, 3, 4, 2}, {1030, 7, 9, 2}, {700, 5, 3, 3}, {2, 600, 8, 2},
		// more than 4 goroutines: a grid of blocks, with bounds on multiples of 16 or not
		{300, 200, 33, 9}, {64, 700, 17, 16}, {1030, 40, 5, 8}, {7, 5, 3, 16}, {520, 530, 2000, 16}} {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			lda, ldb := sz.k, sz.n
			if tr[0] {
				lda = sz.m
			}
			if tr[1] {
				ldb = sz.k
			}
			a, b := rnd(r, sz.m*sz.k, -1, 1), rnd(r, sz.k*sz.n, -1, 1)
			c0 := rnd(r, sz.m*sz.n, -1, 1)
			want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
			blas.Sgemm(tr[0], tr[1], sz.m, sz.n, sz.k, 0.5, a, lda, b, ldb, 1, want, sz.n)
			newTeam(sz.w).gemm(tr[0], tr[1], sz.m, sz.n, sz.k, 0.5, a, lda, b, ldb, 1, got, sz.n)
			for i := range want {
				// blocks sum in another order: allow the float32 rounding of k terms
				if math.Abs(float64(got[i]-want[i])) > 1e-5+1e-7*float64(sz.k)*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%+v trans %v: C[%d] = %g, want %g", sz, tr, i, got[i], want[i])
				}
			}
		}
	}
}

// TestSoftcapCESmallTerms: one logit far above 32K others, whose exp terms are each below half an
// ulp of the running sum in float32: the loss must still count them (S is summed in float64).
func TestSoftcapCESmallTerms(t *testing.T) {
	const n = 32768
	want := 20 + math.Log1p((n-1)*math.Exp(-20)) // loss of target 1: m + log S − z_1, m = 20, z_1 = 0
	for _, impl := range []struct {
		name string
		f    func(z []float32, rows, ncols int, tgt []int32, capc, scale float32, train bool) float64
	}{{"softcapCE", softcapCE}, {"softcapCEGo", softcapCEGo}} {
		z := make([]float32, n)
		z[0] = 20
		got := impl.f(z, 1, n, []int32{1}, 0, 1, true)
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: loss %.12f, want %.12f (error %.2g)", impl.name, got, want, got-want)
		}
		// dl_1 = softmax(z)_1 − 1 = 1/S − 1.
		if g, w := float64(z[1]), 1/(1+(n-1)*math.Exp(-20))*math.Exp(-20)-1; math.Abs(g-w) > 1e-7 {
			t.Errorf("%s: dl[1] = %.9g, want %.9g", impl.name, g, w)
		}
	}
}

// BenchmarkEmbedBackward is the embedding's scatter-add at the original shape (512 tokens, dim
// 768, vocab 9216) on 1 and 2 goroutines: the ratio is what splitting it by vocabulary row gains.
func BenchmarkEmbedBackward(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	const V, d, n = 9216, 768, 512
	ids := make([]uint16, n)
	for i := range ids {
		ids[i] = uint16(r.IntN(V))
	}
	de, dx := make([]float32, V*d), rnd(r, n*d, -1, 1)
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("w=%d", w), func(b *testing.B) {
			tm := newTeam(w)
			for b.Loop() {
				embedBackward(tm, de, dx, ids, d)
			}
		})
	}
}

// gemm is one blas.Sgemm split over the team's goroutines (see gemms), for the tests.
func (t *team) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	t.gemms(gemmSpec{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, 0, nil})
}
