package ledger

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/anelab/anelab/internal/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// One PostgreSQL server for the test binary (started by the first postgres case), a database per
// test; stopped when the tests end.
func TestMain(m *testing.M) { pgtest.Main(m) }

// backends are the databases the ledger's tests run on: url returns the ledger URL for a test
// ("" = the lab's ledger.db; a fresh database on the test server, skipped when PostgreSQL is not
// installed).
var backends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return pgtest.URL(t) }},
}

// eachBackend runs f as a subtest per backend, with that backend's ledger URL.
func eachBackend(t *testing.T, f func(t *testing.T, dbURL string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.url(t)) })
	}
}

// open opens the ledger at dbURL for lab folder dir, closed when the test ends.
func open(t *testing.T, dir, dbURL string) *Ledger {
	t.Helper()
	l, err := OpenURL(dir, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawDB opens the database behind a ledger without the ledger (to build old schemas), speaking
// the backend's dialect.
func rawDB(t *testing.T, dir, dbURL string) sqlDB {
	t.Helper()
	if dbURL == "" {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, File))
		if err != nil {
			t.Fatal(err)
		}
		return sqlDB{db, sqliteDialect{}}
	}
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return sqlDB{stdlib.OpenDB(*cfg), postgresDialect{}}
}
