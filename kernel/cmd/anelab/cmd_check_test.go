package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `anelab check` names each broken rule with its source and what to change, fails on errors,
// and passes a valid config (flags or --config).
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	gqaFile := filepath.Join(dir, "gqa.json")
	if err := os.WriteFile(gqaFile, []byte(`{"model": {"dim": 256, "heads": 4, "kv_heads": 2, "ffn": 768, "seq": 256,
		"layers": 2, "vocab": 512, "pos": "rope", "rope_theta": 10000, "norm_eps": 1e-5, "init_std": 0.02}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	valid := []string{"--dim", "256", "--heads", "4", "--ffn", "768", "--seq", "256"}
	cases := []struct {
		name string
		args []string
		fail bool
		want []string // rule ids, sources and fixes that must be printed
	}{
		{"GQA", append(valid, "--kv-heads", "2"), true,
			[]string{"error [gqa] config: kv_heads 2 ≠ heads 4", "source:  fiale-plus README", "change:  set kv_heads = 0"}},
		{"GQA from --config", []string{"--config", gqaFile}, true, []string{"error [gqa]", "fiale-plus README"}},
		{"inner dim 784", []string{"--dim", "256", "--heads", "4", "--ffn", "784", "--seq", "256"}, true,
			[]string{"error [matmul-inner-32] kernel", "contracts over 784", "source:  imperatormk ANE_TRAINING.md",
				"change:  make head dim (dim/heads), dim, ffn and seq multiples of 32"}},
		{"head dim 16", []string{"--dim", "256", "--heads", "16", "--ffn", "768", "--seq", "256"}, true,
			[]string{"error [matmul-inner-32]", "contracts over 16"}},
		// The original's shape at seq 1024: sdpaBwd1 carries 768 + 2·12·1024 = 25344 channels and has
		// no variant, so M1/M2 refuse it, naming the rule and its source; M3 on accept it.
		{"the original at seq 1024 on m1: the per-dimension limit", []string{"--chip", "m1", "--dim", "768", "--heads", "12", "--ffn", "2048", "--seq", "1024"}, true,
			[]string{"chip: m1", "error [max-dim] kernel sdpaBwd1", "25344 > 16384", "source:  ANEForge issue #181 / PR #183", "refuses this config on m1"}},
		{"the original at seq 1024 on m4", []string{"--chip", "m4", "--dim", "768", "--heads", "12", "--ffn", "2048", "--seq", "1024"}, false,
			[]string{"chip: m4", "accepts this config on m4"}},
		// dim 256 at seq 1024: only the fused RoPE kernels break the limit on m1 (a 32768-long RoPE
		// axis); their variants pass, so the config is accepted and the variants named.
		{"seq 1024 on m1: variants", []string{"--chip", "m1", "--dim", "256", "--heads", "4", "--ffn", "768", "--seq", "1024"}, false,
			[]string{"warning [variant] kernel sdpaWoFwd: sdpaWoFwd breaks max-dim", "32768 > 16384", "ANEForge issue #181",
				"runs its split variant (qkvFwd + sdpaWo) instead", "warning [variant] kernel sdpaBwd2",
				"kernel variants on m1: sdpaWoFwd=split sdpaBwd2=cpu-rope", "accepts this config on m1"}},
		{"seq 1024 on m4: fused", []string{"--chip", "m4", "--dim", "256", "--heads", "4", "--ffn", "768", "--seq", "1024"}, false,
			[]string{"chip: m4", "accepts this config on m4"}},
		{"seq past the SRAM cliff", []string{"--chip", "m4", "--dim", "768", "--heads", "12", "--ffn", "2048", "--seq", "1024"}, false,
			[]string{"warning [sram-32mb]", "working set", "source:  Orion paper Table 1", "change:  lower seq",
				"warning [seq-1024-wall]", "PASS with"}},
		{"valid", valid, false, []string{"PASS: the config passes every ANE rule"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runCheck(&out, c.args)
			if (err != nil) != c.fail {
				t.Errorf("error = %v, want failure %t\n%s", err, c.fail, out.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.HasSuffix(c.name, "fused") && strings.Contains(out.String(), "[variant]") {
				t.Errorf("a variant selected where the fused kernels pass:\n%s", out.String())
			}
			if c.fail && !strings.Contains(out.String(), "FAIL:") {
				t.Errorf("no FAIL line:\n%s", out.String())
			}
		})
	}
}

// The built command exits non-zero on a broken config and zero on a valid one.
func TestCheckExitStatus(t *testing.T) {
	lab := t.TempDir()
	out, err := anelab(lab, "check", "--dim", "256", "--heads", "4", "--ffn", "784", "--seq", "256").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "matmul-inner-32") {
		t.Errorf("broken config: %v\n%s", err, out)
	}
	out, err = anelab(lab, "check", "--dim", "256", "--heads", "4", "--ffn", "768", "--seq", "256").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Errorf("valid config: %v\n%s", err, out)
	}
	var buf bytes.Buffer
	if err := runCheck(&buf, []string{"--chip", "m9"}); err == nil || !strings.Contains(err.Error(), "--chip") || !strings.Contains(err.Error(), "m1 … m5") {
		t.Errorf("--chip m9: err = %v, want one naming the flag and the chips", err)
	}
}
