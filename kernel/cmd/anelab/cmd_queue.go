package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/queue"
)

func init() {
	register("queue", "show queued jobs: waiting, running, done, failed; a sweep's ranking", cmdQueue)
}

func cmdQueue(args []string) error {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: anelab queue [--sweep ID] [--lab DIR]

Lists the lab's queued jobs (anelab submit) with their state — waiting, running (and on which
worker), done (recorded ok), failed (recorded crash, invalid, …, or out of attempts) — and the run
id of each one's latest attempt. --sweep shows one sweep and ends with its ranking against the
heads as they stood when it was submitted.

flags:`)
		printFlags(fs)
	}
	sweep := fs.String("sweep", "", "show only this sweep (its id from anelab submit), with its ranking")
	labDir := labFlag(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("queue", pos); err != nil {
		return err
	}
	ctx := context.Background()
	q, err := queue.Open(ctx, *labDir, ledger.URLFromEnv())
	if err != nil {
		return err
	}
	defer q.Close()
	l, err := ledger.OpenReadOnly(*labDir)
	if err != nil {
		return err
	}
	defer l.Close()
	jobs, err := q.Jobs(ctx, l, *sweep)
	if err != nil {
		return err
	}
	if *sweep != "" && len(jobs) == 0 {
		return fmt.Errorf("no sweep %q in the queue (see anelab queue)", *sweep)
	}
	count := map[string]int{}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "sweep\tspec\tstate\tattempt\trun\tstatus\tdescription")
	for _, j := range jobs {
		count[j.State]++
		state := j.State
		if j.Holder != "" {
			state += " (" + j.Holder + ")"
		}
		st := j.Status
		if st == "" {
			st = "-"
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%d/%d\t%s\t%s\t%s\n", j.Args.Sweep, j.Args.Job.Index+1, max(j.Args.Job.Count, 1), state,
			j.Attempt, j.River.MaxAttempts, j.Run, st, strings.ReplaceAll(j.Args.Job.Description, "\t", " "))
	}
	tw.Flush()
	fmt.Printf("%d waiting, %d running, %d done, %d failed\n", count[queue.Waiting], count[queue.Running], count[queue.Done], count[queue.Failed])
	if *sweep == "" {
		return nil
	}
	start, js, runs, err := q.SweepRuns(ctx, l, *sweep)
	if err != nil {
		return err
	}
	lineage := js[0].Lineage
	h := harness.ForLedger(l)
	h.PrintRanking(ctx, os.Stdout, lineage, start, js, runs)
	return nil
}
