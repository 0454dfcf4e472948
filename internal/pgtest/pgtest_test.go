package pgtest

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// TestServerDiesWithProcess: a test process killed with SIGKILL (no Stop, no cleanup) takes its
// server with it, and the next Start removes the folder it left.
func TestServerDiesWithProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux's")
	}
	if os.Getenv("PGTEST_CHILD") == "1" {
		s, err := Start()
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("server", s.cmd.Process.Pid, s.Dir)
		time.Sleep(time.Minute)
		os.Exit(1)
	}
	if _, err := BinDir(); err != nil {
		t.Skip(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithProcess$")
	child.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var dir string
	if _, err := fmt.Fscanln(out, new(string), &pid, &dir); err != nil {
		child.Process.Kill()
		child.Wait()
		t.Fatalf("child did not report its server: %v", err)
	}
	child.Process.Kill() // SIGKILL
	child.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("server %d still running 10 s after its test process was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed process's folder %s: %v (want it left, for the next Start to remove)", dir, err)
	}
	removeLeftovers()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("leftover folder %s not removed (%v)", dir, err)
	}
}

// alive reports whether pid is a live process (a zombie waiting for its parent is not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
