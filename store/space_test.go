package store

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestSpaceGuardTripsAndClears drives the guard with a free-space reading
// the test sets: it trips below the minimum, stays tripped until the
// minimum and a sixteenth is free, then clears.
func TestSpaceGuardTripsAndClears(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	g := &SpaceGuard{path: "/x", min: 64 << 20, interval: time.Hour, log: slog.New(slog.DiscardHandler),
		free: func(string) (uint64, error) { return free.Load(), nil }, stop: make(chan struct{}), done: make(chan struct{})}
	close(g.done)
	step := func(f uint64) error {
		free.Store(f)
		g.check(time.Now())
		return g.Admit()
	}
	if err := step(1 << 30); err != nil {
		t.Fatalf("1 GiB free: Admit = %v", err)
	}
	err := step(10 << 20)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("10 MiB free: Admit = %v, want ErrNoSpace", err)
	}
	t.Logf("refusal: %v", err)
	if st := g.Status(); !st.Low || st.Free != 10<<20 || st.Since.IsZero() {
		t.Errorf("Status = %+v, want Low with 10 MiB free", st)
	}
	if err := step(65 << 20); err == nil {
		t.Errorf("65 MiB free: cleared within the hysteresis")
	}
	if err := step(70 << 20); err != nil {
		t.Errorf("70 MiB free: Admit = %v, want cleared", err)
	}
	if st := g.Status(); st.Low {
		t.Errorf("Status = %+v, want not Low", st)
	}
}

// TestSpaceGuardReadsTheFilesystem: on a real directory the guard reads a
// positive free space, and a minimum beyond any disk trips it.
func TestSpaceGuardReadsTheFilesystem(t *testing.T) {
	if _, err := freeSpace(t.TempDir()); err != nil {
		t.Skipf("free space cannot be read here: %v", err)
	}
	quiet := slog.New(slog.DiscardHandler)
	ok := NewSpaceGuard(t.TempDir(), 1, time.Millisecond, quiet)
	defer ok.Close()
	if st := ok.Status(); st.Free == 0 || st.Err != "" || ok.Admit() != nil {
		t.Errorf("a 1-byte minimum: Status %+v, Admit %v", st, ok.Admit())
	}
	full := NewSpaceGuard(t.TempDir(), 1<<62, time.Millisecond, quiet)
	defer full.Close()
	if err := full.Admit(); !errors.Is(err, ErrNoSpace) {
		t.Errorf("a 4 EiB minimum: Admit = %v, want ErrNoSpace", err)
	}
	missing := NewSpaceGuard(t.TempDir()+"/gone/x", 1, time.Millisecond, quiet)
	defer missing.Close()
	if st := missing.Status(); st.Err == "" || missing.Admit() != nil {
		t.Errorf("a missing path: Status %+v, Admit %v; want an error noted and nothing refused", st, missing.Admit())
	}
	ok.Close() // idempotent
}
