package soak

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/server"
	"gearmand/store/bolt"
	"gearmand/store/storetest"
)

// profile is the size of one soak run.
type profile struct {
	name    string
	conns   int // client and worker connections open at once
	workers int // of conns
	jobs    int
	// window bounds the jobs acknowledged but not yet completed: clients
	// wait for room before submitting more.
	window  int
	payload int // bytes per job
	// dropRate is the chance that a worker drops its connection in the
	// middle of a job instead of completing it.
	dropRate float64
	// memCeiling bounds the process's heap and stacks in use, sampled
	// throughout the run.
	memCeiling uint64
	// timeout is a hang guard, not a speed goal.
	timeout time.Duration
}

var (
	shortSoak = profile{name: "short", conns: 500, workers: 50, jobs: 20_000, window: 5_000, payload: 128,
		dropRate: 0.01, memCeiling: 256 << 20, timeout: 3 * time.Minute}
	longSoak = profile{name: "long", conns: 5_000, workers: 500, jobs: 1_000_000, window: 50_000, payload: 128,
		dropRate: 0.01, memCeiling: 2 << 30, timeout: 25 * time.Minute}
)

const function = "soak"

func TestSoak(t *testing.T) {
	p := shortSoak
	if os.Getenv("GEARMAND_SOAK") == "1" {
		p = longSoak
		if raceDetector {
			t.Fatal("GEARMAND_SOAK=1 opens more goroutines than the race detector allows (8,128): run it without -race")
		}
	}
	// Both ends of every connection live in this process, plus the store.
	raiseFileLimit(t, uint64(2*p.conns+256))
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()

	path := filepath.Join(t.TempDir(), "soak.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{
		HandlePrefix: "H:soak",
		JobRetries:   -1,
		Store:        st,
		StoreName:    "bolt",
		Logger:       slog.New(slog.DiscardHandler),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	addr := l.Addr().String()

	mem := startMemorySampler()
	led := newLedger(p)
	start := time.Now()

	workCtx, stopWork := context.WithCancel(ctx)
	var workers sync.WaitGroup
	for i := range p.workers {
		workers.Go(func() { led.runWorker(workCtx, addr, uint64(i)) })
	}
	clients := p.conns - p.workers
	var submitters sync.WaitGroup
	dial := make(chan struct{}, 64) // connect at most this many at once
	for i := range clients {
		submitters.Go(func() { led.runClient(ctx, addr, i, clients, dial) })
	}
	submitters.Wait()
	submitted := time.Since(start)
	if err := led.firstErr(); err != nil {
		t.Fatalf("a client failed: %v", err)
	}
	for led.done.Load() < led.acked.Load() {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d acknowledged jobs completed when the soak timed out", led.done.Load(), led.acked.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	left := queueStatus(t, addr)
	stopWork()
	workers.Wait()
	peak := mem.stop()
	if err := led.firstErr(); err != nil {
		t.Fatalf("a worker failed: %v", err)
	}

	srv.Close()
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	stored := storedJobs(t, path)

	t.Logf("%s soak: %d connections (%d workers), %d jobs acknowledged, %d worker connections dropped mid-job",
		p.name, p.conns, p.workers, led.acked.Load(), led.drops.Load())
	t.Logf("submitted in %v, all completed in %v (%.0f jobs/s); peak heap+stacks in use %d MiB (ceiling %d MiB); %d panics",
		submitted.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(p.jobs)/elapsed.Seconds(),
		peak>>20, p.memCeiling>>20, srv.Panics())

	if got := led.acked.Load(); got != int64(p.jobs) {
		t.Errorf("%d jobs acknowledged, want %d", got, p.jobs)
	}
	if bad := led.notExactlyOnce(); len(bad) > 0 {
		t.Errorf("%d acknowledged jobs did not complete exactly once, e.g. %s", len(bad), strings.Join(bad[:min(len(bad), 5)], ", "))
	}
	if left != "" {
		t.Errorf("the queue still holds jobs: status %q", left)
	}
	if stored != 0 {
		t.Errorf("the store still holds %d jobs after every one completed", stored)
	}
	if peak > p.memCeiling {
		t.Errorf("peak memory in use %d MiB is over the ceiling of %d MiB", peak>>20, p.memCeiling>>20)
	}
	if n := srv.Panics(); n != 0 {
		t.Errorf("the server recovered %d panics", n)
	}
}

// ledger is what the soak knows about its jobs: which the server
// acknowledged and how often each ran to completion. Job n has the unique
// "job-<n>" and a payload that says n, so a worker can tell it was handed
// the job intact.
type ledger struct {
	p         profile
	ackedJobs []atomic.Bool
	runs      []atomic.Int32
	acked     atomic.Int64
	done      atomic.Int64 // jobs that completed at least once
	drops     atomic.Int64
	room      chan struct{} // a token per outstanding job, see profile.window

	mu  sync.Mutex
	err error
}

func newLedger(p profile) *ledger {
	return &ledger{p: p, ackedJobs: make([]atomic.Bool, p.jobs), runs: make([]atomic.Int32, p.jobs), room: make(chan struct{}, p.window)}
}

func (l *ledger) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

func (l *ledger) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func payloadOf(n, size int) []byte {
	b := make([]byte, size)
	copy(b, strconv.Itoa(n)+":")
	return b
}

// runClient connects and submits jobs i, i+stride, ... in the background,
// one at a time, each once there is room in the window.
func (l *ledger) runClient(ctx context.Context, addr string, i, stride int, dial chan struct{}) {
	dial <- struct{}{}
	c, err := client.Dial(ctx, addr)
	<-dial
	if err != nil {
		l.fail(fmt.Errorf("client %d: %w", i, err))
		return
	}
	defer c.Close()
	for n := i; n < l.p.jobs; n += stride {
		select {
		case l.room <- struct{}{}:
		case <-ctx.Done():
			l.fail(fmt.Errorf("client %d: no room in the window before the timeout", i))
			return
		}
		if _, err := c.SubmitBackground(ctx, function, "job-"+strconv.Itoa(n), payloadOf(n, l.p.payload), client.Normal); err != nil {
			l.fail(fmt.Errorf("client %d: submitting job %d: %w", i, n, err))
			<-l.room
			return
		}
		l.ackedJobs[n].Store(true)
		l.acked.Add(1)
	}
}

// runWorker works jobs until ctx ends, on one connection after another:
// now and then it drops its connection in the middle of a job, as a
// crashing worker would, and connects again.
func (l *ledger) runWorker(ctx context.Context, addr string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x50a6))
	for ctx.Err() == nil {
		w, err := client.NewWorker(ctx, addr)
		if err != nil {
			if ctx.Err() == nil {
				l.fail(fmt.Errorf("worker: %w", err))
			}
			return
		}
		w.SetPollInterval(time.Second)
		w.Register(function, func(_ context.Context, job *client.Job) ([]byte, error) {
			n, err := l.check(job)
			if err != nil {
				l.fail(err)
				return nil, err
			}
			if rng.Float64() < l.p.dropRate {
				l.drops.Add(1)
				w.Close() // the server requeues the job
				return nil, errors.New("dropped")
			}
			if l.runs[n].Add(1) == 1 {
				l.done.Add(1)
				<-l.room
			}
			return nil, nil
		})
		err = w.Work(ctx)
		w.Close()
		if err != nil && ctx.Err() == nil && !errors.Is(err, client.ErrClosed) && !errors.Is(err, client.ErrConnectionLost) {
			l.fail(fmt.Errorf("worker: %w", err))
			return
		}
	}
}

// check returns the number of the job a worker was handed, after checking
// its unique and payload agree.
func (l *ledger) check(job *client.Job) (int, error) {
	s, ok := strings.CutPrefix(job.Unique, "job-")
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n < 0 || n >= l.p.jobs {
		return 0, fmt.Errorf("worker was handed job %s with unique %q", job.Handle, job.Unique)
	}
	if want := payloadOf(n, l.p.payload); string(job.Data) != string(want) {
		return 0, fmt.Errorf("job %d (%s) arrived with payload %q", n, job.Handle, job.Data)
	}
	return n, nil
}

// notExactlyOnce lists the acknowledged jobs that did not complete exactly
// once.
func (l *ledger) notExactlyOnce() []string {
	var bad []string
	for n := range l.ackedJobs {
		if r := l.runs[n].Load(); l.ackedJobs[n].Load() && r != 1 {
			bad = append(bad, fmt.Sprintf("job-%d ran %d times", n, r))
		}
	}
	return bad
}

// queueStatus returns the soak function's `status` line when it still
// counts jobs, or "".
func queueStatus(t *testing.T, addr string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Write([]byte("status\n")); err != nil {
		t.Fatal(err)
	}
	var reply []byte
	buf := make([]byte, 4096)
	for !strings.HasSuffix(string(reply), ".\n") {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("reading status: %v (got %q)", err, reply)
		}
		reply = append(reply, buf[:n]...)
	}
	for line := range strings.Lines(string(reply)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if f[0] == function && (len(f) != 4 || f[1] != "0" || f[2] != "0") {
			return strings.TrimSuffix(line, "\n")
		}
	}
	return ""
}

// storedJobs reopens the bolt file and counts the jobs it would replay.
func storedJobs(t *testing.T, path string) int {
	t.Helper()
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return storetest.Count(t, st)
}

// memorySampler records the peak of the heap and stacks in use.
type memorySampler struct {
	peak atomic.Uint64
	quit chan struct{}
	done chan struct{}
}

func startMemorySampler() *memorySampler {
	m := &memorySampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			m.sample()
			select {
			case <-tick.C:
			case <-m.quit:
				return
			}
		}
	}()
	return m
}

func (m *memorySampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if in := ms.HeapInuse + ms.StackInuse; in > m.peak.Load() {
		m.peak.Store(in)
	}
}

// stop ends sampling and returns the peak.
func (m *memorySampler) stop() uint64 {
	close(m.quit)
	<-m.done
	m.sample()
	return m.peak.Load()
}
