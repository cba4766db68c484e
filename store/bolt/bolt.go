package bolt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"gearmand/store"
)

func init() {
	store.Register(store.Driver{
		Name:    "bolt",
		Summary: "one file, embedded (the default)",
		Flags: []store.Flag{
			{Name: "bolt-file", Default: "gearmand.db", Usage: "the bolt store's `file` (-q bolt); a journal is kept beside it while the server runs"},
		},
		Configure: func(v store.Values) (store.Options, error) {
			return store.PathOption(v, "bolt-file")
		},
		Check: func(_ context.Context, o store.Options) error {
			return store.CheckDir(o.Path, false, "bolt-file")
		},
		Open: func(ctx context.Context, o store.Options) (store.Store, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return Open(o.Path, Logger(o.Logger))
		},
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
	lockTimeout    time.Duration
	logger         *slog.Logger
	checkpointSize int
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

// CheckpointSize sets how many bytes of journal frames start a checkpoint
// (default DefaultCheckpointSize). Zero or less means the default.
func CheckpointSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.checkpointSize = n
		}
	}
}

// Logger sets where the store's log lines go (default slog.Default()):
// a journal recovered at Open (a warning: the last stop was not clean),
// and checkpoints that start (a warning) or stop failing.
func Logger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// Store is a bbolt file holding background jobs, with a journal in front
// of it (see the package doc). It is safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	path   string
	id     []byte // the file's identity, in its journals' headers
	closed atomic.Bool

	// mu is held by Apply, flush and Close. It guards the journal and the
	// operations journaled since the last checkpoint began.
	mu       sync.Mutex
	shut     bool     // Close has begun
	j        *journal // the journal Apply appends to; nil until the first Apply after a checkpoint began
	next     uint64   // the number of the next journal to create
	pending  map[uint64][]byte
	journal  int // bytes journaled into pending
	ops      []op
	ckpt     *checkpoint // the checkpoint running, or the last that failed; nil when neither
	ckptSize int         // the journaled bytes that start a checkpoint

	// writeMu is held across every bbolt write transaction and the zeroing
	// after it: one checkpoint at a time.
	writeMu sync.Mutex
	ahead   *zeroAhead
	fault   error // when set, checkpoints fail with it (tests), under writeMu
	failing bool  // the last checkpoint failed, under writeMu
	// broken is why bbolt panicked in a checkpoint (a damaged file, a
	// broken invariant), under writeMu: no checkpoint touches the file
	// again, and each fails with it. The journals keep every acknowledged
	// job; the next start recovers them.
	broken error
	// panicWith, when set, makes a checkpoint's transaction panic with it
	// as bbolt does on a damaged file (tests), under writeMu.
	panicWith any
	log       *slog.Logger

	// problems holds what Open's recovery found wrong in the journals,
	// for the first Replay to report.
	problems []problem

	store.CorruptReporter // the store.Corruption capability
}

// A checkpoint writes the operations journaled in the journals numbered
// below marker into the bbolt file, in one transaction that also records
// marker: those journals are then no longer needed.
type checkpoint struct {
	marker uint64
	ops    map[uint64][]byte // by Seq: the value to put, or nil to delete
	bytes  int               // the journal frames that carried ops
	done   chan struct{}     // closed when it has ended
	err    error             // set before done closes
}

// problem is a journal frame recovery could not read: the frames after it
// in that journal are lost.
type problem struct {
	key string
	err error
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Corruption = (*Store)(nil)
)

// The bbolt bucket of the journal's bookkeeping: the checkpoint marker,
// the number of the first journal a recovery must read (8 bytes
// big-endian; a file without it has no journal behind it), and the file's
// identity, 16 random bytes written when the bucket is created, which
// every journal of the file repeats in its header.
var (
	metaBucket = []byte("journal")
	markerKey  = []byte("next")
	idKey      = []byte("id")
)

// DefaultCheckpointSize is how many bytes of frames the journal takes
// before Apply starts a checkpoint in the background. About twice this
// much is kept in memory, the operations of the journal being written and
// of the one being checkpointed, and at most maxPendingCheckpoints times
// it.
const DefaultCheckpointSize = 16 << 20

// maxPendingCheckpoints bounds the operations waiting in memory for a
// checkpoint, in checkpoints' worth. When checkpoints fall that far
// behind, Apply waits for the one running; when they fail, Apply keeps
// journaling (the journal is durable) up to this bound, then fails with
// the checkpoint's error until one succeeds.
const maxPendingCheckpoints = 4

// Open opens the bbolt file at path, creating it (mode 0600) if it does
// not exist, and brings it up to date with its journals, if a crash left
// any. Its directory must exist. If another process, or another Open in
// this one, holds the file, Open fails after the lock timeout with an
// error wrapping store.ErrLocked.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := config{lockTimeout: DefaultLockTimeout, checkpointSize: DefaultCheckpointSize, logger: slog.Default()}
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
	var marker uint64
	var id []byte
	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucket); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		if v := meta.Get(markerKey); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("%w: checkpoint marker of %d bytes", store.ErrCorrupt, len(v))
			}
			marker = binary.BigEndian.Uint64(v)
		}
		id = append([]byte(nil), meta.Get(idKey)...)
		if len(id) == 0 {
			id = make([]byte, idSize)
			if _, err := rand.Read(id); err != nil {
				return err
			}
			return meta.Put(idKey, id)
		}
		if len(id) != idSize {
			return fmt.Errorf("%w: file identity of %d bytes", store.ErrCorrupt, len(id))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, interpretError(path, err)
	}
	s := &Store{db: db, path: path, next: max(marker, 1), id: id, pending: make(map[uint64][]byte), ckptSize: cfg.checkpointSize, log: cfg.logger}
	s.ahead = newZeroAhead(path)
	if err := s.recover(marker); err != nil {
		s.ahead.close()
		db.Close()
		return nil, interpretError(path, err)
	}
	return s, nil
}

// recover reads the journals numbered from marker on, oldest first, and
// checkpoints what they hold; it removes every journal once none is
// needed.
//
// Those journals must be numbered marker, marker+1, … with no gap (Apply
// creates them in that order, and only a checkpoint that recorded a later
// marker removes one). Any others belong to another copy of the file (a
// file deleted or restored from a backup beside a crashed server's
// journals): Open then refuses, rather than mix the two.
//
// A frame that does not check ends its journal. Followed by zeros only, it
// is the write a crash or a failed Apply cut short, never acknowledged, and
// is dropped silently. Followed by anything else it is damage: the journal
// is kept as "<journal>.damaged" for salvage, logged, and reported to the
// first Replay's corruption handler.
func (s *Store) recover(marker uint64) error {
	numbers, err := listJournals(s.path)
	if err != nil {
		return err
	}
	expect := max(marker, 1)
	for _, n := range numbers {
		s.next = max(s.next, n+1)
		if n < marker {
			continue
		}
		name := journalName(s.path, n)
		if n != expect {
			return fmt.Errorf("%w: %s is not the journal %s expects next (number %d): it belongs to another copy of the file; move the file's journals (%s.journal.*) away to start without them",
				store.ErrCorrupt, filepath.Base(name), filepath.Base(s.path), expect, filepath.Base(s.path))
		}
		expect++
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		end, err := readJournal(n, s.id, data, func(o op) { s.pending[o.seq] = o.value })
		if errors.Is(err, errForeign) {
			return fmt.Errorf("%w: %s: %v; move the file's journals (%s.journal.*) away to start without them",
				store.ErrCorrupt, filepath.Base(name), err, filepath.Base(s.path))
		}
		if errors.Is(err, errDamaged) {
			// A link keeps the bytes once the journal is removed below.
			keep := name + ".damaged"
			if lerr := os.Link(name, keep); lerr != nil {
				keep = fmt.Sprintf("not kept: %v", lerr)
			}
			s.log.Warn("bolt: a journal is damaged: the jobs after the damage are lost", "journal", name, "valid_bytes", end, "err", err, "copy", keep)
			s.problems = append(s.problems, problem{key: filepath.Base(name), err: fmt.Errorf("%w: journal %d: %v; the frames after it are lost (copy: %s)", store.ErrCorrupt, n, err, keep)})
		}
	}
	if len(s.pending) > 0 {
		start, ops := time.Now(), len(s.pending)
		if err := s.flush(); err != nil {
			return fmt.Errorf("writing the journal into the file (the journal is kept, nothing is lost; start again once this is fixed): %w", err)
		}
		s.log.Warn("bolt: the last stop was not clean; recovered the journal", "file", s.path, "jobs_added_or_deleted", ops, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	return s.removeJournals(s.next)
}

// removeJournals removes the journals numbered below upTo. A removal that
// a crash undoes is harmless: recovery skips journals below the marker.
func (s *Store) removeJournals(upTo uint64) error {
	numbers, err := listJournals(s.path)
	if err != nil {
		return err
	}
	for _, n := range numbers {
		if n >= upTo {
			break
		}
		if err := os.Remove(journalName(s.path, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Path is the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Apply appends b to the journal as one frame, durable when it returns
// nil, and starts a checkpoint in the background once the journal has
// taken the checkpoint size since the last one began.
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return store.ErrClosed
	}
	// A checkpoint that ended well holds nothing pending; one running or
	// failed does (c.err is read only once c has ended).
	if c := s.ckpt; c != nil && (!ended(c) || c.err != nil) && s.journal+c.bytes >= maxPendingCheckpoints*s.ckptSize {
		// The checkpoints are far behind: wait for the one running, and
		// if it failed, retry here and take no more until one succeeds.
		waiting := s.journal + c.bytes
		<-c.done
		if c.err != nil {
			if err := s.flush(); err != nil {
				return fmt.Errorf("%d KiB of journal wait for a checkpoint, which failed: %w", waiting>>10, err)
			}
		}
	}
	if s.j == nil {
		j, err := createJournal(s.path, s.next, s.id)
		if err != nil {
			return interpretError(s.path, err)
		}
		s.j, s.next = j, s.next+1
	}
	frame, ops := encodeFrame(s.j.number, b, s.ops[:0])
	if len(frame)-frameHeaderSize > maxFrame {
		return fmt.Errorf("bolt: %s: a batch of %d MiB: %w", s.path, len(frame)>>20, store.ErrTooLarge)
	}
	if err := s.j.append(frame); err != nil {
		// Never append to it again (see append); its frames before this
		// one stay pending, and the next checkpoint covers it.
		_ = s.j.close()
		s.j = nil
		return interpretError(s.path, err)
	}
	for _, o := range ops {
		s.pending[o.seq] = o.value
	}
	clear(ops) // the values stay reachable through pending only
	s.ops = ops
	s.journal += len(frame)
	if s.journal >= s.ckptSize {
		s.startCheckpoint()
	}
	return nil
}

// ended reports whether c has ended.
func ended(c *checkpoint) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// startCheckpoint begins a checkpoint of pending in the background, unless
// one is still running: then a later Apply starts it. Called with mu held.
func (s *Store) startCheckpoint() {
	if s.ckpt != nil && !ended(s.ckpt) {
		return
	}
	go s.run(s.freeze())
}

// run writes c and ends it, saying in the log when checkpoints start or
// stop failing.
func (s *Store) run(c *checkpoint) {
	s.writeMu.Lock()
	c.err = s.guardedWrite(c)
	switch {
	case c.err != nil && !s.failing:
		s.log.Warn("bolt: a checkpoint failed; new jobs are still journaled, durably, and the checkpoint is retried", "file", s.path, "err", c.err)
	case c.err == nil && s.failing:
		s.log.Info("bolt: checkpoints work again", "file", s.path)
	}
	s.failing = c.err != nil
	s.writeMu.Unlock()
	close(c.done)
}

// freeze turns pending into a new checkpoint, taking back the operations
// of the last one if it failed (they are older), and closes the journal:
// the next Apply starts a new one. Called with mu held and no checkpoint
// running.
func (s *Store) freeze() *checkpoint {
	bytes := s.journal
	if c := s.ckpt; c != nil && c.err != nil {
		for seq, v := range c.ops {
			if _, newer := s.pending[seq]; !newer {
				s.pending[seq] = v
			}
		}
		bytes += c.bytes
	}
	if s.j != nil {
		// Every frame in it is durable; closing loses nothing.
		_ = s.j.close()
		s.j = nil
	}
	c := &checkpoint{marker: s.next, ops: s.pending, bytes: bytes, done: make(chan struct{})}
	s.ckpt = c
	s.pending = make(map[uint64][]byte, len(c.ops))
	s.journal = 0
	return c
}

// flush waits for the checkpoint running, if any, and checkpoints what is
// pending: afterwards the bbolt file holds every operation Apply
// acknowledged. Called with mu held.
func (s *Store) flush() error {
	if c := s.ckpt; c != nil {
		<-c.done
		if c.err == nil {
			s.ckpt = nil
		}
	}
	if len(s.pending) == 0 && s.ckpt == nil {
		return nil
	}
	c := s.freeze()
	s.run(c)
	if c.err != nil {
		return interpretError(s.path, c.err)
	}
	s.ckpt = nil
	return nil
}

// guardedWrite is write, except that a panic of bbolt's (its answer to a
// damaged file or a broken invariant, on a checkpoint that runs on its own
// goroutine) becomes an error instead of ending the process, and stops
// checkpoints for good: bbolt's state in memory can no longer be trusted
// to write the file. Apply keeps journaling, durably, up to the bound on
// what waits for a checkpoint, and then fails with the reason; nothing
// acknowledged is lost, as the journals stay for the next start to
// recover. Called with writeMu held.
func (s *Store) guardedWrite(c *checkpoint) (err error) {
	if s.broken != nil {
		return s.broken
	}
	defer func() {
		if r := recover(); r != nil {
			s.broken = fmt.Errorf("%w: bbolt failed while checkpointing %s: %v; checkpoints are stopped, new jobs are journaled until the journal bound, and a restart recovers every acknowledged job from the journals", store.ErrCorrupt, s.path, r)
			s.log.Error("bolt: bbolt failed; the server goes on, but restart it to recover the store", "file", s.path, "err", s.broken)
			err = s.broken
		}
	}()
	return s.write(c)
}

// write applies c's operations to the bbolt file in one transaction, in
// Seq order, with c's marker, then removes the journals it made redundant.
// Called with writeMu held.
func (s *Store) write(c *checkpoint) error {
	if s.fault != nil {
		return s.fault
	}
	seqs := make([]uint64, 0, len(c.ops))
	for seq := range c.ops {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	// bbolt wants keys to stay valid until the transaction ends.
	keys := make([]byte, 0, len(seqs)*store.KeySize+store.KeySize)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		bk, meta := tx.Bucket(bucket), tx.Bucket(metaBucket)
		if bk == nil || meta == nil {
			return fmt.Errorf("%w: bucket %q or %q is missing", store.ErrCorrupt, bucket, metaBucket)
		}
		// Seqs only grow, so adds land at the right edge of the tree: a
		// full page is never split again, and fewer pages are written
		// than at bbolt's default half fill.
		bk.FillPercent = 1.0
		if s.panicWith != nil {
			panic(s.panicWith)
		}
		for _, seq := range seqs {
			keys = store.AppendKey(keys, seq)
			k := keys[len(keys)-store.KeySize:]
			var err error
			if v := c.ops[seq]; v == nil {
				err = bk.Delete(k)
			} else {
				err = bk.Put(k, v)
			}
			if err != nil {
				return err
			}
		}
		keys = binary.BigEndian.AppendUint64(keys, c.marker)
		return meta.Put(markerKey, keys[len(keys)-8:])
	})
	if err != nil {
		return err
	}
	var mark int64 // the high-water mark, now committed
	if s.db.View(func(tx *bbolt.Tx) error { mark = tx.Size(); return nil }) == nil {
		s.ahead.extend(mark)
	}
	// The marker is durable: a failed removal leaves a journal that
	// recovery skips, and is not an error of the checkpoint.
	_ = s.removeJournals(c.marker)
	return nil
}

// Replay calls fn for every stored record in ascending Seq order, with no
// transaction open while fn runs, so fn may call Apply. Records that do
// not decode are skipped, kept, and reported to the corruption handler.
func (s *Store) Replay(ctx context.Context, fn func(store.Record) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	s.mu.Lock()
	problems := s.problems
	s.problems = nil
	s.mu.Unlock()
	for _, p := range problems {
		s.ReportCorrupt(p.key, p.err)
	}
	read := func(from []byte) ([]store.Entry, []byte, error) {
		// What Apply journaled, before Replay or from fn, is read from
		// the bbolt file like the rest.
		s.mu.Lock()
		err := store.ErrClosed
		if !s.shut {
			err = s.flush()
		}
		s.mu.Unlock()
		if err != nil {
			return nil, nil, err
		}
		chunk, next, err := s.readChunk(from)
		return chunk, next, interpretError(s.path, err)
	}
	return store.ReplayChunks(ctx, read, s.ReportCorruptKey, fn)
}

// readChunk decodes records from the key from onwards in one read
// transaction, up to the chunk limits. next is where the following chunk
// starts, nil at the end of the bucket.
func (s *Store) readChunk(from []byte) (chunk []store.Entry, next []byte, err error) {
	defer func() {
		// bbolt panics on some damage (a page of the wrong type): a
		// failed Replay, not a crashed process.
		if r := recover(); r != nil {
			chunk, next, err = nil, nil, fmt.Errorf("%w: bbolt failed reading %s: %v", store.ErrCorrupt, s.path, r)
		}
	}()
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

// Close checkpoints what the journal holds, removes the journals, closes
// the file and releases its lock. Later calls of any method return
// store.ErrClosed, except Close, which returns nil. It waits for an Apply
// in flight to finish. If the last checkpoint fails, the journals stay for
// the next Open to recover, and Close returns the error.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	s.shut = true
	err := s.flush()
	if s.j != nil {
		_ = s.j.close()
		s.j = nil
	}
	if err == nil {
		err = interpretError(s.path, s.removeJournals(s.next))
	}
	s.mu.Unlock()
	s.ahead.close()
	return errors.Join(err, interpretError(s.path, s.db.Close()))
}

// interpretError maps bbolt's and the system's errors to the store
// sentinels, keeping the native error in the chain. It is the only place
// that knows bbolt's errors.
func interpretError(path string, err error) error {
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
	case store.IsDiskFault(err):
		return store.Wrap("bolt: "+path+": "+err.Error(), store.ErrUnavailable, err)
	}
	return fmt.Errorf("bolt: %s: %w", path, err)
}
