package train

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/internal/num"
)

// rejecting is a Neural Engine stand-in (the emulator under another name, so the backend verifies
// its kernels and the checker's errors apply) whose compiler rejects one named kernel.
type rejecting struct {
	device.Emu
	kernel string
}

func (r *rejecting) Name() string        { return "ane (rejects " + r.kernel + ")" }
func (r *rejecting) PeakTFLOPS() float64 { return 19 }
func (r *rejecting) Compile(k *mil.Kernel) (device.Program, error) {
	if k.Name == r.kernel {
		return nil, fmt.Errorf("_ANECompiler : ANECCompile() FAILED (test device rejects %s)", k.Name)
	}
	return r.Emu.Compile(k)
}

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
			res, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t), Out: &out, Device: &rejecting{kernel: c.kernel}})
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
