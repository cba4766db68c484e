package interop

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gearmand/server"
)

// gatedCmd is a `gearman -w` command that holds each job until the file
// named by its first argument exists, then answers with the job's data.
const gatedCmd = `while [ ! -e "$0" ]; do sleep 0.01; done; cat`

// workersLine is one line of gearadmin --workers: "FD IP CLIENT-ID :" and
// the connection's functions.
var workersLine = regexp.MustCompile(`^(\d+) (\S+) (\S+) :((?: \S+)*)$`)

// TestGearadmin sets up a running job, queued jobs of two priorities and a
// worker, then checks what every gearadmin listing reports about them and
// that its mutating commands take effect.
func TestGearadmin(t *testing.T) {
	requireTool(t, "gearman", "gearman-tools")
	requireTool(t, "gearadmin", "gearman-tools")
	g := startServer(t)

	gate := filepath.Join(t.TempDir(), "gate")
	g.startGearman("", "-w", "-f", "adm.run", "--", "sh", "-c", gatedCmd, gate)
	held := g.startGearman("", "-f", "adm.run", "--", "held")
	g.waitForStatus("adm.run", functionStatus{Total: 1, Running: 1, Workers: 1})

	high := createdHandle(t, g.gearman("", "-v", "-b", "-I", "-f", "adm.queued", "-u", "uq-high", "--", "h"))
	low := createdHandle(t, g.gearman("", "-v", "-b", "-L", "-f", "adm.queued", "-u", "uq-low", "--", "l"))

	status := parseStatus(t, g.gearadmin("--status"))
	if got, want := status["adm.run"], (functionStatus{Total: 1, Running: 1, Workers: 1}); got != want {
		t.Errorf("--status adm.run = %+v, want %+v", got, want)
	}
	if got, want := status["adm.queued"], (functionStatus{Total: 2}); got != want {
		t.Errorf("--status adm.queued = %+v, want %+v", got, want)
	}

	prio := g.gearadmin("--priority-status")
	for _, want := range []string{"adm.queued\t1\t0\t1\t0", "adm.run\t0\t0\t0\t1"} {
		if !slices.Contains(prio, want) {
			t.Errorf("--priority-status = %q, want a line %q", prio, want)
		}
	}

	// Every connection is listed: the worker, the waiting client and
	// gearadmin's own. Only the worker has functions.
	workers := g.gearadmin("--workers")
	var withFunctions []string
	for _, line := range workers {
		m := workersLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("--workers line %q does not match %v", line, workersLine)
			continue
		}
		if m[2] != "127.0.0.1" {
			t.Errorf("--workers line %q: address %q, want 127.0.0.1", line, m[2])
		}
		if m[4] != "" {
			withFunctions = append(withFunctions, m[4])
		}
	}
	if len(workers) < 3 || !slices.Equal(withFunctions, []string{" adm.run"}) {
		t.Errorf("--workers = %q, want at least 3 connections, one registered for adm.run", workers)
	}

	jobs := g.gearadmin("--show-jobs")
	for _, want := range []string{high + "\t0\t0\t1", low + "\t0\t0\t1"} {
		if !slices.Contains(jobs, want) {
			t.Errorf("--show-jobs = %q, want a line %q", jobs, want)
		}
	}
	if len(jobs) != 3 {
		t.Errorf("--show-jobs = %q, want 3 jobs (one running, two queued)", jobs)
	}

	uniques := g.gearadmin("--show-unique-jobs")
	for _, want := range []string{"uq-high", "uq-low"} {
		if !slices.Contains(uniques, want) {
			t.Errorf("--show-unique-jobs = %q, want %q", uniques, want)
		}
	}

	if got, want := g.gearadmin("--getpid"), []string{strconv.Itoa(os.Getpid())}; !slices.Equal(got, want) {
		t.Errorf("--getpid = %q, want %q (the server runs in the test process)", got, want)
	}
	if got, want := g.gearadmin("--server-version"), []string{server.Version}; !slices.Equal(got, want) {
		t.Errorf("--server-version = %q, want %q", got, want)
	}
	if got, want := g.gearadmin("--server-verbose"), []string{"ERROR"}; !slices.Equal(got, want) {
		t.Errorf("--server-verbose = %q, want %q", got, want)
	}

	if got := g.gearadmin("--create-function", "adm.created"); !slices.Equal(got, []string{"OK"}) {
		t.Errorf("--create-function = %q, want OK", got)
	}
	if got, ok := g.status()["adm.created"]; !ok || got != (functionStatus{}) {
		t.Errorf("status after --create-function: adm.created = %+v (listed: %v), want zeros", got, ok)
	}
	if got := g.gearadmin("--drop-function", "adm.created"); !slices.Equal(got, []string{"OK"}) {
		t.Errorf("--drop-function = %q, want OK", got)
	}
	if _, ok := g.status()["adm.created"]; ok {
		t.Errorf("status still lists adm.created after --drop-function")
	}

	// Cancelling a queued job removes it at once.
	if got := g.gearadmin("--cancel-job", low); !slices.Equal(got, []string{"OK"}) {
		t.Errorf("--cancel-job %s = %q, want OK", low, got)
	}
	if got, want := g.priorityCounts("adm.queued"), [3]int{1, 0, 0}; got != want {
		t.Errorf("prioritystatus adm.queued after cancelling the LOW job = %v, want %v", got, want)
	}
	if jobs := g.admin("show jobs"); slices.ContainsFunc(jobs, func(l string) bool { return strings.HasPrefix(l, low+"\t") }) {
		t.Errorf("show jobs = %q still lists the cancelled job %s", jobs, low)
	}

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := held.wait(); got != "held" {
		t.Errorf("held client got %q, want \"held\"", got)
	}
	g.waitForStatus("adm.run", functionStatus{Workers: 1})
}

// createdHandle returns the handle in `gearman -v -b` output.
func createdHandle(t *testing.T, out string) string {
	t.Helper()
	handle, ok := strings.CutPrefix(strings.TrimSpace(out), "Task created: ")
	if !ok || !strings.HasPrefix(handle, handlePrefix+":") {
		t.Fatalf("gearman -v -b printed %q, want \"Task created: %s:<n>\"", out, handlePrefix)
	}
	return handle
}
