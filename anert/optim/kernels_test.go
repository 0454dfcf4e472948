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
	for _, n := range []int{1, 7, 16, 33, 1000} {
		w, g, m, v := vec(n, -1, 1), vec(n, -1, 1), vec(n, -1, 1), vec(n, 0, 1)
		w2, m2, v2 := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
		lionUpdate(w, g, m, 1e-3, 0.9999, 0.9, 0.1, 0.99, 0.01)
		lionUpdateGo(w2, g, m2, 1e-3, 0.9999, 0.9, 0.1, 0.99, 0.01)
		near("lion w", w, w2)
		near("lion m", m, m2)
		copy(w2, w)
		copy(m2, m)
		adamUpdate(w, g, m, v, 1e-3, 1.5, 0.9999, 0.9, 0.1, 0.999, 0.001, 1e-8)
		adamUpdateGo(w2, g, m2, v2, 1e-3, 1.5, 0.9999, 0.9, 0.1, 0.999, 0.001, 1e-8)
		near("adamw w", w, w2)
		near("adamw m", m, m2)
		near("adamw v", v, v2)
		g2 := append([]float32(nil), g...)
		s, s2 := scaleSumSq(g, 0.5), scaleSumSqGo(g2, 0.5)
		near("scaleSumSq g", g, g2)
		if math.Abs(s-s2) > 1e-12*(1+s2) {
			t.Fatalf("scaleSumSq = %g, Go reference %g", s, s2)
		}
		scaleSlice(g, 3)
		scaleSliceGo(g2, 3)
		near("scaleSlice", g, g2)
	}
	// Lion's sign(0) = 0, and NaN passes to the sum of squares.
	w, m := []float32{1}, []float32{0}
	lionUpdate(w, []float32{0}, m, 0.5, 1, 0.9, 0.1, 0.99, 0.01)
	if w[0] != 1 {
		t.Fatalf("lion with c = 0 moved w to %g", w[0])
	}
	if s := scaleSumSq([]float32{1, float32(math.NaN()), 2}, 1); !math.IsNaN(s) {
		t.Fatalf("scaleSumSq with a NaN = %g", s)
	}
}
