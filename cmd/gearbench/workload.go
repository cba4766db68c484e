package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gearmand/client"
)

// options configure one workload run (the flags of `gearbench run`).
type options struct {
	addr     string
	workload string
	function string
	jobs     int
	conns    int
	window   int
	workers  int
	payload  int
	timeout  time.Duration
	progress time.Duration
	stall    time.Duration
	jsonPath string
	side     string
	pair     string
	round    int
}

// workloads maps each workload name to its implementation. Each fills in
// the measurements of r (the caller fills in the labels) and returns an
// error when it could not run at all; failed requests go to b.errs.
var workloads = map[string]func(ctx context.Context, b *bench, r *Result) error{
	"submit":    submitWorkload,
	"drain":     drainWorkload,
	"roundtrip": roundTripWorkload,
	"storm":     stormWorkload,
	"large":     largeWorkload,
	"mixed":     mixedWorkload,
}

// workloadNames lists the workloads in the order the help text gives them.
var workloadNames = []string{"submit", "drain", "roundtrip", "storm", "large", "mixed"}

// priorityNames and priorities index the latency classes of mixed.
var (
	priorityNames = []string{"high", "normal", "low"}
	priorities    = []client.Priority{client.High, client.Normal, client.Low}
)

// bench is the state shared by the parts of one workload run.
type bench struct {
	o      options
	fn     string // function name the jobs are submitted under
	prefix string // unique prefix; job n has unique prefix+n
	data   []byte
	errs   tally
	done   atomic.Int64 // requests or jobs finished, for progress lines
}

// run runs o.workload once against o.addr and returns its result.
func run(ctx context.Context, o options) (*Result, error) {
	w, ok := workloads[o.workload]
	if !ok {
		return nil, fmt.Errorf("unknown workload %q (want one of %s)", o.workload, strings.Join(workloadNames, ", "))
	}
	stamp := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b := &bench{o: o, fn: o.function, prefix: "gb-" + stamp + "-"}
	if b.fn == "" {
		b.fn = "gearbench-" + o.workload + "-" + stamp
	}
	b.data = make([]byte, o.payload)
	for i := range b.data {
		b.data[i] = byte('a' + i%26)
	}
	r := &Result{
		Time: time.Now().UTC(), Workload: o.workload, Side: o.side, Pair: o.pair, Round: o.round,
		Addr: o.addr, Conns: o.conns, Window: o.window, Workers: o.workers, Payload: o.payload,
	}
	// Fail fast on a server that is not there, rather than per request.
	c, err := client.Dial(ctx, o.addr)
	if err != nil {
		return nil, err
	}
	c.Close()
	if err := w(ctx, b, r); err != nil {
		b.errs.add(err)
	}
	if r.Seconds > 0 {
		r.JobsPerS = float64(r.Jobs) / r.Seconds
		r.BytesPerS = r.JobsPerS * float64(o.payload)
	}
	r.Errors += b.errs.n.Load()
	if first := b.errs.firstError(); first != nil {
		r.FirstError = first.Error()
	}
	return r, nil
}

// tally counts errors and keeps the first.
type tally struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (t *tally) add(err error) {
	t.n.Add(1)
	t.mu.Lock()
	if t.first == nil {
		t.first = err
	}
	t.mu.Unlock()
}

func (t *tally) firstError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.first
}

// showProgress prints a line on stderr every b.o.progress (none when it is
// zero) with how many of total requests or jobs are done, until stop is
// called.
func (b *bench) showProgress(phase string, total int) (stop func()) {
	if b.o.progress <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(b.o.progress)
		defer t.Stop()
		last, lastAt := b.done.Load(), time.Now()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				n := b.done.Load()
				fmt.Fprintf(os.Stderr, "gearbench: %s %s %d/%d (%.0f%%) %.0f/s errors=%d\n", b.o.workload, phase,
					n, total, 100*float64(n)/float64(total), float64(n-last)/now.Sub(lastAt).Seconds(), b.errs.n.Load())
				last, lastAt = n, now
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// forEach runs do for request numbers 0..jobs-1 on conns×window
// goroutines, goroutine g using connection g%conns, and records the latency
// of each successful request in hists[class], class being what do returns
// (0 when there is one class). It returns the time taken and how many
// requests were started before ctx ended. Errors go to b.errs.
func (b *bench) forEach(ctx context.Context, phase string, jobs, classes int, do func(c *client.Client, n int) (int, error)) (hists []histogram, elapsed time.Duration, started int) {
	clients := make([]*client.Client, b.o.conns)
	for i := range clients {
		c, err := client.Dial(ctx, b.o.addr)
		if err != nil {
			b.errs.add(err)
			return make([]histogram, classes), 0, 0
		}
		defer c.Close()
		clients[i] = c
	}
	b.done.Store(0)
	stop := b.showProgress(phase, jobs)
	defer stop()
	var next atomic.Int64
	perG := make([][]histogram, b.o.conns*b.o.window)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range perG {
		perG[g] = make([]histogram, classes)
		wg.Go(func() {
			c := clients[g%len(clients)]
			for ctx.Err() == nil {
				n := int(next.Add(1)) - 1
				if n >= jobs {
					return
				}
				t0 := time.Now()
				class, err := do(c, n)
				b.done.Add(1)
				if err != nil {
					b.errs.add(fmt.Errorf("request %d: %w", n, err))
					continue
				}
				perG[g][class].record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed = time.Since(start)
	hists = make([]histogram, classes)
	for _, hs := range perG {
		for i := range hs {
			hists[i].merge(&hs[i])
		}
	}
	return hists, elapsed, min(int(next.Load()), jobs)
}

// startWorkers runs b.o.workers workers for b.fn with handler h until stop.
func (b *bench) startWorkers(ctx context.Context, h client.Handler) (stop func(), err error) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }
	for range b.o.workers {
		w, err := client.NewWorker(ctx, b.o.addr)
		if err != nil {
			stop()
			return nil, err
		}
		if err := w.Register(b.fn, h); err != nil {
			w.Close()
			stop()
			return nil, err
		}
		wg.Go(func() {
			defer w.Close()
			if err := w.Work(wctx); err != nil && wctx.Err() == nil {
				b.errs.add(fmt.Errorf("worker: %w", err))
			}
		})
	}
	return stop, nil
}

// echo is the handler of the foreground workloads: it returns the payload.
func echo(_ context.Context, j *client.Job) ([]byte, error) { return j.Data, nil }

// A ledger follows background jobs by unique: it learns which job numbers
// the server acknowledged and which a worker ran, so that a drain can prove
// that every acknowledged job came out.
type ledger struct {
	b        *bench
	state    []atomic.Uint32 // acked and ran bits per job number
	acked    atomic.Int64
	complete atomic.Int64 // jobs both acknowledged and run
	runs     atomic.Int64 // every run, duplicates included
	// countRuns makes each first run of a job count as progress (when the
	// submits are not what is being timed).
	countRuns bool
}

const (
	ackedBit = 1 << iota
	ranBit
)

func newLedger(b *bench, jobs int) *ledger {
	return &ledger{b: b, state: make([]atomic.Uint32, jobs)}
}

// mark sets bit on job n and counts the job complete when that made both
// bits set; the Or makes exactly one of the two markers count it.
func (l *ledger) mark(n int, bit uint32) bool {
	old := l.state[n].Or(bit)
	if old&bit == 0 && old|bit == ackedBit|ranBit {
		l.complete.Add(1)
	}
	return old&bit == 0
}

// submit submits background job n and marks it acknowledged.
func (l *ledger) submit(ctx context.Context, c *client.Client, n int) error {
	if _, err := c.SubmitBackground(ctx, l.b.fn, l.b.prefix+strconv.Itoa(n), l.b.data, client.Normal); err != nil {
		return err
	}
	l.acked.Add(1)
	l.mark(n, ackedBit)
	return nil
}

// submitAll submits jobs 0..len-1 from forEach's goroutines.
func (l *ledger) submitAll(ctx context.Context, phase string) (hists []histogram, elapsed time.Duration, started int) {
	return l.b.forEach(ctx, phase, len(l.state), 1, func(c *client.Client, n int) (int, error) {
		return 0, l.submit(ctx, c, n)
	})
}

// run is the workers' handler: it checks the job and marks it run.
func (l *ledger) run(_ context.Context, j *client.Job) ([]byte, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(j.Unique, l.b.prefix))
	if !strings.HasPrefix(j.Unique, l.b.prefix) || err != nil || n < 0 || n >= len(l.state) {
		l.b.errs.add(fmt.Errorf("a worker got a job with unique %q, not one of ours", j.Unique))
		return nil, nil
	}
	if !bytes.Equal(j.Data, l.b.data) {
		l.b.errs.add(fmt.Errorf("job %d: the worker got %d bytes, want the %d submitted", n, len(j.Data), len(l.b.data)))
	}
	l.runs.Add(1)
	if l.mark(n, ranBit) && l.countRuns {
		l.b.done.Add(1)
	}
	return nil, nil
}

// await waits until every acknowledged job has run, ctx ends, or no job has
// run for b.o.stall, and returns how many acknowledged jobs did not run.
// It polls: the jobs arrive on many worker goroutines and one counter read
// every few milliseconds costs them nothing.
func (l *ledger) await(ctx context.Context) (missing int64) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	lastRuns, lastAt := l.runs.Load(), time.Now()
	for l.complete.Load() < l.acked.Load() {
		select {
		case <-ctx.Done():
			return l.acked.Load() - l.complete.Load()
		case now := <-t.C:
			if n := l.runs.Load(); n != lastRuns {
				lastRuns, lastAt = n, now
			} else if now.Sub(lastAt) >= l.b.o.stall {
				return l.acked.Load() - l.complete.Load()
			}
		}
	}
	return 0
}

// finish records what the ledger saw in r.
func (l *ledger) finish(r *Result, missing int64) {
	r.Missing += missing
	r.Executions = l.runs.Load()
	r.Duplicates = l.runs.Load() - l.complete.Load()
	for n := range l.state {
		if st := l.state[n].Load(); st&ranBit != 0 && st&ackedBit == 0 {
			r.Duplicates-- // ran, but its submit failed: not a duplicate
		}
	}
}

// requests records a forEach run of jobs requests in r.
func (r *Result) requests(jobs int, elapsed time.Duration, started int, h *histogram) {
	r.Jobs, r.Seconds = jobs, elapsed.Seconds()
	r.Missing += int64(jobs - started)
	lat := summarize(h)
	r.Latency = &lat
}

// submitWorkload: background submits, timed from the first to the last
// JOB_CREATED. The jobs stay queued on the server.
func submitWorkload(ctx context.Context, b *bench, r *Result) error {
	l := newLedger(b, b.o.jobs)
	hists, elapsed, started := l.submitAll(ctx, "submit")
	r.requests(b.o.jobs, elapsed, started, &hists[0])
	return nil
}

// drainWorkload: queue the jobs first (not timed), then time the workers
// until every acknowledged job has run.
func drainWorkload(ctx context.Context, b *bench, r *Result) error {
	l := newLedger(b, b.o.jobs)
	_, _, started := l.submitAll(ctx, "queue")
	r.Jobs = b.o.jobs
	r.Missing = int64(b.o.jobs - started)
	b.done.Store(0)
	l.countRuns = true
	stopProgress := b.showProgress("drain", int(l.acked.Load()))
	defer stopProgress()
	start := time.Now()
	stop, err := b.startWorkers(ctx, l.run)
	if err != nil {
		return err
	}
	defer stop()
	missing := l.await(ctx)
	r.Seconds = time.Since(start).Seconds()
	l.finish(r, missing)
	return nil
}

// largeWorkload: background jobs with large payloads (--payload, 1 MiB by
// default), submitted while the workers drain them; timed until every
// acknowledged job has run. Latency is the submit's.
func largeWorkload(ctx context.Context, b *bench, r *Result) error {
	l := newLedger(b, b.o.jobs)
	start := time.Now()
	stop, err := b.startWorkers(ctx, l.run)
	if err != nil {
		return err
	}
	defer stop()
	hists, _, started := l.submitAll(ctx, "submit")
	missing := l.await(ctx)
	r.requests(b.o.jobs, time.Since(start), started, &hists[0])
	l.finish(r, missing)
	return nil
}

// roundTripWorkload: foreground jobs, each waited for, run by echo workers.
func roundTripWorkload(ctx context.Context, b *bench, r *Result) error {
	stop, err := b.startWorkers(ctx, echo)
	if err != nil {
		return err
	}
	defer stop()
	hists, elapsed, started := b.forEach(ctx, "call", b.o.jobs, 1, func(c *client.Client, _ int) (int, error) {
		return 0, b.call(ctx, c, client.Normal)
	})
	r.requests(b.o.jobs, elapsed, started, &hists[0])
	return nil
}

// call runs one foreground echo job and checks its result.
func (b *bench) call(ctx context.Context, c *client.Client, pri client.Priority) error {
	out, err := c.Call(ctx, b.fn, "", b.data, pri)
	if err == nil && !bytes.Equal(out, b.data) {
		err = fmt.Errorf("result of %d bytes, want the %d sent", len(out), len(b.data))
	}
	return err
}

// mixedWorkload: foreground jobs cycling through high, normal and low
// priority, with more in flight than workers so that a queue forms. It
// reports latency per priority and counts an error when high-priority jobs
// did not finish sooner on average than low-priority ones.
func mixedWorkload(ctx context.Context, b *bench, r *Result) error {
	stop, err := b.startWorkers(ctx, echo)
	if err != nil {
		return err
	}
	defer stop()
	hists, elapsed, started := b.forEach(ctx, "call", b.o.jobs, len(priorities), func(c *client.Client, n int) (int, error) {
		class := n % len(priorities)
		return class, b.call(ctx, c, priorities[class])
	})
	var all histogram
	r.ByPriority = map[string]Latency{}
	for i := range hists {
		all.merge(&hists[i])
		r.ByPriority[priorityNames[i]] = summarize(&hists[i])
	}
	r.requests(b.o.jobs, elapsed, started, &all)
	high, low := hists[0].mean(), hists[len(hists)-1].mean()
	if b.o.conns*b.o.window >= 2*b.o.workers && high > low {
		b.errs.add(fmt.Errorf("priority inversion: high-priority jobs took %v on average, low-priority %v", high, low))
	}
	return nil
}

// stormWorkload: rounds in which every one of conns×window goroutines
// submits a foreground job with the same unique at once. The worker holds
// the job until all of them have their JOB_CREATED, so a coalescing server
// runs it once per round and every submitter must get that one result.
func stormWorkload(ctx context.Context, b *bench, r *Result) error {
	group := b.o.conns * b.o.window
	rounds := (b.o.jobs + group - 1) / group
	type round struct {
		pending atomic.Int64  // submitters still without a Task
		all     chan struct{} // closed when every submitter has a Task
	}
	rs := make([]*round, rounds)
	for i := range rs {
		rs[i] = &round{all: make(chan struct{})}
		rs[i].pending.Store(int64(group))
	}
	var executions atomic.Int64
	stop, err := b.startWorkers(ctx, func(ctx context.Context, j *client.Job) ([]byte, error) {
		i, err := strconv.Atoi(strings.TrimPrefix(j.Unique, b.prefix))
		if err != nil || i < 0 || i >= rounds {
			return nil, fmt.Errorf("unknown unique %q", j.Unique)
		}
		executions.Add(1)
		select {
		case <-rs[i].all:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte(j.Unique), nil
	})
	if err != nil {
		return err
	}
	defer stop()
	// forEach hands out request numbers in order, so request n belongs to
	// round n/group and each round's group requests run at once.
	hists, elapsed, started := b.forEach(ctx, "submit", rounds*group, 1, func(c *client.Client, n int) (int, error) {
		rd := rs[n/group]
		unique := b.prefix + strconv.Itoa(n/group)
		task, err := c.Submit(ctx, b.fn, unique, b.data, client.Normal)
		if rd.pending.Add(-1) == 0 {
			close(rd.all)
		}
		if err != nil {
			return 0, err
		}
		res, err := task.Wait(ctx)
		if err == nil && string(res.Data) != unique {
			err = fmt.Errorf("got result %q, want %q", res.Data, unique)
		}
		return 0, err
	})
	r.requests(rounds*group, elapsed, started, &hists[0])
	r.Executions = executions.Load()
	if r.Executions > int64(rounds) {
		b.errs.add(fmt.Errorf("%d submitters of one unique per round were not coalesced: %d executions for %d rounds", group, r.Executions, rounds))
	}
	return nil
}
