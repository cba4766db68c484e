// Command gearbench puts load on any Gearman server and reports throughput
// and latency. It uses package client, so C gearmand and ours are measured
// with the same load generator.
//
//	gearbench --addr 127.0.0.1:4730 --workload submit --jobs 100000 --conns 4 --window 32
//
// Workloads:
//
//	submit     background submits from --conns connections, --window in flight on each
//	drain      --jobs background jobs queued first (not timed), then --workers drain them
//	roundtrip  foreground jobs from --conns clients (--window in flight each) run by --workers
//
// It prints one line: workload, jobs, seconds, jobs/s, latency p50/p99/p99.9
// (per request for submit and roundtrip; none for drain) and errors. It
// exits 1 when any job failed or went missing.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	flag "github.com/spf13/pflag"

	"gearmand/client"
)

type options struct {
	addr     string
	workload string
	jobs     int
	conns    int
	window   int
	workers  int
	payload  int
	timeout  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:4730", "server address host:port")
	flag.StringVar(&o.workload, "workload", "submit", "submit, drain or roundtrip")
	flag.IntVar(&o.jobs, "jobs", 50000, "jobs to run")
	flag.IntVar(&o.conns, "conns", 4, "client connections")
	flag.IntVar(&o.window, "window", 16, "requests in flight per client connection")
	flag.IntVar(&o.workers, "workers", 4, "worker connections (drain, roundtrip)")
	flag.IntVar(&o.payload, "payload", 64, "payload bytes per job")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "gearbench: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if o.jobs <= 0 || o.conns <= 0 || o.window <= 0 || o.workers <= 0 || o.payload < 0 {
		fmt.Fprintln(os.Stderr, "gearbench: --jobs, --conns, --window and --workers must be positive")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	r, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gearbench:", err)
		os.Exit(1)
	}
	fmt.Println(r)
	if r.errors > 0 || r.missing > 0 {
		os.Exit(1)
	}
}

// result is one run's measurements.
type result struct {
	workload string
	jobs     int
	elapsed  time.Duration
	latency  []time.Duration
	errors   int64
	missing  int64
}

func (r result) String() string {
	s := fmt.Sprintf("%-10s jobs=%d seconds=%.3f jobs/s=%.0f", r.workload, r.jobs, r.elapsed.Seconds(), float64(r.jobs)/r.elapsed.Seconds())
	if len(r.latency) > 0 {
		slices.Sort(r.latency)
		s += fmt.Sprintf(" p50=%v p99=%v p99.9=%v", pct(r.latency, 50), pct(r.latency, 99), pct(r.latency, 99.9))
	}
	return s + fmt.Sprintf(" errors=%d missing=%d", r.errors, r.missing)
}

func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i].Round(time.Microsecond)
}

func run(ctx context.Context, o options) (result, error) {
	fn := "gearbench-" + strconv.Itoa(os.Getpid()) + "-" + o.workload
	data := make([]byte, o.payload)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	switch o.workload {
	case "submit":
		return submit(ctx, o, fn, data)
	case "drain":
		if _, err := submit(ctx, o, fn, data); err != nil {
			return result{}, err
		}
		return drain(ctx, o, fn)
	case "roundtrip":
		return roundTrip(ctx, o, fn, data)
	}
	return result{}, fmt.Errorf("unknown workload %q (want submit, drain or roundtrip)", o.workload)
}

// forEach runs do for job numbers 0..jobs-1 on conns × window goroutines,
// each connection shared by its window, and collects latencies.
func forEach(ctx context.Context, o options, do func(c *client.Client, n int) error) (result, error) {
	clients := make([]*client.Client, o.conns)
	for i := range clients {
		c, err := client.Dial(ctx, o.addr)
		if err != nil {
			return result{}, err
		}
		defer c.Close()
		clients[i] = c
	}
	var next, failed atomic.Int64
	lat := make([][]time.Duration, o.conns*o.window)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for g := range lat {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[g%o.conns]
			for {
				n := int(next.Add(1)) - 1
				if n >= o.jobs {
					return
				}
				t0 := time.Now()
				if err := do(c, n); err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
					if ctx.Err() != nil {
						return
					}
					continue
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	r := result{jobs: o.jobs, elapsed: time.Since(start), errors: failed.Load()}
	for _, l := range lat {
		r.latency = append(r.latency, l...)
	}
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "gearbench: first error:", firstErr)
	}
	return r, nil
}

func submit(ctx context.Context, o options, fn string, data []byte) (result, error) {
	r, err := forEach(ctx, o, func(c *client.Client, n int) error {
		_, err := c.SubmitBackground(ctx, fn, strconv.Itoa(n), data, client.Normal)
		return err
	})
	r.workload = "submit"
	return r, err
}

// drain starts the workers and times until they have run o.jobs jobs.
func drain(ctx context.Context, o options, fn string) (result, error) {
	var done atomic.Int64
	all := make(chan struct{})
	start := time.Now()
	stop, err := startWorkers(ctx, o, fn, func() {
		if done.Add(1) == int64(o.jobs) {
			close(all)
		}
	})
	if err != nil {
		return result{}, err
	}
	defer stop()
	r := result{workload: "drain", jobs: o.jobs}
	select {
	case <-all:
	case <-ctx.Done():
		r.missing = int64(o.jobs) - done.Load()
	}
	r.elapsed = time.Since(start)
	return r, nil
}

func roundTrip(ctx context.Context, o options, fn string, data []byte) (result, error) {
	stop, err := startWorkers(ctx, o, fn, func() {})
	if err != nil {
		return result{}, err
	}
	defer stop()
	r, err := forEach(ctx, o, func(c *client.Client, n int) error {
		out, err := c.Call(ctx, fn, "", data, client.Normal)
		if err == nil && len(out) != len(data) {
			err = errors.New("result of the wrong size")
		}
		return err
	})
	r.workload = "roundtrip"
	return r, err
}

// startWorkers runs o.workers workers for fn that echo the payload and call
// ran after each job. stop ends them.
func startWorkers(ctx context.Context, o options, fn string, ran func()) (stop func(), err error) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() { cancel(); wg.Wait() }
	for range o.workers {
		w, err := client.NewWorker(ctx, o.addr)
		if err != nil {
			stop()
			return nil, err
		}
		if err := w.Register(fn, func(_ context.Context, j *client.Job) ([]byte, error) {
			ran()
			return j.Data, nil
		}); err != nil {
			stop()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			w.Work(wctx)
		}()
	}
	return stop, nil
}
