package pgtest

import (
	"database/sql"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func TestMain(m *testing.M) { Main(m) }

// TestServer: two databases of the shared server are separate, and a started server is stopped
// (process gone, folder removed) by Stop.
func TestServer(t *testing.T) {
	a, b := URL(t), URL(t)
	if a == b {
		t.Fatalf("two databases, one URL %s", a)
	}
	open := func(u string) *sql.DB {
		cfg, err := pgx.ParseConfig(u)
		if err != nil {
			t.Fatal(err)
		}
		db := stdlib.OpenDB(*cfg)
		t.Cleanup(func() { db.Close() })
		return db
	}
	da, db := open(a), open(b)
	if _, err := da.Exec(`CREATE TABLE x (v BIGINT); INSERT INTO x VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := da.QueryRow(`SELECT v FROM x`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("read back %d %v", v, err)
	}
	if _, err := db.Exec(`SELECT v FROM x`); err == nil {
		t.Error("the second database sees the first's table")
	}
	var listen string
	if err := da.QueryRow(`SHOW listen_addresses`).Scan(&listen); err != nil || listen != "" {
		t.Errorf("listen_addresses %q (%v), want empty: no TCP", listen, err)
	}

	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	pid := s.cmd.Process.Pid
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("folder %s left after Stop (%v)", s.Dir, err)
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Errorf("server pid %d still there after Stop (%v)", pid, err)
	}
}
