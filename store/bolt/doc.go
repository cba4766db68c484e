// Package bolt is the embedded default store.Store (gearmand -q bolt): every
// background job in one bbolt file, a copy-on-write B+tree with a single
// writer and a file lock.
//
// It registers itself as "bolt"; store.Options.Path is the file.
//
// # On-disk layout
//
// The jobs live in the bucket "jobs". Each stored job is one key/value pair
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
// A second bucket, "journal", holds the key "next", the checkpoint marker
// (8 bytes big-endian), and the key "id", the file's identity (16 random
// bytes); see Durability.
//
// # Durability: the journal
//
// A bbolt commit costs two fdatasyncs, one for the data pages and one for
// the meta page that makes them current, and on the virtual disks measured
// here a flush costs CPU as well as waiting. So Apply does not commit to
// bbolt. It appends the batch as one checksummed frame to a journal file
// beside the bbolt file ("<file>.journal.<number>", layout in journal.go)
// and makes it durable with one fdatasync: Apply returning nil means the
// batch is on disk, whole (a frame is all or nothing).
//
// Once the journal has taken CheckpointSize bytes (16 MiB by default)
// since the last checkpoint began, Apply starts a checkpoint in the
// background and the next Apply starts a new journal. A checkpoint writes
// the operations of the journals before that one into the bbolt file in
// one ordinary transaction (two fdatasyncs, whatever its size), in Seq
// order, with a job added and deleted within it never written, and records
// there the number of the first journal still needed: the checkpoint
// marker. It then removes the journals below the marker. Only one
// checkpoint runs at a time; until it ends, Apply keeps writing the newest
// journal, and if four checkpoints' worth has piled up meanwhile, Apply
// waits for it. If checkpoints fail (a full disk), Apply keeps journaling
// until four checkpoints' worth waits in memory, then fails with the
// checkpoint's error until one succeeds. An Apply whose write or fdatasync
// fails erases its frame's header if it can, and the next Apply starts a
// new journal.
//
// bbolt answers a damaged file or a broken invariant with a panic. In a
// checkpoint, which runs on its own goroutine, that would end the process;
// the store recovers it instead, logs it, and stops checkpointing for good
// (bbolt's state in memory is no longer to be trusted): Apply keeps
// journaling, durably, up to the same bound, then fails with
// store.ErrCorrupt and the reason. Every acknowledged job is in the
// journals, which stay for the next start to recover.
//
// Open reads the journals from the marker on, oldest first, checkpoints
// them and removes them, before Replay. Each journal starts with the
// bbolt file's identity (16 random bytes kept in the file), and they must
// be numbered from the marker on without a gap: journals that belong to
// another copy of the file (one deleted, or restored from a backup, beside
// a crashed server's journals) make Open fail, naming them, rather than
// mix the two. A frame that does not check ends its journal. Followed only
// by zeros, it is the write a crash or a failed Apply cut short, never
// acknowledged, and is dropped. Followed by anything else, it is damage:
// the journal is kept as "<journal>.damaged", a warning is logged, and the
// first Replay reports it to the store.Corruption handler under the
// journal's name. Replay and Close checkpoint what is journaled first, so
// Replay reads the bbolt file alone and a cleanly closed store is that
// file alone.
//
// A crash at any point leaves a bbolt file that is either before or after
// a checkpoint (bbolt's own guarantee) and the journals that checkpoint
// had not yet made redundant. The operations are idempotent: an add
// replaces, a delete of a missing Seq does nothing, so recovery may replay
// a journal onto a file that already holds part of it.
//
// The operations journaled since the last checkpoint are kept in memory
// until a checkpoint has written them: about twice CheckpointSize while
// checkpoints keep up, at most about four times.
//
// After each checkpoint, and as each journal grows, the store writes zeros
// past the file's end (ahead.go; journal.go), so that commits overwrite
// blocks rather than fill holes, and their fdatasync need not also commit
// a block allocation. The bbolt file is therefore up to 6 MiB larger than
// bbolt alone would make it; bbolt never reads that room.
//
// # Locking
//
// bbolt takes an exclusive flock on the file. A second gearmand (or a
// second Open in the same process) waits at most the lock timeout (500ms
// by default, see LockTimeout) and then fails with an error wrapping
// store.ErrLocked that names the file. The kernel drops the lock when its
// holder dies, so a restart after kill -9 never finds a stale lock. The
// journals are read and written only by the lock's holder.
//
// # Replay
//
// Replay reads the bucket in chunks, each in its own short read
// transaction, and calls its callback with no transaction open. A long
// read transaction would stop bbolt from remapping a growing file, so a
// callback that calls Apply (or a Replay of millions of jobs running beside
// writes) could otherwise stall or deadlock. A value that does not decode
// is skipped, left in the file, and reported to the store.Corruption
// handler. Each chunk first checkpoints what was journaled before it, so a
// callback's Apply is seen by the chunks after it.
package bolt
