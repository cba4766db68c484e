package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Mode is when an add counts as accepted.
type Mode uint8

const (
	// WriteThrough: an add is accepted only once the batch holding it is
	// durable; OnCommit reports the outcome for its token.
	WriteThrough Mode = iota
	// WriteBehind: an add is accepted at once and flushed on an interval;
	// a crash loses at most one interval of adds.
	WriteBehind
)

// String returns "write-through" or "write-behind".
func (m Mode) String() string {
	if m == WriteBehind {
		return "write-behind"
	}
	return "write-through"
}

// ParseMode reads "write-through" or "write-behind".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "write-through":
		return WriteThrough, nil
	case "write-behind":
		return WriteBehind, nil
	}
	return 0, errors.New("store mode must be write-through or write-behind, not " + s)
}

// CommitterConfig configures a Committer.
type CommitterConfig[T any] struct {
	Mode Mode
	// FlushInterval is how long write-behind lets adds gather before it
	// flushes them, idle or not, so that a job finished within it is never
	// written. Default 10ms.
	FlushInterval time.Duration
	// MaxPending and MaxPendingBytes bound the adds waiting or in flight;
	// WaitRoom blocks while either is reached. Defaults 100,000 and 64 MiB.
	MaxPending      int
	MaxPendingBytes int
	// OnCommit is called from the committer's goroutine after every batch
	// that held adds with tokens, with those tokens in Add order and the
	// outcome: nil once durable, else the error. It is called for
	// write-through adds only; write-behind adds are retried until stored.
	// The tokens slice is the committer's, reused for the next batch: it
	// must not be kept after OnCommit returns.
	OnCommit func(tokens []T, err error)
	// Logger receives store errors. Default slog.Default().
	Logger *slog.Logger
	// Observe, when set, is told of every Apply once it has returned, for
	// monitoring. It is called from the committer's goroutine, before
	// OnCommit, so it must be quick and must not block.
	Observe func(Commit)
	// Timeout bounds how long a write-through add waits for the store
	// (0: no bound). An add not durable within Timeout of its Add is
	// reported through OnCommit with an error wrapping ErrTimeout, from
	// the committer's watchdog goroutine, whatever the store is doing:
	// one still waiting in the queue is dropped and never written; one in
	// an Apply that has not returned is abandoned by its submitter. If
	// that Apply later succeeds, the record is stored although its
	// submitter was refused: OnLate is then told, so that the job is not
	// left stored but unknown (at least once).
	Timeout time.Duration
	// OnLate is called, from the committer's goroutine, with the records
	// of adds that OnCommit already reported as timed out but whose Apply
	// then succeeded: they are durable. The slice is the committer's and
	// must not be kept; the records' Data may be. Nil: nobody is told, and
	// the records stay stored until the next Replay brings them back.
	OnLate func([]Record)
	// Admit, when set, is asked by Add (not Update) whether a new add may
	// be queued now; a non-nil answer is returned by Add and nothing is
	// queued. It is called with the caller's locks held: it must be quick
	// and must not block (the space guard reads an atomic).
	Admit func() error
}

// ErrTimeout is wrapped by the error OnCommit reports for an add that was
// not durable within CommitterConfig.Timeout.
var ErrTimeout = errors.New("store: no answer within the store timeout")

// Commit describes one Apply for monitoring: its size, how long the store
// took, and its outcome.
type Commit struct {
	Adds     int // records written (after dropping ones deleted in the same batch)
	Deletes  int
	Duration time.Duration
	Err      error
}

// Committer sits between the queue and a Store: it gathers the adds and
// deletes that arrive from many goroutines and writes them in batches, one
// Apply at a time. Everything that arrives while one Apply is in flight goes
// into the next (group commit: one fsync or transaction for all of it).
//
// Delivery is at least once: a delete that fails is retried, and a job that
// finished just before a crash may come back on replay.
//
// Add, Update and Delete never block and never call back into the caller;
// they are safe to call with the caller's own locks held. OnCommit and
// OnLate are called with no Committer lock held, one call at a time: from
// the committer's goroutine, or for adds that outlived Timeout from its
// watchdog goroutine.
type Committer[T any] struct {
	store Store
	cfg   CommitterConfig[T]
	log   *slog.Logger

	mu struct {
		sync.Mutex
		adds    []pendingAdd[T]
		deletes []uint64
		pending int // adds waiting or in flight
		bytes   int // their Data bytes
		// oldest is when the oldest add not yet taken for a batch arrived
		// (zero when none waits). Write-behind refuses room while it is
		// older than two flush intervals: the store is behind, and new
		// acknowledgements would widen what a crash can lose.
		oldest time.Time
		// taken is oldest as it was when the batch in flight was taken; a
		// failed batch put back in front gets it again.
		taken    time.Time
		closing  bool
		roomFree chan struct{} // closed when room frees up
		// spareAdds and spareDeletes are the slices of the last batch
		// that succeeded, emptied, for take to hand to Add next.
		spareAdds    []pendingAdd[T]
		spareDeletes []uint64
		// inflight is the batch in the Apply running (nil between
		// Applies); the watchdog marks its adds that outlive Timeout.
		inflight []pendingAdd[T]
	}
	// reporting is held across each call of OnCommit and OnLate, and by
	// the watchdog from marking adds timed out until it has reported
	// them, so that an add's timeout is always reported before its late
	// success.
	reporting sync.Mutex
	// batch and tokens are apply's, reused from batch to batch (only the
	// committer's goroutine touches them).
	batch   []Record
	tokens  []T
	kick    chan struct{}
	closing chan struct{} // closed by Close: cuts short the flush wait
	abandon chan struct{} // closed when Close's context ends: stop retrying
	done    chan struct{}
	// ctx is passed to Apply; it ends with abandon, so that a store that
	// hangs cannot hold Close past its context.
	ctx    context.Context
	cancel context.CancelFunc
	// watched is closed when the watchdog ends (nil without one).
	watched chan struct{}
}

type pendingAdd[T any] struct {
	rec      Record
	token    T
	hasToken bool
	added    time.Time // when Add queued it (write-through with Timeout only)
	timedOut bool      // reported to OnCommit as timed out
}

// NewCommitter starts a Committer over s. Close stops it.
func NewCommitter[T any](s Store, cfg CommitterConfig[T]) *Committer[T] {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 10 * time.Millisecond
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Committer[T]{store: s, cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1), closing: make(chan struct{}), abandon: make(chan struct{}), done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.roomFree = make(chan struct{})
	go c.run()
	if cfg.Timeout > 0 && cfg.Mode == WriteThrough {
		c.watched = make(chan struct{})
		go c.watch()
	}
	return c
}

// Mode returns the committer's mode.
func (c *Committer[T]) Mode() Mode { return c.cfg.Mode }

// Pending returns how many adds wait for the store or are in flight, and
// their Data bytes: what the MaxPending bounds are measured against.
func (c *Committer[T]) Pending() (adds, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.pending, c.mu.bytes
}

// Add queues r. In write-through mode token comes back through OnCommit
// once the batch holding r is durable or has failed. The caller must not
// modify r.Data afterwards. After Close it returns ErrClosed.
//
// When CommitterConfig.Admit refuses, Add returns its error and queues
// nothing.
func (c *Committer[T]) Add(r Record, token T) error {
	return c.AddSince(r, token, time.Time{})
}

// AddSince is Add for a submitter that has been waiting since then (held
// back by WaitRoom, say): Timeout counts from since rather than from now.
// A zero since means now.
func (c *Committer[T]) AddSince(r Record, token T, since time.Time) error {
	if c.cfg.Admit != nil {
		if err := c.cfg.Admit(); err != nil {
			return err
		}
	}
	a := pendingAdd[T]{rec: r, token: token, hasToken: c.cfg.Mode == WriteThrough}
	if a.hasToken && c.cfg.Timeout > 0 {
		a.added = since
		if since.IsZero() {
			a.added = time.Now()
		}
	}
	return c.add(a)
}

// Update queues r to replace the stored record of the same Seq (to record
// a new attempt count, say). Nobody waits for it; it is retried until
// stored or deleted.
func (c *Committer[T]) Update(r Record) error {
	return c.add(pendingAdd[T]{rec: r})
}

func (c *Committer[T]) add(a pendingAdd[T]) error {
	c.mu.Lock()
	if c.mu.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	if len(c.mu.adds) == 0 {
		c.mu.oldest = time.Now()
	}
	c.mu.adds = append(c.mu.adds, a)
	c.mu.pending++
	c.mu.bytes += len(a.rec.Data)
	c.mu.Unlock()
	c.wake()
	return nil
}

// Delete queues the removal of the record with this Seq. An add of the
// same Seq still waiting is then never written.
func (c *Committer[T]) Delete(seq uint64) {
	c.mu.Lock()
	c.mu.deletes = append(c.mu.deletes, seq)
	c.mu.Unlock()
	c.wake()
}

func (c *Committer[T]) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// HasRoom reports whether an add now would stay within the bounds, so
// WaitRoom would not block.
//
// In write-behind mode the bounds include age: no room while the oldest
// unwritten add is older than two flush intervals, so that a store falling
// behind slows submitters down rather than stretching what a crash can
// lose.
func (c *Committer[T]) HasRoom() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hasRoomLocked()
}

func (c *Committer[T]) hasRoomLocked() bool {
	if c.mu.closing {
		return true
	}
	if c.mu.pending >= c.cfg.MaxPending || c.mu.bytes >= c.cfg.MaxPendingBytes {
		return false
	}
	return c.cfg.Mode != WriteBehind || c.mu.oldest.IsZero() || time.Since(c.mu.oldest) < 2*c.cfg.FlushInterval
}

// WaitRoom blocks while the adds waiting or in flight reach MaxPending or
// MaxPendingBytes, so that a store slower than its clients slows them down
// instead of growing memory. It returns ctx's error if ctx ends first, and
// with a Timeout, an error wrapping ErrTimeout once it has waited that
// long.
func (c *Committer[T]) WaitRoom(ctx context.Context) (err error) {
	if c.cfg.Timeout > 0 {
		parent := ctx
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		defer func() {
			if err != nil && parent.Err() == nil {
				err = fmt.Errorf("%w (%v): the store is behind, no room for the job; it was not created", ErrTimeout, c.cfg.Timeout)
			}
		}()
	}
	for {
		c.mu.Lock()
		free, room := c.mu.roomFree, c.hasRoomLocked()
		c.mu.Unlock()
		if room {
			return nil
		}
		select {
		case <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close flushes everything queued, stops the committer's goroutine and
// returns. It does not close the Store. If ctx ends first it returns ctx's
// error and whatever was still queued is not written.
func (c *Committer[T]) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.mu.closing {
		c.mu.closing = true
		close(c.closing)
	}
	c.mu.Unlock()
	c.wake()
	defer func() {
		if c.watched != nil {
			<-c.watched // it ends once done is closed
		}
	}()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		left := c.mu.pending
		select {
		case <-c.abandon:
		default:
			close(c.abandon)
			c.cancel()
		}
		c.mu.Unlock()
		c.log.Error("store: gave up flushing at shutdown", "unwritten_adds", left, "err", ctx.Err())
		<-c.done
		return ctx.Err()
	}
}

// watch is the watchdog goroutine: it fails write-through adds that have
// waited Timeout, until the committer's goroutine ends. It looks twenty
// times per Timeout, so an add is answered within Timeout and a
// twentieth.
func (c *Committer[T]) watch() {
	defer close(c.watched)
	tick := time.NewTicker(max(c.cfg.Timeout/20, time.Millisecond))
	defer tick.Stop()
	var tokens []T
	for {
		select {
		case <-c.done:
			return
		case now := <-tick.C:
			tokens = c.expire(now, tokens[:0])
			clear(tokens)
		}
	}
}

// expire reports the write-through adds that have waited Timeout at now:
// those still queued are dropped, those in the Apply running are marked,
// and all are reported to OnCommit with an error wrapping ErrTimeout.
// tokens is scratch space, returned for reuse.
func (c *Committer[T]) expire(now time.Time, tokens []T) []T {
	c.reporting.Lock()
	defer c.reporting.Unlock()
	deadline := now.Add(-c.cfg.Timeout)
	expired := func(a *pendingAdd[T]) bool {
		return a.hasToken && !a.timedOut && !a.added.After(deadline)
	}
	c.mu.Lock()
	inflight := 0
	for i := range c.mu.inflight {
		if a := &c.mu.inflight[i]; expired(a) {
			a.timedOut = true
			tokens = append(tokens, a.token)
			inflight++
		}
	}
	kept, dropped := c.mu.adds[:0], 0
	for _, a := range c.mu.adds {
		if expired(&a) {
			tokens = append(tokens, a.token)
			c.mu.pending--
			c.mu.bytes -= len(a.rec.Data)
			dropped++
			continue
		}
		kept = append(kept, a)
	}
	clear(c.mu.adds[len(kept):])
	c.mu.adds = kept
	if len(kept) == 0 {
		c.mu.oldest = time.Time{}
	}
	if dropped > 0 {
		c.freeRoomLocked()
	}
	c.mu.Unlock()
	if len(tokens) == 0 {
		return tokens
	}
	err := fmt.Errorf("%w (%v): the job was not created", ErrTimeout, c.cfg.Timeout)
	if inflight > 0 {
		err = fmt.Errorf("%w (%v): the job was not created; if the store's write lands later, the job is kept and runs", ErrTimeout, c.cfg.Timeout)
	}
	c.log.Error("store did not answer in time; submitters refused", "timeout", c.cfg.Timeout, "in_flight", inflight, "queued", dropped)
	if c.cfg.OnCommit != nil {
		c.cfg.OnCommit(tokens, err)
	}
	return tokens
}

// run is the committer's goroutine: take everything queued, Apply it, report,
// repeat.
func (c *Committer[T]) run() {
	defer close(c.done)
	defer c.cancel()
	var backoff time.Duration
	fenced := false // ErrLocked was logged
	for {
		<-c.kick
		c.mu.Lock()
		closing := c.mu.closing
		c.mu.Unlock()
		if c.cfg.Mode == WriteBehind && !closing {
			// A whole interval even after an idle spell: flushing the first
			// add at once would write every short job of a quiet server.
			c.pause(c.cfg.FlushInterval, c.closing)
		}
		limit := 0
		if backoff > 0 {
			limit = failingBatch
		}
		adds, deletes := c.take(limit)
		if len(adds) == 0 && len(deletes) == 0 {
			if closing {
				return
			}
			continue
		}
		err := c.apply(adds, deletes)
		switch {
		case err == nil:
			backoff = 0
			c.recycle(adds, deletes)
		case errors.Is(err, ErrLocked):
			if !fenced {
				fenced = true
				c.log.Error("store taken over by another server: this server's writes are refused from now on; background submits fail with QUEUE_ERROR until it is restarted", "err", err)
			}
		default:
			backoff = min(max(2*backoff, 10*time.Millisecond), time.Second)
			c.log.Error("store write failed; will retry", "err", err, "adds", len(adds), "deletes", len(deletes), "retry_in", backoff)
			if !c.pause(backoff, c.abandon) {
				return
			}
		}
		c.wake() // whatever arrived meanwhile, or the retry
	}
}

// pause waits for d or until cut is closed, and reports whether it waited
// the whole time.
func (c *Committer[T]) pause(d time.Duration, cut <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-cut:
		return false
	}
}

// failingBatch bounds the operations of one Apply while the store is
// failing. A store that failed for want of room may need room in
// proportion to the batch to take even deletes (SQLite writes every page
// a transaction changes to its WAL first): thousands of deletes gathered
// while it failed might never fit again, where a thousand at a time do,
// and free room for the rest.
const failingBatch = 1024

// take removes everything queued, or with limit > 0 at most limit
// operations (see takeSomeLocked).
func (c *Committer[T]) take(limit int) ([]pendingAdd[T], []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit > 0 && len(c.mu.adds)+len(c.mu.deletes) > limit {
		return c.takeSomeLocked(limit)
	}
	adds, deletes := c.mu.adds, c.mu.deletes
	c.mu.adds, c.mu.deletes = c.mu.spareAdds, c.mu.spareDeletes
	c.mu.spareAdds, c.mu.spareDeletes = nil, nil
	c.mu.taken, c.mu.oldest = c.mu.oldest, time.Time{}
	if !c.mu.taken.IsZero() {
		c.freeRoomLocked() // submitters held back by age may go on
	}
	return adds, deletes
}

// takeSomeLocked removes at most limit of the operations queued, deletes
// first (they free room in the store), and leaves the rest queued in
// order. An add left queued whose Seq has a delete taken now is dropped
// (an update, or a write-behind add of a job that is over): written after
// its delete, it would bring the job back. Adds with tokens never have a
// delete queued (their jobs run only once stored).
func (c *Committer[T]) takeSomeLocked(limit int) ([]pendingAdd[T], []uint64) {
	nd := min(len(c.mu.deletes), limit)
	deletes := slices.Clone(c.mu.deletes[:nd])
	c.mu.deletes = slices.Clone(c.mu.deletes[nd:])
	na := min(len(c.mu.adds), limit-nd)
	adds := slices.Clone(c.mu.adds[:na])
	rest := c.mu.adds[na:]
	if nd > 0 && len(rest) > 0 {
		gone := make(map[uint64]bool, nd)
		for _, seq := range deletes {
			gone[seq] = true
		}
		kept := rest[:0]
		for _, a := range rest {
			if gone[a.rec.Seq] && !a.hasToken {
				c.mu.pending--
				c.mu.bytes -= len(a.rec.Data)
				continue
			}
			kept = append(kept, a)
		}
		clear(rest[len(kept):])
		rest = kept
	}
	c.mu.adds = rest
	c.mu.taken = c.mu.oldest
	if len(rest) == 0 {
		c.mu.oldest = time.Time{}
	}
	c.freeRoomLocked()
	return adds, deletes
}

// apply writes one batch and settles it: tokens are reported; on failure
// deletes and tokenless adds go back to the queue for a retry, while adds
// with tokens fail (their submitters get the error).
func (c *Committer[T]) apply(adds []pendingAdd[T], deletes []uint64) error {
	b := Batch{Adds: c.batch[:0], Deletes: deletes}
	var deleted map[uint64]bool
	if len(deletes) > 0 && len(adds) > 0 {
		deleted = make(map[uint64]bool, len(deletes))
		for _, s := range deletes {
			deleted[s] = true
		}
	}
	for _, a := range adds {
		if !deleted[a.rec.Seq] {
			b.Adds = append(b.Adds, a.rec)
		}
	}
	b.Adds = lastPerSeq(b.Adds)
	tokens := c.tokens[:0]
	defer func() {
		// Keep the slices for the next batch, without what they point to
		// (lastPerSeq may have left records past the length).
		clear(b.Adds[:cap(b.Adds)])
		clear(tokens)
		c.batch, c.tokens = keepable(b.Adds), keepable(tokens)
	}()
	c.mu.Lock()
	c.mu.inflight = adds
	c.mu.Unlock()
	start := time.Now()
	err := c.store.Apply(c.ctx, b)
	if c.cfg.Observe != nil {
		c.cfg.Observe(Commit{Adds: len(b.Adds), Deletes: len(b.Deletes), Duration: time.Since(start), Err: err})
	}
	// From here on the watchdog leaves this batch alone: its adds that it
	// already reported are late, the others are reported below.
	c.reporting.Lock()
	defer c.reporting.Unlock()
	c.mu.Lock()
	c.mu.inflight = nil
	c.mu.Unlock()
	var late []Record
	for _, a := range adds {
		switch {
		case !a.hasToken:
		case !a.timedOut:
			tokens = append(tokens, a.token)
		case err == nil && !deleted[a.rec.Seq]:
			late = append(late, a.rec)
		}
	}
	settled := adds
	if err != nil && !errors.Is(err, ErrLocked) {
		// Adds nobody waits for (write-behind, updates) are retried with
		// the deletes; adds with tokens fail and their submitters are told.
		// ErrLocked is final (another server owns the store now), so
		// nothing of a batch it refused is retried.
		var retry []pendingAdd[T]
		settled = nil
		for _, a := range adds {
			if a.hasToken {
				settled = append(settled, a)
			} else {
				retry = append(retry, a)
			}
		}
		c.requeue(retry, deletes)
	}
	c.release(settled)
	if len(tokens) > 0 && c.cfg.OnCommit != nil {
		c.cfg.OnCommit(tokens, err)
	}
	if len(late) > 0 {
		c.log.Warn("store wrote jobs after their submitters were refused for the store timeout; they are kept and run", "jobs", len(late))
		if c.cfg.OnLate != nil {
			c.cfg.OnLate(late)
		}
	}
	return err
}

// lastPerSeq keeps only the last add of each Seq, in place: an update
// queued behind its record's add, or behind a failed update, supersedes
// it, and a Batch adds a Seq at most once.
func lastPerSeq(rs []Record) []Record {
	increasing := true
	for i := 1; i < len(rs) && increasing; i++ {
		increasing = rs[i-1].Seq < rs[i].Seq
	}
	if increasing {
		return rs
	}
	last := make(map[uint64]int, len(rs))
	for i, r := range rs {
		last[r.Seq] = i
	}
	out := rs[:0]
	for i, r := range rs {
		if last[r.Seq] == i {
			out = append(out, r)
		}
	}
	return out
}

// recycle keeps a batch's slices, once it succeeded and nothing refers to
// them any more, for take to hand out again.
func (c *Committer[T]) recycle(adds []pendingAdd[T], deletes []uint64) {
	clear(adds) // the records' data, the tokens
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.spareAdds, c.mu.spareDeletes = keepable(adds), keepable(deletes)
}

// maxKeptBatch bounds the capacity of a slice the committer keeps for
// reuse: a burst should not pin its memory for good.
const maxKeptBatch = 4096

// keepable returns s emptied, or nil when it is too large to keep.
func keepable[E any](s []E) []E {
	if cap(s) > maxKeptBatch {
		return nil
	}
	return s[:0]
}

// requeue puts a failed batch's retriable parts back in front of what
// arrived since, keeping their order. They stay counted as pending.
func (c *Committer[T]) requeue(adds []pendingAdd[T], deletes []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.adds = append(adds[:len(adds):len(adds)], c.mu.adds...)
	c.mu.deletes = append(deletes[:len(deletes):len(deletes)], c.mu.deletes...)
	if len(adds) > 0 {
		c.mu.oldest = c.mu.taken
	}
}

// release stops counting settled adds against the bound and wakes
// WaitRoom callers.
func (c *Committer[T]) release(adds []pendingAdd[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range adds {
		c.mu.pending--
		c.mu.bytes -= len(a.rec.Data)
	}
	c.freeRoomLocked()
}

// freeRoomLocked wakes WaitRoom callers to look again.
func (c *Committer[T]) freeRoomLocked() {
	close(c.mu.roomFree)
	c.mu.roomFree = make(chan struct{})
}
