package probe

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/device/devicetest"
	"github.com/anelab/anelab/anert/mil"
)

func small() config.Model {
	m := config.Tiny().Model
	m.Seq, m.Layers = 32, 1
	return m
}

// On the emulator the probe runs the whole sequence — every kernel variant at two shapes, both
// backend policies against the CPU — says that it ran on the emulator, and writes Markdown and JSON
// that agree.
func TestProbeOnEmulator(t *testing.T) {
	m1, _ := chip.Lookup("m1")
	var log strings.Builder
	r, err := Run(Options{Model: small(), Device: device.NewEmu(), Chip: m1, ChipWhy: "test", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Emulated || !strings.Contains(r.Note, "No Neural Engine here") || r.Failures != 0 || r.CompileCount == 0 {
		t.Errorf("report: emulated %t, failures %d, compiles %d, note %q", r.Emulated, r.Failures, r.CompileCount, r.Note)
	}
	if len(r.Shapes) != 2 || r.Shapes[0].Seq != 16 || r.Shapes[1].Seq != 32 {
		t.Fatalf("shapes %+v", r.Shapes)
	}
	for _, sh := range r.Shapes {
		if len(sh.Kernels) != len(mil.AllNames()) {
			t.Errorf("%s: %d kernels, want %d", sh.Label, len(sh.Kernels), len(mil.AllNames()))
		}
		for i, k := range sh.Kernels {
			if k.Name != mil.AllNames()[i] || k.Status != "ok" || !(k.USPerEval > 0) || k.RelErr != -1 {
				t.Errorf("%s: %+v", sh.Label, k)
			}
		}
	}
	if len(r.Backends) != 3 {
		t.Fatalf("backends %+v", r.Backends)
	}
	// Reading fields and copying surface to surface computes exactly what copying whole outputs
	// through Go does.
	if r.Backends[2].WorstRel != r.Backends[0].WorstRel || r.Backends[2].Variants != r.Backends[0].Variants {
		t.Errorf("whole-output path %+v differs from %+v", r.Backends[2], r.Backends[0])
	}
	for _, b := range r.Backends {
		if b.Error != "" || !(b.WorstRel > 0 && b.WorstRel < 8e-3) || len(b.Errors) == 0 {
			t.Errorf("backend %+v", b)
		}
	}
	if !strings.Contains(r.Backends[1].Variants, "sdpaWoFwd=split") || !strings.Contains(r.Backends[1].Variants, "sdpaBwd2=cpu-rope") {
		t.Errorf("conservative policy ran %q", r.Backends[1].Variants)
	}
	dir := t.TempDir()
	md, js, err := r.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(js)
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Shapes) != 2 || back.Chip != "m1" {
		t.Errorf("JSON does not read back: %v %+v", err, back)
	}
	text, _ := os.ReadFile(md)
	for _, w := range []string{"## anelab ane probe", "- chip: m1", "- device: emu", "No Neural Engine here", "| sdpaBwd2Raw | variant of sdpaBwd2 | ok |",
		"conservative variants", "breaks matmul-inner-32"} {
		if !strings.Contains(string(text), w) {
			t.Errorf("Markdown lacks %q:\n%s", w, text)
		}
	}
	if !strings.Contains(log.String(), "shape configured") {
		t.Errorf("log: %s", log.String())
	}
}

// On a device the probe compares every kernel with the emulator: a rejected kernel is reported as
// compile-failed, one returning zeros as disagreeing (error 1), the others agree exactly; kernels
// breaking the chip's rules are skipped unless forced; the fused-first backend falls back.
func TestProbeReportsFailures(t *testing.T) {
	m4, _ := chip.Lookup("m4")
	dev := &devicetest.Faulty{Label: "ane (broken)", Reject: []string{mil.AttnBwd2}, Zero: []string{mil.AttnFwd}}
	r, err := Run(Options{Model: small(), Device: dev, Chip: m4, Force: true, Evals: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Emulated || r.Failures != 4 { // two kernels at two shapes
		t.Errorf("emulated %t, failures %d, want 4", r.Emulated, r.Failures)
	}
	for _, k := range r.Shapes[1].Kernels {
		switch k.Name {
		case mil.AttnBwd2:
			if k.Status != "compile-failed" || !strings.Contains(k.Error, "ANECCompile() FAILED") {
				t.Errorf("%+v", k)
			}
		case mil.AttnFwd:
			if k.Status != "disagrees" || k.RelErr != 1 {
				t.Errorf("%+v", k)
			}
		default:
			if k.Status != "ok" || k.RelErr != 0 {
				t.Errorf("%+v", k)
			}
		}
	}
	if v := r.Backends[0].Variants; !strings.Contains(v, "sdpaWoFwd=split") || !strings.Contains(v, "sdpaBwd2=cpu-rope") || r.Backends[0].Error != "" {
		t.Errorf("fused-first backend: %+v", r.Backends[0])
	}
	r, err = Run(Options{Model: small(), Device: &devicetest.Faulty{Label: "ane (broken)"}, Chip: m4, Evals: 1})
	if err != nil {
		t.Fatal(err)
	}
	if k := r.Shapes[0].Kernels[0]; k.Status != "skipped" || !strings.Contains(k.Error, "min-surface") {
		t.Errorf("a kernel breaking the chip's rules: %+v", k)
	}
}
