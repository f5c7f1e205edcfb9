// Package postgrestest starts throwaway PostgreSQL servers for tests, from
// the machine's own PostgreSQL binaries: initdb on a temporary directory,
// then postgres on a free loopback port. Tests get a database each on one
// server per test binary.
//
// PostgreSQL refuses to run as root, and CI runs as root: then the server
// runs as the "postgres" system user (through runuser) on a directory that
// user owns.
//
// A missing PostgreSQL is an error, never a reason to skip: the tests that
// need it are how the PostgreSQL view store is known to work.
package postgrestest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	dir     string
	bin     string
	port    int
	asUser  string // run commands as this user; "" for the current one
	dbs     atomic.Int64
	stopped sync.Once
	// password is the superuser's, when connections over TCP must give
	// one (Options.Passwords).
	password string
}

// Options tune a server. The zero value is fine for tests.
type Options struct {
	// Durable keeps fsync on. Tests leave it off: they check behaviour,
	// not what survives a power cut, and fsync makes each commit slow.
	Durable bool
	// Passwords makes connections over TCP authenticate with a password
	// (scram-sha-256), so that tests can prove a role's password is
	// checked: a role's wrong or old password is refused. URL then
	// carries the superuser's password. Off, every connection is trusted.
	Passwords bool
}

// SuperuserPassword is the superuser's password on a server started with
// Options.Passwords.
const SuperuserPassword = "postgrestest-superuser"

// FindBin returns the directory holding initdb, pg_ctl and postgres: the
// one on PATH, or the newest /usr/lib/postgresql/*/bin.
func FindBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("postgrestest: no PostgreSQL binaries (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql/*/bin; install PostgreSQL (Debian: apt-get install postgresql) to run these tests")
}

// Start initializes a data directory and starts a server on a free
// loopback port. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pickup-pg-")
	if err != nil {
		return nil, fmt.Errorf("postgrestest: %w", err)
	}
	s := &Server{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		if err := s.handTo("postgres"); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initArgs := []string{"-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"}
	if opts.Passwords {
		pwfile := filepath.Join(dir, "pwfile")
		if err := s.writeOwned(pwfile, SuperuserPassword+"\n"); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		initArgs = append(initArgs, "--auth-host=scram-sha-256", "--pwfile="+pwfile)
		s.password = SuperuserPassword
	}
	if out, err := s.command(ctx, "initdb", initArgs...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("postgrestest: initdb: %w\n%s", err, out)
	}
	settings := []string{"-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"}
	if !opts.Durable {
		settings = append(settings, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	// The port is free when chosen but could be taken before postgres binds
	// it: try a few.
	var last error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		args := []string{"-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o",
			strings.Join(append([]string{"-p", strconv.Itoa(s.port)}, settings...), " "), "start"}
		out, err := s.command(ctx, "pg_ctl", args...).CombinedOutput()
		if err == nil {
			return s, nil
		}
		logs, _ := os.ReadFile(filepath.Join(dir, "log"))
		last = fmt.Errorf("postgrestest: pg_ctl start: %w\n%s\n%s", err, out, logs)
	}
	os.RemoveAll(dir)
	return nil, last
}

// handTo gives the directory to the named user, who will run the server.
func (s *Server) handTo(name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("postgrestest: running as root, PostgreSQL needs an unprivileged user %q to run as: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(s.dir, uid, gid); err != nil {
		return fmt.Errorf("postgrestest: %w", err)
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		return fmt.Errorf("postgrestest: running as root needs runuser to start PostgreSQL as %q: %w", name, err)
	}
	s.asUser = name
	return nil
}

// writeOwned writes a file the server's user can read.
func (s *Server) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("postgrestest: %w", err)
	}
	if s.asUser != "" {
		u, err := user.Lookup(s.asUser)
		if err != nil {
			return fmt.Errorf("postgrestest: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(path, uid, gid); err != nil {
			return fmt.Errorf("postgrestest: %w", err)
		}
	}
	return nil
}

func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if s.asUser != "" {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
	}
	return exec.CommandContext(ctx, path, args...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("postgrestest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL returns the URL of a database on the server.
func (s *Server) URL(database string) string {
	who := url.User("postgres")
	if s.password != "" {
		who = url.UserPassword("postgres", s.password)
	}
	u := url.URL{Scheme: "postgres", User: who, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase creates a new, empty database and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("postgrestest: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("postgrestest: create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// NewDatabase is CreateDatabase for a test, failing it on error.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// WithUser returns the URL u (one of URL's or CreateDatabase's) with
// another user and password: how a test connects as a role it made.
func WithUser(u, name, password string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("postgrestest: %w", err)
	}
	parsed.User = url.UserPassword(name, password)
	if password == "" {
		parsed.User = url.User(name)
	}
	return parsed.String(), nil
}

// Stop stops the server at once and removes its directory.
func (s *Server) Stop() error {
	var err error
	s.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, e := s.command(ctx, "pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop").CombinedOutput()
		if e != nil {
			err = fmt.Errorf("postgrestest: pg_ctl stop: %w\n%s", e, out)
		}
		os.RemoveAll(s.dir)
	})
	return err
}

// Shared starts one server for a test binary, on first use, and stops it
// when the tests are done. Use it from TestMain:
//
//	var pg postgrestest.Shared
//	func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }
//
// and pg.NewDatabase(t) in tests.
type Shared struct {
	// Options are the server's, read when it starts.
	Options Options

	once   sync.Once
	server *Server
	err    error
}

// Run runs the tests and stops the server if one was started.
func (sh *Shared) Run(m *testing.M) int {
	defer sh.Stop()
	return m.Run()
}

// Stop stops the server if one was started. TestMain calls it (or Run) when
// the tests are done.
func (sh *Shared) Stop() {
	if sh.server != nil {
		if err := sh.server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// Server returns the shared server, starting it on first use.
func (sh *Shared) Server() (*Server, error) {
	sh.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sh.server, sh.err = Start(ctx, sh.Options)
	})
	return sh.server, sh.err
}

// NewDatabase returns the URL of a new database on the shared server,
// failing the test if there is no server.
func (sh *Shared) NewDatabase(t testing.TB) string {
	t.Helper()
	s, err := sh.Server()
	if err != nil {
		t.Fatal(err)
	}
	return s.NewDatabase(t)
}
