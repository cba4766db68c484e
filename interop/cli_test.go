package interop

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// recordCmd is a `gearman -w` command: it answers a job with its data and
// appends the data, and a newline, to the file named by its first argument,
// so the file lists the jobs in the order the worker ran them.
const recordCmd = `tee -a "$0"; echo >> "$0"`

// recordingWorker starts `gearman -w -f fn` running recordCmd into a new
// file, exiting after count jobs (0: never). It returns the process and the
// file's path.
func recordingWorker(t *testing.T, g *gearmand, fn string, count int) (*proc, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), fn+".log")
	args := []string{"-w", "-f", fn}
	if count > 0 {
		args = append(args, "-c", fmt.Sprint(count))
	}
	return g.startGearman("", append(args, "--", "sh", "-c", recordCmd, file)...), file
}

// TestCLIForeground submits foreground jobs with the gearman CLI, data on
// stdin and as arguments, to gearman CLI workers that run a command per job
// with the job's data on its standard input.
func TestCLIForeground(t *testing.T) {
	requireTool(t, "gearman", "gearman-tools")
	g := startServer(t)
	g.startGearman("", "-w", "-f", "echo", "--", "cat")
	g.startGearman("", "-w", "-f", "upper", "--", "tr", "a-z", "A-Z")

	if got := g.gearman("hello", "-f", "upper"); got != "HELLO" {
		t.Errorf("upper of stdin \"hello\" = %q, want \"HELLO\"", got)
	}
	// Each data argument is a job of its own; the outputs follow each other.
	if got := g.gearman("", "-f", "upper", "--", "abc", "xyz"); got != "ABCXYZ" {
		t.Errorf("upper of arguments abc xyz = %q, want \"ABCXYZ\"", got)
	}
	data := "two lines\nwith\ttabs and a NUL-free payload\n"
	if got := g.gearman(data, "-f", "echo"); got != data {
		t.Errorf("echo of %q = %q", data, got)
	}
	if got := g.gearman("", "-s", "-f", "echo"); got != "" {
		t.Errorf("echo of an empty job = %q, want \"\"", got)
	}
	g.waitForStatus("upper", functionStatus{Total: 0, Running: 0, Workers: 1})
	g.waitForStatus("echo", functionStatus{Total: 0, Running: 0, Workers: 1})
}

// TestCLIPriorities queues jobs of every priority, interleaved, while no
// worker is connected, then lets one CLI worker run them: all HIGH jobs come
// first, then NORMAL, then LOW, each in submission order.
func TestCLIPriorities(t *testing.T) {
	requireTool(t, "gearman", "gearman-tools")
	submissions := []struct {
		flag string // gearman's priority flag, "" for normal
		data string
	}{
		{"-L", "low1"}, {"", "normal1"}, {"-I", "high1"},
		{"-L", "low2"}, {"", "normal2"}, {"-I", "high2"},
	}
	want := []string{"high1", "high2", "normal1", "normal2", "low1", "low2"}
	countOf := map[string]int{"-I": 0, "": 1, "-L": 2}

	for _, background := range []bool{true, false} {
		name := map[bool]string{true: "background", false: "foreground"}[background]
		t.Run(name, func(t *testing.T) {
			g := startServer(t)
			var queued [3]int
			clients := map[string]*proc{}
			for _, s := range submissions {
				args := []string{"-f", "pri"}
				if s.flag != "" {
					args = append(args, s.flag)
				}
				if background {
					g.gearman("", append(args, "-b", "--", s.data)...)
				} else {
					clients[s.data] = g.startGearman("", append(args, "--", s.data)...)
				}
				// Wait for each job to be queued, so that submission order
				// is known even for concurrent foreground clients.
				queued[countOf[s.flag]]++
				var got [3]int
				waitFor(t, fmt.Sprintf("prioritystatus pri = %v", queued),
					func() bool { got = g.priorityCounts("pri"); return got == queued },
					func() string { return fmt.Sprint(got) })
			}

			worker, file := recordingWorker(t, g, "pri", len(submissions))
			worker.wait()
			if got := readLines(t, file); !slices.Equal(got, want) {
				t.Errorf("worker ran %q, want %q", got, want)
			}
			for data, c := range clients {
				if got := c.wait(); got != data {
					t.Errorf("foreground client of %q got %q", data, got)
				}
			}
			g.waitForStatus("pri", functionStatus{})
		})
	}
}

// TestCLICoalesceForeground has two foreground clients submit one unique:
// they share one job, it runs once, and both receive its result, which is
// computed from the first submission's data.
func TestCLICoalesceForeground(t *testing.T) {
	requireTool(t, "gearman", "gearman-tools")
	g := startServer(t)
	const unique = "same-unique"

	first := g.startGearman("", "-f", "co", "-u", unique, "--", "first")
	waitForClients(t, g, unique, 1)
	second := g.startGearman("", "-f", "co", "-u", unique, "--", "second")
	waitForClients(t, g, unique, 2)
	if got := g.status()["co"]; got != (functionStatus{Total: 1}) {
		t.Errorf("status of co with two clients waiting = %+v, want one queued job", got)
	}
	if got := g.admin("show unique jobs"); !slices.Equal(got, []string{unique}) {
		t.Errorf("show unique jobs = %q, want [%q]", got, unique)
	}

	_, file := recordingWorker(t, g, "co", 0)
	for _, c := range []*proc{first, second} {
		if got := c.wait(); got != "first" {
			t.Errorf("%s got %q, want the first submission's result \"first\"", c, got)
		}
	}
	if got := readLines(t, file); !slices.Equal(got, []string{"first"}) {
		t.Errorf("worker ran %q, want one job", got)
	}
	g.waitForStatus("co", functionStatus{Workers: 1})
}

func waitForClients(t *testing.T, g *gearmand, unique string, n int) {
	t.Helper()
	var clients int
	waitFor(t, fmt.Sprintf("%d clients on unique %q", n, unique),
		func() bool { _, _, clients = g.uniqueStatus(unique); return clients == n },
		func() string { return fmt.Sprintf("%d clients", clients) })
}

// TestCLIBackgroundDrain queues background jobs with `gearman -b`, two of
// them under one unique, and drains them with a CLI worker that exits after
// the expected number of jobs.
func TestCLIBackgroundDrain(t *testing.T) {
	requireTool(t, "gearman", "gearman-tools")
	g := startServer(t)

	if out := g.gearman("", "-b", "-f", "drain", "--", "j1", "j2", "j3"); out != "" {
		t.Errorf("gearman -b printed %q, want nothing", out)
	}
	// -v prints the handle, which `show jobs` lists as a persisted job.
	handle := createdHandle(t, g.gearman("", "-v", "-b", "-f", "drain", "-u", "dup", "--", "j4"))
	// The same unique again joins the queued job instead of making one.
	g.gearman("", "-b", "-f", "drain", "-u", "dup", "--", "ignored")
	g.waitForStatus("drain", functionStatus{Total: 4})
	if jobs := g.admin("show jobs"); !slices.Contains(jobs, handle+"\t0\t0\t1") {
		t.Errorf("show jobs = %q, want a line %q", jobs, handle+"\t0\t0\t1")
	}

	worker, file := recordingWorker(t, g, "drain", 4)
	worker.wait()
	if got, want := readLines(t, file), []string{"j1", "j2", "j3", "j4"}; !slices.Equal(got, want) {
		t.Errorf("worker ran %q, want %q", got, want)
	}
	g.waitForStatus("drain", functionStatus{})
	if jobs := g.admin("show jobs"); len(jobs) != 0 {
		t.Errorf("show jobs after draining = %q, want none", jobs)
	}
}
