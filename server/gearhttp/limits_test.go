package gearhttp

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gearmand/queue"
)

// TestOutputBeyondTheLimitIs502: a foreground job whose output outgrows
// MaxResponseSize ends the request with 502 and leaves the queue.
func TestOutputBeyondTheLimitIs502(t *testing.T) {
	q := queue.New(queue.Config{HandlePrefix: "H:t", JobRetries: -1})
	s := New(Config{Queue: q, MaxResponseSize: 64, Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	for _, size := range []int{10, 100} {
		req := httptest.NewRequest(http.MethodPost, "/f", strings.NewReader(strings.Repeat("x", size)))
		rec := serveWithWorker(s, q, req)
		want := http.StatusOK
		if size == 100 {
			want = http.StatusBadGateway
		}
		if rec.Code != want {
			t.Fatalf("%d bytes of output: %d %q, want %d", size, rec.Code, rec.Body, want)
		}
		if want == http.StatusBadGateway && !strings.Contains(rec.Body.String(), "64-byte limit") {
			t.Fatalf("502 body %q does not name the limit", rec.Body)
		}
	}
	if ws := q.Workers(); len(ws) != 0 {
		t.Fatalf("sessions left: %+v", ws)
	}
}
