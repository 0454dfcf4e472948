package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
)

func init() {
	register("vet", "check an experiment script exactly as run does, without training", cmdVet)
}

func cmdVet(args []string) error {
	fs := flag.NewFlagSet("vet", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: anelab vet SCRIPT.go [flags]

Runs every check 'anelab run' makes before it trains — syntax, the import allow-list (printed in
full when an import is refused), the script's types, Experiment()/Sweep(), each spec's lineage, its
config's validation after --budget/--steps, the data's vocabulary, a Continue's head checkpoint —
and prints one line per run it would start. Trains nothing and records nothing. Exit status 1 when
any run would be refused.

flags:`)
		printFlags(fs)
	}
	msg := fs.String("m", "", "as for run")
	budget := fs.Duration("budget", 0, "as for run: training budget per run")
	steps := fs.Int("steps", 0, "as for run: optimizer-update limit per run")
	repeats := fs.Int("repeats", 0, "as for run: runs per spec")
	labDir := labFlag(fs)
	dataDir := fs.String("data", "data/out/default", "prepared data folder (its manifest's vocabulary is checked)")
	lineage := fs.String("lineage", "main", "lineage lab.Best() reads and specs without one join")
	scriptTimeout := fs.Duration("script-timeout", 5*time.Second, "limit for evaluating the script and its Experiment()/Sweep()")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("want exactly one script, got %d arguments", len(pos))
	}
	if err := checkRunFlags(*budget, *steps, 0, *scriptTimeout); err != nil {
		return err
	}
	if *repeats < 0 || *repeats > 100 {
		return fmt.Errorf("--repeats %d: must be 0 (the spec's) to 100", *repeats)
	}
	if _, err := os.Stat(pos[0]); err != nil {
		return fmt.Errorf("script: %w", err)
	}
	// lab.Best() and lab.FromRun read the lab's ledger when there is one; vet never creates a lab.
	dir := *labDir
	if _, err := os.Stat(filepath.Join(dir, ledger.File)); err != nil {
		tmp, err := os.MkdirTemp("", "anelab-vet-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
		fmt.Printf("(no ledger in %s: lab.Best() is lab.Baseline(), lab.FromRun finds no run)\n", *labDir)
	}
	child, err := childArgv() // the script's code runs there, as for run
	if err != nil {
		return err
	}
	h, err := harness.New(harness.Options{Lab: dir, Child: child, DataDir: *dataDir, Lineage: *lineage, Budget: *budget, Steps: *steps,
		Repeats: *repeats, ScriptTimeout: *scriptTimeout, Out: os.Stdout})
	if err != nil {
		return err
	}
	defer h.Close()
	bad := 0
	checked := h.Vet(context.Background(), pos[0], *msg)
	for _, c := range checked {
		fmt.Println(c)
		if c.Failure != nil {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d runs would be refused (see above)", bad, len(checked))
	}
	fmt.Printf("ok: %d run(s) would train\n", len(checked))
	return nil
}
