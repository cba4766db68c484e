package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gearmand/internal/cgearmand"
	"gearmand/internal/testdep"
)

// TestCompareScript runs bench/compare.sh end to end with tiny counts
// against C gearmand and ours (builtin and libsqlite3:bolt, replay of the
// bolt store), so the script cannot rot: it must exit 0 and leave the
// results, the report, the replay table and the plots in OUT.
func TestCompareScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers for a few dozen runs; not in -short")
	}
	testdep.Need(t, cgearmand.Path, "gearman-job-server")
	out := t.TempDir()
	cmd := exec.Command("bash", "../../bench/compare.sh")
	cmd.Env = append(os.Environ(), "OUT="+out, "PAIRS=builtin:builtin libsqlite3:bolt", "ROUNDS=1",
		"JOBS=300", "SLOW_JOBS=50", "LARGE_JOBS=4", "SWEEP_CONNS=1", "REPLAY_JOBS=2000")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("compare.sh: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		"| builtin:builtin | storm | 4×16 | 64 B | 1/1 |",
		"| libsqlite3:bolt | submit | 1×16 | 64 B | 1/1 |",
		"| bolt | drain | 4×16 |",
		"| go/bolt | 2000 |",
		"| c/builtin | 2000 |",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	for _, name := range []string{"results.jsonl", "report.md", "replay.md", "setup.txt",
		"throughput-builtin-builtin.png", "latency-builtin-builtin.png", "latency-libsqlite3-bolt.png"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", name, err)
		}
	}
	rs, err := readResults(filepath.Join(out, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// builtin: 6 workloads + 2 swept, bolt: 3 + 1 swept; both sides each.
	if len(rs) != 2*(6+2+3+1) {
		t.Errorf("%d results, want %d", len(rs), 2*(6+2+3+1))
	}
}
