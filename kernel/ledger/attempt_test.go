package ledger

import (
	"context"
	"strings"
	"testing"
	"time"
)

// repeatSet is n runs of one config (hash A) as one repeat set, with the given metrics.
func repeatSet(bpbs ...float64) []*Run {
	var set []*Run
	for i, v := range bpbs {
		r := hashedRun("A", v)
		r.RepeatOf = r.ID
		if i > 0 {
			r.RepeatOf = set[0].ID
		}
		r.Repeat, r.Repeats = i, len(bpbs)
		set = append(set, r)
	}
	return set
}

// TestRepeatSetDecidedByLastRecorded records a set's repeats out of index order, as concurrent
// workers finish them: the run recorded last decides (whatever its index), the earlier ones wait,
// and the head is the decider.
func TestRepeatSetDecidedByLastRecorded(t *testing.T) {
	ctx := context.Background()
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	set := repeatSet(1.00, 1.02, 0.98)
	for _, i := range []int{2, 0, 1} { // index 1 is recorded last
		r := set[i]
		if err := l.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
		if wantPending := i != 1; r.Pending != wantPending || (r.Decision == "") != wantPending {
			t.Errorf("repeat %d: pending %v decision %q", i, r.Pending, r.Decision)
		}
	}
	if set[1].Decision != Keep {
		t.Fatalf("last-recorded repeat: %s %s", set[1].Decision, set[1].Verdict)
	}
	if info, _ := set[1].Info(); info.Cand.N != 3 {
		t.Errorf("decided on %d runs, want the whole set of 3", info.Cand.N)
	}
	runs, _ := l.Runs(ctx, "main")
	for _, r := range runs {
		if r.Decision != Keep {
			t.Errorf("repeat %s: %q after the set was decided", r.ID, r.Decision)
		}
	}
	if h, _, _ := l.Head(ctx, "main"); h.ID != set[1].ID {
		t.Errorf("head %s, want the last-recorded repeat %s", h.ID, set[1].ID)
	}
}

// TestRepeatSetFailedLast: when the run recorded last crashed, the set's latest ok run decides
// for the set, against the head as it stands when the set completes.
func TestRepeatSetFailedLast(t *testing.T) {
	ctx := context.Background()
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	base := okRun("main", 8)
	base.ValBPB, base.ConfigHash, base.Budget = 2.0, "B", "steps 10"
	set := repeatSet(1.00, 1.02, 0)
	set[2].Status, set[2].ValLoss, set[2].ValBPB, set[2].Error = StatusCrash, 0, 0, "panic"
	for _, r := range []*Run{set[0], base, set[1], set[2]} {
		if err := l.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if set[0].PrevHead != "" || set[1].PrevHead != base.ID {
		t.Errorf("prev heads when recorded: %q %q", set[0].PrevHead, set[1].PrevHead)
	}
	got, _ := l.Get(ctx, set[1].ID)
	if got.Decision != Keep || got.PrevHead != base.ID || strings.HasPrefix(got.Verdict, "repeat") {
		t.Errorf("latest ok repeat after the crash: %q against %q: %s", got.Decision, got.PrevHead, got.Verdict)
	}
	if first, _ := l.Get(ctx, set[0].ID); first.Decision != Keep || !strings.Contains(first.Verdict, set[1].ID) {
		t.Errorf("first repeat: %q %s", first.Decision, first.Verdict)
	}
	if crashed, _ := l.Get(ctx, set[2].ID); crashed.Decision != "" {
		t.Errorf("crashed repeat decided %q", crashed.Decision)
	}
	if h, _, _ := l.Head(ctx, "main"); h.ID != set[1].ID {
		t.Errorf("head %s, want %s", h.ID, set[1].ID)
	}
}

// TestAbandon: a running attempt becomes killed, a missing one is inserted as killed, a recorded
// one is left alone and reported; none of them moves a head or decides.
func TestAbandon(t *testing.T) {
	ctx := context.Background()
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	running := &Run{ID: "rjob-1", Lineage: "main", Description: "started"}
	if err := l.Start(ctx, running); err != nil {
		t.Fatal(err)
	}
	done := okRun("main", 3)
	if err := l.Record(ctx, done); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run      *Run
		recorded bool
	}{
		{&Run{ID: "rjob-1", Lineage: "main"}, false},
		{&Run{ID: "rjob-2-a2", Lineage: "main", Description: "never started", Started: time.Now()}, false},
		{&Run{ID: done.ID, Lineage: "main"}, true},
	} {
		rec, err := l.Abandon(ctx, tc.run, "worker gone")
		if err != nil || rec != tc.recorded {
			t.Errorf("Abandon(%s) = %v, %v; want %v", tc.run.ID, rec, err, tc.recorded)
		}
	}
	for id, want := range map[string]string{"rjob-1": StatusKilled, "rjob-2-a2": StatusKilled, done.ID: StatusOK} {
		r, err := l.Get(ctx, id)
		if err != nil || r.Status != want {
			t.Errorf("%s: %q %v, want %q", id, r.Status, err, want)
		}
		if want == StatusKilled && (r.Error != "worker gone" || r.Decision != "") {
			t.Errorf("%s: error %q decision %q", id, r.Error, r.Decision)
		}
	}
	if h, _, _ := l.Head(ctx, "main"); h.ID != done.ID {
		t.Errorf("head %s, want %s", h.ID, done.ID)
	}
	if r, _ := l.Get(ctx, "rjob-2-a2"); r.Description != "never started" {
		t.Errorf("inserted attempt lost its description: %+v", r)
	}
	// A killed attempt may be recorded after all (its retry): Record replaces the killed row.
	late := &Run{ID: "rjob-1", Lineage: "main", Status: StatusCrash, Error: "x"}
	if err := l.Record(ctx, late); err != nil {
		t.Fatal(err)
	}
	runs, _ := l.Runs(ctx, "")
	if len(runs) != 3 {
		t.Errorf("%d rows, want 3", len(runs))
	}
}
