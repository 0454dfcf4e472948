package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run starts `anelab args…` and returns its combined output and exit code.
func runCode(t *testing.T, lab string, args ...string) (string, int) {
	t.Helper()
	out, err := anelab(lab, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("anelab %s: %v", strings.Join(args, " "), err)
	return "", -1
}

// Issue 10, defect 9: `-h` prints the flags and exits 0, for every command and for `data`.
func TestHelpExitsZero(t *testing.T) {
	lab := t.TempDir()
	for _, args := range [][]string{{"-h"}, {"train", "-h"}, {"train", "--help"}, {"run", "-h"}, {"results", "-h"},
		{"data", "-h"}, {"data", "text", "-h"}, {"sample", "-h"}, {"check", "-h"}} {
		out, code := runCode(t, lab, args...)
		if code != 0 || strings.Contains(out, "help requested") || strings.Contains(out, "unknown") {
			t.Errorf("anelab %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		if args[0] == "train" && !strings.Contains(out, "--dim") {
			t.Errorf("anelab %s does not list --dim:\n%s", strings.Join(args, " "), out)
		}
	}
}

// Defect 9: the README's order, flags after the arguments, works.
func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "a.txt")
	var b strings.Builder
	for i := 0; i < 200; i++ {
		b.WriteString("Once upon a time a cat sat on a mat and looked at the moon.\n\n")
	}
	os.WriteFile(text, []byte(b.String()), 0o644)
	out := filepath.Join(dir, "d")
	if got, code := runCode(t, dir, "data", "text", text, "--out", out, "--vocab", "300"); code != 0 {
		t.Fatalf("data text FILE --out DIR: exit %d\n%s", code, got)
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
		t.Errorf("no dataset in --out: %v", err)
	}
}

// Defect 10: sample and run flags are checked, not ignored.
func TestBadFlagsRefused(t *testing.T) {
	lab := t.TempDir()
	script := filepath.Join(testdata, "experiment.go")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sample", "x.ckpt", "--tokens", "-5"}, "--tokens -5"},
		{[]string{"sample", "--temp", "NaN", "x.ckpt"}, "--temp NaN"},
		{[]string{"sample", "--top-k", "-3", "x.ckpt"}, "--top-k -3"},
		{[]string{"run", script, "--budget", "-5s"}, "--budget -5s"},
		{[]string{"run", script, "--steps", "-1"}, "--steps -1"},
		{[]string{"train", "--beta1", "NaN"}, "optim.beta1 = NaN"},
		{[]string{"train", "--clip", "NaN", "--softcap", "Inf", "--min-lr-frac", "NaN"}, "optim.grad_clip = NaN"},
		{[]string{"train", "--ffn", "4611686018427387904"}, "model.ffn = 4611686018427387904"},
		{[]string{"train", "--steps", "-1"}, "train.steps = -1"},
		{[]string{"results", "extra"}, "unexpected argument"},
	} {
		out, code := runCode(t, lab, tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("anelab %s: exit %d, want an error naming %q\n%s", strings.Join(tc.args, " "), code, tc.want, out)
		}
	}
}

// --gemm-precision takes bf16 or fast16bf; anything else is refused before any work, naming the
// flag and the choices; -h documents it and its environment variable.
func TestTrainGEMMPrecisionFlag(t *testing.T) {
	out, code := runCode(t, t.TempDir(), "train", "--gemm-precision", "fp8", "--backend", "cuda")
	if code == 0 || !strings.Contains(out, `--gemm-precision = "fp8": must be "bf16"`) || !strings.Contains(out, "fast16bf") {
		t.Errorf("anelab train --gemm-precision fp8: exit %d\n%s", code, out)
	}
	out, _ = runCode(t, t.TempDir(), "train", "-h")
	if !strings.Contains(out, "-gemm-precision") || !strings.Contains(out, "ANELAB_CUDA_GEMM") {
		t.Errorf("anelab train -h does not document --gemm-precision:\n%s", out)
	}
}

// --attention takes flash or gemm; anything else is refused before any work, naming the flag.
func TestTrainAttentionFlag(t *testing.T) {
	out, code := runCode(t, t.TempDir(), "train", "--attention", "fused", "--backend", "cuda")
	if code == 0 || !strings.Contains(out, `--attention = "fused": must be "flash" or "gemm"`) {
		t.Errorf("anelab train --attention fused: exit %d\n%s", code, out)
	}
	out, _ = runCode(t, t.TempDir(), "train", "-h")
	if !strings.Contains(out, "-attention") || !strings.Contains(out, "ANELAB_CUDA_ATTENTION") {
		t.Errorf("anelab train -h does not document --attention:\n%s", out)
	}
}
