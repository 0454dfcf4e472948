package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/queue"
)

func init() {
	register("worker", "run queued jobs, N at once, each in its own child process", cmdWorker)
}

func cmdWorker(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: anelab worker [--slots N] [--threads-per-slot K] [--gpus 0,1] [--until-empty] [flags]

Runs the lab's queued jobs (anelab submit): up to --slots at once, each trained in its own child
process exactly as anelab run trains, recorded in the ledger (keep/discard against the head as
read when the run is recorded). Several workers — on this machine, or on many machines sharing
one PostgreSQL database in ANELAB_DB — drain one queue; a job whose worker was killed is taken
back and retried as a new attempt ("<id>-a2"). The first Ctrl-C stops taking jobs and lets
running ones finish; a second interrupts them (recorded as interrupted, and queued again).

flags:`)
		printFlags(fs)
	}
	slots := fs.Int("slots", 0, "runs at once (default: one per --gpus entry, else 1)")
	threads := fs.Int("threads-per-slot", 0, "compute threads of each run (default: the cores divided among the slots; with one slot, the spec's)")
	gpus := fs.String("gpus", "", "comma-separated GPU indices, one per slot (CUDA_VISIBLE_DEVICES of each run)")
	untilEmpty := fs.Bool("until-empty", false, "exit once nothing is waiting or running in the queue")
	labDir := labFlag(fs)
	dataDir := fs.String("data", "data/out/default", "prepared data folder (see 'anelab data'); each machine prepares its own")
	timeout := fs.Duration("timeout", 0, "hard limit per run (default: budget + 2m)")
	hookTimeout := fs.Duration("hook-timeout", 5*time.Second, "limit for one call of a hook (LR, OnStep) during training")
	rescueAfter := fs.Duration("rescue-after", time.Hour, "a job running this long whose worker is on another machine is presumed lost and retried (longer than any run)")
	poll := fs.Duration("poll", time.Second, "how often to look for jobs and for workers that are gone")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("worker", pos); err != nil {
		return err
	}
	gpuList, err := parseGPUs(*gpus)
	if err != nil {
		return err
	}
	if *slots == 0 {
		*slots = max(1, len(gpuList))
	}
	switch {
	case *slots < 1 || *slots > 256:
		return fmt.Errorf("--slots %d: must be 1 to 256", *slots)
	case *threads < 0:
		return fmt.Errorf("--threads-per-slot %d: must be ≥ 0 (0: the cores divided among the slots)", *threads)
	case *rescueAfter <= 0 || *poll <= 0:
		return fmt.Errorf("--rescue-after and --poll must be > 0")
	}
	if err := checkRunFlags(0, 0, *timeout, 0, *hookTimeout); err != nil {
		return err
	}
	if *threads == 0 && *slots > 1 && len(gpuList) == 0 {
		*threads = max(1, runtime.NumCPU() / *slots)
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
	// The first SIGINT/SIGTERM stops taking jobs; a second interrupts the runs in progress.
	ctx, soft := context.WithCancel(context.Background())
	defer soft()
	hard := make(chan struct{})
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		<-sig
		soft()
		<-sig
		close(hard)
	}()

	q, err := queue.Open(ctx, *labDir, ledger.URLFromEnv())
	if err != nil {
		return err
	}
	defer q.Close()
	where := "the lab's " + ledger.File
	if q.URL != "" {
		where = "the database in " + ledger.EnvDB
	}
	fmt.Printf("anelab worker: %d slot(s), %d thread(s) each%s, queue in %s\n", *slots, *threads, gpuText(gpuList), where)
	start := time.Now()
	st, err := q.Work(ctx, queue.WorkerOptions{Slots: *slots, ThreadsPerSlot: *threads, GPUs: gpuList, UntilEmpty: *untilEmpty,
		RescueAfter: *rescueAfter, Poll: *poll, Hard: hard,
		Harness: harness.Options{DataDir: *dataDir, Child: child, Timeout: *timeout, HookTimeout: *hookTimeout, Out: os.Stdout}})
	fmt.Printf("anelab worker: %d run(s) in %s", st.Runs, time.Since(start).Round(100*time.Millisecond))
	if st.Rescued > 0 {
		fmt.Printf(", %d job(s) taken back from gone workers", st.Rescued)
	}
	fmt.Println()
	return err
}

func parseGPUs(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--gpus %q: want comma-separated GPU indices such as 0,1", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func gpuText(g []int) string {
	if len(g) == 0 {
		return ""
	}
	s := make([]string, len(g))
	for i, n := range g {
		s[i] = strconv.Itoa(n)
	}
	return ", GPUs " + strings.Join(s, ",")
}
