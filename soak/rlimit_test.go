package soak

import (
	"syscall"
	"testing"
)

// raiseFileLimit makes sure the process may hold need open files, raising
// the soft RLIMIT_NOFILE up to the hard one if it must (`ulimit -n`).
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("reading RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		t.Fatalf("the soak needs %d open files; the hard limit is %d (raise it, e.g. ulimit -Hn %d as root)", need, lim.Max, need)
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raising RLIMIT_NOFILE to %d: %v", need, err)
	}
}
