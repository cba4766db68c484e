// Package crashtest holds no code, only tests: they check the product's
// promise that every background job answered with JOB_CREATED survives a
// kill -9 of the server and a restart.
//
// # How
//
// The tests build the real binary (cmd/gearmand) once per test run and
// start it as a child process on a free port of 127.0.0.1, with each
// durable store in write-through and write-behind mode: the file stores
// (-q bolt, -q pebble) and the networked ones (-q postgres, -q redis).
// They talk to it through package client, as any user would, and stop it
// with SIGKILL, so no shutdown code runs: what the store holds is what the
// last commit left on disk, or in the database.
//
// The networked stores run against real servers the tests start, never
// the ones a machine may already run: one throwaway PostgreSQL per test
// binary (package pgtest, from TestMain), with a database of its own for
// each test, and one redis-server per test on a free port, with its
// append-only file fsynced on every write in a temporary directory. Every
// life of a test passes the same --store-namespace, so a restart finds
// the killed server's jobs. Without the binaries (initdb and pg_ctl;
// redis-server) those tests skip, saying to install the Debian package
// postgresql or redis-server; under CI=true they fail instead. They get
// fewer jobs and kills than the file stores, to keep the package fast.
//
// A ledger records every unique id the tests submitted, every one whose
// SubmitBackground returned a handle (acknowledged, with the time the reply
// arrived and the server life that sent it) and every run a worker saw.
// Each job's data is derived from its unique id, so a worker also checks
// that what came back is what was sent, and that the handle is the one the
// submitter was given.
//
//   - TestSubmitUnderKill: many connections submit continuously; the server
//     is killed at a random moment, restarted on the same store, loaded and
//     killed again, several times; a final life drains every job. Every
//     acknowledged job must run at least once. A clean stop and restart
//     after the drain must then find the store empty; with a networked
//     store it may find jobs that never ran (see below), never one that
//     ran already.
//   - TestKillDuringDrain: jobs are queued, workers drain them and the
//     server is killed mid-drain; after a restart the rest is drained.
//     Every acknowledged job must run at least once; in write-behind mode
//     the drain starts once every acknowledgement is older than lossWindow.
//   - TestWriteBehindLossWindow: as TestSubmitUnderKill with
//     --store-mode write-behind --flush-interval 10ms. A job acknowledged
//     more than lossWindow (1s; see its comment) before the kill must come
//     back; younger ones may be lost and are counted, by age. The load is
//     paced to a few thousand jobs a second.
//   - TestEveryKindOfJobSurvives: one background job of every kind
//     (priorities, empty, "-" and 64-byte uniques, epoch, reduce, 1 MiB of
//     binary data, a background submission joining a queued foreground
//     job) comes back after a kill with its handle, unique, reducer, data
//     and priority, and the epoch job not before its time.
//   - TestWriteBehindWindowUnderFullLoad: runs only when
//     CRASHTEST_WRITE_BEHIND_FULL_LOAD is set. Submitting flat out, no job
//     acknowledged more than five flush intervals before a kill may be lost;
//     a stalled fsync on a busy machine can break that, hence opt-in.
//   - TestStoreOutage (postgres, redis): under a paced stream of
//     submissions from a few connections, the store's server is stopped as
//     a crash would (pg_ctl stop -m immediate; SIGKILL of redis-server) for
//     at least a second and at least ten refused submissions, then started
//     again on the same data. Meanwhile gearmand must stay up and answer
//     admin commands, and every submission must end in JOB_CREATED or, once
//     the store is down, ERROR QUEUE_ERROR: no other error and no hang.
//     After the store is back, submissions must succeed again within 30s.
//     gearmand is then killed and restarted, so the final drain sees only
//     what the store kept: every job acknowledged before, during or after
//     the outage must run. It logs how long the store was down, how many
//     submissions were refused, how long recovery took, and how many
//     refused jobs ran all the same (a commit whose reply the outage cut
//     off: allowed, as delivery is at least once).
//   - TestSecondServerRefusesLockedStore (file stores): a second server on
//     the same file or directory must exit non-zero, saying the store is
//     locked, while the first goes on serving.
//   - TestPostgresBatchOutlivesKill: a batch a killed server sent to
//     PostgreSQL is held back until the next life has started; it must not
//     replace the job the next life acknowledged under the same Seq. It
//     did before the store fenced each namespace by owner generation (see
//     store/postgres's doc): now the late batch either commits before the
//     next life's Open finishes, so replay sees it, or fails its fence.
//   - TestBuiltinLosesJobs: the same harness against -q builtin (memory
//     only) must see acknowledged jobs vanish, proving that the checks
//     above can fail.
//   - TestPowerCutUnderLoad (bolt, pebble, libsqlite3; powercut_test.go):
//     the store's files are on an internal/faultfs mount; the server is
//     SIGKILLed under load and the power cut, so that everything no fsync
//     covered is lost, then restarted on what is left, a few times
//     (CRASHTEST_POWER_CUTS=n for more). Every acknowledged job must run.
//     TestPowerCutLosesWhatWasNotSynced is its control: with fsyncs that
//     lie, the cut must lose acknowledged jobs.
//   - TestDiskFaults, TestPowerCutAfterDiskFault: a failed fsync (whose
//     data Linux then drops: a store must not trust a retried fsync), EIO
//     and ENOSPC on writes, and a 3 s fsync stall, injected under a
//     running server and followed by a kill and a power cut. The server
//     must stay up, refuse what it could not store with QUEUE_ERROR,
//     acknowledge again once the fault is gone, and lose nothing it
//     acknowledged.
//   - TestStalledFsyncAnsweredWithinStoreTimeout: an fsync stalled past
//     --store-timeout is answered with QUEUE_ERROR within about the
//     timeout.
//
// # What is allowed
//
// Delivery is at least once, so a job may run more than once: a kill
// between a job's completion and the commit of its delete runs it again.
// Those are counted and logged as duplicates. A job may also run that was
// never acknowledged: the kill came after its commit but before its
// JOB_CREATED reached the client (or while the reply sat in a socket buffer
// that the connection reset discarded). Those are logged too. A job that ran
// but was never submitted, or came back with other data or another handle,
// is an error. So is a hole: the committer writes adds in order, so a kill
// may cost a write-behind life only its newest adds (by the sequence number
// that ends each handle); an older job lost while a newer one of the same
// life was stored fails whatever its age.
//
// A networked store may hold a job the tests did not expect at a clean
// restart: a transaction the killed server had sent may still commit in
// the database after the next life replayed, and then shows up only in the
// life after. Such jobs are drained and logged; one that had already run
// means a lost delete and fails the test. That such a late commit can no
// longer overwrite a newer job is what TestPostgresBatchOutlivesKill checks.
//
// # What it does not prove
//
// SIGKILL ends the process, not the machine: the kernel's page cache
// survives it, so the kill tests cannot tell a store that fsyncs from one
// that only writes. The power-cut tests can, for the file stores, through
// internal/faultfs, which follows POSIX strictly (a directory entry is
// durable only once its directory was synced); a real disk that lies about
// its write cache, or a filesystem bug, is beyond them. The networked
// stores' durability is their servers' business.
//
// Timing is not reproducible, but the random delays are: the seed is logged,
// and CRASHTEST_SEED=n reuses one.
package crashtest
