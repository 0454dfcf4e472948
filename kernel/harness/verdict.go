package harness

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/kernel/lab"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/verdict"
)

// repeats is how many runs spec s gets: --repeats, else s.Repeats, at least 1.
func (h *Harness) repeats(s lab.Spec) int {
	n := s.Repeats
	if h.opt.Repeats > 0 {
		n = h.opt.Repeats
	}
	return max(n, 1)
}

// repeatJobs turns one spec's job into its repeat set: the same config with seeds Seed, Seed+1, …
// (the first keeps the spec's own seed and id).
func repeatJobs(j Job, n int, now time.Time) []Job {
	if n <= 1 {
		return []Job{j}
	}
	jobs := make([]Job, n)
	for i := range jobs {
		k := j
		if i > 0 {
			k.ID = ledger.NewID(now)
		}
		k.Config.Train.Seed = j.Config.Train.Seed + int64(i)
		k.Repeat, k.Repeats, k.RepeatOf = i, n, j.ID
		k.Description = fmt.Sprintf("%s (seed %d, repeat %d/%d)", j.Description, k.Config.Train.Seed, i+1, n)
		jobs[i] = k
	}
	return jobs
}

// tagRun fills what the ledger's verdict needs: the config hash, the budget key, the repeat set.
// r.Parent and r.DataSum must be set.
func tagRun(r *ledger.Run, job Job, cfg config.Config) {
	hooks := ""
	if job.HasLR || job.HasOnStep {
		// Hooks change what trains but are code, not config: runs pool only with the same script's
		// same spec.
		hooks = fmt.Sprintf("%s#%d", job.ScriptHash, job.Index)
	}
	r.ConfigHash = ConfigHash(cfg, r.Parent, hooks, r.DataSum)
	r.Budget = BudgetKey(cfg)
	r.Repeat, r.Repeats, r.RepeatOf = job.Repeat, job.Repeats, job.RepeatOf
	// Record decides which run of a set is its last (the last recorded, whatever its index).
}

// ConfigHash identifies what a run trains, the seed aside, so that runs of one config with
// different seeds pool: sha256 over the canonical JSON of cfg with Train.Seed, Train.LogEvery and
// Train.Threads (which change nothing learned: TestThreadsAgree) zeroed, the parent run a continued run resumed from, the hooks'
// identity (script hash and spec index, "" without hooks) and the data fingerprint.
func ConfigHash(cfg config.Config, parent, hooks, data string) string {
	cfg.Train.Seed, cfg.Train.LogEvery, cfg.Train.Threads = 0, 0, 0
	b, err := json.Marshal(cfg)
	if err != nil {
		return ""
	}
	s := sha256.New()
	s.Write(b)
	fmt.Fprintf(s, "\x00parent=%s\x00hooks=%s\x00data=%s", parent, hooks, data)
	return "sha256:" + hex.EncodeToString(s.Sum(nil))[:16]
}

// BudgetKey names a run's budget kind and amount ("compute 5m0s @100 GFLOP/s", "wall 1m30s",
// "steps 150", "wall 1m0s, steps ≤ 500"): noise is measured, and verdicts compare, only within one
// key. A compute budget's key carries its reference rate, since the rate sets how many FLOPs a
// second buys.
func BudgetKey(cfg config.Config) string {
	t := cfg.Train
	budget := ""
	if t.Budget > 0 {
		switch t.BudgetKind {
		case "compute":
			budget = fmt.Sprintf("compute %v @%g GFLOP/s", time.Duration(t.Budget), t.ComputeRate)
		default:
			budget = fmt.Sprintf("%s %v", t.BudgetKind, time.Duration(t.Budget))
		}
	}
	switch {
	case budget != "" && t.Steps > 0:
		return fmt.Sprintf("%s, steps ≤ %d", budget, t.Steps)
	case budget != "":
		return budget
	case t.Steps > 0:
		return fmt.Sprintf("steps %d", t.Steps)
	}
	return "unbounded"
}

// HeadSnapshot is a lineage head and its pooled val_bpb at one moment (JSON: a queued sweep
// carries the heads as they stood when it was submitted).
type HeadSnapshot struct {
	Run    ledger.Run     `json:"run"`
	Sample verdict.Sample `json:"sample"`
	OK     bool           `json:"ok"` // the lineage had a head
}

// SnapshotHeads is the head of each lineage now: what a sweep's specs are ranked against.
func (h *Harness) SnapshotHeads(ctx context.Context, lineages ...string) map[string]HeadSnapshot {
	m := map[string]HeadSnapshot{}
	for _, l := range lineages {
		m[l] = h.headNow(ctx, l)
	}
	return m
}

func (h *Harness) headNow(ctx context.Context, lineage string) HeadSnapshot {
	r, ok, err := h.Ledger.Head(ctx, lineage)
	if err != nil || !ok {
		return HeadSnapshot{}
	}
	s := verdict.Summarize([]float64{r.Metric()})
	if r.ConfigHash != "" {
		if p, err := h.Ledger.Pooled(ctx, r.ConfigHash); err == nil && p.N > 0 {
			s = p
		}
	}
	r.Config, r.Result = "", "" // the snapshot travels in every queued job of a sweep
	return HeadSnapshot{Run: r, Sample: s, OK: true}
}

// Rank is one spec of a sweep, judged against the head as it stood when the sweep started.
type Rank struct {
	Index       int
	Description string
	Runs        int // runs of the spec in this sweep (ok or not)
	Sample      verdict.Sample
	Verdict     verdict.Verdict
	Budget      string
}

// Ranking ranks a sweep's specs by their mean val_bpb over the sweep's ok runs, each compared (with
// kernel/verdict, under the lab's current noise floor of its budget) with the head of the
// lineage as it was before the sweep's first run.
func (h *Harness) Ranking(ctx context.Context, start map[string]HeadSnapshot, jobs []Job, runs []ledger.Run) []Rank {
	byID := map[string]ledger.Run{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	type acc struct {
		rank Rank
		xs   []float64
		lin  string
	}
	var order []int
	specs := map[int]*acc{}
	for _, j := range jobs {
		r, ran := byID[j.ID]
		if !ran {
			continue
		}
		a := specs[j.Index]
		if a == nil {
			desc := j.Description
			if j.Repeats > 1 {
				desc = strings.TrimSuffix(desc, fmt.Sprintf(" (seed %d, repeat %d/%d)", j.Config.Train.Seed, j.Repeat+1, j.Repeats))
			}
			a = &acc{rank: Rank{Index: j.Index, Description: desc}, lin: r.Lineage}
			specs[j.Index] = a
			order = append(order, j.Index)
		}
		a.rank.Runs++
		if r.Status == ledger.StatusOK {
			a.xs = append(a.xs, r.Metric())
			a.rank.Budget = r.Budget
		}
	}
	var out []Rank
	for _, i := range order {
		a := specs[i]
		a.rank.Sample = verdict.Summarize(a.xs)
		if a.rank.Sample.N > 0 {
			head := start[a.lin]
			var noise verdict.Noise
			if f, ok, err := h.Ledger.Noise(ctx, a.rank.Budget); err == nil && ok {
				noise = f.Noise
			}
			hs := head.Sample
			if !head.OK {
				hs = verdict.Sample{}
			}
			a.rank.Verdict = verdict.Decide(a.rank.Sample, hs, noise, ledger.Rule)
		}
		out = append(out, a.rank)
	}
	sort.SliceStable(out, func(i, j int) bool {
		si, sj := out[i].Sample, out[j].Sample
		if (si.N > 0) != (sj.N > 0) {
			return si.N > 0 // specs without an ok run never rank above one with
		}
		return si.Mean < sj.Mean
	})
	return out
}

// PrintRanking ends a sweep (more than one spec, or repeats) with its ranking against start, the
// heads when it was submitted (lineage: the one to name in the header).
func (h *Harness) PrintRanking(ctx context.Context, w io.Writer, lineage string, start map[string]HeadSnapshot, jobs []Job, runs []ledger.Run) {
	if len(jobs) < 2 || len(runs) == 0 {
		return
	}
	ranks := h.Ranking(ctx, start, jobs, runs)
	head := start[lineage]
	fmt.Fprintf(w, "--- anelab sweep ranking (%d spec(s); lower val_bpb is better)\n", len(ranks))
	if head.OK {
		fmt.Fprintf(w, "head at start:    %s val_bpb %s (lineage %s)\n", head.Run.ID, sampleStr(head.Sample), lineage)
	} else {
		fmt.Fprintf(w, "head at start:    none (lineage %s had no kept run)\n", lineage)
	}
	for k, r := range ranks {
		if r.Sample.N == 0 {
			fmt.Fprintf(w, "%2d. spec %d: no ok run of %d — %s\n", k+1, r.Index+1, r.Runs, r.Description)
			continue
		}
		delta := "Δ vs head —"
		if r.Verdict.Head.N > 0 {
			delta = fmt.Sprintf("Δ vs head %+.4f", -r.Verdict.Delta)
		}
		fmt.Fprintf(w, "%2d. spec %d: val_bpb %s  %s  %s — %s\n", k+1, r.Index+1, sampleStr(r.Sample),
			delta, r.Verdict.Decision, r.Description)
		fmt.Fprintf(w, "    %s\n", r.Verdict)
	}
}

func sampleStr(s verdict.Sample) string {
	if s.N > 1 {
		return fmt.Sprintf("%.4f±%.4f (n=%d)", s.Mean, s.SD, s.N)
	}
	return fmt.Sprintf("%.4f (n=%d)", s.Mean, s.N)
}

// printBlock prints the run's verdict block, always in the same shape so `grep -A16 '^--- anelab run'`
// shows it: result (the results.tsv status), the numbers an agent judges from (val_bpb, val_loss,
// steps, tokens, ms/step, budget), the verdict with the test that decided it, the change against
// the head with its noise, both runs' training loss at the same step, the folder, the error.
func (h *Harness) printBlock(ctx context.Context, w io.Writer, r ledger.Run, dir string, curve []train.Point) {
	na := func(ok bool, f string, v float64) string {
		if !ok {
			return "- (no loss: the run did not finish)"
		}
		return fmt.Sprintf(f, v)
	}
	fmt.Fprintf(w, "--- anelab run %s\n", r.ID)
	fmt.Fprintf(w, "result:           %s\n", r.Mark())
	fmt.Fprintf(w, "val_bpb:          %s\n", na(r.HasLoss(), "%.6f", r.ValBPB))
	fmt.Fprintf(w, "val_loss:         %s\n", na(r.HasLoss(), "%.6f", r.ValLoss))
	fmt.Fprintf(w, "steps:            %d (%d tokens, %.1f ms/step)\n", r.Steps, r.Tokens, r.MsPerStep)
	fmt.Fprintf(w, "budget:           %s\n", r.Budget)
	if r.Verdict != "" {
		fmt.Fprintf(w, "verdict:          %s\n", r.Verdict)
	}
	info, hasInfo := r.Info()
	switch {
	case r.Decision == ledger.Keep && r.PrevHead == "":
		fmt.Fprintf(w, "lineage_best:     %.6f (%s, first kept run of lineage %s)\n", r.ValLoss, r.ID, r.Lineage)
	case r.Decision == ledger.Keep:
		fmt.Fprintf(w, "lineage_best:     %.6f (%s, new best of lineage %s; was %.6f, %s)\n", r.ValLoss, r.ID, r.Lineage, r.PrevBest, r.PrevHead)
	case r.PrevHead != "":
		fmt.Fprintf(w, "lineage_best:     %.6f (%s, unchanged; lineage %s)\n", r.PrevBest, r.PrevHead, r.Lineage)
	default:
		fmt.Fprintf(w, "lineage_best:     none yet (lineage %s)\n", r.Lineage)
	}
	if hasInfo && info.HeadRun != "" {
		noise := "no noise estimate yet"
		if info.SE > 0 {
			noise = fmt.Sprintf("± %.4f (1 SE, %s), margin %.4f", info.SE, info.Test, info.Margin)
		}
		fmt.Fprintf(w, "vs_head:          Δ val_bpb %+.4f %s (this %s, head %s)\n", -info.Delta, noise,
			sampleStr(info.Cand), sampleStr(info.Head))
		if line := equalStep(curve, filepath.Join(h.opt.Lab, "runs", info.HeadRun, "curve.tsv")); line != "" {
			fmt.Fprintf(w, "same_step:        %s\n", line)
		}
	}
	fmt.Fprintf(w, "description:      %s\n", r.Description)
	fmt.Fprintf(w, "folder:           %s\n", dir)
	if r.Error != "" {
		fmt.Fprintf(w, "error:            %s\n", strings.ReplaceAll(errorLines(r.Error, dir), "\n", "\n                  "))
	}
}

// equalStep is verdict.SameStep of this run's curve and the head's, as the verdict block's line.
func equalStep(mine []train.Point, headCurve string) string {
	theirs, err := ReadCurve(headCurve)
	if err != nil {
		return ""
	}
	step, a, b, n := verdict.SameStep(Points(mine), Points(theirs), 10)
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("train loss at step %d (mean of its last %d updates): this %.4f, head %.4f (Δ %+.4f)", step, n, a, b, a-b)
}

// Points converts a training curve for kernel/verdict.
func Points(c []train.Point) []verdict.Point {
	out := make([]verdict.Point, len(c))
	for i, p := range c {
		out[i] = verdict.Point{Step: p.Step, Loss: p.Loss}
	}
	return out
}

// ReadCurve reads a run folder's curve.tsv (step, loss, lr, time_s, tokens).
func ReadCurve(path string) ([]train.Point, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pts []train.Point
	sc := bufio.NewScanner(f)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 5 {
			continue
		}
		var p train.Point
		p.Step, _ = strconv.Atoi(c[0])
		p.Loss, _ = strconv.ParseFloat(c[1], 64)
		p.LR, _ = strconv.ParseFloat(c[2], 64)
		p.TimeS, _ = strconv.ParseFloat(c[3], 64)
		p.Tokens, _ = strconv.ParseInt(c[4], 10, 64)
		pts = append(pts, p)
	}
	return pts, sc.Err()
}

// blockErrorLines is how many lines of a run's error the verdict block shows; a crash's error
// holds a Go stack of hundreds of lines, which result.json keeps in full.
const blockErrorLines = 30

func errorLines(msg, dir string) string {
	lines := strings.Split(msg, "\n")
	if len(lines) <= blockErrorLines {
		return msg
	}
	n := blockErrorLines
	for i, l := range lines[:n] {
		if l == "…" { // a crash's start, then its output's end (tailWriter): the start says it
			n = i
			break
		}
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n… (%d more lines: the whole error is in %s)",
		len(lines)-n, filepath.Join(dir, "result.json"))
}

// ForLedger is a harness that only reads l: enough for Ranking and PrintRanking of a sweep run by
// others (`anelab queue --sweep`).
func ForLedger(l *ledger.Ledger) *Harness {
	return &Harness{opt: Options{Lab: l.Dir, Out: io.Discard, Lineage: lab.DefaultLineage}, Ledger: l}
}
