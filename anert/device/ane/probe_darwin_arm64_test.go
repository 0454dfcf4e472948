//go:build darwin && arm64

package ane

import (
	"os"
	"testing"

	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/probe"
)

// The probe on this Mac's Neural Engine, at the default shape: every kernel the chip's rules allow
// compiles and agrees with the emulator, and both backend policies match the CPU. The report is
// written to $ANELAB_PROBE_OUT (default: the test's temporary folder).
func TestProbe(t *testing.T) {
	d := openANE(t)
	ch, why := chip.Default()
	r, err := probe.Run(probe.Options{Model: config.Default().Model, Device: d, Chip: ch, ChipWhy: why, Evals: 5})
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("ANELAB_PROBE_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	md, _, err := r.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %s\n%s", md, r.Markdown())
	if r.Emulated {
		t.Fatalf("the probe ran on the emulator although the ANE opened")
	}
	for _, sh := range r.Shapes {
		for _, k := range sh.Kernels {
			if k.Status != "ok" && k.Status != "skipped" {
				t.Errorf("%s %s: %s: %s", sh.Label, k.Name, k.Status, k.Error)
			}
		}
	}
	for _, b := range r.Backends {
		if b.Error != "" || !(b.WorstRel < 2e-2) {
			t.Errorf("backend %s: %s (worst %.3g %s)", b.Policy, b.Error, b.WorstRel, b.Worst)
		}
	}
}
