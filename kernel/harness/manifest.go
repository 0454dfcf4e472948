package harness

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/ledger"
)

// Manifest is what a run needs to be reproduced: which code, which script, which data, where.
type Manifest struct {
	RunID      string    `json:"run_id"`
	Commit     string    `json:"commit"` // git commit of the project ("-dirty" when the tree had changes)
	Script     string    `json:"script"`
	ScriptHash string    `json:"script_hash"`
	Index      int       `json:"index"`
	Lineage    string    `json:"lineage"`
	Parent     string    `json:"parent,omitempty"`
	Resume     string    `json:"resume,omitempty"`
	DataDir    string    `json:"data_dir"`
	DataSum    string    `json:"data_checksum"`
	Device     string    `json:"device"`
	Seed       int64     `json:"seed"`
	GoVersion  string    `json:"go_version"`
	Host       string    `json:"host"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}

// projectCommit is the project's git commit, asked once ("unknown" outside a work tree).
func (h *Harness) projectCommit() string {
	h.once.Do(func() {
		h.commit = h.opt.Commit
		if h.commit != "" {
			return
		}
		b, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
		if err != nil {
			h.commit = "unknown"
			return
		}
		h.commit = strings.TrimSpace(string(b))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			h.commit += "-dirty"
		}
	})
	return h.commit
}

// deviceString names where the run trained: backend/device, OS/arch and CPU.
func deviceString(cfg config.Config, res train.Result) string {
	be, dev := res.Backend, res.Device
	if be == "" {
		be, dev = cfg.Backend, cfg.Device
	}
	s := be
	if be != "cpu" && dev != "" {
		s += "/" + dev
	}
	if res.KernelFallback != "" { // a conservative kernel variant ran (anert/aneb variants.go)
		s += " [" + res.KernelVariants + "]"
	}
	s += " " + runtime.GOOS + "/" + runtime.GOARCH
	if c := cpuModel(); c != "" {
		s += " (" + c + ")"
	}
	return s
}

func cpuModel() string {
	switch runtime.GOOS {
	case "linux":
		f, err := os.Open("/proc/cpuinfo")
		if err != nil {
			return ""
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	case "darwin":
		if b, err := exec.Command("sysctl", "-n", "machdep.cpu.brand_string").Output(); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// dataFingerprint identifies the prepared data cheaply: sha256 over the content of its *.json
// manifests and the name and size of every other file in the folder. Shards are never read.
func dataFingerprint(dir string) string {
	if dir == "" {
		return ""
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "missing"
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	h := sha256.New()
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(h, "%s\t%d\n", e.Name(), info.Size())
		if strings.HasSuffix(e.Name(), ".json") {
			if f, err := os.Open(filepath.Join(dir, e.Name())); err == nil {
				io.Copy(h, f)
				f.Close()
			}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// writeRunFiles leaves result.json, curve.tsv and manifest.json in the run folder.
func (h *Harness) writeRunFiles(dir string, r ledger.Run, res train.Result, curve []train.Point, job Job,
	cfg config.Config, resume string) error {
	result := struct {
		train.Result
		Run      string  `json:"run_id"`
		RunState string  `json:"run_status"` // ok, crash, diverged, invalid, timeout
		Decision string  `json:"decision,omitempty"`
		PrevBest float64 `json:"prev_best,omitempty"`
		PrevHead string  `json:"prev_head,omitempty"`
		Failure  string  `json:"failure,omitempty"`
	}{sanitizeResult(res), r.ID, r.Status, r.Decision, r.PrevBest, r.PrevHead, r.Error}
	if err := WriteJSON(filepath.Join(dir, "result.json"), result); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("step\tloss\tlr\ttime_s\ttokens\n")
	for _, p := range curve {
		fmt.Fprintf(&b, "%d\t%.6f\t%.6g\t%.3f\t%d\n", p.Step, clean(p.Loss), p.LR, p.TimeS, p.Tokens)
	}
	if err := os.WriteFile(filepath.Join(dir, "curve.tsv"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	host, _ := os.Hostname()
	return WriteJSON(filepath.Join(dir, "manifest.json"), Manifest{RunID: r.ID, Commit: r.Commit, Script: job.Script,
		ScriptHash: job.ScriptHash, Index: job.Index, Lineage: r.Lineage, Parent: r.Parent, Resume: resume,
		DataDir: h.opt.DataDir, DataSum: r.DataSum, Device: r.Device, Seed: cfg.Train.Seed,
		GoVersion: runtime.Version(), Host: host, Started: r.Started.UTC(), Finished: r.Finished.UTC()})
}
