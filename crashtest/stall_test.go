package crashtest

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestStalledStore freezes the store's server (SIGSTOP to redis-server: it
// still accepts connections, and answers nothing) under background
// submits. Every submit is answered within --store-timeout (and a
// second) with JOB_CREATED or QUEUE_ERROR, the process stays up, a
// foreground job and workers go on; once the store thaws, submits succeed
// again, and after a SIGKILL and a restart every acknowledged job runs.
func TestStalledStore(t *testing.T) {
	rs := startRedis(t)
	t.Cleanup(func() { _ = rs.cmd.Process.Signal(syscall.SIGCONT) })
	g := newGearmand(t, "-q", "redis", "--redis-addr", rs.addr, "--store-namespace", namespace(t),
		"--store-timeout", fullTimeout.String())
	book := newFullBook()
	l := g.start()
	_, cl := dial(t, l.addr)
	for i := range 10 {
		if acked, reason := book.submit(t, cl, fmt.Sprintf("before-%d", i)); !acked {
			t.Fatalf("submit before the stall refused (%s)", reason)
		}
	}

	if err := rs.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stalled := time.Now()
	refused := 0
	for i := range 5 {
		if acked, reason := book.submit(t, cl, fmt.Sprintf("stalled-%d", i)); !acked {
			refused++
			if reason != "store timeout" {
				t.Errorf("submit %d while the store is frozen: refused as %q, want the store timeout", i, reason)
			}
		}
	}
	if refused == 0 {
		t.Errorf("no submit was refused while the store was frozen")
	}
	// Workers and foreground jobs need no store.
	book.drain(t, l, true)
	if l.hasExited() {
		t.Fatalf("the server died while its store was frozen (%v)", l.cmd.ProcessState)
	}
	frozenFor := time.Since(stalled)

	if err := rs.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	book.submitUntilAccepted(t, l.addr, 15*time.Second)
	lost := book.killAndCheck(t, g, l)
	book.mu.Lock()
	defer book.mu.Unlock()
	t.Logf("FIGURES store=redis stalled_for=%v acknowledged=%d refused=%d lost=%d longest_wait=%v",
		frozenFor.Round(time.Millisecond), len(book.acked), book.refused, len(lost), book.longest.Round(time.Millisecond))
	if book.longest > fullTimeout+fullSlack {
		t.Errorf("a submitter waited %v, beyond --store-timeout %v", book.longest, fullTimeout)
	}
}
