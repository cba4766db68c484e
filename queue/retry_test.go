package queue

import (
	"errors"
	"slices"
	"testing"
	"time"

	"gearmand/protocol"
)

// losses are the ways a worker loses the jobs it holds for function "f".
var losses = []struct {
	name string
	lose func(h *harness, w *conn)
}{
	{"disconnect", func(h *harness, w *conn) { h.q.Disconnect(w.s) }},
	{"CANT_DO", func(h *harness, w *conn) { h.q.CantDo(w.s, []byte("f")) }},
	{"RESET_ABILITIES", func(h *harness, w *conn) { h.q.ResetAbilities(w.s) }},
}

// Rule: a lost worker's jobs (disconnect, CANT_DO of the job's function,
// RESET_ABILITIES) go to the tail of their priority list, behind jobs queued
// meanwhile, in the order they were queued before.
func TestLostWorkerRequeuesAtTail(t *testing.T) {
	for _, l := range losses {
		t.Run(l.name, func(t *testing.T) {
			h := newHarness(t, Config{JobRetries: -1})
			c := h.connect("c")
			w1 := h.worker("w1", "f")
			for _, d := range []string{"j1", "j2", "j3"} {
				h.submit(c, job("f", "", d, background))
			}
			h.submit(c, job("f", "", "low", background, priority(Low)))
			for range 3 {
				h.assign(w1)
			}
			h.submit(c, job("f", "", "j4", background))
			h.submit(c, job("f", "", "j5", background))
			h.q.Grab(w1.s, GrabJob) // j4 too, so requeue order is not grab order by accident
			expect(t, w1, protocol.JobAssign, "H:t:5", "f", "j4")

			l.lose(h, w1)
			if fs := h.function("f"); fs.Running != 0 || fs.Queued != [3]int{0, 5, 1} {
				t.Fatalf("after the loss: %+v", fs)
			}
			for _, handle := range []string{"H:t:1", "H:t:2", "H:t:3", "H:t:5"} {
				if j := h.jobInfo(handle); j.Retries != 1 || j.Running {
					t.Fatalf("%s: %+v, want queued with one retry", handle, j)
				}
			}
			if st := h.q.Status([]byte("H:t:1")); st.Running {
				t.Fatal("lost job still running")
			}
			w2 := h.worker("w2", "f")
			want := []string{"j5", "j1", "j2", "j3", "j4", "low"}
			if got := h.grabOrder(w2); !slices.Equal(got, want) {
				t.Fatalf("grab order %q, want %q", got, want)
			}
			expectNothing(t, c)
		})
	}

	t.Run("order kept after one of the jobs ended", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w1 := h.connect("w1")
		h.q.CanDo(w1.s, []byte("f"), time.Minute)
		for _, d := range []string{"j1", "j2", "j3", "j4", "j5"} {
			h.submit(c, job("f", "", d, background))
		}
		for range 5 {
			h.assign(w1)
		}
		h.complete(w1, "H:t:1", "")
		h.mustWork(w1, protocol.WorkFail, "H:t:3")
		h.q.Disconnect(w1.s)
		want := []string{"j2", "j4", "j5"}
		if got := h.grabOrder(h.worker("w2", "f")); !slices.Equal(got, want) {
			t.Fatalf("grab order %q, want %q", got, want)
		}
	})

	t.Run("high job requeued ahead of normal jobs", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w1 := h.worker("w1", "f")
		h.submit(c, job("f", "", "high", background, priority(High)))
		h.assign(w1)
		h.submit(c, job("f", "", "normal", background))
		h.q.Disconnect(w1.s)
		w2 := h.worker("w2", "f")
		if got := h.grabOrder(w2); !slices.Equal(got, []string{"high", "normal"}) {
			t.Fatalf("grab order %q", got)
		}
	})
}

// Rule: requeueing a lost worker's job wakes sleeping workers of its
// function, never the worker that was lost.
func TestLostWorkerWakesSleepers(t *testing.T) {
	for _, wakeup := range []int{0, 1} {
		for _, l := range losses {
			t.Run(l.name+"/wakeup="+string(rune('0'+wakeup)), func(t *testing.T) {
				h := newHarness(t, Config{JobRetries: -1, WorkerWakeup: wakeup})
				c := h.connect("c")
				w1 := h.worker("w1", "f")
				h.submit(c, job("f", "", "x", background))
				h.assign(w1)
				// An asynchronous worker may ask to sleep while it holds a job.
				h.q.PreSleep(w1.s)
				expectNothing(t, w1)
				s1, s2 := h.sleeper("s1", "f"), h.sleeper("s2", "f")

				l.lose(h, w1)
				expectNothing(t, w1)
				woken := 0
				for _, s := range []*conn{s1, s2} {
					if len(s.p.got) > 0 {
						expect(t, s, protocol.Noop)
						woken++
					}
					expectNothing(t, s)
				}
				want := 2
				if wakeup == 1 {
					want = 1
				}
				if woken != want {
					t.Fatalf("%d sleepers woken, want %d", woken, want)
				}
			})
		}
	}
}

// Rule: CANT_DO of a function other than the job's does not requeue it.
func TestCantDoUnrelatedFunctionKeepsJob(t *testing.T) {
	h := newHarness(t, Config{JobRetries: -1})
	c := h.connect("c")
	w := h.worker("w", "f", "g")
	h.submit(c, job("f", "", "x"))
	h.assign(w)
	h.q.CantDo(w.s, []byte("g"))
	h.q.CantDo(w.s, []byte("unknown"))
	if j := h.jobInfo("H:t:1"); !j.Running || j.Retries != 0 {
		t.Fatalf("job %+v, want still running", j)
	}
	for _, f := range h.q.Functions() {
		if f.Name == "unknown" {
			t.Fatal("CANT_DO created a function")
		}
	}
	if got := h.function("g").Workers; got != 0 {
		t.Fatalf("g has %d workers", got)
	}
	h.complete(w, "H:t:1", "r")
	expect(t, c, protocol.WorkComplete, "H:t:1", "r")
}

// Rule: JobRetries bounds how many times a job runs: negative is unlimited,
// 0 drops it on the first loss, N drops it on the Nth. A dropped job's
// clients get WORK_FAIL with the bare handle; the retry counter shows in
// Jobs().
func TestJobRetries(t *testing.T) {
	cases := []struct {
		retries int
		dropAt  int // loss that drops the job; 0: never within 10 losses
	}{
		{-1, 0},
		{-5, 0},
		{0, 1},
		{1, 1},
		{2, 2},
		{3, 3},
	}
	for _, tc := range cases {
		t.Run("JobRetries="+itoa(tc.retries), func(t *testing.T) {
			h := newHarness(t, Config{JobRetries: tc.retries})
			c := h.connect("c")
			bgc := h.connect("bg")
			handle := h.submit(c, job("f", "u", "x"))
			bgHandle := h.submit(bgc, job("f", "", "y", background, priority(Low)))
			for loss := 1; loss <= 10; loss++ {
				w := h.worker("w", "f")
				if got, _ := h.assign(w); got != handle {
					t.Fatalf("loss %d: grabbed %s", loss, got)
				}
				h.q.Disconnect(w.s)
				if loss == tc.dropAt {
					expectPayload(t, c, protocol.WorkFail, handle)
					expectNothing(t, c)
					if st := h.q.Status([]byte(handle)); st.Known {
						t.Fatalf("dropped job still known: %+v", st)
					}
					if fs := h.function("f"); fs.Queued != [3]int{0, 0, 1} || fs.Running != 0 {
						t.Fatalf("function %+v", fs)
					}
					// The unique is free again.
					if got := h.submit(c, job("f", "u", "z")); got == handle {
						t.Fatal("coalesced into the dropped job")
					}
					return
				}
				expectNothing(t, c)
				if j := h.jobInfo(handle); j.Retries != uint32(loss) || j.Running {
					t.Fatalf("loss %d: %+v", loss, j)
				}
			}
			if tc.dropAt != 0 {
				t.Fatalf("never dropped, want drop at loss %d", tc.dropAt)
			}
			if j := h.jobInfo(bgHandle); j.Retries != 0 {
				t.Fatalf("untouched job %+v", j)
			}
		})
	}

	t.Run("background job dropped silently", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: 0})
		c := h.connect("c")
		w := h.worker("w", "f")
		h.submit(c, job("f", "", "x", background))
		empty := h.q.WaitEmpty()
		h.assign(w)
		h.q.ResetAbilities(w.s)
		expectNothing(t, c)
		if !isClosed(empty) {
			t.Fatal("WaitEmpty not closed after the last job was dropped")
		}
	})
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// Rule: CAN_DO_TIMEOUT. Each assigned job has its own timer; when Tick passes
// it the job is requeued like a lost worker's (retry counter, JobRetries) and
// the original worker's late result is rejected. A job that ended before its
// deadline is unaffected by later Ticks.
func TestCanDoTimeout(t *testing.T) {
	t.Run("expiry requeues; late result rejected", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w := h.connect("w")
		h.q.CanDo(w.s, []byte("f"), 5*time.Second)
		s := h.sleeper("s", "f")
		t0 := h.clock.Now()
		handle := h.submit(c, job("f", "", "x"))
		expect(t, s, protocol.Noop)
		h.assign(w)
		if next := h.q.Tick(t0); !next.Equal(t0.Add(5 * time.Second)) {
			t.Fatalf("next deadline %v, want t0+5s", next.Sub(t0))
		}
		h.q.Tick(h.clock.Advance(5*time.Second - time.Millisecond))
		if j := h.jobInfo(handle); !j.Running {
			t.Fatal("requeued before its deadline")
		}
		h.q.PreSleep(s.s) // s grabs nothing: the only job is running
		expectNothing(t, s)

		if next := h.q.Tick(h.clock.Advance(time.Millisecond)); !next.IsZero() {
			t.Fatalf("next deadline %v after expiry, want none", next)
		}
		if j := h.jobInfo(handle); j.Running || j.Retries != 1 {
			t.Fatalf("after expiry %+v, want queued with one retry", j)
		}
		if fs := h.function("f"); fs.Running != 0 || fs.Queued[Normal] != 1 {
			t.Fatalf("function %+v", fs)
		}
		expect(t, s, protocol.Noop)
		expectNothing(t, c)
		if err := h.work(w, protocol.WorkComplete, handle, "late"); !errors.Is(err, ErrJobNotFound) {
			t.Fatalf("late WORK_COMPLETE: %v, want ErrJobNotFound", err)
		}
		expectNothing(t, c)
		// It may run again, even on the same worker.
		if got, _ := h.assign(w); got != handle {
			t.Fatalf("regrabbed %s", got)
		}
		h.complete(w, handle, "ok")
		expect(t, c, protocol.WorkComplete, handle, "ok")
	})

	for _, tc := range []struct{ retries, dropAt int }{{0, 1}, {1, 1}, {2, 2}} {
		t.Run("JobRetries="+itoa(tc.retries), func(t *testing.T) {
			h := newHarness(t, Config{JobRetries: tc.retries})
			c := h.connect("c")
			w := h.connect("w")
			h.q.CanDo(w.s, []byte("f"), time.Second)
			handle := h.submit(c, job("f", "", "x"))
			for n := 1; n <= tc.dropAt; n++ {
				h.assign(w)
				h.q.Tick(h.clock.Advance(time.Second))
				if n < tc.dropAt {
					expectNothing(t, c)
					continue
				}
				expectPayload(t, c, protocol.WorkFail, handle)
				if h.q.Len() != 0 {
					t.Fatalf("job kept: %+v", h.q.Jobs())
				}
			}
		})
	}

	// Whatever ends a job before its deadline also ends its timer.
	enders := []struct {
		name string
		end  func(h *harness, w *conn, handle string)
	}{
		{"WORK_COMPLETE", func(h *harness, w *conn, handle string) { h.complete(w, handle, "") }},
		{"WORK_FAIL", func(h *harness, w *conn, handle string) { h.mustWork(w, protocol.WorkFail, handle) }},
		{"WORK_EXCEPTION", func(h *harness, w *conn, handle string) { h.mustWork(w, protocol.WorkException, handle, "e") }},
		{"disconnect", func(h *harness, w *conn, handle string) { h.q.Disconnect(w.s) }},
		{"CANT_DO", func(h *harness, w *conn, handle string) { h.q.CantDo(w.s, []byte("f")) }},
		{"RESET_ABILITIES", func(h *harness, w *conn, handle string) { h.q.ResetAbilities(w.s) }},
		{"cancel", func(h *harness, w *conn, handle string) { h.q.Cancel(handle); h.complete(w, handle, "") }},
	}
	for _, e := range enders {
		t.Run("ended by "+e.name+" before the deadline", func(t *testing.T) {
			h := newHarness(t, Config{JobRetries: -1})
			c := h.connect("c")
			w := h.connect("w")
			h.q.CanDo(w.s, []byte("f"), 2*time.Second)
			handle := h.submit(c, job("f", "", "x", background))
			h.assign(w)
			h.clock.Advance(time.Second)
			e.end(h, w, handle)
			before := h.q.Jobs()
			for range 3 {
				if next := h.q.Tick(h.clock.Advance(time.Hour)); !next.IsZero() {
					t.Fatalf("a timer is still pending at %v", next)
				}
			}
			if after := h.q.Jobs(); !slices.Equal(before, after) {
				t.Fatalf("Tick changed jobs: %+v -> %+v", before, after)
			}
			if fs := h.function("f"); fs.Running != 0 {
				t.Fatalf("running count %d", fs.Running)
			}
		})
	}

	floors := []struct {
		name    string
		timeout time.Duration
		want    time.Duration // 0: no timer
	}{
		{"1ms", time.Millisecond, time.Second},
		{"500ms", 500 * time.Millisecond, time.Second},
		{"999ms", 999 * time.Millisecond, time.Second},
		{"1s", time.Second, time.Second},
		{"1.5s", 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"zero", 0, 0},
		{"negative", -5 * time.Second, 0},
	}
	for _, tc := range floors {
		t.Run("timeout "+tc.name, func(t *testing.T) {
			h := newHarness(t, Config{JobRetries: -1})
			c := h.connect("c")
			w := h.connect("w")
			h.q.CanDo(w.s, []byte("f"), tc.timeout)
			h.submit(c, job("f", "", "x", background))
			t0 := h.clock.Now()
			h.assign(w)
			next := h.q.Tick(t0)
			if tc.want == 0 {
				if !next.IsZero() {
					t.Fatalf("deadline at +%v, want none", next.Sub(t0))
				}
				h.q.Tick(h.clock.Advance(24 * time.Hour))
				if !h.jobInfo("H:t:1").Running {
					t.Fatal("requeued without a timeout")
				}
				return
			}
			if got := next.Sub(t0); got != tc.want {
				t.Fatalf("deadline at +%v, want +%v", got, tc.want)
			}
			h.q.Tick(t0.Add(tc.want - 1))
			if !h.jobInfo("H:t:1").Running {
				t.Fatal("requeued early")
			}
			h.q.Tick(t0.Add(tc.want))
			if h.jobInfo("H:t:1").Running {
				t.Fatal("not requeued at the deadline")
			}
		})
	}

	// gearmand's t/client (gearman_worker_timeout): CAN_DO_TIMEOUT 1s, a
	// 20-second job, and libgearman sends PRE_SLEEP while it holds the job.
	// C gearmand stops timing a connection that goes to sleep, so the late
	// result is the job's result; so do we. A job grabbed after waking is
	// timed again.
	t.Run("PRE_SLEEP while holding a job stops its timer", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w := h.connect("w")
		h.q.CanDo(w.s, []byte("f"), time.Second)
		held := h.submit(c, job("f", "", "long"))
		h.assign(w)
		h.q.PreSleep(w.s)
		expectNothing(t, w)
		if next := h.q.Tick(h.clock.Advance(2 * time.Second)); !next.IsZero() {
			t.Fatalf("a timer is still pending at %v", next)
		}
		h.q.Tick(h.clock.Advance(20 * time.Second))
		if j := h.jobInfo(held); !j.Running || j.Retries != 0 {
			t.Fatalf("after sleeping 22s %+v, want still running, never retried", j)
		}
		h.complete(w, held, "done")
		expect(t, c, protocol.WorkComplete, held, "done")

		// Woken and grabbing again: the new job has its own timer.
		again := h.submit(c, job("f", "", "next"))
		expect(t, w, protocol.Noop)
		t0 := h.clock.Now()
		h.assign(w)
		if next := h.q.Tick(t0); !next.Equal(t0.Add(time.Second)) {
			t.Fatalf("next deadline +%v, want +1s", next.Sub(t0))
		}
		h.q.Tick(h.clock.Advance(time.Second))
		if j := h.jobInfo(again); j.Running || j.Retries != 1 {
			t.Fatalf("after its timeout %+v, want requeued", j)
		}
	})

	t.Run("PRE_SLEEP answered with NOOP keeps the timers", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w := h.connect("w")
		h.q.CanDo(w.s, []byte("f"), time.Second)
		held := h.submit(c, job("f", "", "1", background))
		h.submit(c, job("f", "", "2", background))
		h.assign(w)
		h.q.PreSleep(w.s)
		expect(t, w, protocol.Noop)
		h.q.Tick(h.clock.Advance(time.Second))
		if j := h.jobInfo(held); j.Running || j.Retries != 1 {
			t.Fatalf("after its timeout %+v, want requeued", j)
		}
	})

	t.Run("two jobs on one worker have their own deadlines", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w := h.connect("w")
		h.q.CanDo(w.s, []byte("f"), 5*time.Second)
		j1 := h.submit(c, job("f", "", "1", background))
		j2 := h.submit(c, job("f", "", "2", background))
		t0 := h.clock.Now()
		h.assign(w)
		h.clock.Advance(3 * time.Second)
		h.assign(w)
		if next := h.q.Tick(t0.Add(5 * time.Second)); !next.Equal(t0.Add(8 * time.Second)) {
			t.Fatalf("next deadline +%v, want +8s", next.Sub(t0))
		}
		if h.jobInfo(j1).Running || !h.jobInfo(j2).Running {
			t.Fatal("want j1 requeued and j2 still running")
		}
		// j2 still belongs to w: its result is accepted.
		if err := h.work(w, protocol.WorkStatus, j2, "1", "2"); err != nil {
			t.Fatal(err)
		}
		h.q.Tick(t0.Add(8 * time.Second))
		if h.jobInfo(j2).Running {
			t.Fatal("j2 not requeued at its own deadline")
		}
		if fs := h.function("f"); fs.Running != 0 || fs.Queued[Normal] != 2 {
			t.Fatalf("function %+v", fs)
		}
	})

	t.Run("newest registration's timeout applies", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w := h.connect("w")
		h.q.CanDo(w.s, []byte("f"), 10*time.Second)
		h.q.CanDo(w.s, []byte("f"), 2*time.Second)
		h.submit(c, job("f", "", "x", background))
		t0 := h.clock.Now()
		h.assign(w)
		if next := h.q.Tick(t0); next.Sub(t0) != 2*time.Second {
			t.Fatalf("deadline +%v, want +2s", next.Sub(t0))
		}
	})
}

// Rule: epoch jobs (Submission.RunAt) are not grabbable before they are due
// but count as queued; the Tick at the due time makes them runnable and
// wakes sleeping workers; Tick returns the next deadline; a past RunAt runs
// at once; a job not yet due blocks nothing.
func TestEpochJobs(t *testing.T) {
	t.Run("runs when due and wakes sleepers", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		w := h.sleeper("w", "f")
		t0 := h.clock.Now()
		due := t0.Add(10 * time.Second)
		handle := h.submit(c, job("f", "e", "x", background, runAt(due)))
		expectNothing(t, w)
		if fs := h.function("f"); fs.Queued != [3]int{0, 1, 0} || fs.Running != 0 {
			t.Fatalf("function %+v, want one queued", fs)
		}
		if st := h.q.Status([]byte(handle)); st != (JobStatus{Known: true}) {
			t.Fatalf("status %+v", st)
		}
		if next := h.q.Tick(t0); !next.Equal(due) {
			t.Fatalf("next deadline %v, want %v", next, due)
		}
		if pk := h.grab(w, GrabJob); pk.Type != protocol.NoJob {
			t.Fatalf("grabbed %s before due", pk.Type)
		}
		h.q.PreSleep(w.s)
		expectNothing(t, w)
		if next := h.q.Tick(h.clock.Advance(10*time.Second - time.Nanosecond)); !next.Equal(due) {
			t.Fatalf("next deadline %v, want %v", next, due)
		}
		expectNothing(t, w)
		if next := h.q.Tick(h.clock.Advance(time.Nanosecond)); !next.IsZero() {
			t.Fatalf("next deadline %v, want none", next)
		}
		expect(t, w, protocol.Noop)
		if got, d := h.assign(w); got != handle || d != "x" {
			t.Fatalf("grabbed %s %q", got, d)
		}
	})

	t.Run("a late Tick still runs it", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		w := h.worker("w", "f")
		h.submit(c, job("f", "", "x", background, runAt(h.clock.Now().Add(time.Second))))
		h.q.Tick(h.clock.Advance(time.Hour))
		if _, d := h.assign(w); d != "x" {
			t.Fatalf("got %q", d)
		}
	})

	for _, tc := range []struct {
		name string
		at   time.Duration
	}{{"past", -time.Hour}, {"now", 0}} {
		t.Run(tc.name+" RunAt runs at once", func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("c")
			w := h.sleeper("w", "f")
			h.submit(c, job("f", "", "x", background, runAt(h.clock.Now().Add(tc.at))))
			expect(t, w, protocol.Noop)
			if next := h.q.Tick(h.clock.Now()); !next.IsZero() {
				t.Fatalf("a timer is pending: %v", next)
			}
			if _, d := h.assign(w); d != "x" {
				t.Fatalf("got %q", d)
			}
		})
	}

	t.Run("not due blocks no other job", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		h.submit(c, job("f", "", "epoch", background, runAt(h.clock.Now().Add(time.Minute))))
		h.submit(c, job("f", "", "f-low", background, priority(Low)))
		h.submit(c, job("g", "", "g-normal", background))
		w := h.worker("w", "f", "g")
		h.q.PreSleep(w.s)
		expect(t, w, protocol.Noop)
		if got := h.grabOrder(w); !slices.Equal(got, []string{"g-normal", "f-low"}) {
			t.Fatalf("grab order %q", got)
		}
	})

	t.Run("Tick returns the earliest deadline", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		t0 := h.clock.Now()
		for _, s := range []int{30, 10, 20} {
			h.submit(c, job("f", "", itoa(s), background, runAt(t0.Add(time.Duration(s)*time.Second))))
		}
		w := h.worker("w", "f")
		for _, want := range []int{10, 20, 30} {
			if next := h.q.Tick(h.clock.Now()); next.Sub(t0) != time.Duration(want)*time.Second {
				t.Fatalf("next +%v, want +%ds", next.Sub(t0), want)
			}
			h.q.Tick(t0.Add(time.Duration(want) * time.Second))
			h.clock.now = t0.Add(time.Duration(want) * time.Second)
			if _, d := h.assign(w); d != itoa(want) {
				t.Fatalf("got %q, want %d", d, want)
			}
		}
		if next := h.q.Tick(h.clock.Now()); !next.IsZero() {
			t.Fatalf("next %v, want none", next)
		}
	})

	t.Run("jobs due together keep submission order", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		due := h.clock.Now().Add(time.Second)
		var want []string
		for i := range 8 {
			want = append(want, itoa(i))
			h.submit(c, job("f", "", itoa(i), background, runAt(due)))
		}
		h.q.Tick(due)
		w := h.worker("w", "f")
		if got := h.grabOrder(w); !slices.Equal(got, want) {
			t.Fatalf("grab order %q, want %q", got, want)
		}
	})

	t.Run("timeouts due together requeue in order", func(t *testing.T) {
		h := newHarness(t, Config{JobRetries: -1})
		c := h.connect("c")
		w := h.connect("w")
		h.q.CanDo(w.s, []byte("f"), time.Second)
		var want []string
		for i := range 8 {
			want = append(want, itoa(i))
			h.submit(c, job("f", "", itoa(i), background))
		}
		for range want {
			h.assign(w)
		}
		h.q.Tick(h.clock.Advance(time.Second))
		if got := h.grabOrder(h.worker("w2", "f")); !slices.Equal(got, want) {
			t.Fatalf("grab order %q, want %q", got, want)
		}
	})

	t.Run("TimerChanged when the earliest deadline moves earlier", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		t0 := h.clock.Now()
		ch := h.q.TimerChanged()
		steps := []struct {
			at     time.Duration
			signal bool
		}{{30 * time.Second, true}, {40 * time.Second, false}, {10 * time.Second, true}, {20 * time.Second, false}}
		for _, s := range steps {
			h.submit(c, job("f", "", "", background, runAt(t0.Add(s.at))))
			if got := isClosed(ch); got != s.signal {
				t.Fatalf("job at +%v: signalled %v, want %v", s.at, got, s.signal)
			}
		}
	})

	t.Run("with WorkerWakeup each due job wakes its own sleeper", func(t *testing.T) {
		h := newHarness(t, Config{WorkerWakeup: 1})
		c := h.connect("c")
		s1, s2, s3 := h.sleeper("s1", "f"), h.sleeper("s2", "f"), h.sleeper("s3", "f")
		due := h.clock.Now().Add(time.Second)
		h.submit(c, job("f", "", "1", background, runAt(due)))
		h.submit(c, job("f", "", "2", background, runAt(due)))
		h.q.Tick(due)
		expect(t, s1, protocol.Noop)
		expect(t, s2, protocol.Noop)
		expectNothing(t, s3)
	})
}
