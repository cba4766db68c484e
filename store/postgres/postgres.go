package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"gearmand/migrations"
	"gearmand/store"
)

// ExtraApplyTimeout is the store.Options.Extra key read by the registered
// driver: a Go duration ("5s") for ApplyTimeout.
const ExtraApplyTimeout = "apply-timeout"

// DefaultApplyTimeout bounds one Apply, and one connection attempt, when
// no ApplyTimeout is given. A database that went away makes Apply fail
// with store.ErrUnavailable after at most this long instead of hanging
// the Committer, which then fails the waiting submits with QUEUE_ERROR
// and retries.
const DefaultApplyTimeout = 5 * time.Second

// migrateTimeout bounds the schema migration in Open, waiting for another
// server's migration included, so that Open fails on a database that
// accepts connections but does not answer.
const migrateTimeout = time.Minute

// DefaultTakeoverWait bounds how long Open waits for the writes of the
// namespace's previous owner that are past the fence (see the package
// doc) to end, when no TakeoverWait is given.
const DefaultTakeoverWait = 30 * time.Second

// clientCheckInterval is client_connection_check_interval on the store's
// connections: PostgreSQL polls the socket of a running statement this
// often and aborts it once the client is gone, so the transaction of a
// server killed while its Apply waited on a lock does not hold the fence,
// and the next server's Open, until the lock is let go.
const clientCheckInterval = "1s"

// Option changes how Open connects.
type Option func(*config)

type config struct {
	applyTimeout time.Duration
	takeoverWait time.Duration
	importTable  string
	logger       *slog.Logger
}

// TakeoverWait sets how long Open waits for the in-flight writes of the
// namespace's previous owner to end before it fails with store.ErrLocked
// (default DefaultTakeoverWait). Zero or less means the default.
func TakeoverWait(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.takeoverWait = d
		}
	}
}

// ApplyTimeout sets how long one Apply may take, connecting included,
// before it fails with store.ErrUnavailable (default DefaultApplyTimeout).
// Zero or less means the default.
func ApplyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.applyTimeout = d
		}
	}
}

// Store keeps the background jobs of one namespace in a PostgreSQL table
// shared with other namespaces. It is safe for concurrent use: each Apply
// runs on its own pooled connection.
type Store struct {
	pool         *pgxpool.Pool
	namespace    string
	applyTimeout time.Duration
	generation   int64 // this Store's ownership of namespace, from gearmand_owners
	checkClient  bool  // the pool sets client_connection_check_interval
	closed       atomic.Bool
	fenced       atomic.Pointer[error] // set once the fence refused an Apply: final
	cTable       string                // C gearmand's table (ImportTable), for HandBack
	log          *slog.Logger
}

var _ store.Store = (*Store)(nil)

// The statements. The table name is fixed by the migrations, so no SQL is
// ever assembled from input.
const (
	// insertSQL adds a batch's records as one statement, one array per
	// column. It goes out in the same round trip as the batch's DELETE.
	// It fails on a Seq already stored; upsertSQL, the same with ON
	// CONFLICT, replaces it as the store contract asks, but its
	// speculative insertion costs PostgreSQL more per row (30-row
	// batches, pgbench -c 1: 0.67-0.71 ms plain, 0.85-0.87 ms upsert).
	insertSQL = `INSERT INTO gearmand_jobs (namespace, seq, handle, function, unique_key, data,
	priority, run_at, run_at_nanos, reducer, attempts, created, created_nanos)
SELECT $1::text, r.* FROM unnest($2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[],
	$7::smallint[], $8::timestamptz[], $9::smallint[], $10::bytea[], $11::bigint[],
	$12::timestamptz[], $13::smallint[]) AS r`
	upsertSQL = insertSQL + `
ON CONFLICT (namespace, seq) DO UPDATE SET
	handle = EXCLUDED.handle, function = EXCLUDED.function, unique_key = EXCLUDED.unique_key,
	data = EXCLUDED.data, priority = EXCLUDED.priority, run_at = EXCLUDED.run_at,
	run_at_nanos = EXCLUDED.run_at_nanos, reducer = EXCLUDED.reducer,
	attempts = EXCLUDED.attempts, created = EXCLUDED.created, created_nanos = EXCLUDED.created_nanos`

	deleteSQL = `DELETE FROM gearmand_jobs WHERE namespace = $1 AND seq = ANY($2::bigint[])`

	// fenceSQL is the first statement of every Apply transaction: it
	// fails with SQLSTATE fenceCode unless the namespace is still this
	// Store's generation, and holds FOR SHARE on the owner row until the
	// transaction ends, so a takeover waits for the transaction.
	fenceSQL = `SELECT gearmand_fence($1::text, $2::bigint)`

	// takeOverSQL makes the caller the namespace's owner, one generation
	// on. It waits for every transaction past the fence.
	takeOverSQL = `INSERT INTO gearmand_owners (namespace, generation) VALUES ($1, 1)
ON CONFLICT (namespace) DO UPDATE SET generation = gearmand_owners.generation + 1
RETURNING generation`

	replaySQL = `SELECT seq, handle, function, unique_key, data, priority, run_at, run_at_nanos,
	reducer, attempts, created, created_nanos
FROM gearmand_jobs WHERE namespace = $1 ORDER BY seq`
)

// Open connects to the PostgreSQL database named by dsn (a libpq URL or
// keyword/value string, as pgx accepts), brings its schema up to date with
// the migrations package, and returns the store of namespace, which must
// not be empty. Open fails if the database cannot be reached within ctx
// and the apply timeout. Once it owns the namespace, it moves in the jobs
// C gearmand left in its own table (ImportTable; see the package doc).
func Open(ctx context.Context, dsn, namespace string, opts ...Option) (*Store, error) {
	cfg := config{applyTimeout: DefaultApplyTimeout, takeoverWait: DefaultTakeoverWait, importTable: DefaultImportTable}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if namespace == "" {
		return nil, errors.New("postgres: no namespace given")
	}
	if !utf8.ValidString(namespace) || strings.IndexByte(namespace, 0) >= 0 {
		return nil, fmt.Errorf("postgres: namespace %q: want UTF-8 text without NUL bytes", namespace)
	}
	if dsn == "" {
		return nil, errors.New("postgres: no connection string given")
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 || pcfg.ConnConfig.ConnectTimeout > cfg.applyTimeout {
		pcfg.ConnConfig.ConnectTimeout = cfg.applyTimeout
	}
	_, userCheck := pcfg.ConnConfig.RuntimeParams["client_connection_check_interval"]
	if !userCheck {
		afterConnect := pcfg.AfterConnect
		pcfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			if afterConnect != nil {
				if err := afterConnect(ctx, conn); err != nil {
					return err
				}
			}
			return checkClientConnection(ctx, conn)
		}
	}
	if pcfg.MaxConns < 2 {
		// Replay holds a connection while its callback may Apply.
		pcfg.MaxConns = 2
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, namespace: namespace, applyTimeout: cfg.applyTimeout, checkClient: !userCheck,
		cTable: cfg.importTable, log: cfg.logger}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.takeOver(ctx, cfg.takeoverWait); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.importCQueue(ctx, cfg.importTable, cfg.logger); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// checkClientConnection sets client_connection_check_interval on a new
// connection, on servers that have it (PostgreSQL 14 and later).
func checkClientConnection(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "SET client_connection_check_interval = '"+clientCheckInterval+"'")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42704" { // undefined_object: an older server
		return nil
	}
	return err
}

// takeOver makes s the owner of its namespace, one generation after the
// last, fencing off every earlier Store of the namespace, dead or alive.
// The row update waits for the Apply transactions already past the fence
// to end, for at most wait (as lock_timeout), so that Replay, which runs
// after Open, sees what they committed.
func (s *Store) takeOver(ctx context.Context, wait time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, wait+s.applyTimeout)
	defer cancel()
	tx, err := s.pool.Begin(tctx)
	if err != nil {
		return interpretError(ctx, fmt.Errorf("connecting: %w", err))
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(tctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", max(1, wait.Milliseconds()))); err != nil {
		return interpretError(ctx, err)
	}
	err = tx.QueryRow(tctx, takeOverSQL, s.namespace).Scan(&s.generation)
	if err == nil {
		err = tx.Commit(tctx)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available: lock_timeout ran out
		return store.Wrap(fmt.Sprintf("postgres: taking over namespace %q: a write of its previous owner (another gearmand, or one that died) was still in progress after %v; is another gearmand running on this namespace? %v",
			s.namespace, wait, err), store.ErrLocked, err)
	}
	if err != nil {
		return interpretError(ctx, fmt.Errorf("taking over namespace %q: %w", s.namespace, err))
	}
	return nil
}

// Generation is the store's generation as owner of its namespace: one more
// than that of the Store opened on it before.
func (s *Store) Generation() int64 { return s.generation }

func (s *Store) migrate(ctx context.Context) error {
	mctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(mctx)
	if err != nil {
		return interpretError(ctx, fmt.Errorf("connecting: %w", err))
	}
	defer conn.Release()
	if err := migrations.Up(mctx, conn.Conn()); err != nil {
		return interpretError(ctx, err)
	}
	if s.checkClient {
		// tern ends with RESET ALL, which undid the AfterConnect SET of
		// this connection before it goes back to the pool.
		if err := checkClientConnection(mctx, conn.Conn()); err != nil {
			return interpretError(ctx, err)
		}
	}
	return nil
}

// Namespace is the namespace the store reads and writes.
func (s *Store) Namespace() string { return s.namespace }

// Apply makes b durable in one transaction, in one of two ways by size
// (see the package doc): a small batch is a DELETE and an upsert sent
// together as one pgx batch, one round trip, which PostgreSQL runs as one
// implicit transaction; a batch of copyMinAdds adds or more is BEGIN,
// DELETE of its deletes and of its adds' Seqs, COPY, COMMIT. Either way it
// returns nil only after the COMMIT, durable as synchronous_commit says
// (the default waits for the WAL flush). It fails with store.ErrUnavailable
// when the database cannot be reached within the apply timeout.
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
	if p := s.fenced.Load(); p != nil {
		return *p
	}
	c, err := columnsOf(b.Adds)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, s.applyTimeout)
	defer cancel()
	if len(b.Adds) >= copyMinAdds || c.dataBytes >= copyMinBytes {
		err = s.applyCopy(actx, b.Deletes, &c)
	} else {
		err = s.applyInsert(actx, b.Deletes, &c)
	}
	err = interpretError(ctx, err)
	if errors.Is(err, store.ErrLocked) {
		// Another Store took the namespace over: its generation only grows,
		// so every later Apply of this Store would fail the same way.
		s.fenced.CompareAndSwap(nil, &err)
	}
	return err
}

// copyMinAdds is the number of adds from which Apply uses COPY. Measured
// on one machine (fsync on, Unix socket): at one add the upsert's single
// round trip takes half the time of COPY's four; from about a hundred adds
// COPY is as fast, and faster with large payloads or a thousand adds.
const copyMinAdds = 64

// copyMinBytes is the payload size of a batch from which Apply uses COPY
// whatever its number of adds. gearbench large (1 MiB jobs, 4x16, 100
// jobs, three alternating rounds) did 52-66 jobs/s with the batches sent
// as one INSERT of arrays and 96-121 jobs/s with COPY.
const copyMinBytes = 1 << 20

// applyInsert writes the batch in one round trip and one implicit
// transaction. Most batches only add new Seqs, so it first tries a plain
// INSERT; a batch that replaces a stored record (a new attempt count, a
// retried write) fails on the primary key, changes nothing, and is sent
// again as an upsert.
func (s *Store) applyInsert(ctx context.Context, deletes []uint64, c *columns) error {
	err := s.sendBatch(ctx, deletes, c, insertSQL)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		err = s.sendBatch(ctx, deletes, c, upsertSQL)
	}
	return err
}

// uniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const uniqueViolation = "23505"

// sendBatch sends the fence, the deletes and the adds (with addSQL) in one
// pipelined batch, which PostgreSQL runs as one implicit transaction.
func (s *Store) sendBatch(ctx context.Context, deletes []uint64, c *columns, addSQL string) error {
	var pb pgx.Batch
	pb.Queue(fenceSQL, s.namespace, s.generation)
	if len(deletes) > 0 {
		pb.Queue(deleteSQL, s.namespace, seqsOf(deletes, nil))
	}
	if c.len() > 0 {
		pb.Queue(addSQL, s.namespace, c.seq, c.handle, c.function, c.unique, c.data,
			c.priority, c.runAt, c.runAtNanos, c.reducer, c.attempts, c.created, c.createdNanos)
	}
	return s.pool.SendBatch(ctx, &pb).Close()
}

// applyCopy stores the adds with COPY, which cannot replace a row: the
// adds' Seqs are deleted first, in the same transaction.
func (s *Store) applyCopy(ctx context.Context, deletes []uint64, c *columns) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(ctx)
		}
	}()
	if _, err := tx.Exec(ctx, fenceSQL, s.namespace, s.generation); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, deleteSQL, s.namespace, seqsOf(deletes, c.seq)); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, table, copyColumns, &copySource{ns: s.namespace, c: c, i: -1}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

var (
	table       = pgx.Identifier{"gearmand_jobs"}
	copyColumns = []string{"namespace", "seq", "handle", "function", "unique_key", "data",
		"priority", "run_at", "run_at_nanos", "reducer", "attempts", "created", "created_nanos"}
)

// copySource feeds columns to CopyFrom row by row, reusing one row slice.
type copySource struct {
	ns  string
	c   *columns
	i   int
	row [13]any
}

func (cs *copySource) Next() bool {
	cs.i++
	return cs.i < cs.c.len()
}

func (cs *copySource) Values() ([]any, error) {
	c, i := cs.c, cs.i
	cs.row = [13]any{cs.ns, c.seq[i], c.handle[i], c.function[i], c.unique[i], c.data[i],
		c.priority[i], c.runAt[i], c.runAtNanos[i], c.reducer[i], c.attempts[i], c.created[i], c.createdNanos[i]}
	return cs.row[:], nil
}

func (cs *copySource) Err() error { return nil }

// seqsOf returns deletes, less any Seq too large to have been stored,
// followed by more.
func seqsOf(deletes []uint64, more []int64) []int64 {
	seqs := make([]int64, 0, len(deletes)+len(more))
	for _, seq := range deletes {
		if seq <= maxSeq {
			seqs = append(seqs, int64(seq))
		}
	}
	return append(seqs, more...)
}

// maxSeq is the largest Seq a bigint holds.
const maxSeq = 1<<63 - 1

// empty is a non-nil empty byte slice: pgx sends a nil []byte as NULL.
var empty = []byte{}

// columns are a batch's adds as one array per table column.
type columns struct {
	seq                                     []int64
	handle, function, unique, data, reducer [][]byte
	priority, runAtNanos, createdNanos      []int16
	runAt, created                          []pgtype.Timestamptz
	attempts                                []int64
	dataBytes                               int // the sum of len(data)
}

func (c *columns) len() int { return len(c.seq) }

// columnsOf lays out adds column by column. The string fields are copied
// into one arena, so a batch costs a few allocations whatever its size.
func columnsOf(adds []store.Record) (columns, error) {
	n := len(adds)
	c := columns{
		seq: make([]int64, n), handle: make([][]byte, n),
		function: make([][]byte, n), unique: make([][]byte, n), data: make([][]byte, n), reducer: make([][]byte, n),
		priority: make([]int16, n), runAtNanos: make([]int16, n), createdNanos: make([]int16, n),
		runAt: make([]pgtype.Timestamptz, n), created: make([]pgtype.Timestamptz, n),
		attempts: make([]int64, n),
	}
	size := 0
	for i := range adds {
		r := &adds[i]
		size += len(r.Handle) + len(r.Function) + len(r.Unique) + len(r.Reducer)
	}
	arena := make([]byte, 0, size) // non-nil even when size is 0
	bytesOf := func(s string) []byte {
		start := len(arena)
		arena = append(arena, s...)
		return arena[start:len(arena):len(arena)]
	}
	for i := range adds {
		r := &adds[i]
		if r.Seq > maxSeq {
			return columns{}, fmt.Errorf("%w: seq %d does not fit a bigint", store.ErrTooLarge, r.Seq)
		}
		c.seq[i] = int64(r.Seq)
		c.handle[i] = bytesOf(r.Handle)
		c.function[i] = bytesOf(r.Function)
		c.unique[i] = bytesOf(r.Unique)
		c.reducer[i] = bytesOf(r.Reducer)
		c.data[i] = r.Data
		c.dataBytes += len(r.Data)
		if r.Data == nil {
			c.data[i] = empty
		}
		c.priority[i] = int16(r.Priority)
		c.runAt[i], c.runAtNanos[i] = splitTime(r.RunAt)
		c.created[i], c.createdNanos[i] = splitTime(r.Created)
		c.attempts[i] = int64(r.Attempts)
	}
	return c, nil
}

// splitTime splits t into the timestamptz PostgreSQL keeps (microseconds)
// and the nanoseconds past it. The zero time is NULL.
func splitTime(t time.Time) (pgtype.Timestamptz, int16) {
	if t.IsZero() {
		return pgtype.Timestamptz{}, 0
	}
	nanos := t.Nanosecond() % 1000
	return pgtype.Timestamptz{Time: t.Add(-time.Duration(nanos)), Valid: true}, int16(nanos)
}

// joinTime is the inverse of splitTime.
func joinTime(ts pgtype.Timestamptz, nanos int16) time.Time {
	if !ts.Valid {
		return time.Time{}
	}
	return ts.Time.Add(time.Duration(nanos))
}

// Replay streams the namespace's records in ascending Seq order from one
// query, decoding each row as it arrives: memory stays at one row however
// many are stored. fn runs while the query is open, on the connection
// Replay holds; an Apply from fn takes another pooled connection, and the
// rows still to come are those of the snapshot the query started with.
// Each Record is freshly allocated: nothing in it aliases pgx's buffers.
func (s *Store) Replay(ctx context.Context, fn func(store.Record) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, replaySQL, s.namespace)
	if err != nil {
		return interpretError(ctx, err)
	}
	defer rows.Close()
	var (
		seq, attempts                           int64
		handle, function, unique, data, reducer []byte
		priority, runAtNanos, createdNanos      int16
		runAt, created                          pgtype.Timestamptz
	)
	for rows.Next() {
		// Scanning bytea into a []byte allocates a new slice each time
		// (pgx copies out of its read buffer), so Data is the Record's own.
		data = nil
		err := rows.Scan(&seq, &handle, &function, &unique, &data, &priority, &runAt, &runAtNanos,
			&reducer, &attempts, &created, &createdNanos)
		if err != nil {
			return interpretError(ctx, err)
		}
		r := store.Record{
			Seq:      uint64(seq),
			Handle:   string(handle),
			Function: string(function),
			Unique:   string(unique),
			Data:     data,
			Priority: store.Priority(priority),
			RunAt:    joinTime(runAt, runAtNanos),
			Reducer:  string(reducer),
			Attempts: uint32(attempts),
			Created:  joinTime(created, createdNanos),
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return interpretError(ctx, rows.Err())
}

// Close closes the pool, waiting for connections in use to be returned
// and the others to close, but no longer than the apply timeout: then it
// returns an error wrapping store.ErrUnavailable and the pool finishes
// closing in the background. Later calls of any method return
// store.ErrClosed, except Close, which returns nil.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	// pgx closes a connection that a timeout broke by first sending a
	// cancel request on a new connection, and an idle one by waiting for
	// the server to hang up, each for up to 15 seconds: a database that
	// stopped answering would hold up a server's shutdown that long. Wait
	// at most the apply timeout; the rest finishes in the background.
	done := make(chan struct{})
	go func() {
		s.pool.Close()
		close(done)
	}()
	t := time.NewTimer(s.applyTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: postgres: connections to a database that does not answer are still closing", store.ErrUnavailable)
	}
}

// interpretError maps pgx's, PostgreSQL's and the network's errors to the
// store sentinels, keeping the native error in the chain. It is the only
// place that knows them. ctx is the caller's context: a deadline or
// cancellation of its own is returned as it is, while the apply timeout
// running out means the database is unavailable.
func interpretError(ctx context.Context, err error) error {
	var (
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
		netErr  net.Error
		errno   syscall.Errno
	)
	switch {
	case err == nil:
		return nil
	case store.IsSentinel(err):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if ctx.Err() != nil {
			return err
		}
		return wrap(store.ErrUnavailable, "database did not answer in time", err)
	case errors.Is(err, puddle.ErrClosedPool):
		return wrap(store.ErrClosed, "pool closed", err)
	case errors.As(err, &pgErr):
		return interpretPgError(pgErr, err)
	case errors.As(err, &connErr):
		return wrap(store.ErrUnavailable, "cannot connect", err)
	case errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &netErr), pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return wrap(store.ErrUnavailable, "connection lost", err)
	case errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == syscall.ECONNRESET ||
		errno == syscall.EPIPE || errno == syscall.ENOENT):
		return wrap(store.ErrUnavailable, "connection lost", err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// interpretPgError maps an error PostgreSQL reported by its SQLSTATE class.
func interpretPgError(pgErr *pgconn.PgError, err error) error {
	if pgErr.Code == fenceCode {
		return store.Wrap("postgres: "+pgErr.Message+"; this store no longer writes", store.ErrLocked, err)
	}
	switch class := pgErr.Code[:min(2, len(pgErr.Code))]; {
	case class == "08", // connection exception
		class == "53",                          // insufficient resources: disk full, out of memory, too many connections
		class == "57" && pgErr.Code != "57014", // operator intervention: shutdown, cannot connect now (not a query cancel)
		class == "58",                          // system error: I/O error
		class == "40",                          // transaction rollback: serialization failure, deadlock
		pgErr.Code == "25P03" || pgErr.Code == "55P03": // idle in transaction timeout, lock not available
		return wrap(store.ErrUnavailable, "database error "+strconv.Quote(pgErr.Code), err)
	case class == "54": // program limit exceeded
		return wrap(store.ErrTooLarge, "database error "+strconv.Quote(pgErr.Code), err)
	case class == "XX": // internal error: data corrupted, index corrupted
		if pgErr.Code == "XX001" || pgErr.Code == "XX002" {
			return wrap(store.ErrCorrupt, "database error "+strconv.Quote(pgErr.Code), err)
		}
	}
	return fmt.Errorf("postgres: %w", err)
}

// fenceCode is the SQLSTATE gearmand_fence raises (migration 002) when
// the namespace has a newer owner.
const fenceCode = "GMD01"

// wrap is store.Wrap with the driver's message: "postgres: why: native".
func wrap(sentinel error, why string, err error) error {
	return store.Wrap("postgres: "+why+": "+err.Error(), sentinel, err)
}
