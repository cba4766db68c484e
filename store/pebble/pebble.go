package pebble

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
		Check: func(_ context.Context, o store.Options) error {
			return store.CheckDir(o.Path, true, "pebble-dir")
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
	fs     vfs.FS // nil: walFS (tests put faults in)
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
	fs       vfs.FS
	log      logger

	// mu guards db against Close and reopen: Pebble panics on use of a
	// closed DB and must not be closed under an open iterator or a commit,
	// so Apply and each Replay chunk hold mu for reading and Close and
	// reopen hold it for writing.
	mu struct {
		sync.RWMutex
		db     *pebbledb.DB // nil while failed and not yet reopened
		closed bool
	}
	// failed is why the database failed (see Fatal errors), nil while it
	// works. Set under mu read-locked, cleared under mu write-locked.
	failed atomic.Pointer[error]
	// background thins out the log of Pebble's background errors.
	background errorThinner

	store.CorruptReporter // the store.Corruption capability
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Corruption = (*Store)(nil)
	_ store.Pather     = (*Store)(nil)
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
	s := &Store{dir: dir, resolved: resolved, lock: lock, fs: cmp.Or(cfg.fs, newWALFS()), log: logger{cfg.logger.With("store", "pebble", "dir", dir)}}
	db, err := s.openDB()
	if err != nil {
		lock.Close()
		return nil, interpretError(dir, err)
	}
	s.mu.db = db
	return s, nil
}

// openDB opens the Pebble database in s.dir under s.lock, which it does
// not release when it closes (Pebble leaves a lock passed in to its
// owner): a reopen keeps the directory locked throughout.
func (s *Store) openDB() (*pebbledb.DB, error) {
	cache := pebbledb.NewCache(cacheSize)
	defer cache.Unref() // the DB holds its own reference
	log := s.log
	return pebbledb.Open(s.dir, &pebbledb.Options{
		FS:           s.fs,
		Cache:        cache,
		MemTableSize: memTableSize,
		Lock:         s.lock,
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
			// Pebble retries a failed flush or compaction at once; on a
			// full disk that is thousands of times a second, each logged.
			BackgroundError: s.background.log(log.l),
		},
	})
}

// Dir is the directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

// Path is Dir: the store.Pather capability, so that the server watches the
// free space of the directory's filesystem.
func (s *Store) Path() string { return s.dir }

// Apply writes b's adds and deletes as one Pebble batch committed with
// pebble.Sync: durable, and atomic across a crash, when it returns nil.
//
// A commit that Pebble cannot complete (its log cannot be written: a full
// disk) fails the database; this Apply and every later one return an
// error wrapping store.ErrUnavailable with the reason, and each later
// Apply first tries to reopen the database from what is on disk (see
// Fatal errors in the package doc).
func (s *Store) Apply(ctx context.Context, b store.Batch) error {
	if s.failed.Load() != nil {
		if err := s.reopen(); err != nil {
			return err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return store.ErrClosed
	}
	if s.mu.db == nil {
		return s.failure()
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
	defer func() {
		if s.failed.Load() != nil {
			// The batch of a commit that failed fatally is garbage;
			// Pebble may refuse to close it.
			defer func() { _ = recover() }()
		}
		batch.Close()
	}()
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
	return s.commit(batch)
}

// commit commits b with pebble.Sync, turning a fatal commit error (see
// logger.Fatalf) into a failed store.
func (s *Store) commit(b *pebbledb.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			var f fatalCommit
			if !errors.As(asError(r), &f) {
				panic(r)
			}
			err = s.fail(f)
		}
	}()
	return interpretError(s.dir, b.Commit(pebbledb.Sync))
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
	if s.failed.Load() != nil {
		if err := s.reopen(); err != nil {
			return nil, nil, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mu.closed {
		return nil, nil, store.ErrClosed
	}
	if s.mu.db == nil {
		return nil, nil, s.failure()
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
	var err error
	if s.mu.db != nil {
		err = closeDB(s.mu.db)
		s.mu.db = nil
	}
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
		fatal fatalCommit
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
	case errors.As(err, &fatal):
		return store.Wrap(fmt.Sprintf("pebble: %s failed (%s); it is reopened from what is on disk at the next write", dir, fatal.msg), store.ErrUnavailable, err)
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

// Fatalf is for states Pebble cannot continue from; it must not return.
//
// A commit that failed (its log could not be written or synced: a full
// disk) reaches it from Apply's goroutine, with no Pebble lock held: it
// panics with a fatalCommit, which Apply recovers and turns into a failed
// store that the next Apply reopens. Nothing acknowledged is at risk: the
// batch was not acknowledged, and the database's view of its files is
// intact.
//
// Any other (a MANIFEST that cannot be written or synced, a broken
// invariant) comes from a background flush or compaction, often with
// Pebble's own lock held, and means Pebble's view of its files may no
// longer be the disk's: going on, or closing, could remove a log that
// still holds acknowledged jobs. So the process logs why and exits with
// status 1; the next start recovers the jobs from what is on disk.
func (g logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(msg, fatalCommitPrefix) {
		g.l.Error("pebble could not commit a batch; the store fails until it is reopened", "err", msg)
		panic(fatalCommit{msg})
	}
	g.l.Error("pebble failed outside a commit and cannot go on safely: its files may no longer match what it holds in memory, and going on could remove a log holding acknowledged jobs; exiting with status 1 (the next start recovers every acknowledged job from disk)", "err", msg)
	exit(1)
}

// exit is os.Exit; tests replace it.
var exit = os.Exit

// fatalCommitPrefix starts the message Pebble's DB.Apply passes to Fatalf
// when its commit pipeline fails (db.go), the one fatal error raised on
// the caller's goroutine.
const fatalCommitPrefix = "pebble: fatal commit error"

// fatalCommit is what Fatalf panics with for a failed commit.
type fatalCommit struct{ msg string }

func (f fatalCommit) Error() string { return f.msg }

// asError is a recovered panic value as an error.
func asError(r any) error {
	if err, ok := r.(error); ok {
		return err
	}
	return fmt.Errorf("%v", r)
}

// fail marks the database failed after a fatal commit, and returns the
// error Apply reports. Called with mu read-locked.
func (s *Store) fail(f fatalCommit) error {
	err := interpretError(s.dir, f)
	s.failed.Store(&err)
	return err
}

// failure is the error of a failed database that could not be reopened.
func (s *Store) failure() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return store.ErrUnavailable
}

// reopen closes the failed database and opens it again from what is on
// disk: Pebble replays its log, whose synced records are every batch it
// acknowledged. On failure (the disk is still full, say) the store stays
// failed and the error says why; the next call tries again.
func (s *Store) reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.failed.Load()
	switch {
	case s.mu.closed:
		return store.ErrClosed
	case p == nil:
		return nil // reopened meanwhile
	}
	if s.mu.db != nil {
		if err := closeDB(s.mu.db); err != nil {
			s.log.l.Warn("closing the failed pebble database", "err", err.Error()) // %+v would print Pebble's stack traces
		}
		s.mu.db = nil
	}
	db, err := s.openDB()
	if err != nil {
		return fmt.Errorf("%w; reopening it failed: %v", *p, interpretError(s.dir, err))
	}
	s.mu.db = db
	s.failed.Store(nil)
	s.log.l.Warn("pebble reopened after a failure; writes work again")
	return nil
}

// closeDB closes db, turning a panic of Pebble's (a database whose commit
// pipeline failed) into an error.
func closeDB(db *pebbledb.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pebble panicked while closing: %v", r)
		}
	}()
	return db.Close()
}

// errorThinner logs the first of a run of errors, then at most one a
// second, saying how many it left out.
type errorThinner struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// log returns an EventListener.BackgroundError that logs to l.
func (e *errorThinner) log(l *slog.Logger) func(error) {
	return func(err error) {
		e.mu.Lock()
		now := time.Now()
		if now.Sub(e.last) < time.Second {
			e.skipped++
			e.mu.Unlock()
			return
		}
		skipped := e.skipped
		e.last, e.skipped = now, 0
		e.mu.Unlock()
		l.Error("pebble background error (a flush or compaction failed; Pebble retries it)", "err", err.Error(), "like_errors_not_logged", skipped)
	}
}
