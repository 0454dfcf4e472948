// Package pgtest starts a throwaway PostgreSQL server for tests: Debian's `postgresql` package
// (initdb and the postgres server from /usr/lib/postgresql/*/bin), a data folder and a unix socket
// in a temporary folder, no TCP, no system service. One server serves a whole test binary, each
// test gets a fresh database on it (URL), and the server dies with the test process.
//
// Use it from a package's TestMain, so the server is stopped and its folder removed at the end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.URL(t) // skips t when PostgreSQL is not installed
//		…
//	}
//
// As root (CI, containers), initdb refuses to run, so the server runs as the `postgres` user that
// the Debian package creates; root connects through the socket as the database user postgres.
package pgtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Package is the Debian package that provides the server; the skip message names it.
const Package = "postgresql"

// ErrNotInstalled is returned by Start (wrapped) when no PostgreSQL server binaries are found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed")

// Server is a running throwaway server.
type Server struct {
	Dir     string // temporary folder: data/, the socket, server.log
	BinDir  string // where initdb and postgres were found
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	admin   *sql.DB
	n       atomic.Int64
}

// BinDir finds the folder holding initdb and postgres: the newest /usr/lib/postgresql/N/bin
// (Debian puts them there, not on PATH), else the PATH's.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no initdb/postgres in /usr/lib/postgresql/*/bin or on PATH "+
		"(install Debian's %s package: apt-get install %s, or make deps)", ErrNotInstalled, Package, Package)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

const prefix = "anelab-pgtest-"

// Start puts a fresh data folder (initdb's, through a per-machine template) in a new temporary folder and starts a server on a unix socket
// there (listen_addresses is empty: no TCP port). It waits until the server accepts connections.
// The server is started directly (not through pg_ctl, which would detach it), as a child that
// the kernel kills when this process dies (Linux), so a test binary killed by a timeout leaves no
// server behind; Stop shuts it down and removes the folder.
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	removeLeftovers()
	dir, err := os.MkdirTemp("", prefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, BinDir: bin, exited: make(chan struct{})}
	fail := func(err error) (*Server, error) {
		s.Stop()
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	if err := initData(bin, data, cred); err != nil {
		return fail(err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return fail(err)
	}
	defer logf.Close()
	// Durability off (fsync, full pages, synchronous commit): a test server's data dies with it.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", "5432",
		"-c", "listen_addresses=", "-c", "unix_socket_permissions=0777",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
		"-c", "shared_buffers=32MB", "-c", "max_connections=100")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = serverAttr(cred)
	started := make(chan error, 1)
	go func() {
		// The kernel's parent-death signal follows the thread that started the child, not the
		// process: this goroutine keeps its thread for as long as the server runs.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		s.cmd = nil
		return fail(fmt.Errorf("pgtest: start postgres: %w", err))
	}
	cfg, err := pgx.ParseConfig(s.url("postgres"))
	if err != nil {
		return fail(err)
	}
	s.admin = stdlib.OpenDB(*cfg)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.admin.PingContext(ctx)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return fail(fmt.Errorf("pgtest: postgres exited (%v):\n%s", s.waitErr, tail(log)))
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return fail(fmt.Errorf("pgtest: postgres not accepting connections after 60 s: %v\n%s", err, tail(log)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// initData puts a fresh data folder at data: a copy of this machine's template (see template),
// or initdb's own output when there is none and none can be made.
func initData(bin, data string, cred *syscall.Credential) error {
	if tmpl, err := template(bin, cred); err == nil {
		if err := exec.Command("cp", "-a", tmpl, data).Run(); err == nil {
			return nil
		}
		os.RemoveAll(data)
	}
	return initdb(bin, data, cred)
}

func initdb(bin, data string, cred *syscall.Credential) error {
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = filepath.Dir(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, tail(out))
	}
	return nil
}

// templateVersion names initdb's arguments above: change it when they change.
const templateVersion = "1"

// template returns a data folder made by initdb once per machine, PostgreSQL installation and
// user, kept in the temporary folder, for Start to copy: initdb takes seconds on a busy 2-core
// machine, a copy a fraction of one. It is made beside its final name and renamed into place, so
// test binaries starting together never see half of one.
func template(bin string, cred *syscall.Credential) (string, error) {
	uid := os.Geteuid()
	if cred != nil {
		uid = int(cred.Uid)
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", bin, templateVersion, uid)))
	final := filepath.Join(os.TempDir(), "anelab-pgtemplate-"+hex.EncodeToString(sum[:6]))
	data := filepath.Join(final, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return data, nil
	}
	// Named as a server folder of this process, so a process killed while making it leaves a
	// folder that the next Start removes.
	tmp, err := os.MkdirTemp("", prefix+strconv.Itoa(os.Getpid())+"-template-")
	if err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(tmp, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	if err := initdb(bin, filepath.Join(tmp, "data"), cred); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(data, "PG_VERSION")); serr != nil {
			return "", err
		}
	}
	return data, nil
}

// serverUser is who runs initdb and the server: nil (this process's user) unless we are root,
// which PostgreSQL refuses; then the postgres user.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: running as root, and there is no postgres user to run the server as "+
			"(Debian's %s package creates it): %v", ErrNotInstalled, Package, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// url is the URL of database name on s, through the socket.
func (s *Server) url(name string) string {
	return "postgres://postgres@/" + name + "?host=" + s.Dir + "&port=5432&sslmode=disable"
}

var dbName = regexp.MustCompile(`[^a-z0-9_]+`)

// CreateDB creates an empty database named after name (lower-cased, other characters as _, made
// unique) and returns its URL.
func (s *Server) CreateDB(name string) (string, error) {
	n := dbName.ReplaceAllString(strings.ToLower(name), "_")
	if len(n) > 40 {
		n = n[:40]
	}
	n = fmt.Sprintf("t%d_%s", s.n.Add(1), n)
	if _, err := s.admin.Exec(`CREATE DATABASE "` + n + `"`); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", n, err)
	}
	return s.url(n), nil
}

// Stop shuts the server down (fast shutdown: SIGINT; SIGKILL after 10 s) and removes its folder.
func (s *Server) Stop() error {
	if s.admin != nil {
		s.admin.Close()
	}
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
			err = errors.New("pgtest: postgres did not stop within 10 s; killed")
		}
	}
	os.RemoveAll(s.Dir)
	return err
}

// removeLeftovers removes the folders of servers whose test process is gone (killed before it
// could clean up; its server died with it).
func removeLeftovers() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, d := range dirs {
		f := strings.SplitN(strings.TrimPrefix(filepath.Base(d), prefix), "-", 2)
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the test binary's server, starting it on first use.
func Shared() (*Server, error) {
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	return shared.srv, shared.err
}

// EnvRequired, when set (make test sets it on Linux, where make deps installed the package),
// turns the skip for a missing PostgreSQL into a failure, so CI cannot pass without these tests.
const EnvRequired = "ANELAB_PGTEST_REQUIRED"

// URL returns the URL of a new, empty database on the test binary's server (started on first
// use). It skips t, naming the Debian package, when PostgreSQL is not installed (fails it when
// ANELAB_PGTEST_REQUIRED is set), and fails t when the server does not start.
func URL(t testing.TB) string {
	t.Helper()
	s, err := Shared()
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv(EnvRequired) != "" {
			t.Fatalf("%v (and %s is set)", err, EnvRequired)
		}
		t.Skipf("skipping the PostgreSQL case: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateDB(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Main runs the tests (m.Run), stops the shared server if a test started it, and exits with the
// tests' status. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}
