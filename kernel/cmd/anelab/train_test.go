package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/ckpt"
	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/data/prep"
)

// trainData prepares a small synthetic-stories dataset for `anelab train` tests.
func trainData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	if err := prep.PrepareDefault(dir, 300, 20_000, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tinyTrain is `anelab train` on a tiny model for a long wall-clock budget, printing every update.
func tinyTrain(dataDir, out string, extra ...string) []string {
	return append([]string{"train", "--data", dataDir, "--out", out, "--dim", "32", "--layers", "1", "--heads", "2",
		"--ffn", "64", "--seq", "16", "--vocab", "300", "--batch", "2", "--threads", "1", "--eval-windows", "4",
		"--budget", "10m", "--budget-kind", "wall", "--log-every", "1"}, extra...)
}

// startUntil starts cmd and waits until its output matches re (or it ends, or a minute passes).
func startUntil(t *testing.T, cmd *exec.Cmd, re *regexp.Regexp) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !re.MatchString(out.String()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no %q within a minute:\n%s", re, out.String())
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func exitStatus(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// Issue 10, defect 4: Ctrl-C (SIGINT) or SIGTERM during `anelab train` stops after the update in
// progress and saves the checkpoint, the curve and a result with status "interrupted" (exit 130),
// printing the command that continues it, which works; a second signal quits at once.
func TestTrainInterrupted(t *testing.T) {
	dataDir := trainData(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		out := filepath.Join(t.TempDir(), "run")
		cmd := anelab("", tinyTrain(dataDir, out)...)
		buf := startUntil(t, cmd, regexp.MustCompile(`step +5 \|`))
		cmd.Process.Signal(sig)
		code := exitStatus(cmd.Wait())
		log := buf.String()
		if code != 130 {
			t.Fatalf("%v: exit %d, want 130\n%s", sig, code, log)
		}
		var res struct {
			Status string `json:"status"`
			Steps  int    `json:"steps"`
			Error  string `json:"error"`
		}
		b, err := os.ReadFile(filepath.Join(out, "result.json"))
		if err != nil || json.Unmarshal(b, &res) != nil {
			t.Fatalf("%v: result.json: %v\n%s", sig, err, log)
		}
		curve, _ := os.ReadFile(filepath.Join(out, "curve.tsv"))
		rows := strings.Count(string(curve), "\n") - 1
		if res.Status != "interrupted" || res.Steps < 5 || rows != res.Steps || !strings.Contains(res.Error, "interrupt") {
			t.Errorf("%v: result %+v with %d curve rows, want status interrupted, ≥ 5 steps, one row each", sig, res, rows)
		}
		if _, err := os.Stat(filepath.Join(out, "model.ckpt")); err != nil {
			t.Errorf("%v: no checkpoint: %v", sig, err)
		}
		m := regexp.MustCompile(`continue with\n  (anelab train --resume \S+ .*)\n`).FindStringSubmatch(log)
		if m == nil {
			t.Fatalf("%v: no resume line:\n%s", sig, log)
		}
		if sig != syscall.SIGINT {
			continue
		}
		// The printed line continues the run (two more updates: later flags win).
		args := append(strings.Fields(m[1])[1:], "--steps", "2")
		again := mustRun(t, "", args...)
		if !regexp.MustCompile(`resumed \S+ at update ` + strconv.Itoa(res.Steps)).MatchString(again) {
			t.Errorf("the resume line did not continue from update %d:\n%s", res.Steps, again)
		}
	}

	// Two signals: the second quits at once, without saving.
	out := filepath.Join(t.TempDir(), "run")
	cmd := anelab("", tinyTrain(dataDir, out)...)
	buf := startUntil(t, cmd, regexp.MustCompile(`step +3 \|`))
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Process.Signal(syscall.SIGTERM)
	code := exitStatus(cmd.Wait())
	if log := buf.String(); code != 130 || !strings.Contains(log, "quitting without saving") || strings.Contains(log, "continue with") {
		t.Errorf("two signals: exit %d, want 130 without saving\n%s", code, log)
	}
}

// Issue 10, defect 8: `anelab train --resume` on a dataset other than the checkpoint's (other
// shards, or another tokenizer) is refused, naming what differs, unless --allow-data-change; on
// the same data it resumes without a word, and a checkpoint from before the checksums were
// recorded still loads, with a note.
func TestResumeOnOtherDataRefused(t *testing.T) {
	d1 := trainData(t)
	first := filepath.Join(t.TempDir(), "first")
	mustRun(t, "", tinyTrain(d1, first, "--steps", "3")...)
	ck := filepath.Join(first, "model.ckpt")

	// d2: the same tokenizer, other training tokens (the last 100 dropped).
	d2 := filepath.Join(t.TempDir(), "d2")
	os.MkdirAll(d2, 0o755)
	for _, f := range []string{data.BPEFile, data.ValFile} {
		b, _ := os.ReadFile(filepath.Join(d1, f))
		os.WriteFile(filepath.Join(d2, f), b, 0o644)
	}
	ds, err := data.Open(d1)
	if err != nil {
		t.Fatal(err)
	}
	m := ds.Manifest
	sum, err := data.WriteShard(filepath.Join(d2, data.TrainFile), ds.Train[:len(ds.Train)-100])
	if err != nil {
		t.Fatal(err)
	}
	m.Train.Tokens, m.Train.SHA256, m.Seen = int64(len(ds.Train)-100), sum, nil
	if err := data.WriteManifest(d2, &m); err != nil {
		t.Fatal(err)
	}
	// d3: another tokenizer.
	d3 := filepath.Join(t.TempDir(), "d3")
	if err := prep.PrepareDefault(d3, 280, 20_000, nil); err != nil {
		t.Fatal(err)
	}

	resume := func(dataDir string, extra ...string) (string, int) {
		return runCode(t, "", tinyTrain(dataDir, filepath.Join(t.TempDir(), "next"), append([]string{"--resume", ck, "--steps", "1"}, extra...)...)...)
	}
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"other shards", d2, []string{"trained on other data", "train split (sha256", "--allow-data-change", "mix two corpora"}},
		{"other tokenizer", d3, []string{"trained on other data", "tokenizer (sha256", "--allow-data-change", "token ids"}},
	} {
		out, code := resume(tc.data)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (refused)\n%s", tc.name, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the refusal does not say %q:\n%s", tc.name, w, out)
			}
		}
		if strings.Contains(out, "step ") {
			t.Errorf("%s: trained before refusing:\n%s", tc.name, out)
		}
		out, code = resume(tc.data, "--allow-data-change")
		if code != 0 || !strings.Contains(out, "going on (--allow-data-change)") || !strings.Contains(out, "resumed ") {
			t.Errorf("%s with --allow-data-change: exit %d\n%s", tc.name, code, out)
		}
	}
	// The same data: no word about it.
	if out, code := resume(d1); code != 0 || strings.Contains(out, "other data") || strings.Contains(out, "checksum") {
		t.Errorf("same data: exit %d\n%s", code, out)
	}
	// A checkpoint written before the checksums (and the tokenizer) were recorded loads, with a note.
	c, err := ckpt.Load(ck)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"data_train_sha256", "data_val_sha256", "tokenizer_sha256", "tokenizer", "tokenizer_kind"} {
		if k != "tokenizer" && k != "tokenizer_kind" && c.Meta[k] == "" {
			t.Errorf("the checkpoint does not record %s", k)
		}
		delete(c.Meta, k)
	}
	if err := ckpt.Save(ck, c); err != nil {
		t.Fatal(err)
	}
	if out, code := resume(d2); code != 0 || !strings.Contains(out, "cannot check that the checkpoint was trained on") {
		t.Errorf("old checkpoint: exit %d\n%s", code, out)
	}
}

// Issue 10, defect 6: `anelab train` with a model far beyond the machine's memory is refused up
// front with what it needs (it ended in Go's "fatal error: runtime: out of memory" and a page of
// stack).
func TestOversizedTrainRefused(t *testing.T) {
	out, code := runCode(t, "", "train", "--data", trainData(t), "--out", t.TempDir(), "--dim", "16384", "--layers", "32",
		"--heads", "128", "--ffn", "65536", "--vocab", "300", "--steps", "1")
	if code != 1 || !strings.Contains(out, "GiB to train") || !strings.Contains(out, "available") || strings.Contains(out, "fatal error") {
		t.Errorf("exit %d, want 1 naming the memory needed:\n%s", code, tail(out))
	}
}

// Issue 10, defect 10: `anelab sample` on a checkpoint with a NaN weight (a diverged model) is
// refused by name; it printed ”” and exited 0.
func TestSampleRefusesNaNCheckpoint(t *testing.T) {
	out := t.TempDir()
	mustRun(t, "", tinyTrain(trainData(t), out, "--steps", "2")...)
	path := filepath.Join(out, "model.ckpt")
	if o := mustRun(t, "", "sample", path, "--tokens", "5"); o == "" {
		t.Fatal("the healthy checkpoint sampled nothing")
	}
	c, err := ckpt.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := c.WithPrefix(ckpt.ModelPrefix)[0]
	w.Data[0] = float32(math.NaN())
	if err := ckpt.Save(path, c); err != nil {
		t.Fatal(err)
	}
	o, code := runCode(t, "", "sample", path, "--tokens", "5")
	if code != 1 || !strings.Contains(o, "is not finite") || !strings.Contains(o, "diverged") {
		t.Errorf("NaN checkpoint: exit %d\n%s", code, o)
	}
}
