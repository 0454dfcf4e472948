package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/queue"
)

func init() {
	register("submit", "queue experiment scripts' specs for `anelab worker` (one sweep per script)", cmdSubmit)
}

func cmdSubmit(args []string) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: anelab submit SCRIPT.go… [-m "what this tries"] [--repeats N] [flags]

Evaluates each script (in a child process, as anelab run does) and queues one job per spec and
repeat, as one sweep per script, in the lab's queue: River on the lab's ledger.db, or on the
PostgreSQL database in ANELAB_DB (a fleet). Workers (anelab worker) run them; anelab queue shows
them. --budget and --steps are fixed in the jobs here, so every worker trains what was submitted.
A sweep is ranked (anelab queue --sweep ID) against the heads as they stand now.

flags:`)
		printFlags(fs)
	}
	msg := fs.String("m", "", "what this run tries (prefixed to each spec's description)")
	budget := fs.Duration("budget", 0, "training budget per run (default: the spec's train.budget)")
	steps := fs.Int("steps", 0, "optimizer-update limit per run (default: the spec's train.steps)")
	repeats := fs.Int("repeats", 0, "runs per spec with seeds seed, seed+1, …, judged on their mean (default: the spec's Repeats, else 1)")
	labDir := labFlag(fs)
	lineage := fs.String("lineage", "main", "lineage lab.Best() reads and specs without one join")
	scriptTimeout := fs.Duration("script-timeout", 5*time.Second, "limit for evaluating the script and its Experiment()/Sweep()")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return fmt.Errorf("want at least one script")
	}
	if err := checkRunFlags(*budget, *steps, 0, *scriptTimeout); err != nil {
		return err
	}
	if *repeats < 0 || *repeats > 100 {
		return fmt.Errorf("--repeats %d: must be 0 (the spec's) to 100", *repeats)
	}
	for _, p := range pos {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("script: %w", err)
		}
	}
	child, err := childArgv()
	if err != nil {
		return err
	}
	h, err := harness.New(harness.Options{Lab: *labDir, Child: child, Lineage: *lineage, Budget: *budget, Steps: *steps,
		Repeats: *repeats, ScriptTimeout: *scriptTimeout, Out: os.Stdout})
	if err != nil {
		return err
	}
	defer h.Close()
	ctx := context.Background()
	q, err := queue.Open(ctx, *labDir, ledger.URLFromEnv())
	if err != nil {
		return err
	}
	defer q.Close()
	for _, p := range pos {
		s, err := q.SubmitScript(ctx, h, p, *msg)
		if err != nil {
			return err
		}
		failed := 0
		for _, j := range s.Jobs {
			if j.Failure != nil {
				failed++
			}
		}
		fmt.Printf("submitted %s: sweep %s, %d job(s)", p, s.Sweep, len(s.Jobs))
		if failed > 0 {
			fmt.Printf(" (%d refused before training: a worker records them as they are)", failed)
		}
		fmt.Println()
	}
	fmt.Println("run them with `anelab worker`; see them with `anelab queue`")
	return nil
}
