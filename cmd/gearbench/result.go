package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// A Result is one workload run, as printed and as written to the JSON lines
// file (one object per line) that `gearbench report` and `gearbench plot`
// read. Latencies are in microseconds.
type Result struct {
	Time     time.Time `json:"time"`
	Workload string    `json:"workload"`
	// Side, Pair and Round are labels given on the command line (--side,
	// --pair, --round) so that a comparison can group runs: Side names the
	// server ("c" or "go"), Pair the queue pairing ("libsqlite3:bolt").
	Side  string `json:"side,omitempty"`
	Pair  string `json:"pair,omitempty"`
	Round int    `json:"round,omitempty"`

	Addr    string `json:"addr"`
	Conns   int    `json:"conns"`
	Window  int    `json:"window"`
	Workers int    `json:"workers"`
	Payload int    `json:"payload"`

	// Jobs is the number of requests the workload made (for storm, every
	// submit of the shared unique counts).
	Jobs      int     `json:"jobs"`
	Seconds   float64 `json:"seconds"`
	JobsPerS  float64 `json:"jobs_per_s"`
	BytesPerS float64 `json:"bytes_per_s"`
	// Latency is per request: submit to JOB_CREATED for background
	// submits, submit to result for foreground jobs. Absent for drain.
	Latency *Latency `json:"latency,omitempty"`
	// ByPriority splits Latency by job priority (mixed).
	ByPriority map[string]Latency `json:"by_priority,omitempty"`

	// Errors counts failed requests and wrong results; Missing counts jobs
	// that were acknowledged but never reached a worker (or were never
	// attempted before the deadline); Duplicates counts extra runs of a
	// job, which at-least-once delivery allows. Executions is how many
	// times workers ran a job (storm: once per round when the server
	// coalesces).
	Errors     int64  `json:"errors"`
	Missing    int64  `json:"missing"`
	Duplicates int64  `json:"duplicates,omitempty"`
	Executions int64  `json:"executions,omitempty"`
	FirstError string `json:"first_error,omitempty"`
}

// Latency is a summary of a histogram, in microseconds.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

func summarize(h *histogram) Latency {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return Latency{
		Count: h.n,
		Mean:  us(h.mean()),
		P50:   us(h.percentile(50)),
		P99:   us(h.percentile(99)),
		P999:  us(h.percentile(99.9)),
		Max:   us(h.max),
	}
}

// Failed reports whether the run should make gearbench exit non-zero.
func (r *Result) Failed() bool { return r.Errors > 0 || r.Missing > 0 }

// String is the one-line human summary.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s jobs=%d seconds=%.3f jobs/s=%.0f", r.Workload, r.Jobs, r.Seconds, r.JobsPerS)
	if r.Payload >= 1<<20 {
		fmt.Fprintf(&b, " MB/s=%.1f", r.BytesPerS/1e6)
	}
	if r.Latency != nil {
		fmt.Fprintf(&b, " p50=%s p99=%s p99.9=%s", fmtUS(r.Latency.P50), fmtUS(r.Latency.P99), fmtUS(r.Latency.P999))
	}
	for _, p := range priorityNames {
		if l, ok := r.ByPriority[p]; ok {
			fmt.Fprintf(&b, " %s:p50=%s,p99=%s", p, fmtUS(l.P50), fmtUS(l.P99))
		}
	}
	fmt.Fprintf(&b, " errors=%d missing=%d", r.Errors, r.Missing)
	if r.Duplicates > 0 {
		fmt.Fprintf(&b, " duplicates=%d", r.Duplicates)
	}
	if r.Executions > 0 {
		fmt.Fprintf(&b, " executions=%d", r.Executions)
	}
	return b.String()
}

func fmtUS(us float64) string {
	return time.Duration(us * float64(time.Microsecond)).Round(time.Microsecond).String()
}

// appendJSON appends r as one line to the file at path, creating it.
func appendJSON(path string, r *Result) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
