package num

import (
	"math"
	"testing"
)

func TestFinite(t *testing.T) {
	for _, c := range []struct {
		x    float64
		want bool
	}{
		{0, true}, {-1.5, true}, {math.MaxFloat64, true}, {math.SmallestNonzeroFloat64, true},
		{math.Inf(1), false}, {math.Inf(-1), false}, {math.NaN(), false},
	} {
		if got := Finite(c.x); got != c.want {
			t.Errorf("Finite(%v) = %t, want %t", c.x, got, c.want)
		}
	}
}

func TestRelErr(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want []float32
		rel       float64
	}{
		{"equal", []float32{1, -2}, []float32{1, -2}, 0},
		{"3-4-5", []float32{3, 4}, []float32{0, 8}, 5.0 / 8}, // ‖(3, −4)‖ = 5, ‖(0, 8)‖ = 8
		{"zero reference: absolute", []float32{3, 4}, []float32{0, 0}, 5},
	} {
		if got := RelErr(c.got, c.want); math.Abs(got-c.rel) > 1e-15 {
			t.Errorf("%s: RelErr = %v, want %v", c.name, got, c.rel)
		}
	}
	if got := RelErr([]float32{float32(math.NaN())}, []float32{1}); !math.IsNaN(got) {
		t.Errorf("NaN input: RelErr = %v, want NaN", got)
	}
}
