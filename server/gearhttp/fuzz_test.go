package gearhttp

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"gearmand/protocol"
	"gearmand/queue"
)

// FuzzRequest feeds raw HTTP/1.x request bytes, possibly several pipelined
// requests, to the handler over a fresh queue with an in-process worker that
// completes every job it can grab. Whatever the bytes, every request must
// be answered with one of the protocol's statuses, a 200 to a submission
// must carry a job handle, and every request's session must leave the
// queue. The seeds run in every go test.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		"POST /reverse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nX-Gearman-Priority: low\r\nX-Gearman-Unique: u1\r\nContent-Length: 1\r\n\r\nA",
		"GET /status/H:fuzz:1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /status/H:fuzz:1 HTTP/1.0\r\n\r\n",
		"PUT /a%20b%2Fc?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nContent-Length: 1\r\n\r\nA" +
			"POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Unique: -\r\nContent-Length: 1\r\n\r\nA",
		"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a%00b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Priority: urgent\r\n\r\n",
		"POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\nX-Gearman-Background: false\r\n\r\n",
		"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("z", 2000),
		"DELETE /f HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /status/ HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		q := queue.New(queue.Config{HandlePrefix: "H:fuzz", JobRetries: -1})
		s := New(Config{Queue: q, MaxBodySize: 1024, MaxResponseSize: 4096, Logger: slog.New(slog.DiscardHandler)})
		defer s.Close()
		br := bufio.NewReader(bytes.NewReader(raw))
		for range 8 {
			req, err := http.ReadRequest(br)
			if err != nil {
				break
			}
			rec := serveWithWorker(s, q, req)
			io.Copy(io.Discard, req.Body)
			checkAnswer(t, req, rec)
		}
		if ws := q.Workers(); len(ws) != 0 {
			t.Fatalf("%d sessions left in the queue after every request ended: %+v", len(ws), ws)
		}
	})
}

// serveWithWorker runs one request while a worker session completes every
// job of the request's function: it sends the job's data back as one
// WORK_DATA chunk and completes with "!".
func serveWithWorker(s *Server, q *queue.Queue, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	wrep := newReplies(1 << 20)
	w := q.Connect(wrep, queue.SessionInfo{FD: -2})
	defer q.Disconnect(w)
	q.CanDo(w, []byte(strings.TrimLeft(req.URL.Path, "/")), 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeHTTP(rec, req)
	}()
	for {
		select {
		case <-done:
			return rec
		default:
		}
		q.Grab(w, queue.GrabJob)
		frames, _ := wrep.take()
		for _, f := range frames {
			p, ok := decode(f)
			if !ok || p.typ != protocol.JobAssign {
				continue
			}
			handle, data := p.arg(0), p.arg(2)
			q.Work(w, protocol.WorkData, [][]byte{handle, data}, join(handle, data), false)
			q.Work(w, protocol.WorkComplete, [][]byte{handle, []byte("!")}, join(handle, []byte("!")), false)
		}
		runtime.Gosched()
	}
}

func join(handle, data []byte) []byte {
	return append(append(append([]byte(nil), handle...), 0), data...)
}

// checkAnswer holds for every answer, whatever the request.
func checkAnswer(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	switch rec.Code {
	case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusRequestEntityTooLarge, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable:
	default:
		t.Fatalf("%s %q answered %d %q", req.Method, req.URL, rec.Code, rec.Body)
	}
	submit := !strings.HasPrefix(req.URL.Path, statusPrefix)
	if submit && rec.Code == http.StatusOK && rec.Header().Get(headerHandle) == "" {
		t.Fatalf("%s %q: 200 without a job handle", req.Method, req.URL)
	}
	if submit && rec.Code == http.StatusOK && rec.Header().Get(headerCommand) == protocol.WorkComplete.String() &&
		!strings.HasSuffix(rec.Body.String(), "!") {
		t.Fatalf("%s %q: completed job's body %q does not end with the result", req.Method, req.URL, rec.Body)
	}
}
