// Package cgearmand runs the real C gearmand (Debian package
// gearman-job-server) for the tests that share its persistent queues: the
// stores that take over or share the jobs it left, and the drop-in tests
// of the binary. A test starts it with a queue's flags, queues background
// jobs through it, stops it, and looks at what it left.
//
// Without the binary a test skips, naming the package to install, except
// under CI=true, where it fails.
package cgearmand

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/internal/testdep"
	"gearmand/store"
)

// Path is where Debian installs C gearmand.
const Path = "/usr/sbin/gearmand"

// Server is a C gearmand the test started.
type Server struct {
	Addr   string // 127.0.0.1:port
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// Start runs C gearmand with args (its queue flags) on a free loopback
// port and returns once it answers ECHO_REQ. The test's cleanup stops it
// if the test did not.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	path := testdep.Need(tb, Path, "gearman-job-server")
	var last error
	for range 5 { // a free port may be taken again before gearmand binds it
		s, err := start(tb, path, args)
		if err == nil {
			tb.Cleanup(func() { s.Stop(tb) })
			return s
		}
		last = err
	}
	tb.Fatalf("C gearmand did not start: %v", last)
	return nil
}

func start(tb testing.TB, path string, args []string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	s.log = filepath.Join(tb.TempDir(), "gearmand.log")
	s.cmd = exec.Command(path, append([]string{"-L", "127.0.0.1", "-p", strconv.Itoa(port),
		"--log-file", s.log, "--verbose", "INFO"}, args...)...)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := client.Dial(ctx, s.Addr)
		if err == nil {
			_, err = c.Echo(ctx, []byte("ping"))
			c.Close()
		}
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("gearmand %v exited: %v\n%s", s.cmd.Args, s.cmd.ProcessState, s.Log())
		case <-time.After(20 * time.Millisecond): // polling for the listener
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("gearmand %v did not answer within 10s: %v\n%s", s.cmd.Args, err, s.Log())
		}
	}
}

// Log is what gearmand wrote to its log file.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// Stop stops gearmand with SIGTERM, as an operator would, and waits for
// it (SIGKILL after 10s). It does nothing to a server already stopped.
func (s *Server) Stop(tb testing.TB) {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		tb.Errorf("C gearmand did not stop within 10s of SIGTERM; killed")
		s.kill()
	}
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Job is a background job to queue.
type Job struct {
	Function, Unique string
	Data             []byte
	Priority         store.Priority
	When             time.Time // not zero: SUBMIT_JOB_EPOCH, at normal priority
}

// Submit queues jobs through gearmand with this module's client (the
// `gearman` CLI cannot send an empty unique, which libgearman replaces
// with a UUID), failing the test unless gearmand answers JOB_CREATED.
func (s *Server) Submit(tb testing.TB, jobs ...Job) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	pri := [...]client.Priority{store.Priority(0): client.High, 1: client.Normal, 2: client.Low}
	for _, j := range jobs {
		var err error
		if j.When.IsZero() {
			_, err = c.SubmitBackground(ctx, j.Function, j.Unique, j.Data, pri[j.Priority])
		} else {
			_, err = c.SubmitEpoch(ctx, j.Function, j.Unique, j.Data, j.When)
		}
		if err != nil {
			tb.Fatalf("C gearmand refused %+v: %v\n%s", j, err, s.Log())
		}
	}
}

// SubmitCLI queues a normal background job with the `gearman` CLI
// (Debian package gearman-tools) and no unique: libgearman gives it a
// UUID, as it does every job submitted without one.
func (s *Server) SubmitCLI(tb testing.TB, function, data string) {
	tb.Helper()
	s.RunCLI(tb, nil, "-b", "-f", function, "--", data)
}

// RunCLI runs the `gearman` CLI (Debian package gearman-tools) against s
// with args, stdin on its standard input, and returns its output, failing
// the test if it fails. For a client, data given neither after "--" nor on
// stdin is empty; stdin carries any bytes, NULs included.
func (s *Server) RunCLI(tb testing.TB, stdin []byte, args ...string) []byte {
	tb.Helper()
	gearman := testdep.Need(tb, "gearman", "gearman-tools")
	host, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(gearman, append([]string{"-h", host, "-p", port}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("gearman %v: %v\n%s", args, err, out)
	}
	return out
}

// Queued returns how many jobs gearmand holds per function (queued and
// running), from its admin "status" command.
func (s *Server) Queued(tb testing.TB) map[string]int {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("status\n")); err != nil {
		tb.Fatal(err)
	}
	queued := make(map[string]int)
	lines := bufio.NewScanner(conn)
	for lines.Scan() {
		if lines.Text() == "." {
			return queued
		}
		f := strings.Split(lines.Text(), "\t")
		if len(f) != 4 {
			tb.Fatalf("gearmand's status line %q: want 4 fields", lines.Text())
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			tb.Fatalf("gearmand's status line %q: %v", lines.Text(), err)
		}
		queued[f[0]] = n
	}
	tb.Fatalf("gearmand's status ended without \".\": %v", lines.Err())
	return nil
}

// A takeover kill test runs the driver's own test binary twice: as the
// test, and as a child process that opens the store, which takes over
// the jobs C gearmand left, until the test SIGKILLs it in the middle. The
// driver's TestMain hands over to TakeoverChild when the environment
// variable the test names is set.

// TakeoverChild is the child's whole life: it opens the store, closes it,
// and prints "done", or "error: …" and exits 1 if Open fails.
func TakeoverChild(open func() (store.Store, error)) {
	s, err := open()
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	s.Close()
	fmt.Println("done")
}

// Child is a takeover kill test's child process.
type Child struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	exited chan struct{}
}

// StartChild starts the test binary as a takeover kill test's child, with
// env set to value. The test's cleanup kills it if the test did not.
func StartChild(tb testing.TB, env, value string) *Child {
	tb.Helper()
	c := &Child{cmd: exec.Command(os.Args[0], "-test.run=^$"), exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), env+"="+value)
	c.cmd.Stdout = &c.out
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	tb.Cleanup(c.Kill)
	return c
}

// Exited is closed once the child has ended.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Output is what the child printed; call it once Exited is closed.
func (c *Child) Output() string { return c.out.String() }

// Kill SIGKILLs the child and waits for it to end.
func (c *Child) Kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// StartFails runs C gearmand with args (its queue flags), which must make
// it fail to start, and returns what it logged. The test fails if gearmand
// exits 0 or still runs after 30s (it is then killed).
func StartFails(tb testing.TB, args ...string) string {
	tb.Helper()
	path := testdep.Need(tb, Path, "gearman-job-server")
	log := filepath.Join(tb.TempDir(), "gearmand.log")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-L", "127.0.0.1", "-p", "0",
		"--log-file", log, "--verbose", "INFO"}, args...)...)
	out, err := cmd.CombinedOutput()
	logged, _ := os.ReadFile(log)
	switch {
	case ctx.Err() != nil:
		tb.Fatalf("gearmand %v still ran after 30s; it should have failed to start\n%s%s", args, out, logged)
	case err == nil:
		tb.Fatalf("gearmand %v exited 0; it should have failed to start\n%s%s", args, out, logged)
	}
	return string(out) + string(logged)
}
