// Package pgtest gives tests a real PostgreSQL: the one named by
// GEARMAND_TEST_POSTGRES_URL, or else a throwaway server it starts from the
// installed binaries (initdb, pg_ctl: Debian package postgresql) in a
// temporary directory, listening on a Unix socket there and on a free
// loopback port. One server serves a whole test binary: start it in
// TestMain with Main, then call Server in each test.
//
// initdb refuses to run as root. When the tests run as root, the server's
// directory is given to the "postgres" system user and initdb, pg_ctl and
// the server run as that user through setpriv.
//
// Without a URL and without the binaries, Server skips the test, saying
// what to install, except when CI=true: then the test fails. With the
// binaries, a server that does not start fails the test.
package pgtest

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

	"gearmand/internal/testdep"
)

// EnvURL names the environment variable holding the URL of a PostgreSQL
// to test against instead of a throwaway server. Its user must be allowed
// to create databases.
const EnvURL = "GEARMAND_TEST_POSTGRES_URL"

// DB is a PostgreSQL the tests may use.
type DB struct {
	// URL connects to the maintenance database as a superuser (or a user
	// who may create databases).
	URL string

	// Set for a throwaway server only.
	dataDir, sockDir, logFile string
	port                      int
	binDir                    string
	asUser                    *user.User // nil: the current user
}

var (
	shared   *DB
	setupErr error // why there is no shared server
	seq      atomic.Int64

	sharedDB struct {
		sync.Mutex
		url  string
		drop func()
	}
)

// Main starts the shared server, runs the tests, stops the server and
// exits. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns m.Run's code, for a TestMain
// that checks more after the server is gone, or that needs another
// package's server too (m may be anything whose Run calls that package's Run).
func Run(m interface{ Run() int }) int {
	shared, setupErr = start()
	code := m.Run()
	sharedDB.Lock()
	if sharedDB.drop != nil {
		sharedDB.drop()
	}
	sharedDB.Unlock()
	if shared != nil {
		if err := shared.stop("fast"); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		if shared.dataDir != "" {
			os.RemoveAll(filepath.Dir(shared.dataDir))
		}
	}
	return code
}

// Server returns the shared PostgreSQL. When there is neither a URL nor
// the binaries it skips the test, or fails it under CI=true; when the
// binaries are there but the server did not start, it fails the test.
func Server(tb testing.TB) *DB {
	tb.Helper()
	if shared != nil {
		return shared
	}
	err := setupErr
	if err == nil {
		err = errors.New("pgtest.Main was not called from TestMain")
	}
	switch {
	case !errors.Is(err, errNoPostgres):
		tb.Fatalf("pgtest: starting a throwaway PostgreSQL: %v", err)
	default:
		testdep.Missing(tb, fmt.Sprintf("a PostgreSQL to test against (%v; or set %s)", err, EnvURL), "postgresql")
	}
	return nil
}

// errNoPostgres: neither a URL nor the binaries to start a server.
var errNoPostgres = errors.New("no PostgreSQL")

// Throwaway reports whether the server was started by this package, so
// that tests may stop and start it.
func (db *DB) Throwaway() bool { return db.dataDir != "" }

// NewDatabase creates a database of its own for the calling test, drops it
// when the test ends, and returns its URL.
func (db *DB) NewDatabase(tb testing.TB) string {
	tb.Helper()
	url, drop, err := db.createDatabase()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Log(err)
		}
	})
	return url
}

// SharedDatabase returns the URL of a database that every test of the
// binary shares, created by the first call and dropped when Main ends.
// Tests keep apart in it by namespace.
func (db *DB) SharedDatabase(tb testing.TB) string {
	tb.Helper()
	sharedDB.Lock()
	defer sharedDB.Unlock()
	if sharedDB.url == "" {
		url, drop, err := db.createDatabase()
		if err != nil {
			tb.Fatal(err)
		}
		sharedDB.url = url
		sharedDB.drop = func() {
			if err := drop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
	return sharedDB.url
}

// createDatabase creates a database with a name no other test binary
// uses, and returns its URL and how to drop it.
func (db *DB) createDatabase() (dsn string, drop func() error, err error) {
	name := fmt.Sprintf("gearmand_test_%d_%d", os.Getpid(), seq.Add(1))
	quoted := pgx.Identifier{name}.Sanitize()
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, db.URL)
		if err != nil {
			return fmt.Errorf("pgtest: connecting to %s: %w", db.URL, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgtest: %s: %w", sql, err)
		}
		return nil
	}
	dsn, err = withDatabase(db.URL, name)
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %s: %w", EnvURL, err)
	}
	if err := exec("CREATE DATABASE " + quoted); err != nil {
		return "", nil, err
	}
	drop = func() error { return exec("DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)") }
	return dsn, drop, nil
}

// TCPAddr is the host:port the server listens on, when it listens on TCP.
func (db *DB) TCPAddr() (string, bool) {
	if db.Throwaway() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(db.port)), true
	}
	cfg, err := pgx.ParseConfig(db.URL)
	if err != nil || strings.HasPrefix(cfg.Host, "/") || cfg.TLSConfig != nil {
		return "", false
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), true
}

// withDatabase returns dsn, a URL or a keyword/value string, with its
// database replaced by name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// A later keyword wins.
	return dsn + " dbname=" + name, nil
}

// Stop stops the throwaway server at once, as a crash would
// (pg_ctl stop -m immediate).
func (db *DB) Stop(tb testing.TB) {
	tb.Helper()
	if err := db.stop("immediate"); err != nil {
		tb.Fatal(err)
	}
}

// Start starts the throwaway server again after Stop.
func (db *DB) Start(tb testing.TB) {
	tb.Helper()
	if err := db.pgctlStart(); err != nil {
		tb.Fatal(err)
	}
}

func (db *DB) stop(mode string) error {
	if !db.Throwaway() {
		return nil
	}
	return db.run("pg_ctl", "-D", db.dataDir, "-m", mode, "-w", "stop")
}

func (db *DB) pgctlStart() error {
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses=127.0.0.1", db.sockDir, db.port)
	return db.run("pg_ctl", "-D", db.dataDir, "-l", db.logFile, "-o", opts, "-w", "-t", "60", "start")
}

// run runs one of the server's programs, as the server's user.
func (db *DB) run(prog string, args ...string) error {
	path := filepath.Join(db.binDir, prog)
	var cmd *exec.Cmd
	if db.asUser != nil {
		cmd = exec.Command("setpriv", append([]string{
			"--reuid=" + db.asUser.Uid, "--regid=" + db.asUser.Gid, "--init-groups", "--", path,
		}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = filepath.Dir(db.dataDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(db.logFile)
		return fmt.Errorf("%s %s: %v\n%s\nserver log:\n%s", prog, strings.Join(args, " "), err, out, log)
	}
	return nil
}

// start finds or starts the shared server.
func start() (*DB, error) {
	if url := os.Getenv(EnvURL); url != "" {
		return &DB{URL: url}, nil
	}
	binDir, err := findBinaries()
	if err != nil {
		return nil, err
	}
	db := &DB{binDir: binDir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and initdb refuses root: no postgres user to run it as: %w", err)
		}
		if _, err := exec.LookPath("setpriv"); err != nil {
			return nil, fmt.Errorf("running as root, and initdb refuses root: no setpriv (util-linux) to run it as postgres: %w", err)
		}
		db.asUser = u
	}
	dir, err := os.MkdirTemp("", "gearmand-pgtest-")
	if err != nil {
		return nil, err
	}
	db.dataDir = filepath.Join(dir, "data")
	db.sockDir = filepath.Join(dir, "sock")
	db.logFile = filepath.Join(dir, "server.log")
	for _, d := range []string{db.sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if db.asUser != nil {
		uid, _ := strconv.Atoi(db.asUser.Uid)
		gid, _ := strconv.Atoi(db.asUser.Gid)
		for _, p := range []string{dir, db.sockDir} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, err
			}
		}
	}
	fail := func(err error) (*DB, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := db.run("initdb", "-D", db.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-instructions"); err != nil {
		if db.asUser != nil {
			err = fmt.Errorf("%w\n(as root, initdb runs as the postgres user: every parent of %s must be searchable by it; point TMPDIR elsewhere if not)", err, dir)
		}
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	db.port = port
	if err := db.pgctlStart(); err != nil {
		return fail(err)
	}
	db.URL = fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", db.sockDir, db.port)
	return db, nil
}

// findBinaries returns the directory holding initdb and pg_ctl: the one of
// the initdb on PATH, else the newest /usr/lib/postgresql/*/bin.
func findBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w: neither %s nor initdb and pg_ctl (on PATH or in /usr/lib/postgresql/*/bin)", errNoPostgres, EnvURL)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
