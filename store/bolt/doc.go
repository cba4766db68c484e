// Package bolt is the embedded default store.Store (gearmand -q bolt): every
// background job in one bbolt file, a copy-on-write B+tree with a single
// writer and a file lock.
//
// It registers itself as "bolt"; store.Options.Path is the file.
//
// # On-disk layout
//
// The file holds one bucket, "jobs". Each stored job is one key/value pair
// in the shared encoding of store/record.go (store.AppendKey and
// store.AppendValue):
//
//	bucket "jobs"
//	+--------------------------+-------------------------------------------+
//	| key: Seq, 8 bytes        | value: version 1, priority, attempts,     |
//	| big-endian               | run_at, created, handle, function,        |
//	|                          | unique, reducer, data (see store/record.go)|
//	+--------------------------+-------------------------------------------+
//
// Big-endian keys make the B+tree's byte order the Seq order, so Replay is
// one cursor walk from the first key to the last. Since Seqs only grow,
// adds land at the tree's right edge, and pages are filled whole when they
// split (FillPercent 1.0, not bbolt's default half).
//
// # Durability
//
// Apply is one read-write transaction holding every put and delete of the
// batch. bbolt writes the dirty pages, fsyncs them, then writes and fsyncs
// the meta page that makes them current (NoSync stays false), so Apply
// returning nil means the whole batch is on disk, and a crash at any point
// leaves either the old tree or the new one: one transaction, two fsyncs,
// per batch, however many records it holds. Batching is the Committer's
// job, not the driver's.
//
// After each Apply the store writes zeros into the next few MiB past
// bbolt's high-water mark (ahead.go), so that commits growing the file
// overwrite blocks rather than fill holes, and their fdatasync need not
// also commit a block allocation. The file is therefore up to 6 MiB larger
// than bbolt alone would make it; bbolt never reads that room.
//
// # Locking
//
// bbolt takes an exclusive flock on the file. A second gearmand (or a
// second Open in the same process) waits at most the lock timeout (500ms
// by default, see LockTimeout) and then fails with an error wrapping
// store.ErrLocked that names the file. The kernel drops the lock when its
// holder dies, so a restart after kill -9 never finds a stale lock.
//
// # Replay
//
// Replay reads the bucket in chunks, each in its own short read
// transaction, and calls its callback with no transaction open. A long
// read transaction would stop bbolt from remapping a growing file, so a
// callback that calls Apply (or a Replay of millions of jobs running beside
// writes) could otherwise stall or deadlock. A value that does not decode
// is skipped, left in the file, and reported to the store.Corruption
// handler.
package bolt
