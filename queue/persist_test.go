package queue

import (
	"errors"
	"testing"
	"time"

	"gearmand/protocol"
	"gearmand/store"
)

// recordingPersister stands in for the Committer: it records what the queue
// asks to store, and the test settles write-through adds by calling Durable.
type recordingPersister struct {
	mode    store.Mode
	adds    []store.Record
	jobs    []*Job
	updates []store.Record
	deletes []uint64
	fail    error // returned by Add when set
}

func (p *recordingPersister) Mode() store.Mode { return p.mode }

func (p *recordingPersister) AddSince(r store.Record, j *Job, _ time.Time) error {
	if p.fail != nil {
		return p.fail
	}
	p.adds = append(p.adds, r)
	p.jobs = append(p.jobs, j)
	return nil
}

func (p *recordingPersister) Update(r store.Record) error {
	p.updates = append(p.updates, r)
	return nil
}

func (p *recordingPersister) Delete(seq uint64) { p.deletes = append(p.deletes, seq) }

// settle reports every add so far as committed with err.
func (p *recordingPersister) settle(q *Queue, err error) {
	jobs := p.jobs
	p.jobs = nil
	q.Durable(jobs, err)
}

func persistHarness(t *testing.T, mode store.Mode) (*harness, *recordingPersister) {
	p := &recordingPersister{mode: mode}
	return newHarness(t, Config{JobRetries: -1, Persister: p}), p
}

func TestWriteThroughAcknowledgesOnlyWhenDurable(t *testing.T) {
	h, p := persistHarness(t, store.WriteThrough)
	c := h.connect("c")
	w := h.sleeper("w", "f")
	if err := h.q.Submit(c.s, job("f", "u", "data", background, priority(High))); err != nil {
		t.Fatal(err)
	}
	expectNothing(t, c)
	expectNothing(t, w)
	if got := h.grab(w, GrabJob); got.Type != protocol.NoJob {
		t.Fatalf("a job not yet durable was assigned: %v", got)
	}
	h.q.PreSleep(w.s)
	if len(p.adds) != 1 || p.adds[0].Handle != "H:t:1" || p.adds[0].Function != "f" || p.adds[0].Unique != "u" ||
		string(p.adds[0].Data) != "data" || p.adds[0].Priority != 0 || p.adds[0].Seq != 1 {
		t.Fatalf("stored %+v", p.adds)
	}
	p.settle(h.q, nil)
	expect(t, c, protocol.JobCreated, "H:t:1")
	expect(t, w, protocol.Noop)
	isPacket(t, h.grab(w, GrabJob), protocol.JobAssign, "H:t:1", "f", "data")
}

func TestWriteThroughKeepsReplyOrder(t *testing.T) {
	h, p := persistHarness(t, store.WriteThrough)
	c := h.connect("c")
	h.q.Submit(c.s, job("f", "a", "", background))
	h.q.Submit(c.s, job("f", "b", "")) // foreground: not stored, but answered after a
	h.q.Submit(c.s, job("f", "a", "")) // joins the pending job
	expectNothing(t, c)
	p.settle(h.q, nil)
	expect(t, c, protocol.JobCreated, "H:t:1")
	expect(t, c, protocol.JobCreated, "H:t:2")
	expect(t, c, protocol.JobCreated, "H:t:1")
	// With nothing pending, replies go straight out again.
	h.q.Submit(c.s, job("f", "c", ""))
	expect(t, c, protocol.JobCreated, "H:t:3")
}

func TestWriteThroughFailureIsAnErrorAndCreatesNoJob(t *testing.T) {
	h, p := persistHarness(t, store.WriteThrough)
	c, other := h.connect("c"), h.connect("other")
	h.q.Submit(c.s, job("f", "u", "", background))
	h.q.Submit(other.s, job("f", "u", "")) // a foreground client joins the pending job
	p.settle(h.q, errors.New("disk full"))
	expect(t, c, protocol.Error, "QUEUE_ERROR", "disk full")
	expect(t, other, protocol.Error, "QUEUE_ERROR", "disk full")
	if got := h.function("f"); got.Total() != 0 {
		t.Fatalf("status after a failed store write: %+v", got)
	}
	if st := h.q.StatusUnique([]byte("u")); st.Known {
		t.Fatal("the failed job is still known")
	}
	// The next submission succeeds once the store does.
	h.q.Submit(c.s, job("f", "u", "", background))
	p.settle(h.q, nil)
	expect(t, c, protocol.JobCreated, "H:t:2")
}

func TestAddErrorIsReturnedAtOnce(t *testing.T) {
	h, p := persistHarness(t, store.WriteThrough)
	p.fail = store.ErrClosed
	c := h.connect("c")
	if err := h.q.Submit(c.s, job("f", "u", "", background)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Submit: %v", err)
	}
	expectNothing(t, c)
	if h.q.Len() != 0 {
		t.Fatal("a job was created")
	}
}

func TestStoredJobsAreDeletedWhenTheyEnd(t *testing.T) {
	h, p := persistHarness(t, store.WriteThrough)
	c := h.connect("c")
	for _, u := range []string{"complete", "cancel-queued", "cancel-running", "exhausted"} {
		h.q.Submit(c.s, job("f", u, u, background))
	}
	p.settle(h.q, nil)
	for range 4 {
		next(t, c)
	}
	w := h.worker("w", "f")
	handle, _ := h.assign(w)
	h.complete(w, handle, "")
	if !h.q.Cancel("H:t:2") {
		t.Fatal("cancel of a queued job failed")
	}
	running, _ := h.assign(w)
	if !h.q.Cancel(running) {
		t.Fatal("cancel of a running job failed")
	}
	if got := []uint64{1, 2, 3}; len(p.deletes) != 3 || p.deletes[0] != got[0] || p.deletes[1] != got[1] || p.deletes[2] != got[2] {
		t.Fatalf("deletes %v, want %v", p.deletes, got)
	}
	h.mustWork(w, protocol.WorkComplete, running, "") // discarded: no second delete
	if len(p.deletes) != 3 {
		t.Fatalf("deletes %v after the ignored job ended", p.deletes)
	}
	h.q.cfg.JobRetries = 2
	lost := h.worker("lost", "f")
	h.assign(lost)
	h.q.Disconnect(lost.s)
	if len(p.updates) != 1 || p.updates[0].Seq != 4 || p.updates[0].Attempts != 1 {
		t.Fatalf("updates after a lost worker: %+v", p.updates)
	}
	lost2 := h.worker("lost2", "f")
	h.assign(lost2)
	h.q.Disconnect(lost2.s)
	if p.deletes[len(p.deletes)-1] != 4 {
		t.Fatalf("deletes %v after retries ran out", p.deletes)
	}
}

func TestBackgroundJoinOfForegroundJobStoresIt(t *testing.T) {
	h, p := persistHarness(t, store.WriteThrough)
	fg, bg := h.connect("fg"), h.connect("bg")
	handle := h.submit(fg, job("f", "u", "d"))
	if len(p.adds) != 0 {
		t.Fatal("a foreground job was stored")
	}
	h.q.Submit(bg.s, job("f", "u", "other", background))
	expectNothing(t, bg)
	if len(p.adds) != 1 || p.adds[0].Handle != handle || string(p.adds[0].Data) != "d" {
		t.Fatalf("stored %+v", p.adds)
	}
	p.settle(h.q, nil)
	expect(t, bg, protocol.JobCreated, handle)
	// The foreground client leaving no longer abandons it.
	h.q.Disconnect(fg.s)
	if !h.q.Status([]byte(handle)).Known {
		t.Fatal("the joined job was dropped")
	}
}

func TestWriteBehindAcknowledgesAtOnce(t *testing.T) {
	h, p := persistHarness(t, store.WriteBehind)
	c := h.connect("c")
	w := h.worker("w", "f")
	handle := h.submit(c, job("f", "u", "d", background))
	if len(p.adds) != 1 {
		t.Fatalf("adds %d", len(p.adds))
	}
	got, _ := h.assign(w)
	if got != handle {
		t.Fatalf("assigned %s", got)
	}
	h.complete(w, got, "")
	if len(p.deletes) != 1 || p.deletes[0] != 1 {
		t.Fatalf("deletes %v", p.deletes)
	}
}

func TestDisconnectWhileAwaitingDurability(t *testing.T) {
	h, p := persistHarness(t, store.WriteThrough)
	c := h.connect("c")
	h.q.Submit(c.s, job("f", "u", "", background))
	h.q.Disconnect(c.s)
	p.settle(h.q, nil) // must not send to the closed session
	expectNothing(t, c)
	if st := h.q.StatusUnique([]byte("u")); !st.Known {
		t.Fatal("the stored job was lost when its submitter left")
	}
}

func TestRestore(t *testing.T) {
	h, _ := persistHarness(t, store.WriteThrough)
	when := h.clock.Now().Add(time.Hour)
	h.q.Restore(store.Record{Seq: 7, Handle: "H:old:7", Function: "f", Unique: "u", Data: []byte("a\x00b"), Priority: 2, Attempts: 3})
	h.q.Restore(store.Record{Seq: 9, Handle: "H:old:9", Function: "f", Reducer: "r", Data: []byte("later"), RunAt: when})
	h.q.Restore(store.Record{Seq: 12, Function: "g", Priority: 0})
	if got := h.q.Status([]byte("H:old:7")); !got.Known {
		t.Fatal("a restored handle is unknown")
	}
	if got := h.jobInfo("H:old:7"); got.Retries != 3 || got.Priority != Low || !got.Persisted {
		t.Fatalf("restored job: %+v", got)
	}
	if got := h.jobInfo("H:t:12"); got.Function != "g" || got.Priority != High {
		t.Fatalf("a record without a handle: %+v", got)
	}
	w := h.worker("w", "f")
	isPacket(t, h.grab(w, GrabJobUniq), protocol.JobAssignUniq, "H:old:7", "f", "u", "a\x00b")
	if h.grab(w, GrabJob).Type != protocol.NoJob {
		t.Fatal("an epoch job ran before its time")
	}
	h.clock.Advance(time.Hour)
	h.q.Tick(h.clock.Now())
	isPacket(t, h.grab(w, GrabJobAll), protocol.JobAssignAll, "H:old:9", "f", "", "r", "later")
	// The handle counter continues above the highest restored sequence.
	c := h.connect("c")
	if got := h.submit(c, job("f", "", "")); got != "H:t:13" {
		t.Fatalf("new handle %s after restore", got)
	}
	// Coalescing applies to restored jobs: "u" is running on w.
	if got := h.submit(c, job("f", "u", "")); got != "H:old:7" {
		t.Fatalf("a submission with a restored unique got %s", got)
	}
}

// isPacket checks one packet's type and arguments.
func isPacket(t testing.TB, got packet, typ protocol.Type, args ...string) {
	t.Helper()
	if got.Type != typ || len(got.Args) != len(args) {
		t.Fatalf("got %s %q, want %s %q", got.Type, got.Args, typ, args)
	}
	for i := range args {
		if got.Args[i] != args[i] {
			t.Fatalf("got %s %q, want %s %q", got.Type, got.Args, typ, args)
		}
	}
}
