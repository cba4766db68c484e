package redis

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"gearmand/store"
)

// syncBuffer is a bytes.Buffer that the logger's writers and the test may
// use at once.
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

// TestClientLogGoesToTheStoreLogger: go-redis's own lines about a Redis it
// cannot reach reach the logger the registry was given, not stderr.
func TestClientLogGoesToTheStoreLogger(t *testing.T) {
	t.Cleanup(func() { goredis.SetLogger(quietLogger{}) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	var log syncBuffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	s, err := store.Open(context.Background(), "redis", store.Options{DSN: addr, Namespace: newNamespace(t), Logger: logger})
	if err == nil {
		s.Close()
		t.Fatalf("store.Open on %s, where nothing listens, succeeded", addr)
	}
	if got := log.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "redis client: ") || !strings.Contains(got, "store=redis") {
		t.Errorf("the store's logger got %q; want go-redis's lines about the failed dials, at WARN", got)
	}
}
