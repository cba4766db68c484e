// Package mariadbtest gives tests a real MariaDB (or MySQL): the one named
// by GEARMAND_TEST_MYSQL_DSN, or else a throwaway MariaDB it starts from the
// installed binaries (mariadb-install-db, mariadbd: Debian package
// mariadb-server) in a temporary directory, listening on a free loopback
// port and on a Unix socket in that directory. It never uses the machine's
// own server. One server serves a whole test binary: start it in TestMain
// with Main (or Run), then call Server in each test and NewDatabase for a
// database of the test's own.
//
// The throwaway server keeps its grant tables: tests connect as a user
// with a password (User, Password), so that a wrong password is refused as
// it would be in production. Its root user has no password and is used
// only over the Unix socket, to create databases and that user.
//
// mariadbd refuses to run as root unless told to; when the tests run as
// root the server is started with --user=root.
//
// Without a DSN and without the binaries, Server skips the test, saying
// what to install, except when CI=true: then the test fails. With the
// binaries, a server that does not start fails the test.
package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"gearmand/internal/testdep"
)

// EnvDSN names the environment variable holding the go-sql-driver DSN
// (user:password@tcp(host:port)/) of a MariaDB or MySQL to test against
// instead of a throwaway server. Its user must be allowed to create and
// drop databases.
const EnvDSN = "GEARMAND_TEST_MYSQL_DSN"

// The user the throwaway server's tests connect as.
const (
	testUser     = "gearmand_test"
	testPassword = "gearmand-test-secret"
)

// How long the throwaway server may take to start or to stop.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 60 * time.Second
)

// DB is a MariaDB the tests may use.
type DB struct {
	// Host and Port are where the server listens on TCP.
	Host string
	Port int
	// Socket is the server's Unix socket, "" when only TCP is known.
	Socket string
	// User and Password log in with every privilege the tests need
	// (creating tables in their databases, at least).
	User, Password string

	adminDSN string // creates and drops databases: root over the socket, or the EnvDSN

	// Set for a throwaway server only.
	dir        string // holds data/, the socket, the log
	serverPath string
	asRoot     bool
	mu         struct {
		sync.Mutex
		cmd    *exec.Cmd
		exited chan struct{} // closed when cmd has been waited for
		frozen bool
	}
}

var (
	shared   *DB
	setupErr error // why there is no shared server
	seq      atomic.Int64
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
	if shared != nil && shared.Throwaway() {
		if err := shared.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "mariadbtest:", err)
		}
		os.RemoveAll(shared.dir)
	}
	return code
}

// Server returns the shared MariaDB. When there is neither a DSN nor the
// binaries it skips the test, or fails it under CI=true; when the binaries
// are there but the server did not start, it fails the test.
func Server(tb testing.TB) *DB {
	tb.Helper()
	if shared != nil {
		return shared
	}
	err := setupErr
	if err == nil {
		err = errors.New("mariadbtest.Main was not called from TestMain")
	}
	switch {
	case !errors.Is(err, errNoMariaDB):
		tb.Fatalf("mariadbtest: starting a throwaway MariaDB: %v", err)
	default:
		testdep.Missing(tb, fmt.Sprintf("a MariaDB to test against (%v; or set %s)", err, EnvDSN), "mariadb-server")
	}
	return nil
}

// errNoMariaDB: neither a DSN nor the binaries to start a server.
var errNoMariaDB = errors.New("no MariaDB")

// Throwaway reports whether the server was started by this package, so
// that tests may kill, freeze and restart it.
func (db *DB) Throwaway() bool { return db.dir != "" }

// Addr is Host:Port.
func (db *DB) Addr() string { return net.JoinHostPort(db.Host, strconv.Itoa(db.Port)) }

// DSN is the go-sql-driver DSN that logs in as User over TCP and uses
// database (none when "").
func (db *DB) DSN(database string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = db.User, db.Password
	cfg.Net, cfg.Addr = "tcp", db.Addr()
	cfg.DBName = database
	return cfg.FormatDSN()
}

// NewDatabase creates a database of its own for the calling test, drops it
// when the test ends, and returns its name.
func (db *DB) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("gearmand_test_%d_%d", os.Getpid(), seq.Add(1))
	if err := db.admin("CREATE DATABASE `" + name + "`"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.admin("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			tb.Log(err)
		}
	})
	return name
}

// Open returns a connection pool logged in as User on database, closed
// when the test ends: for tests that look at or set up rows themselves.
func (db *DB) Open(tb testing.TB, database string) *sql.DB {
	tb.Helper()
	pool, err := sql.Open("mysql", db.DSN(database))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pool.Close() })
	return pool
}

// admin runs one statement as the administrative user.
func (db *DB) admin(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := sql.Open("mysql", db.adminDSN)
	if err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	defer pool.Close()
	if _, err := pool.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("mariadbtest: %s: %w", stmt, err)
	}
	return nil
}

// Kill kills the throwaway server with SIGKILL, as a crash would, and
// waits until it is gone. Start brings it back on the same data.
func (db *DB) Kill(tb testing.TB) {
	tb.Helper()
	db.mustThrowaway(tb)
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.signalLocked(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	if err := db.waitLocked(stopTimeout); err != nil {
		tb.Fatal(err)
	}
}

// Start starts the throwaway server again after Kill, on the same port,
// socket and data, and waits until it accepts connections.
func (db *DB) Start(tb testing.TB) {
	tb.Helper()
	db.mustThrowaway(tb)
	if err := db.startServer(); err != nil {
		tb.Fatal(err)
	}
}

// Freeze stops the throwaway server's process (SIGSTOP) without closing
// anything: connections stay open and go unanswered, as with a server
// that hangs. Thaw, or the end of the test, resumes it.
func (db *DB) Freeze(tb testing.TB) {
	tb.Helper()
	db.mustThrowaway(tb)
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.signalLocked(syscall.SIGSTOP); err != nil {
		tb.Fatal(err)
	}
	db.mu.frozen = true
	tb.Cleanup(db.thaw)
}

// Thaw resumes a server stopped by Freeze.
func (db *DB) Thaw(tb testing.TB) {
	tb.Helper()
	db.mustThrowaway(tb)
	db.thaw()
}

func (db *DB) thaw() {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.frozen {
		_ = db.signalLocked(syscall.SIGCONT)
		db.mu.frozen = false
	}
}

func (db *DB) mustThrowaway(tb testing.TB) {
	tb.Helper()
	if !db.Throwaway() {
		tb.Skipf("the MariaDB of %s is not this test's to stop", EnvDSN)
	}
}

func (db *DB) signalLocked(sig syscall.Signal) error {
	if db.mu.cmd == nil {
		return errors.New("mariadbtest: the server is not running")
	}
	select {
	case <-db.mu.exited:
		return errors.New("mariadbtest: the server has exited")
	default:
	}
	return db.mu.cmd.Process.Signal(sig)
}

// waitLocked waits up to timeout for the server process to exit.
func (db *DB) waitLocked(timeout time.Duration) error {
	if db.mu.cmd == nil {
		return nil
	}
	select {
	case <-db.mu.exited:
		db.mu.cmd = nil
		db.mu.frozen = false
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("mariadbtest: the server (pid %d) did not exit within %v", db.mu.cmd.Process.Pid, timeout)
	}
}

// stop shuts the server down cleanly (SIGTERM), killing it if it does not
// exit in time.
func (db *DB) stop() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.cmd == nil {
		return nil
	}
	if db.mu.frozen {
		_ = db.signalLocked(syscall.SIGCONT)
	}
	if err := db.signalLocked(syscall.SIGTERM); err != nil {
		return db.waitLocked(stopTimeout)
	}
	if err := db.waitLocked(stopTimeout); err != nil {
		_ = db.signalLocked(syscall.SIGKILL)
		_ = db.waitLocked(stopTimeout)
		return err
	}
	return nil
}

// start finds or starts the shared server.
func start() (*DB, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return fromDSN(dsn)
	}
	installPath, serverPath, err := findBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gearmand-mariadbtest-")
	if err != nil {
		return nil, err
	}
	db := &DB{
		Host:       "127.0.0.1",
		Socket:     filepath.Join(dir, "mysqld.sock"),
		User:       testUser,
		Password:   testPassword,
		dir:        dir,
		serverPath: serverPath,
		asRoot:     os.Geteuid() == 0,
	}
	root := mysql.NewConfig()
	root.User, root.Net, root.Addr = "root", "unix", db.Socket
	db.adminDSN = root.FormatDSN()
	fail := func(err error) (*DB, error) {
		_ = db.stop()
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return fail(err)
	}
	if err := db.install(installPath); err != nil {
		return fail(err)
	}
	// A free port may be taken by another process before mariadbd binds
	// it, which then exits: try another.
	for attempt := 1; ; attempt++ {
		if db.Port, err = freePort(); err != nil {
			return fail(err)
		}
		err = db.startServer()
		if err == nil {
			break
		}
		if !errors.Is(err, errExited) || attempt == 5 {
			return fail(err)
		}
	}
	user := "'" + testUser + "'@'%'"
	for _, stmt := range []string{
		"CREATE USER " + user + " IDENTIFIED BY '" + testPassword + "'",
		"GRANT ALL PRIVILEGES ON *.* TO " + user,
	} {
		if err := db.admin(stmt); err != nil {
			return fail(err)
		}
	}
	return db, nil
}

// fromDSN describes the server of an EnvDSN.
func fromDSN(dsn string) (*DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvDSN, err)
	}
	db := &DB{User: cfg.User, Password: cfg.Passwd}
	switch cfg.Net {
	case "tcp", "tcp4", "tcp6":
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("%s: address %q: %w", EnvDSN, cfg.Addr, err)
		}
		db.Host = host
		db.Port, _ = strconv.Atoi(port)
	case "unix":
		db.Socket = cfg.Addr
	default:
		return nil, fmt.Errorf("%s: network %q: want tcp or unix", EnvDSN, cfg.Net)
	}
	cfg.DBName = ""
	db.adminDSN = cfg.FormatDSN()
	return db, nil
}

// serverArgs are the options of every mariadbd the package runs, the
// bootstrap one of mariadb-install-db included: no option files, nothing
// that a test does not need, small memory.
func (db *DB) serverArgs() []string {
	args := []string{
		"--no-defaults", // must come first
		"--datadir=" + filepath.Join(db.dir, "data"),
		// Not /tmp: temporary tables are named by pid there, and a name
		// left by another server (or a killed one whose pid came back)
		// fails the bootstrap.
		"--tmpdir=" + filepath.Join(db.dir, "tmp"),
		"--skip-name-resolve",
		"--innodb-buffer-pool-size=64M",
		"--performance-schema=OFF",
		"--skip-log-bin",
	}
	if db.asRoot {
		args = append(args, "--user=root")
	}
	return args
}

// install creates the data directory with mariadb-install-db.
func (db *DB) install(installPath string) error {
	args := append(db.serverArgs(),
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
	)
	cmd := exec.Command(installPath, args...)
	cmd.Dir = db.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", installPath, strings.Join(args, " "), err, out)
	}
	return nil
}

// startServer starts mariadbd and waits until root can log in over the
// socket.
func (db *DB) startServer() error {
	logPath := filepath.Join(db.dir, "server.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	args := append(db.serverArgs(),
		"--bind-address="+db.Host,
		"--port="+strconv.Itoa(db.Port),
		"--socket="+db.Socket,
		"--pid-file="+filepath.Join(db.dir, "mysqld.pid"),
		"--log-error="+logPath,
	)
	cmd := exec.Command(db.serverPath, args...)
	cmd.Dir = db.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	db.mu.Lock()
	if db.mu.cmd != nil {
		select {
		case <-db.mu.exited: // it died on its own: start it again
		default:
			db.mu.Unlock()
			return errors.New("mariadbtest: the server is already running")
		}
	}
	if err := cmd.Start(); err != nil {
		db.mu.Unlock()
		return err
	}
	exited := make(chan struct{})
	db.mu.cmd, db.mu.exited = cmd, exited
	db.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := db.waitReady(exited); err != nil {
		logText, _ := os.ReadFile(logPath)
		return fmt.Errorf("mariadbtest: %s did not start: %w\nserver log:\n%s", db.serverPath, err, logText)
	}
	return nil
}

// errExited: the server exited before it was ready.
var errExited = errors.New("the server exited")

// waitReady polls until root can log in and run a query, the server
// exits, or startTimeout passes.
func (db *DB) waitReady(exited <-chan struct{}) error {
	cfg, err := mysql.ParseDSN(db.adminDSN)
	if err != nil {
		return err
	}
	cfg.Timeout = time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	pool := sql.OpenDB(connector)
	defer pool.Close()
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := pool.ExecContext(ctx, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", startTimeout, err)
		}
		select {
		case <-exited:
			return errExited
		case <-tick.C:
		}
	}
}

// findBinaries returns the paths of mariadb-install-db and mariadbd (or
// their older names), looking on PATH and in /usr/sbin.
func findBinaries() (installPath, serverPath string, err error) {
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
			if p := filepath.Join("/usr/sbin", n); isExecutable(p) {
				return p
			}
		}
		return ""
	}
	installPath = find("mariadb-install-db", "mysql_install_db")
	serverPath = find("mariadbd", "mysqld")
	if installPath == "" || serverPath == "" {
		return "", "", fmt.Errorf("%w: neither %s nor mariadb-install-db and mariadbd (on PATH or in /usr/sbin)", errNoMariaDB, EnvDSN)
	}
	return installPath, serverPath, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
