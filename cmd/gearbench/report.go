package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// readResults reads a JSON lines file written by `gearbench run --json`.
func readResults(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%s: no results", path)
	}
	return rs, nil
}

// A cell is every run of one workload configuration on both servers.
type cell struct {
	Pair, Workload               string
	Conns, Window, Workers, Size int
	C, Go                        []Result // successful runs only
	Failed                       int      // runs that had errors or missing jobs
}

type cellKey struct {
	pair, workload               string
	conns, window, workers, size int
}

// cells groups results by pair and workload configuration, in the order in
// which pairs and workloads first appear, then by connection count. Runs
// without a side label of "c" or "go" are ignored.
func cells(rs []Result) []*cell {
	byKey := map[cellKey]*cell{}
	pairOrder, workloadOrder := map[string]int{}, map[string]int{}
	var out []*cell
	for _, r := range rs {
		if r.Side != "c" && r.Side != "go" {
			continue
		}
		k := cellKey{r.Pair, r.Workload, r.Conns, r.Window, r.Workers, r.Payload}
		c := byKey[k]
		if c == nil {
			c = &cell{Pair: r.Pair, Workload: r.Workload, Conns: r.Conns, Window: r.Window, Workers: r.Workers, Size: r.Payload}
			byKey[k] = c
			out = append(out, c)
			if _, ok := pairOrder[r.Pair]; !ok {
				pairOrder[r.Pair] = len(pairOrder)
			}
			if _, ok := workloadOrder[r.Workload]; !ok {
				workloadOrder[r.Workload] = len(workloadOrder)
			}
		}
		switch {
		case r.Failed():
			c.Failed++
		case r.Side == "c":
			c.C = append(c.C, r)
		default:
			c.Go = append(c.Go, r)
		}
	}
	slices.SortStableFunc(out, func(a, b *cell) int {
		return cmp.Or(cmp.Compare(pairOrder[a.Pair], pairOrder[b.Pair]),
			cmp.Compare(workloadOrder[a.Workload], workloadOrder[b.Workload]),
			cmp.Compare(a.Conns*a.Window, b.Conns*b.Window), cmp.Compare(a.Conns, b.Conns))
	})
	return out
}

// median returns the median of f over rs (the mean of the middle two for
// an even count), or 0 for none.
func median(rs []Result, f func(Result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func jobsPerS(r Result) float64 { return r.JobsPerS }

// latencyOf returns a function picking one latency figure of a result.
func latencyOf(pick func(Latency) float64) func(Result) float64 {
	return func(r Result) float64 {
		if r.Latency == nil {
			return 0
		}
		return pick(*r.Latency)
	}
}

var (
	p50  = func(l Latency) float64 { return l.P50 }
	p99  = func(l Latency) float64 { return l.P99 }
	p999 = func(l Latency) float64 { return l.P999 }
)

// mainConns returns, for each pair and workload, the connection count of
// the comparison's rounds (runs labelled with a round number of 1 or more)
// as opposed to its sweep (round 0); without round labels, the count run
// most often.
func mainConns(cs []*cell) map[[2]string]int {
	score := func(c *cell) int {
		n := c.Failed
		for _, r := range slices.Concat(c.C, c.Go) {
			n++
			if r.Round > 0 {
				n += 1000
			}
		}
		return n
	}
	best := map[[2]string]*cell{}
	for _, c := range cs {
		k := [2]string{c.Pair, c.Workload}
		if b := best[k]; b == nil || score(c) > score(b) {
			best[k] = c
		}
	}
	out := map[[2]string]int{}
	for k, c := range best {
		out[k] = c.Conns
	}
	return out
}

// parseResults parses the flags of report and plot, fs's own and -in, and
// reads the results file named by -in.
func parseResults(fs *flag.FlagSet, args []string) ([]Result, error) {
	in := fs.String("in", "results.jsonl", "JSON lines file written by gearbench run --json")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return readResults(*in)
}

func reportCommand(args []string) error {
	rs, err := parseResults(flag.NewFlagSet("gearbench report", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	writeReport(os.Stdout, cells(rs))
	return nil
}

// writeReport writes the Markdown tables: throughput medians and ratios for
// every configuration, then latency percentiles at each pair's main
// connection count, then per-priority latency of mixed runs.
func writeReport(w io.Writer, cs []*cell) {
	fmt.Fprintln(w, "| C queue : our store | workload | conns×window | payload | runs C/ours | C jobs/s | ours jobs/s | ours/C |")
	fmt.Fprintln(w, "|---|---|---|---:|---|---:|---:|---:|")
	for _, c := range cs {
		cj, gj := median(c.C, jobsPerS), median(c.Go, jobsPerS)
		runs := fmt.Sprintf("%d/%d", len(c.C), len(c.Go))
		if c.Failed > 0 {
			runs += fmt.Sprintf(" (%d failed)", c.Failed)
		}
		fmt.Fprintf(w, "| %s | %s | %d×%d | %s | %s | %.0f | %.0f | %s |\n",
			c.Pair, c.Workload, c.Conns, c.Window, bytesLabel(c.Size), runs, cj, gj, ratio(gj, cj))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| C queue : our store | workload | conns×window | C p50 | ours p50 | C p99 | ours p99 | C p99.9 | ours p99.9 |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|")
	main := mainConns(cs)
	for _, c := range cs {
		if main[[2]string{c.Pair, c.Workload}] != c.Conns || !hasLatency(c) {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d×%d |", c.Pair, c.Workload, c.Conns, c.Window)
		for _, pick := range []func(Latency) float64{p50, p99, p999} {
			fmt.Fprintf(w, " %s | %s |", fmtMS(median(c.C, latencyOf(pick))), fmtMS(median(c.Go, latencyOf(pick))))
		}
		fmt.Fprintln(w)
	}

	writeAgainstMemory(w, cs)

	var mixed []*cell
	for _, c := range cs {
		if c.Workload == "mixed" && main[[2]string{c.Pair, c.Workload}] == c.Conns {
			mixed = append(mixed, c)
		}
	}
	if len(mixed) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| C queue : our store | priority | C p50 | ours p50 | C p99 | ours p99 |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, c := range mixed {
		for _, p := range priorityNames {
			of := func(pick func(Latency) float64) func(Result) float64 {
				return func(r Result) float64 { return pick(r.ByPriority[p]) }
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", c.Pair, p,
				fmtMS(median(c.C, of(p50))), fmtMS(median(c.Go, of(p50))),
				fmtMS(median(c.C, of(p99))), fmtMS(median(c.Go, of(p99))))
		}
	}
}

// writeAgainstMemory compares each of our durable stores with C gearmand's
// memory-only queue (the pair whose C queue is builtin), configuration by
// configuration: the speed durability costs against C's fastest mode.
func writeAgainstMemory(w io.Writer, cs []*cell) {
	memory := map[cellKey]*cell{}
	for _, c := range cs {
		if strings.HasPrefix(c.Pair, "builtin:") {
			memory[cellKey{"", c.Workload, c.Conns, c.Window, c.Workers, c.Size}] = c
		}
	}
	header := false
	for _, c := range cs {
		m := memory[cellKey{"", c.Workload, c.Conns, c.Window, c.Workers, c.Size}]
		if m == nil || m == c || len(c.Go) == 0 || len(m.C) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "| our store | workload | conns×window | C builtin jobs/s | ours jobs/s | ours/C builtin |")
			fmt.Fprintln(w, "|---|---|---|---:|---:|---:|")
			header = true
		}
		cj, gj := median(m.C, jobsPerS), median(c.Go, jobsPerS)
		store := c.Pair[strings.LastIndex(c.Pair, ":")+1:]
		fmt.Fprintf(w, "| %s | %s | %d×%d | %.0f | %.0f | %s |\n", store, c.Workload, c.Conns, c.Window, cj, gj, ratio(gj, cj))
	}
}

func hasLatency(c *cell) bool {
	for _, r := range slices.Concat(c.C, c.Go) {
		if r.Latency != nil && r.Latency.Count > 0 {
			return true
		}
	}
	return false
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// fmtMS formats microseconds as milliseconds, "–" for no figure.
func fmtMS(us float64) string {
	if us == 0 {
		return "–"
	}
	if us >= 100_000 {
		return fmt.Sprintf("%.0f ms", us/1000)
	}
	return fmt.Sprintf("%.3g ms", us/1000)
}

func bytesLabel(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
