// Package pebble is a store.Store on Pebble, CockroachDB's LSM key/value
// store (gearmand -q pebble): a directory of write-ahead log, memtables
// and sorted tables, for servers whose job rate outgrows one B+tree file.
//
// It registers itself as "pebble"; store.Options.Path is the directory.
//
// # On-disk layout
//
// The directory is a Pebble database with the default byte-wise comparer.
// Each stored job is one key/value pair in the shared encoding of
// store/record.go (store.AppendKey and store.AppendValue):
//
//	+--------------------------+-------------------------------------------+
//	| key: Seq, 8 bytes        | value: version 1, priority, attempts,     |
//	| big-endian               | run_at, created, handle, function,        |
//	|                          | unique, reducer, data (see store/record.go)|
//	+--------------------------+-------------------------------------------+
//
// Big-endian keys make Pebble's key order the Seq order, so Replay is one
// forward scan. A deleted job is a tombstone until compaction drops it; a
// job added and deleted within one memtable's lifetime usually never
// reaches a table at all.
//
// # Durability
//
// Apply builds one pebble.Batch of every Set and Delete and commits it
// with pebble.Sync: the batch is one record in the write-ahead log, and
// Commit returns only after the log is fsynced. After a crash Pebble
// replays its log, so a batch is there whole or not at all. Pebble also
// groups the syncs of concurrent commits, though the Committer sends one
// batch at a time anyway. The log's room past its end is written with
// zeros rather than fallocated (walfs.go), so that an fsync commits data,
// not block conversions.
//
// # Locking
//
// Pebble holds an fcntl lock on the directory's LOCK file. A second
// gearmand on the same directory, or a second Open in the same process,
// fails at once with an error wrapping store.ErrLocked that names the
// directory. The kernel drops the lock when its holder dies.
//
// # Replay
//
// Replay reads the keys in chunks, each through its own short-lived
// iterator, and calls its callback with no iterator open. A value that
// does not decode is skipped, left stored, and reported to the
// store.Corruption handler. Damage Pebble itself detects (a bad block
// checksum) fails Replay with store.ErrCorrupt instead: it cannot be
// narrowed down to one record.
//
// # Fatal errors
//
// Pebble calls its logger's Fatalf, which must not return, where it
// cannot go on. Two cases, told apart by where they come from:
//
//   - A commit whose log write or sync failed ("pebble: fatal commit
//     error", a full disk): raised on Apply's own goroutine with no Pebble
//     lock held. The store recovers it: that Apply fails with
//     store.ErrUnavailable and the reason, and the database is failed.
//     The next Apply (or Replay chunk) closes it and opens it again from
//     the directory, where Pebble's log holds every batch it acknowledged;
//     until that works (the disk still full) each one fails with the
//     reason. The batch that failed was not acknowledged; it may come
//     back at the reopen if part of it reached the log (at least once).
//   - Anything else (a MANIFEST that cannot be written or synced by a
//     background flush or compaction, a broken invariant): Pebble's view
//     of its files may no longer be the disk's, and going on, or closing,
//     could remove a log that still holds acknowledged jobs. The process
//     logs one line saying so and exits with status 1; the next start
//     recovers every acknowledged job from disk. The server's space guard
//     (--store-min-free) keeps a full disk from getting this far.
//
// Pebble's own log lines go to slog: routine ones (flushes, compactions,
// log recovery) at debug level, errors at error level.
package pebble
