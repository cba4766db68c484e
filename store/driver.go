package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
)

// LevelNotice is gearmand's NOTICE level (server.LevelNotice is this),
// which the server logs at every --verbose: a driver tells the operator at
// it what must be seen at start, such as how many jobs it took over from C
// gearmand.
const LevelNotice = slog.Level(2)

// Helpers that drivers share, so that each maps errors, shows keys and
// replays in chunks the same way.

// Wrap returns a driver's own error: it reads msg and matches both the
// sentinel and the native error behind it with errors.Is and errors.As.
func Wrap(msg string, sentinel, native error) error {
	return &driverError{msg: msg, errs: []error{sentinel, native}}
}

type driverError struct {
	msg  string
	errs []error
}

func (e *driverError) Error() string   { return e.msg }
func (e *driverError) Unwrap() []error { return e.errs }

// IsSentinel reports whether err already wraps one of this package's
// sentinel errors, so that a driver's error translation passes it on.
func IsSentinel(err error) bool {
	for _, s := range [...]error{ErrClosed, ErrUnavailable, ErrCorrupt, ErrLocked, ErrTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FormatKey makes a key of the embedded encoding readable in a log: "42
// (key 000000000000002a)" for a Seq, the bare hex for anything else.
func FormatKey(k []byte) string {
	if seq, err := ParseKey(k); err == nil {
		return fmt.Sprintf("%d (key %x)", seq, k)
	}
	return fmt.Sprintf("%x", k)
}

// Entry is one key and value read by a chunked Replay: a Record, or the
// reason (Err) it could not be decoded, with its Key.
type Entry struct {
	Record Record
	Key    []byte // set only with Err
	Err    error
}

// ReplayChunks drives a Replay that reads in chunks, so that no read
// transaction or iterator stays open while fn runs (fn may then call Apply
// or Close). read returns the entries from the key from onwards (nil: the
// first) and the key the next chunk starts at, nil at the end. Entries that
// did not decode go to corrupt and are skipped; ctx is checked between
// records.
func ReplayChunks(ctx context.Context, read func(from []byte) (chunk []Entry, next []byte, err error), corrupt func(key []byte, err error), fn func(Record) error) error {
	var from []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk, next, err := read(from)
		if err != nil {
			return err
		}
		for _, e := range chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.Err != nil {
				corrupt(e.Key, e.Err)
				continue
			}
			if err := fn(e.Record); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		from = next
	}
}

// CorruptReporter holds a driver's Corruption handler: embed it in a
// driver's Store to implement the Corruption capability. The zero value
// skips corrupt records silently. It is safe for concurrent use.
type CorruptReporter struct {
	fn atomic.Pointer[func(key string, err error)]
}

// SetCorruptHandler implements Corruption; nil goes back to skipping
// silently.
func (r *CorruptReporter) SetCorruptHandler(fn func(key string, err error)) {
	if fn == nil {
		r.fn.Store(nil)
		return
	}
	r.fn.Store(&fn)
}

// ReportCorrupt tells the handler, if any, about a record skipped under key.
func (r *CorruptReporter) ReportCorrupt(key string, err error) {
	if fn := r.fn.Load(); fn != nil {
		(*fn)(key, err)
	}
}

// ReportCorruptKey is ReportCorrupt for a key of the embedded encoding,
// shown with FormatKey.
func (r *CorruptReporter) ReportCorruptKey(key []byte, err error) {
	r.ReportCorrupt(FormatKey(key), err)
}

// IsDiskFault reports whether err is the operating system saying that a
// disk cannot take writes now: full (ENOSPC), over quota (EDQUOT),
// failing (EIO) or read-only (EROFS: ext4 remounts itself read-only after
// I/O errors). Every file-backed driver maps these to ErrUnavailable,
// since a retry may succeed once an operator has made room or repaired
// the disk.
func IsDiskFault(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS:
		return true
	}
	return false
}
