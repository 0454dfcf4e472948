package optim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestKernelsMatchGo checks the build's per-element loops (C on cgo builds) against the Go
// reference versions on random data, lengths covering vector tails. The C compiler may fuse a
// multiply-add, so values agree to a few ulp rather than bit for bit.
func TestKernelsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	vec := func(n int, lo, hi float64) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(lo + (hi-lo)*r.Float64())
		}
		return s
	}
	near := func(name string, got, want []float32) {
		t.Helper()
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-6*(1+math.Abs(float64(want[i]))) || got[i] != got[i] {
				t.Fatalf("%s[%d] = %g, Go reference %g", name, i, got[i], want[i])
			}
		}
	}
	same := func(name string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s[%d] = %g, want %g bit for bit", name, i, got[i], want[i])
			}
		}
	}
	clone := func(s []float32) []float32 { return append([]float32(nil), s...) }
	for _, n := range []int{1, 7, 16, 33, 256, 259, 1000} { // and AdamW's blocks of 256
		for _, c := range []struct {
			u, cl float32
			zero  bool
		}{{1, 1, false}, {1, 1, true}, {0.25, 0.7, false}, {1.0 / 3, 0.3, true}} {
			w, g, m, v := vec(n, -1, 1), vec(n, -1, 1), vec(n, -1, 1), vec(n, 0, 1)
			g0 := clone(g)
			// g' = (g·u)·cl: the gradient the update steps on, as Apply writes it.
			gp := clone(g)
			for i := range gp {
				gp[i] = (gp[i] * c.u) * c.cl
			}
			wantG := g0
			if c.zero {
				wantG = make([]float32, n)
			}
			w2, m2, g2 := clone(w), clone(m), clone(g)
			w3, m3, g3 := clone(w), clone(m), clone(gp)
			lionUpdate(w, g, m, c.u, c.cl, 1e-3, 0.9999, 0.9, 0.1, 0.99, 0.01, c.zero)
			lionUpdateGo(w2, g2, m2, c.u, c.cl, 1e-3, 0.9999, 0.9, 0.1, 0.99, 0.01, c.zero)
			lionUpdateGo(w3, g3, m3, 1, 1, 1e-3, 0.9999, 0.9, 0.1, 0.99, 0.01, false)
			near("lion w", w, w2)
			near("lion m", m, m2)
			same("lion g", g, wantG)
			same("lion g (Go)", g2, wantG)
			same("lion w (Go) vs on g'", w2, w3) // the factors fold in bit for bit
			same("lion m (Go) vs on g'", m2, m3)
			copy(g, g0)
			copy(g2, g0)
			v2, v3 := clone(v), clone(v)
			copy(w2, w)
			copy(w3, w)
			copy(m2, m)
			copy(m3, m)
			copy(g3, gp)
			adamUpdate(w, g, m, v, c.u, c.cl, 1e-3, 1.5, 0.9999, 0.9, 0.1, 0.999, 0.001, 1e-8, c.zero)
			adamUpdateGo(w2, g2, m2, v2, c.u, c.cl, 1e-3, 1.5, 0.9999, 0.9, 0.1, 0.999, 0.001, 1e-8, c.zero)
			adamUpdateGo(w3, g3, m3, v3, 1, 1, 1e-3, 1.5, 0.9999, 0.9, 0.1, 0.999, 0.001, 1e-8, false)
			near("adamw w", w, w2)
			near("adamw m", m, m2)
			near("adamw v", v, v2)
			same("adamw g", g, wantG)
			same("adamw g (Go)", g2, wantG)
			same("adamw w (Go) vs on g'", w2, w3)
			same("adamw v (Go) vs on g'", v2, v3)
			// The norm pass reads g only: Σ (u·g)², u·g rounded to float32 as Apply writes it.
			s, s2 := sumSqScaled(g0, c.u), sumSqScaledGo(g0, c.u)
			var want float64
			for _, x := range g0 {
				want += float64(x*c.u) * float64(x*c.u)
			}
			if math.Abs(s-s2) > 1e-12*(1+s2) || math.Abs(s2-want) > 1e-12*(1+want) {
				t.Fatalf("sumSqScaled = %g, Go reference %g, float64 sum %g", s, s2, want)
			}
			g2 = clone(g0)
			scaleSlice(g0, c.u)
			scaleSliceGo(g2, c.u)
			same("scaleSlice", g0, g2)
		}
	}
	// Lion's sign(0) = 0, and NaN and Inf pass to the sum of squares, in both versions.
	w, m := []float32{1}, []float32{0}
	lionUpdate(w, []float32{0}, m, 1, 1, 0.5, 1, 0.9, 0.1, 0.99, 0.01, true)
	if w[0] != 1 {
		t.Fatalf("lion with c = 0 moved w to %g", w[0])
	}
	for _, bad := range []float64{math.NaN(), math.Inf(-1)} {
		g := []float32{1, float32(bad), 2}
		for name, f := range map[string]func([]float32, float32) float64{"C": sumSqScaled, "Go": sumSqScaledGo} {
			if s := f(g, 0.5); !math.IsNaN(s) && !math.IsInf(s, 1) {
				t.Fatalf("sumSqScaled (%s) with a %g = %g, want NaN or +Inf", name, bad, s)
			}
		}
	}
}
