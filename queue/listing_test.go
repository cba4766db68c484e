package queue

import (
	"strconv"
	"testing"
	"time"

	"gearmand/protocol"
)

func TestJobsPageListsAPageInCreationOrder(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.connect("client")
	start := h.clock.Now()
	a := h.submit(c, job("resize", "u1", "1", background, priority(High)))
	h.clock.Advance(time.Second)
	b := h.submit(c, job("mail", "", "2", background))
	h.clock.Advance(time.Second)
	d := h.submit(c, job("mail", "", "3", background, runAt(start.Add(time.Hour))))
	h.clock.Advance(time.Second)
	e := h.submit(c, job("resize", "u2", "4", priority(Low)))
	w := h.worker("w", "mail")
	if got, _ := h.assign(w); got != b {
		t.Fatalf("worker got %s, want %s", got, b)
	}

	all := h.q.JobsPage(0, 100)
	if all.Total != 4 || len(all.Jobs) != 4 {
		t.Fatalf("page of 100: total %d, %d jobs; want 4 and 4", all.Total, len(all.Jobs))
	}
	want := []struct {
		handle   string
		function string
		state    JobState
		priority Priority
		bg       bool
	}{
		{a, "resize", JobQueued, High, true},
		{b, "mail", JobRunning, Normal, true},
		{d, "mail", JobDelayed, Normal, true},
		{e, "resize", JobQueued, Low, false},
	}
	for i, wj := range want {
		got := all.Jobs[i]
		if got.Handle != wj.handle || got.Function != wj.function || got.State != wj.state || got.Priority != wj.priority || got.Background != wj.bg {
			t.Errorf("job %d: got %s %s %s %s bg=%v, want %s %s %s %s bg=%v", i,
				got.Handle, got.Function, got.State, got.Priority, got.Background,
				wj.handle, wj.function, wj.state, wj.priority, wj.bg)
		}
	}
	if age := all.Jobs[0].Age(h.clock.Now()); age != 3*time.Second {
		t.Errorf("first job's age is %v, want 3s", age)
	}
	if !all.Jobs[2].RunAt.Equal(start.Add(time.Hour)) {
		t.Errorf("delayed job runs at %v, want %v", all.Jobs[2].RunAt, start.Add(time.Hour))
	}

	for _, tc := range []struct {
		offset, limit int
		want          []string
	}{
		{0, 2, []string{a, b}},
		{2, 2, []string{d, e}},
		{3, 10, []string{e}},
		{4, 10, nil},
		{-5, 1, []string{a}},
		{0, 0, nil},
	} {
		page := h.q.JobsPage(tc.offset, tc.limit)
		var got []string
		for _, j := range page.Jobs {
			got = append(got, j.Handle)
		}
		if page.Total != 4 || !equalStrings(got, tc.want) {
			t.Errorf("JobsPage(%d, %d) = total %d %q, want total 4 %q", tc.offset, tc.limit, page.Total, got, tc.want)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestJobsPageAfterManyRemovals finishes most of a long queue, so that the
// creation list fills with holes and is compacted, and checks that paging
// still sees the survivors in order.
func TestJobsPageAfterManyRemovals(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.connect("client")
	const n = 5000
	for i := range n {
		h.submit(c, job("f", "", strconv.Itoa(i), background))
	}
	w := h.worker("w", "f")
	for range n - 10 {
		handle, _ := h.assign(w)
		h.complete(w, handle, "")
	}
	if len(h.q.mu.created) > 2*minCompact+10 {
		t.Errorf("creation list keeps %d slots for 10 jobs: it was never compacted", len(h.q.mu.created))
	}
	page := h.q.JobsPage(3, 4)
	if page.Total != 10 || len(page.Jobs) != 4 {
		t.Fatalf("JobsPage(3, 4): total %d, %d jobs; want 10 and 4", page.Total, len(page.Jobs))
	}
	for i, j := range page.Jobs {
		if want := "H:t:" + strconv.Itoa(n-10+3+i+1); j.Handle != want {
			t.Errorf("job %d of the page is %s, want %s", i, j.Handle, want)
		}
	}
}

func TestCountersCountOutcomes(t *testing.T) {
	h := newHarness(t, Config{JobRetries: 2})
	c := h.connect("client")
	h.submit(c, job("f", "same", "a", background))
	h.submit(c, job("f", "same", "a", background)) // coalesces: no new job
	h.submit(c, job("f", "", "b", background))
	h.submit(c, job("f", "", "c", background))
	h.submit(c, job("f", "", "d", background))
	h.submit(c, job("f", "", "e", background))

	w := h.worker("w", "f")
	one, _ := h.assign(w)
	h.complete(w, one, "ok")
	two, _ := h.assign(w)
	h.mustWork(w, protocol.WorkFail, two)
	three, _ := h.assign(w)
	h.mustWork(w, protocol.WorkException, three, "boom")
	h.assign(w)
	h.q.Disconnect(w.s) // job d back in the queue: its first run was lost

	w2 := h.worker("w2", "f")
	h.assign(w2) // e
	h.assign(w2) // d again
	h.q.Disconnect(w2.s)
	// e is requeued; d has used its two runs and fails.

	want := Counters{Submitted: 5, Completed: 1, Failed: 3, Requeued: 2}
	if got := h.q.Counters(); got != want {
		t.Errorf("Counters() = %+v, want %+v", got, want)
	}
}

// BenchmarkJobsPage lists one page of 100 from a queue of 100,000 jobs, at
// the start and at the end: the cost is the page plus a scan of the slots
// before it, never a copy of the queue.
func BenchmarkJobsPage(b *testing.B) {
	const jobs = 100_000
	q := New(Config{HandlePrefix: "H:b"})
	client := q.Connect(nopPeer{}, SessionInfo{})
	for i := range jobs {
		sub := Submission{Function: []byte("f" + strconv.Itoa(i%10)), Data: []byte("x"), Background: true}
		if err := q.Submit(client, sub); err != nil {
			b.Fatal(err)
		}
	}
	for _, offset := range []int{0, jobs - 100} {
		b.Run("offset="+strconv.Itoa(offset), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if page := q.JobsPage(offset, 100); len(page.Jobs) != 100 {
					b.Fatalf("page of %d jobs, want 100", len(page.Jobs))
				}
			}
		})
	}
}
