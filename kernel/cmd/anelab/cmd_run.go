package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
)

func init() {
	register("run", "run an experiment script: train each spec for the budget, record keep/discard", cmdRun)
}

// labFlag registers --lab, defaulting to $ANELAB_LAB or ./lab.
func labFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("ANELAB_LAB")
	if def == "" {
		def = "lab"
	}
	return fs.String("lab", def, "lab folder: ledger.db, results.tsv, progress.png, runs/ (env ANELAB_LAB)")
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: anelab run SCRIPT.go [-m "what this tries"] [flags]

Interprets the script, trains each spec it returns for the budget, records every run in the
ledger (ok runs as keep, within-noise or discard against the lineage's head, by the lab's
measured noise: see the verdict: line), rewrites results.tsv and prints a verdict block per run
("--- anelab run <id>", then result:, val_bpb:, val_loss:, steps:, budget:, verdict:, …); a sweep
ends with a ranking of its specs against the head as it stood when the sweep started.
Exit status 0 when every run trained, 1 when any ended crash, invalid, timeout or diverged.

flags:`)
		printFlags(fs)
	}
	msg := fs.String("m", "", "what this run tries (prefixed to the spec's description)")
	budget := fs.Duration("budget", 0, "training budget per run, e.g. 90s or 5m (default: the spec's train.budget, 5m in lab.Baseline())")
	steps := fs.Int("steps", 0, "optimizer-update limit per run (default: the spec's train.steps)")
	repeats := fs.Int("repeats", 0, "runs per spec with seeds seed, seed+1, …, judged on their mean (default: the spec's Repeats, else 1)")
	labDir := labFlag(fs)
	dataDir := fs.String("data", "data/out/default", "prepared data folder (see 'anelab data')")
	lineage := fs.String("lineage", "main", "lineage lab.Best() reads and specs without one join")
	timeout := fs.Duration("timeout", 0, "hard limit per run (default: budget + 2m)")
	scriptTimeout := fs.Duration("script-timeout", 5*time.Second, "limit for evaluating the script and its Experiment()/Sweep()")
	hookTimeout := fs.Duration("hook-timeout", 5*time.Second, "limit for one call of a hook (LR, OnStep) during training")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("want exactly one script, got %d arguments", len(pos))
	}
	if err := checkRunFlags(*budget, *steps, *timeout, *scriptTimeout, *hookTimeout); err != nil {
		return err
	}
	if *repeats < 0 || *repeats > 100 {
		return fmt.Errorf("--repeats %d: must be 0 (the spec's) to 100", *repeats)
	}
	path := pos[0]
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("script: %w", err)
	}

	if testRunner == nil {
		if _, err := os.Stat(filepath.Join(*dataDir, "manifest.json")); err != nil {
			return fmt.Errorf("no prepared data in %s (manifest.json: %v): run `anelab data default --out %s` first, or pass --data",
				*dataDir, err, *dataDir)
		}
	}
	child, err := childArgv()
	if err != nil {
		return err
	}

	h, err := harness.New(harness.Options{Lab: *labDir, DataDir: *dataDir, Child: child, Lineage: *lineage,
		Budget: *budget, Steps: *steps, Repeats: *repeats, Timeout: *timeout, ScriptTimeout: *scriptTimeout, HookTimeout: *hookTimeout})
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runs, err := h.RunScript(ctx, path, *msg)
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range runs {
		if r.Status != ledger.StatusOK {
			failed = append(failed, r.ID+" "+r.Status)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d runs did not train to the end: %s (see error: above)", len(failed), len(runs), strings.Join(failed, ", "))
	}
	return nil
}

// checkRunFlags refuses negative limits, which the harness would otherwise read as "not set".
func checkRunFlags(budget time.Duration, steps int, timeouts ...time.Duration) error {
	var bad []string
	if budget < 0 {
		bad = append(bad, fmt.Sprintf("--budget %v: must be ≥ 0 (0: the spec's)", budget))
	}
	if steps < 0 {
		bad = append(bad, fmt.Sprintf("--steps %d: must be ≥ 0 (0: the spec's)", steps))
	}
	for i, t := range timeouts {
		if t < 0 {
			bad = append(bad, fmt.Sprintf("--%s %v: must be ≥ 0", []string{"timeout", "script-timeout", "hook-timeout"}[i], t))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
