// Package num holds the small numeric predicates that several packages need, so that each is
// written once.
package num

import "math"

// Finite reports whether x is a real number: neither NaN nor ±Inf. A loss, a gradient norm or a
// learning rate that is not finite means divergence (or a bug), never a value to plot or compare.
func Finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// RelErr is ‖got − want‖/‖want‖ (Euclidean norms, summed in float64), or ‖got − want‖ when want
// is all zeros: how far a kernel's output is from its reference. A NaN in either gives NaN.
func RelErr(got, want []float32) float64 {
	var d, n float64
	for i, w := range want {
		e := float64(got[i]) - float64(w)
		d += e * e
		n += float64(w) * float64(w)
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}
