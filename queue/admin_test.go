package queue

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gearmand/protocol"
)

// Rule: Functions() lists every function in creation order with queued jobs
// per priority (epoch jobs included), running jobs and registrations
// (duplicates included); functions stay listed with zero counts.
func TestAdminFunctions(t *testing.T) {
	h := newHarness(t, Config{JobRetries: -1})
	c := h.connect("c")
	h.q.CreateFunction("made")
	h.submit(c, job("f", "", "h", background, priority(High)))
	h.submit(c, job("f", "", "n1", background))
	h.submit(c, job("f", "", "n2", background))
	h.submit(c, job("f", "", "l", background, priority(Low)))
	h.submit(c, job("f", "", "e", background, runAt(h.clock.Now().Add(time.Hour))))
	w1 := h.worker("w1", "g", "f", "f")
	h.worker("w2", "f")
	h.assign(w1)
	h.assign(w1)
	want := []FunctionStatus{
		{Name: "made"},
		{Name: "f", Queued: [3]int{0, 2, 1}, Running: 2, Workers: 3},
		{Name: "g", Workers: 1},
	}
	if got := h.q.Functions(); !slices.Equal(got, want) {
		t.Fatalf("Functions() = %+v\nwant %+v", got, want)
	}
	if got := want[1].Total(); got != 5 {
		t.Fatalf("Total = %d", got)
	}
	h.q.Disconnect(w1.s) // requeues two jobs and takes three registrations
	want[1] = FunctionStatus{Name: "f", Queued: [3]int{1, 3, 1}, Workers: 1}
	want[2].Workers = 0
	if got := h.q.Functions(); !slices.Equal(got, want) {
		t.Fatalf("after disconnect: %+v\nwant %+v", got, want)
	}
}

// Rule: Workers() lists every session in connection order, with or without
// functions, its registrations newest first with duplicates, and its client
// id ("-" until set, truncated at MaxClientID bytes).
func TestAdminWorkers(t *testing.T) {
	h := newHarness(t, Config{})
	plain := h.connectInfo("plain", SessionInfo{FD: 7, Addr: "10.0.0.1"})
	w := h.connectInfo("w", SessionInfo{FD: 8, Addr: "10.0.0.2"})
	for _, f := range []string{"alpha", "beta", "alpha"} {
		h.q.CanDo(w.s, []byte(f), 0)
	}
	h.q.SetClientID(w.s, []byte("worker-1"))
	long := h.connectInfo("long", SessionInfo{FD: 9, Addr: "::1"})
	h.q.SetClientID(long.s, []byte(strings.Repeat("x", 126)+"yz"+"tail"))
	want := []WorkerInfo{
		{FD: 7, Addr: "10.0.0.1", ClientID: "-"},
		{FD: 8, Addr: "10.0.0.2", ClientID: "worker-1", Functions: []string{"alpha", "beta", "alpha"}},
		{FD: 9, Addr: "::1", ClientID: strings.Repeat("x", 126) + "y"},
	}
	check := func(want []WorkerInfo) {
		t.Helper()
		got := h.q.Workers()
		if !slices.EqualFunc(got, want, func(a, b WorkerInfo) bool {
			return a.FD == b.FD && a.Addr == b.Addr && a.ClientID == b.ClientID && slices.Equal(a.Functions, b.Functions)
		}) {
			t.Fatalf("Workers() = %+v\nwant %+v", got, want)
		}
	}
	check(want)
	if n := len(want[2].ClientID); n != MaxClientID {
		t.Fatalf("kept %d bytes", n)
	}

	h.q.CanDo(w.s, []byte("gamma"), time.Second)
	want[1].Functions = []string{"gamma", "alpha", "beta", "alpha"}
	check(want)
	h.q.CantDo(w.s, []byte("alpha"))
	want[1].Functions = []string{"gamma", "beta"}
	check(want)
	h.q.ResetAbilities(w.s)
	want[1].Functions = nil
	check(want)
	h.q.Disconnect(plain.s)
	check(want[1:])
}

// Rule: Jobs() lists every job in creation order with its retries, ignore
// and persisted flags.
func TestAdminJobs(t *testing.T) {
	h := newHarness(t, Config{JobRetries: -1})
	c, leaver := h.connect("c"), h.connect("leaver")
	w := h.worker("w", "f", "g")
	h.submit(c, job("f", "bg", "", background, priority(High)))
	h.submit(c, job("g", "fg", ""))
	h.submit(c, job("g", "fg", "", background)) // joins: not persisted
	h.submit(leaver, job("f", "gone", "", priority(High)))
	h.submit(c, job("f", "-", "payload", background, priority(Low)))
	h.assign(w) // H:t:1
	h.assign(w) // H:t:3
	h.q.Disconnect(leaver.s)
	h.q.ResetAbilities(w.s)
	h.q.CanDo(w.s, []byte("f"), 0)
	h.assign(w) // H:t:1 again
	now := h.clock.Now()
	want := []JobInfo{
		{Handle: "H:t:1", Function: "f", Unique: "bg", Priority: High, Retries: 1, Persisted: true, Running: true, State: JobRunning, Created: now, Background: true},
		{Handle: "H:t:2", Function: "g", Unique: "fg", Priority: Normal, State: JobQueued, Created: now, Background: true},
		{Handle: "H:t:4", Function: "f", Unique: "-", Priority: Low, Persisted: true, State: JobQueued, Created: now, Background: true},
	}
	if got := h.q.Jobs(); !slices.Equal(got, want) {
		t.Fatalf("Jobs() = %+v\nwant %+v", got, want)
	}
	h.q.Cancel("H:t:1")
	want[0].Ignore = true
	if got := h.q.Jobs(); !slices.Equal(got, want) {
		t.Fatalf("after cancel: %+v\nwant %+v", got, want)
	}
	if h.q.Len() != 3 {
		t.Fatalf("Len = %d", h.q.Len())
	}
}

// Rule: SetMaxQueue limits queued+running jobs per submission priority, for
// submissions that do not coalesce (ErrQueueFull, nothing created); an
// unknown function is not created; 0 or negative is unlimited.
func TestAdminSetMaxQueue(t *testing.T) {
	t.Run("limit counts running jobs", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		w := h.worker("w", "f")
		if !h.q.SetMaxQueue("f", [3]int{2, 2, 2}) {
			t.Fatal("SetMaxQueue of an existing function = false")
		}
		h.submit(c, job("f", "a", "", background))
		h.submit(c, job("f", "b", ""))
		h.assign(w)
		if err := h.q.Submit(c.s, job("f", "c", "", background)); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("third job: %v, want ErrQueueFull", err)
		}
		if err := h.q.Submit(c.s, job("f", "", "")); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("third job: %v, want ErrQueueFull", err)
		}
		expectNothing(t, c)
		// Coalescing submissions are not limited.
		if got := h.submit(c, job("f", "a", "", background)); got != "H:t:1" {
			t.Fatalf("coalesced into %s", got)
		}
		if got := h.submit(c, job("f", "b", "", priority(High))); got != "H:t:2" {
			t.Fatalf("coalesced into %s", got)
		}
		h.complete(w, "H:t:1", "")
		if got := h.submit(c, job("f", "c", "", background)); got != "H:t:3" {
			t.Fatalf("after a job finished: %s, want H:t:3 (rejected submissions use no handle)", got)
		}
	})

	cases := []struct {
		name   string
		limits [3]int
		subs   []Priority
		want   []bool // accepted
	}{
		{"high only", [3]int{1, 0, 0}, []Priority{High, High, Normal, Normal, Low, High}, []bool{true, false, true, true, true, false}},
		{"per priority totals", [3]int{5, 2, 3}, []Priority{Normal, Normal, Normal, Low, Low, High, High, High, Low}, []bool{true, true, false, true, false, true, true, false, false}},
		{"zero is unlimited", [3]int{0, 0, 0}, []Priority{Normal, Normal, Normal, Normal}, []bool{true, true, true, true}},
		{"negative is unlimited", [3]int{-1, -1, -1}, []Priority{High, Normal, Low, High}, []bool{true, true, true, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.connect("c")
			h.q.CreateFunction("f")
			h.q.SetMaxQueue("f", tc.limits)
			for i, p := range tc.subs {
				err := h.q.Submit(c.s, job("f", "", "", background, priority(p)))
				if (err == nil) != tc.want[i] || (err != nil && !errors.Is(err, ErrQueueFull)) {
					t.Fatalf("submission %d (%s): %v, want accepted=%v", i, p, err, tc.want[i])
				}
				if err == nil {
					expect(t, c, protocol.JobCreated, h.q.Jobs()[len(h.q.Jobs())-1].Handle)
				}
				expectNothing(t, c)
			}
		})
	}

	t.Run("lifting the limit", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		h.q.CreateFunction("f")
		h.q.SetMaxQueue("f", [3]int{1, 1, 1})
		h.submit(c, job("f", "", "", background))
		if err := h.q.Submit(c.s, job("f", "", "", background)); !errors.Is(err, ErrQueueFull) {
			t.Fatal(err)
		}
		h.q.SetMaxQueue("f", [3]int{})
		h.submit(c, job("f", "", "", background))
	})

	t.Run("unknown function is not created", func(t *testing.T) {
		h := newHarness(t, Config{})
		h.q.CreateFunction("F")
		if h.q.SetMaxQueue("f", [3]int{1, 1, 1}) {
			t.Fatal("SetMaxQueue of an unknown function = true")
		}
		if got := h.q.Functions(); len(got) != 1 || got[0].Name != "F" {
			t.Fatalf("functions %+v", got)
		}
		c := h.connect("c")
		h.submit(c, job("F", "", "", background))
		h.submit(c, job("F", "", "", background))
	})
}

// Rule: Cancel fails the job to its clients (bare handle) and detaches them;
// a queued job is removed at once, a running one is ignored: its worker may
// finish, the result goes nowhere.
func TestAdminCancel(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		h := newHarness(t, Config{})
		c1, c2 := h.connect("c1"), h.connect("c2")
		h.submit(c1, job("f", "u", "x"))
		h.submit(c2, job("f", "u", "x"))
		h.submit(c1, job("f", "", "other", background))
		if !h.q.Cancel("H:t:1") {
			t.Fatal("Cancel = false")
		}
		expectPayload(t, c1, protocol.WorkFail, "H:t:1")
		expectPayload(t, c2, protocol.WorkFail, "H:t:1")
		if fs := h.function("f"); fs.Queued[Normal] != 1 {
			t.Fatalf("function %+v: cancelled job still counted", fs)
		}
		if st := h.q.Status([]byte("H:t:1")); st.Known {
			t.Fatal("cancelled job still known")
		}
		if h.q.Cancel("H:t:1") || h.q.Cancel("H:t:99") {
			t.Fatal("Cancel of a gone job = true")
		}
		w := h.worker("w", "f")
		if got := h.grabOrder(w); !slices.Equal(got, []string{"other"}) {
			t.Fatalf("worker got %q", got)
		}
		// Detached: the clients leaving changes nothing and they hear nothing more.
		h.q.Disconnect(c1.s)
		h.q.Disconnect(c2.s)
		expectNothing(t, c1)
		expectNothing(t, c2)
	})

	t.Run("running", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		w := h.worker("w", "f")
		h.submit(c, job("f", "u", "x"))
		h.assign(w)
		if !h.q.Cancel("H:t:1") {
			t.Fatal("Cancel = false")
		}
		expectPayload(t, c, protocol.WorkFail, "H:t:1")
		if st := h.q.Status([]byte("H:t:1")); !st.Known || !st.Running || st.Clients != 0 {
			t.Fatalf("status %+v, want known, running, no clients", st)
		}
		if got := h.submit(c, job("f", "u", "again")); got != "H:t:2" {
			t.Fatalf("coalesced into the cancelled job: %s", got)
		}
		for _, typ := range []protocol.Type{protocol.WorkData, protocol.WorkStatus, protocol.WorkComplete} {
			args := []string{"H:t:1", "1"}
			if typ == protocol.WorkStatus {
				args = append(args, "2")
			}
			if err := h.work(w, typ, args...); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
		}
		expectNothing(t, c)
		if h.jobInfo("H:t:2").Running || h.function("f").Running != 0 {
			t.Fatal("counts off after the ignored job finished")
		}
		if _, d := h.assign(w); d != "again" {
			t.Fatalf("got %q", d)
		}
	})

	t.Run("from the middle of a list", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		for _, d := range []string{"1", "2", "3", "4"} {
			h.submit(c, job("f", "", d, background))
		}
		h.q.Cancel("H:t:2")
		h.q.Cancel("H:t:4")
		h.submit(c, job("f", "", "5", background))
		h.q.Cancel("H:t:1")
		if got := h.grabOrder(h.worker("w", "f")); !slices.Equal(got, []string{"3", "5"}) {
			t.Fatalf("grab order %q", got)
		}
	})

	t.Run("epoch job", func(t *testing.T) {
		h := newHarness(t, Config{})
		c := h.connect("c")
		h.submit(c, job("f", "", "", background, runAt(h.clock.Now().Add(time.Hour))))
		h.q.Cancel("H:t:1")
		if next := h.q.Tick(h.clock.Now()); !next.IsZero() || h.function("f").Total() != 0 {
			t.Fatal("cancelled epoch job left behind")
		}
	})
}

// Rule: CreateFunction makes an empty function (a no-op when it exists);
// DropFunction matches case-insensitively, refuses while workers are
// registered or jobs exist, and reports unknown names.
func TestAdminCreateAndDropFunction(t *testing.T) {
	h := newHarness(t, Config{JobRetries: -1})
	c := h.connect("c")
	h.q.CreateFunction("Foo")
	h.q.CreateFunction("Foo")
	if got := h.q.Functions(); !slices.Equal(got, []FunctionStatus{{Name: "Foo"}}) {
		t.Fatalf("functions %+v", got)
	}
	if err := h.q.DropFunction("fOO"); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if len(h.q.Functions()) != 0 {
		t.Fatal("still listed")
	}
	for _, name := range []string{"Foo", "bar", ""} {
		if err := h.q.DropFunction(name); !errors.Is(err, ErrFunctionNotFound) {
			t.Fatalf("drop %q: %v, want ErrFunctionNotFound", name, err)
		}
	}

	busy := func(step string) {
		t.Helper()
		if err := h.q.DropFunction("F"); !errors.Is(err, ErrFunctionBusy) {
			t.Fatalf("%s: %v, want ErrFunctionBusy", step, err)
		}
	}
	w := h.worker("w", "f")
	busy("worker registered")
	h.q.CantDo(w.s, []byte("f"))
	h.submit(c, job("f", "", "", background))
	busy("job queued")
	h.q.CanDo(w.s, []byte("f"), 0)
	h.assign(w)
	h.q.CantDo(w.s, []byte("f")) // requeued
	h.q.CanDo(w.s, []byte("f"), 0)
	h.assign(w)
	h.q.ResetAbilities(w.s)
	h.q.CanDo(w.s, []byte("f"), 0)
	h.assign(w)
	h.q.Cancel("H:t:1") // ignored while running: still counted
	busy("cancelled job running")
	h.complete(w, "H:t:1", "")
	h.q.Disconnect(w.s)
	h.submit(c, job("f", "", "", background, runAt(h.clock.Now().Add(time.Hour))))
	busy("epoch job waiting")
	h.q.Cancel("H:t:2")
	if err := h.q.DropFunction("F"); err != nil {
		t.Fatalf("drop of an idle function: %v", err)
	}
	// A dropped name comes back fresh on next mention.
	h.submit(c, job("f", "", "", background))
	if got := h.q.Functions(); len(got) != 1 || got[0].Queued[Normal] != 1 {
		t.Fatalf("functions %+v", got)
	}
}

// Rule: StatusUnique ignores the function and describes the most recently
// created job carrying the unique; an empty unique is never found; Clients
// counts attached foreground clients.
func TestAdminStatusUnique(t *testing.T) {
	h := newHarness(t, Config{})
	c1, c2 := h.connect("c1"), h.connect("c2")
	w := h.worker("w", "co")
	h.submit(c1, job("co", "u1", ""))
	h.submit(c2, job("co", "u1", ""))
	h.assign(w)
	if err := h.work(w, protocol.WorkStatus, "H:t:1", "3", "7"); err != nil {
		t.Fatal(err)
	}
	check := func(unique string, want JobStatus) {
		t.Helper()
		if got := h.q.StatusUnique([]byte(unique)); got != want {
			t.Fatalf("StatusUnique(%q) = %+v, want %+v", unique, got, want)
		}
	}
	check("u1", JobStatus{Known: true, Running: true, Numerator: 3, Denominator: 7, Clients: 2})
	h.q.Disconnect(c1.s)
	check("u1", JobStatus{Known: true, Running: true, Numerator: 3, Denominator: 7, Clients: 1})
	c3 := h.connect("c3")
	h.submit(c3, job("co2", "u1", "", background))
	check("u1", JobStatus{Known: true})
	check("zzz", JobStatus{})
	check("U1", JobStatus{})
	h.submit(c3, job("co", "", "", background))
	check("", JobStatus{})
	h.submit(c3, job("co", "-", "p", background))
	check("-", JobStatus{Known: true})
	h.q.Cancel("H:t:2")
	check("u1", JobStatus{Known: true, Running: true, Numerator: 3, Denominator: 7, Clients: 1})
}

// Rule: WaitEmpty's channel closes when the last job ends, however it ends.
func TestAdminWaitEmpty(t *testing.T) {
	h := newHarness(t, Config{JobRetries: 0})
	c := h.connect("c")
	w := h.worker("w", "f")
	if !isClosed(h.q.WaitEmpty()) {
		t.Fatal("WaitEmpty of an empty queue is open")
	}
	h.submit(c, job("f", "", "1", background))
	h.submit(c, job("f", "", "2"))
	h.submit(c, job("f", "", "3", background, runAt(h.clock.Now().Add(time.Hour))))
	h.submit(c, job("f", "", "4", background))
	e1, e2 := h.q.WaitEmpty(), h.q.WaitEmpty()
	steps := []struct {
		name string
		do   func()
	}{
		{"complete", func() { h.assign(w); h.complete(w, "H:t:1", "") }},
		{"client leaves", func() { h.q.Disconnect(c.s) }},
		{"cancel epoch job", func() { h.q.Cancel("H:t:3") }},
		{"retries exhausted", func() { h.assign(w); h.q.Disconnect(w.s) }},
	}
	for i, s := range steps {
		if isClosed(e1) || isClosed(e2) {
			t.Fatalf("closed before %s", s.name)
		}
		s.do()
		if last := i == len(steps)-1; isClosed(e1) != last || isClosed(e2) != last {
			t.Fatalf("after %s: closed %v, want %v", s.name, isClosed(e1), last)
		}
	}
}
