package queue

import (
	"errors"
	"testing"

	"gearmand/protocol"
	"gearmand/store"
)

func TestMaxQueuedBytes(t *testing.T) {
	h := newHarness(t, Config{MaxQueuedBytes: 10})
	c := h.connect("client")
	w := h.worker("worker", "f")
	first := h.submit(c, job("f", "a", "123456", background))
	if got := h.q.QueuedBytes(); got != 6 {
		t.Fatalf("QueuedBytes after a 6-byte job = %d", got)
	}
	// 6+5 > 10: refused, and the refusal is a queue-full error.
	err := h.q.Submit(c.s, job("f", "b", "12345", background))
	if !errors.Is(err, ErrQueueBytesFull) || !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit past the byte limit: %v, want ErrQueueBytesFull wrapping ErrQueueFull", err)
	}
	expectNothing(t, c)
	// A coalescing submission brings no payload, so it is not refused.
	if got := h.submit(c, job("f", "a", "a much longer payload", background)); got != first {
		t.Fatalf("coalesced into %s, want %s", got, first)
	}
	h.submit(c, job("f", "c", "1234")) // 6+4 = 10 fits exactly
	if got := h.q.QueuedBytes(); got != 10 {
		t.Fatalf("QueuedBytes = %d, want 10", got)
	}
	// A running job still holds its payload; it frees it when it ends.
	handle, _ := h.assign(w)
	if got := h.q.QueuedBytes(); got != 10 {
		t.Fatalf("QueuedBytes with a job running = %d, want 10", got)
	}
	h.complete(w, handle, "")
	if got := h.q.QueuedBytes(); got != 4 {
		t.Fatalf("QueuedBytes after completing the 6-byte job = %d, want 4", got)
	}
	h.submit(c, job("f", "d", "123456", background))
}

func TestQueuedBytesLeaveWithEveryEnd(t *testing.T) {
	h := newHarness(t, Config{JobRetries: 0})
	c := h.connect("client")
	cancelled := h.submit(c, job("f", "", "cancelled"))
	h.submit(c, job("f", "", "lost", background))
	h.submit(c, job("f", "", "abandoned"))
	if got := h.q.QueuedBytes(); got != int64(len("cancelled")+len("lost")+len("abandoned")) {
		t.Fatalf("QueuedBytes = %d", got)
	}
	h.q.Cancel(cancelled)
	expect(t, c, protocol.WorkFail, cancelled)
	w := h.worker("worker", "f")
	h.assign(w)
	h.q.Disconnect(w.s) // no retry: the job ends
	h.q.Disconnect(c.s) // its foreground job is abandoned
	if got := h.q.QueuedBytes(); got != 0 {
		t.Fatalf("QueuedBytes after every job ended = %d, want 0", got)
	}
}

func TestRestoredJobsCountButAreNotRefused(t *testing.T) {
	h := newHarness(t, Config{MaxQueuedBytes: 4, Persister: &recordingPersister{mode: store.WriteBehind}})
	h.q.Restore(store.Record{Seq: 1, Function: "f", Data: []byte("123456")})
	if got := h.q.QueuedBytes(); got != 6 {
		t.Fatalf("QueuedBytes after restoring a 6-byte job = %d", got)
	}
	c := h.connect("client")
	if err := h.q.Submit(c.s, job("f", "", "1", background)); !errors.Is(err, ErrQueueBytesFull) {
		t.Fatalf("Submit over a restored backlog: %v, want ErrQueueBytesFull", err)
	}
	w := h.worker("worker", "f")
	h.q.Grab(w.s, GrabJob)
	expect(t, w, protocol.JobAssign, "H:t:1", "f", "123456")
	h.complete(w, "H:t:1", "")
	h.submit(c, job("f", "", "1234", background))
}
