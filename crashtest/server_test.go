package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gearmand/client"
)

// Deadlines of the process helpers. They are generous: the machine may be
// busy with other tests, and a deadline only ever turns a hang into a
// failure.
const (
	startTimeout = 20 * time.Second
	exitTimeout  = 10 * time.Second
)

// gearmand is one server installation: a working directory and the store
// options, started, killed and restarted any number of times. Each start is
// a life.
type gearmand struct {
	t     *testing.T
	dir   string   // working directory, logs, pid file, empty config file
	args  []string // store and store-mode options
	lives []*life
}

// life is one process of a gearmand.
type life struct {
	n        int // 1 for the first start
	cmd      *exec.Cmd
	addr     string // host:port it serves
	logPath  string
	stderr   *syncBuffer
	exited   chan struct{} // closed once Wait returned
	killedAt time.Time     // when SIGKILL was sent; zero if it was not
}

// syncBuffer is a bytes.Buffer that exec's copying goroutine writes while
// the test may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newGearmand prepares a server with the given store options. Any process
// still running when the test ends is killed.
func newGearmand(t *testing.T, args ...string) *gearmand {
	t.Helper()
	g := &gearmand{t: t, dir: t.TempDir(), args: args}
	if err := os.WriteFile(filepath.Join(g.dir, "empty.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, l := range g.lives {
			if !l.hasExited() {
				l.cmd.Process.Kill()
				<-l.exited
			}
		}
		if t.Failed() {
			for _, l := range g.lives {
				t.Logf("life %d (%v), the end of its log:\n%s", l.n, l.cmd.ProcessState, tail(l.log(), 30))
			}
		}
	})
	return g
}

// start starts a new life and waits until it answers on its port. A port
// that another process took meanwhile is retried with another.
func (g *gearmand) start() *life {
	g.t.Helper()
	for attempt := 1; ; attempt++ {
		l, err := g.launch()
		if err == nil {
			return l
		}
		if errors.Is(err, errPortTaken) && attempt < 5 {
			g.t.Logf("life %d: %v; retrying on another port", l.n, err)
			continue
		}
		g.t.Fatalf("gearmand %s, life %d: %v", strings.Join(g.args, " "), l.n, err)
	}
}

var errPortTaken = errors.New("the port was taken")

// launch starts a process and waits for it to serve or exit.
func (g *gearmand) launch() (*life, error) {
	l, err := g.spawn(g.args...)
	if err != nil {
		return l, err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		if l.hasExited() {
			out := l.stderr.String() + l.log()
			if strings.Contains(out, "address already in use") {
				return l, errPortTaken
			}
			return l, fmt.Errorf("exited while starting (%v)\nstderr and log:\n%s", l.cmd.ProcessState, out)
		}
		if _, err := adminCommand(l.addr, "version"); err == nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return l, fmt.Errorf("not serving on %s after %v\nlog:\n%s", l.addr, startTimeout, l.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// spawn starts a process with the options every life gets plus extra, and
// returns without waiting for it to serve.
func (g *gearmand) spawn(extra ...string) (*life, error) {
	l := &life{n: len(g.lives) + 1, stderr: &syncBuffer{}, exited: make(chan struct{})}
	g.lives = append(g.lives, l)
	port, err := freePort()
	if err != nil {
		return l, err
	}
	l.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l.logPath = filepath.Join(g.dir, fmt.Sprintf("gearmand-%d.log", l.n))
	args := []string{
		"--config-file", filepath.Join(g.dir, "empty.conf"),
		"-p", strconv.Itoa(port), "-L", "127.0.0.1",
		"-l", l.logPath, "-P", filepath.Join(g.dir, fmt.Sprintf("gearmand-%d.pid", l.n)),
		"--verbose", "NOTICE",
	}
	l.cmd = exec.Command(gearmandBin, append(args, extra...)...)
	l.cmd.Dir = g.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GEARMAND_") {
			l.cmd.Env = append(l.cmd.Env, kv)
		}
	}
	l.cmd.Stdout = l.stderr
	l.cmd.Stderr = l.stderr
	if err := l.cmd.Start(); err != nil {
		close(l.exited)
		return l, err
	}
	go func() {
		l.cmd.Wait()
		close(l.exited)
	}()
	return l, nil
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (l *life) hasExited() bool {
	select {
	case <-l.exited:
		return true
	default:
		return false
	}
}

// waitExit waits for the process to end, at most exitTimeout.
func (l *life) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-l.exited:
	case <-time.After(exitTimeout):
		l.cmd.Process.Kill()
		<-l.exited
		t.Fatalf("life %d (pid %d) did not exit within %v\nlog:\n%s", l.n, l.cmd.Process.Pid, exitTimeout, l.log())
	}
}

// kill sends SIGKILL and waits for the process to be gone. It fails the
// test if the process had already ended by itself: that is a crash.
func (l *life) kill(t *testing.T) {
	t.Helper()
	if l.hasExited() {
		t.Fatalf("life %d exited before it was killed (%v)\nstderr:\n%s\nlog:\n%s", l.n, l.cmd.ProcessState, l.stderr, l.log())
	}
	l.killedAt = time.Now()
	if err := l.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("life %d: SIGKILL: %v", l.n, err)
	}
	l.waitExit(t)
}

// stop ends the process cleanly (SIGTERM) and expects exit status 0.
func (l *life) stop(t *testing.T) {
	t.Helper()
	if err := l.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("life %d: SIGTERM: %v", l.n, err)
	}
	l.waitExit(t)
	if code := l.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("life %d exited with status %d after SIGTERM\nstderr:\n%s\nlog:\n%s", l.n, code, l.stderr, l.log())
	}
}

// log returns the log file's contents, or a note saying why there are none.
func (l *life) log() string {
	b, err := os.ReadFile(l.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

var replayedRE = regexp.MustCompile(`msg="replayed stored jobs" jobs=(\d+)`)

// replayed returns how many stored jobs the life loaded at start, or -1
// when it logged none (-q builtin has no store).
func (l *life) replayed() int {
	m := replayedRE.FindStringSubmatch(l.log())
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// adminCommand sends one admin text command and returns the reply: one
// line, or for the listings (status, workers, show ...) every line up to
// the closing ".".
func adminCommand(addr, command string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(command + "\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	var out strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return out.String(), fmt.Errorf("admin %q: %w", command, err)
		}
		if out.Len() == 0 && !isListing(command) {
			return line, nil
		}
		if line == ".\n" {
			return out.String(), nil
		}
		out.WriteString(line)
	}
}

func isListing(command string) bool {
	w := strings.Fields(command)
	return len(w) > 0 && (w[0] == "status" || w[0] == "workers" || w[0] == "show" || w[0] == "prioritystatus")
}

// jobsOf returns the jobs the server holds for fn, queued or running, from
// the admin status listing ("fn\ttotal\trunning\tworkers").
func jobsOf(addr, fn string) (int, error) {
	out, err := adminCommand(addr, "status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 4 && f[0] == fn {
			return strconv.Atoi(f[1])
		}
	}
	return 0, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// dial connects a client to addr for the rest of the test, with a 30 s
// deadline for everything done through the returned context; both end
// with the test.
func dial(t *testing.T, addr string) (context.Context, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}
