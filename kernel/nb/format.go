package nb

import (
	"math"
	"strconv"
)

// Num formats a number for people: integers exactly, other values to 5 significant digits
// (strconv 'g': 3e-4 → "0.0003", 2.5e-5 → "2.5e-05", 2.3456789 → "2.3457"), values of 1e5 and
// more without a fraction, and NaN as "" (a missing value). gota's own %f formatting would
// print a learning rate of 3e-5 as 0.000030 and 1e-7 as 0.000000.
func Num(v float64) string {
	switch {
	case math.IsNaN(v):
		return ""
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case math.Abs(v) >= 1e5:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 5, 64)
}

// Change describes going from a to b: the signed difference and, when a ≠ 0, the relative
// change in percent: Change(2, 1.5) = "-0.5 (-25.0%)".
func Change(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) {
		return ""
	}
	d := b - a
	s := signed(d)
	if a != 0 {
		s += " (" + signedPct(100*d/math.Abs(a)) + ")"
	}
	return s
}

func signed(v float64) string {
	if v > 0 {
		return "+" + Num(v)
	}
	return Num(v)
}

func signedPct(p float64) string {
	s := strconv.FormatFloat(p, 'f', 1, 64)
	if math.Abs(p) < 0.1 && p != 0 {
		s = strconv.FormatFloat(p, 'g', 2, 64)
	}
	if p > 0 {
		s = "+" + s
	}
	return s + "%"
}
