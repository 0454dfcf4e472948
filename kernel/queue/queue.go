// Package queue runs experiment jobs through a job queue: River (github.com/riverqueue/river) on
// the lab's own SQLite ledger.db by default (embedded, nothing to start), or on a PostgreSQL
// database named by one URL (ANELAB_DB) for a fleet of machines. The ledger lives in the same
// database, so every worker records to one place and `results`, `best`, `plot` and the notebooks
// read it unchanged.
//
// A queued job is a harness.Job (already a serialisable message) plus its sweep: Submit resolves a
// script into jobs and inserts them in one transaction; a worker (Work) runs up to N of them at
// once, each through harness.Execute and its supervised child process, exactly as `anelab run`
// does. The semantics under concurrency are in the README ("Queue and fleet") and in worker.go.
package queue

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/anelab/anelab/kernel/harness"
	"github.com/anelab/anelab/kernel/ledger"
)

// Kind is the River job kind of an experiment run; Name is the River queue they wait in.
const (
	Kind = "anelab_run"
	Name = "anelab"
)

// MaxAttempts is how often a job is tried: a first attempt and two retries after its worker was
// killed (or the attempt failed outside the run, e.g. the database went away). A run that trains
// and fails (crash, diverged, …) is recorded and done: it is not retried.
const MaxAttempts = 3

// Args is one queued run: the harness's job message and the sweep it belongs to.
type Args struct {
	Job   harness.Job                     `json:"job"`
	Sweep string                          `json:"sweep"`
	Heads map[string]harness.HeadSnapshot `json:"heads"` // lineage heads when the sweep was submitted
	Jobs  int                             `json:"jobs"`  // jobs in the sweep
}

// Kind is the River job kind.
func (Args) Kind() string { return Kind }

// client is what the queue uses of a River client, whatever its driver's transaction type.
type client interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
}

// Queue is an open job queue of one lab.
type Queue struct {
	Lab string // the lab folder: run folders, results.tsv (and ledger.db without a URL)
	URL string // the database ("" = SQLite in the lab folder)

	backend backend
	exec    riverdriver.Executor
}

// backend is the database the queue's River client runs on.
type backend interface {
	// newClient makes a River client on the backend (cfg.Workers nil: insert and list only).
	newClient(cfg *river.Config) (client, riverdriver.Executor, error)
	close() error
}

// Open opens the queue of the lab folder lab on url ("" = the lab's SQLite ledger.db; a
// postgres:// URL = that database), creating River's tables (migrations) if needed.
func Open(ctx context.Context, lab, url string) (*Queue, error) {
	var b backend
	var err error
	switch {
	case url == "":
		b, err = openSQLite(ctx, lab)
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		b, err = openPostgres(ctx, lab, url)
	default:
		return nil, fmt.Errorf("%s=%q: not a PostgreSQL URL: use postgres://user:password@host:5432/database (or unset %s "+
			"for the lab's own %s)", ledger.EnvDB, redact(url), ledger.EnvDB, ledger.File)
	}
	if err != nil {
		return nil, err
	}
	q := &Queue{Lab: lab, URL: url, backend: b}
	_, q.exec, err = b.newClient(&river.Config{})
	if err != nil {
		b.close()
		return nil, err
	}
	return q, nil
}

// Close closes the queue's database.
func (q *Queue) Close() error { return q.backend.close() }

// redact hides a URL's password in messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// sqliteBackend is River's SQLite driver on the lab's ledger.db, through the same pure-Go SQLite
// (modernc.org/sqlite) the ledger uses.
type sqliteBackend struct{ db *sql.DB }

func openSQLite(ctx context.Context, lab string) (*sqliteBackend, error) {
	// The ledger first: it creates the lab folder and refuses a damaged one.
	l, err := ledger.OpenURL(lab, "")
	if err != nil {
		return nil, err
	}
	l.Close()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate") // a writer takes the write lock at BEGIN, as the ledger's do
	path := filepath.Join(lab, ledger.File)
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", path, err)
	}
	// River's advice for SQLite: one connection per process, so its own goroutines never meet
	// SQLITE_BUSY; other processes wait on the busy timeout.
	db.SetMaxOpenConns(1)
	b := &sqliteBackend{db: db}
	if err := b.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("queue %s: River's tables: %w", path, err)
	}
	return b, nil
}

// migrate creates or upgrades River's tables in one transaction, which (BEGIN IMMEDIATE) holds
// the database's write lock: two workers starting together do not both migrate.
func (b *sqliteBackend) migrate(ctx context.Context) error {
	m, err := rivermigrate.New(riversqlite.New(b.db), &rivermigrate.Config{Logger: quietLogger(io.Discard)})
	if err != nil {
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil); err != nil {
		return err
	}
	return tx.Commit()
}

func (b *sqliteBackend) newClient(cfg *river.Config) (client, riverdriver.Executor, error) {
	d := riversqlite.New(b.db)
	c, err := river.NewClient(d, cfg)
	if err != nil {
		return nil, nil, err
	}
	return c, d.GetExecutor(), nil
}

func (b *sqliteBackend) close() error { return b.db.Close() }

func quietLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// NewSweepID returns a sweep id: "s" + UTC time to the second + "-" + 6 random hex digits.
func NewSweepID(now time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return "s" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// AttemptID is the run id of attempt n (1, 2, …) of a job: the job's own id for the first, and
// "<id>-a<n>" for a retry, so each attempt is its own ledger row.
func AttemptID(id string, n int) string {
	if n <= 1 {
		return id
	}
	return id + "-a" + strconv.Itoa(n)
}

// Submitted is one sweep as Submit queued it.
type Submitted struct {
	Sweep string
	Jobs  []harness.Job
	IDs   []int64 // River job ids
}

// Submit queues jobs (one script's, resolved by harness.Submit and Resolve) as one sweep, with the
// heads of their lineages now (heads) for ranking, in one transaction.
func (q *Queue) Submit(ctx context.Context, jobs []harness.Job, heads map[string]harness.HeadSnapshot, now time.Time) (Submitted, error) {
	s := Submitted{Sweep: NewSweepID(now), Jobs: jobs}
	c, _, err := q.backend.newClient(&river.Config{})
	if err != nil {
		return s, err
	}
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		if _, err := json.Marshal(j); err != nil {
			return s, fmt.Errorf("job %s (spec %d) cannot be queued: %w", j.ID, j.Index+1, err)
		}
		params[i] = river.InsertManyParams{Args: Args{Job: j, Sweep: s.Sweep, Heads: heads, Jobs: len(jobs)},
			InsertOpts: &river.InsertOpts{Queue: Name, MaxAttempts: MaxAttempts, Tags: []string{s.Sweep}}}
	}
	res, err := c.InsertMany(ctx, params)
	if err != nil {
		return s, fmt.Errorf("queue: submit: %w", err)
	}
	for _, r := range res {
		s.IDs = append(s.IDs, r.Job.ID)
	}
	return s, nil
}

// Job is one queued job as `anelab queue` shows it.
type Job struct {
	River   *rivertype.JobRow
	Args    Args
	State   string // waiting, running, done, failed
	Run     string // the run id of its latest attempt
	Status  string // that run's ledger status ("" while none)
	Holder  string // the worker running it (River client id), while running
	Attempt int
}

// States a job is shown in.
const (
	Waiting = "waiting"
	Running = "running"
	Done    = "done"
	Failed  = "failed"
)

// Jobs lists the queue's jobs (sweep "" = all), oldest first, with the ledger status of each
// one's latest attempt: waiting (available, scheduled or retryable), running, done (the run is
// recorded ok), failed (recorded as crash, invalid, …, or out of attempts).
func (q *Queue) Jobs(ctx context.Context, l *ledger.Ledger, sweep string) ([]Job, error) {
	c, _, err := q.backend.newClient(&river.Config{})
	if err != nil {
		return nil, err
	}
	var out []Job
	p := river.NewJobListParams().Kinds(Kind).OrderBy(river.JobListOrderByID, river.SortOrderAsc).First(1000)
	if sweep != "" {
		p = p.TagsAny(sweep)
	}
	for {
		res, err := c.JobList(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("queue: list: %w", err)
		}
		for _, r := range res.Jobs {
			j := Job{River: r, Attempt: r.Attempt}
			if err := json.Unmarshal(r.EncodedArgs, &j.Args); err != nil {
				return nil, fmt.Errorf("queue: job %d: %w", r.ID, err)
			}
			j.Run, j.Status = latestAttempt(ctx, l, j.Args.Job.ID, r.Attempt)
			j.State = state(r.State, j.Status)
			if r.State == rivertype.JobStateRunning && len(r.AttemptedBy) > 0 {
				j.Holder = r.AttemptedBy[len(r.AttemptedBy)-1]
			}
			out = append(out, j)
		}
		if len(res.Jobs) < 1000 || res.LastCursor == nil {
			return out, nil
		}
		p = p.After(res.LastCursor)
	}
}

// latestAttempt is the run id and ledger status of a job's latest attempt that has a row.
func latestAttempt(ctx context.Context, l *ledger.Ledger, id string, attempts int) (string, string) {
	for n := max(attempts, 1); n >= 1; n-- {
		r, err := l.Get(ctx, AttemptID(id, n))
		if err == nil {
			return r.ID, r.Status
		}
	}
	return AttemptID(id, max(attempts, 1)), ""
}

func state(s rivertype.JobState, status string) string {
	switch s {
	case rivertype.JobStateRunning:
		return Running
	case rivertype.JobStateCompleted:
		if status == ledger.StatusOK {
			return Done
		}
		return Failed
	case rivertype.JobStateDiscarded, rivertype.JobStateCancelled:
		return Failed
	}
	return Waiting
}

// clientID names a worker process so that others can tell when it is gone: "anelab-<pid>-<boot
// id>-<host>", cut to River's 100 characters.
func clientID() string {
	host, boot := ledger.Self()
	id := fmt.Sprintf("anelab-%d-%s-%s", os.Getpid(), strings.ReplaceAll(boot, "-", ""), host)
	if len(id) > 100 {
		id = id[:100]
	}
	return id
}

// holderGone reports whether the worker named by a River client id is known to be gone: it ran on
// this machine (same host name, as far as the id holds it) and its process has ended, or the
// machine has rebooted since. A worker on another machine is never known to be gone here: River's
// rescuer retries its jobs after RescueAfter.
func holderGone(id string) bool {
	parts := strings.SplitN(id, "-", 4)
	if len(parts) != 4 || parts[0] != "anelab" {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return false
	}
	self := clientID()
	selfParts := strings.SplitN(self, "-", 4)
	if len(selfParts) != 4 || selfParts[3] != parts[3] {
		return false // another host (or a host name cut differently)
	}
	host, boot := ledger.Self()
	if parts[2] != strings.ReplaceAll(boot, "-", "") {
		boot = "rebooted" // any other boot id: the process is gone
	}
	return ledger.ProcessGone(pid, host, boot)
}

// SweepRuns is a sweep as Ranking takes it: the heads when it was submitted, its jobs (each with
// the run id of the attempt that recorded it) and their recorded runs.
func (q *Queue) SweepRuns(ctx context.Context, l *ledger.Ledger, sweep string) (map[string]harness.HeadSnapshot, []harness.Job, []ledger.Run, error) {
	js, err := q.Jobs(ctx, l, sweep)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(js) == 0 {
		return nil, nil, nil, fmt.Errorf("no sweep %q in the queue (see `anelab queue`)", sweep)
	}
	var jobs []harness.Job
	var runs []ledger.Run
	for _, j := range js {
		job := j.Args.Job
		job.ID = j.Run
		jobs = append(jobs, job)
		if r, err := l.Get(ctx, j.Run); err == nil && r.Status != ledger.StatusRunning && r.Status != ledger.StatusKilled {
			runs = append(runs, r)
		}
	}
	return js[0].Args.Heads, jobs, runs, nil
}

// SubmitScript loads the script at path through h (its specs, repeats, --budget/--steps) and
// queues its jobs as one sweep, ranked later against the heads of their lineages now. A script
// that fails to load is queued too, as one job that records the failure (as `anelab run` does).
func (q *Queue) SubmitScript(ctx context.Context, h *harness.Harness, path, message string) (Submitted, error) {
	jobs := h.Submit(ctx, path, message)
	var lineages []string
	seen := map[string]bool{}
	for i := range jobs {
		jobs[i] = h.Resolve(jobs[i])
		if l := jobs[i].Lineage; !seen[l] && ledger.CheckLineage(l) == nil {
			seen[l] = true
			lineages = append(lineages, l)
		}
	}
	return q.Submit(ctx, jobs, h.SnapshotHeads(ctx, lineages...), time.Now())
}
