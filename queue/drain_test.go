package queue

import (
	"testing"

	"gearmand/protocol"
)

// Rule: once draining, nothing is handed out or woken; running jobs finish
// and report as usual, and Drain's channel closes when the last one ends,
// however it ends (completed, or its worker lost).
func TestDrain(t *testing.T) {
	h := newHarness(t, Config{JobRetries: -1})
	c := h.connect("c")
	w1 := h.worker("w1", "f")
	w2 := h.worker("w2", "f")
	h.submit(c, job("f", "", "1"))
	h.submit(c, job("f", "", "2", background))
	h.submit(c, job("f", "", "3", background))
	h1, _ := h.assign(w1)
	h2, _ := h.assign(w2)
	sleeper := h.sleeper("s", "g")

	idle, running := h.q.Drain()
	if running != 2 || h.q.Running() != 2 {
		t.Fatalf("Drain says %d running, Running %d; want 2", running, h.q.Running())
	}
	if isClosed(idle) {
		t.Fatal("idle with two jobs running")
	}
	// A queued job is not handed out, a sleeping worker is not woken, and
	// PRE_SLEEP does not bounce back a NOOP.
	if pk := h.grab(w2, GrabJobUniq); pk.Type != protocol.NoJob {
		t.Fatalf("GRAB_JOB_UNIQ while draining got %s, want NO_JOB", pk.Type)
	}
	h.q.PreSleep(w2.s)
	expectNothing(t, w2)
	h.submit(c, job("g", "", "new", background))
	expectNothing(t, sleeper)

	// A running foreground job's result still reaches its client.
	h.complete(w1, h1, "done")
	expect(t, c, protocol.WorkComplete, h1, "done")
	if isClosed(idle) {
		t.Fatal("idle with one job running")
	}
	// A lost worker's job goes back to the queue, unassigned: idle.
	h.q.Disconnect(w2.s)
	if !isClosed(idle) {
		t.Fatal("not idle once the last running job's worker was lost")
	}
	if st := h.jobInfo(h2); st.Running {
		t.Fatalf("the lost job %s is still running: %+v", h2, st)
	}
	if got := h.function("f").Queued; got[Normal] != 2 {
		t.Fatalf("f has %v queued, want the requeued job and job 3 at NORMAL", got)
	}
	again, n := h.q.Drain()
	if n != 0 || !isClosed(again) {
		t.Fatalf("a second Drain with nothing running: %d running, closed %v", n, isClosed(again))
	}
}

// Rule: Drain with nothing running is idle at once.
func TestDrainIdle(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.connect("c")
	h.submit(c, job("f", "", "queued", background))
	if idle, n := h.q.Drain(); n != 0 || !isClosed(idle) {
		t.Fatalf("Drain of a queue with nothing running: %d running, closed %v", n, isClosed(idle))
	}
}
