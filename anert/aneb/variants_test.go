package aneb

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/device/devicetest"
	"github.com/anelab/anelab/anert/mil"
)

// Every variant combination, through the kernels on the emulator, matches the CPU backend with
// the tolerances of TestMethodsMatchCPU; the split forward runs 9 kernels per layer and sequence.
func TestVariantsMatchCPU(t *testing.T) {
	nope := tiny()
	nope.Pos = "nope"
	for _, c := range []struct {
		name  string
		m     config.Model
		force map[string]string
		evals int
	}{
		{"split+cpu-rope", tiny(), map[string]string{SlotAttnFwd: Split, SlotAttnBwd2: CPURope}, 9},
		{"split", tiny(), map[string]string{SlotAttnFwd: Split}, 9},
		{"cpu-rope", tiny(), map[string]string{SlotAttnBwd2: CPURope}, 8},
		{"nope-split", nope, map[string]string{SlotAttnFwd: Split}, 9},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := NewWith(device.NewEmu(), c.m, Options{Force: c.force})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			for slot, v := range c.force {
				if !strings.Contains(b.Variants(), slot+"="+v+" (") {
					t.Errorf("Variants() = %q, want %s=%s", b.Variants(), slot, v)
				}
			}
			res, err := CompareCPU(b, 2, c.m.Seq-3, 1, rand.New(rand.NewPCG(3, 5)))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range res {
				tol := bwdTol
				if strings.HasSuffix(k.Method, "Forward") {
					tol = fwdTol
				}
				if !(k.Rel <= tol) {
					t.Errorf("%s %s: ‖ane − cpu‖/‖cpu‖ = %.3g > %g", k.Method, k.Output, k.Rel, tol)
				}
			}
			if b.EvalsPerLayer() != c.evals || b.Evals() != int64(2*c.evals) {
				t.Errorf("%d evaluations (%d per layer), want 2·%d", b.Evals(), b.EvalsPerLayer(), c.evals)
			}
		})
	}
}

// NewWith falls back per slot: a fused kernel that does not compile, whose first evaluation
// disagrees with the emulator, or that the gate refuses (never compiled), is replaced by its
// variant, and Choices says why; a kernel with no variant that disagrees fails NewWith.
func TestFallback(t *testing.T) {
	m := tiny()
	for _, c := range []struct {
		name               string
		reject, zero, gate []string
		want               []string // substrings of Variants()
		fail               string
	}{
		{"sdpaWoFwd gated", nil, nil, []string{mil.AttnFwd},
			[]string{"sdpaWoFwd=split (qkvFwd + sdpaWo: sdpaWoFwd breaks test-rule", "sdpaBwd2=fused"}, ""},
		{"all fused", nil, nil, nil, []string{"sdpaWoFwd=fused", "sdpaBwd2=fused"}, ""},
		{"sdpaBwd2 rejected", []string{mil.AttnBwd2}, nil, nil,
			[]string{"sdpaWoFwd=fused", "sdpaBwd2=cpu-rope (sdpaBwd2Raw: sdpaBwd2 failed to compile on faulty: _ANECompiler : ANECCompile() FAILED"}, ""},
		{"sdpaWoFwd silent zeros", nil, []string{mil.AttnFwd}, nil,
			[]string{"sdpaWoFwd=split (qkvFwd + sdpaWo: sdpaWoFwd disagrees with the emulator on its first evaluation", "sdpaBwd2=fused"}, ""},
		{"both", []string{mil.AttnFwd, mil.AttnBwd2}, nil, nil, []string{"sdpaWoFwd=split", "sdpaBwd2=cpu-rope"}, ""},
		{"variant rejected too", []string{mil.AttnBwd2, mil.AttnBwd2Raw}, nil, nil, nil, "neither the fused kernel"},
		{"no variant", nil, []string{mil.FFNFwd}, nil, nil, "ffnFused disagrees with the emulator"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dev := &devicetest.Faulty{Label: "faulty", Reject: c.reject, Zero: c.zero}
			gate := func(k *mil.Kernel) error {
				if slices.Contains(c.gate, k.Name) {
					return fmt.Errorf("breaks test-rule, so it is not compiled")
				}
				return nil
			}
			b, err := NewWith(dev, m, Options{Gate: gate})
			if c.fail != "" {
				if err == nil || !strings.Contains(err.Error(), c.fail) {
					t.Fatalf("err = %v, want %q", err, c.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			for _, w := range c.want {
				if !strings.Contains(b.Variants(), w) {
					t.Errorf("Variants() = %q lacks %q", b.Variants(), w)
				}
			}
			if want := len(c.reject) + len(c.zero) + len(c.gate); b.Fallbacks() != want {
				t.Errorf("Fallbacks() = %d, want %d", b.Fallbacks(), want)
			}
			for _, k := range c.gate {
				if slices.Contains(dev.Compiled(), k) {
					t.Errorf("%s was compiled although the gate refused it", k)
				}
			}
			// The backend that fell back still computes what the CPU does.
			res, err := CompareCPU(b, 1, m.Seq, 1, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range res {
				if !(k.Rel <= bwdTol) {
					t.Errorf("%s %s: rel %.3g", k.Method, k.Output, k.Rel)
				}
			}
		})
	}
}
