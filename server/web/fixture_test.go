package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gearmand/client"
	"gearmand/server"
	"gearmand/server/web"
	"gearmand/store/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a real server with a store, its Gearman listener and its web
// handler on 127.0.0.1:0, all stopped when the test ends.
type fixture struct {
	t   *testing.T
	srv *server.Server
	// gearman is the Gearman address and web the web handler's base URL.
	gearman, web string
	ctx          context.Context // ends when the test does
	cancel       context.CancelFunc
}

// startFixture starts a fixture; each of change may alter the server's
// Config first.
func startFixture(t *testing.T, change ...func(*server.Config)) *fixture {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	cfg := server.Config{
		HandlePrefix: "H:web",
		JobRetries:   -1,
		Store:        memstore.New(),
		StoreName:    "memory",
		Logger:       quiet,
	}
	for _, c := range change {
		c(&cfg)
	}
	srv := server.New(cfg)
	if _, err := srv.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	hs := httptest.NewServer(web.New(srv, quiet))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel() // workers' handlers return, and their workers hang up
		hs.Close()
		srv.Close()
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return &fixture{t: t, srv: srv, gearman: l.Addr().String(), web: hs.URL, ctx: ctx, cancel: cancel}
}

// submit submits background jobs of fn at priority p with these payloads.
func (f *fixture) submit(c *client.Client, fn string, p client.Priority, payloads ...string) {
	f.t.Helper()
	for _, data := range payloads {
		if _, err := c.SubmitBackground(f.ctx, fn, "", []byte(data), p); err != nil {
			f.t.Fatalf("submitting %s %q: %v", fn, data, err)
		}
	}
}

func (f *fixture) client() *client.Client {
	f.t.Helper()
	c, err := client.Dial(f.ctx, f.gearman)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// worker starts a worker for fns whose handler is h, with this client id.
// It returns the worker; Close it to drop its connection.
func (f *fixture) worker(id string, h client.Handler, fns ...string) *client.Worker {
	f.t.Helper()
	w, err := client.NewWorker(f.ctx, f.gearman)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := w.SetClientID(id); err != nil {
		f.t.Fatal(err)
	}
	for _, fn := range fns {
		if err := w.Register(fn, h); err != nil {
			f.t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Work(f.ctx)
	}()
	f.t.Cleanup(func() {
		f.cancel() // a holding handler returns
		w.Close()
		<-done
	})
	return w
}

// holder is a handler that keeps every job running until the test ends,
// and tells took of each job it got.
func (f *fixture) holder(took chan<- string) client.Handler {
	return func(ctx context.Context, j *client.Job) ([]byte, error) {
		took <- string(j.Data)
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

// workload is the known state startWorkload leaves behind.
//
//	resize: HIGH "h1" completed, NORMAL "n1" failed, NORMAL "n2" running on
//	        worker "resizer"
//	mail:   LOW "l1" running on worker "mailer"; LOW "l2" queued again after
//	        worker "quitter" took it and hung up
//
// Five submitted, one completed, one failed, one requeued; three jobs held;
// three connections (the client, resizer, mailer). The store saw five
// adds, two deletes and one update (l2's attempt count).
func startWorkload(t *testing.T) *fixture {
	t.Helper()
	f := startFixture(t)
	c := f.client()
	f.submit(c, "resize", client.High, "h1")
	f.submit(c, "resize", client.Normal, "n1", "n2")
	f.submit(c, "mail", client.Low, "l1", "l2")

	took := make(chan string, 8)
	hold := f.holder(took)
	f.worker("resizer", func(ctx context.Context, j *client.Job) ([]byte, error) {
		switch string(j.Data) {
		case "h1":
			return []byte("done"), nil
		case "n1":
			return nil, errors.New("cannot resize")
		}
		return hold(ctx, j)
	}, "resize")
	f.expectTaken(took, "n2")
	f.worker("mailer", hold, "mail")
	f.expectTaken(took, "l1")
	quitter := f.worker("quitter", hold, "mail")
	f.expectTaken(took, "l2")
	quitter.Close()
	f.eventually("the quitter's job is requeued and its connection gone", func() bool {
		return f.srv.Counters().Requeued == 1 && f.srv.Connections() == 3
	})
	f.eventually("the store has written every change", func() bool {
		st := f.srv.StoreStatus()
		return st.PendingAdds == 0 && st.Commits > 0 && f.commitOps() == 8
	})
	return f
}

// commitOps is the number of adds and deletes the store has written, as
// /metrics reports it.
func (f *fixture) commitOps() float64 {
	f.t.Helper()
	return f.scrape()["gearmand_store_commit_batch_size"].sum
}

func (f *fixture) expectTaken(took <-chan string, want string) {
	f.t.Helper()
	select {
	case got := <-took:
		if got != want {
			f.t.Fatalf("a worker took job %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		f.t.Fatalf("no worker took job %q", want)
	}
}

// eventually polls cond until it holds, failing after a generous deadline.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get fetches path from the web handler and returns the status and body.
func (f *fixture) get(path string) (int, []byte) {
	f.t.Helper()
	return f.do(http.MethodGet, path)
}

func (f *fixture) do(method, path string) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.ctx, method, f.web+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return res.StatusCode, body
}

// getJSON fetches path, requires 200 and JSON, and decodes it into v.
func (f *fixture) getJSON(path string, v any) {
	f.t.Helper()
	code, body := f.get(path)
	if code != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		f.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}
