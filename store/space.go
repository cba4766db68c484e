package store

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Pather is an optional capability: a store kept in a file or directory
// on a local filesystem says where, so that the server can watch the free
// space there (SpaceGuard). bolt and SQLite give their file, pebble its
// directory.
type Pather interface {
	Path() string
}

// ErrNoSpace is wrapped by SpaceGuard.Admit's refusal.
var ErrNoSpace = errors.New("store: free disk space below the minimum")

// DefaultSpaceCheckInterval is how often a SpaceGuard looks at the
// filesystem.
const DefaultSpaceCheckInterval = 100 * time.Millisecond

// SpaceGuard refuses new background jobs while the free space on a
// store's filesystem is below a minimum, so that the store never fills the
// disk to the point where even deletes and checkpoints cannot be written
// (etcd's NOSPACE alarm, CockroachDB's ballast). It looks at the
// filesystem every interval from its own goroutine; Admit only reads what
// it saw. It trips when the free space is below Min and clears once it is
// back to Min and a sixteenth, so that it does not flap at the edge; both
// are logged. Close stops it.
type SpaceGuard struct {
	path     string
	min      uint64
	interval time.Duration
	log      *slog.Logger
	free     func(path string) (uint64, error)

	low   atomic.Bool
	state atomic.Pointer[SpaceStatus]
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// SpaceStatus is what a SpaceGuard saw last.
type SpaceStatus struct {
	Path    string    // what is watched
	Min     uint64    // the minimum free bytes
	Free    uint64    // free bytes for unprivileged use at the last look
	Low     bool      // new background jobs are refused
	Since   time.Time // when Low last changed (zero if never)
	Err     string    // why the last look failed ("" if it worked)
	Checked time.Time // when it last looked
}

// NewSpaceGuard starts watching the filesystem that holds path, with min
// free bytes (which must be positive) and interval between looks
// (DefaultSpaceCheckInterval if zero or less). It looks once before it
// returns, so that a store opened on a full disk refuses at once. A look
// that fails (the filesystem cannot be asked) leaves the guard as it was
// and is logged once.
func NewSpaceGuard(path string, min uint64, interval time.Duration, log *slog.Logger) *SpaceGuard {
	if interval <= 0 {
		interval = DefaultSpaceCheckInterval
	}
	if log == nil {
		log = slog.Default()
	}
	g := &SpaceGuard{path: path, min: min, interval: interval, log: log, free: freeSpace, stop: make(chan struct{}), done: make(chan struct{})}
	g.check(time.Now())
	go g.run()
	return g
}

func (g *SpaceGuard) run() {
	defer close(g.done)
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.check(now)
		}
	}
}

// check looks at the filesystem once and trips or clears the guard.
func (g *SpaceGuard) check(now time.Time) {
	prev := g.state.Load()
	st := SpaceStatus{Path: g.path, Min: g.min, Checked: now, Low: g.low.Load()}
	if prev != nil {
		st.Since = prev.Since
	}
	free, err := g.free(g.path)
	if err != nil {
		st.Err = err.Error()
		if prev == nil || prev.Err == "" {
			g.log.Warn("cannot read the free space of the store's filesystem; the space guard keeps its last state", "path", g.path, "err", err)
		}
		if prev != nil {
			st.Free = prev.Free
		}
		g.state.Store(&st)
		return
	}
	st.Free = free
	switch {
	case !st.Low && free < g.min:
		st.Low, st.Since = true, now
		g.low.Store(true)
		g.log.Error("store disk nearly full: new background jobs are refused with QUEUE_ERROR until space is freed; completions still work",
			"path", g.path, "free_bytes", free, "min_free_bytes", g.min)
	case st.Low && free >= g.min+g.min/16:
		st.Low, st.Since = false, now
		g.low.Store(false)
		g.log.Warn("store disk has room again: background jobs are accepted", "path", g.path, "free_bytes", free, "min_free_bytes", g.min)
	}
	g.state.Store(&st)
}

// Admit returns an error wrapping ErrNoSpace while the guard is tripped,
// else nil. It reads one atomic: it may be called with locks held.
func (g *SpaceGuard) Admit() error {
	if !g.low.Load() {
		return nil
	}
	st := g.state.Load()
	return fmt.Errorf("%w: %s has %s free, below the %s of --store-min-free; new background jobs are refused until space is freed",
		ErrNoSpace, st.Path, formatBytes(st.Free), formatBytes(st.Min))
}

// Status returns what the guard saw last.
func (g *SpaceGuard) Status() SpaceStatus { return *g.state.Load() }

// Close stops the guard's goroutine. It is idempotent.
func (g *SpaceGuard) Close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

// formatBytes writes n in the largest binary unit that keeps it at least
// 1, with one decimal: "64.0 MiB".
func formatBytes(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
