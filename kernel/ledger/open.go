package ledger

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// EnvDB is the setting that puts the ledger in a PostgreSQL database, for a fleet of machines
// recording to one place: ANELAB_DB=postgres://user:password@host:5432/anelab. Unset or empty:
// the embedded SQLite ledger.db in the lab folder.
const EnvDB = "ANELAB_DB"

// URLFromEnv returns the ledger's database URL from ANELAB_DB ("" = the lab's ledger.db). It is
// the one place that reads the setting; Open and OpenReadOnly use it, as should anything that
// opens the same database another way (the job queue).
func URLFromEnv() string { return strings.TrimSpace(os.Getenv(EnvDB)) }

// OpenURL opens (creating and migrating if needed) the ledger at dbURL for the lab folder dir:
// "" is dir/ledger.db; a postgres:// or postgresql:// URL is that PostgreSQL database, shared
// by every lab folder (machine) that names it. The lab folder still holds the run folders,
// checkpoints and results.tsv.
func OpenURL(dir, dbURL string) (*Ledger, error) {
	if dbURL == "" {
		return openSQLite(dir)
	}
	return openPostgres(dir, dbURL, false)
}

// OpenReadOnly opens the existing ledger of the lab folder dir for reading (ANELAB_DB's database
// when set, see URLFromEnv): see OpenReadOnlyURL.
func OpenReadOnly(dir string) (*Ledger, error) { return OpenReadOnlyURL(dir, URLFromEnv()) }

// OpenReadOnlyURL opens the existing ledger at dbURL ("" = dir/ledger.db) for reading: it creates
// nothing, migrates nothing, reaps nothing, so it works on a read-only lab and never changes one.
// On PostgreSQL every transaction is read-only (default_transaction_read_only).
func OpenReadOnlyURL(dir, dbURL string) (*Ledger, error) {
	if dbURL != "" {
		return openPostgres(dir, dbURL, true)
	}
	path := filepath.Join(dir, File)
	if err := checkBeside(dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no ledger in %s (%v): run an experiment first (anelab run scripts/baseline.go) or pass --lab", dir, err)
	}
	var lastErr error
	// mode=ro still needs the WAL index (-shm) to be writable; on a read-only folder fall back to
	// immutable=1, which reads the database file as it is.
	for _, mode := range []string{"ro", "immutable"} {
		q := url.Values{}
		q.Set("_pragma", "busy_timeout(30000)")
		if mode == "ro" {
			q.Set("mode", "ro")
		} else {
			q.Set("immutable", "1")
		}
		db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("ledger %s: %w", path, err)
		}
		db.SetMaxOpenConns(1)
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM runs`).Scan(&n); err != nil {
			db.Close()
			lastErr = err
			continue
		}
		return &Ledger{Dir: dir, db: sqlDB{db, sqliteDialect{}}}, nil
	}
	return nil, fmt.Errorf("ledger %s: %w (%s)", path, lastErr, damagedAdvice(dir))
}

// checkBeside refuses a missing, empty or damaged ledger.db beside run folders: taking it for a
// fresh lab would rewrite results.tsv with only the next run while runs/ holds the old ones.
func checkBeside(dir string) error {
	runs, _ := os.ReadDir(filepath.Join(dir, "runs"))
	if len(runs) == 0 {
		return nil
	}
	path := filepath.Join(dir, File)
	st, err := os.Stat(path)
	switch {
	case err != nil && os.IsNotExist(err):
		return fmt.Errorf("ledger %s is missing, but %s holds %d run folders: %s", path, filepath.Join(dir, "runs"), len(runs), damagedAdvice(dir))
	case err == nil && st.Size() == 0:
		return fmt.Errorf("ledger %s is empty (0 bytes), but %s holds %d run folders: %s", path, filepath.Join(dir, "runs"), len(runs), damagedAdvice(dir))
	}
	return nil
}

func damagedAdvice(dir string) string {
	return fmt.Sprintf("restore %s from a backup (results.tsv and runs/<id>/ keep what each run did), "+
		"or move %s aside to start a fresh lab", filepath.Join(dir, File), dir)
}
