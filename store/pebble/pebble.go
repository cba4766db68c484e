package pebble

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"gearmand/store"
)

func init() {
	store.Register(store.Driver{
		Name:    "pebble",
		Summary: "a directory, an embedded LSM store",
		Flags: []store.Flag{
			{Name: "pebble-dir", Default: "gearmand.pebble", Usage: "the pebble store's `directory` (-q pebble)"},
		},
		Configure: func(v store.Values) (store.Options, error) {
			return store.PathOption(v, "pebble-dir")
		},
		Open: func(ctx context.Context, o store.Options) (store.Store, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return Open(o.Path, Logger(o.Logger))
		},
	})
}

// Memory. This runs beside the server on small machines, often many
// stores at once in tests, and its work is write-mostly: jobs are
// appended, read once by Replay at start, and deleted soon after. So:
//
//   - an 8 MiB block cache (Pebble's own default): reads are one
//     sequential scan at start, which a cache barely helps;
//   - 8 MiB memtables, at most two queued before writes stall (Pebble's
//     default threshold): about 16 MiB of live memtable at worst. A job
//     added and deleted within one memtable never reaches a table, so
//     memtables larger than the default 4 MiB save flush and compaction
//     work when workers keep up; a batch larger than half a memtable (a
//     few big payloads) is written as its own flushable batch;
//   - one compaction at a time (Pebble's default for a DB that does not
//     raise it).
const (
	cacheSize    = 8 << 20
	memTableSize = 8 << 20
)

// maxBatchBytes bounds one Apply. Pebble panics on batches of 4 GiB; far
// below that, a batch this big is a bug upstream, not a workload.
const maxBatchBytes = 1 << 30

// Replay reads at most this many records, or about this many bytes of
// values, per iterator (see the package doc).
const (
	replayChunkRecords = 1024
	replayChunkBytes   = 8 << 20
)

// Option changes how Open opens the database.
type Option func(*config)

type config struct {
	logger *slog.Logger
}

// Logger sets where Pebble's log lines go (default slog.Default()).
func Logger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// Store is a Pebble database holding background jobs. It is safe for
// concurrent use.
type Store struct {
	dir      string
	resolved string // dir's absolute path, symlinks resolved: its key in open
	lock     *pebbledb.Lock

	// mu guards db against Close: Pebble panics on use of a closed DB and
	// must not be closed under an open iterator or a commit, so Apply and
	// each Replay chunk hold mu for reading and Close holds it for writing.
	mu struct {
		sync.RWMutex
		db     *pebbledb.DB
		closed bool
	}

	store.CorruptReporter // the store.Corruption capability
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Corruption = (*Store)(nil)
)

// open lists the directories held by a Store of this process, by their
// resolved path. Pebble's LOCK is an fcntl lock, which a process never
// conflicts with itself on, so a second Open here is caught here.
var open struct {
	sync.Mutex
	dirs map[string]bool
}

// errHeldHere is the cause of ErrLocked for a directory this process has
// open already.
var errHeldHere = errors.New("held by this process")

// Open opens the Pebble database in dir, creating dir (mode 0700) and the
// database if they do not exist. dir's parent must exist. If another
// process, or another Open in this one, holds the directory, Open fails at
// once with an error wrapping store.ErrLocked.
func Open(dir string, opts ...Option) (_ *Store, err error) {
	cfg := config{logger: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if dir == "" {
		return nil, errors.New("pebble: no directory given")
	}
	parent := filepath.Dir(filepath.Clean(dir))
	switch fi, err := os.Stat(parent); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("pebble: cannot create %s: directory %s does not exist (create it first): %w", dir, parent, err)
	case err != nil:
		return nil, fmt.Errorf("pebble: cannot create %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("pebble: cannot create %s: %s is not a directory", dir, parent)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("pebble: cannot create %s: %w", dir, err)
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("pebble: %s: %w", dir, err)
	}
	if resolved, err = filepath.Abs(resolved); err != nil {
		return nil, fmt.Errorf("pebble: %s: %w", dir, err)
	}

	open.Lock()
	if open.dirs[resolved] {
		open.Unlock()
		return nil, interpretError(dir, lockFailure{errHeldHere})
	}
	if open.dirs == nil {
		open.dirs = make(map[string]bool)
	}
	open.dirs[resolved] = true
	open.Unlock()
	defer func() {
		if err != nil {
			open.Lock()
			delete(open.dirs, resolved)
			open.Unlock()
		}
	}()

	// Lock first, on its own, so that a lock held elsewhere is told apart
	// from every other way Open can fail.
	lock, err := pebbledb.LockDirectory(dir, vfs.Default)
	if err != nil {
		return nil, interpretError(dir, lockFailure{err})
	}
	cache := pebbledb.NewCache(cacheSize)
	defer cache.Unref() // the DB holds its own reference
	log := logger{cfg.logger.With("store", "pebble", "dir", dir)}
	db, err := pebbledb.Open(dir, &pebbledb.Options{
		FS:           newWALFS(),
		Cache:        cache,
		MemTableSize: memTableSize,
		Lock:         lock,
		Logger:       log,
		EventListener: &pebbledb.EventListener{
			// Pebble's default is Fatalf. A damaged block also fails the
			// read that found it, and Replay turns that into ErrCorrupt,
			// so log it and let the caller decide.
			DataCorruption: func(info pebbledb.DataCorruptionInfo) {
				log.l.Error("pebble found damaged data", "info", info.String())
			},
			DiskSlow: func(info pebbledb.DiskSlowInfo) {
				log.l.Warn("pebble: slow disk", "info", info.String())
			},
		},
	})
	if err != nil {
		lock.Close()
		return nil, interpretError(dir, err)
	}
	s := &Store{dir: dir, resolved: resolved, lock: lock}
	s.mu.db = db
	return s, nil
}

// Dir is the directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

// Apply writes b's adds and deletes as one Pebble batch committed with
// pebble.Sync: durable, and atomic across a crash, when it returns nil.
func (s *Store) Apply(ctx context.Context, b store.Batch) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	// Size the batch up front: its header, and per entry a kind byte, two
	// varint lengths, the key, and the value (40 bytes covers the value's
	// header and varints).
	size := 12 + len(b.Deletes)*(1+5+store.KeySize)
	maxValue := 0
	for i := range b.Adds {
		r := &b.Adds[i]
		n := 40 + len(r.Handle) + len(r.Function) + len(r.Unique) + len(r.Reducer) + len(r.Data)
		size += 1 + 5 + store.KeySize + 5 + n
		maxValue = max(maxValue, n)
	}
	if size >= maxBatchBytes {
		return interpretError(s.dir, fmt.Errorf("%w: a batch of %d bytes", pebbledb.ErrBatchTooLarge, size))
	}
	batch := s.mu.db.NewBatchWithSize(size)
	defer batch.Close()
	var key [store.KeySize]byte
	for _, seq := range b.Deletes {
		if err := batch.Delete(store.AppendKey(key[:0], seq), nil); err != nil {
			return interpretError(s.dir, err)
		}
	}
	// Set copies key and value into the batch, so one buffer serves all.
	value := make([]byte, 0, maxValue)
	for i := range b.Adds {
		value = store.AppendValue(value[:0], &b.Adds[i])
		if err := batch.Set(store.AppendKey(key[:0], b.Adds[i].Seq), value, nil); err != nil {
			return interpretError(s.dir, err)
		}
	}
	return interpretError(s.dir, batch.Commit(pebbledb.Sync))
}

// Replay calls fn for every stored record in ascending Seq order, with no
// iterator open while fn runs, so fn may call Apply or Close. Records that
// do not decode are skipped, kept, and reported to the corruption handler.
func (s *Store) Replay(ctx context.Context, fn func(store.Record) error) error {
	return store.ReplayChunks(ctx, s.readChunk, s.ReportCorruptKey, fn)
}

// readChunk decodes records from the key from onwards through one
// iterator, up to the chunk limits. next is where the following chunk
// starts, nil at the end.
func (s *Store) readChunk(from []byte) (chunk []store.Entry, next []byte, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return nil, nil, store.ErrClosed
	}
	it, err := s.mu.db.NewIter(&pebbledb.IterOptions{LowerBound: from})
	if err != nil {
		return nil, nil, interpretError(s.dir, err)
	}
	bytes := 0
	for ok := it.First(); ok; ok = it.Next() {
		if len(chunk) == replayChunkRecords || bytes >= replayChunkBytes {
			// The key is valid only until the iterator moves.
			next = append([]byte(nil), it.Key()...)
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, nil, interpretError(s.dir, err)
		}
		bytes += len(v)
		rec, err := store.DecodeRecord(it.Key(), v)
		if err != nil {
			chunk = append(chunk, store.Entry{Key: append([]byte(nil), it.Key()...), Err: err})
			continue
		}
		chunk = append(chunk, store.Entry{Record: rec})
	}
	if err := it.Close(); err != nil {
		return nil, nil, interpretError(s.dir, err)
	}
	return chunk, next, nil
}

// Close flushes nothing (every Apply is already synced), closes the
// database and releases the directory. Later calls of any method return
// store.ErrClosed, except Close, which returns nil. It waits for an Apply
// or a Replay chunk in flight.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	err := s.mu.db.Close()
	s.mu.db = nil
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	open.Lock()
	delete(open.dirs, s.resolved)
	open.Unlock()
	return interpretError(s.dir, err)
}

// lockFailure marks an error from taking the directory lock, the only
// step whose errors can mean "in use elsewhere".
type lockFailure struct{ err error }

func (l lockFailure) Error() string { return l.err.Error() }
func (l lockFailure) Unwrap() error { return l.err }

// interpretError maps Pebble's and the system's errors to the store
// sentinels, keeping the native error in the chain. It is the only place
// that knows Pebble's errors.
func interpretError(dir string, err error) error {
	var (
		errno syscall.Errno
		lock  lockFailure
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case store.IsSentinel(err):
		return err
	case errors.As(err, &lock):
		// fcntl answers EAGAIN or EACCES when another process holds
		// the lock; a PathError around them is opening the LOCK file,
		// a different trouble (permissions).
		var pathErr *fs.PathError
		if errors.Is(err, errHeldHere) ||
			!errors.As(err, &pathErr) && errors.As(err, &errno) && (errno == syscall.EAGAIN || errno == syscall.EACCES) {
			return store.Wrap(fmt.Sprintf("pebble: %s is in use by another gearmand (pebble LOCK file)", dir), store.ErrLocked, err)
		}
		return fmt.Errorf("pebble: cannot lock %s: %w", dir, lock.err)
	case errors.Is(err, pebbledb.ErrClosed):
		return store.Wrap("pebble: "+dir+": "+err.Error(), store.ErrClosed, err)
	case errors.Is(err, pebbledb.ErrBatchTooLarge):
		return store.Wrap("pebble: "+dir+": "+err.Error(), store.ErrTooLarge, err)
	case pebbledb.IsCorruptionError(err):
		return store.Wrap(fmt.Sprintf("pebble: %s holds damaged data: %v", dir, err), store.ErrCorrupt, err)
	case store.IsDiskFault(err):
		return store.Wrap("pebble: "+dir+": "+err.Error(), store.ErrUnavailable, err)
	}
	return fmt.Errorf("pebble: %s: %w", dir, err)
}

// logger hands Pebble's log lines to slog. Pebble logs routine work
// (flushes, compactions, WAL recovery) through Infof: debug level here.
type logger struct{ l *slog.Logger }

func (g logger) Infof(format string, args ...any) {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		g.l.Debug(fmt.Sprintf(format, args...))
	}
}

func (g logger) Errorf(format string, args ...any) {
	g.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf is for states Pebble cannot continue from (a MANIFEST it cannot
// write, say); it must not return. A panic keeps the stack in the crash
// report; the jobs are safe on disk for the next start.
func (g logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.l.Error("pebble fatal error", "err", msg)
	panic("pebble: " + msg)
}
