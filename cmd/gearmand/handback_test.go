package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestHandBackRefused: --hand-back on a store that has no way back, or no
// jobs, exits 1 saying why; on one in C gearmand's own table it exits 0
// saying nothing needs moving. (crashtest's TestHandBackToC runs the way
// back itself, with the real C gearmand.)
func TestHandBackRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-q", "builtin"}, 1, "-q builtin keeps no jobs once stopped"},
		{[]string{"-q", "bolt", "--bolt-file", filepath.Join(dir, "jobs.db")}, 1, "-q bolt keeps its jobs in a layout of its own"},
		{[]string{"-q", "libsqlite3", "--libsqlite3-db", filepath.Join(dir, "queue.db")}, 0, "in C gearmand's own table gearman_queue already"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append(tc.args, "-l", "none", "--hand-back"), &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("gearmand %v --hand-back: exit %d, %q; want exit %d saying %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}
