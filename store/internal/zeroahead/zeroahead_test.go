package zeroahead

import (
	"errors"
	"testing"
)

// writes records every WriteAt, and fails the ones told to.
type writes struct {
	at   []int64
	lens []int
	fail bool
}

func (w *writes) WriteAt(p []byte, off int64) (int, error) {
	if w.fail {
		return 0, errors.New("disk full")
	}
	for _, b := range p {
		if b != 0 {
			return 0, errors.New("not zeros")
		}
	}
	w.at = append(w.at, off)
	w.lens = append(w.lens, len(p))
	return len(p), nil
}

func TestExtendWritesAStepWhenTheRoomRunsLow(t *testing.T) {
	w := &writes{}
	r := New(w, 100, 10, 50)
	for _, c := range []struct {
		end   int64
		wrote bool
		at    int64 // where the write started, when wrote
	}{
		{0, false, 0},    // 100 written past 0
		{90, false, 0},   // exactly min left
		{91, true, 100},  // 9 left: write from where the room stops
		{140, false, 0},  // up to 150 now: 10 left
		{200, true, 200}, // end jumped past the room: from end
		{245, true, 250}, // 5 left
		{1000, true, 1000},
	} {
		wrote, err := r.Extend(c.end)
		if err != nil {
			t.Fatalf("Extend(%d): %v", c.end, err)
		}
		if wrote != c.wrote {
			t.Fatalf("Extend(%d) wrote %v, want %v", c.end, wrote, c.wrote)
		}
		if wrote && (w.at[len(w.at)-1] != c.at || w.lens[len(w.lens)-1] != 50) {
			t.Fatalf("Extend(%d) wrote %d bytes at %d, want 50 at %d", c.end, w.lens[len(w.lens)-1], w.at[len(w.at)-1], c.at)
		}
	}
}

func TestAFailedWriteIsTriedAgain(t *testing.T) {
	w := &writes{fail: true}
	r := New(w, 0, 10, 20)
	if wrote, err := r.Extend(5); err == nil || wrote {
		t.Fatalf("Extend on a failing file: wrote %v, err %v; want an error", wrote, err)
	}
	w.fail = false
	if wrote, err := r.Extend(5); err != nil || !wrote || w.at[0] != 5 {
		t.Fatalf("Extend after the failure: wrote %v at %v, err %v; want a write at 5", wrote, w.at, err)
	}
}
