package storetest

import (
	"context"
	"slices"
	"sync"
	"time"

	"gearmand/store"
)

// Faulty wraps a store.Store and misbehaves on request: Apply calls fail,
// fail after they were stored, wait, or are held until released; it also
// counts calls and can keep a log of every batch it saw. The zero value
// with Store set passes every call through. It is safe for concurrent use.
//
//	f := &storetest.Faulty{Store: memstore.New()}
//	f.FailNext(2, store.ErrUnavailable)
type Faulty struct {
	Store store.Store

	mu struct {
		sync.Mutex
		failNext  int   // Apply calls still to fail before the store
		failAfter int   // Apply calls still to reach the store and then fail
		failAll   bool  // every Apply fails before the store until Heal
		failErr   error // the error of failNext and failAll
		afterErr  error // the error of failAfter
		replayErr error // Replay fails with it until Heal
		delay     time.Duration
		hold      chan struct{} // non-nil: Apply waits until it is closed
		held      int           // Apply calls waiting at the hold
		applies   int
		failed    int
		keep      bool
		calls     []Call
		replays   int
	}
}

var _ store.Store = (*Faulty)(nil)

// Call is one Apply that Faulty saw, in the order the calls finished.
type Call struct {
	// Batch is a copy of the batch's slices (the records' Data is shared).
	Batch store.Batch
	// Err is what Apply returned.
	Err error
}

func orUnavailable(err error) error {
	if err == nil {
		return store.ErrUnavailable
	}
	return err
}

// FailNext makes the next n Apply calls return err (store.ErrUnavailable
// if nil) without reaching the store. A call that is already waiting at a
// delay or the hold counts as next.
func (f *Faulty) FailNext(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.failNext, f.mu.failErr = n, orUnavailable(err)
}

// Fail makes every Apply return err (store.ErrUnavailable if nil) without
// reaching the store, until Heal.
func (f *Faulty) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.failAll, f.mu.failErr = true, orUnavailable(err)
}

// FailAfterNext makes the next n Apply calls reach the store and then
// return err (store.ErrUnavailable if nil) even when the store succeeded:
// a commit whose reply was lost.
func (f *Faulty) FailAfterNext(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.failAfter, f.mu.afterErr = n, orUnavailable(err)
}

// FailReplay makes Replay return err (store.ErrUnavailable if nil) without
// reaching the store, until Heal.
func (f *Faulty) FailReplay(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.replayErr = orUnavailable(err)
}

// Heal ends every failure set by FailNext, Fail, FailAfterNext and
// FailReplay. It leaves the delay and the hold alone.
func (f *Faulty) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.failNext, f.mu.failAfter, f.mu.failAll = 0, 0, false
	f.mu.replayErr = nil
}

// SetDelay makes every later Apply wait d (or until its context ends)
// before it goes on. Zero removes the delay.
func (f *Faulty) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.delay = d
}

// Hold makes Apply calls wait, before they reach the store, until Release
// (or until their context ends). Held reports how many are waiting.
func (f *Faulty) Hold() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.hold == nil {
		f.mu.hold = make(chan struct{})
	}
}

// Release lets the calls waiting at the hold go on, and later calls pass.
func (f *Faulty) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.hold != nil {
		close(f.mu.hold)
		f.mu.hold = nil
	}
}

// Held is the number of Apply calls waiting at the hold now.
func (f *Faulty) Held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.held
}

// Applies is the number of Apply calls begun, failed ones included.
func (f *Faulty) Applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.applies
}

// Failed is the number of Apply calls that returned an error.
func (f *Faulty) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.failed
}

// Replays is the number of Replay calls begun.
func (f *Faulty) Replays() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.replays
}

// KeepCalls makes Faulty remember every later Apply call; Calls returns
// them. It is off by default so that long runs do not grow memory.
func (f *Faulty) KeepCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.keep = true
}

// Calls returns the Apply calls remembered since KeepCalls.
func (f *Faulty) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.mu.calls)
}

// Apply waits for the delay and the hold, then fails or passes b to the
// store as the failures set say.
func (f *Faulty) Apply(ctx context.Context, b store.Batch) (err error) {
	f.mu.Lock()
	f.mu.applies++
	delay, keep := f.mu.delay, f.mu.keep
	f.mu.Unlock()
	if keep {
		// Copied now, before the store or the caller can change the slices.
		b := store.Batch{Adds: slices.Clone(b.Adds), Deletes: slices.Clone(b.Deletes)}
		defer func() {
			f.mu.Lock()
			f.mu.calls = append(f.mu.calls, Call{Batch: b, Err: err})
			f.mu.Unlock()
		}()
	}
	defer func() {
		if err != nil {
			f.mu.Lock()
			f.mu.failed++
			f.mu.Unlock()
		}
	}()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if err := f.waitHold(ctx); err != nil {
		return err
	}

	f.mu.Lock()
	var before, after error
	switch {
	case f.mu.failNext > 0:
		f.mu.failNext--
		before = f.mu.failErr
	case f.mu.failAll:
		before = f.mu.failErr
	case f.mu.failAfter > 0:
		f.mu.failAfter--
		after = f.mu.afterErr
	}
	f.mu.Unlock()
	if before != nil {
		return before
	}
	if err := f.Store.Apply(ctx, b); err != nil {
		return err
	}
	return after
}

func (f *Faulty) waitHold(ctx context.Context) error {
	f.mu.Lock()
	hold := f.mu.hold
	if hold == nil {
		f.mu.Unlock()
		return nil
	}
	f.mu.held++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.mu.held--
		f.mu.Unlock()
	}()
	select {
	case <-hold:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Replay passes through to the store unless FailReplay is in force.
func (f *Faulty) Replay(ctx context.Context, fn func(store.Record) error) error {
	f.mu.Lock()
	f.mu.replays++
	err := f.mu.replayErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Store.Replay(ctx, fn)
}

// Close closes the store.
func (f *Faulty) Close() error { return f.Store.Close() }
