package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// `anelab ane probe` runs end to end (on the emulator off Apple silicon, saying so) and writes the
// Markdown and JSON report; a bad subcommand gets the usage.
func TestANEProbeCommand(t *testing.T) {
	if runtime.GOOS == "darwin" && runtime.GOARCH == "arm64" {
		t.Skip("on Apple silicon the probe uses the Neural Engine: see anert/device/ane TestProbe")
	}
	dir := t.TempDir()
	var out bytes.Buffer
	err := runANE(&out, []string{"probe", "--out", dir, "--dim", "32", "--heads", "4", "--ffn", "64", "--seq", "32", "--layers", "1", "--chip", "m2"})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, w := range []string{"no Neural Engine here: running the same sequence on the fp16 emulator", "- chip: m2 — named with --chip",
		"| sdpaWoFwd | fused | ok |", "| qkvFwd | variant of sdpaWoFwd | ok |", "report: " + filepath.Join(dir, "ane-probe.md")} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	for _, f := range []string{"ane-probe.md", "ane-probe.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := runANE(&out, []string{"prob"}); err == nil || !strings.Contains(err.Error(), "usage: anelab ane probe") {
		t.Errorf("bad subcommand: %v", err)
	}
}
