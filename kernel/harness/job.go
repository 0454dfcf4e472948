package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/script"
)

// Job is "run this spec" as a message: everything a worker needs, serialisable as JSON, so a
// job queue can carry it. Go hooks cannot travel; the job carries the script's source instead,
// and whoever executes it re-interprets the script to rebuild the hooks of spec Index (the
// config stays the one resolved at submit time).
type Job struct {
	ID          string        `json:"id"` // the run id, assigned at submit
	Script      string        `json:"script"`
	ScriptHash  string        `json:"script_hash"`
	Source      string        `json:"source"`
	Index       int           `json:"index"` // which spec of the script's sweep (0-based)
	Count       int           `json:"count"` // how many specs the script returned
	Description string        `json:"description"`
	Lineage     string        `json:"lineage"`
	Continue    bool          `json:"continue"`
	Config      config.Config `json:"config"`
	HasLR       bool          `json:"has_lr"`
	HasOnStep   bool          `json:"has_on_step"`
	Repeat      int           `json:"repeat,omitempty"`    // 0-based index in the spec's repeat set
	Repeats     int           `json:"repeats,omitempty"`   // size of the set (0 or 1: one run)
	RepeatOf    string        `json:"repeat_of,omitempty"` // id of the set's first run
	Submitted   time.Time     `json:"submitted"`
	// Failure, when set, is a script that failed before producing specs: the job records
	// it (status and message) without training.
	Failure *Failure `json:"failure,omitempty"`
}

// Failure is a run that ended before or during training for a reason the ledger records.
type Failure struct {
	Status string `json:"status"` // ledger.StatusInvalid, StatusCrash, StatusTimeout
	Msg    string `json:"error"`
}

func (f *Failure) Error() string { return f.Status + ": " + f.Msg }

// jobFromSpec builds the message for spec i of n from prog.
func jobFromSpec(id string, prog *script.Program, s lab.Spec, i, n int, message string, now time.Time) Job {
	// One description, never the same words twice: -m fills in for a spec without one, and is
	// dropped when the spec's already says it (or the reverse: -m says more, and includes it).
	desc, message := cleanText(s.Description), cleanText(message)
	lm, ld := strings.ToLower(strings.TrimSpace(message)), strings.ToLower(strings.TrimSpace(desc))
	switch {
	case lm == "" || strings.Contains(ld, lm):
	case ld == "" || strings.Contains(lm, ld):
		desc = strings.TrimSpace(message)
	default:
		desc = strings.TrimSpace(message) + ": " + desc
	}
	if n > 1 && strings.TrimSpace(s.Description) == "" {
		desc = fmt.Sprintf("%s [%d/%d]", desc, i+1, n)
	}
	return Job{ID: id, Script: prog.Path, ScriptHash: prog.Hash, Source: string(prog.Source), Index: i, Count: n,
		Description: desc, Lineage: s.Lineage, Continue: s.Continue, Config: s.Config,
		HasLR: s.LR != nil, HasOnStep: s.OnStep != nil, Submitted: now.UTC()}
}

// cleanText is a description as one line: control characters (newlines, tabs, escapes) become
// spaces, so results.tsv and the results table keep one row per run.
func cleanText(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}

// WriteJSON writes v as indented JSON to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadJob reads a job message written by WriteJSON (e.g. a run folder's job.json).
func ReadJob(path string) (Job, error) {
	var j Job
	b, err := os.ReadFile(path)
	if err != nil {
		return j, err
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return j, nil
}
