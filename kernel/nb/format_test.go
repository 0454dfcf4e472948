package nb

import (
	"math"
	"testing"
)

func TestNum(t *testing.T) {
	cases := []struct {
		v    float64
		want string
	}{
		{3e-4, "0.0003"},
		{1e-7, "1e-07"},
		{2.5e-5, "2.5e-05"},
		{2.3456789, "2.3457"},
		{0.1, "0.1"},
		{42, "42"},
		{-3, "-3"},
		{1234567, "1234567"},
		{1234.5678, "1234.6"},
		{123456.7, "123457"},
		{0, "0"},
		{math.NaN(), ""},
		{math.Inf(1), "+Inf"},
		{math.Inf(-1), "-Inf"},
	}
	for _, c := range cases {
		if got := Num(c.v); got != c.want {
			t.Errorf("Num(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestChange(t *testing.T) {
	cases := []struct {
		a, b float64
		want string
	}{
		{2, 1.5, "-0.5 (-25.0%)"},
		{3e-4, 6e-4, "+0.0003 (+100.0%)"},
		{4, 4, "0 (0.0%)"},
		{0, 2, "+2"},
		{10000, 10001, "+1 (+0.01%)"},
		{math.NaN(), 1, ""},
	}
	for _, c := range cases {
		if got := Change(c.a, c.b); got != c.want {
			t.Errorf("Change(%v, %v) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}
