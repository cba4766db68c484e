package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"gearmand/store"
	"gearmand/store/internal/queuetable"
)

// The command-line flags of gearmand's libsqlite3 module, for the
// registry: FlagDB is the file (no default, required), FlagTable the
// table (default queuetable.DefaultTable).
const (
	FlagDB    = "libsqlite3-db"
	FlagTable = "libsqlite3-table"
)

// BusyTimeout is how long Open waits for a lock another process (a C
// gearmand, an sqlite3 shell) holds on the file before it fails. C
// gearmand waits 6s. Once open, the store holds the file exclusively and
// never waits.
const BusyTimeout = 5 * time.Second

// Option changes how Open opens the store.
type Option func(*config)

type config struct {
	table       string
	logger      *slog.Logger
	busyTimeout time.Duration // BusyTimeout; shorter in tests
}

// Table sets the queue table (--libsqlite3-table); "" means
// queuetable.DefaultTable, gearman_queue.
func Table(name string) Option { return func(c *config) { c.table = name } }

// Logger sets where the store logs what an operator should know; nil
// means slog.Default().
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Store is the queue table of one SQLite file. It is a queuetable.Store
// (Apply, Replay, Corruption) that also holds the file's flock.
type Store struct {
	*queuetable.Store
	path     string
	lockFile *os.File
	unlock   sync.Once
}

var _ store.Store = (*Store)(nil)
var _ store.Corruption = (*Store)(nil)

// sqliteMagic begins every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// Open opens the SQLite file at path (creating it, and the table, when
// absent) as C gearmand -q libsqlite3 --libsqlite3-db path would, and
// returns its store. See the package doc for what it refuses and how.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{table: queuetable.DefaultTable, logger: slog.Default(), busyTimeout: BusyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	db, err := openDB(ctx, path, cfg.busyTimeout)
	if err != nil {
		lock.Close()
		return nil, err
	}
	d := dialect(path)
	qs, err := queuetable.Open(ctx, db, d, queuetable.Config{
		Table:     cfg.table,
		TableFlag: "--" + FlagTable,
		Where:     path,
		Logger:    cfg.logger,
	})
	if err != nil {
		db.Close()
		lock.Close()
		return nil, err
	}
	return &Store{Store: qs, path: path, lockFile: lock}, nil
}

// checkPath refuses, before SQLite touches anything, what would make
// SQLite fail late or obscurely: no path, a missing directory, a
// directory or special file, a file or directory that cannot be written,
// a file that is not an SQLite database.
func checkPath(path string) error {
	if path == "" {
		return fmt.Errorf("sqlite: no database file given (--%s=FILE is required)", FlagDB)
	}
	if strings.Contains(path, "?") {
		return fmt.Errorf("sqlite: database file %q: a name with '?' is not supported (--%s)", path, FlagDB)
	}
	dir := filepath.Dir(path)
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("sqlite: cannot create %s (--%s): directory %s does not exist (create it first): %w", path, FlagDB, dir, err)
	case err != nil:
		return fmt.Errorf("sqlite: cannot create %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("sqlite: cannot create %s (--%s): %s is not a directory", path, FlagDB, dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("sqlite: cannot write in directory %s, where SQLite keeps its WAL, %s-wal (--%s): %w",
			dir, filepath.Base(path), FlagDB, &fs.PathError{Op: "access", Path: dir, Err: err})
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("sqlite: %w", err)
	case fi.IsDir():
		return fmt.Errorf("sqlite: %s is a directory, not an SQLite file (--%s)", path, FlagDB)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("sqlite: %s is not a regular file (--%s)", path, FlagDB)
	}
	if err := unix.Access(path, unix.R_OK|unix.W_OK); err != nil {
		return fmt.Errorf("sqlite: %s is read-only or unreadable for this user (--%s): %w", path, FlagDB,
			&fs.PathError{Op: "access", Path: path, Err: err})
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	n, err := io.ReadFull(f, head)
	if n == 0 && err == io.EOF {
		return nil // an empty file is an empty database to SQLite
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("sqlite: reading %s: %w", path, err)
	}
	if !bytes.Equal(head[:n], sqliteMagic) {
		return fmt.Errorf("sqlite: %s is not an SQLite database (--%s names the file): %w", path, FlagDB, store.ErrCorrupt)
	}
	return nil
}

// lockFile takes an exclusive flock on path, creating it if absent, so
// that a second gearmand of ours cannot open the same file. The file must
// be closed only after the database: closing any descriptor of a file
// drops the POSIX locks this process holds on it, SQLite's included.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, store.Wrap(fmt.Sprintf("sqlite: %s is in use by another gearmand (flock)", path), store.ErrLocked, err)
		}
		return nil, fmt.Errorf("sqlite: locking %s: %w", path, err)
	}
	return f, nil
}

// openDB opens path with every connection in exclusive locking mode, WAL
// mode, synchronous=FULL, IMMEDIATE transactions and a busy timeout (see
// the package doc), one connection at a time, and checks that WAL took.
func openDB(ctx context.Context, path string, busyTimeout time.Duration) (*sql.DB, error) {
	dsn := fmt.Sprintf("%s?_busy_timeout=%d&_pragma=locking_mode(EXCLUSIVE)&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate",
		path, busyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	// One connection: Apply serializes on SQLite's write lock anyway, and
	// Replay closes each read before its callback runs.
	db.SetMaxOpenConns(1)
	var mode, sync string
	err = db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err == nil {
		err = db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
	}
	if err == nil && (!strings.EqualFold(mode, "wal") || sync != "2") {
		err = fmt.Errorf("journal_mode %s and synchronous %s, want wal and 2 (FULL)", mode, sync)
	}
	if err != nil {
		db.Close()
		if mapped := interpretError(path, err); mapped != nil {
			return nil, mapped
		}
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	return db, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database and lets go of the file's flock. It is
// idempotent.
func (s *Store) Close() error {
	err := s.Store.Close()
	s.unlock.Do(func() { s.lockFile.Close() })
	return err
}

// dialect is the SQLite dialect of queuetable, its errors naming path.
func dialect(path string) *queuetable.Dialect {
	return &queuetable.Dialect{
		Name: "sqlite",
		// As C gearmand 1.1.20's libsqlite3 module creates it.
		CreateTable: func(table string) string {
			return "CREATE TABLE " + table + " ( unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, " +
				"when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))"
		},
		IntegerType: "INTEGER",
		BytesType:   "BLOB",
		Columns: func(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
			return names(ctx, tx, "SELECT lower(name) FROM pragma_table_info(?)", table)
		},
		Indexes: func(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
			return names(ctx, tx, "SELECT name FROM pragma_index_list(?)", table)
		},
		Quote:       func(ident string) string { return `"` + ident + `"` },
		MaxParams:   32766, // SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32
		NumberOrder: "rowid",
		RowID:       "rowid",
		IsDuplicate: func(err error) bool {
			var se *msqlite.Error
			return errors.As(err, &se) &&
				(se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
		},
		// A statement waits only on the file, and on another process's
		// lock no longer than the busy timeout; modernc's interrupt would
		// cost a goroutine per statement.
		Uncancelled: true,
		Interpret:   func(err error) error { return interpretError(path, err) },
	}
}

// names runs a query of one text column and returns its values.
func names(ctx context.Context, tx *sql.Tx, query string, arg any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// interpretError maps SQLite's result codes and the system's errors to
// the store sentinels, or returns nil for an error it does not know.
func interpretError(path string, err error) error {
	var se *msqlite.Error
	wrap := func(sentinel error, why string) error {
		return store.Wrap(fmt.Sprintf("sqlite: %s: %s: %v", path, why, err), sentinel, err)
	}
	switch {
	case errors.As(err, &se):
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY:
			return wrap(store.ErrLocked, "the file is in use by another process (a C gearmand? an sqlite3 shell?)")
		case sqlite3.SQLITE_LOCKED:
			return wrap(store.ErrUnavailable, "a table is locked")
		case sqlite3.SQLITE_READONLY:
			return wrap(store.ErrUnavailable, "the file cannot be written")
		case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM,
			sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS:
			return wrap(store.ErrUnavailable, "the file cannot be used now")
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return wrap(store.ErrCorrupt, "not an SQLite database, or damaged")
		case sqlite3.SQLITE_TOOBIG:
			return wrap(store.ErrTooLarge, "a job is larger than SQLite stores")
		}
	case store.IsDiskFault(err):
		return wrap(store.ErrUnavailable, "the disk cannot be written")
	}
	return nil
}
