package gearhttp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"gearmand/client"
	"gearmand/server"
	"gearmand/store"
	"gearmand/store/memstore"
	"gearmand/store/storetest"
)

// received collects what workers were given, in order.
type received struct {
	mu   sync.Mutex
	jobs []string
}

func (r *received) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, s)
}

func (r *received) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.jobs...)
}

func TestBackgroundSubmitReachesAWorker(t *testing.T) {
	g := start(t, server.Config{})
	var got received
	g.worker(map[string]client.Handler{"resize image": func(_ context.Context, j *client.Job) ([]byte, error) {
		got.add(j.Function + "|" + j.Unique + "|" + string(j.Data))
		return nil, nil
	}})
	r := g.post("/resize%20image?ignored=1", "cat.jpg", "X-Gearman-Background: true")
	expect(t, "background submit", r, http.StatusOK, "")
	if h := r.header.Get("X-Gearman-Job-Handle"); h != "H:test:1" {
		t.Fatalf("X-Gearman-Job-Handle %q, want H:test:1", h)
	}
	if c := r.header.Get("X-Gearman-Command"); c != "JOB_CREATED" {
		t.Fatalf("X-Gearman-Command %q, want JOB_CREATED", c)
	}
	if s := r.header.Get("Server"); s != "Gearman/"+server.Version {
		t.Fatalf("Server header %q", s)
	}
	eventually(t, "the worker to run the job", func() bool { return len(got.list()) == 1 })
	if j := got.list()[0]; j != "resize image||cat.jpg" {
		t.Fatalf("worker got %q, want function %q, no unique, data cat.jpg", j, "resize image")
	}
}

func TestForegroundJoinsDataChunksAndTheResult(t *testing.T) {
	g := start(t, server.Config{})
	g.worker(map[string]client.Handler{"spell": func(_ context.Context, j *client.Job) ([]byte, error) {
		for _, c := range strings.Split(string(j.Data), "") {
			if err := j.SendData([]byte(c)); err != nil {
				return nil, err
			}
		}
		j.SendWarning([]byte("warnings are not passed on"))
		j.SendStatus(3, 4)
		return []byte("!\x00end"), nil
	}})
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		r, err := g.do(ctx, method, "/spell", "abc")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		expect(t, method, r, http.StatusOK, "abc!\x00end")
		if c := r.header.Get("X-Gearman-Command"); c != "WORK_COMPLETE" {
			t.Fatalf("X-Gearman-Command %q", c)
		}
		if s := r.header.Get("X-Gearman-Status"); s != "3/4" {
			t.Fatalf("X-Gearman-Status %q, want 3/4", s)
		}
		if !strings.HasPrefix(r.header.Get("X-Gearman-Job-Handle"), "H:test:") {
			t.Fatalf("no job handle: %v", r.header)
		}
	}
	// GET submits an empty body, as in gearmand.
	expect(t, "GET", g.get("/spell"), http.StatusOK, "!\x00end")
}

func TestWorkFailIsAnErrorStatus(t *testing.T) {
	g := start(t, server.Config{})
	g.worker(map[string]client.Handler{"f": func(context.Context, *client.Job) ([]byte, error) {
		return nil, errors.New("no")
	}})
	r := g.post("/f", "x")
	expect(t, "failed job", r, http.StatusInternalServerError, "job H:test:1 failed\n")
	if c := r.header.Get("X-Gearman-Command"); c != "WORK_FAIL" {
		t.Fatalf("X-Gearman-Command %q", c)
	}
	if h := r.header.Get("X-Gearman-Job-Handle"); h != "H:test:1" {
		t.Fatalf("X-Gearman-Job-Handle %q, want the whole handle", h)
	}
}

func TestExceptionTextIsTheBody(t *testing.T) {
	g := start(t, server.Config{}) // no --exceptions: HTTP sessions have it anyway
	g.worker(map[string]client.Handler{"f": func(context.Context, *client.Job) ([]byte, error) {
		return nil, &client.Exception{Data: []byte("disk full")}
	}})
	r := g.post("/f", "x")
	expect(t, "exception", r, http.StatusInternalServerError, "disk full")
	if c := r.header.Get("X-Gearman-Command"); c != "WORK_EXCEPTION" {
		t.Fatalf("X-Gearman-Command %q", c)
	}
}

func TestUniqueCoalesces(t *testing.T) {
	g := start(t, server.Config{})
	bg := "X-Gearman-Background: true"
	a := g.post("/f", "same", bg, "X-Gearman-Unique: order-7")
	b := g.post("/f", "other data", bg, "X-Gearman-Unique: order-7")
	c := g.post("/f", "same", bg)
	d := g.post("/f", "same", bg)
	e := g.post("/f", "same", bg, "X-Gearman-Unique: -")
	f := g.post("/f", "same", bg, "X-Gearman-Unique: -")
	handle := func(r reply) string { return r.header.Get("X-Gearman-Job-Handle") }
	if handle(a) != "H:test:1" || handle(b) != handle(a) {
		t.Fatalf("same unique: handles %q and %q, want one job", handle(a), handle(b))
	}
	if handle(c) == handle(d) {
		t.Fatalf("no unique header coalesced two jobs into %q", handle(c))
	}
	if handle(e) != handle(f) {
		t.Fatalf(`unique "-" with the same body: handles %q and %q, want one job`, handle(e), handle(f))
	}
	if s := g.status("f"); s != "f\t4\t0\t0" {
		t.Fatalf("status %q, want 4 queued jobs", s)
	}
	long := strings.Repeat("u", 65)
	expect(t, "65-byte unique", g.post("/f", "", bg, "X-Gearman-Unique: "+long), http.StatusBadRequest, "")
}

func TestPriorityOrdersJobs(t *testing.T) {
	g := start(t, server.Config{})
	bg := "X-Gearman-Background: TRUE"
	for _, p := range []string{"low", "normal", "High", "", "LOW"} {
		headers := []string{bg}
		if p != "" {
			headers = append(headers, "X-Gearman-Priority: "+p)
		}
		expect(t, "submit "+p, g.post("/f", p, headers...), http.StatusOK, "")
	}
	var got received
	g.worker(map[string]client.Handler{"f": func(_ context.Context, j *client.Job) ([]byte, error) {
		got.add(string(j.Data))
		return nil, nil
	}})
	eventually(t, "every job to run", func() bool { return len(got.list()) == 5 })
	if s := strings.Join(got.list(), ","); s != "High,normal,,low,LOW" {
		t.Fatalf("ran %s, want high, then normal, then low, each in order", s)
	}
}

func TestBadRequests(t *testing.T) {
	g := start(t, server.Config{MaxPacketSize: 100})
	for _, c := range []struct {
		what    string
		method  string
		path    string
		body    string
		headers []string
		code    int
	}{
		{"bad priority", "POST", "/f", "", []string{"X-Gearman-Priority: urgent"}, http.StatusBadRequest},
		{"bad background", "POST", "/f", "", []string{"X-Gearman-Background: maybe"}, http.StatusBadRequest},
		{"priority twice", "POST", "/f", "", []string{"X-Gearman-Priority: high", "X-Gearman-Priority: low"}, http.StatusBadRequest},
		{"no function", "POST", "/", "", nil, http.StatusBadRequest},
		{"only slashes", "POST", "///", "", nil, http.StatusBadRequest},
		{"NUL in the function", "POST", "/a%00b", "", nil, http.StatusBadRequest},
		{"body beyond the packet limit", "POST", "/f", strings.Repeat("x", 100), []string{"X-Gearman-Background: true"}, http.StatusRequestEntityTooLarge},
		{"DELETE", "DELETE", "/f", "", nil, http.StatusMethodNotAllowed},
		{"HEAD does not submit", "HEAD", "/f", "", nil, http.StatusMethodNotAllowed},
		{"POST to status", "POST", "/status/H:test:1", "", nil, http.StatusMethodNotAllowed},
		{"status without a handle", "GET", "/status/", "", nil, http.StatusBadRequest},
		{"status of a long handle", "GET", "/status/" + strings.Repeat("h", 64), "", nil, http.StatusBadRequest},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		r, err := g.do(ctx, c.method, c.path, c.body, c.headers...)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if r.code != c.code {
			t.Errorf("%s: %d %q, want %d", c.what, r.code, r.body, c.code)
		}
		if c.code == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
			t.Errorf("%s: a 405 without Allow", c.what)
		}
	}
	// Exactly at the limit: "f" NUL "" NUL 96 bytes of data is 100.
	r := g.post("/f", strings.Repeat("x", 96), "X-Gearman-Background: true")
	expect(t, "a body that just fits", r, http.StatusOK, "")
	if s := g.status("f"); s != "f\t1\t0\t0" {
		t.Fatalf("status %q: rejected requests created jobs", s)
	}
}

// TestKeepAlive sends two requests on one connection and reads both
// answers from it.
func TestKeepAlive(t *testing.T) {
	g := start(t, server.Config{})
	nc, err := net.Dial("tcp", strings.TrimPrefix(g.web, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nContent-Length: 1\r\n\r\nA" +
		"POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nB\r\n0\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	for i, want := range []string{"H:test:1", "H:test:2"} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("X-Gearman-Job-Handle") != want || res.Close {
			t.Fatalf("response %d: %s %v (close %v), want 200 with %s, kept alive", i+1, res.Status, res.Header, res.Close, want)
		}
	}
}

func TestStatusByHandle(t *testing.T) {
	g := start(t, server.Config{})
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	r := g.post("/slow", "", "X-Gearman-Background: true")
	handle := r.header.Get("X-Gearman-Job-Handle")

	status := func() (int, map[string]any) {
		t.Helper()
		r := g.get("/status/" + handle)
		var st map[string]any
		if err := json.Unmarshal([]byte(r.body), &st); err != nil {
			t.Fatalf("status body %q: %v", r.body, err)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		return r.code, st
	}
	code, st := status()
	if code != http.StatusOK || st["handle"] != handle || st["known"] != true || st["running"] != false {
		t.Fatalf("queued job: %d %v", code, st)
	}

	g.worker(map[string]client.Handler{"slow": func(_ context.Context, j *client.Job) ([]byte, error) {
		j.SendStatus(1, 4)
		close(started)
		<-release
		return nil, nil
	}})
	<-started
	eventually(t, "the status to reach the server", func() bool {
		_, st = status()
		return st["numerator"] == 1.0
	})
	if st["running"] != true || st["denominator"] != 4.0 {
		t.Fatalf("running job: %v", st)
	}

	r = g.get("/status/H:test:999")
	expect(t, "unknown handle", r, http.StatusNotFound, `{"handle":"H:test:999","known":false,"running":false,"numerator":0,"denominator":0}`+"\n")
}

// TestClientGoneMidJobDetaches: a client that hangs up leaves the queue as
// a binary client does: its queued foreground job is abandoned and its
// session is gone from `workers`.
func TestClientGoneMidJobDetaches(t *testing.T) {
	g := start(t, server.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := g.do(ctx, http.MethodPost, "/nobody", "x")
		done <- err
	}()
	eventually(t, "the job to be queued", func() bool { return g.status("nobody") == "nobody\t1\t0\t0" })
	httpSessions := func() int {
		n := 0
		for _, l := range g.admin("workers") {
			if strings.HasPrefix(l, "-1 127.0.0.1 ") {
				n++
			}
		}
		return n
	}
	if n := httpSessions(); n != 1 {
		t.Fatalf("%d HTTP sessions in `workers`, want 1", n)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("request ended with %v", err)
	}
	eventually(t, "the abandoned job to go", func() bool { return g.status("nobody") == "nobody\t0\t0\t0" })
	eventually(t, "the session to go", func() bool { return httpSessions() == 0 })
}

// TestCloseEndsRequestsInFlight: Close does not wait for a foreground job;
// the request gets 503 (or, if the connection closes first, an error).
func TestCloseEndsRequestsInFlight(t *testing.T) {
	g := start(t, server.Config{})
	type outcome struct {
		r   reply
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		defer cancel()
		r, err := g.do(ctx, http.MethodPost, "/nobody", "x")
		done <- outcome{r, err}
	}()
	eventually(t, "the job to be queued", func() bool { return g.status("nobody") == "nobody\t1\t0\t0" })
	g.srv.Close()
	o := <-done
	if errors.Is(o.err, context.DeadlineExceeded) || o.err == nil && o.r.code != http.StatusServiceUnavailable {
		t.Fatalf("request in flight at Close: %d %q, %v; want 503 or its connection closed", o.r.code, o.r.body, o.err)
	}
}

// TestShutdownLetsRequestsFinish: graceful shutdown stops accepting HTTP
// connections but answers the request in flight when its job ends.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	g := start(t, server.Config{})
	started, release := make(chan struct{}), make(chan struct{})
	g.worker(map[string]client.Handler{"late": func(context.Context, *client.Job) ([]byte, error) {
		close(started)
		<-release
		return []byte("finished"), nil
	}})
	done := make(chan reply, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		defer cancel()
		r, err := g.do(ctx, http.MethodPost, "/late", "x")
		if err != nil {
			r.body = err.Error()
		}
		done <- r
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- g.srv.Shutdown(context.Background()) }()
	eventually(t, "the HTTP listener to close", func() bool {
		nc, err := net.Dial("tcp", strings.TrimPrefix(g.web, "http://"))
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	close(release)
	r := <-done
	expect(t, "request in flight at Shutdown", r, http.StatusOK, "finished")
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// TestBackgroundIsAcknowledgedOnceStored: 200 means the store has the job,
// and a store that fails gives a 5xx naming the failure, never a 200.
func TestBackgroundIsAcknowledgedOnceStored(t *testing.T) {
	mem := memstore.New()
	f := &storetest.Faulty{Store: mem}
	g := start(t, server.Config{Store: f})
	bg := "X-Gearman-Background: true"
	expect(t, "stored submit", g.post("/f", "one", bg), http.StatusOK, "")
	if n := mem.Len(); n != 1 {
		t.Fatalf("%d records when the 200 came, want 1", n)
	}

	f.Fail(store.ErrUnavailable)
	r := g.post("/f", "two", bg)
	if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, store.ErrUnavailable.Error()) {
		t.Fatalf("submit while the store fails: %d %q, want 503 naming %q", r.code, r.body, store.ErrUnavailable)
	}
	if h := r.header.Get("X-Gearman-Job-Handle"); h != "" {
		t.Fatalf("a failed submit was given handle %q", h)
	}
	if s := g.status("f"); s != "f\t1\t0\t0" {
		t.Fatalf("status %q: the failed job was kept", s)
	}

	f.Heal()
	expect(t, "submit after the store healed", g.post("/f", "three", bg), http.StatusOK, "")
	if n := mem.Len(); n != 2 {
		t.Fatalf("%d records, want 2", n)
	}
}
