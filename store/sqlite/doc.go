// Package sqlite is a store.Store in an SQLite file, in the table C
// gearmand's libsqlite3 queue module uses (gearmand -q libsqlite3
// --libsqlite3-db FILE [--libsqlite3-table T]), so that the jobs either
// server leaves in the file are run by the other. The table, its extra
// columns, Apply, Replay and the numbering of C gearmand's rows are
// package queuetable's; this package opens the file and supplies the
// SQLite dialect.
//
// # Settings
//
//   - the file (--libsqlite3-db, Open's path): required, as in C
//     gearmand; created when absent, in a directory that must exist.
//   - the table (--libsqlite3-table, the Table option): default
//     gearman_queue (queuetable.DefaultTable).
//
// C gearmand's --store-queue-on-shutdown (write the queue only when the
// server stops) has no counterpart here: every background job is written
// before it is acknowledged.
//
// # SQLite
//
// The engine is modernc.org/sqlite, SQLite's C source translated to Go:
// no cgo, so the gearmand binary stays static, and SQLite itself rather
// than a reimplementation, so the file format and locking are those C
// gearmand's libsqlite3 uses on the same file.
//
// Every connection runs with journal_mode=WAL and synchronous=FULL: a
// commit returns once the WAL is fsynced, so a committed job survives a
// power cut. (The default rollback journal commits by deleting the
// journal file without syncing the directory, so a power cut can bring
// the journal back and roll back an acknowledged transaction; C gearmand
// 1.1.20 loses about one job per cut that way.) WAL is a property of the
// file: C gearmand (Debian's gearman-job-server 1.1.20 with its
// libsqlite3) opens and uses it as it is, as the interop tests show, and
// is then durable the same way.
//
// The store keeps the file to itself while open: locking_mode=EXCLUSIVE
// holds SQLite's lock from the first statement to Close, so a C gearmand
// started on the file meanwhile fails at start ("database is locked",
// after its 6s busy timeout) instead of running the same jobs a second
// time, and an sqlite3 shell cannot read the file meanwhile either. (In
// this mode the WAL index lives in memory: there is no -shm file.) Open
// waits BusyTimeout for a lock another process holds, then fails with
// store.ErrLocked; an flock on the file makes a second gearmand of ours
// fail at once. Transactions begin IMMEDIATE.
//
// # Errors
//
// Open refuses, with an error that names the file: an empty path, a
// directory that does not exist, a path that is a directory, a file
// that is not an SQLite database (store.ErrCorrupt), a file or directory
// it cannot write (fs.ErrPermission), and a table in another layout
// (queuetable.ErrLayout, naming --libsqlite3-table). It never changes a
// file it refuses. interpretError maps SQLite's result codes to the store
// sentinels.
package sqlite
