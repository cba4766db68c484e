// Package queuetable is a store.Store in C gearmand's own queue table, the
// one its libsqlite3 and MySQL queue modules (gearmand 1.1.20) keep their
// background jobs in, over database/sql. The engine-specific SQL is a
// Dialect; store/sqlite and store/mysql are this package plus a Dialect
// and the code that opens their *sql.DB.
//
// The point is a drop-in in both directions: jobs C gearmand left in the
// table are run by ours, jobs ours left are run by C gearmand started on
// the same table, and neither loses or repeats the other's jobs.
//
// # The table
//
// C gearmand 1.1.20 creates, when the table (default gearman_queue) is
// absent:
//
//	SQLite: CREATE TABLE t ( unique_key TEXT, function_name TEXT,
//	        priority INTEGER, data BLOB, when_to_run INTEGER,
//	        PRIMARY KEY (unique_key, function_name))
//	MySQL:  CREATE TABLE t(unique_key VARCHAR(64), function_name VARCHAR(255),
//	        priority INT, data LONGBLOB, when_to_run INT,
//	        unique key (unique_key, function_name))
//
// and writes one row per job: priority 0 high, 1 normal, 2 low;
// when_to_run the epoch second the job may run from, 0 for now. It adds
// with INSERT OR REPLACE (SQLite) or a plain INSERT (MySQL: a duplicate
// fails the submission), deletes a finished job with DELETE ... WHERE
// unique_key=? AND function_name=?, and replays with a SELECT of the five
// columns, no ORDER BY. Its SQLite replay insists on the column types:
// unique_key and function_name TEXT, priority and when_to_run INTEGER,
// data BLOB (a NULL in any of them stops the replay and the server).
//
// Open creates the table the same way when it is absent, then adds the
// columns below, all nullable, which C gearmand never names and so
// ignores; its rows have them NULL. The row layout:
//
//		+------------+---------------+----------+------+-------------+
//		| unique_key | function_name | priority | data | when_to_run |  C's five
//		+------------+---------------+----------+------+-------------+
//		| seq | job_fields |                                           ours
//		+-----+------------+
//
//	  - seq (integer, unique index <table>_seq): the Record's Seq, our
//	    identity and replay order. A Seq must be below 2^63.
//	  - job_fields (bytes): the rest of the Record, packed (the layout is
//	    at appendFields in queuetable.go): attempts, created and run_at
//	    (Unix nanoseconds; when_to_run holds RunAt rounded up to the
//	    second, so that a job never runs early under C, and job_fields the
//	    exact instant), handle, reducer, and the Record's Unique or
//	    Function when unique_key or function_name holds a stand-in
//	    (below). One column rather than one per field: each bound
//	    parameter costs the driver and the engine a conversion, and these
//	    fields are never searched.
//
// An empty Unique is stored as a fresh random UUID in unique_key
// (lower-case 36-character form, as libgearman generates for a
// background job submitted without a unique), with the empty Unique kept
// in job_fields, so that two jobs with an empty unique never collide on
// C's key, C gearmand runs the job under that UUID, and our Replay gives
// the empty Unique back. So is a unique that C gearmand cannot keep whole:
// 64 bytes or longer, or holding a NUL (C copies the unique into a 64-byte
// C string and deletes a finished job's row by that copy, which would
// match nothing, so the job would run again at every start). A value that
// the engine's key column cannot hold byte for byte (Dialect.Fits: in
// MySQL, one not valid in the column's character set, or a function name
// over 255 bytes) gets a UUID stand-in the same way.
// C gearmand itself generates no UUID: libgearman's client does, before
// submitting; a unique that is empty on the wire is stored empty by C.
//
// If the table exists, Open checks that C's five columns are there (a
// table that has unique_key, function_name, priority and data but no
// when_to_run gets it, as C gearmand adds it) and adds whichever of ours
// are missing (ALTER TABLE ... ADD COLUMN) and the index on seq. A table
// without C's columns is refused with an error that names the table and
// the flag that chose it, and is left unchanged.
//
// # Apply
//
// Each Apply is one transaction: DELETE ... WHERE seq IN (...) of the
// batch's deletes, then multi-row INSERTs of the adds, then COMMIT; Apply
// returns nil only after COMMIT returned. A batch that is a single
// statement (up to 64 adds and no deletes, or up to 256 deletes and no
// adds) is run without BEGIN and COMMIT: the engine commits it, atomically
// and durably, before it answers (SQLite's autocommit under
// synchronous=FULL, InnoDB's under its default
// innodb_flush_log_at_trx_commit=1), one round trip to a server instead
// of three.
//
// An add whose Seq is stored replaces that row (a batch retried after a
// COMMIT whose outcome was not known): the INSERT fails on the index on
// seq and changes nothing, the rows of its adds' Seqs are deleted, and it
// runs again (in a transaction). Adds almost never replace anything, so
// this costs no statement when they do not.
//
// The statements take 1 to 64 rows (1 to 256 Seqs for DELETE), within
// Dialect.MaxParams; each size is prepared the first time a batch needs
// it, before that batch's transaction begins, and kept, so that the
// engine parses no SQL for later batches. The adds fill C's five columns
// as C gearmand does, so that C gearmand runs them.
//
// An add can still collide with a stored row on (unique_key,
// function_name): a row C gearmand wrote and ours has not numbered (a C
// gearmand writing the table while ours runs), a row whose delete the
// server has not yet applied, or a hand-edited table. Apply then neither
// replaces the stored row (it may be a job that was acknowledged, which
// C's INSERT OR REPLACE would drop silently) nor fails the batch (the new
// job would be refused for as long as the old one waits): the statement
// fails on the key, changes nothing, and the adds are inserted again one
// at a time, the colliding one with a UUID stand-in in unique_key and its
// unique in job_fields. Both jobs are kept; ours replays both under their
// own uniques; C gearmand would run the later one under the stand-in.
// Each such rename is logged.
//
// # Replay
//
// Rows C gearmand wrote have seq NULL. Replay first numbers them, in one
// committed transaction, with Seqs above every stored one, in
// Dialect.NumberOrder (SQLite: rowid; MySQL: InnoDB's scan order; both
// the order C inserted them), before it hands any of them to fn: each
// gets its Seq once, so a row C wrote is never run twice, and deletes by
// Seq then reach it. It then reads the table in ascending seq in chunks
// (ReplayChunk rows, or fewer once ReplayChunkBytes of data are read) and
// closes each read before fn runs, so fn may call Apply or Close.
//
// A row that cannot be a Record (function_name NULL, priority NULL or not
// 0-2, job_fields unreadable) is skipped, kept, and reported to the
// store.Corruption handler under the key "seq N".
//
// # Errors
//
// Store.interpret is the one place errors become store sentinels: a
// closed store is store.ErrClosed; the context's own errors pass through;
// then the Dialect's Interpret maps the engine's errors (locked,
// unreachable, corrupt file, too large); anything else is returned as
// it is, prefixed with the dialect's name.
//
// # Adding a dialect
//
// Write a Dialect value (see its field docs, and sqliteDialect in
// store/sqlite for a complete one): the CREATE TABLE exactly as C
// gearmand runs it, the types of the extra columns, how to list a table's
// columns and indexes, identifier quoting, the parameter limit, the order
// in which C's rows are numbered, which key values the engine can hold
// exactly, and the error hooks. Open the *sql.DB in the driver package
// (connection settings, durability pragmas) and pass both to Open. Then
// run storetest.Run against the driver, and the interop tests against
// the real C gearmand on the same table.
package queuetable
