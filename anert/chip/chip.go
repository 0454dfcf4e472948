// Package chip knows the Apple silicon families the ANE kernels may meet: each family's largest
// tensor dimension the ANE compiler accepts and its fp16 peak, each figure with its source, and
// (on darwin) which chip this machine has.
//
// The per-dimension limit is ANEForge's (sbryngelson/ANEForge issue #181, PR #183; PR #57): every
// tensor dimension of a program — channels, spatial width, every axis of a reshape — must be at most
// 16384 on the A13–A15 ANE generation ("family 3": M1, M2) and at most 65536 from A16 on (M3, M4,
// M5). The checker (anert/mil/check) enforces it per chip; with no chip named it uses the strictest.
package chip

import (
	"fmt"
	"sort"
	"strings"
)

// Chip is one Apple silicon part as the ANE sees it.
type Chip struct {
	Name       string  // "m1", "m2 pro", "m3 ultra", …
	Family     string  // "m1" … "m5": the generation, which decides the rules
	ANEGen     string  // the phone SoC generation the ANE shares ("A14", …)
	MaxDim     int     // the largest tensor dimension the compiler accepts
	PeakTFLOPS float64 // fp16 peak for the utilisation figure
	PeakSource string  // where PeakTFLOPS comes from
	Detected   string  // what detection read (sysctl brand string), empty when named by hand
}

// MaxDimSource is where the per-dimension limits come from.
const MaxDimSource = "ANEForge issue #181 / PR #183 (M2 Pro, \"family 3\": max_tensor_dim 16384; A16 and later: 65536); ANEForge PR #57 (the 65536 per-axis limit)"

const (
	// MaxDimA13A15 is the limit on the A13–A15 ANE generation (M1, M2).
	MaxDimA13A15 = 16384
	// MaxDimA16 is the limit from A16 on (M3 and later).
	MaxDimA16 = 65536
)

// family is one generation: its limit and its published Neural Engine figure. Apple quotes
// "trillion operations per second"; up to M3 that count is fp16, from M4 on it is int8, which the
// ANE runs at the fp16 rate (it dequantizes to fp16: maderix, "Inside the M4 Apple Neural Engine,
// Part 2", measured ~19 fp16 TFLOPS on an M4 against the quoted 38 TOPS), so M4's figure is halved.
type family struct {
	gen    string
	maxDim int
	peak   float64 // fp16 TFLOPS of the base part (16 ANE cores)
	source string
}

var families = map[string]family{
	"m1": {"A14", MaxDimA13A15, 11, "Apple, M1 announcement (11 TOPS, fp16)"},
	"m2": {"A15", MaxDimA13A15, 15.8, "Apple, M2 announcement (15.8 TOPS, fp16)"},
	"m3": {"A17", MaxDimA16, 18, "Apple, M3 announcement (18 TOPS, fp16)"},
	"m4": {"A18", MaxDimA16, 19, "Apple, M4 announcement (38 TOPS counted at int8) halved to fp16; maderix measured ~19 TFLOPS fp16 (\"Inside the M4 Apple Neural Engine\", part 2)"},
	"m5": {"A19", MaxDimA16, 19, "no published fp16 figure; M4's used as a stand-in"},
}

// Strictest is the family whose rules are strictest (used when no chip is known).
const Strictest = "m1"

// Names lists the chips Lookup accepts.
func Names() []string {
	var n []string
	for f := range families {
		for _, v := range []string{"", " pro", " max", " ultra"} {
			n = append(n, f+v)
		}
	}
	sort.Strings(n)
	return n
}

// Lookup returns the chip called name: a family ("m1" … "m5") optionally followed by a variant
// ("pro", "max", "ultra"), in any case, with spaces, dashes or nothing between; "Apple M2 Pro"
// (the sysctl brand string) works too. An Ultra is two dies, so its peak is twice the base part's.
func Lookup(name string) (Chip, error) {
	s := strings.ToLower(strings.TrimSpace(name))
	s = strings.TrimPrefix(s, "apple ")
	s = strings.NewReplacer("-", " ", "_", " ").Replace(s)
	fam, variant := s, ""
	if len(s) >= 2 {
		fam, variant = s[:2], strings.TrimSpace(s[2:])
	}
	f, ok := families[fam]
	if !ok || (variant != "" && variant != "pro" && variant != "max" && variant != "ultra") {
		return Chip{}, fmt.Errorf("chip %q: want one of m1 … m5, optionally with pro, max or ultra (e.g. \"m2\", \"m3 max\")", name)
	}
	c := Chip{Name: fam, Family: fam, ANEGen: f.gen, MaxDim: f.maxDim, PeakTFLOPS: f.peak, PeakSource: f.source}
	if variant != "" {
		c.Name += " " + variant
	}
	if variant == "ultra" {
		c.PeakTFLOPS *= 2
		c.PeakSource += "; ×2 for the Ultra's two dies (32 ANE cores)"
	}
	return c, nil
}

// Default returns the chip of this machine when Detect finds one, else the strictest family,
// and says which.
func Default() (Chip, string) {
	if c, err := Detect(); err == nil {
		return c, "detected " + c.Name + " (" + c.Detected + ")"
	}
	c, _ := Lookup(Strictest)
	return c, "no chip named or detected: the strictest family's rules (" + Strictest + ", A13–A15 generation); name one with --chip"
}

// String is the chip's name and generation.
func (c Chip) String() string {
	if c.Name == "" {
		return "unknown chip"
	}
	return fmt.Sprintf("%s (%s-generation ANE, max tensor dim %d, %.1f TFLOPS fp16)", c.Name, c.ANEGen, c.MaxDim, c.PeakTFLOPS)
}
