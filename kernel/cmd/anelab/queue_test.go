package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anelab/anelab/internal/pgtest"
	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
	"github.com/anelab/anelab/kernel/queue"
	"github.com/anelab/anelab/kernel/queue/queuetest"
)

// fleet is where a queue test's processes run: one lab folder per worker, sharing one database —
// the first lab's ledger.db (SQLite: both workers use that one folder) or a PostgreSQL database
// (each worker its own folder, as separate machines would).
type fleet struct {
	url  string   // "" = SQLite
	labs []string // the lab folder of the submitter and worker 0, then of worker 1
}

func forFleets(t *testing.T, test func(t *testing.T, f fleet)) {
	t.Run("sqlite", func(t *testing.T) {
		lab := t.TempDir()
		test(t, fleet{labs: []string{lab, lab}})
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, fleet{url: pgtest.URL(t), labs: []string{t.TempDir(), t.TempDir()}})
	})
}

// cmd is `anelab args…` in lab folder i of the fleet.
func (f fleet) cmd(i int, args ...string) *exec.Cmd {
	c := anelab(f.labs[i], args...)
	if f.url != "" {
		c.Env = append(c.Env, ledger.EnvDB+"="+f.url)
	}
	return c
}

func (f fleet) run(t *testing.T, i int, args ...string) string {
	t.Helper()
	out, err := f.cmd(i, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("anelab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (f fleet) runs(t *testing.T) []ledger.Run {
	t.Helper()
	l, err := ledger.OpenReadOnlyURL(f.labs[0], f.url)
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

// start starts a worker process in lab folder i; wait waits for it and returns its output.
// awaitRunning waits until worker w (started by start; wait reaps it) has a running row in the
// ledger, and returns that row: the worker is then surely mid-job. It kills w after 30 s without one.
func (f fleet) awaitRunning(t *testing.T, w *exec.Cmd, wait func() string) ledger.Run {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, r := range f.runs(t) {
			if r.Status == ledger.StatusRunning && r.PID == w.Process.Pid {
				return r
			}
		}
		if time.Now().After(deadline) {
			w.Process.Kill()
			t.Fatalf("worker (pid %d) started no run in 30 s:\n%s", w.Process.Pid, wait())
		}
	}
}

func (f fleet) start(t *testing.T, i int, extraEnv []string, args ...string) (*exec.Cmd, func() string) {
	t.Helper()
	c := f.cmd(i, append([]string{"worker", "--poll", "200ms"}, args...)...)
	c.Env = append(c.Env, extraEnv...)
	var buf bytes.Buffer
	c.Stdout, c.Stderr = &buf, &buf
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return c, func() string {
		once.Do(func() { c.Wait() })
		return buf.String()
	}
}

// firstAttempt is a run id as submitted (a retry's is "<id>-a2").
var firstAttempt = regexp.MustCompile(`^r[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$`)

func checkReplay(t *testing.T, runs []ledger.Run) {
	t.Helper()
	for _, p := range queuetest.Replay(runs) {
		t.Error(p)
	}
}

// TestWorkersDrainSweep (issue 14, must-show): `anelab submit` queues a 6-spec sweep and two real
// `anelab worker` processes drain it into one ledger: six ok rows, one per job, each judged
// against the head the runs recorded before it left; `anelab queue` shows six done and the
// sweep's ranking. On SQLite (one lab) and on PostgreSQL (two lab folders, one database).
func TestWorkersDrainSweep(t *testing.T) { forFleets(t, testWorkersDrainSweep) }

func testWorkersDrainSweep(t *testing.T, f fleet) {
	out := f.run(t, 0, "submit", testdata+"sweep6.go", "--steps", "30")
	if !strings.Contains(out, "6 job(s)") {
		t.Fatalf("submit:\n%s", out)
	}
	sweep := strings.Fields(out[strings.Index(out, "sweep ")+6:])[0]
	sweep = strings.TrimSuffix(sweep, ",")
	w0, wait0 := f.start(t, 0, nil, "--until-empty")
	w1, wait1 := f.start(t, 1, nil, "--until-empty")
	out0, out1 := wait0(), wait1()
	if !w0.ProcessState.Success() || !w1.ProcessState.Success() {
		t.Fatalf("workers: %v %v\n%s\n%s", w0.ProcessState, w1.ProcessState, out0, out1)
	}
	n0, n1 := strings.Count(out0, "--- anelab run "), strings.Count(out1, "--- anelab run ")
	if n0+n1 != 6 {
		t.Errorf("the workers printed %d + %d verdict blocks, want 6 in all", n0, n1)
	}
	if n0 == 0 || n1 == 0 {
		t.Logf("one worker ran every job (%d, %d): the other started late on this loaded machine", n0, n1)
	}
	runs := f.runs(t)
	if len(runs) != 6 {
		t.Fatalf("%d ledger rows, want 6", len(runs))
	}
	for _, r := range runs {
		if r.Status != ledger.StatusOK || !firstAttempt.MatchString(r.ID) {
			t.Errorf("%s: %s %s", r.ID, r.Status, r.Error)
		}
	}
	checkReplay(t, runs)
	q := f.run(t, 1, "queue", "--sweep", sweep)
	if !strings.Contains(q, "0 waiting, 0 running, 6 done, 0 failed") || !strings.Contains(q, "1. spec 4: val_bpb") ||
		!strings.Contains(q, "head at start:    none") {
		t.Errorf("anelab queue --sweep %s:\n%s", sweep, q)
	}
}

// TestKilledWorker (issue 14, must-show): of two workers draining a sweep, one is killed with
// SIGKILL mid-job. The other takes the job back: the killed attempt is a `killed` row, its retry
// "<id>-a2" is recorded ok, every other job once — 7 rows for 6 jobs, none lost, none twice —
// and the verdicts replay consistently. On SQLite and on PostgreSQL.
func TestKilledWorker(t *testing.T) { forFleets(t, testKilledWorker) }

func testKilledWorker(t *testing.T, f fleet) {
	f.run(t, 0, "submit", testdata+"sweep6.go", "--steps", "30")
	// Worker A trains slowly (3 s a job), so it is surely mid-job when killed.
	a, waitA := f.start(t, 0, []string{"ANELAB_FAKE_STEP_MS=100"})
	victim := f.awaitRunning(t, a, waitA)
	b, waitB := f.start(t, 1, nil, "--until-empty")
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	outA := waitA() // reaped: its pid is gone
	outB := waitB()
	if !b.ProcessState.Success() {
		t.Fatalf("worker B: %v\n%s", b.ProcessState, outB)
	}
	if !strings.Contains(outB, "taken back from gone workers") || !strings.Contains(outB, "attempt 2 of 3 of job "+victim.ID) {
		t.Errorf("worker B did not retry %s:\n%s", victim.ID, outB)
	}
	runs := f.runs(t)
	byID := map[string]ledger.Run{}
	ok := 0
	for _, r := range runs {
		byID[r.ID] = r
		if r.Status == ledger.StatusOK {
			ok++
		}
	}
	if len(runs) != 7 || ok != 6 {
		t.Errorf("%d rows (%d ok), want 7: six jobs ok and the killed attempt\nA:\n%s", len(runs), ok, outA)
	}
	if k := byID[victim.ID]; k.Status != ledger.StatusKilled || k.Decision != "" {
		t.Errorf("killed attempt %s: %q %q", victim.ID, k.Status, k.Decision)
	}
	if r := byID[queue.AttemptID(victim.ID, 2)]; r.Status != ledger.StatusOK || r.Description != victim.Description {
		t.Errorf("retry of %s: %q %q", victim.ID, r.Status, r.Description)
	}
	checkReplay(t, runs)
	if q := f.run(t, 1, "queue"); !strings.Contains(q, "6 done, 0 failed") || !strings.Contains(q, queue.AttemptID(victim.ID, 2)) {
		t.Errorf("anelab queue:\n%s", q)
	}
}

// TestWorkerInterrupted: the first SIGINT lets a worker's run finish; a second interrupts it — the
// run is recorded interrupted and its job goes back to the queue, where the next worker runs it
// as "<id>-a2".
func TestWorkerInterrupted(t *testing.T) {
	lab := t.TempDir()
	f := fleet{labs: []string{lab, lab}}
	f.run(t, 0, "submit", testdata+"baseline.go", "--steps", "30")
	a, waitA := f.start(t, 0, []string{"ANELAB_FAKE_STEP_MS=300"})
	victim := f.awaitRunning(t, a, waitA)
	a.Process.Signal(os.Interrupt)
	time.Sleep(300 * time.Millisecond)
	a.Process.Signal(os.Interrupt)
	outA := waitA()
	if !a.ProcessState.Success() || !strings.Contains(outA, "stopping: no new jobs") {
		t.Fatalf("worker A after two interrupts: %v\n%s", a.ProcessState, outA)
	}
	if r := f.runs(t); len(r) != 1 || r[0].Status != harness.StatusInterrupted {
		t.Fatalf("after the interrupt: %+v\n%s", r, outA)
	}
	out := f.run(t, 1, "worker", "--poll", "200ms", "--until-empty")
	runs := f.runs(t)
	if len(runs) != 2 || runs[1].ID != queue.AttemptID(victim.ID, 2) || runs[1].Status != ledger.StatusOK {
		t.Errorf("rows after the second worker: %+v\n%s", runs, out)
	}
	checkReplay(t, runs)
}
