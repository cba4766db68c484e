package crashtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/store/postgres/pgtest"
)

// outageStore is a networked store whose server TestStoreOutage stops and
// starts again.
type outageStore struct {
	name string
	// setup returns the options selecting a store of the test's own and
	// the functions that stop its server as a crash would and start it
	// again on the same data.
	setup func(t *testing.T) (args []string, stop, start func())
}

var outageStores = []outageStore{
	{"postgres", func(t *testing.T) ([]string, func(), func()) {
		db := pgtest.Server(t)
		if !db.Throwaway() {
			t.Skipf("PostgreSQL comes from %s: the test does not stop a server it did not start", pgtest.EnvURL)
		}
		dsn := db.NewDatabase(t)
		var down atomic.Bool
		t.Cleanup(func() {
			// Whatever happened, the next tests need the server.
			if down.Load() {
				db.Start(t)
			}
		})
		stop := func() { down.Store(true); db.Stop(t) }
		start := func() { db.Start(t); down.Store(false) }
		return []string{"-q", "postgres", "--dsn", dsn, "--store-namespace", namespace(t)}, stop, start
	}},
	{"redis", func(t *testing.T) ([]string, func(), func()) {
		rs := startRedis(t)
		args := []string{"-q", "redis", "--redis-addr", rs.addr, "--store-namespace", namespace(t)}
		return args, rs.kill, rs.start
	}},
}

// outageLoad paces the submissions: the test runs for a few seconds, and
// every acknowledged job is drained at the end.
var outageLoad = load{conns: 3, perConn: 2, maxEach: 20000, rate: 600}

// TestStoreOutage stops the store's server under a stream of background
// submissions and starts it again. While it is down the gearmand process
// must stay up and answer, and submissions must fail with QUEUE_ERROR
// rather than be acknowledged (past replyGrace after it stopped, when a
// reply may still be on its way); once it is back, submissions must succeed
// again within recoveryTimeout. The server is then killed and restarted,
// so the final drain sees only what the store kept: every acknowledged job,
// from before, during and after the outage, must run.
func TestStoreOutage(t *testing.T) {
	const (
		minOutage       = time.Second // at least this long down, and ...
		minFailures     = 10          // ... at least this many refused submissions
		outageTimeout   = 20 * time.Second
		recoveryTimeout = 30 * time.Second
		replyGrace      = 100 * time.Millisecond
	)
	for _, st := range outageStores {
		t.Run(st.name, func(t *testing.T) {
			start := time.Now()
			args, stopStore, startStore := st.setup(t)
			g := newGearmand(t, append(args, writeThrough...)...)
			r := newLedger(t)
			l := g.start()
			o := r.startOutageSubmitting(l, outageLoad)
			defer o.finish(t)

			waitFor(t, l, "the first acknowledgements", 20*time.Second, func() bool { return o.count(outcomeAck) >= 100 })
			o.storeDown.Store(true)
			stopAt := time.Now()
			stopStore()
			stoppedAt := time.Now()
			waitFor(t, l, "submissions to fail while the store is down", outageTimeout, func() bool {
				return time.Since(stoppedAt) >= minOutage && o.countSince(outcomeRefused, stoppedAt) >= minFailures
			})
			startAt := time.Now()
			startStore()
			startedAt := time.Now()
			waitFor(t, l, "submissions to succeed again after the store came back", recoveryTimeout, func() bool {
				return o.countSince(outcomeAck, startedAt) >= 100
			})
			// A reply may still be on its way when the store is gone; past
			// that, no store means no JOB_CREATED.
			if n := o.countBetween(outcomeAck, stoppedAt.Add(replyGrace), startAt); n > 0 {
				t.Errorf("%d submissions were acknowledged more than %v after the store had stopped, before it was started again", n, replyGrace)
			}
			recovered := o.firstSince(outcomeAck, startAt)
			o.finish(t)
			l.kill(t)

			l = g.start()
			r.drain(l, 4, 0)
			t.Logf("life %d: replayed %d, drained", l.n, l.replayed())
			v := r.check(0)

			// Acknowledgements while stopping are commits the server made
			// before it went; the drain above proved every one durable.
			t.Logf("store down %v (stop took %v, start took %v); acknowledged %d before the stop, %d while it stopped, %d while it was down, %d while it started, %d after; refused %d from the stop to the start (%d after)",
				startAt.Sub(stoppedAt).Round(time.Millisecond), stoppedAt.Sub(stopAt).Round(time.Millisecond), startedAt.Sub(startAt).Round(time.Millisecond),
				o.countBetween(outcomeAck, time.Time{}, stopAt), o.countBetween(outcomeAck, stopAt, stoppedAt), o.countBetween(outcomeAck, stoppedAt, startAt),
				o.countBetween(outcomeAck, startAt, startedAt), o.countSince(outcomeAck, startedAt),
				o.countBetween(outcomeRefused, stopAt, startAt), o.countSince(outcomeRefused, startAt))
			t.Logf("recovery: first acknowledgement %v after the store's start began (it took %v), last refusal %v after",
				recovered.Sub(startAt).Round(time.Millisecond), startedAt.Sub(startAt).Round(time.Millisecond), o.lastSince(outcomeRefused, startAt).Round(time.Millisecond))
			t.Logf("first refusal: %v", o.firstRefusal.Load())
			if n := o.refusedThatRan(); n > 0 || v.unackedRan > 0 {
				// Allowed (delivery is at least once), but a client that
				// retries a refused submission runs such a job twice.
				t.Logf("%d jobs ran that were never acknowledged, %d of them refused with QUEUE_ERROR", v.unackedRan, n)
			}
			t.Logf("took %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// waitFor polls cond until it holds, failing the test after timeout or as
// soon as l has exited or stops answering admin commands.
func waitFor(t *testing.T, l *life, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if l.hasExited() {
			t.Fatalf("life %d exited while waiting for %s (%v)\nstderr:\n%s\nlog:\n%s", l.n, what, l.cmd.ProcessState, l.stderr, tail(l.log(), 30))
		}
		if _, err := adminCommand(l.addr, "version"); err != nil {
			t.Fatalf("life %d stopped answering while waiting for %s: %v\nlog:\n%s", l.n, what, err, tail(l.log(), 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("life %d: no %s after %v\nlog:\n%s", l.n, what, timeout, tail(l.log(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type outcome int

const (
	outcomeAck     outcome = iota // JOB_CREATED
	outcomeRefused                // ERROR QUEUE_ERROR while the store was down or coming back
)

// outageSubmitter is startSubmitting for an outage: a refusal does not end
// a goroutine, which goes on submitting until told to stop.
type outageSubmitter struct {
	r         *ledger
	l         *life
	clients   []*client.Client
	storeDown atomic.Bool // set just before the store is stopped: refusals are expected from then on
	stopping  atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{}
	finished  sync.Once

	firstRefusal atomic.Value // the text of the first refusal

	mu struct {
		sync.Mutex
		at      [2][]time.Time // by outcome, when the reply arrived
		refused []string       // uniques refused with QUEUE_ERROR
	}
}

// startOutageSubmitting starts ld against l. Each submission has its own
// deadline, so a server that hangs instead of refusing fails the test.
func (r *ledger) startOutageSubmitting(l *life, ld load) *outageSubmitter {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o := &outageSubmitter{r: r, l: l, cancel: cancel, done: make(chan struct{})}
	for range ld.conns {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := client.Dial(dctx, l.addr)
		dcancel()
		if err != nil {
			o.closeClients()
			cancel()
			r.t.Fatalf("dial %s: %v", l.addr, err)
		}
		o.clients = append(o.clients, c)
	}
	every := time.Duration(ld.conns*ld.perConn) * time.Second / time.Duration(ld.rate)
	var wg sync.WaitGroup
	for _, c := range o.clients {
		conn := r.nextConn
		r.nextConn++
		var n atomic.Int64
		for range ld.perConn {
			wg.Go(func() {
				next := time.Now()
				for range ld.maxEach {
					if o.stopping.Load() {
						return
					}
					next = next.Add(every)
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					unique := fmt.Sprintf("o%d-%d", conn, n.Add(1))
					r.recordSent(unique)
					sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
					h, err := c.SubmitBackground(sctx, function, unique, payload(unique), client.Normal)
					scancel()
					if err == nil {
						r.recordAck(unique, h, l)
						o.note(outcomeAck)
						continue
					}
					var se *client.ServerError
					if errors.As(err, &se) && se.Code == "QUEUE_ERROR" && o.storeDown.Load() {
						o.firstRefusal.CompareAndSwap(nil, se.Error())
						o.note(outcomeRefused)
						o.mu.Lock()
						o.mu.refused = append(o.mu.refused, unique)
						o.mu.Unlock()
						continue
					}
					if !o.stopping.Load() {
						r.recordSubmitErr(unique, err)
					}
					return
				}
			})
		}
	}
	go func() {
		wg.Wait()
		close(o.done)
	}()
	return o
}

// refusedThatRan counts the refused submissions that ran all the same:
// the store kept them though the server answered QUEUE_ERROR.
func (o *outageSubmitter) refusedThatRan() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	n := 0
	for _, u := range o.mu.refused {
		if o.r.mu.runs[u] > 0 {
			n++
		}
	}
	return n
}

func (o *outageSubmitter) note(what outcome) {
	now := time.Now()
	o.mu.Lock()
	o.mu.at[what] = append(o.mu.at[what], now)
	o.mu.Unlock()
}

func (o *outageSubmitter) count(what outcome) int {
	return o.countBetween(what, time.Time{}, time.Now().Add(time.Hour))
}

func (o *outageSubmitter) countSince(what outcome, since time.Time) int {
	return o.countBetween(what, since, time.Now().Add(time.Hour))
}

// countBetween counts the replies of a kind that arrived in [from, to).
func (o *outageSubmitter) countBetween(what outcome, from, to time.Time) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, at := range o.mu.at[what] {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// firstSince returns when the first reply of a kind arrived at or after
// since; the zero time if none did.
func (o *outageSubmitter) firstSince(what outcome, since time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first time.Time
	for _, at := range o.mu.at[what] {
		if !at.Before(since) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

// lastSince returns how long after since the last reply of a kind
// arrived, or zero if none did.
func (o *outageSubmitter) lastSince(what outcome, since time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	var last time.Duration
	for _, at := range o.mu.at[what] {
		last = max(last, at.Sub(since))
	}
	return last
}

// finish stops the submitters, waits for them and closes the clients; a
// second call does nothing.
func (o *outageSubmitter) finish(t *testing.T) {
	t.Helper()
	o.finished.Do(func() {
		o.stopping.Store(true)
		defer o.closeClients()
		defer o.cancel()
		select {
		case <-o.done:
		case <-time.After(30 * time.Second):
			o.cancel()
			<-o.done
			t.Errorf("life %d: submitters still busy 30s after being told to stop; the end of its log:\n%s", o.l.n, tail(o.l.log(), 30))
		}
	})
}

func (o *outageSubmitter) closeClients() {
	for _, c := range o.clients {
		c.Close()
	}
}
