package gearhttp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"gearmand/server"
	"gearmand/store/memstore"
	"gearmand/store/storetest"
)

// TestStoreTimeoutAnswersBackgroundRequests: while the store hangs, a
// background request is answered 503 QUEUE_ERROR within StoreTimeout,
// whether its job reached the store or back-pressure held it.
func TestStoreTimeoutAnswersBackgroundRequests(t *testing.T) {
	const timeout = 200 * time.Millisecond
	f := &storetest.Faulty{Store: memstore.New()}
	f.Hold()
	g := start(t, server.Config{Store: f, StoreTimeout: timeout, MaxPendingWrites: 1})
	t.Cleanup(f.Release) // before the server's Close, which flushes
	for _, what := range []string{"no answer within the store timeout", "no room for the job"} {
		start := time.Now()
		r := g.post("/f", "data", "X-Gearman-Background: true")
		waited := time.Since(start)
		if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "QUEUE_ERROR") || !strings.Contains(r.body, what) {
			t.Errorf("background request while the store hangs: %d %q, want 503 QUEUE_ERROR saying %q", r.code, r.body, what)
		}
		if waited > timeout+timeout/2 {
			t.Errorf("answered after %v, want within about %v", waited, timeout)
		}
	}
}
