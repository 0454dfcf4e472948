package model

import (
	"math"
	"testing"
)

func TestFastMath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      func(float32) float32
		ref    func(float64) float64
		lo, hi float64
		relTol float64
		absTol float64
	}{
		{"expf", expf, math.Exp, -87.3, 88, 4e-7, 0},
		{"tanhf", tanhf, math.Tanh, -20, 20, 4e-7, 1e-7},
		{"sigmoidf", sigmoidf, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }, -90, 90, 4e-7, 1e-38},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200001
			for i := range n {
				x := float32(tc.lo + (tc.hi-tc.lo)*float64(i)/(n-1))
				got, want := float64(tc.f(x)), tc.ref(float64(x))
				if d := math.Abs(got - want); d > tc.relTol*math.Abs(want)+tc.absTol {
					t.Fatalf("%s(%g) = %g, want %g (rel err %.2g)", tc.name, x, got, want, d/math.Abs(want))
				}
			}
		})
	}
	if expf(-100) != 0 || !math.IsInf(float64(expf(100)), 1) || !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Fatal("expf limits: want exp(-100)=0, exp(100)=+Inf, exp(NaN)=NaN")
	}
	if tanhf(-50) != -1 || tanhf(50) != 1 || tanhf(0) != 0 {
		t.Fatal("tanhf limits")
	}
}
