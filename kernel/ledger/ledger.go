// Package ledger is the lab's record of every run: an embedded SQLite database (pure Go, WAL,
// one transaction per run, so several `anelab run` processes can append at once) or, for a fleet
// of machines recording to one place, a PostgreSQL database named by ANELAB_DB (see OpenURL,
// dialect.go); the lineage heads, the keep/discard decision, and the results.tsv export.
//
// A lineage is a named sequence of competing runs. Its head is its best kept run. An ok run is
// kept when its val_bpb beats the head's by more than the lab's noise allows (verdict.go and
// kernel/verdict: identical configs pool, the noise floor is measured from repeats; the first ok
// run of a lineage is kept); a run that is not clearly better or worse is within-noise. Only a
// kept run moves the head; a discarded, within-noise, crashed or invalid run never changes it. A
// run that produced no loss (every status but ok) stores NULL losses, never 0.
//
// A run that trains is written twice: Start inserts it as `running` (with its process id, host and
// boot) before training, and Record replaces that row with the finished one. A process killed
// hard (SIGKILL, the OOM killer, a reboot) never reaches Record; readers then see its row as
// `killed` once its process is gone (same host, and no such pid or another boot), and Open
// rewrites such rows for good (Reap). Running and killed rows never decide and never move a head.
package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Run statuses (how the run ended) and decisions (what it meant for its lineage).
const (
	StatusOK       = "ok"       // trained and evaluated
	StatusCrash    = "crash"    // a panic or error in the script, a hook or the trainer
	StatusDiverged = "diverged" // a non-finite loss stopped training
	StatusInvalid  = "invalid"  // the script or its config was refused before training
	StatusTimeout  = "timeout"  // the script, a hook or the run overran its time
	StatusRunning  = "running"  // training now (Start), not recorded yet
	StatusKilled   = "killed"   // was running, and its process ended without recording a result

	Keep        = "keep"
	Discard     = "discard"
	WithinNoise = "within-noise" // ok, but not distinguishable from the head under the lab's noise
)

// Run is one row of the ledger.
type Run struct {
	Seq         int64     // order of recording (1, 2, …)
	ID          string    // rYYYYMMDDTHHMMSSZ-xxxxxx, assigned when the run is submitted
	Lineage     string    //
	Parent      string    // the run whose checkpoint this run continued from ("" = fresh)
	Script      string    // path of the script as given
	ScriptHash  string    // sha256 of the script source
	Index       int       // position in the script's sweep (0 for a single experiment)
	Description string    // the spec's description, plus the -m message
	Status      string    // ok, crash, diverged, invalid, timeout; running, killed
	Decision    string    // keep, discard or within-noise for ok runs, "" otherwise or while repeats are pending (set by Record)
	PrevBest    float64   // the lineage best val_loss when decided (0: none)
	PrevHead    string    // the lineage head when decided ("" = none)
	ValLoss     float64   //
	ValBPB      float64   //
	TrainLoss   float64   //
	Steps       int       //
	Tokens      int64     //
	MsPerStep   float64   //
	WallTimeS   float64   //
	UtilPct     float64   //
	Error       string    // the failure, with the script's stack for a crash
	Config      string    // the config trained with, JSON
	Result      string    // the trainer's result, JSON
	Checkpoint  string    // checkpoint file relative to the lab folder ("" = none kept)
	Commit      string    // project commit (git describe), "" if unknown
	Device      string    //
	Seed        int64     //
	DataSum     string    // data fingerprint
	Started     time.Time //
	Finished    time.Time // zero while running, and for a killed run
	PID         int       // the `anelab run` process (0: recorded by an older version)
	Host        string    // its hostname
	Boot        string    // its machine's boot id (Linux; "" elsewhere)

	// Noise-aware verdicts (see verdict.go).
	ConfigHash  string // canonical hash of what was trained, seed excluded: identical configs pool
	Budget      string // budget kind and amount, e.g. "wall 5m0s" or "steps 150": noise is per budget
	RepeatOf    string // first run of this spec's repeat set ("" = not repeated)
	Repeat      int    // 0-based index in the repeat set
	Repeats     int    // size of the repeat set (0 or 1: a single run)
	Pending     bool   // not stored: more repeats of this set follow, so Record defers the decision (Record sets it)
	Verdict     string // one line: the decision, the test that decided it and its numbers
	VerdictJSON string // the same numbers as JSON (verdict.Verdict plus the head)
}

// Ledger is an open lab ledger.
type Ledger struct {
	Dir string // the lab folder (run folders, checkpoints, results.tsv)
	db  sqlDB
	url string // the PostgreSQL URL, "" for <Dir>/ledger.db
}

// File is the database's name inside the lab folder.
const File = "ledger.db"

// Open opens (creating if needed) the ledger of the lab folder dir: the PostgreSQL database named
// by ANELAB_DB when it is set (see URLFromEnv), else dir/ledger.db.
func Open(dir string) (*Ledger, error) { return OpenURL(dir, URLFromEnv()) }

// openSQLite opens (creating if needed) dir/ledger.db.
func openSQLite(dir string) (*Ledger, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ledger: create lab folder: %w", err)
	}
	if err := checkBeside(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, File)
	q := url.Values{}
	q.Set("_busy_timeout", "30000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate") // a writer takes the write lock at BEGIN: no upgrade deadlocks
	dsn := "file:" + path + "?" + q.Encode()
	// Opening applies the pragmas (WAL) and the schema. SQLite may answer SQLITE_BUSY there without
	// waiting for the busy timeout (e.g. while another process switches a new file to WAL or runs
	// WAL recovery), so a busy open is retried with jittered backoff instead of failing a run.
	deadline := time.Now().Add(openRetry)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("ledger %s: %w", path, err)
		}
		// One connection per process: every statement of a run's transaction uses the connection
		// whose pragmas were applied (and retried) here.
		db.SetMaxOpenConns(1)
		l := &Ledger{Dir: dir, db: sqlDB{db, sqliteDialect{}}}
		err = l.opened()
		if err == nil {
			return l, nil
		}
		db.Close()
		if !isBusy(err) || time.Now().After(deadline) {
			if strings.Contains(err.Error(), "not a database") || strings.Contains(err.Error(), "malformed") {
				return nil, fmt.Errorf("ledger %s: %w: %s", path, err, damagedAdvice(dir))
			}
			return nil, fmt.Errorf("ledger %s: %w", path, err)
		}
		time.Sleep(wait/2 + time.Duration(mrand.Int64N(int64(wait))))
	}
}

// opened migrates a freshly opened ledger and, when that reaped killed runs, exports results.tsv.
func (l *Ledger) opened() error {
	reaped, err := l.migrate()
	if err != nil {
		return err
	}
	if reaped > 0 {
		// Best effort: results.tsv is a view of the database, and the next export catches up if
		// this one fails; a reader must not fail for it.
		l.ExportTSV(context.Background())
	}
	return nil
}

// openRetry is how long Open keeps retrying a busy database.
const openRetry = 60 * time.Second

func isBusy(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked")
}

// Close closes the database.
func (l *Ledger) Close() error { return l.db.Close() }

const schema = `
CREATE TABLE IF NOT EXISTS runs (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	lineage TEXT NOT NULL,
	parent TEXT NOT NULL DEFAULT '',
	script TEXT NOT NULL DEFAULT '',
	script_hash TEXT NOT NULL DEFAULT '',
	idx INTEGER NOT NULL DEFAULT 0,
	description TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	decision TEXT NOT NULL DEFAULT '',
	prev_best REAL NOT NULL DEFAULT 0,
	prev_head TEXT NOT NULL DEFAULT '',
	val_loss REAL,
	val_bpb REAL,
	train_loss REAL,
	steps INTEGER NOT NULL DEFAULT 0,
	tokens INTEGER NOT NULL DEFAULT 0,
	ms_per_step REAL NOT NULL DEFAULT 0,
	wall_time_s REAL NOT NULL DEFAULT 0,
	util_pct REAL NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	config TEXT NOT NULL DEFAULT '',
	result TEXT NOT NULL DEFAULT '',
	checkpoint TEXT NOT NULL DEFAULT '',
	commit_id TEXT NOT NULL DEFAULT '',
	device TEXT NOT NULL DEFAULT '',
	seed INTEGER NOT NULL DEFAULT 0,
	data_sum TEXT NOT NULL DEFAULT '',
	started TEXT NOT NULL DEFAULT '',
	finished TEXT NOT NULL DEFAULT '',
	pid INTEGER NOT NULL DEFAULT 0,
	host TEXT NOT NULL DEFAULT '',
	boot TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_lineage ON runs(lineage, seq);
CREATE TABLE IF NOT EXISTS lineages (
	name TEXT PRIMARY KEY,
	head TEXT NOT NULL REFERENCES runs(id),
	updated TEXT NOT NULL
);
`

// addedCols are the columns added after version 1, with their definitions: a ledger written
// by an older version gets them by ALTER TABLE.
var addedCols = [][2]string{
	{"pid", "INTEGER NOT NULL DEFAULT 0"},
	{"host", "TEXT NOT NULL DEFAULT ''"},
	{"boot", "TEXT NOT NULL DEFAULT ''"},
	{"config_hash", "TEXT NOT NULL DEFAULT ''"},
	{"budget", "TEXT NOT NULL DEFAULT ''"},
	{"repeat_of", "TEXT NOT NULL DEFAULT ''"},
	{"repeat_idx", "INTEGER NOT NULL DEFAULT 0"},
	{"repeats", "INTEGER NOT NULL DEFAULT 0"},
	{"verdict", "TEXT NOT NULL DEFAULT ''"},
	{"verdict_json", "TEXT NOT NULL DEFAULT ''"},
}

// migrate creates or upgrades the schema and reaps killed runs, in one transaction; it returns
// how many runs it reaped.
//
// It runs under the write lock, so processes opening one ledger at once migrate one after the
// other (PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent one).
func (l *Ledger) migrate() (int, error) {
	ctx := context.Background()
	tx, err := l.beginWrite(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	for _, q := range strings.SplitAfter(schema, ";") {
		if strings.TrimSpace(q) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, l.db.d.ddl(q)); err != nil {
			return 0, fmt.Errorf("create tables: %w", err)
		}
	}
	have, err := l.db.d.columns(ctx, tx, "runs")
	if err != nil {
		return 0, err
	}
	for _, c := range addedCols {
		if _, ok := have[c[0]]; !ok {
			if _, err := tx.ExecContext(ctx, l.db.d.ddl(`ALTER TABLE runs ADD COLUMN `+c[0]+` `+c[1])); err != nil {
				return 0, fmt.Errorf("add column %s: %w", c[0], err)
			}
		}
	}
	if err := migrateVerdicts(ctx, tx, have); err != nil {
		return 0, err
	}
	if l.db.d.backend() == SQLite {
		if _, err := tx.ExecContext(ctx, `PRAGMA user_version = 3`); err != nil {
			return 0, err
		}
	}
	n, err := reap(ctx, tx)
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

var lineageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckLineage reports whether name is a usable lineage name.
func CheckLineage(name string) error {
	if !lineageRE.MatchString(name) {
		return fmt.Errorf("lineage %q: use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// NewID returns a run id that sorts by start time and is unique across processes:
// "r" + UTC time to the second + "-" + 6 random hex digits.
func NewID(now time.Time) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "r" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

const timeFmt = time.RFC3339Nano

// Start inserts r as a running run (status running, no decision, no checkpoint), stamped with
// this process's id, host and boot unless r.PID is set, in its own short transaction, and sets
// r.Seq. The run's Record replaces the row later; if the process dies first, readers see the row
// as killed (see Reap).
func (l *Ledger) Start(ctx context.Context, r *Run) error {
	if err := CheckLineage(r.Lineage); err != nil {
		return err
	}
	r.Status, r.Decision, r.PrevBest, r.PrevHead, r.Checkpoint = StatusRunning, "", 0, "", ""
	r.Finished = time.Time{}
	if r.PID == 0 {
		r.PID, r.Host, r.Boot = os.Getpid(), self.host, self.boot
	}
	tx, err := l.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer tx.Rollback()
	if err := insertRun(ctx, tx, r); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: commit start of run %s: %w", r.ID, err)
	}
	return nil
}

// Record appends r in one transaction, replacing the run's running (or killed) row if Start
// wrote one: the finished row takes the next seq, so seq stays the order of recording. For an ok
// run it decides keep, within-noise or discard against the lineage head (see decide in verdict.go;
// deferred while r.Pending); a kept run becomes the head. r.Seq, r.Decision, r.PrevBest and r.PrevHead are
// set, and r.Checkpoint is cleared unless the run is kept (only kept runs keep checkpoints). Concurrent Records serialise on the database's write lock, so each decides against the
// head as the previous one left it.
func (l *Ledger) Record(ctx context.Context, r *Run) error {
	if err := CheckLineage(r.Lineage); err != nil {
		return err
	}
	tx, err := l.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer tx.Rollback()
	r.Decision, r.PrevBest, r.PrevHead = "", 0, ""
	var headLoss float64
	err = tx.QueryRowContext(ctx, `SELECT l.head, r.val_loss FROM lineages l JOIN runs r ON r.id = l.head WHERE l.name = ?`,
		r.Lineage).Scan(&r.PrevHead, &headLoss)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("ledger: read head of %q: %w", r.Lineage, err)
	default:
		r.PrevBest = headLoss
	}
	if r.Status == StatusRunning || r.Status == StatusKilled {
		return fmt.Errorf("ledger: record run %s: status %q is not an end (Start records a running run)", r.ID, r.Status)
	}
	r.Verdict, r.VerdictJSON = "", ""
	if _, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE id = ? AND status IN (?, ?)`,
		r.ID, StatusRunning, StatusKilled); err != nil {
		return fmt.Errorf("ledger: record run %s: %w", r.ID, err)
	}
	if err := insertRun(ctx, tx, r); err != nil {
		return err
	}
	// A repeat set is decided by its last-recorded run, whatever its index: runs of a set finish
	// in any order when workers run them at once (see setPending in attempt.go).
	if err := setPending(ctx, tx, r); err != nil {
		return err
	}
	// Decided after the insert, so the pooled samples and the noise floor include this run.
	if err := decide(ctx, tx, r); err != nil {
		return err
	}
	if r.Decision == Keep {
		if err := moveHead(ctx, tx, r.Lineage, r.ID); err != nil {
			return err
		}
	}
	if err := settleFailedLast(ctx, tx, r); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: commit run %s: %w", r.ID, err)
	}
	return nil
}

// insertRun inserts r and sets r.Seq.
func insertRun(ctx context.Context, tx sqlTx, r *Run) error {
	finished := ""
	if !r.Finished.IsZero() {
		finished = r.Finished.UTC().Format(timeFmt)
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO runs (id, lineage, parent, script, script_hash, idx, description,
		status, decision, prev_best, prev_head, val_loss, val_bpb, train_loss, steps, tokens, ms_per_step,
		wall_time_s, util_pct, error, config, result, checkpoint, commit_id, device, seed, data_sum, started, finished,
		pid, host, boot, config_hash, budget, repeat_of, repeat_idx, repeats, verdict, verdict_json)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING seq`,
		r.ID, r.Lineage, r.Parent, r.Script, r.ScriptHash, r.Index, r.Description, r.Status, r.Decision,
		r.PrevBest, r.PrevHead, loss(r, r.ValLoss), loss(r, r.ValBPB), loss(r, r.TrainLoss), r.Steps, r.Tokens, r.MsPerStep, r.WallTimeS,
		r.UtilPct, r.Error, r.Config, r.Result, r.Checkpoint, r.Commit, r.Device, r.Seed, r.DataSum,
		r.Started.UTC().Format(timeFmt), finished, r.PID, r.Host, r.Boot,
		r.ConfigHash, r.Budget, r.RepeatOf, r.Repeat, r.Repeats, r.Verdict, r.VerdictJSON).Scan(&r.Seq)
	if err != nil {
		return fmt.Errorf("ledger: record run %s: %w", r.ID, err)
	}
	return nil
}

const cols = `seq, id, lineage, parent, script, script_hash, idx, description, status, decision, prev_best,
	prev_head, val_loss, val_bpb, train_loss, steps, tokens, ms_per_step, wall_time_s, util_pct, error, config,
	result, checkpoint, commit_id, device, seed, data_sum, started, finished, pid, host, boot,
	config_hash, budget, repeat_of, repeat_idx, repeats, verdict, verdict_json`

type scanner interface{ Scan(dest ...any) error }

func scanRun(s scanner) (Run, error) {
	var r Run
	var started, finished string
	var vl, vb, tl sql.NullFloat64 // NULL for a run that produced no loss; read as 0
	err := s.Scan(&r.Seq, &r.ID, &r.Lineage, &r.Parent, &r.Script, &r.ScriptHash, &r.Index, &r.Description,
		&r.Status, &r.Decision, &r.PrevBest, &r.PrevHead, &vl, &vb, &tl, &r.Steps, &r.Tokens,
		&r.MsPerStep, &r.WallTimeS, &r.UtilPct, &r.Error, &r.Config, &r.Result, &r.Checkpoint, &r.Commit,
		&r.Device, &r.Seed, &r.DataSum, &started, &finished, &r.PID, &r.Host, &r.Boot,
		&r.ConfigHash, &r.Budget, &r.RepeatOf, &r.Repeat, &r.Repeats, &r.Verdict, &r.VerdictJSON)
	r.ValLoss, r.ValBPB, r.TrainLoss = vl.Float64, vb.Float64, tl.Float64
	r.Started, _ = time.Parse(timeFmt, started)
	r.Finished, _ = time.Parse(timeFmt, finished)
	if err == nil && r.Status == StatusRunning && ended(r.PID, r.Host, r.Boot) {
		r.Status, r.Error = StatusKilled, killedMsg(r.PID, r.Host)
	}
	return r, err
}

// Get returns the run with the given id.
func (l *Ledger) Get(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(l.db.QueryRowContext(ctx, `SELECT `+cols+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("no run %q in the ledger (see `anelab results`)", id)
	}
	return r, err
}

// Head returns the lineage's head (its best kept run); ok is false while it has none.
func (l *Ledger) Head(ctx context.Context, lineage string) (r Run, ok bool, err error) {
	r, err = scanRun(l.db.QueryRowContext(ctx, `SELECT `+prefixed("r.")+` FROM lineages l JOIN runs r ON r.id = l.head
		WHERE l.name = ?`, lineage))
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// Runs returns the recorded runs in recording order; lineage "" means all lineages.
func (l *Ledger) Runs(ctx context.Context, lineage string) ([]Run, error) {
	q, args := `SELECT `+cols+` FROM runs ORDER BY seq`, []any(nil)
	if lineage != "" {
		q, args = `SELECT `+cols+` FROM runs WHERE lineage = ? ORDER BY seq`, []any{lineage}
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Lineage is a lineage and its head.
type Lineage struct {
	Name, Head string
	Best       float64
	Runs, Kept int
}

// Lineages lists every lineage that has runs, with its head (if any) and counts.
func (l *Ledger) Lineages(ctx context.Context) ([]Lineage, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT r.lineage, COALESCE(l.head, ''), COALESCE(h.val_loss, 0),
		COUNT(*), SUM(CASE WHEN r.decision = 'keep' THEN 1 ELSE 0 END) FROM runs r LEFT JOIN lineages l ON l.name = r.lineage
		LEFT JOIN runs h ON h.id = l.head GROUP BY r.lineage, l.head, h.val_loss ORDER BY MIN(r.seq)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Lineage
	for rows.Next() {
		var x Lineage
		if err := rows.Scan(&x.Name, &x.Head, &x.Best, &x.Runs, &x.Kept); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// prefixed is cols with every column qualified by p (e.g. "r.").
func prefixed(p string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// self is this process's host and boot, for Start and for telling whether a running run's
// process is gone.
var self = func() struct{ host, boot string } {
	h, _ := os.Hostname()
	return struct{ host, boot string }{h, bootID()}
}()

// bootID is the machine's boot id on Linux ("" where there is none): a run started under another
// boot is gone, whatever process holds its pid now.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ended reports whether the process of a running run is known to be gone: it ran on this host,
// and either the machine has rebooted since or no process has its pid. A run on another host
// (or with no pid) is not known to be gone.
func ended(pid int, host, boot string) bool {
	if pid <= 0 || host == "" || host != self.host {
		return false
	}
	if boot != "" && self.boot != "" && boot != self.boot {
		return true
	}
	return !processExists(pid)
}

func killedMsg(pid int, host string) string {
	return fmt.Sprintf("process %d on %s ended without recording a result (killed?)", pid, host)
}

// Reap rewrites every running run whose process is gone (see Start) to status killed, with an
// error saying so, and returns how many it rewrote. Open calls it; readers see such runs as
// killed even before (Runs, Get and the export resolve them as they read).
func (l *Ledger) Reap(ctx context.Context) (int, error) {
	tx, err := l.beginWrite(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	defer tx.Rollback()
	n, err := reap(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("ledger: reap: %w", err)
	}
	return n, tx.Commit()
}

func reap(ctx context.Context, tx sqlTx) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, pid, host, boot FROM runs WHERE status = ?`, StatusRunning)
	if err != nil {
		return 0, err
	}
	type dead struct {
		id, host string
		pid      int
	}
	var gone []dead
	for rows.Next() {
		var d dead
		var boot string
		if err := rows.Scan(&d.id, &d.pid, &d.host, &boot); err != nil {
			rows.Close()
			return 0, err
		}
		if ended(d.pid, d.host, boot) {
			gone = append(gone, d)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, d := range gone {
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, error = ? WHERE id = ? AND status = ?`,
			StatusKilled, killedMsg(d.pid, d.host), d.id, StatusRunning); err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}
