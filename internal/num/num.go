// Package num holds the small numeric predicates that several packages need, so that each is
// written once.
package num

import "math"

// Finite reports whether x is a real number: neither NaN nor ±Inf. A loss, a gradient norm or a
// learning rate that is not finite means divergence (or a bug), never a value to plot or compare.
func Finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
