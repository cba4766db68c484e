package mysql

import (
	"strconv"
	"testing"
	"time"

	"gearmand/internal/cgearmand"
	"gearmand/store/mysql/mariadbtest"
)

// startCGearmand starts the real C gearmand (Debian's gearman-job-server
// 1.1.20) with -q MySQL on database of db, its default table, over TCP.
func startCGearmand(tb testing.TB, db *mariadbtest.DB, database string) *cgearmand.Server {
	tb.Helper()
	return cgearmand.Start(tb, "-q", "MySQL",
		"--mysql-host", db.Host, "--mysql-port", strconv.Itoa(db.Port),
		"--mysql-user", db.User, "--mysql-password", db.Password, "--mysql-db", database)
}

// waitUntil polls cond until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		<-tick.C
	}
}
