// Command gearbench puts load on any Gearman server and reports throughput,
// latency percentiles and errors. It uses package client, so C gearmand and
// ours are measured with the same load generator.
//
//	gearbench [run] --addr 127.0.0.1:4730 --workload submit --jobs 100000 --conns 4 --window 32
//	gearbench report -in results.jsonl          # Markdown tables of median ratios ours/C
//	gearbench plot -in results.jsonl -out dir/  # PNG plots
//
// Workloads (gearbench run --workload):
//
//	submit     background submits from --conns connections, --window in flight on each
//	drain      --jobs background jobs queued first (not timed), then --workers drain them;
//	           every acknowledged job must reach a worker, counted by unique
//	roundtrip  foreground jobs from --conns × --window callers, run by --workers echo workers
//	storm      coalescing: in each round all conns × window callers submit one unique at
//	           once; the worker runs it once and every caller must get that result
//	large      background jobs of --payload bytes (1 MiB unless given) submitted while
//	           the workers drain them; timed until every one has run
//	mixed      foreground jobs cycling high, normal, low priority with a queue forming;
//	           latency per priority, and high must finish sooner than low on average
//
// Run prints one line on stdout (and appends a JSON object to --json when
// given), progress lines on stderr every --progress, and exits 1 when any
// request failed, a result was wrong, or a job went missing; 2 on bad usage.
// The comparison against C gearmand is bench/compare.sh, which runs this
// command for each server, store and workload and then report and plot.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	flag "github.com/spf13/pflag"
)

func main() { os.Exit(gearbench(os.Args[1:])) }

// gearbench runs the subcommand in args and returns the exit status.
func gearbench(args []string) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		return runCommand(args)
	case "report":
		err = reportCommand(args)
	case "plot":
		err = plotCommand(args)
	default:
		err = fmt.Errorf("%w: unknown command %q (want run, report or plot)", errUsage, cmd)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "gearbench:", err)
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

func runCommand(args []string) int {
	var o options
	fs := flag.NewFlagSet("gearbench run", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:4730", "server address host:port")
	fs.StringVar(&o.workload, "workload", "submit", strings.Join(workloadNames, ", "))
	fs.StringVar(&o.function, "function", "", "function name for the jobs (default: unique per run)")
	fs.IntVar(&o.jobs, "jobs", 50000, "jobs (requests) to run")
	fs.IntVar(&o.conns, "conns", 4, "client connections")
	fs.IntVar(&o.window, "window", 16, "requests in flight per client connection")
	fs.IntVar(&o.workers, "workers", 4, "worker connections (drain, roundtrip, storm, large, mixed)")
	fs.IntVar(&o.payload, "payload", 64, "payload bytes per job (large: 1 MiB unless given)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long; jobs not done count as missing")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "print progress on stderr this often (0: never)")
	fs.DurationVar(&o.stall, "stall", 30*time.Second, "count acknowledged jobs as missing when no worker got a job for this long")
	fs.StringVar(&o.jsonPath, "json", "", "append the result as one JSON line to this file")
	fs.StringVar(&o.side, "side", "", "label: which server this is (c, go), for report and plot")
	fs.StringVar(&o.pair, "pair", "", "label: the C-queue:our-queue pair, for report and plot")
	fs.IntVar(&o.round, "round", 0, "label: the round number")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := o.check(fs); err != nil {
		fmt.Fprintln(os.Stderr, "gearbench:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	r, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gearbench:", err)
		return 1
	}
	fmt.Println(r)
	if r.FirstError != "" {
		fmt.Fprintln(os.Stderr, "gearbench: first error:", r.FirstError)
	}
	if o.jsonPath != "" {
		if err := appendJSON(o.jsonPath, r); err != nil {
			fmt.Fprintln(os.Stderr, "gearbench:", err)
			return 1
		}
	}
	if r.Failed() {
		return 1
	}
	return 0
}

// check validates the options and applies workload-dependent defaults.
func (o *options) check(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if _, ok := workloads[o.workload]; !ok {
		return fmt.Errorf("unknown workload %q (want one of %s)", o.workload, strings.Join(workloadNames, ", "))
	}
	if o.jobs <= 0 || o.conns <= 0 || o.window <= 0 || o.workers <= 0 || o.payload < 0 {
		return errors.New("--jobs, --conns, --window and --workers must be positive, --payload not negative")
	}
	if o.timeout <= 0 || o.stall <= 0 || o.progress < 0 {
		return errors.New("--timeout and --stall must be positive, --progress not negative")
	}
	if o.workload == "large" && !fs.Changed("payload") {
		o.payload = 1 << 20
	}
	return nil
}
