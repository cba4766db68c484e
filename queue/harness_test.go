package queue

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"gearmand/protocol"
)

// fakeClock is the injected time source: it moves only when a test advances it.
type fakeClock struct{ now time.Time }

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time { return c.now }

// Advance moves the clock forward and returns the new time.
func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

// packet is one decoded frame a peer received.
type packet struct {
	Type    protocol.Type
	Args    []string // split by the type's layout
	Payload string   // the whole payload, for byte-exact checks
}

// recordingPeer decodes every frame the queue sends into a packet.
type recordingPeer struct {
	t      testing.TB
	name   string
	got    []packet
	shared int // packets that came through SendShared
}

// SendShared records head and data as one packet.
func (p *recordingPeer) SendShared(head, data []byte) {
	p.t.Helper()
	p.shared++
	p.Send(append(bytes.Clone(head), data...))
}

func (p *recordingPeer) Send(frame []byte) {
	p.t.Helper()
	if len(frame) < protocol.HeaderSize || string(frame[:4]) != "\x00RES" {
		p.t.Errorf("%s: frame %q is not a response packet", p.name, frame)
		return
	}
	typ := protocol.Type(binary.BigEndian.Uint32(frame[4:8]))
	n := binary.BigEndian.Uint32(frame[8:12])
	payload := frame[protocol.HeaderSize:]
	if int(n) != len(payload) {
		p.t.Errorf("%s: %s header says %d payload bytes, frame has %d", p.name, typ, n, len(payload))
		return
	}
	args, ok := protocol.Split(typ, payload, nil)
	if !ok {
		p.t.Errorf("%s: %s payload %q has too few fields", p.name, typ, payload)
		return
	}
	pk := packet{Type: typ, Payload: string(payload)}
	for _, a := range args {
		pk.Args = append(pk.Args, string(a))
	}
	p.got = append(p.got, pk)
}

// conn is one test connection: its queue session and what it received.
type conn struct {
	name string
	s    *Session
	p    *recordingPeer
}

// harness is a Queue on a fake clock, with handles "H:t:<n>". At cleanup it
// checks the queue's internal invariants.
type harness struct {
	t     *testing.T
	clock *fakeClock
	q     *Queue
	fd    int
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, clock: newClock()}
	if cfg.HandlePrefix == "" {
		cfg.HandlePrefix = "H:t"
	}
	cfg.Now = h.clock.Now
	h.q = New(cfg)
	t.Cleanup(func() { checkInvariants(t, h.q) })
	return h
}

func (h *harness) connect(name string) *conn {
	h.fd++
	return h.connectInfo(name, SessionInfo{FD: h.fd, Addr: "127.0.0.1"})
}

func (h *harness) connectInfo(name string, info SessionInfo) *conn {
	p := &recordingPeer{t: h.t, name: name}
	return &conn{name: name, s: h.q.Connect(p, info), p: p}
}

// worker connects and registers fns with CAN_DO, in order.
func (h *harness) worker(name string, fns ...string) *conn {
	w := h.connect(name)
	for _, f := range fns {
		h.q.CanDo(w.s, []byte(f), 0)
	}
	return w
}

// sleeper is a worker that has sent PRE_SLEEP with nothing to do.
func (h *harness) sleeper(name string, fns ...string) *conn {
	h.t.Helper()
	w := h.worker(name, fns...)
	h.q.PreSleep(w.s)
	expectNothing(h.t, w)
	return w
}

// subOpt modifies a Submission built by job.
type subOpt func(*Submission)

func background(s *Submission) { s.Background = true }

func priority(p Priority) subOpt { return func(s *Submission) { s.Priority = p } }

func runAt(t time.Time) subOpt { return func(s *Submission) { s.RunAt = t } }

func reducer(r string) subOpt { return func(s *Submission) { s.Reducer = []byte(r) } }

// job builds a NORMAL foreground submission.
func job(fn, unique, data string, opts ...subOpt) Submission {
	s := Submission{Function: []byte(fn), Unique: []byte(unique), Data: []byte(data), Priority: Normal}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// submit submits and expects JOB_CREATED as c's only packet; it returns the
// handle.
func (h *harness) submit(c *conn, sub Submission) string {
	h.t.Helper()
	if err := h.q.Submit(c.s, sub); err != nil {
		h.t.Fatalf("%s: Submit(%s, %q): %v", c.name, sub.Function, sub.Unique, err)
	}
	pk := next(h.t, c)
	if pk.Type != protocol.JobCreated || len(pk.Args) != 1 {
		h.t.Fatalf("%s: got %s %q after Submit, want JOB_CREATED", c.name, pk.Type, pk.Args)
	}
	expectNothing(h.t, c)
	return pk.Args[0]
}

// grab sends GRAB of kind and returns the one reply.
func (h *harness) grab(w *conn, kind GrabKind) packet {
	h.t.Helper()
	h.q.Grab(w.s, kind)
	pk := next(h.t, w)
	expectNothing(h.t, w)
	return pk
}

// assign grabs with GRAB_JOB, expects a JOB_ASSIGN and returns its handle
// and data.
func (h *harness) assign(w *conn) (handle, data string) {
	h.t.Helper()
	pk := h.grab(w, GrabJob)
	if pk.Type != protocol.JobAssign {
		h.t.Fatalf("%s: GRAB_JOB got %s %q, want JOB_ASSIGN", w.name, pk.Type, pk.Args)
	}
	return pk.Args[0], pk.Args[2]
}

// grabOrder grabs until NO_JOB and returns the data of each job in order.
func (h *harness) grabOrder(w *conn) []string {
	h.t.Helper()
	var out []string
	for range 1000 {
		pk := h.grab(w, GrabJob)
		if pk.Type == protocol.NoJob {
			return out
		}
		if pk.Type != protocol.JobAssign {
			h.t.Fatalf("%s: GRAB_JOB got %s", w.name, pk.Type)
		}
		out = append(out, pk.Args[2])
	}
	h.t.Fatalf("%s: never got NO_JOB", w.name)
	return nil
}

// work sends a worker packet the way the server would: the arguments are
// joined into a wire payload and split again by the type's layout.
func (h *harness) work(w *conn, t protocol.Type, args ...string) error {
	h.t.Helper()
	payload := []byte(strings.Join(args, "\x00"))
	split, ok := protocol.Split(t, payload, nil)
	if !ok {
		h.t.Fatalf("%s: %s payload %q does not split", w.name, t, payload)
	}
	return h.q.Work(w.s, t, split, payload, true) // payload is never modified
}

// mustWork sends a worker packet and requires it to be accepted.
func (h *harness) mustWork(w *conn, t protocol.Type, args ...string) {
	h.t.Helper()
	if err := h.work(w, t, args...); err != nil {
		h.t.Fatalf("%s: %s %q: %v", w.name, t, args, err)
	}
}

// complete sends WORK_COMPLETE and requires it to be accepted.
func (h *harness) complete(w *conn, handle, result string) {
	h.t.Helper()
	if err := h.work(w, protocol.WorkComplete, handle, result); err != nil {
		h.t.Fatalf("%s: WORK_COMPLETE %s: %v", w.name, handle, err)
	}
}

// function returns the status line of the named function.
func (h *harness) function(name string) FunctionStatus {
	h.t.Helper()
	for _, f := range h.q.Functions() {
		if f.Name == name {
			return f
		}
	}
	h.t.Fatalf("function %q not listed", name)
	return FunctionStatus{}
}

func (h *harness) jobInfo(handle string) JobInfo {
	h.t.Helper()
	for _, j := range h.q.Jobs() {
		if j.Handle == handle {
			return j
		}
	}
	h.t.Fatalf("job %s not listed", handle)
	return JobInfo{}
}

func next(t testing.TB, c *conn) packet {
	t.Helper()
	if len(c.p.got) == 0 {
		t.Fatalf("%s: received nothing, want a packet", c.name)
	}
	pk := c.p.got[0]
	c.p.got = c.p.got[1:]
	return pk
}

// expect requires c's next packet to be typ with exactly args.
func expect(t testing.TB, c *conn, typ protocol.Type, args ...string) {
	t.Helper()
	if len(c.p.got) == 0 {
		t.Fatalf("%s: received nothing, want %s %q", c.name, typ, args)
	}
	pk := next(t, c)
	if pk.Type != typ || !slices.Equal(pk.Args, args) {
		t.Fatalf("%s: got %s %q, want %s %q", c.name, pk.Type, pk.Args, typ, args)
	}
}

// expectPayload requires c's next packet to be typ with exactly payload.
func expectPayload(t testing.TB, c *conn, typ protocol.Type, payload string) {
	t.Helper()
	if len(c.p.got) == 0 {
		t.Fatalf("%s: received nothing, want %s %q", c.name, typ, payload)
	}
	pk := next(t, c)
	if pk.Type != typ || pk.Payload != payload {
		t.Fatalf("%s: got %s payload %q, want %s %q", c.name, pk.Type, pk.Payload, typ, payload)
	}
}

// expectNothing requires that c has received nothing more.
func expectNothing(t testing.TB, c *conn) {
	t.Helper()
	if len(c.p.got) > 0 {
		var b strings.Builder
		for _, pk := range c.p.got {
			b.WriteString(" " + pk.Type.String())
			if len(pk.Args) > 0 {
				b.WriteString(strings.ReplaceAll(strings.Join(pk.Args, "|"), "\x00", `\0`))
			}
		}
		t.Fatalf("%s: received unexpected packets:%s", c.name, b.String())
	}
}

// isClosed reports whether ch is closed or holds a value (which it takes).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// checkInvariants cross-checks the queue's indexes and counters: every
// counter matches the jobs it counts, every link goes both ways, and the
// timer heap is a heap of jobs that need a timer.
func checkInvariants(t testing.TB, q *Queue) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for name, f := range q.mu.functions {
		if f.name != name {
			t.Errorf("function %q indexed as %q", f.name, name)
		}
		var queued [numPriorities]int
		running, pending := 0, 0
		for p := range f.lists {
			var prev *Job
			for j := f.lists[p].head; j != nil; j = j.next {
				if j.state != stateQueued || j.function != f || j.priority != Priority(p) || j.prev != prev {
					t.Errorf("%s: bad job %s in %s list (state %d)", name, j.handle, Priority(p), j.state)
				}
				prev = j
				queued[p]++
			}
			if f.lists[p].tail != prev {
				t.Errorf("%s: %s list tail is stale", name, Priority(p))
			}
		}
		for j := range q.mu.jobs.all() {
			if j.function != f {
				continue
			}
			switch j.state {
			case stateDelayed:
				queued[j.priority]++
			case stateRunning:
				running++
			case statePending:
				pending++
			}
		}
		if queued != f.queued || running != f.running || pending != f.pending {
			t.Errorf("%s: counters queued %v running %d pending %d, jobs say %v, %d and %d", name, f.queued, f.running, f.pending, queued, running, pending)
		}
		for u, j := range f.uniques {
			if q.mu.jobs.get(j.handle) != j || j.unique != u || j.indexed != indexUnique || j.function != f {
				t.Errorf("%s: unique %q indexes stale job %s", name, u, j.handle)
			}
		}
		for d, j := range f.byData {
			if q.mu.jobs.get(j.handle) != j || j.data != d || j.indexed != indexData || j.function != f {
				t.Errorf("%s: payload index holds stale job %s", name, j.handle)
			}
		}
		for _, w := range f.workers {
			if _, ok := q.mu.sessions[w]; !ok || !slices.ContainsFunc(w.abilities, func(a ability) bool { return a.function == f }) {
				t.Errorf("%s: worker ring holds a session not registered for it", name)
			}
		}
	}
	for j := range q.mu.jobs.all() {
		h := j.handle
		if q.mu.jobs.get(h) != j || j.state == stateDone || q.mu.functions[j.function.name] != j.function {
			t.Errorf("job %s: stale entry (state %d)", h, j.state)
		}
		if (j.state == stateRunning) != (j.worker != nil) {
			t.Errorf("job %s: state %d with worker %v", h, j.state, j.worker != nil)
		}
		if j.worker != nil && !slices.Contains(j.worker.assigned, j) {
			t.Errorf("job %s: not in its worker's assigned list", h)
		}
		for _, c := range j.clients {
			if countJob(c.waiting, j) != countSession(j.clients, c) {
				t.Errorf("job %s: client attachment is one-sided", h)
			}
		}
		if j.state == stateDelayed && j.heapIndex < 0 {
			t.Errorf("job %s: delayed without a timer", h)
		}
		if j.state == stateQueued && j.heapIndex >= 0 {
			t.Errorf("job %s: queued with a timer", h)
		}
	}
	live := 0
	for i, j := range q.mu.created {
		if j == nil {
			continue
		}
		live++
		if j.slot != i || q.mu.jobs.get(j.handle) != j || (i > 0 && q.mu.created[i-1] != nil && q.mu.created[i-1].seq >= j.seq) {
			t.Errorf("creation list: job %s at %d is stale or out of order (slot %d)", j.handle, i, j.slot)
		}
	}
	if live != q.mu.jobs.len() || live+q.mu.holes != len(q.mu.created) {
		t.Errorf("creation list holds %d jobs and %d holes in %d slots; the index holds %d jobs", live, q.mu.holes, len(q.mu.created), q.mu.jobs.len())
	}
	var payload int64
	for j := range q.mu.jobs.all() {
		payload += int64(len(j.data))
	}
	if payload != q.mu.queuedBytes {
		t.Errorf("queued bytes counted %d, the jobs hold %d", q.mu.queuedBytes, payload)
	}
	for i, j := range q.mu.timers {
		if j.heapIndex != i || q.mu.jobs.get(j.handle) != j {
			t.Errorf("timer %d: job %s is stale (index %d)", i, j.handle, j.heapIndex)
		}
		if i > 0 && q.mu.timers.Less(i, (i-1)/2) {
			t.Errorf("timer heap out of order at %d", i)
		}
	}
	for s := range q.mu.sessions {
		if s.closed {
			t.Errorf("closed session still listed")
		}
		for _, j := range s.assigned {
			if j.worker != s || q.mu.jobs.get(j.handle) != j {
				t.Errorf("session holds stale assigned job %s", j.handle)
			}
		}
		for _, j := range s.waiting {
			if q.mu.jobs.get(j.handle) != j || !slices.Contains(j.clients, s) {
				t.Errorf("session waits on stale job %s", j.handle)
			}
		}
	}
}

func countJob(list []*Job, j *Job) int {
	n := 0
	for _, x := range list {
		if x == j {
			n++
		}
	}
	return n
}

func countSession(list []*Session, s *Session) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
