package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
)

// Semantics under concurrency (the README's "Queue and fleet" says the same for users):
//
//   - Verdict: a run is judged against its lineage's head as read inside the transaction that
//     records it (ledger.Record), never against the head when it was submitted or started.
//   - Two runs finishing together: their Records serialise on the ledger's write lock; the later
//     is judged against the head the earlier left (so both can be kept, the later only if it
//     beats the earlier).
//   - A worker killed mid-job: its attempt's row reads as killed (its process is gone), another
//     worker (or the next one started) notices the job is held by a gone worker, accounts for the
//     attempt (ledger.Abandon) and makes the job available again; the retry is a new row
//     "<id>-a2". An attempt that had recorded its end before its worker died is not run again.
//     Nothing is lost, nothing is recorded twice. A worker on another machine is noticed only by
//     River's rescuer, after RescueAfter.
//   - A repeat set is decided by its last-recorded run (ledger.Record), whatever its index.
//   - A sweep is ranked against the heads as they stood when it was submitted (Args.Heads),
//     whatever order its runs finished in.

// WorkerOptions configure Work.
type WorkerOptions struct {
	Slots          int           // runs at once (≥ 1)
	ThreadsPerSlot int           // each run's train.threads (0: the spec's)
	GPUs           []int         // slot i trains on GPU GPUs[i % len] (CUDA_VISIBLE_DEVICES); none: no pinning
	UntilEmpty     bool          // return once nothing is waiting or running in the queue
	RescueAfter    time.Duration // River rescues a job running this long (a worker on another machine gone); 0: 1h
	Poll           time.Duration // how often to look for jobs and gone workers (0: 1s)
	ClientID       string        // River client id ("" = anelab-<pid>-<boot>-<host>, which tells others when it is gone)

	// Hard, when done, interrupts the runs in progress (they are recorded as interrupted and go
	// back to the queue); the ctx given to Work only stops taking new jobs. nil: ctx does both.
	Hard <-chan struct{}

	// Harness is each slot's harness template: Lab, DataDir, Child, Runner, Out, time limits.
	Harness harness.Options
}

// Stats is what one worker did.
type Stats struct {
	Runs     int // attempts it ran to a ledger row
	Rescued  int // jobs it took back from gone workers
	Recorded int // jobs it found already recorded by a gone worker's attempt
}

type slot struct {
	n   int
	h   *harness.Harness
	out io.Writer
}

// Work runs the queue's jobs until ctx is done (or, with UntilEmpty, the queue is empty): up to
// Slots at once, each through harness.Execute (and so its child process) on a harness of its own.
func (q *Queue) Work(ctx context.Context, opt WorkerOptions) (Stats, error) {
	var st Stats
	if opt.Slots < 1 {
		return st, fmt.Errorf("--slots %d: want at least 1", opt.Slots)
	}
	if opt.Poll <= 0 {
		opt.Poll = time.Second
	}
	out := opt.Harness.Out
	if out == nil {
		out = io.Discard
	}
	var mu sync.Mutex // one line at a time on the console
	slots := make(chan *slot, opt.Slots)
	var first *slot // its ledger also serves the rescue of gone workers' jobs
	for i := range opt.Slots {
		ho := opt.Harness
		ho.Lab = q.Lab
		ho.Threads = opt.ThreadsPerSlot
		ho.Out = out
		if opt.Slots > 1 {
			ho.Out = &prefixWriter{w: out, mu: &mu, prefix: []byte(fmt.Sprintf("[slot %d] ", i+1))}
		}
		if len(opt.GPUs) > 0 {
			ho.ChildEnv = append(ho.ChildEnv, "CUDA_VISIBLE_DEVICES="+strconv.Itoa(opt.GPUs[i%len(opt.GPUs)]))
		}
		h, err := harness.New(ho)
		if err != nil {
			return st, err
		}
		defer h.Close()
		sl := &slot{n: i + 1, h: h, out: ho.Out}
		if first == nil {
			first = sl
		}
		slots <- sl
	}
	w := &runWorker{q: q, slots: slots, stats: &st}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return st, err
	}
	id := opt.ClientID
	if id == "" {
		id = clientID()
	}
	c, exec, err := q.backend.newClient(&river.Config{
		ID:                          id,
		Queues:                      map[string]river.QueueConfig{Name: {MaxWorkers: opt.Slots}},
		Workers:                     workers,
		MaxAttempts:                 MaxAttempts,
		JobTimeout:                  -1, // the harness limits each run (budget + grace, --timeout)
		RescueStuckJobsAfter:        opt.RescueAfter,
		CompletedJobRetentionPeriod: -1, // done jobs stay: `anelab queue --sweep` ranks from them
		DiscardedJobRetentionPeriod: -1,
		FetchPollInterval:           opt.Poll,
		FetchCooldown:               min(opt.Poll, 100*time.Millisecond),
		Logger:                      quietLogger(out),
	})
	if err != nil {
		return st, err
	}
	// Jobs run under their own context: ctx ending stops taking new jobs and lets running ones
	// finish; Hard interrupts them.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	if opt.Hard == nil {
		opt.Hard = ctx.Done()
	}
	if err := c.Start(jobCtx); err != nil {
		return st, fmt.Errorf("queue: start worker: %w", err)
	}
	tick := time.NewTicker(opt.Poll)
	defer tick.Stop()
loop:
	for {
		n, err := q.rescueGone(jobCtx, c, exec, first.h.Ledger)
		st.Rescued += n
		if err != nil {
			fmt.Fprintf(out, "anelab worker: looking for jobs of gone workers: %v\n", err)
		}
		if opt.UntilEmpty {
			left, err := q.unfinished(jobCtx, exec)
			if err != nil {
				fmt.Fprintf(out, "anelab worker: %v\n", err)
			} else if left == 0 {
				break loop
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(out, "anelab worker: stopping: no new jobs; the runs in progress finish (interrupt again to stop them: they go back to the queue)\n")
			break loop
		case <-tick.C:
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(jobCtx) }()
	select {
	case err = <-stopped:
	case <-opt.Hard:
		cancelJobs() // the runs see it as an interruption, record it and return
		err = c.StopAndCancel(context.Background())
		<-stopped
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return st, fmt.Errorf("queue: stop worker: %w", err)
	}
	return st, nil
}

// unfinished counts the queue's jobs not yet done: waiting (available, scheduled, retryable,
// pending) or running.
func (q *Queue) unfinished(ctx context.Context, exec riverdriver.Executor) (int, error) {
	n, err := exec.JobCountByAllStates(ctx, &riverdriver.JobCountByAllStatesParams{})
	if err != nil {
		return 0, fmt.Errorf("queue: count jobs: %w", err)
	}
	left := 0
	for _, s := range []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateScheduled,
		rivertype.JobStateRetryable, rivertype.JobStatePending, rivertype.JobStateRunning} {
		left += n[s]
	}
	return left, nil
}

// rescueGone finds jobs held by workers known to be gone (killed on this machine), accounts for
// each one's attempt in the ledger and makes the job available again (or failed once out of
// attempts). The rescue is River's own (as its rescuer does after RescueAfter), guarded by the
// attempt's start time: a job another worker has taken since is left alone.
func (q *Queue) rescueGone(ctx context.Context, c client, exec riverdriver.Executor, l *ledger.Ledger) (int, error) {
	list, err := c.JobList(ctx, river.NewJobListParams().Kinds(Kind).States(rivertype.JobStateRunning).First(10000))
	if err != nil {
		return 0, err
	}
	res := list.Jobs
	p := &riverdriver.JobRescueManyParams{}
	var rescued []string
	for _, j := range res {
		if len(j.AttemptedBy) == 0 || j.AttemptedAt == nil || !holderGone(j.AttemptedBy[len(j.AttemptedBy)-1]) {
			continue
		}
		var a Args
		if err := json.Unmarshal(j.EncodedArgs, &a); err != nil {
			continue
		}
		holder := j.AttemptedBy[len(j.AttemptedBy)-1]
		msg := fmt.Sprintf("attempt %d of %d: its worker (%s) ended without recording a result (killed?); the job was put back in the queue",
			j.Attempt, j.MaxAttempts, holder)
		if j.Attempt >= j.MaxAttempts {
			msg = fmt.Sprintf("attempt %d of %d: its worker (%s) ended without recording a result (killed?); no attempts left",
				j.Attempt, j.MaxAttempts, holder)
		}
		if _, err := l.Abandon(ctx, attemptRun(a.Job, j.Attempt), msg); err != nil {
			return 0, err
		}
		e, _ := json.Marshal(rivertype.AttemptError{At: time.Now().UTC(), Attempt: j.Attempt, Error: msg})
		now := time.Now().UTC()
		p.ID, p.Error = append(p.ID, j.ID), append(p.Error, e)
		if j.Attempt >= j.MaxAttempts {
			p.State, p.FinalizedAt, p.ScheduledAt = append(p.State, string(rivertype.JobStateDiscarded)), append(p.FinalizedAt, &now), append(p.ScheduledAt, j.ScheduledAt)
		} else {
			p.State, p.FinalizedAt, p.ScheduledAt = append(p.State, string(rivertype.JobStateAvailable)), append(p.FinalizedAt, nil), append(p.ScheduledAt, now)
		}
		rescued = append(rescued, a.Job.ID)
		// Only the attempt seen here: one that started later (another worker took the job since)
		// has a later attempted_at and is not touched. (SQLite keeps milliseconds.)
		p.StuckHorizon = j.AttemptedAt.Add(time.Millisecond)
		if _, err := exec.JobRescueMany(ctx, p); err != nil {
			return 0, fmt.Errorf("queue: put job %d back: %w", j.ID, err)
		}
		p = &riverdriver.JobRescueManyParams{}
	}
	return len(rescued), nil
}

// attemptRun is the ledger row of attempt n of job, as Abandon inserts it when the attempt left
// none.
func attemptRun(j harness.Job, n int) *ledger.Run {
	lineage := j.Lineage
	if ledger.CheckLineage(lineage) != nil {
		lineage = "main"
	}
	return &ledger.Run{ID: AttemptID(j.ID, n), Lineage: lineage, Script: j.Script, ScriptHash: j.ScriptHash, Index: j.Index,
		Description: j.Description, Seed: j.Config.Train.Seed, RepeatOf: j.RepeatOf, Repeat: j.Repeat, Repeats: j.Repeats}
}

// runWorker is the River worker of Kind: it runs one attempt of a job on a free slot.
type runWorker struct {
	river.WorkerDefaults[Args]
	q     *Queue
	slots chan *slot
	mu    sync.Mutex
	stats *Stats
}

// Work runs attempt job.Attempt: earlier attempts without an end are accounted for first (and if
// one did record its end, the job is done), then the run executes under the attempt's id.
func (w *runWorker) Work(ctx context.Context, job *river.Job[Args]) error {
	s := <-w.slots
	defer func() { w.slots <- s }()
	j := job.Args.Job
	for n := 1; n < job.Attempt; n++ {
		if r, err := s.h.Ledger.Get(ctx, AttemptID(j.ID, n)); err == nil && r.Status == harness.StatusInterrupted {
			continue // a stopped worker's attempt: recorded as such, and the job was put back
		}
		recorded, err := s.h.Ledger.Abandon(context.WithoutCancel(ctx), attemptRun(j, n),
			fmt.Sprintf("attempt %d of %d ended without recording a result; retried as %s", n, job.MaxAttempts, AttemptID(j.ID, job.Attempt)))
		if err != nil {
			return err
		}
		if recorded {
			fmt.Fprintf(s.out, "anelab worker: job %s was recorded by its attempt %d (%s) before its worker ended: not run again\n",
				j.ID, n, AttemptID(j.ID, n))
			w.count(func(st *Stats) { st.Recorded++ })
			return nil
		}
	}
	j.ID = AttemptID(j.ID, job.Attempt)
	if job.Attempt > 1 {
		fmt.Fprintf(s.out, "anelab worker: attempt %d of %d of job %s\n", job.Attempt, job.MaxAttempts, job.Args.Job.ID)
	}
	r, err := s.h.Execute(ctx, j)
	if err != nil {
		return err // the lab failed (ledger, files): River retries the job
	}
	w.count(func(st *Stats) { st.Runs++ })
	if r.Status == harness.StatusInterrupted {
		// The worker was stopped mid-run: the row says so, and the job goes back to the queue.
		return fmt.Errorf("run %s interrupted: the job goes back to the queue", r.ID)
	}
	return nil
}

func (w *runWorker) count(f func(*Stats)) {
	w.mu.Lock()
	f(w.stats)
	w.mu.Unlock()
}

// prefixWriter starts each line with prefix (which slot wrote it) and writes whole lines only,
// so slots sharing a console do not cut into each other's lines.
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix []byte
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		line := append(append([]byte(nil), p.prefix...), p.buf[:i+1]...)
		p.buf = p.buf[i+1:]
		if _, err := p.w.Write(line); err != nil {
			return len(b), err
		}
	}
	if len(p.buf) > 64<<10 { // a very long line without a newline: let it through
		p.w.Write(append(append([]byte(nil), p.prefix...), p.buf...))
		p.buf = p.buf[:0]
	}
	return len(b), nil
}
