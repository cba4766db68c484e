// Package postgres is a store.Store in a PostgreSQL database (gearmand -q
// postgres), for servers that keep their background jobs in a database
// they already run, or that share one database: each server writes only
// its own namespace, and a replacement server adopts a dead one's jobs by
// starting with its namespace (which fences the old one off: see below).
//
// It registers itself as "postgres" and reads store.Options.DSN (a libpq
// URL or keyword/value connection string, as pgx accepts it),
// store.Options.Namespace (required), store.Options.Extra
// ["apply-timeout"] (a Go duration, default 5s) and ["import-table"] (see
// "Jobs C gearmand left behind") and store.Options.Logger.
//
// # Schema
//
// Open applies the migrations of package gearmand/migrations (tern, under
// a PostgreSQL advisory lock; the version is kept in
// gearmand_schema_version). One table holds every namespace's jobs:
//
//	gearmand_jobs
//	+-----------+--------+--------+----------+------------+-------+
//	| namespace | seq    | handle | function | unique_key | data  |
//	| text      | bigint | bytea  | bytea    | bytea      | bytea |
//	+-----------+--------+--------+----------+------------+-------+
//	| priority | run_at, run_at_nanos    | reducer | attempts |
//	| smallint | timestamptz, smallint   | bytea   | bigint   |
//	+----------+-------------------------+---------+----------+
//	| created, created_nanos | PRIMARY KEY (namespace, seq)   |
//	| timestamptz, smallint  |                                |
//	+------------------------+--------------------------------+
//
// Every protocol string is bytea: function names, uniques and handles may
// hold NULs and bytes that are not UTF-8, which text refuses. timestamptz
// keeps microseconds, so the nanoseconds past the microsecond are kept
// beside it and the store gives back the instant it was given. A NULL
// time is the zero time. attempts is bigint because it holds a uint32.
// The table name is fixed: no SQL is built from input.
//
// Unlike gearmand's libpq queue, rows are keyed by sequence number, not
// by (unique, function), so empty or repeated uniques never collide; all
// values are bound parameters; priority and times are read back in their
// own types, not parsed from binary with atoi; and times do not stop in
// 2038.
//
// # Apply
//
// Each Apply is one transaction, opened by the fence (see below), made in
// one of two ways:
//
//   - Fewer than 64 adds: the DELETE of the batch's deletes
//     (seq = ANY($2)) and an INSERT ... SELECT FROM unnest(arrays) ... ON
//     CONFLICT (namespace, seq) DO UPDATE go out together as one pgx
//     batch: one round trip, run by PostgreSQL as one implicit
//     transaction.
//   - 64 adds or more: BEGIN, one DELETE of the deletes and of the adds'
//     Seqs (COPY cannot replace a row), COPY of the adds, COMMIT.
//
// The upsert's single round trip halves the cost of a one-record batch,
// which is what a lightly loaded server commits; COPY streams rows without
// building arrays and wins on large batches and payloads, which is what a
// loaded server's Committer gathers. Apply returns nil only after the
// COMMIT, durable as the server's synchronous_commit says (by default
// once the WAL is flushed).
//
// # One owner per namespace: fencing
//
// One namespace has one live owner. Open takes the namespace over: after
// the migrations it bumps the namespace's row in gearmand_owners
// (migration 002: namespace text PRIMARY KEY, generation bigint) and keeps
// the new generation. The first statement of every Apply transaction, on
// both routes, is SELECT gearmand_fence(namespace, generation): it takes
// FOR SHARE on that row and raises SQLSTATE GMD01 when the generation is
// no longer the Store's. So:
//
//   - a server killed with an Apply in flight cannot overwrite the jobs
//     of the server that replaced it: PostgreSQL may still commit that
//     transaction, but the replacement's bump waits for every transaction
//     past the fence (Open waits at most TakeoverWait, default 30s, then
//     fails with store.ErrLocked saying a write of the previous owner is
//     still in progress), so its Replay sees what the dead one committed;
//     a dead transaction that had not reached the fence fails it;
//   - a second live server started on the namespace fences the first:
//     the first's Applies fail with store.ErrLocked ("namespace ... was
//     taken over by another gearmand (generation N ...)"), which is final
//     for that Store (its Committer fails submits with QUEUE_ERROR).
//
// The store's connections set client_connection_check_interval (1s, on
// PostgreSQL 14 and later, unless the DSN sets it): a transaction whose
// client died while it waited on a lock is aborted within about a second
// rather than holding the fence, and the next Open, until the lock goes.
//
// # Jobs C gearmand left behind
//
// A user switching from C gearmand's -q Postgres keeps its command line,
// and the jobs C gearmand queued must run. C gearmand 1.1.20 keeps them
// in its own table, by default "queue" (--libpq-table), which it creates
// as
//
//	CREATE TABLE queue (unique_key VARCHAR(64), function_name VARCHAR(255),
//	    priority INTEGER, data BYTEA, when_to_run INTEGER,
//	    UNIQUE (unique_key, function_name))
//
// one row per background job: priority 0 high, 1 normal, 2 low;
// when_to_run the epoch second of a SUBMIT_JOB_EPOCH job, 0 for now; an
// empty unique stored as the empty string. It deletes a row when its job is done.
//
// Open, once it owns the namespace, moves every row of that table into
// gearmand_jobs under the namespace, in one transaction that the fence
// opens like an Apply's: one statement deletes the rows from C's table
// and inserts them, numbered after the namespace's largest Seq, ordered
// by priority, then when_to_run, then place in the table (about the
// order C gearmand wrote them). So a crash or an error half-way leaves
// every row where it was; and since the rows are taken FOR UPDATE SKIP
// LOCKED, servers of several namespaces starting together each take
// their share and no row twice. Function and unique come back as the
// bytes C gearmand sent, data byte for byte, and the queue gives each job
// a fresh handle. Stop C gearmand first: a job it still holds in memory
// would run on both servers.
//
// The table is found as C gearmand's queries find it (an unqualified name
// on the search_path; a qualified one as given). A relation of that name
// in another layout is left alone with a warning; rows naming no function
// are left with a warning too, since no worker could run them. The number
// of jobs taken over is logged through the Logger option (the server's
// logger, store.Options.Logger, when opened through the registry).
// ImportTable names another table, or none with "" or "-"; the registry
// maps gearmand's --libpq-table to it (store.Options.Extra
// ["import-table"]).
//
// # The way back
//
// HandBack (store.HandBack, gearmand --hand-back) moves the namespace's
// jobs the other way, into C gearmand's table (created with C's DDL when
// absent), in one fenced transaction that inserts them there and deletes
// them here, so that C gearmand 1.1.20 started with the same command line
// runs them. What C's table cannot hold is said in HandBack's doc: some
// uniques are replaced by a generated UUID, and jobs C would run wrongly
// (an epoch job not yet due, a function name with a quote) stay here.
//
// # Failures
//
// Every Apply runs under its own timeout (ApplyTimeout, default 5s), which
// also bounds connecting. A database that is down, restarting, refusing
// connections or not answering makes Apply fail within it with an error
// wrapping store.ErrUnavailable, so the Committer fails the waiting
// submits with QUEUE_ERROR and retries; pgxpool replaces broken
// connections, and the first Apply after the database is back succeeds.
// interpretError is the one place that maps pgx's, PostgreSQL's (by
// SQLSTATE class) and the network's errors to the store sentinels.
//
// # Replay
//
// Replay runs one query, ORDER BY seq over the primary key, and decodes
// rows as pgx reads them off the connection, so memory does not grow with
// the number of jobs. Each Record's byte slices are freshly allocated.
// The callback runs while the query is open; an Apply from it uses another
// pooled connection, and the rows still to come are those of the query's
// snapshot.
package postgres
