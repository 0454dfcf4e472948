package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/anelab/anelab/kernel/verdict"
)

// Noise-aware keep/discard. Every ok run carries a config hash (what was trained, seed excluded)
// and a budget key. Record pools the val_bpb of every ok run with the run's hash (the candidate)
// and of every ok run with the head's hash (the head), recomputes the lab's noise floor for the
// run's budget — the pooled within-config standard deviation over every config run more than
// once with that budget, stored in the noise table — and lets kernel/verdict decide: keep,
// within-noise or discard, naming the test that decided and its numbers. A run recorded with
// Pending (more repeats of its spec follow) gets no decision; the last repeat decides for the
// whole set and its verdict is written to every run of the set.

// metricSQL is what verdicts compare: val_bpb (val_loss for runs that report no bpb).
const metricSQL = `CASE WHEN val_bpb > 0 THEN val_bpb ELSE val_loss END`

// Metric is the number a verdict compares for r: its val_bpb, or its val_loss when it has no bpb.
func (r Run) Metric() float64 {
	if r.ValBPB > 0 {
		return r.ValBPB
	}
	return r.ValLoss
}

// HasLoss reports whether r produced a validation loss (only ok runs do; the others store NULL).
func (r Run) HasLoss() bool { return r.Status == StatusOK }

// loss is v as a column value: NULL for a run without a loss, never a 0 that could sort as best.
func loss(r *Run, v float64) any {
	if !r.HasLoss() {
		return nil
	}
	return v
}

// Rule is the verdict rule Record applies (k = 2 standard errors, α = 0.05 for Welch).
var Rule = verdict.DefaultRule

// VerdictInfo is what verdict_json holds.
type VerdictInfo struct {
	verdict.Verdict
	HeadRun    string `json:"head_run"`    // the head compared against ("" for the first run)
	HeadHash   string `json:"head_hash"`   //
	SameConfig bool   `json:"same_config"` // the run repeats the head's config: it only adds to its mean
	Budget     string `json:"budget"`
}

// Info decodes r.VerdictJSON (ok is false when r has none).
func (r Run) Info() (VerdictInfo, bool) {
	var v VerdictInfo
	if r.VerdictJSON == "" {
		return v, false
	}
	return v, json.Unmarshal([]byte(r.VerdictJSON), &v) == nil
}

// decide sets r's decision and verdict (r is already inserted), clears its checkpoint unless it
// is kept, and settles its pending repeats.
func decide(ctx context.Context, tx sqlTx, r *Run) error {
	if r.Status == StatusOK {
		if r.Pending {
			r.Verdict = fmt.Sprintf("repeat %d/%d: decided with the last repeat of the set", r.Repeat+1, r.Repeats)
		} else {
			if err := judge(ctx, tx, r); err != nil {
				return fmt.Errorf("ledger: verdict of run %s: %w", r.ID, err)
			}
		}
	}
	if r.Decision != Keep {
		r.Checkpoint = ""
	}
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET decision = ?, checkpoint = ?, verdict = ?, verdict_json = ? WHERE id = ?`,
		r.Decision, r.Checkpoint, r.Verdict, r.VerdictJSON, r.ID); err != nil {
		return fmt.Errorf("ledger: record verdict of %s: %w", r.ID, err)
	}
	if r.Status == StatusOK && !r.Pending && r.RepeatOf != "" {
		// The set's earlier repeats share the decision; the head (on keep) is this run, the one
		// whose checkpoint survives.
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET decision = ?, verdict = ?, verdict_json = ?
			WHERE repeat_of = ? AND id != ? AND status = ? AND decision = ''`,
			r.Decision, fmt.Sprintf("with %s (last repeat): %s", r.ID, r.Verdict), r.VerdictJSON,
			r.RepeatOf, r.ID, StatusOK); err != nil {
			return fmt.Errorf("ledger: settle repeats of %s: %w", r.RepeatOf, err)
		}
	}
	if r.Status == StatusOK && r.Budget != "" {
		return storeNoise(ctx, tx, r.Budget)
	}
	return nil
}

// judge decides r against the lineage head.
func judge(ctx context.Context, tx sqlTx, r *Run) error {
	info := VerdictInfo{HeadRun: r.PrevHead, Budget: r.Budget}
	cand, err := pooled(ctx, tx, r.ConfigHash, r.ID, r.Metric())
	if err != nil {
		return err
	}
	var head verdict.Sample
	if r.PrevHead != "" {
		var hm float64
		if err := tx.QueryRowContext(ctx, `SELECT config_hash, `+metricSQL+` FROM runs WHERE id = ?`, r.PrevHead).
			Scan(&info.HeadHash, &hm); err != nil {
			return fmt.Errorf("read head %s: %w", r.PrevHead, err)
		}
		if head, err = pooled(ctx, tx, info.HeadHash, r.PrevHead, hm); err != nil {
			return err
		}
		info.SameConfig = info.HeadHash != "" && info.HeadHash == r.ConfigHash
	}
	noise, err := measureNoise(ctx, tx, r.Budget)
	if err != nil {
		return err
	}
	info.Verdict = verdict.Decide(cand, head, noise, Rule)
	r.Decision = info.Decision
	r.Verdict = info.Verdict.String()
	if info.SameConfig {
		r.Verdict = "same config as the head " + r.PrevHead + " (only adds to its mean): " + r.Verdict
	}
	if b, err := json.Marshal(info); err == nil {
		r.VerdictJSON = string(b)
	}
	return nil
}

// pooled is the sample of every ok run with config hash h, or of the one run id (metric m) when
// h is "" (runs recorded before hashes existed pool with nothing).
func pooled(ctx context.Context, tx sqlTx, h, id string, m float64) (verdict.Sample, error) {
	if h == "" {
		return verdict.Summarize([]float64{m}), nil
	}
	xs, err := floats(ctx, tx, `SELECT `+metricSQL+` FROM runs WHERE config_hash = ? AND status = ? ORDER BY seq`, h, StatusOK)
	if err != nil {
		return verdict.Sample{}, err
	}
	return verdict.Summarize(xs), nil
}

func floats(ctx context.Context, tx sqlTx, q string, args ...any) ([]float64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var xs []float64
	for rows.Next() {
		var x sql.NullFloat64
		if err := rows.Scan(&x); err != nil {
			return nil, err
		}
		if x.Valid {
			xs = append(xs, x.Float64)
		}
	}
	return xs, rows.Err()
}

// measureNoise pools the within-config spread of every config with ≥ 2 ok runs under budget.
func measureNoise(ctx context.Context, tx sqlTx, budget string) (verdict.Noise, error) {
	if budget == "" {
		return verdict.Noise{}, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT config_hash, `+metricSQL+` FROM runs WHERE budget = ? AND status = ?
		AND config_hash != '' ORDER BY config_hash, seq`, budget, StatusOK)
	if err != nil {
		return verdict.Noise{}, err
	}
	defer rows.Close()
	groups := map[string][]float64{}
	var order []string
	for rows.Next() {
		var h string
		var x sql.NullFloat64
		if err := rows.Scan(&h, &x); err != nil {
			return verdict.Noise{}, err
		}
		if !x.Valid {
			continue
		}
		if _, ok := groups[h]; !ok {
			order = append(order, h)
		}
		groups[h] = append(groups[h], x.Float64)
	}
	if err := rows.Err(); err != nil {
		return verdict.Noise{}, err
	}
	gs := make([][]float64, 0, len(order))
	for _, h := range order {
		gs = append(gs, groups[h])
	}
	return verdict.Pool(gs), nil
}

// NoiseFloor is the lab's measured seed-to-seed noise of val_bpb under one budget.
type NoiseFloor struct {
	Budget string
	verdict.Noise
	Updated time.Time
}

func storeNoise(ctx context.Context, tx sqlTx, budget string) error {
	n, err := measureNoise(ctx, tx, budget)
	if err != nil {
		return err
	}
	if n.DoF == 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO noise (budget, sd, dof, groups, runs, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(budget) DO UPDATE SET sd = excluded.sd, dof = excluded.dof, groups = excluded.groups,
		runs = excluded.runs, updated = excluded.updated`,
		budget, n.SD, n.DoF, n.Groups, n.Runs, time.Now().UTC().Format(timeFmt))
	return err
}

// NoiseFloors returns the stored noise floor of every budget that has one.
func (l *Ledger) NoiseFloors(ctx context.Context) ([]NoiseFloor, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT budget, sd, dof, groups, runs, updated FROM noise ORDER BY budget`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []NoiseFloor
	for rows.Next() {
		var f NoiseFloor
		var up string
		if err := rows.Scan(&f.Budget, &f.SD, &f.DoF, &f.Groups, &f.Runs, &up); err != nil {
			return nil, err
		}
		f.Updated, _ = time.Parse(timeFmt, up)
		out = append(out, f)
	}
	return out, rows.Err()
}

// Noise returns the stored noise floor of budget (ok is false while there is none).
func (l *Ledger) Noise(ctx context.Context, budget string) (NoiseFloor, bool, error) {
	fs, err := l.NoiseFloors(ctx)
	if err != nil {
		return NoiseFloor{}, false, err
	}
	for _, f := range fs {
		if f.Budget == budget {
			return f, true, nil
		}
	}
	return NoiseFloor{}, false, nil
}

// Pooled returns the sample (val_bpb) of every ok run with config hash h.
func (l *Ledger) Pooled(ctx context.Context, h string) (verdict.Sample, error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return verdict.Sample{}, err
	}
	defer tx.Rollback()
	xs, err := floats(ctx, tx, `SELECT `+metricSQL+` FROM runs WHERE config_hash = ? AND status = ? ORDER BY seq`, h, StatusOK)
	return verdict.Summarize(xs), err
}

const noiseSchema = `CREATE TABLE IF NOT EXISTS noise (
	budget TEXT PRIMARY KEY,
	sd REAL NOT NULL,
	dof INTEGER NOT NULL,
	groups INTEGER NOT NULL,
	runs INTEGER NOT NULL,
	updated TEXT NOT NULL
)`

var notNullLoss = regexp.MustCompile(`\b(val_loss|val_bpb|train_loss) REAL NOT NULL DEFAULT 0`)

// migrateVerdicts adds the noise table and, for a ledger written before version 3, lets the loss
// columns hold NULL: SQLite cannot drop a NOT NULL constraint in place, so the runs table is
// rebuilt from its own definition with only those three columns relaxed, and runs that produced
// no loss (every status but ok) get NULL instead of the 0 that could sort as a best.
//
// cols are the runs table's columns as migrate found them (name → NOT NULL). PostgreSQL ledgers
// began after version 3, so there the rebuild never happens; if one had NOT NULL losses, they
// would be relaxed in place (ALTER COLUMN … DROP NOT NULL).
func migrateVerdicts(ctx context.Context, tx sqlTx, cols map[string]bool) error {
	if _, err := tx.ExecContext(ctx, tx.d.ddl(noiseSchema)); err != nil {
		return err
	}
	if !cols["val_loss"] {
		return nil
	}
	if tx.d.backend() == Postgres {
		for _, c := range []string{"val_loss", "val_bpb", "train_loss"} {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE runs ALTER COLUMN `+c+` DROP NOT NULL`); err != nil {
				return fmt.Errorf("relax loss column %s: %w", c, err)
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE runs SET val_loss = NULL, val_bpb = NULL, train_loss = NULL WHERE status != 'ok'`)
		return err
	}
	var def string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'`).Scan(&def); err != nil {
		return err
	}
	i := strings.Index(def, "(")
	if i < 0 {
		return fmt.Errorf("runs table definition %q", def)
	}
	def = "CREATE TABLE runs_v3 " + notNullLoss.ReplaceAllString(def[i:], "$1 REAL")
	for _, q := range []string{def, `INSERT INTO runs_v3 SELECT * FROM runs`, `DROP TABLE runs`,
		`ALTER TABLE runs_v3 RENAME TO runs`, `CREATE INDEX IF NOT EXISTS runs_lineage ON runs(lineage, seq)`,
		`UPDATE runs SET val_loss = NULL, val_bpb = NULL, train_loss = NULL WHERE status != 'ok'`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("relax loss columns: %s: %w", strings.Fields(q)[0], err)
		}
	}
	return nil
}
