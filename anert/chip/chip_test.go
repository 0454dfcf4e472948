package chip

import (
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, c := range []struct {
		in     string
		name   string
		maxDim int
		peak   float64
	}{
		{"m1", "m1", 16384, 11},
		{"M2", "m2", 16384, 15.8},
		{"Apple M2 Pro", "m2 pro", 16384, 15.8},
		{"m1-ultra", "m1 ultra", 16384, 22},
		{"m3max", "m3 max", 65536, 18},
		{"m4", "m4", 65536, 19},
		{"Apple M5", "m5", 65536, 19},
	} {
		got, err := Lookup(c.in)
		if err != nil {
			t.Errorf("Lookup(%q): %v", c.in, err)
			continue
		}
		if got.Name != c.name || got.MaxDim != c.maxDim || got.PeakTFLOPS != c.peak || got.PeakSource == "" {
			t.Errorf("Lookup(%q) = %+v, want %s, max dim %d, peak %g", c.in, got, c.name, c.maxDim, c.peak)
		}
	}
	for _, bad := range []string{"", "m9", "a16", "m2 mega", "Intel(R) Core(TM) i7"} {
		if _, err := Lookup(bad); err == nil || !strings.Contains(err.Error(), "m1 … m5") {
			t.Errorf("Lookup(%q): err = %v, want the list of chips", bad, err)
		}
	}
	for _, n := range Names() {
		if _, err := Lookup(n); err != nil {
			t.Errorf("Names() lists %q but Lookup refuses it: %v", n, err)
		}
	}
}

// With no chip detected the default is the strictest family, and it says so.
func TestDefault(t *testing.T) {
	c, why := Default()
	if _, err := Detect(); err != nil {
		if c.MaxDim != MaxDimA13A15 || !strings.Contains(why, "strictest") {
			t.Errorf("Default() = %v, %q: want the strictest family", c, why)
		}
	} else if !strings.Contains(why, "detected") {
		t.Errorf("Default() = %v, %q", c, why)
	}
}
