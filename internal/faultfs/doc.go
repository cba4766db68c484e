// Package faultfs is a FUSE passthrough filesystem for tests that makes a
// disk misbehave on purpose: it loses what was never made durable, as a
// power cut does, and fails, or stalls, chosen operations.
//
// It is used only by tests. It needs root and /dev/fuse (it mounts with
// mount(2) itself, so no fusermount binary is needed); Start skips the
// test when they are missing, and fails it under CI=true.
//
// # Power cuts
//
// An FS mirrors a backing directory: every operation goes to the backing
// files at once, so the programs on the mount see an ordinary filesystem,
// page cache included. Beside that the FS keeps, in memory, the durable
// state of the tree, which is what a machine would find on its disk after
// losing power:
//
//   - for each file (known by its backing inode number and birth time, so
//     that renames and hard links keep their identity), its content as of
//     its last successful fsync or fdatasync. Writes, truncations and
//     fallocate calls since then are recorded as dirty ranges, and a sync
//     copies those ranges from the backing file into the durable copy;
//   - for each directory, its entries as of its last successful fsync.
//     A create, rename, link or unlink is durable only once the directory
//     holding the entry was synced (POSIX's rule, and what LazyFS models for
//     Jepsen; ext4 and XFS are often kinder, never less).
//
// What exists when the FS is mounted counts as durable. Cut unmounts the FS
// (the programs using it must have ended: a test SIGKILLs them first) and
// rewrites the backing directory to the durable state, throwing away
// everything else; Mount then serves that state, as a rebooted machine
// would.
//
// # Failing syncs
//
// A sync that a Fault makes fail discards the dirty ranges it would have
// made durable, without making them durable: they stay visible through the
// mount (the page cache still holds them) but a later sync does not cover
// them and a cut loses them. This is what Linux does after a writeback
// error (the PostgreSQL "fsyncgate"), so a program that retries a failed
// fsync and then trusts the data is caught.
//
// # Faults
//
// Inject adds a Fault: an operation kind and a path pattern, how many
// matching calls to let through first, how many to fail, the errno to
// return (ENOSPC, EIO, ...) and a delay to add to each matching call.
//
// # mmap
//
// bbolt reads its file through a shared mmap and writes with pwrite. The FS
// runs with the kernel page cache on (no direct_io), so mmap works through
// it and sees pwrites at once; a test checks it. FUSE passthrough is
// declined, so every write reaches the FS. A process must not fault on a
// mapping of a file on a mount it serves itself (its own garbage collector
// may stop the goroutines that would answer): run the program under test
// in another process, as the tests here do.
//
// # Limits
//
// Cut writes a hard-linked file once per durable name, as separate files.
// O_TMPFILE and copy_file_range are refused (programs fall back to named
// files and to reads and writes). Extended attributes, permissions and
// times are not part of the durable state beyond the permission bits seen
// at the last directory sync.
package faultfs
