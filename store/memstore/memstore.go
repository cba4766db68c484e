// Package memstore is an in-memory store.Store: the reference driver the
// conformance suite in store/storetest is checked against, and a store for
// tests of the layers above that need one without touching a disk. It keeps
// nothing across Close or a restart.
//
// It registers itself as "memory".
package memstore

import (
	"context"
	"slices"
	"sync"

	"gearmand/store"
)

func init() {
	store.Register(store.Driver{
		Name:    "memory",
		Summary: "memory, for tests",
		Open: func(context.Context, store.Options) (store.Store, error) {
			return New(), nil
		},
	})
}

// Store keeps records in a map guarded by a mutex. Apply copies each
// record's Data and Replay hands out fresh copies, so neither side can
// change what the other holds. It is safe for concurrent use.
type Store struct {
	mu struct {
		sync.Mutex
		closed  bool
		records map[uint64]store.Record
	}
}

var _ store.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	s := &Store{}
	s.mu.records = make(map[uint64]store.Record)
	return s
}

// Apply adds and deletes b's records at once: no Replay sees half of it.
func (s *Store) Apply(ctx context.Context, b store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Copy outside the lock; an add of a Seq already stored replaces it.
	adds := make([]store.Record, len(b.Adds))
	for i, r := range b.Adds {
		r.Data = clone(r.Data)
		adds[i] = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return store.ErrClosed
	}
	for _, seq := range b.Deletes {
		delete(s.mu.records, seq)
	}
	for _, r := range adds {
		s.mu.records[r.Seq] = r
	}
	return nil
}

// Replay calls fn for every record in ascending Seq order. It works on a
// snapshot taken when it starts, so fn may call Apply.
func (s *Store) Replay(ctx context.Context, fn func(store.Record) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	snapshot := make([]store.Record, 0, len(s.mu.records))
	for _, r := range s.mu.records {
		snapshot = append(snapshot, r)
	}
	s.mu.Unlock()
	slices.SortFunc(snapshot, func(a, b store.Record) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	for _, r := range snapshot {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Stored Data is never written to, so sharing it within the
		// snapshot is safe; what fn gets is its own.
		r.Data = clone(r.Data)
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of records stored.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.records)
}

// Close drops every record. Later calls return store.ErrClosed; a second
// Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = true
	s.mu.records = nil
	return nil
}

// clone copies b, keeping nil as nil and empty as empty.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
