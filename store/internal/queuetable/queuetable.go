package queuetable

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gearmand/store"
	"gearmand/store/internal/fields"
)

// DefaultTable is the table C gearmand's libsqlite3 and MySQL modules use
// when none is given (--libsqlite3-table, --mysql-table).
const DefaultTable = "gearman_queue"

// Replay reads at most ReplayChunk rows per query, and stops a chunk early
// once it holds ReplayChunkBytes of data, so that memory stays bounded
// whatever the size of the jobs.
const (
	ReplayChunk      = 512
	ReplayChunkBytes = 16 << 20
)

// ErrLayout is wrapped by Open's error when the table exists in a layout
// that is not C gearmand's queue table. Nothing was changed.
var ErrLayout = errors.New("table is not a gearmand queue table")

// Dialect is the SQL that differs between engines. Every field is
// required unless its doc says otherwise. A Dialect is read-only once
// passed to Open.
type Dialect struct {
	// Name names the engine in messages, in lower case: "sqlite",
	// "mysql". Errors are prefixed with it.
	Name string

	// CreateTable returns the statement that creates the queue table
	// exactly as C gearmand 1.1.20 does (the five columns and the key on
	// unique_key, function_name), for table, already quoted. Open runs it
	// when the table is absent and then adds the extra columns.
	CreateTable func(quotedTable string) string

	// IntegerType is the SQL type of the extra integer column (seq): at
	// least 64-bit signed, nullable. BytesType is that of the extra
	// byte-string column (job_fields): any bytes, NULs included, any
	// length up to the engine's limit, nullable, with '' distinct from
	// NULL.
	IntegerType, BytesType string

	// Columns returns the names of table's columns (lower case), none
	// when the table does not exist. Indexes returns the names of its
	// indexes. table is unquoted. Both run inside Open's transaction.
	Columns func(ctx context.Context, tx *sql.Tx, table string) ([]string, error)
	Indexes func(ctx context.Context, tx *sql.Tx, table string) ([]string, error)

	// Quote quotes an identifier (the table and index names, which Open
	// has checked to be [A-Za-z_][A-Za-z0-9_$]*).
	Quote func(ident string) string

	// MaxParams is the most bound parameters one statement may have. A
	// multi-row INSERT has 7 per row.
	MaxParams int

	// MaxStatementBytes, if not 0, caps the data bytes of the rows of one
	// INSERT (a larger row goes alone), for engines whose statement size
	// is bounded (MySQL's max_allowed_packet).
	MaxStatementBytes int

	// NumberOrder is the ORDER BY list in which Replay gives Seqs to the
	// rows C gearmand wrote (seq NULL): SQLite "rowid", the order C
	// inserted them. "" means no ORDER BY: the order the engine reads
	// the table in, which is C gearmand's own replay order (MySQL:
	// InnoDB reads C's table, which has no primary key, in the order of
	// its hidden row id, the order C inserted the rows).
	NumberOrder string

	// RowID, if not "", is the engine's row identifier ("rowid"), by
	// which Replay addresses the rows it numbers; otherwise it addresses
	// them by (unique_key, function_name), C's key.
	RowID string

	// Fits, if not nil, reports whether value can be stored byte for byte
	// in C's key column ("unique_key" or "function_name"): within its
	// length and character set. A value that does not fit gets a UUID
	// stand-in there and is kept in job_fields. nil:
	// every value fits.
	Fits func(column, value string) bool

	// MaxWhenToRun, if not 0, is the largest value when_to_run can hold
	// (MySQL INT: 2147483647); later run times are written as it there
	// (C gearmand would run such a job early, at that second) and kept
	// exact in job_fields.
	MaxWhenToRun int64

	// IsDuplicate reports whether err is the engine's unique-key
	// violation (SQLite SQLITE_CONSTRAINT_PRIMARYKEY or _UNIQUE, MySQL
	// 1062). The statement that failed must have changed nothing and left
	// the transaction usable, as both engines do by default.
	IsDuplicate func(err error) bool

	// Uncancelled, if true, runs Apply's statements under a context
	// without cancellation (context.WithoutCancel): Apply checks ctx
	// before it begins and before COMMIT, and otherwise runs to the end.
	// For engines whose driver pays for every cancellable statement
	// (modernc.org/sqlite starts a goroutine per statement to interrupt
	// it) and whose statements wait on nothing but the local disk and,
	// bounded by a busy timeout, another process's lock.
	Uncancelled bool

	// Interpret maps an engine error to one that wraps a store sentinel
	// (with store.Wrap), or returns nil when err is none it knows, which
	// is then returned as it is. It is called once per failure, from
	// Store.interpret, never with a context error.
	Interpret func(err error) error
}

// Config is what Open needs besides the database and dialect.
type Config struct {
	// Table is the queue table; "" means DefaultTable. It must match
	// [A-Za-z_][A-Za-z0-9_$]{0,63}.
	Table string
	// TableFlag is the command-line flag that sets Table
	// ("--libsqlite3-table"), named in errors about the table.
	TableFlag string
	// Where names the database in errors and the log, without secrets:
	// "/var/lib/gearman/queue.db", "database gearman on db:3306".
	Where string
	// Logger receives what an operator should know: rows of C gearmand
	// numbered, colliding adds renamed. nil: slog.Default().
	Logger *slog.Logger
}

// Store is a store.Store in C gearmand's queue table. It is safe for
// concurrent use as far as its *sql.DB is; it owns the *sql.DB and closes
// it in Close. It implements store.Corruption.
type Store struct {
	store.CorruptReporter

	db     *sql.DB
	d      *Dialect
	table  string // unquoted
	qt     string // quoted
	where  string
	log    *slog.Logger
	closed atomic.Bool

	// The statements Apply runs (see maxInsertRows): inserts.get(n) adds
	// n rows, deletes.get(n) deletes n Seqs.
	inserts, deletes sizedStmts
	insertColsList   string
	replayQuery      string
}

var _ store.Store = (*Store)(nil)
var _ store.Corruption = (*Store)(nil)

// cColumns are C gearmand's five columns; when_to_run is last because C
// adds it to older tables, and so does Open.
var cColumns = []string{"unique_key", "function_name", "priority", "data", "when_to_run"}

// extraColumns are ours, in insert order after C's five; isInt chooses
// IntegerType over BytesType. The Record's fields that C has no column
// for are packed into job_fields (see appendFields): one parameter per
// row instead of seven, which is most of what binding a row costs.
var extraColumns = []struct {
	name  string
	isInt bool
}{
	{"seq", true},
	{"job_fields", false},
}

// columnsPerRow is the number of parameters of one inserted row.
var columnsPerRow = len(cColumns) + len(extraColumns)

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,63}$`)

// Open prepares the queue table in db (creating it as C gearmand does,
// adding our columns to C's table, refusing a table in another layout
// with an error wrapping ErrLayout) and returns the store. On success the
// Store owns db; on error the caller still does, and the table is as it
// was unless the error says otherwise.
func Open(ctx context.Context, db *sql.DB, d *Dialect, cfg Config) (*Store, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if d.MaxParams < columnsPerRow {
		return nil, fmt.Errorf("%s: Dialect.MaxParams %d is below the %d parameters of one row", d.Name, d.MaxParams, columnsPerRow)
	}
	if !tableName.MatchString(cfg.Table) {
		return nil, fmt.Errorf("%s: table name %q (%s): want letters, digits, _ or $, not starting with a digit, at most 64",
			d.Name, cfg.Table, flagName(cfg.TableFlag))
	}
	s := &Store{
		db:    db,
		d:     d,
		table: cfg.Table,
		qt:    d.Quote(cfg.Table),
		where: cfg.Where,
		log:   cfg.Logger.With("store", d.Name, "table", cfg.Table),
	}
	s.buildStatements()
	err := s.prepareTable(ctx, cfg.TableFlag)
	if err == nil {
		err = s.prepareStatements(ctx)
	}
	if err != nil {
		s.closeStatements()
		if errors.Is(err, ErrLayout) {
			return nil, err
		}
		return nil, fmt.Errorf("preparing table %s in %s: %w", cfg.Table, cfg.Where, s.interpret(ctx, err))
	}
	return s, nil
}

func flagName(f string) string {
	if f == "" {
		return "the table setting"
	}
	return f
}

func (s *Store) buildStatements() {
	names := slices.Clone(cColumns)
	for _, c := range extraColumns {
		names = append(names, c.name)
	}
	s.insertColsList = strings.Join(names, ", ")
	s.replayQuery = "SELECT seq, unique_key, function_name, priority, data, when_to_run, job_fields FROM " + s.qt +
		" WHERE seq >= ? ORDER BY seq LIMIT " + strconv.Itoa(ReplayChunk)
}

// Statement sizes. Apply runs an INSERT of up to maxInsertRows rows (7
// parameters each) and a DELETE of up to maxDeleteIDs Seqs, each size
// prepared the first time a batch needs it and then kept, so that the
// engine does not parse a statement for every batch (a third of SQLite's
// Apply time with 100-record batches when it did), and a batch of up to
// maxInsertRows adds is one statement (one round trip to a server). Sizes
// 1 are prepared at Open. Both stay under every engine's parameter limit.
const (
	maxInsertRows = 64
	maxDeleteIDs  = 256
)

// sizedStmts are the statements of one kind in every size: stmts[n-1]
// takes n rows or Seqs, nil until prepared.
type sizedStmts struct {
	mu    sync.Mutex
	stmts []*sql.Stmt
	text  func(n int) string
}

// get returns the statement of n, preparing it on db if it is not yet.
// It must not be called inside a transaction when db has a single
// connection (SQLite): preparing needs a connection of its own.
func (c *sizedStmts) get(ctx context.Context, db *sql.DB, n int) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[n-1]; st != nil {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, c.text(n))
	if err != nil {
		return nil, err
	}
	c.stmts[n-1] = st
	return st, nil
}

// prepared returns the statement of n, which get has prepared.
func (c *sizedStmts) prepared(n int) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[n-1]
}

func (c *sizedStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		if st != nil {
			_ = st.Close()
		}
	}
}

// prepareStatements sets up the statements of every size and prepares
// those of size 1, which also checks the SQL against the table.
func (s *Store) prepareStatements(ctx context.Context) error {
	s.inserts = sizedStmts{stmts: make([]*sql.Stmt, min(maxInsertRows, s.d.MaxParams/columnsPerRow)), text: s.insertSQL}
	s.deletes = sizedStmts{stmts: make([]*sql.Stmt, min(maxDeleteIDs, s.d.MaxParams)), text: s.deleteSQL}
	if _, err := s.inserts.get(ctx, s.db, 1); err != nil {
		return err
	}
	_, err := s.deletes.get(ctx, s.db, 1)
	return err
}

func (s *Store) closeStatements() {
	s.inserts.close()
	s.deletes.close()
}

func (s *Store) insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + s.qt + " (" + s.insertColsList + ") VALUES ")
	row := "(" + strings.Repeat("?, ", columnsPerRow-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

func (s *Store) deleteSQL(ids int) string {
	return "DELETE FROM " + s.qt + " WHERE seq IN (" + strings.Repeat("?, ", ids-1) + "?)"
}

// prepareTable creates or completes the table in one transaction (atomic
// where the engine's DDL is transactional: SQLite; MySQL commits each DDL
// statement, but checks the layout before any).
func (s *Store) prepareTable(ctx context.Context, flag string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	cols, err := s.d.Columns(ctx, tx, s.table)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		if _, err := tx.ExecContext(ctx, s.d.CreateTable(s.qt)); err != nil {
			return err
		}
		s.log.Info("created the queue table as C gearmand does", "where", s.where)
		cols = cColumns
	}
	var missing []string
	for _, c := range cColumns[:4] {
		if !slices.Contains(cols, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: table %s in %s is not a gearmand queue table: it has no column %s (its columns: %s); "+
			"give another table with %s, or rename this one: %w",
			s.d.Name, s.table, s.where, strings.Join(missing, ", "), strings.Join(cols, ", "), flagName(flag), ErrLayout)
	}
	add := func(name, typ string) error {
		_, err := tx.ExecContext(ctx, "ALTER TABLE "+s.qt+" ADD COLUMN "+name+" "+typ)
		return err
	}
	if !slices.Contains(cols, "when_to_run") {
		// What C gearmand does with a table from before epoch jobs.
		if err := add("when_to_run", s.d.IntegerType); err != nil {
			return err
		}
	}
	for _, c := range extraColumns {
		if slices.Contains(cols, c.name) {
			continue
		}
		typ := s.d.BytesType
		if c.isInt {
			typ = s.d.IntegerType
		}
		if err := add(c.name, typ); err != nil {
			return err
		}
	}
	indexes, err := s.d.Indexes(ctx, tx, s.table)
	if err != nil {
		return err
	}
	if index := s.table + "_seq"; !slices.Contains(indexes, index) {
		if _, err := tx.ExecContext(ctx, "CREATE UNIQUE INDEX "+s.d.Quote(index)+" ON "+s.qt+" (seq)"); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Table is the name of the queue table.
func (s *Store) Table() string { return s.table }

// DB is the store's database handle, for tests that look at the table.
func (s *Store) DB() *sql.DB { return s.db }

// Apply makes b durable in one transaction (see the package doc): the
// deletes and the Seqs the adds replace go first, then the adds in
// multi-row INSERTs; nil only after COMMIT returned. An add that collides
// on C's key (unique_key, function_name) with another stored row is kept
// under a UUID stand-in in unique_key, never dropped and never dropping
// the other row.
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
	for i := range b.Adds {
		if b.Adds[i].Seq > math.MaxInt64 {
			return fmt.Errorf("%s: %w: Seq %d is above 2^63-1", s.d.Name, store.ErrTooLarge, b.Adds[i].Seq)
		}
	}
	return s.interpret(ctx, s.apply(ctx, b))
}

func (s *Store) apply(ctx context.Context, b store.Batch) error {
	cancelled := ctx
	if s.d.Uncancelled {
		ctx = context.WithoutCancel(ctx)
	}
	ids := make([]any, 0, len(b.Deletes))
	for _, seq := range b.Deletes {
		if seq <= math.MaxInt64 { // no larger Seq can be stored
			ids = append(ids, int64(seq))
		}
	}
	chunks := s.chunkAdds(b.Adds)
	// Every statement of the batch is prepared before the transaction
	// begins (see sizedStmts.get).
	for n := len(ids); n > 0; n -= len(s.deletes.stmts) {
		if _, err := s.deletes.get(ctx, s.db, min(n, len(s.deletes.stmts))); err != nil {
			return err
		}
	}
	for _, n := range chunks {
		if _, err := s.inserts.get(ctx, s.db, n); err != nil {
			return err
		}
	}
	dup := duplicates(b.Adds)
	if dup != nil {
		s.log.Warn("adds of one batch share a unique and function with an earlier add of it: kept all, the later ones under generated unique_keys",
			"adds", len(b.Adds))
	}
	// A batch that is one statement needs no transaction: the engine
	// commits the statement, atomically and durably, before it answers.
	// An INSERT that fails on a duplicate key changed nothing and is
	// done again in the transaction below, which handles that.
	switch {
	case len(ids) == 0 && len(chunks) == 0:
		return nil // only Seqs that cannot be stored
	case len(ids) == 0 && len(chunks) == 1 && dup == nil:
		_, err := s.inserts.prepared(chunks[0]).ExecContext(ctx, s.appendRows(nil, b.Adds, nil)...)
		if err == nil || !s.d.IsDuplicate(err) {
			return err
		}
	case len(chunks) == 0 && len(ids) <= len(s.deletes.stmts):
		_, err := s.deletes.prepared(len(ids)).ExecContext(ctx, ids...)
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := s.applyIn(ctx, tx, ids, b.Adds, chunks, dup); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := cancelled.Err(); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// chunkAdds cuts adds into the rows of successive INSERTs: at most
// maxInsertRows (or the parameter limit) each, and within
// Dialect.MaxStatementBytes of data unless a row is alone.
func (s *Store) chunkAdds(adds []store.Record) []int {
	var chunks []int
	for len(adds) > 0 {
		n, bytes := 0, 0
		for n < len(adds) && n < len(s.inserts.stmts) {
			bytes += len(adds[n].Data)
			if n > 0 && s.d.MaxStatementBytes > 0 && bytes > s.d.MaxStatementBytes {
				break
			}
			n++
		}
		chunks = append(chunks, n)
		adds = adds[n:]
	}
	return chunks
}

// applyIn runs the batch's statements in tx: the deletes of ids, then the
// adds in the INSERTs of chunks.
func (s *Store) applyIn(ctx context.Context, tx *sql.Tx, ids []any, adds []store.Record, chunks []int, dup []bool) error {
	for len(ids) > 0 {
		n := min(len(ids), len(s.deletes.stmts))
		if _, err := tx.StmtContext(ctx, s.deletes.prepared(n)).ExecContext(ctx, ids[:n]...); err != nil {
			return err
		}
		ids = ids[n:]
	}
	var args []any
	first := 0
	for _, n := range chunks {
		rows := adds[first : first+n]
		var rowDup []bool
		if dup != nil {
			rowDup = dup[first : first+n]
		}
		args = s.appendRows(args[:0], rows, rowDup)
		insert := tx.StmtContext(ctx, s.inserts.prepared(n))
		_, err := insert.ExecContext(ctx, args...)
		if err != nil && s.d.IsDuplicate(err) {
			// The statement changed nothing. Either an add replaces the
			// stored record of its Seq (a batch retried after a COMMIT
			// whose outcome was unknown), or it collides on C's key:
			// delete the rows of these Seqs and try again, then one by
			// one.
			err = s.deleteEach(ctx, tx, rows)
			if err == nil {
				_, err = insert.ExecContext(ctx, args...)
			}
			if err != nil && s.d.IsDuplicate(err) {
				err = s.insertOneByOne(ctx, tx, rows)
			}
		}
		if err != nil {
			return err
		}
		first += n
	}
	return nil
}

// appendRows appends the parameters of rows; dup, nil or as long as rows,
// marks the rows to insert under a stand-in (see duplicates).
func (s *Store) appendRows(args []any, rows []store.Record, dup []bool) []any {
	if args == nil {
		args = make([]any, 0, len(rows)*columnsPerRow)
	}
	for i := range rows {
		args = s.appendRow(args, &rows[i], dup != nil && dup[i])
	}
	return args
}

// deleteEach deletes the rows of the Seqs of adds, one statement each
// (the statement of one Seq is prepared at Open; this is the rare path).
func (s *Store) deleteEach(ctx context.Context, tx *sql.Tx, adds []store.Record) error {
	del := tx.StmtContext(ctx, s.deletes.prepared(1))
	for i := range adds {
		if _, err := del.ExecContext(ctx, int64(adds[i].Seq)); err != nil {
			return err
		}
	}
	return nil
}

// duplicates marks the adds whose unique and function an earlier add of
// the same batch has (empty uniques aside: they get UUIDs anyway), so that
// they are inserted under a stand-in at once rather than after a failed
// statement. nil when there are none.
func duplicates(adds []store.Record) []bool {
	if len(adds) < 2 {
		return nil
	}
	type key struct{ unique, function string }
	seen := make(map[key]struct{}, len(adds))
	var dup []bool
	for i := range adds {
		if adds[i].Unique == "" {
			continue
		}
		k := key{adds[i].Unique, adds[i].Function}
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			continue
		}
		if dup == nil {
			dup = make([]bool, len(adds))
		}
		dup[i] = true
	}
	return dup
}

// insertOneByOne inserts rows one statement each, after a multi-row
// INSERT failed on a duplicate key and changed nothing: a row that
// collides with a stored one on (unique_key, function_name) is inserted
// again under a UUID stand-in, its unique kept in job_fields.
func (s *Store) insertOneByOne(ctx context.Context, tx *sql.Tx, adds []store.Record) error {
	one := tx.StmtContext(ctx, s.inserts.prepared(1))
	args := make([]any, 0, columnsPerRow)
	for i := range adds {
		r := &adds[i]
		_, err := one.ExecContext(ctx, s.appendRow(args[:0], r, false)...)
		if err != nil && s.d.IsDuplicate(err) {
			s.log.Warn("a job's unique and function are already in the queue table under another job: "+
				"kept both, this one under a generated unique_key (C gearmand would run it under that unique)",
				"seq", r.Seq, "function", r.Function, "unique", r.Unique)
			_, err = one.ExecContext(ctx, s.appendRow(args[:0], r, true)...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// appendRow appends the parameters of r's row, in insert order: C's five
// columns filled as C gearmand fills them (unique_key and function_name as
// text, data as a blob, never NULL), then seq and job_fields. With
// standIn, unique_key is a fresh UUID whatever r.Unique is.
func (s *Store) appendRow(args []any, r *store.Record, standIn bool) []any {
	var flags byte
	unique := r.Unique
	if standIn || !cKeepsUnique(unique) || !s.fits("unique_key", unique) {
		unique = store.NewUnique()
		flags |= fieldUnique
	}
	function := r.Function
	if !s.fits("function_name", function) {
		function = store.NewUnique()
		flags |= fieldFunction
	}
	data := r.Data
	if data == nil {
		data = []byte{} // a zero-length blob: C's SQLite replay refuses NULL
	}
	return append(args, unique, function, int64(r.Priority), data, s.whenToRun(r.RunAt),
		int64(r.Seq), appendFields(nil, r, flags))
}

// job_fields, version 1, holds what C's five columns do not:
//
//	+---------+-------+----------+-------------+------------+
//	| version | flags | attempts | [created]   | [run_at]   |
//	| 1       | 1 B   | uvarint  | varint ns   | varint ns  |
//	+---------+-------+----------+-------------+------------+
//	| handle  | reducer | [unique] | [function]  |
//	| uvarint length + bytes each                |
//	+--------------------------------------------+
//
// A bracketed field is there only when its flag is set: created and
// run_at when the time is not zero (Unix nanoseconds; a time whose
// nanoseconds overflow an int64 is left out, when_to_run then keeps its
// second), unique and function when unique_key or function_name holds a
// stand-in instead of the value. NULL (C gearmand's rows) is version 1
// with every field empty.
const (
	fieldsVersion = 1

	fieldUnique   = 1 << 0 // the Record's Unique is here, unique_key is a stand-in
	fieldFunction = 1 << 1 // the Record's Function is here, function_name is a stand-in
	fieldCreated  = 1 << 2
	fieldRunAt    = 1 << 3
	fieldsKnown   = fieldUnique | fieldFunction | fieldCreated | fieldRunAt
)

// appendFields appends r's job_fields with flags (fieldUnique,
// fieldFunction) to dst.
func appendFields(dst []byte, r *store.Record, flags byte) []byte {
	created, hasCreated := unixNanos(r.Created)
	runAt, hasRunAt := unixNanos(r.RunAt)
	if hasCreated {
		flags |= fieldCreated
	}
	if hasRunAt {
		flags |= fieldRunAt
	}
	if dst == nil {
		dst = make([]byte, 0, 2+3*binary.MaxVarintLen64+4+len(r.Handle)+len(r.Reducer))
	}
	dst = append(dst, fieldsVersion, flags)
	dst = binary.AppendUvarint(dst, uint64(r.Attempts))
	if hasCreated {
		dst = binary.AppendVarint(dst, created)
	}
	if hasRunAt {
		dst = binary.AppendVarint(dst, runAt)
	}
	strs := [...]string{r.Handle, r.Reducer, r.Unique, r.Function}
	n := 2
	if flags&fieldUnique != 0 {
		n++
		if flags&fieldFunction != 0 {
			n++
		}
	} else if flags&fieldFunction != 0 {
		strs[2], n = r.Function, 3
	}
	for _, v := range strs[:n] {
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// decodeFields fills r's fields from job_fields b (nil: a row C gearmand
// wrote, none) and returns its flags. r's Unique and Function hold the C
// columns' values and are replaced when b holds the Record's own; r's
// RunAt holds when_to_run's second and is replaced by the exact instant.
func decodeFields(r *store.Record, b []byte) (flags byte, err error) {
	if b == nil {
		return 0, nil
	}
	d := fields.NewReader(b)
	version := d.Byte()
	flags = d.Byte()
	if d.Err() == nil && version != fieldsVersion {
		return 0, fmt.Errorf("job_fields has version %d, want %d", version, fieldsVersion)
	}
	if flags&^fieldsKnown != 0 {
		return 0, fmt.Errorf("job_fields has unknown flags %#x", flags)
	}
	attempts := d.Uvarint()
	if attempts > math.MaxUint32 {
		return 0, fmt.Errorf("attempts is %d", attempts)
	}
	r.Attempts = uint32(attempts)
	if flags&fieldCreated != 0 {
		r.Created = time.Unix(0, d.Varint())
	}
	if flags&fieldRunAt != 0 {
		r.RunAt = time.Unix(0, d.Varint())
	}
	r.Handle = d.String()
	r.Reducer = d.String()
	if flags&fieldUnique != 0 {
		r.Unique = d.String()
	}
	if flags&fieldFunction != 0 {
		r.Function = d.String()
	}
	if d.Err() != nil {
		return 0, fmt.Errorf("job_fields: %w", d.Err())
	}
	if len(d.Rest()) > 0 {
		return 0, fmt.Errorf("job_fields has %d bytes after its last field", len(d.Rest()))
	}
	return flags, nil
}

// cKeepsUnique reports whether C gearmand 1.1.20 can run a job of this
// unique from the table and then delete its row. It cannot when the
// unique is empty (C's key would make the jobs collide), 64 bytes or
// longer, or holds a NUL: C copies a job's unique into a 64-byte C string
// (snprintf "%.*s"), which keeps at most 63 bytes and stops at a NUL, and
// deletes the row of a finished job by that copy, which matches nothing,
// so the job would run again at every start of C gearmand.
func cKeepsUnique(unique string) bool {
	return unique != "" && len(unique) < 64 && strings.IndexByte(unique, 0) < 0
}

func (s *Store) fits(column, value string) bool {
	return s.d.Fits == nil || s.d.Fits(column, value)
}

// whenToRun is C's when_to_run for t: 0 for now, else the epoch second,
// rounded up so that C gearmand never runs the job early, and capped at
// Dialect.MaxWhenToRun.
func (s *Store) whenToRun(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	if s.d.MaxWhenToRun > 0 && sec > s.d.MaxWhenToRun {
		sec = s.d.MaxWhenToRun
	}
	return max(sec, 0)
}

// unixNanos is t in Unix nanoseconds, and false for the zero time and for
// times whose nanoseconds overflow an int64 (before 1678 or after 2262;
// when_to_run then keeps the second).
func unixNanos(t time.Time) (int64, bool) {
	if t.IsZero() {
		return 0, false
	}
	if sec := t.Unix(); sec <= math.MinInt64/int64(time.Second) || sec >= math.MaxInt64/int64(time.Second) {
		return 0, false
	}
	return t.UnixNano(), true
}

// Replay numbers the rows C gearmand wrote, in one committed transaction,
// then calls fn for every row in ascending Seq order, reading in chunks
// that are closed before fn runs (see the package doc).
func (s *Store) Replay(ctx context.Context, fn func(store.Record) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := s.numberCRows(ctx); err != nil {
		return s.interpret(ctx, err)
	}
	read := func(from []byte) ([]store.Entry, []byte, error) {
		chunk, next, err := s.readChunk(ctx, from)
		return chunk, next, s.interpret(ctx, err)
	}
	corrupt := func(key []byte, err error) {
		seq, _ := store.ParseKey(key)
		s.ReportCorrupt("seq "+strconv.FormatUint(seq, 10), err)
	}
	return store.ReplayChunks(ctx, read, corrupt, fn)
}

// numberCRows gives the rows without a seq (C gearmand's) Seqs above every
// stored one, in Dialect.NumberOrder, and commits.
func (s *Store) numberCRows(ctx context.Context) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	key := []string{"unique_key", "function_name"}
	if s.d.RowID != "" {
		key = []string{s.d.RowID}
	}
	query := "SELECT " + strings.Join(key, ", ") + " FROM " + s.qt + " WHERE seq IS NULL"
	if s.d.NumberOrder != "" {
		query += " ORDER BY " + s.d.NumberOrder
	}
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	var keys [][]any
	for rows.Next() {
		k := make([]any, len(key))
		ptrs := make([]any, len(key))
		for i := range k {
			ptrs[i] = &k[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, k)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	var top sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT MAX(seq) FROM "+s.qt).Scan(&top); err != nil {
		return err
	}
	update, err := tx.PrepareContext(ctx, "UPDATE "+s.qt+" SET seq = ? WHERE "+
		strings.Join(key, " = ? AND ")+" = ? AND seq IS NULL")
	if err != nil {
		return err
	}
	defer update.Close()
	seq, lost := top.Int64, 0
	for _, k := range keys {
		seq++
		res, err := update.ExecContext(ctx, append([]any{seq}, k...)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n != 1 {
			lost++
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// At NOTICE, which the server always shows, as the PostgreSQL and
	// Redis takeovers log theirs: the operator sees C's jobs arrive.
	s.log.Log(ctx, store.LevelNotice, fmt.Sprintf("took over %d jobs that C gearmand left in table %s; they run here", len(keys), s.table),
		"first_seq", top.Int64+1, "last_seq", seq)
	if lost > 0 {
		s.log.Warn("rows of the queue table could not be numbered (a NULL or duplicate unique_key and function_name): they are not replayed",
			"rows", lost)
	}
	return nil
}

// readChunk reads the rows from the Seq in from (nil: the first) on, at
// most ReplayChunk of them and about ReplayChunkBytes of data, and closes
// the query before returning. next is the key after the last row, nil at
// the end.
func (s *Store) readChunk(ctx context.Context, from []byte) (chunk []store.Entry, next []byte, err error) {
	var start int64
	if from != nil {
		seq, err := store.ParseKey(from)
		if err != nil {
			return nil, nil, err
		}
		start = int64(seq)
	}
	rows, err := s.db.QueryContext(ctx, s.replayQuery, start)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var (
		bytes int
		last  int64 = -1
		n     int
	)
	for rows.Next() {
		n++
		var c columns
		if err := rows.Scan(&c.seq, &c.unique, &c.function, &c.priority, &c.data, &c.whenToRun, &c.fields); err != nil {
			return nil, nil, err
		}
		last = c.seq
		r, err := c.record()
		if err != nil {
			chunk = append(chunk, store.Entry{Key: store.AppendKey(nil, uint64(c.seq)), Err: err})
		} else {
			chunk = append(chunk, store.Entry{Record: r})
		}
		if bytes += len(c.data); bytes >= ReplayChunkBytes {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if last >= 0 && (n == ReplayChunk || bytes >= ReplayChunkBytes) && last < math.MaxInt64 {
		next = store.AppendKey(nil, uint64(last)+1)
	}
	return chunk, next, nil
}

// columns are one row as Replay scans it.
type columns struct {
	seq                 int64
	unique, function    sql.NullString
	priority, whenToRun sql.NullInt64
	data, fields        []byte
}

// record makes the Record of a row, or says why it cannot.
func (c *columns) record() (store.Record, error) {
	corrupt := func(format string, args ...any) (store.Record, error) {
		return store.Record{}, fmt.Errorf("%w: row with seq %d: %s", store.ErrCorrupt, c.seq, fmt.Sprintf(format, args...))
	}
	if !c.priority.Valid || c.priority.Int64 < 0 || c.priority.Int64 > 2 {
		return corrupt("priority is %v, want 0, 1 or 2", nullString(c.priority))
	}
	r := store.Record{
		Seq:      uint64(c.seq),
		Function: c.function.String,
		Unique:   c.unique.String,
		Data:     c.data,
		Priority: store.Priority(c.priority.Int64),
	}
	if c.whenToRun.Valid && c.whenToRun.Int64 > 0 {
		r.RunAt = time.Unix(c.whenToRun.Int64, 0)
	}
	flags, err := decodeFields(&r, c.fields)
	if err != nil {
		return corrupt("%v", err)
	}
	if !c.function.Valid && flags&fieldFunction == 0 {
		return corrupt("function_name is NULL")
	}
	return r, nil
}

func nullString(v sql.NullInt64) string {
	if !v.Valid {
		return "NULL"
	}
	return strconv.FormatInt(v.Int64, 10)
}

// Close closes the database. It is idempotent; every later call of the
// store returns store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.closeStatements()
	return s.interpret(context.Background(), s.db.Close())
}

// interpret is the one place errors become store sentinels (see the
// package doc).
func (s *Store) interpret(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case store.IsSentinel(err), errors.Is(err, ErrLayout):
		return err
	case s.closed.Load():
		return store.Wrap(s.d.Name+": closed: "+err.Error(), store.ErrClosed, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if ctx.Err() != nil {
			return err
		}
		return store.Wrap(s.d.Name+": the database did not answer in time: "+err.Error(), store.ErrUnavailable, err)
	}
	if mapped := s.d.Interpret(err); mapped != nil {
		return mapped
	}
	return fmt.Errorf("%s: %w", s.d.Name, err)
}
