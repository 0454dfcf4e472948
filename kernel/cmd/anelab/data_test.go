package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/anelab/anelab/data"
)

// readFiles reads every file of a folder.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

// Issue 10, defect 3: `anelab data default --out D` killed with SIGKILL while it prepares a new
// dataset leaves the dataset in D as it was (it used to lose its manifest and get the new
// tokenizer); the next preparation of D removes what the killed one left and replaces D whole;
// Ctrl-C stops one, removing its half-built copy; an --out holding other files is refused.
func TestKilledPreparationKeepsDataset(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "d")
	mustRun(t, "", "data", "default", "--out", dir, "--vocab", "300", "--tokens", "5000")
	before := readFiles(t, dir)

	// A bigger preparation (different settings, so it is not skipped as done), killed once its new
	// tokenizer is written and it is encoding the stories.
	cmd := anelab("", "data", "default", "--out", dir, "--vocab", "400", "--tokens", "3000000")
	out := startUntil(t, cmd, regexp.MustCompile(`tokenizer: \d+ tokens`)) // written, and now encoding
	tmp := filepath.Join(parent, ".d.tmp-"+strconv.Itoa(cmd.Process.Pid))
	if _, err := os.Stat(filepath.Join(tmp, data.BPEFile)); err != nil {
		t.Errorf("the new tokenizer is not in %s: %v", tmp, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if strings.Contains(out.String(), "done in") {
		t.Fatalf("the preparation finished before it was killed:\n%s", out.String())
	}
	after := readFiles(t, dir)
	if len(after) != len(before) {
		t.Errorf("the dataset holds %d files after the kill, %d before", len(after), len(before))
	}
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s changed under the killed preparation", name)
		}
	}
	if d, err := data.Open(dir); err != nil || d.Manifest.VocabSize != 300 {
		t.Errorf("the dataset after the kill: %v", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("the killed preparer's folder %s: %v (expected it left behind)", tmp, err)
	}

	// The next preparation cleans up after the killed one and replaces the dataset as a whole.
	text := filepath.Join(t.TempDir(), "t.txt")
	os.WriteFile(text, []byte("One cat sat on a mat.\n\nA dog ran in the park.\n\nThe sun was hot today.\n"), 0o644)
	log := mustRun(t, "", "data", "text", text, "--out", dir, "--vocab", "280", "--val", "0.4")
	if !strings.Contains(log, "removed "+tmp) {
		t.Errorf("the leftover was not reported removed:\n%s", log)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("beside the dataset after preparing again: %v", entries)
	}
	if d, err := data.Open(dir); err != nil || d.Manifest.Name != "text" {
		t.Errorf("the new dataset: %v", err)
	}

	// Ctrl-C stops a preparation at once, removes its half-built folder and leaves D as it was.
	before = readFiles(t, dir)
	cmd = anelab("", "data", "default", "--out", dir, "--vocab", "400", "--tokens", "3000000")
	out = startUntil(t, cmd, regexp.MustCompile(`tokenizer: \d+ tokens`))
	cmd.Process.Signal(syscall.SIGINT)
	if code := exitStatus(cmd.Wait()); code != 130 || !strings.Contains(out.String(), "removed the half-built") {
		t.Errorf("Ctrl-C: exit %d, want 130 and the half-built folder removed\n%s", code, out.String())
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("beside the dataset after Ctrl-C: %v", entries)
	}
	after = readFiles(t, dir)
	for name, b := range before {
		if after[name] != b {
			t.Errorf("Ctrl-C: %s changed", name)
		}
	}

	// A folder holding other files is refused, and left as it was.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	out2, code := runCode(t, "", "data", "default", "--out", dir, "--vocab", "300", "--tokens", "5000")
	if code != 1 || !strings.Contains(out2, "holds notes.txt") {
		t.Errorf("--out with other files: exit %d\n%s", code, out2)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "mine" {
		t.Error("notes.txt was lost")
	}
}
