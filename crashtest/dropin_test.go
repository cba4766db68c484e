package crashtest

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"gearmand/client"
	"gearmand/internal/cgearmand"
	"gearmand/store/postgres/pgtest"
)

// The drop-in tests run the real C gearmand (Debian's gearman-job-server,
// /usr/sbin/gearmand) and ours, one after the other, with the same queue
// options, as a user swapping the binary would: every background job the
// one queued is run by the other, once.

// dropInCount is how many background jobs each direction queues.
const dropInCount = 60

// dropInFunction is the function every drop-in job is for.
const dropInFunction = "dropin"

// dropInQueue is one of C gearmand's persistent queue modules and how a
// test gets a place of its own for it.
type dropInQueue struct {
	name string
	// args returns the queue options both servers are started with.
	args func(t *testing.T) []string
	// shared: both servers keep their jobs in C's own table, so ours can
	// hand jobs back to C (SQLite, MySQL). PostgreSQL and Redis take C's
	// jobs over into our own layout at start; gearmand --hand-back moves
	// them back (TestHandBackToC).
	shared bool
}

var dropInQueues = []dropInQueue{
	{name: "libsqlite3", shared: true, args: sqliteArgs},
	{name: "MySQL", shared: true, args: mysqlArgs},
	{name: "Postgres", args: func(t *testing.T) []string {
		dsn := pgtest.Server(t).NewDatabase(t)
		return []string{"-q", "Postgres", "--libpq-conninfo", dsn}
	}},
	{name: "redis", args: func(t *testing.T) []string {
		rs := startRedis(t)
		host, port, _ := net.SplitHostPort(rs.addr)
		return []string{"-q", "redis", "--redis-server", host, "--redis-port", port}
	}},
}

// dropInJobs is the jobs of a drop-in test: every third with an empty
// unique, uniques with dashes (which C's Redis keys also use as
// separators), the three priorities in turn, and data with a NUL byte.
//
// Submitted to C, only the first has an empty unique: C 1.1.20 keeps one
// background job with an empty unique per function in its persistent
// queues (its rows and keys are named by unique and function). Its
// Postgres and MySQL modules answer a second with QUEUE_ERROR; its
// libsqlite3 and redis modules overwrite the first, losing it. (libgearman
// clients send a generated UUID as the unique; raw protocol clients, such
// as ours, may send none.) Ours keeps them all.
//
// cutAtNUL: C gearmand 1.1.20's redis queue reads a job's data back only up
// to its first NUL, so jobs handed back to it run with their data cut there.
type dropInJobs struct{ toC, cutAtNUL bool }

func (js dropInJobs) job(i int) (unique string, data []byte, pri client.Priority) {
	if i%3 != 0 || (js.toC && i > 0) {
		unique = fmt.Sprintf("u-%d-x", i)
	}
	return unique, fmt.Appendf(nil, "job %d\x00end", i), []client.Priority{client.High, client.Normal, client.Low}[i%3]
}

// ranAs is the data job i reaches a worker with.
func (js dropInJobs) ranAs(i int) []byte {
	_, data, _ := js.job(i)
	if js.cutAtNUL {
		data, _, _ = bytes.Cut(data, []byte{0})
	}
	return data
}

// TestCQueueRunsHere: jobs C gearmand left in its persistent queue run on
// ours started with the same options, each once, and are gone from C's
// place afterwards (C started again finds none).
func TestCQueueRunsHere(t *testing.T) {
	for _, q := range dropInQueues {
		t.Run(q.name, func(t *testing.T) {
			args := q.args(t)
			js := dropInJobs{toC: true}
			c := startC(t, args)
			js.submit(t, c.Addr)
			c.Stop(t)

			g := newGearmand(t, args...)
			l := g.start()
			if n := l.replayed(); n != dropInCount {
				t.Errorf("ours replayed %d jobs of C's, want %d\nlog:\n%s", n, dropInCount, tail(l.log(), 20))
			}
			js.drain(t, l.addr)
			l.stop(t)

			// Nothing is left for either server.
			l = g.start()
			if n := l.replayed(); n != 0 {
				t.Errorf("after the drain ours replayed %d jobs, want 0", n)
			}
			l.stop(t)
			c = startC(t, args)
			if n, err := jobsOf(c.Addr, dropInFunction); err != nil || n != 0 {
				t.Errorf("C gearmand started again holds %d jobs (%v), want 0: ours ran them", n, err)
			}
			c.Stop(t)
		})
	}
}

// TestOurQueueRunsOnC: jobs ours left in C's table are run by C gearmand
// started with the same options: the way back.
func TestOurQueueRunsOnC(t *testing.T) {
	for _, q := range dropInQueues {
		if !q.shared {
			continue
		}
		t.Run(q.name, func(t *testing.T) {
			args := q.args(t)
			dropInJobs{}.runOnC(t, args, args, nil)
		})
	}
}

// runOnC queues the jobs on ours, started with the options ours, stops
// it, calls between (when not nil) with it, lets C gearmand started with
// the options args drain them, and checks that ours then replays none.
func (js dropInJobs) runOnC(t *testing.T, args, ours []string, between func(g *gearmand)) {
	t.Helper()
	g := newGearmand(t, ours...)
	l := g.start()
	js.submit(t, l.addr)
	l.stop(t)
	if between != nil {
		between(g)
	}

	c := startC(t, args)
	js.drain(t, c.Addr)
	c.Stop(t)

	l = g.start()
	if n := l.replayed(); n != 0 {
		t.Errorf("after C drained the queue ours replayed %d jobs, want 0", n)
	}
	l.stop(t)
}

// TestHandBackToC: with -q Postgres and -q redis ours keeps jobs in its
// own layout; gearmand --hand-back moves them into C gearmand's table or
// keys, and C gearmand started with the same options runs every one, once
// (under a generated unique where ours had none; with Redis, the data cut
// at its NUL, as C reads it). With -q libsqlite3 the jobs are in C's table
// already: --hand-back says so and moves nothing.
func TestHandBackToC(t *testing.T) {
	for _, q := range dropInQueues {
		if q.shared && q.name != "libsqlite3" { // one shared queue shows the answer
			continue
		}
		t.Run(q.name, func(t *testing.T) {
			args := q.args(t)
			// Each life here listens on a port of its own: the namespace,
			// which defaults to <hostname>:<port>, is named so that every
			// life has the same one, as a server on one port has.
			ours := append(slices.Clone(args), "--store-namespace", "handback")
			dropInJobs{cutAtNUL: q.name == "redis"}.runOnC(t, args, ours, func(g *gearmand) {
				hb, err := g.spawn(append(ours, "--hand-back")...)
				if err != nil {
					t.Fatal(err)
				}
				hb.waitExit(t)
				out := hb.stderr.String()
				t.Logf("gearmand --hand-back:\n%s", out)
				switch code := hb.cmd.ProcessState.ExitCode(); {
				case code != 0:
					t.Fatalf("gearmand --hand-back exited %d:\n%s", code, out)
				case q.shared && !strings.Contains(out, "nothing needs moving"):
					t.Errorf("gearmand --hand-back on C's own table does not say nothing needs moving:\n%s", out)
				case !q.shared && !strings.Contains(out, fmt.Sprintf("handed %d jobs back", dropInCount)):
					t.Errorf("gearmand --hand-back does not say it handed %d jobs back:\n%s", dropInCount, out)
				case !q.shared && !strings.Contains(out, "jobs: new unique: an empty unique"):
					t.Errorf("gearmand --hand-back does not say which jobs got a new unique:\n%s", out)
				}
			})
		})
	}
}

// submit queues the test's background jobs on the server at addr.
func (js dropInJobs) submit(t *testing.T, addr string) {
	t.Helper()
	ctx, c := dial(t, addr)
	for i := range dropInCount {
		unique, data, pri := js.job(i)
		if _, err := c.SubmitBackground(ctx, dropInFunction, unique, data, pri); err != nil {
			t.Fatalf("submitting job %d to %s: %v", i, addr, err)
		}
	}
	if n, err := jobsOf(addr, dropInFunction); err != nil || n != dropInCount {
		t.Fatalf("%s holds %d jobs (%v) after the submits, want %d", addr, n, err, dropInCount)
	}
}

// drain runs one worker on the server at addr until every job of submit
// has run, and checks each ran once with its data as expected, and
// the high-priority jobs before the low ones.
func (js dropInJobs) drain(t *testing.T, addr string) {
	t.Helper()
	ran := cgearmand.Drain(t, addr, dropInCount, dropInFunction)
	seen := make(map[string]int)
	for _, r := range ran {
		seen[string(r.Data)]++
	}
	for i := range dropInCount {
		data := js.ranAs(i)
		if n := seen[string(data)]; n != 1 {
			t.Errorf("job %d (%q) ran %d times, want once", i, data, n)
		}
	}
	// With one worker, every high job runs before every low one.
	lastHigh, firstLow := -1, len(ran)
	for pos, r := range ran {
		var i int
		fmt.Sscanf(string(r.Data), "job %d", &i)
		switch i % 3 {
		case 0:
			lastHigh = max(lastHigh, pos)
		case 2:
			firstLow = min(firstLow, pos)
		}
	}
	if lastHigh > firstLow {
		t.Errorf("a high-priority job ran at position %d, after a low one at %d", lastHigh, firstLow)
	}
}

// startC starts the real C gearmand with the queue options args (see
// package cgearmand) and, should the test fail, logs the end of its log.
func startC(t *testing.T, args []string) *cgearmand.Server {
	t.Helper()
	c := cgearmand.Start(t, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("C gearmand on %s, the end of its log:\n%s", c.Addr, tail(c.Log(), 30))
		}
	})
	return c
}
