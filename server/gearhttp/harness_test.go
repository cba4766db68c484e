package gearhttp_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gearmand/client"
	"gearmand/server"
)

// TestMain fails the package if a test leaves a goroutine running: every
// request must leave the handler when its server closes.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gearman is a server under test: the binary protocol on gear, the HTTP
// protocol on web, both on 127.0.0.1:0.
type gearman struct {
	t    *testing.T
	srv  *server.Server
	gear string // host:port of the binary protocol
	web  string // http://host:port
	http *http.Client
}

// start runs a server with cfg until the test ends.
func start(t *testing.T, cfg server.Config) *gearman {
	t.Helper()
	if cfg.HandlePrefix == "" {
		cfg.HandlePrefix = "H:test"
	}
	if cfg.JobRetries == 0 {
		cfg.JobRetries = -1
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv := server.New(cfg)
	if _, err := srv.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(gl) }()
	go func() { served <- srv.ServeHTTPProtocol(hl) }()
	g := &gearman{
		t: t, srv: srv, gear: gl.Addr().String(), web: "http://" + hl.Addr().String(),
		http: &http.Client{Transport: &http.Transport{}},
	}
	t.Cleanup(func() {
		srv.Close()
		for range 2 {
			if err := <-served; !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		}
		g.http.CloseIdleConnections()
	})
	return g
}

// reply is an HTTP answer, read whole.
type reply struct {
	code   int
	header http.Header
	body   string
}

// do sends method to path with headers given as "Name: value" strings.
func (g *gearman) do(ctx context.Context, method, path, body string, headers ...string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, g.web+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	res, err := g.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return reply{code: res.StatusCode, header: res.Header, body: string(b)}, err
}

// post submits body to fn and fails the test on a transport error.
func (g *gearman) post(path, body string, headers ...string) reply {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	r, err := g.do(ctx, http.MethodPost, path, body, headers...)
	if err != nil {
		g.t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

// get is post for GET without a body.
func (g *gearman) get(path string) reply {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	r, err := g.do(ctx, http.MethodGet, path, "")
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	return r
}

const replyTimeout = 10 * time.Second

// worker runs a client.Worker with handlers by function until the test
// ends.
func (g *gearman) worker(handlers map[string]client.Handler) {
	g.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := client.NewWorker(ctx, g.gear)
	if err != nil {
		g.t.Fatal(err)
	}
	for fn, h := range handlers {
		if err := w.Register(fn, h); err != nil {
			g.t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { w.Work(ctx) })
	g.t.Cleanup(func() {
		cancel()
		w.Close()
		wg.Wait()
	})
}

// admin sends an admin command on a new connection and returns the lines
// of its listing.
func (g *gearman) admin(cmd string) []string {
	g.t.Helper()
	nc, err := net.DialTimeout("tcp", g.gear, replyTimeout)
	if err != nil {
		g.t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(replyTimeout))
	if _, err := io.WriteString(nc, cmd+"\n"); err != nil {
		g.t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			g.t.Fatalf("admin %q: %v (so far %q)", cmd, err, lines)
		}
		if l == ".\n" {
			return lines
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
}

// status is fn's line of the `status` listing ("fn\tqueued\trunning\tworkers"),
// or "".
func (g *gearman) status(fn string) string {
	for _, l := range g.admin("status") {
		if strings.HasPrefix(l, fn+"\t") {
			return l
		}
	}
	return ""
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(replyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expect checks a reply's status code and, when body is not "", its body.
func expect(t *testing.T, what string, r reply, code int, body string) {
	t.Helper()
	if r.code != code || body != "" && r.body != body {
		t.Fatalf("%s: %d %q, want %d %q", what, r.code, r.body, code, body)
	}
}
