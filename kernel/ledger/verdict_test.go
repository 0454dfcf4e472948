package ledger

import (
	"context"
	"database/sql"
	"math"
	"strings"
	"testing"
	"time"
)

func hashedRun(hash string, bpb float64) *Run {
	r := okRun("main", bpb*4)
	r.ValBPB, r.ConfigHash, r.Budget = bpb, hash, "steps 10"
	return r
}

// TestNoiseAwareVerdicts walks a lineage through repeats, the noise floor, within-noise, keep by
// k-sigma and a same-config re-run, checking each verdict's numbers against the formulas.
func TestNoiseAwareVerdicts(t *testing.T) { eachBackend(t, testNoiseAwareVerdicts) }

func testNoiseAwareVerdicts(t *testing.T, dbURL string) {
	ctx := context.Background()
	l := open(t, t.TempDir(), dbURL)
	rec := func(r *Run) *Run {
		t.Helper()
		if err := l.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// A baseline repeated 3 times: one set, decided by its last repeat (first of the lineage).
	var set []*Run
	for i, v := range []float64{1.00, 1.02, 0.98} {
		r := hashedRun("A", v)
		if i > 0 {
			r.RepeatOf = set[0].ID
		} else {
			r.RepeatOf = r.ID
		}
		r.Repeat, r.Repeats, r.Pending = i, 3, i < 2
		set = append(set, rec(r))
	}
	if set[0].Decision != "" || !strings.Contains(set[0].Verdict, "repeat 1/3") {
		t.Fatalf("pending repeat decided %q: %s", set[0].Decision, set[0].Verdict)
	}
	if set[2].Decision != Keep {
		t.Fatalf("last repeat: %s %s", set[2].Decision, set[2].Verdict)
	}
	runs, _ := l.Runs(ctx, "main")
	for _, r := range runs {
		if r.Decision != Keep {
			t.Errorf("repeat %s: decision %q after the set was decided", r.ID, r.Decision)
		}
	}
	if h, _, _ := l.Head(ctx, "main"); h.ID != set[2].ID {
		t.Errorf("head %s, want the last repeat %s", h.ID, set[2].ID)
	}
	floor, ok, err := l.Noise(ctx, "steps 10")
	if err != nil || !ok || floor.DoF != 2 || math.Abs(floor.SD-0.02) > 1e-12 {
		t.Fatalf("noise floor %+v %v %v, want sd 0.02 dof 2", floor, ok, err)
	}

	// One run better by 0.03: margin 2·0.02·√(1+1/3) = 0.0462 → within noise.
	b := rec(hashedRun("B", 0.97))
	info, _ := b.Info()
	if b.Decision != WithinNoise || info.Test != "k-sigma" || math.Abs(info.Margin-2*0.02*math.Sqrt(4.0/3)) > 1e-12 ||
		math.Abs(info.Delta-0.03) > 1e-12 || info.Head.N != 3 || info.Cand.N != 1 {
		t.Fatalf("B: %s (%+v)", b.Verdict, info)
	}
	if !strings.Contains(b.Verdict, "k-sigma") || !strings.Contains(b.Verdict, "σ=0.0200") {
		t.Errorf("B verdict does not say what decided: %s", b.Verdict)
	}
	// Better by 0.10 → keep, head moves.
	c := rec(hashedRun("C", 0.90))
	if c.Decision != Keep {
		t.Fatalf("C: %s", c.Verdict)
	}
	// Worse by 0.10 → discard.
	if d := rec(hashedRun("D", 1.00)); d.Decision != Discard {
		t.Fatalf("D: %s", d.Verdict)
	}
	// C again with another seed: same config as the head, pooled, never a keep against itself.
	c2 := rec(hashedRun("C", 0.91))
	if c2.Decision != WithinNoise || !strings.Contains(c2.Verdict, "same config as the head "+c.ID) {
		t.Fatalf("C again: %s %s", c2.Decision, c2.Verdict)
	}
	if info, _ := c2.Info(); info.Cand.N != 2 || info.Head.N != 2 || !info.SameConfig {
		t.Fatalf("C again pooled: %+v", info)
	}
	// The floor pools A (Σ = 0.0008, dof 2) and C (Σ = 0.00005, dof 1).
	floor, _, _ = l.Noise(ctx, "steps 10")
	if floor.DoF != 3 || floor.Groups != 2 || math.Abs(floor.SD-math.Sqrt(0.00085/3)) > 1e-12 {
		t.Fatalf("noise floor %+v", floor)
	}
	// A crash stores NULL losses and never becomes a best.
	x := rec(&Run{ID: NewID(time.Now()), Lineage: "main", Status: StatusCrash, Error: "boom", ConfigHash: "E", Budget: "steps 10"})
	var isNull bool
	if err := l.db.QueryRow(`SELECT val_loss IS NULL AND val_bpb IS NULL FROM runs WHERE id = ?`, x.ID).Scan(&isNull); err != nil || !isNull {
		t.Fatalf("crash val_loss NULL: %v %v", isNull, err)
	}
	if h, _, _ := l.Head(ctx, "main"); h.ID != c.ID {
		t.Errorf("head %s, want %s", h.ID, c.ID)
	}
}

// TestMigrateNullLosses opens a ledger written with the version-2 schema (NOT NULL losses, a
// crash stored as 0): the losses become nullable, the crash's are NULL, ok rows keep theirs.
func TestMigrateNullLosses(t *testing.T) { eachBackend(t, testMigrateNullLosses) }

func testMigrateNullLosses(t *testing.T, dbURL string) {
	dir := t.TempDir()
	db := rawDB(t, dir, dbURL)
	old := strings.NewReplacer("\tval_loss REAL,", "\tval_loss REAL NOT NULL DEFAULT 0,",
		"\tval_bpb REAL,", "\tval_bpb REAL NOT NULL DEFAULT 0,", "\ttrain_loss REAL,", "\ttrain_loss REAL NOT NULL DEFAULT 0,").Replace(schema)
	if !strings.Contains(old, "val_loss REAL NOT NULL") {
		t.Fatal("test setup: schema text changed")
	}
	for _, q := range []string{db.d.ddl(old),
		`INSERT INTO runs (id, lineage, status, val_loss, val_bpb) VALUES ('a', 'main', 'ok', 2.5, 0.9), ('b', 'main', 'crash', 0, 0)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	l := open(t, dir, dbURL)
	var a, b sql.NullFloat64
	l.db.QueryRow(`SELECT val_loss FROM runs WHERE id = 'a'`).Scan(&a)
	l.db.QueryRow(`SELECT val_loss FROM runs WHERE id = 'b'`).Scan(&b)
	if !a.Valid || a.Float64 != 2.5 || b.Valid {
		t.Fatalf("after migration: ok %+v, crash %+v (want 2.5 and NULL)", a, b)
	}
	runs, err := l.Runs(context.Background(), "")
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %d %v", len(runs), err)
	}
}
