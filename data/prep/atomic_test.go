package prep

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anelab/anelab/data"
)

// snapshot reads every file of a folder.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			files[e.Name()] = "<folder>"
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

func sameFiles(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d", what, len(got), len(want))
	}
	for name, b := range want {
		if got[name] != b {
			t.Errorf("%s: %s changed (%d bytes, was %d)", what, name, len(got[name]), len(b))
		}
	}
}

// deadPID is the id of a process that has exited (and been reaped).
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot start `true`:", err)
	}
	return cmd.Process.Pid
}

// A preparation that fails half-way leaves the existing dataset as it was, and nothing beside it.
func TestFailedPreparationKeepsDataset(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "d")
	if err := PrepareDefault(dir, 300, 5_000, nil); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	boom := errors.New("disk full")
	err := build(dir, nil, func(tmp string) error {
		// a new tokenizer and a shard are written, then the preparation fails
		os.WriteFile(filepath.Join(tmp, data.BPEFile), []byte("{}"), 0o644)
		data.WriteShard(filepath.Join(tmp, data.TrainFile), []uint16{1, 2, 3})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("build = %v, want the fill's error", err)
	}
	sameFiles(t, "after a failed preparation", snapshot(t, dir), before)
	if _, err := data.Open(dir); err != nil {
		t.Errorf("the old dataset no longer opens: %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("beside the dataset: %v, want only d", entries)
	}
	// A successful preparation replaces it as a whole.
	if err := PrepareDefault(dir, 320, 5_000, nil); err != nil {
		t.Fatal(err)
	}
	if d, err := data.Open(dir); err != nil || d.Manifest.VocabSize == 300 {
		t.Errorf("after preparing again: %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("beside the new dataset: %v, want only d", entries)
	}
}

// What a killed preparer leaves is cleaned by the next one: its half-built folder is removed,
// and an old dataset it had moved aside is put back when the folder is missing. A running
// preparer's folder (this process's parent, say) is left alone.
func TestLeftoversCleaned(t *testing.T) {
	parent := t.TempDir()
	dead, alive := deadPID(t), os.Getppid()
	mk := func(name string, files ...string) {
		os.MkdirAll(filepath.Join(parent, name), 0o755)
		for _, f := range files {
			os.WriteFile(filepath.Join(parent, name, f), []byte(f), 0o644)
		}
	}
	mk(tmpName("d", dead), "train.bin")
	mk(tmpName("d", alive), "train.bin")
	mk(oldName("d", dead), "manifest.json")
	mk(tmpName("other", dead), "x") // another dataset's: not ours to clean
	var log bytes.Buffer
	cleanLeftovers(parent, "d", &log)
	entries, _ := os.ReadDir(parent)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{".d.tmp-" + strconv.Itoa(alive), ".other.tmp-" + strconv.Itoa(dead), "d"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("after cleaning: %v, want %v\n%s", names, want, log.String())
	}
	if b, _ := os.ReadFile(filepath.Join(parent, "d", "manifest.json")); string(b) != "manifest.json" {
		t.Errorf("the moved-aside dataset was not put back: %q", b)
	}
	if !strings.Contains(log.String(), "put back") || !strings.Contains(log.String(), "removed") {
		t.Errorf("log:\n%s", log.String())
	}
	// With the folder present, a moved-aside old dataset is removed instead.
	mk(oldName("d", dead), "manifest.json")
	cleanLeftovers(parent, "d", nil)
	if _, err := os.Stat(filepath.Join(parent, oldName("d", dead))); err == nil {
		t.Error("old dataset beside a present folder was not removed")
	}
}

// An --out that holds anything but a dataset is refused before anything is written: preparing
// replaces the whole folder.
func TestOutWithOtherFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"notes", func(dir string) {
			os.MkdirAll(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
			os.WriteFile(filepath.Join(dir, data.TrainFile), []byte("xx"), 0o644)
		}, "holds notes.txt, which a prepared dataset does not"},
		{"subfolder", func(dir string) { os.MkdirAll(filepath.Join(dir, "runs"), 0o755) }, "holds runs"},
		{"file", func(dir string) { os.WriteFile(dir, []byte("x"), 0o644) }, "is a file, not a folder"},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		tc.setup(dir)
		var before map[string]string
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			before = snapshot(t, dir)
		}
		err := PrepareText(dir, []string{writeText(t)}, 300, 0.5, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if before != nil {
			sameFiles(t, tc.name, snapshot(t, dir), before)
		}
	}
	// An empty folder, or one holding an earlier dataset, is fine; a link is followed.
	parent := t.TempDir()
	real := filepath.Join(parent, "real")
	os.Mkdir(real, 0o755)
	link := filepath.Join(parent, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	for i := 0; i < 2; i++ {
		if err := PrepareText(link, []string{writeText(t)}, 300+i, 0.5, nil); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if d, err := data.Open(real); err != nil || d.Manifest.Name != "text" {
		t.Errorf("the link's target: %v", err)
	}
}

func writeText(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "t.txt")
	os.WriteFile(p, []byte("One cat sat on a mat.\n\nA dog ran in the park.\n\nThe sun was hot today.\n"), 0o644)
	return p
}
