package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"gearmand/client"
	"gearmand/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer serves this module's server (memory only) on 127.0.0.1:0
// until the test ends and returns its address.
func startServer(t *testing.T) string {
	t.Helper()
	addr, _ := startClosableServer(t)
	return addr
}

// startClosableServer is startServer that also returns the server, for
// tests that stop it early.
func startClosableServer(t *testing.T) (string, *server.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Config{Logger: slog.New(slog.DiscardHandler)})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String(), s
}

// runBench runs `gearbench run` with args plus --addr and --json, and
// returns the exit status and the one result written.
func runBench(t *testing.T, addr string, args ...string) (int, Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "results.jsonl")
	code := gearbench(append([]string{"run", "--addr", addr, "--json", out, "--progress", "0"}, args...))
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("exit %d and no JSON result: %v", code, err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("%d JSON lines, want 1:\n%s", len(lines), data)
	}
	var r Result
	if err := json.Unmarshal(lines[0], &r); err != nil {
		t.Fatal(err)
	}
	return code, r
}

func TestEveryWorkloadAgainstOurServer(t *testing.T) {
	addr := startServer(t)
	for _, tc := range []struct {
		workload string
		args     []string
		jobs     int
		latency  bool
	}{
		{"submit", nil, 200, true},
		{"drain", nil, 200, false},
		{"roundtrip", nil, 200, true},
		{"storm", []string{"--conns", "3", "--window", "4"}, 24, true},
		{"large", []string{"--payload", "262144"}, 8, true},
		{"mixed", []string{"--workers", "1"}, 300, true},
	} {
		t.Run(tc.workload, func(t *testing.T) {
			args := append([]string{"--workload", tc.workload, "--jobs", strconv.Itoa(tc.jobs), "--side", "go", "--pair", "builtin:builtin", "--round", "3"}, tc.args...)
			code, r := runBench(t, addr, args...)
			if code != 0 || r.Errors != 0 || r.Missing != 0 {
				t.Fatalf("exit %d, errors %d (%s), missing %d; want a clean run", code, r.Errors, r.FirstError, r.Missing)
			}
			if r.Workload != tc.workload || r.Jobs != tc.jobs || r.Side != "go" || r.Pair != "builtin:builtin" || r.Round != 3 {
				t.Errorf("result labels %q jobs=%d side=%q pair=%q round=%d, want %q jobs=%d go builtin:builtin 3",
					r.Workload, r.Jobs, r.Side, r.Pair, r.Round, tc.workload, tc.jobs)
			}
			if r.Seconds <= 0 || r.JobsPerS <= 0 {
				t.Errorf("seconds %v, jobs/s %v; want both positive", r.Seconds, r.JobsPerS)
			}
			if tc.latency != (r.Latency != nil) {
				t.Fatalf("latency %+v, want present: %v", r.Latency, tc.latency)
			}
			if l := r.Latency; l != nil && (l.Count == 0 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max) {
				t.Errorf("latency %+v: want 0 < p50 <= p99 <= p99.9 <= max", *l)
			}
			switch tc.workload {
			case "drain", "large":
				if r.Executions != int64(tc.jobs) {
					t.Errorf("%d executions, want one per job (%d)", r.Executions, tc.jobs)
				}
			case "storm":
				if r.Executions != 2 { // 24 requests in rounds of 3×4
					t.Errorf("%d executions, want 2: one per round of coalesced submits", r.Executions)
				}
			case "mixed":
				for _, p := range priorityNames {
					if r.ByPriority[p].Count != 100 {
						t.Errorf("%s priority: %d samples, want 100", p, r.ByPriority[p].Count)
					}
				}
			}
		})
	}
}

// TestMissingJobsFailTheRun drains while another worker, not gearbench's,
// takes the jobs and drops them: gearbench must count them missing and
// exit 1.
func TestMissingJobsFailTheRun(t *testing.T) {
	addr := startServer(t)
	fn := "dropped-" + strconv.Itoa(os.Getpid())
	var dropped atomic.Int64
	startWorker(t, addr, fn, func() { dropped.Add(1) })

	code, r := runBench(t, addr, "--workload", "drain", "--function", fn, "--jobs", "100",
		"--conns", "1", "--window", "1", "--stall", "200ms")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if r.Missing == 0 || r.Missing != dropped.Load() {
		t.Errorf("missing %d, want the %d jobs the other worker took", r.Missing, dropped.Load())
	}
}

// startWorker runs a worker of fn, other than gearbench's, that calls
// onJob for every job and completes it with an empty result, until the
// test ends.
func startWorker(t *testing.T, addr, fn string, onJob func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := client.NewWorker(ctx, addr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := w.Register(fn, func(context.Context, *client.Job) ([]byte, error) {
		onJob()
		return nil, nil
	}); err != nil {
		cancel()
		t.Fatal(err)
	}
	worked := make(chan struct{})
	go func() { defer close(worked); w.Work(ctx) }()
	t.Cleanup(func() { cancel(); <-worked; w.Close() })
}

// TestServerGoneFailsTheRun: the server stops while gearbench runs; it
// must end with exit 1, not hang.
func TestServerGoneFailsTheRun(t *testing.T) {
	addr, srv := startClosableServer(t)
	fn := "closer-" + strconv.Itoa(os.Getpid())
	startWorker(t, addr, fn, func() { go srv.Close() })

	code, r := runBench(t, addr, "--workload", "drain", "--function", fn, "--jobs", "1000",
		"--conns", "1", "--window", "1", "--stall", "200ms")
	if code != 1 || r.Errors+r.Missing == 0 {
		t.Errorf("exit %d with %d errors and %d missing, want exit 1 and some of either", code, r.Errors, r.Missing)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--workload", "nosuch"},
		{"run", "--jobs", "0"},
		{"run", "extra"},
		{"nosuch"},
		{"report", "-in"},
	} {
		if code := gearbench(args); code != 2 {
			t.Errorf("gearbench %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func TestNoServerFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if code := gearbench([]string{"run", "--addr", addr, "--jobs", "1"}); code != 1 {
		t.Errorf("exit %d against a closed port, want 1", code)
	}
}

// writeResults writes rs as a JSON lines file and returns its path.
func writeResults(t *testing.T, rs ...Result) string {
	t.Helper()
	var b bytes.Buffer
	for _, r := range rs {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	path := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// result makes a submit result; conns 4 are the main rounds, others the
// sweep (round 0).
func result(side string, conns int, jobsPerS, p99 float64) Result {
	round := 0
	if conns == 4 {
		round = 1
	}
	return Result{Workload: "submit", Side: side, Pair: "builtin:builtin", Round: round, Conns: conns, Window: 16, Workers: 4,
		Payload: 64, Jobs: 1000, Seconds: 1000 / jobsPerS, JobsPerS: jobsPerS,
		Latency: &Latency{Count: 1000, P50: p99 / 2, P99: p99, P999: p99 * 2, Max: p99 * 3}}
}

func TestReportMediansAndRatios(t *testing.T) {
	failed := result("c", 4, 1, 1)
	failed.Missing = 1
	rs := []Result{
		result("c", 4, 100, 1000), result("go", 4, 600, 500),
		result("c", 4, 300, 3000), result("go", 4, 400, 100),
		result("c", 4, 200, 2000), result("go", 4, 500, 300),
		failed,
		result("c", 1, 50, 10), result("go", 1, 75, 10),
		result("c", 1, 50, 10), result("go", 1, 75, 10),
		result("c", 1, 50, 10), result("go", 1, 75, 10),
		result("c", 1, 50, 10), result("go", 1, 75, 10),
	}
	bolt := result("go", 4, 100, 1000)
	bolt.Pair = "libsqlite3:bolt"
	rs = append(rs, bolt)
	var out bytes.Buffer
	writeReport(&out, cells(rs))
	for _, want := range []string{
		"| builtin:builtin | submit | 1×16 | 64 B | 4/4 | 50 | 75 | 1.50 |",
		"| builtin:builtin | submit | 4×16 | 64 B | 3/3 (1 failed) | 200 | 500 | 2.50 |",
		"| builtin:builtin | submit | 4×16 | 1 ms | 0.15 ms | 2 ms | 0.3 ms | 4 ms | 0.6 ms |",
		"| bolt | submit | 4×16 | 200 | 100 | 0.50 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "| builtin:builtin | submit | 1×16 | 0.01") {
		t.Errorf("latency table lists the sweep's 1×16 runs, want only the main connection count:\n%s", out.String())
	}
}

func TestPlotWritesPNGs(t *testing.T) {
	in := writeResults(t,
		result("c", 1, 50, 10), result("go", 1, 75, 10),
		result("c", 4, 100, 1000), result("go", 4, 600, 500),
		result("c", 4, 300, 3000), result("go", 4, 400, 100))
	dir := filepath.Join(t.TempDir(), "plots")
	if code := gearbench([]string{"plot", "-in", in, "-out", dir}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, name := range []string{"throughput-builtin-builtin.png", "latency-builtin-builtin.png"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || len(data) < 10000 {
			t.Errorf("%s: %d bytes, not a drawn PNG", name, len(data))
		}
	}
	if code := gearbench([]string{"plot", "-in", writeResults(t, Result{Workload: "submit"}), "-out", dir}); code != 1 {
		t.Errorf("plot of unlabelled results: exit %d, want 1", code)
	}
}
