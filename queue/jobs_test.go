package queue

import (
	"errors"
	"strings"
	"testing"

	"gearmand/protocol"
)

// Rule: unique coalescing. "" never coalesces; "-" coalesces on identical
// non-empty payloads (not on an empty one); any other unique coalesces per
// function. Coalesced submissions get the existing handle whether they are
// foreground or background and do not use up a handle number.
func TestUniqueCoalescing(t *testing.T) {
	type step struct {
		sub  Submission
		want string // handle in JOB_CREATED
	}
	cases := []struct {
		name  string
		steps []step
		jobs  int
	}{
		{"empty unique never coalesces", []step{
			{job("f", "", "x", background), "H:t:1"},
			{job("f", "", "x", background), "H:t:2"},
			{job("f", "", "x"), "H:t:3"},
		}, 3},
		{"dash coalesces on identical payloads", []step{
			{job("f", "-", "x", background), "H:t:1"},
			{job("f", "-", "x"), "H:t:1"},
			{job("f", "-", "y", background), "H:t:2"},
			{job("f", "-", "x\x00", background), "H:t:3"},
			{job("f", "-", "y"), "H:t:2"},
		}, 3},
		{"dash with empty payload never coalesces", []step{
			{job("f", "-", "", background), "H:t:1"},
			{job("f", "-", "", background), "H:t:2"},
			{job("f", "-", ""), "H:t:3"},
		}, 3},
		{"dash is per function", []step{
			{job("f", "-", "x", background), "H:t:1"},
			{job("g", "-", "x", background), "H:t:2"},
		}, 2},
		{"dash and a unique equal to the payload differ", []step{
			{job("f", "-", "x", background), "H:t:1"},
			{job("f", "x", "x", background), "H:t:2"},
			{job("f", "x", "other", background), "H:t:2"},
		}, 2},
		{"unique is per function", []step{
			{job("f", "u", "1", background), "H:t:1"},
			{job("g", "u", "2", background), "H:t:2"},
			{job("f", "u", "3"), "H:t:1"},
			{job("g", "u", "4"), "H:t:2"},
		}, 2},
		{"unique bytes are exact", []step{
			{job("f", "u", "", background), "H:t:1"},
			{job("f", "U", "", background), "H:t:2"},
			{job("f", "u\x00", "", background), "H:t:3"},
			{job("f", "u ", "", background), "H:t:4"},
		}, 4},
		{"coalesced submissions use no handle number", []step{
			{job("f", "u", "", background), "H:t:1"},
			{job("f", "u", "", background), "H:t:1"},
			{job("f", "u", ""), "H:t:1"},
			{job("f", "u", "", priority(High)), "H:t:1"},
			{job("f", "v", "", background), "H:t:2"},
		}, 2},
		{"foreground first, then background and foreground", []step{
			{job("f", "u", ""), "H:t:1"},
			{job("f", "u", "", background), "H:t:1"},
			{job("f", "u", "", priority(Low)), "H:t:1"},
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("client")
			for i, s := range tc.steps {
				if got := h.submit(c, s.sub); got != s.want {
					t.Fatalf("step %d (%s %q): JOB_CREATED %s, want %s", i, s.sub.Function, s.sub.Unique, got, s.want)
				}
			}
			if got := len(h.q.Jobs()); got != tc.jobs {
				t.Fatalf("%d jobs, want %d", got, tc.jobs)
			}
		})
	}

	t.Run("while running, then a new job after it finished", func(t *testing.T) {
		h := newHarness(t, Config{})
		c1, c2, c3 := h.connect("c1"), h.connect("c2"), h.connect("c3")
		w := h.worker("w", "f")
		if got := h.submit(c1, job("f", "u", "first")); got != "H:t:1" {
			t.Fatalf("handle %s", got)
		}
		h.assign(w)
		if got := h.submit(c2, job("f", "u", "second")); got != "H:t:1" {
			t.Fatalf("fg submit of a running unique: %s, want H:t:1", got)
		}
		if got := h.submit(c3, job("f", "u", "third", background)); got != "H:t:1" {
			t.Fatalf("bg submit of a running unique: %s, want H:t:1", got)
		}
		if fs := h.function("f"); fs.Total() != 1 {
			t.Fatalf("function holds %d jobs, want 1", fs.Total())
		}
		h.complete(w, "H:t:1", "done")
		expect(t, c1, protocol.WorkComplete, "H:t:1", "done")
		expect(t, c2, protocol.WorkComplete, "H:t:1", "done")
		expectNothing(t, c3)
		if got := h.submit(c1, job("f", "u", "again", background)); got != "H:t:2" {
			t.Fatalf("submit after the job finished: %s, want H:t:2", got)
		}
		if _, d := h.assign(w); d != "again" {
			t.Fatalf("new job data %q", d)
		}
	})

	t.Run("dash: a new job after the first finished", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		w := h.worker("w", "f")
		h.submit(c, job("f", "-", "same", background))
		h.assign(w)
		if got := h.submit(c, job("f", "-", "same", background)); got != "H:t:1" {
			t.Fatalf("did not coalesce while running: %s", got)
		}
		h.complete(w, "H:t:1", "")
		if got := h.submit(c, job("f", "-", "same", background)); got != "H:t:2" {
			t.Fatalf("after it finished: %s, want H:t:2", got)
		}
	})

	t.Run("first submission's data and priority win", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		h.submit(c, job("f", "u", "first", background, priority(Low)))
		h.submit(c, job("f", "u", "second", priority(High)))
		h.submit(c, job("f", "u", "third", background, priority(High), reducer("r")))
		h.submit(c, job("f", "", "normal", background))
		if got := h.jobInfo("H:t:1").Priority; got != Low {
			t.Fatalf("priority %s, want low", got)
		}
		w := h.worker("w", "f")
		if _, d := h.assign(w); d != "normal" {
			t.Fatalf("first grab got %q: the coalesced HIGH submission raised the job", d)
		}
		h.q.Grab(w.s, GrabJobAll)
		// No reducer either: JOB_ASSIGN_UNIQ with the first data.
		expect(t, w, protocol.JobAssignUniq, "H:t:1", "f", "u", "first")
	})
}

// Rule: every attached foreground client receives every WORK_DATA,
// WORK_WARNING, WORK_STATUS and WORK_COMPLETE/WORK_FAIL, verbatim and in
// order; a client that attaches while the job runs sees only later packets.
func TestEveryAttachedClientReceivesWorkPackets(t *testing.T) {
	for _, final := range []protocol.Type{protocol.WorkComplete, protocol.WorkFail} {
		t.Run(final.String(), func(t *testing.T) {
			h := newHarness(t, Config{})
			c1, c2, late := h.connect("c1"), h.connect("c2"), h.connect("late")
			bgc := h.connect("bg")
			w := h.worker("w", "f")
			h.submit(c1, job("f", "u", "x"))
			h.submit(c2, job("f", "u", "y", priority(High)))
			h.submit(bgc, job("f", "u", "z", background))
			handle, _ := h.assign(w)

			steps := []struct {
				typ  protocol.Type
				args []string
			}{
				{protocol.WorkData, []string{handle, "d\x00one"}},
				{protocol.WorkWarning, []string{handle, "careful"}},
				{protocol.WorkStatus, []string{handle, "12abc", "100"}},
				{protocol.WorkData, []string{handle, ""}},
			}
			for i, s := range steps {
				if i == 2 {
					h.submit(late, job("f", "u", "late"))
				}
				if err := h.work(w, s.typ, s.args...); err != nil {
					t.Fatalf("%s: %v", s.typ, err)
				}
			}
			var last []string
			if final == protocol.WorkComplete {
				last = []string{handle, "result\x00bytes"}
			} else {
				last = []string{handle}
			}
			if err := h.work(w, final, last...); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*conn{c1, c2} {
				for _, s := range steps {
					expectPayload(t, c, s.typ, strings.Join(s.args, "\x00"))
				}
				expectPayload(t, c, final, strings.Join(last, "\x00"))
				expectNothing(t, c)
			}
			for _, s := range steps[2:] {
				expectPayload(t, late, s.typ, strings.Join(s.args, "\x00"))
			}
			expectPayload(t, late, final, strings.Join(last, "\x00"))
			expectNothing(t, late)
			expectNothing(t, bgc)
			expectNothing(t, w)
			if st := h.q.Status([]byte(handle)); st.Known {
				t.Fatalf("finished job still known: %+v", st)
			}
		})
	}

	t.Run("a client attached twice gets each packet twice", func(t *testing.T) {
		// gearmand keeps one listener per submission.
		h := newHarness(t, Config{})
		c := h.connect("c")
		w := h.worker("w", "f")
		h.submit(c, job("f", "u", ""))
		h.submit(c, job("f", "u", ""))
		h.assign(w)
		h.complete(w, "H:t:1", "r")
		expect(t, c, protocol.WorkComplete, "H:t:1", "r")
		expect(t, c, protocol.WorkComplete, "H:t:1", "r")
		expectNothing(t, c)
	})
}

// Rule: a background submission of a unique already queued gets the same
// handle and creates nothing.
func TestBackgroundSubmitOfQueuedUniqueCreatesNothing(t *testing.T) {
	h := newHarness(t, Config{})
	c1, c2 := h.connect("c1"), h.connect("c2")
	first := h.submit(c1, job("f", "uuid-1", "payload", background))
	for i := range 3 {
		if got := h.submit(c2, job("f", "uuid-1", "payload", background)); got != first {
			t.Fatalf("resubmission %d: %s, want %s", i, got, first)
		}
	}
	if fs := h.function("f"); fs.Queued != [3]int{0, 1, 0} || fs.Running != 0 {
		t.Fatalf("function %+v, want one queued job", fs)
	}
	if js := h.q.Jobs(); len(js) != 1 || !js[0].Persisted {
		t.Fatalf("jobs %+v, want one persisted job", js)
	}
	w := h.worker("w", "f")
	h.assign(w)
	if pk := h.grab(w, GrabJob); pk.Type != protocol.NoJob {
		t.Fatalf("second grab got %s, want NO_JOB", pk.Type)
	}
	expectNothing(t, c1)
	expectNothing(t, c2)
}

// Rule: WORK_STATUS numbers are stored with atoi semantics into uint32,
// visible through Status while running, forwarded verbatim, and reset to
// 0/0 when the job is requeued.
func TestWorkStatusStoredAndResetOnRequeue(t *testing.T) {
	cases := []struct {
		num, den     string
		wantN, wantD uint32
	}{
		{"3", "7", 3, 7},
		{"12abc", "100", 12, 100},
		{"-1", "-2", 4294967295, 4294967294},
		{" 5", "+6", 5, 6},
		{"abc", "", 0, 0},
		{"4294967296", "4294967295", 0, 4294967295},
		{"007", "0x10", 7, 0},
	}
	for _, tc := range cases {
		t.Run(tc.num+"/"+tc.den, func(t *testing.T) {
			h := newHarness(t, Config{JobRetries: -1})
			c := h.connect("c")
			w := h.worker("w", "f")
			handle := h.submit(c, job("f", "", "x"))
			if st := h.q.Status([]byte(handle)); st != (JobStatus{Known: true, Clients: 1}) {
				t.Fatalf("queued status %+v", st)
			}
			h.assign(w)
			if st := h.q.Status([]byte(handle)); st != (JobStatus{Known: true, Running: true, Clients: 1}) {
				t.Fatalf("running status before WORK_STATUS %+v", st)
			}
			if err := h.work(w, protocol.WorkStatus, handle, tc.num, tc.den); err != nil {
				t.Fatal(err)
			}
			expectPayload(t, c, protocol.WorkStatus, handle+"\x00"+tc.num+"\x00"+tc.den)
			want := JobStatus{Known: true, Running: true, Numerator: tc.wantN, Denominator: tc.wantD, Clients: 1}
			if st := h.q.Status([]byte(handle)); st != want {
				t.Fatalf("status %+v, want %+v", st, want)
			}
			h.q.Disconnect(w.s)
			if st := h.q.Status([]byte(handle)); st != (JobStatus{Known: true, Clients: 1}) {
				t.Fatalf("after requeue %+v, want known, queued, 0/0", st)
			}
			expectNothing(t, c)
		})
	}

	t.Run("unknown handle", func(t *testing.T) {
		h := newHarness(t, Config{})
		if st := h.q.Status([]byte("H:t:1")); st != (JobStatus{}) {
			t.Fatalf("status %+v", st)
		}
	})
}

// Rule: WORK_EXCEPTION goes verbatim to clients with the exceptions option
// (SetExceptions or SessionInfo.Exceptions); others get WORK_FAIL with the
// handle and a trailing NUL. The exception ends the job.
func TestWorkException(t *testing.T) {
	h := newHarness(t, Config{})
	plain := h.connect("plain")
	opted := h.connect("opted")
	h.q.SetExceptions(opted.s)
	born := h.connectInfo("born", SessionInfo{FD: 9, Exceptions: true})
	w := h.worker("w", "f")
	for _, c := range []*conn{plain, opted, born} {
		h.submit(c, job("f", "u", ""))
	}
	h.assign(w)
	if err := h.work(w, protocol.WorkException, "H:t:1", "boom\x00trace"); err != nil {
		t.Fatal(err)
	}
	expectPayload(t, plain, protocol.WorkFail, "H:t:1\x00")
	expectPayload(t, opted, protocol.WorkException, "H:t:1\x00boom\x00trace")
	expectPayload(t, born, protocol.WorkException, "H:t:1\x00boom\x00trace")
	for _, c := range []*conn{plain, opted, born, w} {
		expectNothing(t, c)
	}
	if st := h.q.Status([]byte("H:t:1")); st.Known {
		t.Fatalf("job survived its exception: %+v", st)
	}
	if fs := h.function("f"); fs.Total() != 0 {
		t.Fatalf("function %+v, want empty", fs)
	}
	if err := h.work(w, protocol.WorkComplete, "H:t:1", ""); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("WORK_COMPLETE after exception: %v", err)
	}

	t.Run("background job", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		w := h.worker("w", "f")
		h.submit(c, job("f", "", "", background))
		h.assign(w)
		if err := h.work(w, protocol.WorkException, "H:t:1", "x"); err != nil {
			t.Fatal(err)
		}
		expectNothing(t, c)
		if h.q.Len() != 0 {
			t.Fatal("job kept")
		}
	})
}

// Rule: work results are accepted only from the session the job is assigned
// to; another session, an unknown handle or a result after the final one
// gets ErrJobNotFound and changes nothing.
func TestWorkResultsOnlyFromAssignedSession(t *testing.T) {
	results := []struct {
		typ  protocol.Type
		args []string
	}{
		{protocol.WorkData, []string{"H:t:1", "d"}},
		{protocol.WorkWarning, []string{"H:t:1", "w"}},
		{protocol.WorkStatus, []string{"H:t:1", "1", "2"}},
		{protocol.WorkComplete, []string{"H:t:1", "r"}},
		{protocol.WorkFail, []string{"H:t:1"}},
		{protocol.WorkException, []string{"H:t:1", "e"}},
	}
	for _, r := range results {
		t.Run(r.typ.String(), func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("c")
			w := h.worker("w", "f")
			sameFunction := h.worker("same", "f")
			stranger := h.connect("stranger")
			h.submit(c, job("f", "", "x"))
			if err := h.work(w, r.typ, r.args...); !errors.Is(err, ErrJobNotFound) {
				t.Fatalf("queued job: %v, want ErrJobNotFound", err)
			}
			h.assign(w)
			for _, other := range []*conn{sameFunction, stranger, c} {
				if err := h.work(other, r.typ, r.args...); !errors.Is(err, ErrJobNotFound) {
					t.Fatalf("%s: %v, want ErrJobNotFound", other.name, err)
				}
			}
			if err := h.work(w, r.typ, append([]string{"H:t:2"}, r.args[1:]...)...); !errors.Is(err, ErrJobNotFound) {
				t.Fatalf("unknown handle: %v, want ErrJobNotFound", err)
			}
			expectNothing(t, c)
			if st := h.q.Status([]byte("H:t:1")); st != (JobStatus{Known: true, Running: true, Clients: 1}) {
				t.Fatalf("status changed by rejected results: %+v", st)
			}
			if err := h.q.Work(w.s, protocol.GrabJob, [][]byte{[]byte("H:t:1")}, nil, false); err == nil || errors.Is(err, ErrJobNotFound) {
				t.Fatalf("GRAB_JOB as a work result: %v, want an error other than ErrJobNotFound", err)
			}
			h.complete(w, "H:t:1", "r")
			expect(t, c, protocol.WorkComplete, "H:t:1", "r")
			if err := h.work(w, r.typ, r.args...); !errors.Is(err, ErrJobNotFound) {
				t.Fatalf("after WORK_COMPLETE: %v, want ErrJobNotFound", err)
			}
			expectNothing(t, c)
		})
	}
}

// Rule: a foreground client leaving abandons its job only when no other
// client waits and no background submission asked for it. A queued job is
// removed at once; a running one is ignored: its worker's results are
// accepted and go nowhere, and the unique is free for a new job.
func TestForegroundClientDisconnect(t *testing.T) {
	t.Run("alone, queued: removed at once", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		h.submit(c, job("f", "u", "x"))
		h.submit(c, job("f", "", "y", priority(High)))
		empty := h.q.WaitEmpty()
		if fs := h.function("f"); fs.Queued != [3]int{1, 1, 0} {
			t.Fatalf("before: %+v", fs)
		}
		h.q.Disconnect(c.s)
		if fs := h.function("f"); fs.Total() != 0 {
			t.Fatalf("after: %+v, want no jobs", fs)
		}
		if !isClosed(empty) || len(h.q.Jobs()) != 0 {
			t.Fatal("jobs left behind")
		}
		w := h.worker("w", "f")
		if pk := h.grab(w, GrabJob); pk.Type != protocol.NoJob {
			t.Fatalf("worker got %s, want NO_JOB", pk.Type)
		}
		c2 := h.connect("c2")
		if got := h.submit(c2, job("f", "u", "x")); got != "H:t:3" {
			t.Fatalf("unique still taken: %s", got)
		}
	})

	t.Run("two clients, one leaves", func(t *testing.T) {
		h := newHarness(t, Config{})
		c1, c2 := h.connect("c1"), h.connect("c2")
		h.submit(c1, job("f", "u", "x"))
		h.submit(c2, job("f", "u", "x"))
		h.q.Disconnect(c1.s)
		if st := h.q.StatusUnique([]byte("u")); st != (JobStatus{Known: true, Clients: 1}) {
			t.Fatalf("status %+v", st)
		}
		w := h.worker("w", "f")
		h.assign(w)
		h.complete(w, "H:t:1", "r")
		expect(t, c2, protocol.WorkComplete, "H:t:1", "r")
		expectNothing(t, c1)
	})

	bgCases := []struct {
		name  string
		first Submission
		then  Submission
	}{
		{"background job joined by foreground", job("f", "k2", "x", background), job("f", "k2", "x")},
		{"foreground job joined by background", job("f", "k2", "x"), job("f", "k2", "x", background)},
	}
	for _, tc := range bgCases {
		t.Run(tc.name+": never dropped", func(t *testing.T) {
			h := newHarness(t, Config{})
			fgc, bgc := h.connect("fg"), h.connect("bg")
			if tc.first.Background {
				h.submit(bgc, tc.first)
				h.submit(fgc, tc.then)
			} else {
				h.submit(fgc, tc.first)
				h.submit(bgc, tc.then)
			}
			h.q.Disconnect(fgc.s)
			if fs := h.function("f"); fs.Queued[Normal] != 1 {
				t.Fatalf("job dropped: %+v", fs)
			}
			w := h.worker("w", "f")
			if _, d := h.assign(w); d != "x" {
				t.Fatalf("data %q", d)
			}
			h.complete(w, "H:t:1", "r")
			expectNothing(t, bgc)
		})
		t.Run(tc.name+": running, client leaves, job kept", func(t *testing.T) {
			h := newHarness(t, Config{JobRetries: -1})
			fgc, bgc := h.connect("fg"), h.connect("bg")
			w := h.worker("w", "f")
			if tc.first.Background {
				h.submit(bgc, tc.first)
				h.submit(fgc, tc.then)
			} else {
				h.submit(fgc, tc.first)
				h.submit(bgc, tc.then)
			}
			h.assign(w)
			h.q.Disconnect(fgc.s)
			if j := h.jobInfo("H:t:1"); j.Ignore {
				t.Fatal("background job ignored")
			}
			h.q.Disconnect(w.s) // lost worker: the job must come back
			w2 := h.worker("w2", "f")
			h.assign(w2)
		})
	}

	t.Run("running, abandoned: result accepted and goes nowhere", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		w := h.worker("w", "f")
		h.submit(c, job("f", "u", "x"))
		h.assign(w)
		h.q.Disconnect(c.s)
		if j := h.jobInfo("H:t:1"); !j.Ignore || !j.Running {
			t.Fatalf("abandoned running job %+v, want ignore and running", j)
		}
		if st := h.q.Status([]byte("H:t:1")); !st.Known || st.Clients != 0 {
			t.Fatalf("status %+v, want known with no clients", st)
		}
		c2 := h.connect("c2")
		if got := h.submit(c2, job("f", "u", "new")); got != "H:t:2" {
			t.Fatalf("new submission coalesced into the abandoned job: %s", got)
		}
		if err := h.work(w, protocol.WorkData, "H:t:1", "d"); err != nil {
			t.Fatal(err)
		}
		h.complete(w, "H:t:1", "r")
		expectNothing(t, c)
		expectNothing(t, c2)
		if fs := h.function("f"); fs.Running != 0 || fs.Queued[Normal] != 1 {
			t.Fatalf("function %+v", fs)
		}
		if _, d := h.assign(w); d != "new" {
			t.Fatalf("got %q", d)
		}
		h.complete(w, "H:t:2", "r2")
		expect(t, c2, protocol.WorkComplete, "H:t:2", "r2")
	})

	t.Run("running, abandoned, worker lost: dropped", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w := h.worker("w", "f")
		h.submit(c, job("f", "u", "x"))
		h.assign(w)
		h.q.Disconnect(c.s)
		h.q.Disconnect(w.s)
		if h.q.Len() != 0 {
			t.Fatalf("abandoned job requeued: %+v", h.q.Jobs())
		}
		if fs := h.function("f"); fs.Total() != 0 {
			t.Fatalf("function %+v", fs)
		}
	})

	t.Run("Disconnect is idempotent", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		h.submit(c, job("f", "u", "x"))
		h.submit(c, job("f", "u", "x"))
		h.q.Disconnect(c.s)
		h.q.Disconnect(c.s)
		if h.q.Len() != 0 || len(h.q.Workers()) != 0 {
			t.Fatal("state left behind")
		}
	})
}

// Rule: a unique of exactly MaxUnique (64) bytes is stored whole and
// coalesces; one byte more is ErrUniqueTooLarge and creates nothing.
func TestUniqueLength(t *testing.T) {
	u64 := strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		name   string
		unique string
		err    error
	}{
		{"63", u64[:63], nil},
		{"64", u64, nil},
		{"64 binary", strings.Repeat("\x01\xff", 32), nil},
		{"65", u64 + "x", ErrUniqueTooLarge},
		{"1000", strings.Repeat("u", 1000), ErrUniqueTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("c")
			w := h.worker("w", "f")
			if tc.err != nil {
				for _, bg := range []bool{false, true} {
					sub := job("f", tc.unique, "x")
					sub.Background = bg
					if err := h.q.Submit(c.s, sub); !errors.Is(err, tc.err) {
						t.Fatalf("Submit = %v, want %v", err, tc.err)
					}
				}
				expectNothing(t, c)
				if h.q.Len() != 0 {
					t.Fatal("a job was created")
				}
				if got := h.submit(c, job("f", "ok", "")); got != "H:t:1" {
					t.Fatalf("a rejected submission used a handle number: next is %s", got)
				}
				return
			}
			h.submit(c, job("f", tc.unique, "x", background))
			if got := h.submit(c, job("f", tc.unique, "y")); got != "H:t:1" {
				t.Fatalf("did not coalesce: %s", got)
			}
			if got := h.jobInfo("H:t:1").Unique; got != tc.unique {
				t.Fatalf("stored unique %q, want %q", got, tc.unique)
			}
			if st := h.q.StatusUnique([]byte(tc.unique)); !st.Known {
				t.Fatal("StatusUnique does not find it")
			}
			h.q.Grab(w.s, GrabJobUniq)
			expect(t, w, protocol.JobAssignUniq, "H:t:1", "f", tc.unique, "x")
		})
	}
}

// A large packet must not leave the queue holding a buffer of its size:
// the encode buffer is reused for small packets only.
func TestLargePacketsDoNotPinTheEncodeBuffer(t *testing.T) {
	big := strings.Repeat("x", 4<<20)
	steps := []struct {
		name string
		do   func(h *harness, c, w *conn)
	}{
		{"JOB_ASSIGN", func(h *harness, c, w *conn) {
			h.submit(c, job("f", "", big, background))
			if _, d := h.assign(w); len(d) != len(big) {
				t.Fatalf("data of %d bytes", len(d))
			}
		}},
		{"WORK_DATA", func(h *harness, c, w *conn) {
			h.submit(c, job("f", "", ""))
			h.assign(w)
			h.mustWork(w, protocol.WorkData, "H:t:1", big)
			expectPayload(t, c, protocol.WorkData, "H:t:1\x00"+big)
		}},
		{"WORK_EXCEPTION", func(h *harness, c, w *conn) {
			h.q.SetExceptions(c.s)
			h.submit(c, job("f", "", ""))
			h.assign(w)
			h.mustWork(w, protocol.WorkException, "H:t:1", big)
			expectPayload(t, c, protocol.WorkException, "H:t:1\x00"+big)
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c, w := h.connect("c"), h.worker("w", "f")
			s.do(h, c, w)
			if n := cap(h.q.scratch); n > maxScratch {
				t.Fatalf("encode buffer kept at %d bytes", n)
			}
			// Small packets still reuse one buffer.
			h.submit(c, job("f", "", "small", background))
			h.assign(w)
			if cap(h.q.scratch) == 0 {
				t.Fatal("no encode buffer kept for small packets")
			}
		})
	}
}
