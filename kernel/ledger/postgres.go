package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgLockTimeout is how long a writer waits for the ledger's lock; pgIdleInTx how long a session
// may sit idle inside a transaction before the server ends it (variables for the tests).
var pgLockTimeout, pgIdleInTx = 60 * time.Second, 60 * time.Second

// openPostgres opens the ledger in the PostgreSQL database at rawURL for the lab folder dir,
// migrating it unless readOnly.
func openPostgres(dir, rawURL string, readOnly bool) (*Ledger, error) {
	shown := redact(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s=%q: not a PostgreSQL URL: use postgres://user:password@host:5432/database "+
			"(or unset %s for the lab's own %s)", EnvDB, shown, EnvDB, File)
	}
	if !readOnly {
		// A lab that has its own ledger would silently split in two: its runs in ledger.db, the
		// next ones in the database, and no verdict would see both.
		if st, err := os.Stat(filepath.Join(dir, File)); err == nil && st.Size() > 0 {
			return nil, fmt.Errorf("lab %s has its own ledger (%s), but %s=%s names another: its runs and the new ones "+
				"would not be judged together. Unset %s to go on with %s, or move %s aside to record in the database",
				dir, filepath.Join(dir, File), EnvDB, shown, EnvDB, File, filepath.Join(dir, File))
		}
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %v", EnvDB, shown, redactErr(err, rawURL))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	// As SQLite's busy timeout: a writer waits for the ledger's lock, but not forever. And a
	// process stopped inside a write transaction (SIGSTOP, a debugger, a frozen VM) loses its
	// session, and so the lock, instead of holding up every machine of the fleet.
	cfg.RuntimeParams["lock_timeout"] = strconv.Itoa(int(pgLockTimeout.Milliseconds()))
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.Itoa(int(pgIdleInTx.Milliseconds()))
	cfg.RuntimeParams["application_name"] = "anelab"
	db := stdlib.OpenDB(*cfg)
	// A few connections: readers need not queue behind a writer waiting for the ledger's lock.
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	l := &Ledger{Dir: dir, db: sqlDB{db, postgresDialect{}}, url: rawURL}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ConnectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s (%s): cannot connect: %v: check the server is up and the URL's host, "+
			"user, password and database", shown, EnvDB, redactErr(err, rawURL))
	}
	if readOnly {
		var n int
		if err := l.db.QueryRowContext(ctx, `SELECT count(*) FROM runs`).Scan(&n); err != nil {
			db.Close()
			return nil, fmt.Errorf("no ledger in %s (%s): %v: run an experiment first (anelab run scripts/baseline.go)",
				shown, EnvDB, redactErr(err, rawURL))
		}
		return l, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: create lab folder: %w", err)
	}
	if err := l.opened(); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: %v", shown, redactErr(err, rawURL))
	}
	return l, nil
}

// Backend tells where the ledger lives.
func (l *Ledger) Backend() Backend { return l.db.d.backend() }

// URL is the PostgreSQL URL the ledger was opened with ("" for the lab's ledger.db). It may hold a
// password: show Redacted instead.
func (l *Ledger) URL() string { return l.url }

// Where names the ledger for people: the ledger.db path, or the URL without its password.
func (l *Ledger) Where() string {
	if l.url == "" {
		return filepath.Join(l.Dir, File)
	}
	return redact(l.url)
}

// DB is the ledger's database handle, for a job queue that keeps its tables in the same database
// (River's SQLite driver on ledger.db). Queries through it are the caller's dialect; the ledger's
// own tables are written only through Start, Record and Reap.
func (l *Ledger) DB() *sql.DB { return l.db.DB }

// redact is u with its password replaced by "xxxxx", for messages and logs.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); !ok {
		return u
	}
	p.User = url.UserPassword(p.User.Username(), "xxxxx")
	return p.String()
}

// redactErr is err's message with the URL's password (if it shows) removed.
func redactErr(err error, u string) string {
	msg := err.Error()
	if p, e := url.Parse(u); e == nil && p.User != nil {
		if pw, ok := p.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}
