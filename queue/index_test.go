package queue

import "testing"

func TestJobIndexFindsEveryFormOfHandle(t *testing.T) {
	x := newJobIndex("H:host")
	own := &Job{seq: 7, handle: "H:host:7"}
	foreign := &Job{seq: 8, handle: "H:elsewhere:8"}
	renamed := &Job{seq: 9, handle: "H:host:12"}   // its handle is not its Seq's
	padded := &Job{seq: 10, handle: "H:host:0010"} // parses as its Seq, but is not the canonical spelling
	for _, j := range []*Job{own, foreign, renamed, padded} {
		x.put(j)
	}
	if !x.ownForm(own) || x.ownForm(foreign) || x.ownForm(renamed) || !x.ownForm(padded) {
		t.Fatal("ownForm sorted the handles wrongly")
	}
	for _, tc := range []struct {
		handle string
		want   *Job
	}{
		{"H:host:7", own}, {"H:elsewhere:8", foreign}, {"H:host:12", renamed}, {"H:host:0010", padded},
		{"H:host:10", nil}, {"H:host:07", nil}, {"H:host:9", nil}, {"H:host:", nil}, {"H:host:+7", nil},
		{"H:host:18446744073709551616", nil}, {"H:hos:7", nil}, {"", nil},
	} {
		if got := x.get(tc.handle); got != tc.want {
			t.Errorf("get(%q) = %v, want %v", tc.handle, got, tc.want)
		}
	}
	if x.len() != 4 {
		t.Errorf("len = %d, want 4", x.len())
	}
	n := 0
	for range x.all() {
		n++
	}
	if n != 4 {
		t.Errorf("all yielded %d jobs, want 4", n)
	}
	for _, j := range []*Job{own, foreign, renamed, padded} {
		x.remove(j)
		if x.get(j.handle) != nil {
			t.Errorf("%s still found after remove", j.handle)
		}
	}
	if x.len() != 0 {
		t.Errorf("len = %d after removing everything", x.len())
	}
}
