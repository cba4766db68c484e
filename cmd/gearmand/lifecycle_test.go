package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/server"
	"gearmand/store"
	"gearmand/store/storetest"
)

// These tests run the real binary through its stops: the graceful one on
// SIGTERM, the immediate one on a second signal, the shutdown timeout, and
// what a bolt store keeps across them.

// lifecycle is one test's gearmand: a binary, and a directory holding its
// bolt file and the logs of each of its lives.
type lifecycle struct {
	t     *testing.T
	bin   string
	dir   string
	lives int
}

// instance is one start of the server.
type instance struct {
	cmd  *exec.Cmd
	addr string
	log  string // the log file's path
	done chan error
}

// start runs the server on a free port with the bolt file in l.dir and
// args, and waits until it logs that it serves.
func (l *lifecycle) start(args ...string) *instance {
	l.t.Helper()
	l.lives++
	in := &instance{log: filepath.Join(l.dir, "log."+strconv.Itoa(l.lives)), done: make(chan error, 1)}
	base := []string{"-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(l.dir, "gm.pid"), "-l", in.log}
	if !slices.Contains(args, "-q") {
		base = append(base, "--bolt-file", filepath.Join(l.dir, "gearmand.db"))
	}
	in.cmd = gearmandCmd(l.t, l.bin, append(base, args...)...)
	if err := in.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	l.t.Cleanup(func() {
		in.cmd.Process.Kill()
		<-in.done
		in.done <- nil
	})
	waitFor(l.t, "the started line in the log", func() bool { return in.started(l.t) != "" || in.exited() })
	in.addr = in.started(l.t)
	if in.addr == "" {
		l.t.Fatalf("gearmand exited while starting:\n%s", readFile(l.t, in.log))
	}
	return in
}

// restartRuns starts the server again and checks that a worker for fn is
// given the stored job with this unique.
func (l *lifecycle) restartRuns(fn, unique string) {
	l.t.Helper()
	next := l.start()
	h := newHolder()
	close(h.release)
	worker(l.t, next.addr, fn, h.handle)
	if u := h.next(l.t); u != unique {
		l.t.Fatalf("after the restart the worker for %s got %q, want %q", fn, u, unique)
	}
}

// started is the address of the started line of a text log, or "".
func (in *instance) started(t *testing.T) string {
	return startedAddr(readFile(t, in.log))
}

func (in *instance) exited() bool {
	select {
	case err := <-in.done:
		in.done <- err
		return true
	default:
		return false
	}
}

func (in *instance) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v: %v", sig, err)
	}
}

// waitStatus waits up to 10 seconds for the process to exit and returns
// its exit status.
func (in *instance) waitStatus(t *testing.T) int {
	t.Helper()
	select {
	case err := <-in.done:
		in.done <- err
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		t.Fatalf("gearmand did not exit; log:\n%s", readFile(t, in.log))
		return -1
	}
}

// logHas waits until the log holds s.
func (in *instance) logHas(t *testing.T, s string) {
	t.Helper()
	waitFor(t, "the log to say "+s, func() bool { return strings.Contains(readFile(t, in.log), s) })
}

// worker runs a worker for fn on addr until the test ends; h runs each job.
func worker(t *testing.T, addr, fn string, h client.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := client.NewWorker(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Register(fn, h); err != nil {
		t.Fatal(err)
	}
	worked := make(chan struct{})
	go func() {
		defer close(worked)
		w.Work(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		w.Close()
		<-worked
	})
}

// holder is a handler that reports each job it starts and holds it until
// released or its context ends.
type holder struct {
	started chan string // the job's unique
	release chan struct{}
}

func newHolder() *holder {
	return &holder{started: make(chan string, 10), release: make(chan struct{})}
}

func (h *holder) handle(ctx context.Context, j *client.Job) ([]byte, error) {
	h.started <- j.Unique
	select {
	case <-h.release:
		return append([]byte("done:"), j.Data...), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *holder) next(t *testing.T) string {
	t.Helper()
	select {
	case u := <-h.started:
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no job started")
		return ""
	}
}

func dialClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func submitBackground(t *testing.T, c *client.Client, fn, unique string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.SubmitBackground(ctx, fn, unique, []byte(unique), client.Normal); err != nil {
		t.Fatalf("submitting %s: %v", unique, err)
	}
}

func TestLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildGearmand(t)
	newLifecycle := func(t *testing.T) *lifecycle { return &lifecycle{t: t, bin: bin, dir: t.TempDir()} }

	// SIGTERM stops accepting and handing out jobs, waits for the running
	// job, whose result reaches its client, and exits 0; the queued
	// background job is there on the next start.
	t.Run("sigterm waits for running jobs", func(t *testing.T) {
		l := newLifecycle(t)
		in := l.start()
		h := newHolder()
		worker(t, in.addr, "slow", h.handle)
		c := dialClient(t, in.addr)
		submitBackground(t, c, "later", "queued")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		task, err := c.Submit(ctx, "slow", "running", []byte("x"), client.Normal)
		if err != nil {
			t.Fatal(err)
		}
		h.next(t)

		in.signal(t, syscall.SIGTERM)
		in.logHas(t, "msg=stopping signal=SIGTERM graceful=true")
		waitFor(t, "new connections to be refused", func() bool {
			nc, err := net.DialTimeout("tcp", in.addr, time.Second)
			if err == nil {
				nc.Close()
			}
			return err != nil
		})
		if in.exited() {
			t.Fatalf("gearmand exited with a job running; log:\n%s", readFile(t, in.log))
		}
		close(h.release)
		res, err := task.Wait(ctx)
		if err != nil || string(res.Data) != "done:x" {
			t.Fatalf("the running job's result: %q, %v", res.Data, err)
		}
		if status := in.waitStatus(t); status != 0 {
			t.Fatalf("exit status %d after SIGTERM; log:\n%s", status, readFile(t, in.log))
		}
		if log := readFile(t, in.log); !strings.Contains(log, "gearmand stopped") {
			t.Errorf("log:\n%s", log)
		}
		l.restartRuns("later", "queued")
	})

	// A second signal stops at once, long before --shutdown-timeout, and
	// the background job cut short runs again after the restart.
	// --shutdown-timeout cut short likewise, by itself.
	for _, tc := range []struct {
		name    string
		args    []string
		signals []syscall.Signal
		log     string
	}{
		{"a second signal stops at once", []string{"--shutdown-timeout", "1h"},
			[]syscall.Signal{syscall.SIGTERM, syscall.SIGINT}, "msg=\"stopping at once\" signal=SIGINT"},
		{"shutdown timeout", []string{"--shutdown-timeout", "100ms", "--verbose", "WARNING"},
			[]syscall.Signal{syscall.SIGTERM}, "stopping with jobs still running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLifecycle(t)
			in := l.start(tc.args...)
			h := newHolder()
			worker(t, in.addr, "stuck", h.handle)
			submitBackground(t, dialClient(t, in.addr), "stuck", "cut-short")
			h.next(t)

			for i, sig := range tc.signals {
				if i > 0 {
					in.logHas(t, "graceful=true")
				}
				in.signal(t, sig)
			}
			if status := in.waitStatus(t); status != 0 {
				t.Fatalf("exit status %d; log:\n%s", status, readFile(t, in.log))
			}
			if log := readFile(t, in.log); !strings.Contains(log, tc.log) {
				t.Errorf("the log does not say %q:\n%s", tc.log, log)
			}
			l.restartRuns("stuck", "cut-short")
		})
	}

	// -q builtin loses its queued jobs at a stop, and says so at the
	// default log level.
	t.Run("builtin says what it loses", func(t *testing.T) {
		l := newLifecycle(t)
		in := l.start("-q", "builtin")
		submitBackground(t, dialClient(t, in.addr), "nobody", "lost")
		in.signal(t, syscall.SIGTERM)
		if status := in.waitStatus(t); status != 0 {
			t.Fatalf("exit status %d after SIGTERM; log:\n%s", status, readFile(t, in.log))
		}
		const want = `level=NOTICE msg="stopped with jobs in memory only (-q builtin, no store): they are lost" jobs=1`
		if log := readFile(t, in.log); !strings.Contains(log, want) {
			t.Errorf("the log does not say %s:\n%s", want, log)
		}
	})

	// --log-format json: every line is a JSON object with one of
	// gearmand's level names; connections are logged at INFO.
	t.Run("json log", func(t *testing.T) {
		l := newLifecycle(t)
		logFile := filepath.Join(l.dir, "log.json")
		cmd := gearmandCmd(t, bin, "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(l.dir, "gm.pid"),
			"-l", logFile, "--log-format", "json", "--verbose", "INFO", "--bolt-file", filepath.Join(l.dir, "gearmand.db"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		records := func() []map[string]any {
			var out []map[string]any
			for line := range strings.Lines(readFile(t, logFile)) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q is not JSON: %v", line, err)
				}
				out = append(out, rec)
			}
			return out
		}
		find := func(msg string) map[string]any {
			for _, r := range records() {
				if r["msg"] == msg {
					return r
				}
			}
			return nil
		}
		waitFor(t, "the started line", func() bool { return find("gearmand started") != nil })
		addr, _ := find("gearmand started")["listen"].(string)
		if got := adminVersion(t, addr); got != "OK "+server.Version+"\n" {
			t.Errorf("version = %q", got)
		}
		waitFor(t, "the connection's closed line", func() bool { return find("connection closed") != nil })
		cmd.Process.Signal(syscall.SIGTERM)
		if err := waitExit(t, cmd); err != nil {
			t.Fatalf("after SIGTERM: %v", err)
		}

		names := []string{"FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"}
		for _, r := range records() {
			if level, _ := r["level"].(string); !slices.Contains(names, level) {
				t.Errorf("record with level %v, not a gearmand level: %v", r["level"], r)
			}
		}
		for msg, level := range map[string]string{
			"gearmand started":  "NOTICE",
			"connection opened": "INFO",
			"connection closed": "INFO",
			"gearmand stopped":  "NOTICE",
		} {
			if r := find(msg); r == nil || r["level"] != level {
				t.Errorf("record %q: %v, want level %s", msg, r, level)
			}
		}
	})

	// A SIGTERM during a long replay ends it at once, with status 0, and
	// every stored job is still stored.
	t.Run("sigterm during the replay", func(t *testing.T) {
		const stored = 600_000
		l := newLifecycle(t)
		path := filepath.Join(l.dir, "gearmand.db")
		fillBolt(t, path, stored)
		log := filepath.Join(l.dir, "log")
		cmd := gearmandCmd(t, l.bin, "-p", "0", "-L", "127.0.0.1", "-l", log, "--bolt-file", path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		in := &instance{cmd: cmd, log: log, done: make(chan error, 1)}
		go func() { in.done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Kill(); <-in.done })
		in.logHas(t, "replaying stored jobs") // the first 100,000 are in
		in.signal(t, syscall.SIGTERM)
		if status := in.waitStatus(t); status != 0 {
			t.Fatalf("exit status %d, want 0; log:\n%s", status, readFile(t, log))
		}
		text := readFile(t, log)
		if !strings.Contains(text, "stopped by a signal during the replay") || strings.Contains(text, "gearmand started") {
			t.Errorf("the log does not show a replay stopped before serving:\n%s", text)
		}
		if n := countBolt(t, path); n != stored {
			t.Errorf("%d jobs stored after the stopped replay, want %d", n, stored)
		}
	})
}

// fillBolt stores n sample jobs in a new bolt file at path.
func fillBolt(t *testing.T, path string, n int) {
	t.Helper()
	st, err := store.Open(context.Background(), "bolt", store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const batch = 50_000
	for first := 1; first <= n; first += batch {
		var b store.Batch
		for seq := first; seq < first+batch && seq <= n; seq++ {
			b.Adds = append(b.Adds, storetest.Sample(uint64(seq)))
		}
		if err := st.Apply(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// countBolt counts the jobs stored in the bolt file at path.
func countBolt(t *testing.T, path string) int {
	t.Helper()
	st, err := store.Open(context.Background(), "bolt", store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return storetest.Count(t, st)
}
