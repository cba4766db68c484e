package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
			g := newGearmand(t, args...)
			l := g.start()
			var js dropInJobs
			js.submit(t, l.addr)
			l.stop(t)

			c := startC(t, args)
			js.drain(t, c.Addr)
			c.Stop(t)

			l = g.start()
			if n := l.replayed(); n != 0 {
				t.Errorf("after C drained the queue ours replayed %d jobs, want 0", n)
			}
			l.stop(t)
		})
	}
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
			g := newGearmand(t, ours...)
			l := g.start()
			js := dropInJobs{cutAtNUL: q.name == "redis"}
			js.submit(t, l.addr)
			l.stop(t)

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
			}
			if !q.shared && !strings.Contains(out, "jobs: new unique: an empty unique") {
				t.Errorf("gearmand --hand-back does not say which jobs got a new unique:\n%s", out)
			}

			c := startC(t, args)
			js.drain(t, c.Addr)
			c.Stop(t)
			l = g.start()
			if n := l.replayed(); n != 0 {
				t.Errorf("after C drained the handed-back jobs ours replayed %d, want 0", n)
			}
			l.stop(t)
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
// has run, and checks each ran once with its data whole, and
// the high-priority jobs before the low ones.
func (js dropInJobs) drain(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := client.NewWorker(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var mu sync.Mutex
	var got [][]byte
	all := make(chan struct{})
	w.Register(dropInFunction, func(_ context.Context, j *client.Job) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, bytes.Clone(j.Data))
		if len(got) == dropInCount {
			close(all)
		}
		return nil, nil
	})
	done := make(chan error, 1)
	go func() { done <- w.Work(ctx) }()
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		t.Fatalf("the worker got %d of %d jobs from %s", len(got), dropInCount, addr)
	}
	// The last job's completion must reach the server before it stops.
	waitUntil(t, "the queue to drain", func() bool {
		n, err := jobsOf(addr, dropInFunction)
		return err == nil && n == 0
	})
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	seen := make(map[string]int)
	for _, d := range got {
		seen[string(d)]++
	}
	for i := range dropInCount {
		data := js.ranAs(i)
		if n := seen[string(data)]; n != 1 {
			t.Errorf("job %d (%q) ran %d times, want once", i, data, n)
		}
	}
	// With one worker, every high job runs before every low one.
	lastHigh, firstLow := -1, len(got)
	for pos, d := range got {
		var i int
		fmt.Sscanf(string(d), "job %d", &i)
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

// waitUntil polls cond for up to startTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
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
