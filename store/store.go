package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// HandBack is an optional capability of a store that takes over, at Open,
// the jobs C gearmand left in its own queue (its PostgreSQL table, its
// Redis keys): the way back. HandBack moves every job of the store's
// namespace into C gearmand's own layout, where C gearmand 1.1.20 started
// with the same command line runs them, and removes them from the store,
// atomically per job: after a crash or an error half-way every job is in
// exactly one of the two places, never both, never neither.
//
// A job C gearmand could not hold as it is (an epoch job whose time has
// not come, a function name C would misread) stays in the store and is
// counted in Kept, never dropped. Jobs that C gearmand would confuse (an
// empty unique, two jobs of one function and unique) go back under a
// generated unique (NewUnique), counted in NewUnique. The driver logs
// each kind of change or refusal with examples through its logger.
//
// HandBack is for a store opened for nothing else: the namespace must
// have no running server (opening the store fenced any off), and the
// store must not be used after it but to Close it. Moved jobs are not
// moved again by the store's own Open until C gearmand has left them.
type HandBack interface {
	HandBack(ctx context.Context) (HandBackReport, error)
}

// HandBackReport is what a HandBack did.
type HandBackReport struct {
	// Where names C gearmand's place the jobs went to, for people: a
	// table, a key pattern.
	Where string
	// Moved is the number of jobs now in C gearmand's layout.
	Moved int
	// NewUnique counts the moved jobs given a generated unique.
	NewUnique int
	// Truncated counts the moved jobs that C gearmand will run with their
	// data cut short (its Redis queue reads data up to the first NUL).
	Truncated int
	// Kept is the number of jobs that could not go back and stay stored.
	Kept int
	// Notes say, for each kind of change or refusal, why, how many jobs
	// and one of them, in the order first met.
	Notes []HandBackNote
}

// HandBackNote is one kind of change or refusal of a HandBack.
type HandBackNote struct {
	Why     string // "kept: ...", or what was changed and why
	Jobs    int
	Example string // one job it happened to, for people
}

// Merge adds the counts and notes of o to r.
func (r *HandBackReport) Merge(o HandBackReport) {
	r.Moved += o.Moved
	r.NewUnique += o.NewUnique
	r.Truncated += o.Truncated
	r.Kept += o.Kept
	for _, n := range o.Notes {
		i := slices.IndexFunc(r.Notes, func(m HandBackNote) bool { return m.Why == n.Why })
		if i < 0 {
			r.Notes = append(r.Notes, n)
			continue
		}
		r.Notes[i].Jobs += n.Jobs
	}
}

// Note counts one job under why, keeping the first example.
func (r *HandBackReport) Note(why, example string) {
	for i := range r.Notes {
		if r.Notes[i].Why == why {
			r.Notes[i].Jobs++
			return
		}
	}
	r.Notes = append(r.Notes, HandBackNote{Why: why, Jobs: 1, Example: example})
}

// CQueueTable is an optional capability: a store that keeps its jobs in
// C gearmand's own table (-q MySQL, -q libsqlite3), which C gearmand
// started with the same command line reads as its own. Such a store needs
// no HandBack. Table names the table.
type CQueueTable interface {
	Table() string
}

// NewUnique returns a random (version 4) UUID in the 36-character
// lower-case form libgearman gives a background job submitted without a
// unique: the unique a job gets when it goes back to C gearmand, whose
// queues key jobs by function and unique, without a usable one.
func NewUnique() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
