package train

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/device/devicetest"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/internal/num"
)

// A device that refuses to compile a fused kernel: training proceeds on that kernel's
// conservative variant, and the log, the summary and the result (hence the ledger row) say which
// variant ran and why.
func TestTrainingFallsBackToAVariant(t *testing.T) {
	for _, c := range []struct{ kernel, variants, why string }{
		{mil.AttnBwd2, "sdpaWoFwd=fused sdpaBwd2=cpu-rope", "sdpaBwd2: sdpaBwd2 failed to compile on ane (rejects sdpaBwd2): _ANECompiler : ANECCompile() FAILED"},
		{mil.AttnFwd, "sdpaWoFwd=split sdpaBwd2=fused", "sdpaWoFwd: sdpaWoFwd failed to compile"},
	} {
		t.Run(c.kernel, func(t *testing.T) {
			cfg := tinyConfig()
			// The smallest shape that passes every ANE rule (the checker applies on a non-emulator).
			cfg.Model.Dim, cfg.Model.Heads, cfg.Model.FFN, cfg.Model.Seq, cfg.Model.Layers = 256, 4, 256, 128, 1
			cfg.Backend, cfg.Device = "ane", "ane"
			cfg.Train.Batch, cfg.Train.Steps, cfg.Train.EvalWindows = 1, 2, 1
			var out bytes.Buffer
			res, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t), Out: &out, Device: &devicetest.Faulty{Label: "ane (rejects " + c.kernel + ")", Peak: 19, Reject: []string{c.kernel}}})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if res.Status != StatusOK || res.Steps != 2 || !num.Finite(res.ValLoss) {
				t.Errorf("run: %+v", res)
			}
			if res.KernelVariants != c.variants || !strings.Contains(res.KernelFallback, c.why) {
				t.Errorf("result: kernel_variants %q, kernel_fallback %q; want %q, %q", res.KernelVariants, res.KernelFallback, c.variants, c.why)
			}
			if !strings.Contains(out.String(), "kernel variant: "+c.kernel+" runs as") {
				t.Errorf("the log does not say which variant runs:\n%s", out.String())
			}
			var sum bytes.Buffer
			WriteSummary(&sum, res, 0)
			for _, w := range []string{"kernel_variants:  " + c.variants, "kernel_fallback:  " + c.why, `"kernel_variants":"` + c.variants + `"`} {
				if !strings.Contains(sum.String(), w) {
					t.Errorf("summary lacks %q:\n%s", w, sum.String())
				}
			}
		})
	}
}

// The checker judges the variant the backend selects: on an M1 the fused RoPE kernels at head dim
// 256, seq 256 break the per-dimension limit (a 32768-long RoPE axis > 16384) while their variants
// pass, so they are never compiled, the variants run, and the result, summary and log say so with
// the rule; on an M4 the same config runs the fused kernels.
func TestCheckSelectsVariants(t *testing.T) {
	for _, c := range []struct {
		chip, variants, why string
		fusedCompiled       bool
	}{
		{"m1", "sdpaWoFwd=split sdpaBwd2=cpu-rope", "sdpaWoFwd: sdpaWoFwd breaks max-dim", false},
		{"m4", "sdpaWoFwd=fused sdpaBwd2=fused", "", true},
	} {
		t.Run(c.chip, func(t *testing.T) {
			ch, err := chip.Lookup(c.chip)
			if err != nil {
				t.Fatal(err)
			}
			cfg := tinyConfig()
			cfg.Model.Dim, cfg.Model.Heads, cfg.Model.FFN, cfg.Model.Seq, cfg.Model.Layers = 256, 1, 256, 256, 1
			cfg.Backend, cfg.Device = "ane", "ane"
			cfg.Train.Batch, cfg.Train.Steps, cfg.Train.EvalWindows = 1, 2, 1
			dev := &devicetest.Faulty{Label: "ane (" + c.chip + " rules)", Rules: ch}
			var out bytes.Buffer
			res, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t), Out: &out, Device: dev})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if res.Status != StatusOK || res.Steps != 2 || !num.Finite(res.ValLoss) {
				t.Errorf("run: %+v", res)
			}
			if res.KernelVariants != c.variants || !strings.Contains(res.KernelFallback, c.why) {
				t.Errorf("result: kernel_variants %q, kernel_fallback %q; want %q, %q", res.KernelVariants, res.KernelFallback, c.variants, c.why)
			}
			if c.why != "" && (!strings.Contains(res.KernelFallback, "32768 > 16384") || !strings.Contains(res.KernelFallback, "not compiled")) {
				t.Errorf("kernel_fallback %q does not give the finding", res.KernelFallback)
			}
			compiled := dev.Compiled()
			for _, k := range []string{mil.AttnFwd, mil.AttnBwd2} {
				if slices.Contains(compiled, k) != c.fusedCompiled {
					t.Errorf("%s compiled: %t, want %t (compiled: %v)", k, !c.fusedCompiled, c.fusedCompiled, compiled)
				}
			}
			want := []string{"kernel variants: " + c.variants, "device traffic per step (batch 1 × accum 1 sequences)"}
			if c.why != "" {
				want = append(want, "kernel variant: sdpaWoFwd runs as split (qkvFwd + sdpaWo) because sdpaWoFwd breaks max-dim")
			}
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the log lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
