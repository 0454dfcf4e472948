package ledger

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anelab/anelab/internal/pgtest"
)

func okRun(lineage string, val float64) *Run {
	return &Run{ID: NewID(time.Now()), Lineage: lineage, Status: StatusOK, ValLoss: val, Description: fmt.Sprint("val ", val)}
}

// TestKeepDiscard walks one lineage through the decision table: first ok run keeps, equal and
// worse discards, a tie is within noise, strictly better keeps (no noise estimate: the strict test), failures never decide and never move the head.
func TestKeepDiscard(t *testing.T) { eachBackend(t, testKeepDiscard) }

func testKeepDiscard(t *testing.T, dbURL string) {
	ctx := context.Background()
	l := open(t, t.TempDir(), dbURL)
	steps := []struct {
		run      *Run
		decision string
		head     int // index into the steps whose run is the head afterwards
	}{
		{okRun("main", 3.0), Keep, 0},
		{okRun("main", 3.5), Discard, 0},
		{okRun("main", 3.0), WithinNoise, 0}, // equal is not an improvement (strict test: a tie)
		{&Run{ID: NewID(time.Now()), Lineage: "main", Status: StatusCrash, Error: "panic"}, "", 0},
		{&Run{ID: NewID(time.Now()), Lineage: "main", Status: StatusDiverged}, "", 0},
		{okRun("main", 2.9), Keep, 5},
		{okRun("other", 9.0), Keep, 6}, // another lineage has its own head
		{okRun("main", 2.95), Discard, 5},
	}
	for i, s := range steps {
		prevHead, _, _ := l.Head(ctx, s.run.Lineage)
		if err := l.Record(ctx, s.run); err != nil {
			t.Fatal(err)
		}
		if s.run.Decision != s.decision {
			t.Errorf("step %d: decision %q, want %q", i, s.run.Decision, s.decision)
		}
		if s.run.PrevHead != prevHead.ID {
			t.Errorf("step %d: prev head %q, want %q", i, s.run.PrevHead, prevHead.ID)
		}
		h, ok, err := l.Head(ctx, s.run.Lineage)
		if err != nil || !ok {
			t.Fatalf("step %d: head: %v %v", i, ok, err)
		}
		if want := steps[s.head].run.ID; h.ID != want {
			t.Errorf("step %d: head %s, want %s", i, h.ID, want)
		}
	}
	runs, _ := l.Runs(ctx, "")
	if len(runs) != len(steps) {
		t.Fatalf("%d runs, want %d", len(runs), len(steps))
	}
	ls, err := l.Lineages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[0].Name != "main" || ls[0].Best != 2.9 || ls[0].Runs != 7 || ls[0].Kept != 2 {
		t.Errorf("lineages: %+v", ls)
	}
}

// TestConcurrentWriters has several ledgers (separate connections, as separate processes
// would) record and export at once: every row lands; replayed in recording order (seq), each run
// was judged against the head the previous keep left (prev_head), the keeps are exactly the runs
// that beat every earlier one, and the final head is the best; the final export has every row.
// Half the writers record ever better runs (keeps), half worse ones (discards). On PostgreSQL this
// fails without the ledger's write lock (beginWrite): two Records read the same head.
func TestConcurrentWriters(t *testing.T) { eachBackend(t, testConcurrentWriters) }

func testConcurrentWriters(t *testing.T, dbURL string) {
	ctx := context.Background()
	dir := t.TempDir()
	const writers, each = 4, 6
	var ready, wg sync.WaitGroup
	ready.Add(writers)
	errs := make(chan error, writers*each*2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			l, err := OpenURL(dir, dbURL)
			ready.Done()
			if err != nil {
				errs <- err
				return
			}
			defer l.Close()
			ready.Wait() // all open: record together
			for i := 0; i < each; i++ {
				val := float64(100 - i*writers - w) // better and better
				if w%2 == 1 {
					val = float64(200 + i) // never better than the first run
				}
				if err := l.Record(ctx, okRun("main", val)); err != nil {
					errs <- err
				}
				if _, err := l.ExportTSV(ctx); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	l := open(t, dir, dbURL)
	runs, _ := l.Runs(ctx, "")
	if len(runs) != writers*each {
		t.Fatalf("%d runs, want %d", len(runs), writers*each)
	}
	best, head := 1e9, ""
	for _, r := range runs {
		if r.PrevHead != head {
			t.Errorf("run %s (seq %d) judged against head %q, but the head then was %q", r.ID, r.Seq, r.PrevHead, head)
		}
		if (r.ValLoss < best) != (r.Decision == Keep) {
			t.Errorf("run %s val %g decided %s with best %g", r.ID, r.ValLoss, r.Decision, best)
		}
		if r.ValLoss < best {
			best, head = r.ValLoss, r.ID
		}
	}
	if want := float64(100 - (each-1)*writers - (writers - 2)); best != want {
		t.Errorf("best %g, want %g", best, want)
	}
	if h, _, _ := l.Head(ctx, "main"); h.ID != head {
		t.Errorf("head %s (val %g), want %s (val %g)", h.ID, h.ValLoss, head, best)
	}
	rows := readTSV(t, filepath.Join(dir, TSVFile))
	if len(rows) != writers*each+1 {
		t.Errorf("results.tsv has %d lines, want %d", len(rows), writers*each+1)
	}
}

func readTSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '\t'
	r.LazyQuotes = true
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestTSVColumns(t *testing.T) { eachBackend(t, testTSVColumns) }

func testTSVColumns(t *testing.T, dbURL string) {
	ctx := context.Background()
	dir := t.TempDir()
	l := open(t, dir, dbURL)
	a := okRun("main", 2.5)
	a.Description = "tabs\tand\nnewlines"
	a.UtilPct = 12.345
	b := &Run{ID: NewID(time.Now()), Lineage: "main", Status: StatusInvalid, Error: "invalid config:\n  - model.dim"}
	for _, r := range []*Run{a, b} {
		if err := l.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.ExportTSV(ctx); err != nil {
		t.Fatal(err)
	}
	rows := readTSV(t, filepath.Join(dir, TSVFile))
	if got := strings.Join(rows[0][:5], " "); got != "commit val_loss ane_util_pct status description" {
		t.Errorf("header starts %q", got)
	}
	want := [][]string{
		{a.ID, "2.500000", "12.3", "keep", "tabs and newlines"},
		{b.ID, "", "0.0", "invalid", ""}, // no loss: empty, never 0
	}
	for i, w := range want {
		if got := rows[i+1][:5]; strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("row %d: %q, want %q", i+1, got, w)
		}
		if len(rows[i+1]) != len(TSVHeader) {
			t.Errorf("row %d has %d columns, want %d", i+1, len(rows[i+1]), len(TSVHeader))
		}
	}
	if got := rows[2][18]; got != "invalid config:" {
		t.Errorf("error column %q, want its first line", got)
	}
}

func TestCheckLineage(t *testing.T) {
	for name, ok := range map[string]bool{"main": true, "lion-accum_4.x": true, "": false, "-x": false,
		"a/b": false, strings.Repeat("a", 65): false} {
		if err := CheckLineage(name); (err == nil) != ok {
			t.Errorf("CheckLineage(%q) = %v", name, err)
		}
	}
}

// TestStoppedWriter: on PostgreSQL a process that stops inside a write transaction (holding the
// ledger's lock) loses its session after pgIdleInTx, so other machines go on recording; while
// the lock is held, a writer waits at most pgLockTimeout and says why it failed.
func TestStoppedWriter(t *testing.T) {
	dbURL := pgtest.URL(t)
	defer func(a, b time.Duration) { pgLockTimeout, pgIdleInTx = a, b }(pgLockTimeout, pgIdleInTx)
	pgLockTimeout, pgIdleInTx = 300*time.Millisecond, 2*time.Second
	ctx := context.Background()
	dir := t.TempDir()
	stopped, other := open(t, dir, dbURL), open(t, dir, dbURL)
	tx, err := stopped.beginWrite(ctx) // holds the lock, then does nothing
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := other.Record(ctx, okRun("main", 1)); err == nil || !strings.Contains(err.Error(), "another writer has held it") {
		t.Fatalf("Record while another session holds the lock: %v, want a lock timeout", err)
	}
	time.Sleep(3 * pgIdleInTx / 2)
	r := okRun("main", 1)
	if err := other.Record(ctx, r); err != nil || r.Decision != Keep {
		t.Fatalf("Record after the stopped writer's session ended: %v %q", err, r.Decision)
	}
	if err := tx.Commit(); err == nil {
		t.Error("the stopped writer's transaction committed after its session was ended")
	}
}
