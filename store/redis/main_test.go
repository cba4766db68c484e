package redis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"gearmand/internal/testdep"
	"gearmand/store"
)

// The tests run against a real Redis, never a mock: the one at
// GEARMAND_TEST_REDIS_URL when set (redis://[user:password@]host:port[/db]),
// otherwise a throwaway redis-server this test binary starts once, on a free
// port with its append-only file (appendfsync always) in a temporary
// directory, and stops at the end. Without either the tests skip, asking for
// Debian's redis-server package, except under CI=true, where they fail.
// The outage test always starts a redis-server of its own, since it kills
// it.

// shared is the Redis most tests use: an address and credentials, or why
// there is none.
var shared struct {
	cfg     Config // Addrs, Username, Password, DB
	missing string // set when there is no Redis to test against
	server  *redisServer
}

// quietLogger drops go-redis's log lines (failed dials while a test has
// killed its server); the tests check the errors themselves.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	if v := os.Getenv(envCQueueChild); v != "" {
		cqueueChild(v)
		return
	}
	if v := os.Getenv(envHandBackChild); v != "" {
		handBackChild(v)
		return
	}
	goredis.SetLogger(quietLogger{})
	code := func() int {
		if url := os.Getenv("GEARMAND_TEST_REDIS_URL"); url != "" {
			c, err := ConfigFromOptions(store.Options{DSN: url})
			if err != nil {
				fmt.Fprintf(os.Stderr, "GEARMAND_TEST_REDIS_URL: %v\n", err)
				return 2
			}
			shared.cfg = c
			return m.Run()
		}
		if _, err := exec.LookPath("redis-server"); err != nil {
			shared.missing = "no redis-server in PATH and GEARMAND_TEST_REDIS_URL is not set: install Debian package redis-server"
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "gearmand-redis-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer os.RemoveAll(dir)
		srv, err := startRedisServer(dir, 0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "starting redis-server: %v\n", err)
			return 2
		}
		defer srv.stop()
		shared.server = srv
		shared.cfg = Config{Addrs: []string{srv.addr}}
		return m.Run()
	}()
	// No goroutine of a closed Store (go-redis's pool, its background
	// dialer after an outage) may outlive the tests.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left running:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needRedis skips or fails the test when there is no Redis.
func needRedis(tb testing.TB) {
	tb.Helper()
	if shared.missing == "" {
		return
	}
	if testdep.InCI() {
		tb.Fatalf("CI=true needs a Redis: %s", shared.missing)
	}
	tb.Skip(shared.missing)
}

// needRedisServer is needRedis for tests that start their own server.
func needRedisServer(tb testing.TB) {
	tb.Helper()
	testdep.Need(tb, "redis-server", "redis-server")
}

var namespaces atomic.Uint64

// newNamespace is a namespace no other test, and no earlier run against a
// shared Redis, uses.
func newNamespace(tb testing.TB) string {
	name := strings.NewReplacer("/", ".", "{", "(", "}", ")").Replace(tb.Name())
	return fmt.Sprintf("test-%d-%d-%s", os.Getpid(), namespaces.Add(1), name)
}

// config is the shared Redis's Config with a fresh namespace, whose keys are
// deleted when the test ends.
func config(tb testing.TB) Config {
	tb.Helper()
	needRedis(tb)
	c := shared.cfg
	c.Namespace = newNamespace(tb)
	tb.Cleanup(func() { dropNamespace(tb, c) })
	return c
}

func openStore(tb testing.TB, c Config) *Store {
	tb.Helper()
	s, err := Open(context.Background(), c)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient is a plain client on c's Redis, for looking behind a store's
// back.
func rawClient(tb testing.TB, c Config) goredis.UniversalClient {
	tb.Helper()
	client := goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs: c.Addrs, MasterName: c.MasterName, Username: c.Username, Password: c.Password, DB: c.DB,
		DisableIdentity: true,
	})
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// namespaceKeys lists every key of c's namespace with a SCAN: a test may
// walk the whole database, the driver never does.
func namespaceKeys(tb testing.TB, c Config) []string {
	tb.Helper()
	client := rawClient(tb, c)
	var keys []string
	iter := client.Scan(context.Background(), 0, "gearmand:{"+escapeGlob(c.Namespace)+"}:*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Fatalf("SCAN: %v", err)
	}
	return keys
}

func dropNamespace(tb testing.TB, c Config) {
	keys := namespaceKeys(tb, c)
	client := rawClient(tb, c)
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := client.Del(context.Background(), keys[:n]...).Err(); err != nil {
			tb.Logf("dropping namespace %q: %v", c.Namespace, err)
			return
		}
		keys = keys[n:]
	}
}

// redisServer is a redis-server process of the tests' own.
type redisServer struct {
	dir    string
	port   int
	addr   string
	log    string
	cmd    *exec.Cmd
	extra  []string
	exited chan struct{} // closed when the process has been waited for
	err    error         // Wait's result, set before exited is closed
}

// startRedisServer starts redis-server with its files in dir, on port, or
// on a free port when port is 0, and waits until it answers PING. extra
// are more redis-server arguments.
func startRedisServer(dir string, port int, extra ...string) (*redisServer, error) {
	var lastErr error
	for range 5 { // a free port may be taken again before redis-server binds it
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		srv := &redisServer{dir: dir, port: p, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), extra: extra}
		if lastErr = srv.start(); lastErr == nil {
			return srv, nil
		}
		if port != 0 {
			break
		}
	}
	return nil, lastErr
}

func (srv *redisServer) start() error {
	srv.log = filepath.Join(srv.dir, "redis.log")
	args := append([]string{
		"--port", strconv.Itoa(srv.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--dir", srv.dir, "--logfile", srv.log, "--daemonize", "no",
	}, srv.extra...)
	srv.cmd = exec.Command("redis-server", args...)
	if err := srv.cmd.Start(); err != nil {
		return err
	}
	srv.exited = make(chan struct{})
	go func() {
		srv.err = srv.cmd.Wait()
		close(srv.exited)
	}()
	client := goredis.NewClient(&goredis.Options{Addr: srv.addr, MaxRetries: -1, DisableIdentity: true})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-srv.exited:
			log, _ := os.ReadFile(srv.log)
			return fmt.Errorf("redis-server on port %d exited (%v); its log ends:\n%s", srv.port, srv.err, tail(log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			srv.kill()
			return fmt.Errorf("redis-server on port %d did not answer PING within 10s: %v", srv.port, err)
		}
	}
}

// kill stops the server with SIGKILL: no shutdown, no final fsync.
func (srv *redisServer) kill() {
	_ = srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.exited
}

// stop shuts the server down with SIGTERM, or SIGKILL if it dawdles. It
// does nothing to a server already gone.
func (srv *redisServer) stop() {
	select {
	case <-srv.exited:
		return
	default:
	}
	_ = srv.cmd.Process.Signal(syscall.SIGCONT) // in case a test left it stopped
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.exited:
	case <-time.After(10 * time.Second):
		srv.kill()
	}
}

func (srv *redisServer) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if err := srv.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signalling redis-server: %v", err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// startCluster starts a Redis Cluster of two primaries, each serving half
// the slots, and waits until both say the cluster is ok. It returns their
// addresses.
func startCluster(tb testing.TB) []string {
	tb.Helper()
	var addrs []string
	var busPorts []int
	var clients []*goredis.Client
	for i := range 2 {
		dir := filepath.Join(tb.TempDir(), strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			tb.Fatal(err)
		}
		busPort, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		srv, err := startRedisServer(dir, 0, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-port", strconv.Itoa(busPort))
		if err != nil {
			tb.Fatalf("starting cluster node %d: %v", i, err)
		}
		tb.Cleanup(srv.stop)
		addrs = append(addrs, srv.addr)
		busPorts = append(busPorts, busPort)
		c := goredis.NewClient(&goredis.Options{Addr: srv.addr, DisableIdentity: true})
		tb.Cleanup(func() { _ = c.Close() })
		clients = append(clients, c)
	}
	ctx := context.Background()
	const half = 16384 / 2
	for i, c := range clients {
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", i*half, (i+1)*half-1).Err(); err != nil {
			tb.Fatalf("CLUSTER ADDSLOTSRANGE on %s: %v", addrs[i], err)
		}
	}
	host, port, _ := net.SplitHostPort(addrs[1])
	if err := clients[0].Do(ctx, "CLUSTER", "MEET", host, port, busPorts[1]).Err(); err != nil {
		tb.Fatalf("CLUSTER MEET: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range clients {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:2") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("the cluster did not become ok within 20s: %v\n%s", err, info)
			}
			time.Sleep(50 * time.Millisecond) // polling the cluster bus's gossip
		}
	}
	return addrs
}
