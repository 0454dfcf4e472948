package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/train"
	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/internal/num"
	"github.com/anelab/anelab/kernel/ledger"
)

// Execute runs one job to the end and records it; the returned run is its ledger row. The steps:
//
//  1. openRun: the run folder and its log (everything printed goes to both);
//  2. writeInputs: job.json, the script's copy and config.json, before anything can fail;
//  3. attempt: the checks that can refuse the job up front (prepare), the running row, training
//     (in the child when there is one);
//  4. fillRow: the status (runStatus) and the result's numbers into the row;
//  5. record: one ledger transaction decides keep or discard, then the run's files and
//     results.tsv are written and the verdict block printed.
func (h *Harness) Execute(ctx context.Context, job Job) (ledger.Run, error) {
	job.Description = cleanText(job.Description) // one line, however the job was made
	runDir, out, logf, closeLog, err := h.openRun(job)
	if err != nil {
		return ledger.Run{}, err
	}
	defer closeLog()
	cfg := h.effectiveConfig(job)
	r := ledger.Run{ID: job.ID, Lineage: job.Lineage, Script: job.Script, ScriptHash: job.ScriptHash, Index: job.Index,
		Description: job.Description, Seed: cfg.Train.Seed, Commit: h.projectCommit(), Started: h.opt.Now()}
	if err := writeInputs(runDir, job, cfg, &r); err != nil {
		return r, err
	}
	a, err := h.attempt(ctx, job, cfg, &r, runDir, out, logf)
	if err != nil {
		return r, err
	}
	h.fillRow(&r, a, job, cfg, runDir, out)
	return r, h.record(ctx, &r, a, job, cfg, runDir, out)
}

// attempted is what came of trying to train a job.
type attempted struct {
	res    train.Result
	curve  []train.Point
	fail   *Failure // nil: it trained
	resume string   // the checkpoint it continued from
}

// openRun makes the run's folder and log; out writes to the console and the log.
func (h *Harness) openRun(job Job) (dir string, out, log io.Writer, closeLog func(), err error) {
	dir = filepath.Join(h.opt.Lab, "runs", job.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, nil, nil, fmt.Errorf("run folder: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "log.txt"))
	if err != nil {
		return "", nil, nil, nil, fmt.Errorf("run log: %w", err)
	}
	out = io.MultiWriter(h.opt.Out, logf)
	if job.Failure == nil {
		fmt.Fprintf(out, "=== anelab run %s: %s [spec %d/%d, lineage %s]\n", job.ID, job.Script, job.Index+1, job.Count, job.Lineage)
		if job.Description != "" {
			fmt.Fprintf(out, "description: %s\n", job.Description)
		}
	} else {
		fmt.Fprintf(out, "=== anelab run %s: %s\n", job.ID, job.Script)
	}
	return dir, out, logf, func() { logf.Close() }, nil
}

// writeInputs leaves what the run was asked to do in its folder — the job message, the script's
// source, the effective config — and puts the config in the row.
func writeInputs(dir string, job Job, cfg config.Config, r *ledger.Run) error {
	if err := WriteJSON(filepath.Join(dir, "job.json"), job); err != nil {
		return err
	}
	if job.Source != "" {
		name := filepath.Base(job.Script)
		if !strings.HasSuffix(name, ".go") {
			name = "script.go"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(job.Source), 0o644); err != nil {
			return err
		}
	}
	if err := WriteJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	if b, err := json.Marshal(cfg); err == nil {
		r.Config = string(b)
	}
	return nil
}

// attempt refuses what can be refused before training, else puts the running row in the ledger
// (so a process killed hard, which never reaches record, leaves a trace that readers show as
// killed) and trains. out writes to the console and log, log to the run's log only. The error is
// for the lab itself.
func (h *Harness) attempt(ctx context.Context, job Job, cfg config.Config, r *ledger.Run, runDir string, out, log io.Writer) (attempted, error) {
	a := attempted{fail: job.Failure}
	if a.fail == nil {
		a.fail, a.resume = h.prepare(ctx, job, cfg, r, out)
	}
	if a.fail != nil {
		return a, nil
	}
	if err := h.Ledger.Start(context.WithoutCancel(ctx), r); err != nil {
		return a, err
	}
	if _, err := h.Ledger.ExportTSV(context.WithoutCancel(ctx)); err != nil {
		return a, err
	}
	ckpt := filepath.Join(runDir, "model.ckpt")
	if len(h.opt.Child) > 0 {
		a.res, a.curve, a.fail = h.supervise(ctx, job, cfg, a.resume, ckpt, runDir, log)
	} else {
		a.res, a.curve, a.fail = h.train(ctx, job, cfg, a.resume, ckpt, out)
	}
	return a, nil
}

// fillRow sets the row's status and, for a run that trained, its numbers, device, data and
// checkpoint.
func (h *Harness) fillRow(r *ledger.Run, a attempted, job Job, cfg config.Config, runDir string, out io.Writer) {
	res := a.res
	r.Status, r.Error = runStatus(a.fail, res)
	if r.Status == ledger.StatusOK || r.Status == ledger.StatusDiverged {
		r.ValLoss, r.ValBPB, r.TrainLoss = clean(res.ValLoss), clean(res.ValBPB), clean(res.TrainLoss)
		r.Steps, r.Tokens, r.MsPerStep = res.Steps, res.Tokens, clean(res.MsPerStep)
		r.WallTimeS, r.UtilPct = clean(res.WallTimeS), clean(res.UtilPct)
		unigram := 0.0
		if m, err := data.ReadManifest(h.opt.DataDir); err == nil {
			unigram = m.UnigramBPB
		}
		train.WriteSummary(out, res, unigram)
	}
	if r.Status != ledger.StatusOK && r.Steps == 0 {
		r.Steps = len(a.curve) // how far a failed run got
	}
	r.Device = deviceString(cfg, res)
	r.DataSum = dataFingerprint(h.opt.DataDir)
	tagRun(r, job, cfg)
	if _, err := os.Stat(filepath.Join(runDir, "model.ckpt")); err == nil {
		r.Checkpoint, _ = filepath.Rel(h.opt.Lab, filepath.Join(runDir, "model.ckpt"))
	}
	if b, err := json.Marshal(sanitizeResult(res)); err == nil {
		r.Result = string(b)
	}
	r.Finished = h.opt.Now()
}

// record puts the row in the ledger — one transaction replaces the running row, decides
// keep/discard and moves the head on keep — then drops a discarded run's checkpoint, writes the
// run's files and results.tsv, and prints the verdict block.
func (h *Harness) record(ctx context.Context, r *ledger.Run, a attempted, job Job, cfg config.Config, runDir string, out io.Writer) error {
	if err := h.Ledger.Record(context.WithoutCancel(ctx), r); err != nil {
		return err
	}
	if r.Checkpoint == "" {
		os.Remove(filepath.Join(runDir, "model.ckpt")) // only kept runs keep their checkpoint
	}
	curve := a.curve
	if len(a.res.Curve) > 0 {
		curve = a.res.Curve // the trainer's own; the harness's copy (from OnStep) covers failed runs
	}
	if err := h.writeRunFiles(runDir, *r, a.res, curve, job, cfg, a.resume); err != nil {
		return err
	}
	if _, err := h.Ledger.ExportTSV(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	h.printBlock(ctx, out, *r, runDir, curve)
	return nil
}

// runStatus is the ledger status and error of a run from its failure (nil: it trained) and the
// trainer's result. A pure function: see its table test.
func runStatus(fail *Failure, res train.Result) (status, msg string) {
	switch {
	case fail != nil:
		return fail.Status, fail.Msg
	case res.Status == train.StatusOK && num.Finite(res.ValLoss) && res.ValLoss > 0:
		return ledger.StatusOK, ""
	case res.Status == train.StatusOK, res.Status == train.StatusDiverged:
		if res.Error == "" {
			return ledger.StatusDiverged, fmt.Sprintf("non-finite or zero validation loss (%v)", res.ValLoss)
		}
		return ledger.StatusDiverged, res.Error
	}
	return ledger.StatusCrash, fmt.Sprintf("runner returned status %q: %s", res.Status, res.Error)
}

// prepare checks what can be refused before training: the lineage, the config, the memory it
// needs, the head to continue from.
func (h *Harness) prepare(ctx context.Context, job Job, cfg config.Config, r *ledger.Run, out io.Writer) (*Failure, string) {
	if err := ledger.CheckLineage(job.Lineage); err != nil {
		r.Lineage = h.opt.Lineage // recorded where the run was started
		return &Failure{Status: ledger.StatusInvalid, Msg: "spec.Lineage: " + err.Error()}, ""
	}
	if cfg == (config.Config{}) {
		return &Failure{Status: ledger.StatusInvalid, Msg: "spec.Config is empty: start from lab.Best() or lab.Baseline() " +
			"and change what the experiment tries"}, ""
	}
	if err := cfg.Validate(); err != nil {
		return &Failure{Status: ledger.StatusInvalid, Msg: err.Error()}, ""
	}
	if err := train.CheckMemory(cfg, train.AvailableMemory()); err != nil {
		return &Failure{Status: ledger.StatusInvalid, Msg: err.Error()}, ""
	}
	if !job.Continue {
		return nil, ""
	}
	head, ok, err := h.Ledger.Head(ctx, job.Lineage)
	if err != nil {
		return &Failure{Status: ledger.StatusCrash, Msg: "reading the lineage head: " + err.Error()}, ""
	}
	if !ok {
		fmt.Fprintf(out, "lineage %s has no kept run yet: this Continue run starts fresh\n", job.Lineage)
		return nil, ""
	}
	if head.Checkpoint == "" {
		return &Failure{Status: ledger.StatusInvalid, Msg: fmt.Sprintf("spec.Continue: the head of lineage %s (%s) "+
			"has no checkpoint to continue from; start fresh (Continue: false)", job.Lineage, head.ID)}, ""
	}
	path := filepath.Join(h.opt.Lab, head.Checkpoint)
	if _, err := os.Stat(path); err != nil {
		return &Failure{Status: ledger.StatusInvalid, Msg: fmt.Sprintf("spec.Continue: the checkpoint of %s, head of "+
			"lineage %s, is missing (%v); start fresh (Continue: false)", head.ID, job.Lineage, err)}, ""
	}
	r.Parent = head.ID
	fmt.Fprintf(out, "continuing lineage %s from %s (val_loss %.6f)\n", job.Lineage, head.ID, head.ValLoss)
	return nil, path
}
