package interop

import (
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func requirePerlGearman(t *testing.T) {
	t.Helper()
	requirePerlModule(t, "Gearman::Client", "libgearman-client-perl")
	requirePerlModule(t, "Gearman::Worker", "libgearman-client-perl")
}

// perlClient runs testdata/client.pl against g to completion and returns
// its output.
func (g *gearmand) perlClient(args ...string) string {
	g.t.Helper()
	return g.startPerlClient(args...).wait()
}

func (g *gearmand) startPerlClient(args ...string) *proc {
	g.t.Helper()
	return start(g.t, "", "perl", append([]string{"testdata/client.pl", g.addr}, args...)...)
}

// startPerlWorker runs testdata/worker.pl against g until the test ends and
// returns the file its perl.record function appends to. It waits until the
// worker has registered its functions.
func (g *gearmand) startPerlWorker() string {
	g.t.Helper()
	record := filepath.Join(g.t.TempDir(), "record")
	start(g.t, "", "perl", "testdata/worker.pl", g.addr, record)
	g.waitForWorkers("perl.fail", 1)
	return record
}

// TestPerlClientPerlWorker runs Gearman::Client's do_task against a
// Gearman::Worker: results at every priority, status and data forwarded in
// order, and a failed job.
func TestPerlClientPerlWorker(t *testing.T) {
	requirePerlGearman(t)
	g := startServer(t)
	g.startPerlWorker()

	for _, priority := range []string{"high", "normal", "low"} {
		if got := g.perlClient("do", "perl.reverse", "hello perl", priority); got != "lrep olleh" {
			t.Errorf("do_task perl.reverse at %s priority = %q, want \"lrep olleh\"", priority, got)
		}
	}

	if got, want := g.perlClient("events", "perl.progress", "x"), "status 1/2\ndata chunk\ncomplete done\n"; got != want {
		t.Errorf("do_task perl.progress callbacks:\n%s\nwant:\n%s", got, want)
	}

	out, err := g.startPerlClient("do", "perl.fail", "x").result()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || out != "FAILED\n" {
		t.Errorf("do_task perl.fail: output %q, error %v; want \"FAILED\" and exit status 1", out, err)
	}
	g.waitForStatus("perl.fail", functionStatus{Workers: 1})
}

// TestPerlBackground queues a job with dispatch_background while no worker
// runs, follows it with get_status, and lets a Gearman::Worker run it.
func TestPerlBackground(t *testing.T) {
	requirePerlGearman(t)
	g := startServer(t)

	handle := g.perlClient("bg", "perl.record", "bg-1", "perl-unique-1")
	// Gearman::Client returns "HOST:PORT//HANDLE".
	if server, h, ok := strings.Cut(handle, "//"); !ok || server != g.addr || !strings.HasPrefix(h, handlePrefix+":") {
		t.Fatalf("dispatch_background returned %q, want \"%s//%s:<n>\"", handle, g.addr, handlePrefix)
	}
	if got := g.perlClient("status", handle); got != "1 0" {
		t.Errorf("get_status of the queued job = %q, want known, not running (\"1 0\")", got)
	}
	g.waitForStatus("perl.record", functionStatus{Total: 1})

	record := g.startPerlWorker()
	var got []string
	waitFor(t, "the Perl worker to record bg-1",
		func() bool { got = readLines(t, record); return len(got) > 0 },
		func() string { return strings.Join(got, ",") })
	if !slices.Equal(got, []string{"bg-1"}) {
		t.Errorf("Perl worker recorded %q, want [bg-1]", got)
	}
	g.waitForStatus("perl.record", functionStatus{Workers: 1})
	if got := g.perlClient("status", handle); got != "0 0" {
		t.Errorf("get_status of the finished job = %q, want unknown (\"0 0\")", got)
	}
}

// TestPerlClientCLIWorker runs Gearman::Client against `gearman -w` workers.
func TestPerlClientCLIWorker(t *testing.T) {
	requirePerlGearman(t)
	requireTool(t, "gearman", "gearman-tools")
	g := startServer(t)
	g.startGearman("", "-w", "-f", "cli.upper", "--", "tr", "a-z", "A-Z")

	if got := g.perlClient("do", "cli.upper", "from perl"); got != "FROM PERL" {
		t.Errorf("do_task cli.upper = %q, want \"FROM PERL\"", got)
	}

	g.perlClient("bg", "cli.record", "bg from perl", "perl-unique-2")
	worker, file := recordingWorker(t, g, "cli.record", 1)
	worker.wait()
	if got := readLines(t, file); !slices.Equal(got, []string{"bg from perl"}) {
		t.Errorf("CLI worker ran %q, want [\"bg from perl\"]", got)
	}
}

// TestCLIClientPerlWorker runs the gearman CLI against a Gearman::Worker.
func TestCLIClientPerlWorker(t *testing.T) {
	requirePerlGearman(t)
	requireTool(t, "gearman", "gearman-tools")
	g := startServer(t)
	record := g.startPerlWorker()

	if got := g.gearman("from the cli", "-f", "perl.reverse"); got != "ilc eht morf" {
		t.Errorf("gearman -f perl.reverse = %q, want \"ilc eht morf\"", got)
	}
	g.gearman("", "-b", "-f", "perl.record", "--", "b1", "b2")
	var got []string
	waitFor(t, "the Perl worker to record b1 and b2",
		func() bool { got = readLines(t, record); return len(got) == 2 },
		func() string { return strings.Join(got, ",") })
	if !slices.Equal(got, []string{"b1", "b2"}) {
		t.Errorf("Perl worker recorded %q, want [b1 b2]", got)
	}
}

// TestPerlWorkerFalseResults: Gearman::Worker sends WORK_COMPLETE,
// WORK_DATA, WORK_WARNING and WORK_EXCEPTION as the job handle alone when
// the value is false in Perl ("" or "0"). Each job must end with an empty
// result (the worker never sends the "0"), foreground and background, and
// the worker must live on to run the next job; an ERROR in answer used to
// kill it at its next GRAB_JOB.
func TestPerlWorkerFalseResults(t *testing.T) {
	requirePerlGearman(t)
	g := startServer(t)
	worker := start(t, "", "perl", "testdata/worker.pl", g.addr, filepath.Join(t.TempDir(), "record"))
	g.waitForWorkers("perl.echo", 1)

	for _, arg := range []string{"", "0"} {
		if got := g.perlClient("do", "perl.echo", arg); got != "" {
			t.Errorf("do_task perl.echo %q = %q, want \"\"", arg, got)
		}
		g.perlClient("bg", "perl.echo", arg, "false-"+arg)
		g.waitForStatus("perl.echo", functionStatus{Workers: 1})
	}
	if got, want := g.perlClient("events", "perl.quiet", "x"), "data \ndata \ncomplete \n"; got != want {
		t.Errorf("do_task perl.quiet callbacks:\n%s\nwant:\n%s", got, want)
	}
	// In the background: a foreground client without the exceptions
	// option would get WORK_FAIL as gearmand sends it, with a NUL after
	// the handle, which Gearman::Client rejects.
	g.perlClient("bg", "perl.except", "x", "false-except")
	g.waitForStatus("perl.except", functionStatus{Workers: 1})

	if got := g.perlClient("do", "perl.reverse", "still here"); got != "ereh llits" {
		t.Errorf("do_task perl.reverse after the false results = %q, want \"ereh llits\"", got)
	}
	select {
	case <-worker.done:
		t.Fatalf("the Perl worker exited: %v\nstderr: %s", worker.err, worker.stderr.String())
	default:
	}
}
