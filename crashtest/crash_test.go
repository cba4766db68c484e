package crashtest

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/store/mysql/mariadbtest"
	"gearmand/store/postgres/pgtest"
)

// lossWindow is how long before a kill a write-behind acknowledgement may
// still be lost. The documentation says one flush interval (10ms here); an
// acknowledged add also waits for the commit under way and then for its
// own, and write-behind holds submitters back only once the oldest
// unwritten add is two intervals old. When a commit stalls, as fsyncs on a
// shared machine do (a 220ms pebble stall was seen here, and bolt commits
// of up to 380ms), the newest acknowledgements age while they wait, so the
// bound checked here is a second. TestWriteBehindWindowUnderFullLoad checks
// a tight one on request; the hole check in ledger.judge needs no clock.
const lossWindow = time.Second

// durableStore is a store that must keep jobs across a kill.
type durableStore struct {
	name string
	// args returns the options selecting a store of the test's own: files
	// in a temporary directory, or a database or namespace no other test
	// uses. It skips the test when the store's server is not installed.
	args func(t *testing.T) []string
	// networked stores live in a server of their own: they take no file
	// lock, and their commits cost a round trip, so the tests give them
	// fewer jobs and kills.
	networked bool
}

// fileStores keep their jobs in local files.
var fileStores = []durableStore{
	{name: "bolt", args: func(t *testing.T) []string {
		return []string{"-q", "bolt", "--bolt-file", filepath.Join(t.TempDir(), "gearmand.db")}
	}},
	{name: "pebble", args: func(t *testing.T) []string {
		return []string{"-q", "pebble", "--pebble-dir", filepath.Join(t.TempDir(), "pebble")}
	}},
	{name: "libsqlite3", args: sqliteArgs},
}

// sqliteArgs selects -q libsqlite3 on a file of the test's own.
func sqliteArgs(t *testing.T) []string {
	return []string{"-q", "libsqlite3", "--libsqlite3-db", filepath.Join(t.TempDir(), "queue.db")}
}

// networkedStores keep their jobs in a PostgreSQL or Redis that the tests
// start themselves (see pgtest and startRedis). Every life of a test uses
// the same --store-namespace, so a restarted server finds the jobs of the
// killed one.
var networkedStores = []durableStore{
	{name: "postgres", networked: true, args: func(t *testing.T) []string {
		dsn := pgtest.Server(t).NewDatabase(t)
		return []string{"-q", "postgres", "--dsn", dsn, "--store-namespace", namespace(t)}
	}},
	{name: "redis", networked: true, args: func(t *testing.T) []string {
		rs := startRedis(t)
		return []string{"-q", "redis", "--redis-addr", rs.addr, "--store-namespace", namespace(t)}
	}},
	{name: "MySQL", networked: true, args: mysqlArgs},
}

// mysqlArgs selects -q MySQL on a database of the test's own in the
// throwaway MariaDB (see mariadbtest), with gearmand's flags.
func mysqlArgs(t *testing.T) []string {
	db := mariadbtest.Server(t)
	return []string{"-q", "MySQL", "--mysql-host", db.Host, "--mysql-port", strconv.Itoa(db.Port),
		"--mysql-user", db.User, "--mysql-password", db.Password, "--mysql-db", db.NewDatabase(t)}
}

var durableStores = slices.Concat(fileStores, networkedStores)

var (
	writeThrough = []string{"--store-mode", "write-through"}
	writeBehind  = []string{"--store-mode", "write-behind", "--flush-interval", "10ms"}
)

// newRand returns the random source for a test's delays, seeded from
// CRASHTEST_SEED or the clock, and logs the seed.
func newRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CRASHTEST_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRASHTEST_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("seed %d (CRASHTEST_SEED=%d repeats the delays)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// scale picks the full or the -short size.
func scale[T any](full, short T) T {
	if testing.Short() {
		return short
	}
	return full
}

// submitLoad keeps a few dozen submissions in flight; maxEach is never
// reached within a kill delay, it only bounds the loop.
var submitLoad = load{conns: 4, perConn: 8, maxEach: 5000}

// writeBehindLoad is submitLoad paced to a few thousand jobs per life: a
// write-behind server acknowledges as fast as clients send, and lives last
// longer than lossWindow, so flat out the drain would take most of the
// time budget.
var writeBehindLoad = load{conns: 4, perConn: 8, maxEach: 5000, rate: 3000}

// killCycles submits ld and kills kills times, restarting on the same
// store each time, then starts one more life, drains it and returns it.
func killCycles(t *testing.T, r *ledger, g *gearmand, ld load, kills int, minDelay, maxDelay time.Duration) *life {
	t.Helper()
	rng := newRand(t)
	for range kills {
		l := g.start()
		acked := r.submitAndKill(l, ld, rng, minDelay, maxDelay)
		t.Logf("life %d: replayed %d, acknowledged %d, killed", l.n, l.replayed(), acked)
	}
	l := g.start()
	r.drain(l, 4, 0)
	t.Logf("life %d: replayed %d, drained; %d runs in all", l.n, l.replayed(), r.runCount())
	return l
}

// checkOnce fails if a job ran twice where nothing excuses it: no worker
// was lost and no drain interrupted, so every stored job runs exactly once
// in the final drain.
func checkOnce(t *testing.T, v verdict) {
	t.Helper()
	if v.extraRuns > 0 {
		t.Errorf("%d jobs ran more than once (%d extra runs) in a drain no kill interrupted", v.duplicates, v.extraRuns)
	}
}

// checkEmptyAfterCleanRestart stops l cleanly, starts another life and
// expects it to replay nothing: every finished job's delete was stored.
//
// A networked store is let off one way: after a kill, the database may
// still commit a transaction the killed server had sent, after the next
// life replayed, so its jobs appear only now. Such jobs are drained and
// logged; they must be jobs that never ran. One that ran already means a
// delete was lost, and fails the test as for any store.
func checkEmptyAfterCleanRestart(t *testing.T, r *ledger, g *gearmand, l *life, st durableStore) {
	t.Helper()
	l.stop(t)
	l = g.start()
	n := l.replayed()
	if n == 0 {
		l.stop(t)
		return
	}
	if !st.networked {
		t.Errorf("after a drain and a clean stop, life %d replayed %d jobs, want 0", l.n, n)
		l.stop(t)
		return
	}
	r.drain(l, 2, 0)
	first, again, unknown := r.ranIn(l)
	t.Logf("after a drain and a clean stop, life %d replayed %d jobs: %d had never run (committed after the life that followed their kill replayed: %s), %d had run already",
		l.n, n, len(first), strings.Join(first[:min(10, len(first))], " "), len(again))
	if len(again) > 0 {
		t.Errorf("after a drain and a clean stop, life %d replayed %d jobs that had run and finished already (their deletes were lost); the first %d: %s",
			l.n, len(again), min(20, len(again)), strings.Join(again[:min(20, len(again))], " "))
	}
	if len(unknown) > 0 {
		t.Errorf("after a drain and a clean stop, life %d replayed %d jobs that were never submitted: %s",
			l.n, len(unknown), strings.Join(unknown[:min(20, len(unknown))], " "))
	}
	l.stop(t)
}

// TestSubmitUnderKill kills the server under a stream of submissions,
// several times, then drains: every acknowledged job must run.
func TestSubmitUnderKill(t *testing.T) {
	for _, st := range durableStores {
		t.Run(st.name, func(t *testing.T) {
			start := time.Now()
			g := newGearmand(t, append(st.args(t), writeThrough...)...)
			r := newLedger(t)
			kills := scale(4, 2)
			if st.networked {
				kills = 2
			}
			l := killCycles(t, r, g, submitLoad, kills, 50*time.Millisecond, 300*time.Millisecond)
			checkOnce(t, r.check(0))
			checkEmptyAfterCleanRestart(t, r, g, l, st)
			t.Logf("took %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestWriteBehindLossWindow is TestSubmitUnderKill in write-behind mode:
// only jobs acknowledged within lossWindow of a kill may be lost. The kill
// delays are longer than lossWindow, so that some acknowledged jobs are
// older than that.
func TestWriteBehindLossWindow(t *testing.T) {
	for _, st := range durableStores {
		t.Run(st.name, func(t *testing.T) {
			start := time.Now()
			g := newGearmand(t, append(st.args(t), writeBehind...)...)
			r := newLedger(t)
			kills := scale(3, 1)
			if st.networked {
				kills = 1
			}
			l := killCycles(t, r, g, writeBehindLoad, kills, lossWindow+100*time.Millisecond, lossWindow+500*time.Millisecond)
			v := r.check(lossWindow)
			checkOnce(t, v)
			if v.acked > 0 && v.acked == len(v.lostInWindow) {
				t.Errorf("every acknowledged job was young enough to be excused; the test proved nothing")
			}
			checkEmptyAfterCleanRestart(t, r, g, l, st)
			t.Logf("took %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestWriteBehindWindowUnderFullLoad submits flat out in write-behind mode
// and fails when a job acknowledged more than five flush intervals before
// the kill is lost. Before write-behind held submitters back by the age of
// the oldest unwritten add, batches grew with the load and it lost jobs
// acknowledged 200ms before a kill; now its losses stay within two
// intervals, unless a commit stalls on a busy disk. Because such stalls
// happen on shared machines it runs only when CRASHTEST_WRITE_BEHIND_FULL_LOAD
// is set.
func TestWriteBehindWindowUnderFullLoad(t *testing.T) {
	if os.Getenv("CRASHTEST_WRITE_BEHIND_FULL_LOAD") == "" {
		t.Skip("timing-sensitive, see the comment; CRASHTEST_WRITE_BEHIND_FULL_LOAD=1 runs it")
	}
	for _, st := range durableStores {
		t.Run(st.name, func(t *testing.T) {
			g := newGearmand(t, append(st.args(t), writeBehind...)...)
			r := newLedger(t)
			killCycles(t, r, g, submitLoad, 1, 500*time.Millisecond, 501*time.Millisecond)
			r.check(5 * 10 * time.Millisecond)
		})
	}
}

// TestKillDuringDrain queues jobs, kills the server while workers drain
// them, restarts it and drains the rest: every acknowledged job must run,
// finished ones may run again.
func TestKillDuringDrain(t *testing.T) {
	for _, st := range durableStores {
		for _, mode := range []struct {
			name   string
			args   []string
			window time.Duration
		}{{"write-through", writeThrough, 0}, {"write-behind", writeBehind, lossWindow}} {
			t.Run(st.name+"/"+mode.name, func(t *testing.T) {
				start := time.Now()
				rng := newRand(t)
				g := newGearmand(t, append(st.args(t), mode.args...)...)
				r := newLedger(t)
				jobs := scale(3000, 600)
				if st.networked {
					jobs = 640
				}
				ld := load{conns: 4, perConn: 8, maxEach: jobs / 32}
				jobs = ld.conns * ld.perConn * ld.maxEach

				l := g.start()
				s := r.startSubmitting(l, ld)
				s.finish(t)
				if n := r.ackCount(); n != jobs {
					t.Fatalf("life %d acknowledged %d of %d jobs with no kill", l.n, n, jobs)
				}
				if mode.window > 0 {
					// Let every acknowledgement age past the loss window,
					// so that none of them may be lost to the kill.
					time.Sleep(mode.window)
				}
				killAt := jobs/5 + rng.IntN(jobs*2/5) // after 20% to 60% of the runs
				if r.drain(l, 4, killAt) {
					t.Fatalf("life %d drained all %d jobs before the kill at %d runs", l.n, jobs, killAt)
				}
				t.Logf("life %d: %d acknowledged, killed after %d runs (asked for %d)", l.n, jobs, r.runCount(), killAt)

				l = g.start()
				before := r.runCount()
				r.drain(l, 4, 0)
				t.Logf("life %d: replayed %d, drained with %d more runs", l.n, l.replayed(), r.runCount()-before)
				r.check(mode.window)
				checkEmptyAfterCleanRestart(t, r, g, l, st)
				t.Logf("took %v", time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

// TestSecondServerRefusesLockedStore starts a second server on the store a
// first one is using: it must exit non-zero and say that the store is
// locked, and the first must go on serving.
func TestSecondServerRefusesLockedStore(t *testing.T) {
	for _, st := range fileStores {
		t.Run(st.name, func(t *testing.T) {
			g := newGearmand(t, st.args(t)...)
			first := g.start()

			second, err := g.spawn(g.args...)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-second.exited:
			case <-time.After(exitTimeout):
				_, serving := adminCommand(second.addr, "version")
				t.Fatalf("the second server on the same store was still running after %v (answering on its port: %v)\nlog:\n%s",
					exitTimeout, serving == nil, second.log())
			}
			out := second.stderr.String() + second.log()
			if code := second.cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("the second server exited with status 0, want non-zero\n%s", out)
			}
			if !strings.Contains(strings.ToLower(out), "lock") {
				t.Errorf("the second server's stderr and log do not mention the lock:\n%s", out)
			}
			t.Logf("second server: %v: %s", second.cmd.ProcessState, strings.TrimSpace(second.stderr.String()))

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, first.addr)
			if err != nil {
				t.Fatalf("the first server after the second's attempt: %v", err)
			}
			defer c.Close()
			if _, err := c.SubmitBackground(ctx, function, "after-second", payload("after-second"), client.Normal); err != nil {
				t.Errorf("the first server refused a job after the second's attempt: %v", err)
			}
			first.stop(t)
		})
	}
}

// TestBuiltinLosesJobs runs the harness against the memory-only store,
// where a kill must lose every queued job: if the checks saw nothing
// missing here, they could not see it with a durable store either.
func TestBuiltinLosesJobs(t *testing.T) {
	g := newGearmand(t, "-q", "builtin")
	r := newLedger(t)
	killCycles(t, r, g, submitLoad, 1, 50*time.Millisecond, 100*time.Millisecond)
	v := r.judge(0)
	t.Logf("builtin: acknowledged %d, recovered %d, missing %d", v.acked, v.recovered, len(v.missing))
	if v.acked == 0 || len(v.missing) != v.acked {
		t.Errorf("with -q builtin, %d of %d acknowledged jobs were missing after a kill; want all of them", len(v.missing), v.acked)
	}
}
