package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gearmand/internal/testdep"
	"gearmand/protocol"
	"gearmand/server"
)

const (
	// handlePrefix makes job handles predictable: "H:interop:<n>".
	handlePrefix = "H:interop"

	// cmdTimeout bounds every external program a test runs. It is a safety
	// net for a hung peer; no test needs more than a fraction of it.
	cmdTimeout = 20 * time.Second

	// waitTimeout bounds every poll for server state.
	waitTimeout = 10 * time.Second
)

// requireTool returns the path of the program name, or ends the test when it
// is not installed: a skip naming the Debian package to install, or a failure
// under CI=true, where a missing peer must never pass unnoticed.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	return testdep.Need(t, name, debianPackage)
}

// requirePerlModule ends the test like requireTool when perl or the module
// cannot be loaded.
func requirePerlModule(t *testing.T, module, debianPackage string) {
	t.Helper()
	requireTool(t, "perl", debianPackage)
	if err := exec.Command("perl", "-M"+module, "-e", "1").Run(); err != nil {
		testdep.Missing(t, "Perl module "+module, debianPackage)
	}
}

// gearmand is one in-process server under test.
type gearmand struct {
	t    *testing.T
	addr string // host:port
	host string
	port string
}

// startServer runs a Server on 127.0.0.1:0 with gearmand's defaults
// (unlimited retries) and a fixed handle prefix; its warnings and errors go
// to the test log. It is closed when the test ends, after every process the
// test started has been stopped.
func startServer(t *testing.T) *gearmand {
	t.Helper()
	srv := server.New(server.Config{
		JobRetries:   -1,
		HandlePrefix: handlePrefix,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	host, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return &gearmand{t: t, addr: l.Addr().String(), host: host, port: port}
}

// gearman runs the gearman CLI against g to completion and returns its
// standard output. stdin is the data for client mode when no data arguments
// are given.
func (g *gearmand) gearman(stdin string, args ...string) string {
	g.t.Helper()
	return start(g.t, stdin, "gearman", g.cliArgs(args)...).wait()
}

// startGearman starts the gearman CLI against g without waiting for it.
func (g *gearmand) startGearman(stdin string, args ...string) *proc {
	g.t.Helper()
	return start(g.t, stdin, "gearman", g.cliArgs(args)...)
}

func (g *gearmand) cliArgs(args []string) []string {
	return append([]string{"-h", g.host, "-p", g.port}, args...)
}

// gearadmin runs gearadmin with one option and returns its output lines,
// without the terminating "." of a listing.
func (g *gearmand) gearadmin(args ...string) []string {
	g.t.Helper()
	out := start(g.t, "", "gearadmin", append([]string{"-h", g.host, "-p", g.port}, args...)...).wait()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "." {
		lines = lines[:n-1]
	}
	return lines
}

// dial opens a connection to g for one short exchange: it fails the test
// if the exchange outlasts waitTimeout.
func (g *gearmand) dial() net.Conn {
	g.t.Helper()
	nc, err := net.DialTimeout("tcp", g.addr, waitTimeout)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := nc.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		nc.Close()
		g.t.Fatal(err)
	}
	return nc
}

// admin sends one admin command over its own connection and returns the
// listing it answers, without the terminating "." line.
func (g *gearmand) admin(command string) []string {
	g.t.Helper()
	nc := g.dial()
	defer nc.Close()
	if _, err := fmt.Fprintf(nc, "%s\r\n", command); err != nil {
		g.t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(nc)
	for sc.Scan() {
		line := sc.Text()
		if line == "." {
			return lines
		}
		if strings.HasPrefix(line, "ERR ") {
			g.t.Fatalf("admin %q: %s", command, line)
		}
		lines = append(lines, line)
	}
	g.t.Fatalf("admin %q: listing not terminated (%v) after %q", command, sc.Err(), lines)
	return nil
}

// functionStatus is one line of the `status` admin command.
type functionStatus struct {
	Total, Running, Workers int
}

// status returns the `status` listing by function name.
func (g *gearmand) status() map[string]functionStatus {
	g.t.Helper()
	return parseStatus(g.t, g.admin("status"))
}

func parseStatus(t *testing.T, lines []string) map[string]functionStatus {
	t.Helper()
	m := make(map[string]functionStatus)
	for _, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("status line %q: want 4 tab-separated fields", line)
		}
		m[f[0]] = functionStatus{Total: atoi(t, f[1]), Running: atoi(t, f[2]), Workers: atoi(t, f[3])}
	}
	return m
}

// priorityCounts returns the queued HIGH, NORMAL and LOW counts of fn from
// the `prioritystatus` admin command, zeros when fn is not listed.
func (g *gearmand) priorityCounts(fn string) [3]int {
	g.t.Helper()
	for _, line := range g.admin("prioritystatus") {
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			g.t.Fatalf("prioritystatus line %q: want 5 tab-separated fields", line)
		}
		if f[0] == fn {
			return [3]int{atoi(g.t, f[1]), atoi(g.t, f[2]), atoi(g.t, f[3])}
		}
	}
	return [3]int{}
}

// uniqueStatus asks GET_STATUS_UNIQUE about unique and returns whether a job
// with it is known, whether it runs, and how many foreground clients wait on
// it.
func (g *gearmand) uniqueStatus(unique string) (known, running bool, clients int) {
	g.t.Helper()
	nc := g.dial()
	defer nc.Close()
	if _, err := nc.Write(protocol.AppendPacketStrings(nil, protocol.Req, protocol.GetStatusUnique, unique)); err != nil {
		g.t.Fatal(err)
	}
	msg, err := protocol.NewReader(nc).Next()
	if err != nil {
		g.t.Fatal(err)
	}
	if msg.Text || msg.Type != protocol.StatusResUnique || len(msg.Args) != 6 {
		g.t.Fatalf("GET_STATUS_UNIQUE %q: unexpected reply %+v", unique, msg)
	}
	return string(msg.Arg(1)) == "1", string(msg.Arg(2)) == "1", atoi(g.t, string(msg.Arg(5)))
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
// describe reports the state seen last.
func waitFor(t *testing.T, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", waitTimeout, what, describe())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitForStatus polls until fn's `status` line equals want.
func (g *gearmand) waitForStatus(fn string, want functionStatus) {
	g.t.Helper()
	var got map[string]functionStatus
	waitFor(g.t, fmt.Sprintf("status of %s = %+v", fn, want),
		func() bool { got = g.status(); return got[fn] == want },
		func() string { return fmt.Sprintf("%+v", got) })
}

// waitForWorkers polls until fn has at least n worker registrations.
func (g *gearmand) waitForWorkers(fn string, n int) {
	g.t.Helper()
	var got map[string]functionStatus
	waitFor(g.t, fmt.Sprintf("%d workers for %s", n, fn),
		func() bool { got = g.status(); return got[fn].Workers >= n },
		func() string { return fmt.Sprintf("%+v", got) })
}

// proc is one external program started by a test. It runs in its own process
// group, so the commands a gearman worker spawns die with it, and it is
// killed when the test ends if it has not exited by then.
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

func start(t *testing.T, stdin, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	p := &proc{t: t, cmd: exec.CommandContext(ctx, name, args...), done: make(chan struct{})}
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if stdin != "" {
		p.cmd.Stdin = strings.NewReader(stdin)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Cancel = func() error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) }
	p.cmd.WaitDelay = time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", p, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

func (p *proc) String() string { return strings.Join(p.cmd.Args, " ") }

// wait waits for the program to exit and returns its standard output. A
// non-zero exit, or running past cmdTimeout, fails the test.
func (p *proc) wait() string {
	p.t.Helper()
	out, err := p.result()
	if err != nil {
		p.t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", p, err, out, p.stderr.String())
	}
	return out
}

// result waits for the program to exit and returns its standard output and
// how it ended: nil, an *exec.ExitError, or the error that killed it.
func (p *proc) result() (string, error) {
	<-p.done
	return p.stdout.String(), p.err
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// readLines returns the lines of a file the test's workers append to, nil
// while it does not exist.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}
