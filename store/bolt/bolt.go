package bolt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"gearmand/store"
)

func init() {
	store.Register("bolt", func(ctx context.Context, o store.Options) (store.Store, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return Open(o.Path)
	})
}

// bucket is the one bucket that holds the jobs.
var bucket = []byte("jobs")

// DefaultLockTimeout is how long Open waits for another process to let go
// of the file before it fails with store.ErrLocked. Long enough to ride
// out a server that is still closing during a restart, short enough that a
// second server started by mistake says so at once.
const DefaultLockTimeout = 500 * time.Millisecond

// Replay reads at most this many records, or about this many bytes of
// values, per read transaction (see the package doc).
const (
	replayChunkRecords = 1024
	replayChunkBytes   = 8 << 20
)

// Option changes how Open opens the file.
type Option func(*config)

type config struct {
	lockTimeout time.Duration
}

// LockTimeout sets how long Open waits for the file lock (default
// DefaultLockTimeout). Zero or less means the default: bbolt's own zero,
// waiting forever, is never what a server wants.
func LockTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.lockTimeout = d
		}
	}
}

// Store is a bbolt file holding background jobs. It is safe for concurrent
// use: bbolt serializes the Apply transactions, and Replay's reads run
// beside them.
type Store struct {
	db     *bbolt.DB
	path   string
	closed atomic.Bool

	applyMu sync.Mutex // held by Apply across its transaction and ahead
	ahead   *zeroAhead
	enc     encoder // Apply's buffers, under applyMu

	store.CorruptReporter // the store.Corruption capability
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Corruption = (*Store)(nil)
)

// Open opens the bbolt file at path, creating it (mode 0600) if it does
// not exist. Its directory must exist. If another process, or another Open
// in this one, holds the file, Open fails after the lock timeout with an
// error wrapping store.ErrLocked.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := config{lockTimeout: DefaultLockTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" {
		return nil, errors.New("bolt: no file given")
	}
	dir := filepath.Dir(path)
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("bolt: cannot create %s: directory %s does not exist (create it first): %w", path, dir, err)
	case err != nil:
		return nil, fmt.Errorf("bolt: cannot create %s: %w", path, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("bolt: cannot create %s: %s is not a directory", path, dir)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: cfg.lockTimeout,
		// The defaults otherwise: NoSync and NoGrowSync false, the
		// freelist synced with every commit and kept as an array.
		FreelistType: bbolt.FreelistArrayType,
	})
	if err != nil {
		return nil, interpretError(path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, interpretError(path, err)
	}
	return &Store{db: db, path: path, ahead: newZeroAhead(path)}, nil
}

// Path is the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Apply writes b's adds and deletes in one transaction, durable when it
// returns nil. Values are encoded before the transaction starts, so the
// single writer lock is held only for the B+tree work and the fsyncs.
func (s *Store) Apply(ctx context.Context, b store.Batch) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	keys, values := s.enc.encode(b)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return fmt.Errorf("%w: bucket %q is missing", store.ErrCorrupt, bucket)
		}
		// Seqs only grow, so adds land at the right edge of the tree: a
		// full page is never split again, and a commit writes fewer of
		// them than at bbolt's default half fill.
		bk.FillPercent = 1.0
		for i := range b.Deletes {
			if err := bk.Delete(keys[len(b.Adds)+i]); err != nil {
				return err
			}
		}
		for i := range b.Adds {
			if err := bk.Put(keys[i], values[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return interpretError(s.path, err)
	}
	var mark int64 // the high-water mark, now committed
	if s.db.View(func(tx *bbolt.Tx) error { mark = tx.Size(); return nil }) == nil {
		s.ahead.extend(mark)
	}
	return nil
}

// encoder holds the buffers Apply encodes a batch into. bbolt points at
// them until the transaction ends, so the next Apply may reuse them, and
// only Apply, under applyMu, uses them.
type encoder struct {
	keyBuf, valBuf []byte
	keys, values   [][]byte
}

// maxKeptEncoding bounds the value bytes an encoder keeps between batches,
// and a 64th of it the records: one large batch should not pin its memory
// for good.
const maxKeptEncoding = 1 << 20

// encode returns the keys of b's adds then of its deletes, and the values
// of its adds, carved from the encoder's buffers (grown when too small).
// They are valid until the next encode.
func (e *encoder) encode(b store.Batch) (keys, values [][]byte) {
	n := b.Len()
	keyBuf := reuse(e.keyBuf, n*store.KeySize)
	keys = reuse(e.keys, n)
	size := 0
	for i := range b.Adds {
		r := &b.Adds[i]
		// Two bytes of header, three varints and four length-prefixed
		// strings: 40 bytes covers every varint.
		size += 40 + len(r.Handle) + len(r.Function) + len(r.Unique) + len(r.Reducer) + len(r.Data)
		keyBuf = store.AppendKey(keyBuf, r.Seq)
		keys = append(keys, keyBuf[len(keyBuf)-store.KeySize:])
	}
	for _, seq := range b.Deletes {
		keyBuf = store.AppendKey(keyBuf, seq)
		keys = append(keys, keyBuf[len(keyBuf)-store.KeySize:])
	}
	valBuf := reuse(e.valBuf, size)
	values = reuse(e.values, len(b.Adds))
	for i := range b.Adds {
		start := len(valBuf)
		valBuf = store.AppendValue(valBuf, &b.Adds[i])
		values = append(values, valBuf[start:len(valBuf):len(valBuf)])
	}
	*e = encoder{keyBuf, valBuf, keys, values}
	if cap(valBuf) > maxKeptEncoding || cap(keys) > maxKeptEncoding/64 {
		*e = encoder{} // keep nothing that points at a large batch either
	}
	return keys, values
}

// reuse returns s emptied when it has room for n elements, else a new
// slice with that room.
func reuse[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, 0, n)
	}
	return s[:0]
}

// Replay calls fn for every stored record in ascending Seq order, with no
// transaction open while fn runs, so fn may call Apply. Records that do
// not decode are skipped, kept, and reported to the corruption handler.
func (s *Store) Replay(ctx context.Context, fn func(store.Record) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	read := func(from []byte) ([]store.Entry, []byte, error) {
		chunk, next, err := s.readChunk(from)
		return chunk, next, interpretError(s.path, err)
	}
	return store.ReplayChunks(ctx, read, s.ReportCorruptKey, fn)
}

// readChunk decodes records from the key from onwards in one read
// transaction, up to the chunk limits. next is where the following chunk
// starts, nil at the end of the bucket.
func (s *Store) readChunk(from []byte) (chunk []store.Entry, next []byte, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return fmt.Errorf("%w: bucket %q is missing", store.ErrCorrupt, bucket)
		}
		c := bk.Cursor()
		var k, v []byte
		if from == nil {
			k, v = c.First()
		} else {
			k, v = c.Seek(from)
		}
		bytes := 0
		for ; k != nil; k, v = c.Next() {
			if len(chunk) == replayChunkRecords || bytes >= replayChunkBytes {
				// k is valid only inside the transaction.
				next = append([]byte(nil), k...)
				return nil
			}
			if v == nil {
				// A nested bucket: nothing of ours, and not a record.
				chunk = append(chunk, store.Entry{Key: append([]byte(nil), k...), Err: fmt.Errorf("%w: a bucket, not a record", store.ErrCorrupt)})
				continue
			}
			bytes += len(v)
			rec, err := store.DecodeRecord(k, v)
			if err != nil {
				chunk = append(chunk, store.Entry{Key: append([]byte(nil), k...), Err: err})
				continue
			}
			chunk = append(chunk, store.Entry{Record: rec})
		}
		return nil
	})
	return chunk, next, err
}

// Close closes the file and releases its lock. Later calls of any method
// return store.ErrClosed, except Close, which returns nil. It waits for an
// Apply in flight to finish.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.applyMu.Lock()
	s.ahead.close()
	s.applyMu.Unlock()
	return interpretError(s.path, s.db.Close())
}

// interpretError maps bbolt's and the system's errors to the store
// sentinels, keeping the native error in the chain. It is the only place
// that knows bbolt's errors.
func interpretError(path string, err error) error {
	var errno syscall.Errno
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case store.IsSentinel(err):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		return store.Wrap(fmt.Sprintf("bolt: %s is in use by another gearmand (bolt file lock)", path), store.ErrLocked, err)
	case errors.Is(err, berrors.ErrDatabaseNotOpen), errors.Is(err, berrors.ErrTxClosed):
		return store.Wrap("bolt: "+path+": "+err.Error(), store.ErrClosed, err)
	case errors.Is(err, berrors.ErrValueTooLarge), errors.Is(err, berrors.ErrKeyTooLarge),
		errors.Is(err, berrors.ErrMaxSizeReached):
		return store.Wrap("bolt: "+path+": "+err.Error(), store.ErrTooLarge, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return store.Wrap(fmt.Sprintf("bolt: %s is not a bolt file or is damaged: %v", path, err), store.ErrCorrupt, err)
	case errors.As(err, &errno) && (errno == syscall.ENOSPC || errno == syscall.EDQUOT || errno == syscall.EIO):
		// A full or failing disk: a retry may succeed once an operator
		// has made room.
		return store.Wrap("bolt: "+path+": "+err.Error(), store.ErrUnavailable, err)
	}
	return fmt.Errorf("bolt: %s: %w", path, err)
}
