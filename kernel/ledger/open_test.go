package ledger

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anelab/anelab/internal/pgtest"
)

// Issue 10, defect 5: an empty or missing ledger.db beside existing run folders is an error that
// says what to do, never a fresh lab.
func TestEmptyLedgerBesideRuns(t *testing.T) {
	for _, name := range []string{"empty", "missing"} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "runs", "r1"), 0o755)
		if name == "empty" {
			os.WriteFile(filepath.Join(dir, File), nil, 0o644)
		}
		for _, open := range []func(string) (*Ledger, error){Open, OpenReadOnly} {
			l, err := open(dir)
			if err == nil {
				l.Close()
				t.Fatalf("%s ledger.db beside runs/: opened as a fresh lab", name)
			}
			if !strings.Contains(err.Error(), "restore") || !strings.Contains(err.Error(), "1 run folders") {
				t.Errorf("%s: error %q does not say what to do", name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, TSVFile)); err == nil {
			t.Errorf("%s: results.tsv was written", name)
		}
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "runs", "r1"), 0o755)
	os.WriteFile(filepath.Join(dir, File), []byte("this is not a database, just some text that is long enough"), 0o644)
	if l, err := Open(dir); err == nil {
		l.Close()
		t.Error("a damaged ledger.db opened")
	} else if !strings.Contains(err.Error(), "restore") {
		t.Errorf("damaged: error %q does not say what to do", err)
	}
}

// Defect 7: reading commands open the ledger read-only: they read what is there, write nothing,
// and cannot write.
func TestOpenReadOnly(t *testing.T) { eachBackend(t, testOpenReadOnly) }

func testOpenReadOnly(t *testing.T, dbURL string) {
	// Nothing there yet: no ledger, and nothing created.
	if _, err := OpenReadOnlyURL(t.TempDir(), dbURL); err == nil || !strings.Contains(err.Error(), "no ledger") {
		t.Errorf("no lab: err = %v", err)
	}
	dir := t.TempDir()
	open(t, dir, dbURL).Close()
	ro, err := OpenReadOnlyURL(dir, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Runs(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ro.db.Exec(`DELETE FROM runs`); err == nil {
		t.Error("a read-only ledger accepted a write")
	}
}

// TestBadURL: a URL that is not PostgreSQL's, or a server that cannot be reached, is an error
// naming ANELAB_DB and what to check, and never shows the URL's password.
func TestBadURL(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"mysql://u:s3cret@host/db", "not a PostgreSQL URL"},
		{"lab/ledger.db", "not a PostgreSQL URL"},
		{"postgres://u:s3cret@/db?host=" + t.TempDir() + "&connect_timeout=5", "cannot connect"},
	} {
		for _, open := range []func(string, string) (*Ledger, error){OpenURL, OpenReadOnlyURL} {
			l, err := open(t.TempDir(), c.url)
			if err == nil {
				l.Close()
				t.Fatalf("%s opened", c.url)
			}
			if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.Contains(msg, EnvDB) || strings.Contains(msg, "s3cret") {
				t.Errorf("%s: error %q: want %q, naming %s, without the password", c.url, msg, c.want, EnvDB)
			}
		}
	}
}

// TestOwnLedgerAndURL: a lab folder with its own ledger.db refuses to record in a database as
// well (the two would never be judged together), naming both and what to do; reading is allowed.
func TestOwnLedgerAndURL(t *testing.T) {
	dbURL := pgtest.URL(t)
	dir := t.TempDir()
	open(t, dir, "").Close()
	if l, err := OpenURL(dir, dbURL); err == nil {
		l.Close()
		t.Fatal("a lab with its own ledger.db opened a database for writing")
	} else if msg := err.Error(); !strings.Contains(msg, File) || !strings.Contains(msg, EnvDB) || !strings.Contains(msg, "aside") {
		t.Errorf("error %q does not name the ledger, %s and what to do", msg, EnvDB)
	}
	open(t, t.TempDir(), dbURL).Close() // create the database's ledger
	ro, err := OpenReadOnlyURL(dir, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:s3cret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@/db?host=/tmp/x":                  "postgres://u@/db?host=/tmp/x",
		"postgres:///db":                                "postgres:///db",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
		if got := (&Ledger{url: in}).Where(); got != want {
			t.Errorf("Where() = %q, want %q", got, want)
		}
	}
	if got := (&Ledger{Dir: "lab"}).Where(); got != "lab/"+File {
		t.Errorf("Where() of a SQLite ledger = %q", got)
	}
}
