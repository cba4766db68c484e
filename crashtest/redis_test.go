package crashtest

import (
	"bufio"
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

	"gearmand/internal/testdep"
)

var namespaces atomic.Int64

// namespace is a --store-namespace no other test of any test binary uses.
func namespace(t *testing.T) string {
	name := strings.NewReplacer("/", ".", "{", "(", "}", ")").Replace(t.Name())
	return fmt.Sprintf("crashtest-%d-%d-%s", os.Getpid(), namespaces.Add(1), name)
}

// redisServer is a throwaway redis-server of one test: its append-only
// file, fsynced on every write, in a temporary directory. It can be killed
// and started again on the same directory and port, as an outage.
type redisServer struct {
	t       *testing.T
	bin     string
	dir     string
	port    int
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once Wait returned
	started int           // how many times it was started
}

// startRedis starts a redis-server for t and kills it when t ends. Without
// one installed it skips t, or fails it under CI=true.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin := testdep.Need(t, "redis-server", "redis-server")
	rs := &redisServer{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		if rs.running() {
			rs.cmd.Process.Kill()
			<-rs.exited
		}
	})
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		rs.port = port
		rs.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = rs.launch()
		if err == nil {
			return rs
		}
		if attempt == 5 || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("redis-server: %v", err)
		}
	}
}

// start starts the server again, on the same directory and port, after
// kill: it loads its append-only file before it answers.
func (rs *redisServer) start() {
	rs.t.Helper()
	if err := rs.launch(); err != nil {
		rs.t.Fatalf("redis-server, restarted: %v", err)
	}
}

func (rs *redisServer) launch() error {
	rs.started++
	logPath := filepath.Join(rs.dir, fmt.Sprintf("redis-%d.log", rs.started))
	rs.cmd = exec.Command(rs.bin,
		"--port", strconv.Itoa(rs.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--dir", rs.dir, "--logfile", logPath)
	rs.exited = make(chan struct{})
	if err := rs.cmd.Start(); err != nil {
		close(rs.exited)
		return err
	}
	go func() {
		rs.cmd.Wait()
		close(rs.exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		if !rs.running() {
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("exited while starting (%v):\n%s", rs.cmd.ProcessState, log)
		}
		if redisPing(rs.addr) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			err := redisPing(rs.addr)
			rs.cmd.Process.Kill()
			<-rs.exited
			return fmt.Errorf("not answering PING on %s after %v: %v", rs.addr, startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the server with SIGKILL, as a crash would.
func (rs *redisServer) kill() {
	rs.t.Helper()
	if !rs.running() {
		rs.t.Fatalf("redis-server on %s had exited before it was killed (%v)", rs.addr, rs.cmd.ProcessState)
	}
	if err := rs.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		rs.t.Fatalf("redis-server: SIGKILL: %v", err)
	}
	select {
	case <-rs.exited:
	case <-time.After(exitTimeout):
		rs.t.Fatalf("redis-server did not exit within %v of SIGKILL", exitTimeout)
	}
}

func (rs *redisServer) running() bool {
	select {
	case <-rs.exited:
		return false
	default:
		return rs.cmd != nil
	}
}

// redisPing sends PING in the inline protocol and expects +PONG; a server
// still loading its append-only file answers -LOADING.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING: %q", strings.TrimSpace(line))
	}
	return nil
}
