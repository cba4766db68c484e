package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"gearmand/server"
)

// startServer runs this module's server in-process on a free port and
// returns its address. It fails the test if the server does not serve.
func startServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := new(lockedBuffer)
	s := server.New(server.Config{
		JobRetries: -1,
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
	})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		l.Close()
		<-served
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})

	// Prove it answers: an echo round trip, unless Serve gives up first.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	probe := make(chan error, 1)
	go func() {
		c, err := Dial(ctx, l.Addr().String())
		if err == nil {
			_, err = c.Echo(ctx, []byte("ping"))
			c.Close()
		}
		probe <- err
	}()
	select {
	case err := <-served:
		served <- err // for the cleanup
		t.Fatalf("server.Serve returned at once: %v", err)
	case err := <-probe:
		if err != nil {
			t.Fatalf("server does not answer ECHO_REQ: %v", err)
		}
	}
	return l.Addr().String()
}

const gearmandPath = "/usr/sbin/gearmand"

// startGearmand runs the C gearmand on a free port and returns its address;
// it skips the test when the binary is not installed.
func startGearmand(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(gearmandPath); err != nil {
		t.Skipf("C gearmand not available at %s: %v", gearmandPath, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	stderr := new(lockedBuffer)
	cmd := exec.Command(gearmandPath, "-p", strconv.Itoa(port), "-L", "127.0.0.1",
		"-l", "stderr", "--verbose", "ERROR", "-P", t.TempDir()+"/gearmand.pid")
	cmd.Stderr = stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("gearmand stderr:\n%s", stderr.String())
		}
	})
	waitFor(t, "gearmand to listen", func() bool {
		select {
		case <-exited:
			t.Fatalf("gearmand exited: %s", stderr.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// lockedBuffer collects a server's log output for the failure report.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// eachServer runs f against this module's server and, when installed,
// against the C gearmand, so the client is checked against the reference
// and the server against the client in one suite.
func eachServer(t *testing.T, f func(t *testing.T, addr string)) {
	t.Run("go", func(t *testing.T) { f(t, startServer(t)) })
	t.Run("gearmand", func(t *testing.T) { f(t, startGearmand(t)) })
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testCtx bounds a test so that a missing reply fails it instead of hanging.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startWorker connects a Worker, lets setup register its functions, and runs
// Work until the test ends.
func startWorker(t testing.TB, addr string, setup func(w *Worker)) *Worker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := NewWorker(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	setup(w)
	done := make(chan error, 1)
	go func() { done <- w.Work(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed) {
			t.Errorf("Work: %v", err)
		}
		w.Close()
	})
	return w
}

func mustRegister(t testing.TB, w *Worker, fn string, h Handler) {
	t.Helper()
	if err := w.Register(fn, h); err != nil {
		t.Fatal(err)
	}
}

// proxy forwards TCP connections to addr until cut is called, which drops
// every connection at once: a way to lose the link without stopping the
// server.
func proxy(t *testing.T, addr string) (proxyAddr string, cut func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				down.Close()
				continue
			}
			track(down)
			track(up)
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, down); up.Close() }()
			go func() { defer wg.Done(); io.Copy(down, up); down.Close() }()
		}
	}()
	var once sync.Once
	cut = func() {
		once.Do(func() {
			l.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	t.Cleanup(cut)
	return l.Addr().String(), cut
}
