package queue

import (
	"slices"
	"testing"

	"gearmand/protocol"
)

type queued struct {
	fn   string
	prio Priority
	data string
}

// Rule: priority is global across a worker's functions. Every HIGH job of
// any registered function comes before any NORMAL one, then LOW; at one
// priority the functions take turns; within a function and priority, FIFO.
func TestPriorityIsGlobalAcrossFunctions(t *testing.T) {
	// Submitted out of order so that FIFO and priority cannot be confused.
	mixed := []queued{
		{"A", Low, "a-l1"}, {"A", Normal, "a-n1"}, {"B", Normal, "b-n1"}, {"A", High, "a-h1"},
		{"A", Low, "a-l2"}, {"B", High, "b-h1"}, {"A", High, "a-h2"},
	}
	cases := []struct {
		name     string
		register []string // CAN_DO order; the newest registration is tried first
		jobs     []queued
		want     []string
	}{
		{
			name: "A then B", register: []string{"A", "B"}, jobs: mixed,
			want: []string{"b-h1", "a-h1", "a-h2", "b-n1", "a-n1", "a-l1", "a-l2"},
		},
		{
			name: "B then A", register: []string{"B", "A"}, jobs: mixed,
			want: []string{"a-h1", "b-h1", "a-h2", "b-n1", "a-n1", "a-l1", "a-l2"},
		},
		{
			name: "only A", register: []string{"A"}, jobs: mixed,
			want: []string{"a-h1", "a-h2", "a-n1", "a-l1", "a-l2"},
		},
		{
			name: "low of one function waits for normal of another", register: []string{"A", "B"},
			jobs: []queued{{"A", Low, "a-l1"}, {"B", Normal, "b-n1"}, {"A", Normal, "a-n1"}},
			want: []string{"b-n1", "a-n1", "a-l1"},
		},
		{
			name: "function registered after its jobs", register: []string{"B", "A"},
			jobs: []queued{{"A", High, "a-h1"}, {"B", Low, "b-l1"}},
			want: []string{"a-h1", "b-l1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("client")
			for _, j := range tc.jobs {
				h.submit(c, job(j.fn, "", j.data, background, priority(j.prio)))
			}
			w := h.worker("worker", tc.register...)
			got := h.grabOrder(w)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("grab order %q, want %q", got, tc.want)
			}
			assertGlobalPriority(t, tc.jobs, got)
		})
	}
}

// assertGlobalPriority checks the rule itself, independently of where the
// rotation starts: priorities never go back up, and each function's jobs of
// one priority come in submission order.
func assertGlobalPriority(t *testing.T, jobs []queued, got []string) {
	t.Helper()
	byData := map[string]queued{}
	for _, j := range jobs {
		byData[j.data] = j
	}
	last := High
	for i, d := range got {
		j := byData[d]
		if j.prio < last {
			t.Errorf("job %d %q (%s) after a %s job", i, d, j.prio, last)
		}
		last = j.prio
	}
	for _, fn := range []string{"A", "B"} {
		for p := High; p <= Low; p++ {
			var submitted, grabbed []string
			for _, j := range jobs {
				if j.fn == fn && j.prio == p {
					submitted = append(submitted, j.data)
				}
			}
			for _, d := range got {
				if j := byData[d]; j.fn == fn && j.prio == p {
					grabbed = append(grabbed, d)
				}
			}
			if len(grabbed) > 0 && !slices.Equal(submitted, grabbed) {
				t.Errorf("%s %s: grabbed %q, submitted %q", fn, p, grabbed, submitted)
			}
		}
	}
}

// Rule: round-robin across functions at equal priority. A worker for three
// functions with three jobs each gets them interleaved, not function by
// function (newest registration first, as gearmand's -R order).
func TestRoundRobinAcrossFunctionsAtEqualPriority(t *testing.T) {
	cases := []struct {
		name string
		jobs []queued
		want []string
	}{
		{
			name: "submitted function by function",
			jobs: []queued{
				{"A", Normal, "A0"}, {"A", Normal, "A1"}, {"A", Normal, "A2"},
				{"B", Normal, "B0"}, {"B", Normal, "B1"}, {"B", Normal, "B2"},
				{"C", Normal, "C0"}, {"C", Normal, "C1"}, {"C", Normal, "C2"},
			},
			want: []string{"C0", "B0", "A0", "C1", "B1", "A1", "C2", "B2", "A2"},
		},
		{
			name: "uneven counts",
			jobs: []queued{
				{"A", Low, "A0"}, {"A", Low, "A1"}, {"A", Low, "A2"}, {"C", Low, "C0"},
			},
			want: []string{"C0", "A0", "A1", "A2"},
		},
		{
			name: "all high",
			jobs: []queued{
				{"B", High, "B0"}, {"B", High, "B1"}, {"A", High, "A0"}, {"A", High, "A1"},
			},
			want: []string{"B0", "A0", "B1", "A1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("client")
			for _, j := range tc.jobs {
				h.submit(c, job(j.fn, "", j.data, background, priority(j.prio)))
			}
			w := h.worker("worker", "A", "B", "C")
			if got := h.grabOrder(w); !slices.Equal(got, tc.want) {
				t.Fatalf("grab order %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("rotation continues across submissions", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		w := h.worker("worker", "A", "B")
		var got []string
		for i := range 3 {
			h.submit(c, job("A", "", "A"+string(rune('0'+i)), background))
			h.submit(c, job("B", "", "B"+string(rune('0'+i)), background))
			_, d := h.assign(w)
			got = append(got, d)
		}
		got = append(got, h.grabOrder(w)...)
		// Each grab takes the function after the one that supplied the last
		// job, so no function is starved by a steady stream of the other.
		want := []string{"B0", "A0", "B1", "A1", "B2", "A2"}
		if !slices.Equal(got, want) {
			t.Fatalf("grab order %q, want %q", got, want)
		}
	})
}

// Rule: PRE_SLEEP and NOOP. PRE_SLEEP with work available gets NOOP at once;
// otherwise the worker sleeps, and a new job sends exactly one NOOP to each
// sleeping worker of its function: not to awake workers, not to workers of
// other functions, not twice before the worker grabs again.
func TestPreSleepAndNoop(t *testing.T) {
	t.Run("work available gets an immediate NOOP", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		h.submit(c, job("g", "", "x", background))
		w := h.worker("w", "f", "g")
		h.q.PreSleep(w.s)
		expect(t, w, protocol.Noop)
		expectNothing(t, w)
		// It was not put to sleep: a new job sends nothing more.
		h.submit(c, job("f", "", "y", background))
		expectNothing(t, w)
	})

	t.Run("epoch job not yet due is not work", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		h.submit(c, job("f", "", "later", background, runAt(h.clock.Now().Add(10e9))))
		w := h.worker("w", "f")
		h.q.PreSleep(w.s)
		expectNothing(t, w)
	})

	t.Run("one NOOP per sleeping worker until it grabs", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		s1 := h.sleeper("s1", "f")
		s2 := h.sleeper("s2", "f", "g")
		awake := h.worker("awake", "f")
		other := h.sleeper("other", "g")

		h.submit(c, job("f", "", "j1", background))
		expect(t, s1, protocol.Noop)
		expect(t, s2, protocol.Noop)
		expectNothing(t, awake)
		expectNothing(t, other)

		h.submit(c, job("f", "", "j2", background))
		for _, w := range []*conn{s1, s2, awake, other} {
			expectNothing(t, w)
		}

		// GRAB clears the state: s1 takes j1, finds j2 still there on
		// PRE_SLEEP, takes it, then sleeps for real.
		h.assign(s1)
		h.q.PreSleep(s1.s)
		expect(t, s1, protocol.Noop)
		h.assign(s1)
		h.q.PreSleep(s1.s)
		expectNothing(t, s1)

		h.submit(c, job("f", "", "j3", background))
		expect(t, s1, protocol.Noop)
		expectNothing(t, s2) // woken for j1 and has not grabbed since
		expectNothing(t, awake)

		// A grab that finds nothing clears the state too.
		h.assign(s2)
		if pk := h.grab(s2, GrabJob); pk.Type != protocol.NoJob {
			t.Fatalf("s2 got %s, want NO_JOB", pk.Type)
		}
		h.q.PreSleep(s2.s)
		expectNothing(t, s2)
		h.submit(c, job("f", "", "j4", background))
		expect(t, s2, protocol.Noop)
		expectNothing(t, s1)

		// A job of g wakes only g's sleepers that have not been woken.
		h.submit(c, job("g", "", "g1", background))
		expect(t, other, protocol.Noop)
		expectNothing(t, s2)
		expectNothing(t, s1)
	})

	t.Run("worker registered twice gets one NOOP", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		w := h.sleeper("w", "f", "f")
		if got := h.function("f").Workers; got != 2 {
			t.Fatalf("workers = %d, want 2", got)
		}
		h.submit(c, job("f", "", "x", background))
		expect(t, w, protocol.Noop)
		expectNothing(t, w)
	})

	t.Run("CAN_DO while asleep with work queued wakes", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		w := h.sleeper("w", "g")
		h.submit(c, job("f", "", "x", background))
		expectNothing(t, w)
		h.q.CanDo(w.s, []byte("f"), 0)
		expect(t, w, protocol.Noop)
		h.q.CanDo(w.s, []byte("f"), 0)
		expectNothing(t, w)
	})
}

// Rule: with WorkerWakeup = N each new job wakes at most N sleepers, and the
// starting point rotates so successive jobs wake successive workers.
func TestWorkerWakeupRotates(t *testing.T) {
	cases := []struct {
		name   string
		wakeup int
		// per job submitted, which of the sleepers w0..w3 get a NOOP
		want [][]int
	}{
		{name: "one", wakeup: 1, want: [][]int{{0}, {1}, {2}, {3}, {}}},
		{name: "two", wakeup: 2, want: [][]int{{0, 1}, {2, 3}, {}}},
		{name: "three", wakeup: 3, want: [][]int{{0, 1, 2}, {3}, {}}},
		{name: "all", wakeup: 0, want: [][]int{{0, 1, 2, 3}, {}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{WorkerWakeup: tc.wakeup})
			c := h.connect("client")
			var ws []*conn
			for i := range 4 {
				ws = append(ws, h.sleeper("w"+string(rune('0'+i)), "f"))
			}
			for n, woken := range tc.want {
				h.submit(c, job("f", "", "x", background))
				for i, w := range ws {
					if slices.Contains(woken, i) {
						expect(t, w, protocol.Noop)
					}
					if len(w.p.got) > 0 {
						t.Fatalf("job %d: w%d got a NOOP, want only %v", n, i, woken)
					}
				}
			}
		})
	}

	t.Run("rotation wraps after everyone grabbed", func(t *testing.T) {
		h := newHarness(t, Config{WorkerWakeup: 1})
		c := h.connect("client")
		ws := []*conn{h.sleeper("w0", "f"), h.sleeper("w1", "f"), h.sleeper("w2", "f")}
		for i, w := range ws {
			h.submit(c, job("f", "", "x", background))
			expect(t, w, protocol.Noop)
			for k, o := range ws {
				if k != i {
					expectNothing(t, o)
				}
			}
		}
		for _, w := range ws {
			h.assign(w)
		}
		for _, w := range ws {
			h.q.PreSleep(w.s)
			expectNothing(t, w)
		}
		h.submit(c, job("f", "", "x", background))
		expect(t, ws[0], protocol.Noop)
		expectNothing(t, ws[1])
		expectNothing(t, ws[2])
	})

	t.Run("awake workers do not use up the wake-up", func(t *testing.T) {
		h := newHarness(t, Config{WorkerWakeup: 1})
		c := h.connect("client")
		awake := h.worker("awake", "f")
		w := h.sleeper("w", "f")
		h.submit(c, job("f", "", "x", background))
		expectNothing(t, awake)
		expect(t, w, protocol.Noop)
	})
}

// Rule: GRAB_JOB, GRAB_JOB_UNIQ and GRAB_JOB_ALL answer with their
// JOB_ASSIGN variant (JOB_ASSIGN_ALL only for a job with a reducer, else
// JOB_ASSIGN_UNIQ), byte for byte, NULs in the data and empty data included;
// NO_JOB when nothing is runnable.
func TestGrabAssignPackets(t *testing.T) {
	cases := []struct {
		name    string
		kind    GrabKind
		sub     Submission
		typ     protocol.Type
		payload string
	}{
		{"GRAB_JOB", GrabJob, job("f", "u", "data"), protocol.JobAssign, "H:t:1\x00f\x00data"},
		{"GRAB_JOB NUL data", GrabJob, job("f", "u", "a\x00b\x00"), protocol.JobAssign, "H:t:1\x00f\x00a\x00b\x00"},
		{"GRAB_JOB empty data", GrabJob, job("f", "u", ""), protocol.JobAssign, "H:t:1\x00f\x00"},
		{"GRAB_JOB_UNIQ", GrabJobUniq, job("f", "u", "data"), protocol.JobAssignUniq, "H:t:1\x00f\x00u\x00data"},
		{"GRAB_JOB_UNIQ empty unique", GrabJobUniq, job("f", "", "data"), protocol.JobAssignUniq, "H:t:1\x00f\x00\x00data"},
		{"GRAB_JOB_UNIQ empty data", GrabJobUniq, job("f", "u", ""), protocol.JobAssignUniq, "H:t:1\x00f\x00u\x00"},
		{"GRAB_JOB_UNIQ NUL data", GrabJobUniq, job("f", "u", "\x00"), protocol.JobAssignUniq, "H:t:1\x00f\x00u\x00\x00"},
		{"GRAB_JOB_ALL without reducer", GrabJobAll, job("f", "u", "data"), protocol.JobAssignUniq, "H:t:1\x00f\x00u\x00data"},
		{"GRAB_JOB_ALL with reducer", GrabJobAll, job("f", "u", "a\x00b", reducer("r")), protocol.JobAssignAll, "H:t:1\x00f\x00u\x00r\x00a\x00b"},
		{"GRAB_JOB_ALL reducer empty data", GrabJobAll, job("f", "", "", reducer("r")), protocol.JobAssignAll, "H:t:1\x00f\x00\x00r\x00"},
		{"GRAB_JOB_ALL background", GrabJobAll, job("f", "u", "d", background), protocol.JobAssignUniq, "H:t:1\x00f\x00u\x00d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("client")
			w := h.worker("w", "f")
			if pk := h.grab(w, tc.kind); pk.Type != protocol.NoJob || pk.Payload != "" {
				t.Fatalf("empty queue: got %s %q, want NO_JOB", pk.Type, pk.Payload)
			}
			h.submit(c, tc.sub)
			pk := h.grab(w, tc.kind)
			if pk.Type != tc.typ || pk.Payload != tc.payload {
				t.Fatalf("got %s %q, want %s %q", pk.Type, pk.Payload, tc.typ, tc.payload)
			}
			if pk := h.grab(w, tc.kind); pk.Type != protocol.NoJob {
				t.Fatalf("after the only job: got %s, want NO_JOB", pk.Type)
			}
		})
	}

	t.Run("NO_JOB for a worker without the function", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		h.submit(c, job("f", "", "x", background))
		for _, w := range []*conn{h.connect("nothing"), h.worker("g", "g")} {
			for _, k := range []GrabKind{GrabJob, GrabJobUniq, GrabJobAll} {
				if pk := h.grab(w, k); pk.Type != protocol.NoJob {
					t.Fatalf("%s: got %s, want NO_JOB", w.name, pk.Type)
				}
			}
		}
	})
}

// Rule: a reduce job's reducer is delivered only by GRAB_JOB_ALL; other
// grabs see a plain job.
func TestReducerOnlyThroughGrabJobAll(t *testing.T) {
	cases := []struct {
		kind GrabKind
		typ  protocol.Type
		args []string
	}{
		{GrabJob, protocol.JobAssign, []string{"H:t:1", "map", "d"}},
		{GrabJobUniq, protocol.JobAssignUniq, []string{"H:t:1", "map", "u", "d"}},
		{GrabJobAll, protocol.JobAssignAll, []string{"H:t:1", "map", "u", "reduce", "d"}},
	}
	for _, tc := range cases {
		t.Run(tc.typ.String(), func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("client")
			w := h.worker("w", "map")
			h.submit(c, job("map", "u", "d", reducer("reduce")))
			h.q.Grab(w.s, tc.kind)
			expect(t, w, tc.typ, tc.args...)
			// The reducer does not change how the result travels.
			h.complete(w, "H:t:1", "r")
			expect(t, c, protocol.WorkComplete, "H:t:1", "r")
		})
	}

	t.Run("reducer too large", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("client")
		long := make([]byte, MaxReducer+1)
		for i := range long {
			long[i] = 'r'
		}
		if err := h.q.Submit(c.s, job("map", "", "d", reducer(string(long)))); err != ErrReducerTooLarge {
			t.Fatalf("Submit = %v, want ErrReducerTooLarge", err)
		}
		expectNothing(t, c)
		h.submit(c, job("map", "", "d", reducer(string(long[:MaxReducer]))))
	})
}
