package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/internal/pgtest"
	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/harness/harnesstest"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/queue/queuetest"
)

const sweep6 = "../harness/testdata/sweep6.go"

func TestMain(m *testing.M) { pgtest.Main(m) }

// forBackends runs test on the lab's SQLite ledger.db and on a PostgreSQL database of a server the
// test starts (skipped, naming the Debian package, where PostgreSQL is not installed). ANELAB_DB
// is set for the PostgreSQL case, so every harness and ledger the test opens uses it.
func forBackends(t *testing.T, test func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "") })
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		t.Setenv(ledger.EnvDB, url)
		test(t, url)
	})
}

// syncBuffer is a console several slots write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func harnessOpts(out *syncBuffer) harness.Options {
	return harness.Options{Runner: harnesstest.FakeRunner, Out: out, Steps: 30}
}

// submit queues script on the lab's queue (url "" = SQLite) and returns the sweep.
func submit(t *testing.T, lab, url, script string, repeats int) (*Queue, Submitted) {
	t.Helper()
	ctx := context.Background()
	q, err := Open(ctx, lab, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	opts := harnessOpts(&syncBuffer{})
	opts.Lab, opts.Repeats = lab, repeats
	h, err := harness.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s, err := q.SubmitScript(ctx, h, script, "")
	if err != nil {
		t.Fatal(err)
	}
	return q, s
}

// CheckReplay fails t for every place runs break the queue's semantics (queuetest.Replay).
func CheckReplay(t *testing.T, runs []ledger.Run) {
	t.Helper()
	for _, p := range queuetest.Replay(runs) {
		t.Error(p)
	}
}

func ledgerRuns(t *testing.T, lab string) []ledger.Run {
	t.Helper()
	l, err := ledger.Open(lab)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	runs, err := l.Runs(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// TestTwoWorkersDrainSweep: two workers (separate connections and River clients, as two processes
// would have) drain a 6-job sweep: six rows, one per job, each decided against the head its
// predecessors left; the sweep's ranking is by val_bpb against the head at submit.
func TestTwoWorkersDrainSweep(t *testing.T) { forBackends(t, testTwoWorkersDrainSweep) }

func testTwoWorkersDrainSweep(t *testing.T, url string) {
	lab := t.TempDir()
	q, s := submit(t, lab, url, sweep6, 0)
	if len(s.IDs) != 6 {
		t.Fatalf("queued %d jobs, want 6", len(s.IDs))
	}
	var wg sync.WaitGroup
	outs := make([]syncBuffer, 2)
	stats := make([]Stats, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := Open(context.Background(), lab, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer w.Close()
			stats[i], errs[i] = w.Work(context.Background(), WorkerOptions{Slots: 1, ThreadsPerSlot: i + 1, UntilEmpty: true, Poll: 100 * time.Millisecond,
				ClientID: fmt.Sprintf("test-worker-%d", i), Harness: harnessOpts(&outs[i])})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v\n%s", i, err, outs[i].String())
		}
	}
	if stats[0].Runs+stats[1].Runs != 6 {
		t.Errorf("workers ran %d + %d attempts, want 6 in all", stats[0].Runs, stats[1].Runs)
	}
	runs := ledgerRuns(t, lab)
	if len(runs) != 6 {
		t.Fatalf("%d ledger rows, want 6", len(runs))
	}
	ids := map[string]bool{}
	for _, r := range runs {
		ids[r.ID] = true
		// Each worker's --threads-per-slot is what trained, and threads stay out of the config hash.
		if !strings.Contains(r.Config, `"threads":1`) && !strings.Contains(r.Config, `"threads":2`) {
			t.Errorf("%s trained with threads other than its worker's: %s", r.ID, r.Config)
		}
		var cfg config.Config
		json.Unmarshal([]byte(r.Config), &cfg)
		cfg.Train.Threads = 7
		if h := harness.ConfigHash(cfg, r.Parent, "", r.DataSum); h != r.ConfigHash {
			t.Errorf("%s: config hash %s depends on threads (%s with 7)", r.ID, r.ConfigHash, h)
		}
		if r.Status != ledger.StatusOK {
			t.Errorf("%s: %s %s", r.ID, r.Status, r.Error)
		}
	}
	for _, j := range s.Jobs {
		if !ids[j.ID] {
			t.Errorf("job %s has no row", j.ID)
		}
	}
	CheckReplay(t, runs)

	l, _ := ledger.Open(lab)
	defer l.Close()
	js, err := q.Jobs(context.Background(), l, s.Sweep)
	if err != nil || len(js) != 6 {
		t.Fatalf("queue lists %d jobs of the sweep (%v)", len(js), err)
	}
	for _, j := range js {
		if j.State != Done || j.Status != ledger.StatusOK {
			t.Errorf("job %s: %s/%s", j.Run, j.State, j.Status)
		}
	}
	h, _ := harness.New(harness.Options{Lab: lab, Runner: harnesstest.FakeRunner})
	defer h.Close()
	start, jobs, rs, err := q.SweepRuns(context.Background(), l, s.Sweep)
	if err != nil {
		t.Fatal(err)
	}
	if start["q"].OK {
		t.Errorf("head at submit: %+v, want none (the lineage was empty)", start["q"])
	}
	ranks := h.Ranking(context.Background(), start, jobs, rs)
	if len(ranks) != 6 || ranks[0].Description != "lr 0.001" {
		t.Errorf("ranking: %+v", ranks)
	}
	for k := 1; k < len(ranks); k++ {
		if ranks[k].Sample.Mean < ranks[k-1].Sample.Mean {
			t.Errorf("ranking out of order at %d: %+v", k, ranks)
		}
	}
}

// deadPID is the pid of a process that has ended.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestGoneWorkerRescued leaves a job as a killed worker leaves it — running, held by a process
// that has ended, with no row or a running row — and checks a worker takes it back: the attempt
// becomes a killed row, the retry "<id>-a2" is recorded; a gone worker's attempt that had recorded
// its end is not run again.
func TestGoneWorkerRescued(t *testing.T) { forBackends(t, testGoneWorkerRescued) }

func testGoneWorkerRescued(t *testing.T, url string) {
	ctx := context.Background()
	lab := t.TempDir()
	q, s := submit(t, lab, url, sweep6, 0)
	host, boot := ledger.Self()
	gone := fmt.Sprintf("anelab-%d-%s-%s", deadPID(t), strings.ReplaceAll(boot, "-", ""), host)
	if !holderGone(gone) || holderGone(clientID()) || holderGone("anelab-1-x-otherhost.example") {
		t.Fatalf("holderGone: dead %v, self %v, other host %v", holderGone(gone), holderGone(clientID()),
			holderGone("anelab-1-x-otherhost.example"))
	}
	// The gone worker took three jobs: it left no row for the first, a running row for the
	// second, and recorded the third before it died.
	now := time.Now()
	res, err := q.exec.JobGetAvailable(ctx, &riverdriver.JobGetAvailableParams{ClientID: gone, Queue: Name, MaxToLock: 3,
		MaxAttemptedBy: 10, Now: &now})
	if err != nil || len(res.Jobs) != 3 {
		t.Fatalf("taking 3 jobs: %v %v", res, err)
	}
	l, err := ledger.Open(lab)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	args := func(k int) Args {
		var a Args
		if err := json.Unmarshal(res.Jobs[k].EncodedArgs, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a1, a2 := args(1), args(2)
	pid := deadPID(t)
	if err := l.Start(ctx, &ledger.Run{ID: a1.Job.ID, Lineage: "q", PID: pid, Host: host, Boot: boot}); err != nil {
		t.Fatal(err)
	}
	done := &ledger.Run{ID: a2.Job.ID, Lineage: "q", Status: ledger.StatusOK, ValLoss: 9, ValBPB: 9}
	if err := l.Record(ctx, done); err != nil {
		t.Fatal(err)
	}

	var out syncBuffer
	st, err := q.Work(ctx, WorkerOptions{Slots: 2, UntilEmpty: true, Poll: 100 * time.Millisecond, ClientID: "test-rescuer",
		Harness: harnessOpts(&out)})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if st.Rescued != 3 || st.Recorded != 1 || st.Runs != 5 {
		t.Errorf("stats %+v, want 3 rescued, 1 found recorded, 5 runs", st)
	}
	runs := ledgerRuns(t, lab)
	byID := map[string]ledger.Run{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	if len(runs) != 8 { // 6 jobs + 2 killed attempts
		t.Errorf("%d rows, want 8", len(runs))
	}
	for _, k := range []int{0, 1} {
		id := args(k).Job.ID
		if r := byID[id]; r.Status != ledger.StatusKilled || r.Decision != "" {
			t.Errorf("attempt 1 of job %s: %q %q", id, r.Status, r.Decision)
		}
		if r := byID[AttemptID(id, 2)]; r.Status != ledger.StatusOK {
			t.Errorf("attempt 2 of job %s: %q (%s)", id, r.Status, r.Error)
		}
	}
	if r := byID[a2.Job.ID]; r.Status != ledger.StatusOK || r.ValBPB != 9 {
		t.Errorf("recorded attempt: %+v", r)
	}
	if _, ok := byID[AttemptID(a2.Job.ID, 2)]; ok {
		t.Errorf("job %s recorded twice", a2.Job.ID)
	}
	CheckReplay(t, runs)
	js, _ := q.Jobs(ctx, l, s.Sweep)
	for _, j := range js {
		if j.State != Done {
			t.Errorf("job %s: %s (%s)", j.Run, j.State, j.Status)
		}
	}
}

// TestOpenRefusesOtherDatabases: a URL that is not PostgreSQL is refused naming the setting and
// what to do, with its password masked.
func TestOpenRefusesOtherDatabases(t *testing.T) {
	_, err := Open(context.Background(), t.TempDir(), "mysql://u:secret@host/db")
	if err == nil || !strings.Contains(err.Error(), ledger.EnvDB) || !strings.Contains(err.Error(), "postgres://") ||
		strings.Contains(err.Error(), "secret") {
		t.Errorf("Open(mysql://…): %v", err)
	}
}
