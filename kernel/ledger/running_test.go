package ledger

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// deadPID returns the pid of a process that has ended (and been waited for).
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot start a process: %v", err)
	}
	return cmd.Process.Pid
}

func rawStatus(t *testing.T, l *Ledger, id string) (status, errMsg string) {
	t.Helper()
	if err := l.db.QueryRow(`SELECT status, error FROM runs WHERE id = ?`, id).Scan(&status, &errMsg); err != nil {
		t.Fatal(err)
	}
	return status, errMsg
}

// TestRunningStates walks the states of a run that trains: Start (running), then Record
// (replaced by the finished row, in recording order); and of one whose process dies: running is
// read as killed when its pid is gone on this host, or its host has rebooted, and stays running
// for another host; Reap makes it stick; neither state decides or moves a head.
func TestRunningStates(t *testing.T) { eachBackend(t, testRunningStates) }

func testRunningStates(t *testing.T, dbURL string) {
	ctx := context.Background()
	dir := t.TempDir()
	l := open(t, dir, dbURL)

	// A live run (this process) is running; its Record replaces the row and takes the next seq.
	live := okRun("main", 3.0)
	if err := l.Start(ctx, live); err != nil {
		t.Fatal(err)
	}
	if live.PID != os.Getpid() || live.Host == "" {
		t.Errorf("Start stamped pid %d host %q, want %d and this host", live.PID, live.Host, os.Getpid())
	}
	startSeq := live.Seq
	other := okRun("main", 4.0) // recorded while live trains
	if err := l.Record(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Get(ctx, live.ID); err != nil || got.Status != StatusRunning || got.Mark() != StatusRunning {
		t.Fatalf("live run reads as %q (%v), want running", got.Status, err)
	}
	if other.Decision != Keep {
		t.Fatalf("first finished ok run: %q, want keep (a running run is no head)", other.Decision)
	}
	live.Status, live.ValLoss = StatusOK, 3.0
	if err := l.Record(ctx, live); err != nil {
		t.Fatal(err)
	}
	if live.Decision != Keep || live.PrevHead != other.ID || live.Seq <= other.Seq || live.Seq == startSeq {
		t.Errorf("recorded live run: decision %q prev head %q seq %d (start %d, other %d)", live.Decision,
			live.PrevHead, live.Seq, startSeq, other.Seq)
	}
	runs, err := l.Runs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[1].ID != live.ID || runs[1].PID != os.Getpid() {
		t.Fatalf("after Record: %d rows %+v, want 2 with the live run last, pid kept", len(runs), runs)
	}

	// Runs whose processes are gone, and one on another host.
	pid := deadPID(t)
	killed := &Run{ID: NewID(time.Now()), Lineage: "main", Description: "killed", PID: pid, Host: self.host}
	elsewhere := &Run{ID: NewID(time.Now()), Lineage: "main", PID: pid, Host: self.host + "-other"}
	for _, r := range []*Run{killed, elsewhere} {
		if err := l.Start(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var rebooted *Run
	if self.boot != "" {
		rebooted = &Run{ID: NewID(time.Now()), Lineage: "main", PID: os.Getpid(), Host: self.host, Boot: "another-boot"}
		if err := l.Start(ctx, rebooted); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{killed.ID: StatusKilled, elsewhere.ID: StatusRunning}
	if rebooted != nil {
		want[rebooted.ID] = StatusKilled
	}
	check := func(when string) {
		t.Helper()
		for id, w := range want {
			r, err := l.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != w || r.Mark() != w || r.Decision != "" {
				t.Errorf("%s: %s reads as %q/%q, want %q", when, id, r.Status, r.Decision, w)
			}
			if w == StatusKilled && r.Error != killedMsg(r.PID, r.Host) {
				t.Errorf("%s: killed run's error %q", when, r.Error)
			}
		}
		if h, _, _ := l.Head(ctx, "main"); h.ID != live.ID {
			t.Errorf("%s: head %s, want %s", when, h.ID, live.ID)
		}
	}
	check("read lazily")
	if s, _ := rawStatus(t, l, killed.ID); s != StatusRunning {
		t.Errorf("before Reap the row is stored as %q, want running (readers resolve it)", s)
	}
	n, err := l.Reap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want)-1 {
		t.Errorf("Reap rewrote %d runs, want %d", n, len(want)-1)
	}
	if s, msg := rawStatus(t, l, killed.ID); s != StatusKilled || !strings.Contains(msg, "ended without recording a result") {
		t.Errorf("after Reap the row is stored as %q %q", s, msg)
	}
	if s, _ := rawStatus(t, l, elsewhere.ID); s != StatusRunning {
		t.Errorf("a run on another host was reaped (%q)", s)
	}
	check("after Reap")

	// A later ok run decides against the head as if the killed runs were not there.
	worse := okRun("main", 3.5)
	if err := l.Record(ctx, worse); err != nil {
		t.Fatal(err)
	}
	if worse.Decision != Discard || worse.PrevHead != live.ID || worse.PrevBest != 3.0 {
		t.Errorf("after killed runs: %q against %q (%g), want discard against %s (3)", worse.Decision, worse.PrevHead,
			worse.PrevBest, live.ID)
	}

	// A run reaped by mistake that records after all replaces its killed row.
	killed.Status, killed.ValLoss, killed.Error = StatusOK, 2.0, ""
	if err := l.Record(ctx, killed); err != nil {
		t.Fatal(err)
	}
	if r, _ := l.Get(ctx, killed.ID); r.Status != StatusOK || r.Decision != Keep {
		t.Errorf("late record of a killed run: %q %q", r.Status, r.Decision)
	}

	// Record refuses to end a run as running or killed.
	for _, s := range []string{StatusRunning, StatusKilled} {
		if err := l.Record(ctx, &Run{ID: NewID(time.Now()), Lineage: "main", Status: s}); err == nil {
			t.Errorf("Record accepted status %q", s)
		}
	}

	// results.tsv: the running row is there with no finish time; Open reaps and re-exports.
	if _, err := l.ExportTSV(ctx); err != nil {
		t.Fatal(err)
	}
	rows := readTSV(t, filepath.Join(dir, TSVFile))
	found := false
	for _, row := range rows[1:] {
		if row[0] == elsewhere.ID {
			found = true
			if row[3] != StatusRunning || row[17] != "" {
				t.Errorf("results.tsv row of a running run: status %q finished %q", row[3], row[17])
			}
		}
	}
	if !found {
		t.Errorf("results.tsv lacks the running run %s", elsewhere.ID)
	}
}

// TestOpenReapsAndExports: a run killed while no ledger was open is killed in the database and
// in results.tsv after the next Open.
func TestOpenReapsAndExports(t *testing.T) { eachBackend(t, testOpenReapsAndExports) }

func testOpenReapsAndExports(t *testing.T, dbURL string) {
	ctx := context.Background()
	dir := t.TempDir()
	l := open(t, dir, dbURL)
	r := &Run{ID: NewID(time.Now()), Lineage: "main", PID: deadPID(t), Host: self.host}
	if err := l.Start(ctx, r); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = open(t, dir, dbURL)
	if s, _ := rawStatus(t, l, r.ID); s != StatusKilled {
		t.Errorf("after Open: stored as %q, want killed", s)
	}
	rows := readTSV(t, filepath.Join(dir, TSVFile))
	if len(rows) != 2 || rows[1][0] != r.ID || rows[1][3] != StatusKilled {
		t.Errorf("results.tsv after Open: %q", rows)
	}
}

// TestMigrateV1 opens a ledger written before the pid/host/boot columns: they are added, and the
// old rows read as before.
func TestMigrateV1(t *testing.T) { eachBackend(t, testMigrateV1) }

func testMigrateV1(t *testing.T, dbURL string) {
	dir := t.TempDir()
	db := rawDB(t, dir, dbURL)
	added := ",\n\tpid INTEGER NOT NULL DEFAULT 0,\n\thost TEXT NOT NULL DEFAULT '',\n\tboot TEXT NOT NULL DEFAULT ''"
	old := strings.Replace(schema, added, "", 1)
	if old == schema || strings.Contains(old, "boot") {
		t.Fatalf("could not build the v1 schema:\n%s", old)
	}
	if _, err := db.Exec(db.d.ddl(old)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO runs (id, lineage, status, val_loss, started, finished) VALUES ('r1', 'main', 'ok', 3, '', '')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l := open(t, dir, dbURL)
	got, err := l.Get(context.Background(), "r1")
	if err != nil || got.Status != StatusOK || got.ValLoss != 3 || got.PID != 0 {
		t.Fatalf("old row after migration: %+v %v", got, err)
	}
	r := okRun("main", 2.0)
	if err := l.Start(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}
