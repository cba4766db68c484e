package store

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Priority is a job's priority as stored: 0 HIGH, 1 NORMAL, 2 LOW, the
// numbering gearmand's stores use.
type Priority uint8

// Record is one durable background job.
type Record struct {
	// Seq is the server-assigned sequence number: strictly increasing, the
	// record's identity and key, and its replay order.
	Seq      uint64
	Handle   string // kept across restarts, so GET_STATUS keeps working
	Function string
	Unique   string // any bytes, up to 64
	Data     []byte // any bytes, NULs included
	Priority Priority
	RunAt    time.Time // zero: runnable at once (SUBMIT_JOB_EPOCH otherwise)
	Reducer  string
	Attempts uint32 // times a worker lost the job before it was stored
	Created  time.Time
}

// Batch is what one Apply makes durable at once: records to add and the
// sequence numbers of records to delete. A delete of a sequence number that
// is not stored is not an error. A Batch never adds and deletes the same
// sequence number, nor adds one twice.
type Batch struct {
	Adds    []Record
	Deletes []uint64
}

// Len is the number of operations in b.
func (b *Batch) Len() int { return len(b.Adds) + len(b.Deletes) }

// Store is a durable home for background jobs. Drivers implement it; the
// Committer is its only caller at run time, and Replay runs once at start.
//
// Contract:
//   - Apply makes every add and delete of the batch durable before it
//     returns nil (fsync, transaction commit, or the driver's equivalent),
//     atomically: after a crash either all of the batch is there or none.
//     On error nothing of the batch may be assumed stored. An add of a Seq
//     that is already stored replaces that record; a delete of a Seq that
//     is not stored is not an error.
//   - Replay calls fn for every stored record in ascending Seq order. The
//     Record passed to fn, its Data included, belongs to fn. A record that
//     cannot be decoded is skipped and kept stored, and reported to the
//     handler set through the Corruption capability when the driver has it.
//     If fn returns an error Replay stops and returns it.
//   - The Committer calls Apply from one goroutine at a time, and Replay
//     runs before any Apply; drivers must still be safe for concurrent
//     Apply calls (the conformance suite checks it).
//   - After Close every method returns ErrClosed. Close is idempotent.
type Store interface {
	Apply(ctx context.Context, b Batch) error
	Replay(ctx context.Context, fn func(Record) error) error
	Close() error
}

// Corruption is an optional capability: a driver that can skip a record it
// cannot decode reports it here during Replay, with the record's key, and
// keeps the record stored.
type Corruption interface {
	// SetCorruptHandler sets the callback Replay calls for each record it
	// skips. The default logs nothing and skips.
	SetCorruptHandler(func(key string, err error))
}

// Sentinel errors. Each driver maps its native errors to these in one
// function; callers test with errors.Is.
var (
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrUnavailable: the backing service or disk cannot be reached now; a
	// retry may succeed.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrCorrupt: stored bytes could not be decoded.
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrLocked: another process holds the store (a second server on the
	// same file or directory).
	ErrLocked = errors.New("store: locked by another process")
	// ErrTooLarge: a record exceeds what the driver can store.
	ErrTooLarge = errors.New("store: record too large")
)

// Options configure a driver at Open. Each driver reads the fields it
// understands and ignores the rest.
type Options struct {
	// Path is the file (bolt) or directory (pebble) of an embedded store.
	Path string
	// DSN is a connection string or address of a networked store.
	DSN string
	// Namespace separates servers sharing one networked store.
	Namespace string
	// Extra holds driver-specific settings by name.
	Extra map[string]string
	// Logger is where a driver logs what an operator should know (nil:
	// slog.Default()).
	Logger *slog.Logger
	// Where says where the store is for people reading the log, without
	// secrets; "" means Path, or DSN with any password hidden.
	Where string
}
