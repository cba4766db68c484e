package crashtest

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// TestRedisPersistenceWarnings: a server on a Redis that can lose
// acknowledged jobs says so at start, at the default log level; on one
// set up safely it says nothing.
func TestRedisPersistenceWarnings(t *testing.T) {
	rs := startRedis(t) // appendonly yes, appendfsync always
	args := []string{"-q", "redis", "--redis-addr", rs.addr, "--store-namespace", namespace(t), "--verbose", "ERROR"}
	g := newGearmand(t, args...)
	safe := g.start()
	safe.stop(t)
	if log := safe.log(); strings.Contains(log, "level=WARNING") {
		t.Errorf("warnings on a Redis with appendfsync always:\n%s", log)
	}

	rdb := goredis.NewClient(&goredis.Options{Addr: rs.addr})
	defer rdb.Close()
	if err := rdb.ConfigSet(context.Background(), "appendfsync", "everysec").Err(); err != nil {
		t.Fatal(err)
	}
	risky := g.start()
	risky.stop(t)
	if log := risky.log(); !strings.Contains(log, "level=WARNING") || !strings.Contains(log, "appendfsync everysec") {
		t.Errorf("no warning about appendfsync everysec:\n%s", log)
	}
}
