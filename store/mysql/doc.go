// Package mysql keeps background jobs in a MySQL or MariaDB table laid out
// as C gearmand's MySQL queue module lays it out, so that this server and
// C gearmand 1.1.20 can each run the jobs the other left (-q MySQL, and
// the 0.x spelling -q libdrizzle). It is queuetable (store/internal) with
// a MySQL dialect, on github.com/go-sql-driver/mysql.
//
// # What C gearmand does (1.1.20, libgearman-server/plugins/queue/mysql)
//
// Flags and defaults:
//
//	--mysql-host      localhost      ("localhost" is the Unix socket)
//	--mysql-port      3306
//	--mysql-user      ""             (libmariadb then logs in as the OS user)
//	--mysql-password  ""
//	--mysql-db        ""             (none: C fails, "No database selected")
//	--mysql-table     gearman_queue
//
// It connects (reading option group [gearmand] of my.cnf, reconnecting on
// a lost connection), runs SHOW TABLES LIKE '<table>', and when the table
// is absent creates it with
//
//	CREATE TABLE <table>(unique_key VARCHAR(64),function_name VARCHAR(255),
//	priority INT,data LONGBLOB,when_to_run INT,
//	unique key (unique_key, function_name))
//
// in the database's default character set. It then prepares
//
//	INSERT INTO <table> (unique_key, function_name, priority, data, when_to_run) VALUES(?, ?, ?, ?, ?)
//	DELETE FROM <table> WHERE unique_key=? AND function_name=?
//
// and on start replays SELECT unique_key, function_name, data, priority,
// when_to_run FROM <table>, with no ORDER BY. One statement per job, in
// autocommit. priority is 0 high, 1 normal, 2 low; when_to_run is the
// epoch second of a SUBMIT_JOB_EPOCH job, 0 for any other. C gearmand
// generates no unique: libgearman's client sends a UUID for a background
// job submitted without one, and a unique empty on the wire is stored
// empty, so a second such job of the same function fails with a duplicate
// key (QUEUE_ERROR). A 64-byte unique is stored as its first 63 bytes and
// a NUL.
//
// The libdrizzle module (gearmand 0.x, still in 1.1's source, not built by
// Debian) has --libdrizzle-host (localhost), --libdrizzle-port (4427, the
// Drizzle port, in 0.x; 3306 with libdrizzle 5.1), --libdrizzle-uds,
// --libdrizzle-user (root), --libdrizzle-password, --libdrizzle-db
// (gearman), --libdrizzle-table (queue) and --libdrizzle-mysql (speak
// MySQL's protocol). It runs CREATE SCHEMA IF NOT EXISTS on the database,
// creates the table the same way but with when_to_run BIGINT, and escapes
// values into INSERT ... SET statements.
//
// # This package
//
// Config carries the same settings (Module chooses which module's flags
// errors name); Open checks the login and database, creates the table as
// above when absent (with BIGINT for libdrizzle, which also creates a
// missing database), and adds the nullable columns queuetable keeps its
// own fields in. Each Apply is one transaction of multi-row statements
// and returns after COMMIT. The table's C columns are filled as C fills
// them; a unique or function name that the column cannot hold byte for
// byte (longer than it, or outside its character set) is kept in our
// columns and replaced in C's by a UUID stand-in (see queuetable).
//
// Sessions run in READ COMMITTED (no gap locks between concurrent
// Applies) and strict mode (a value that does not fit fails instead of
// being cut). Apply's statements are prepared on the server, so blobs
// travel unescaped, the larger ones as long data: a job up to
// max_allowed_packet (less 64 KiB) is stored, as with C gearmand; a
// larger one fails with store.ErrTooLarge before anything is sent. Other
// statements have their parameters written into their text (one round
// trip each).
//
// Every connection attempt, read and write is bounded by Config.Timeout:
// a server that is down or stops answering makes an operation fail with
// store.ErrUnavailable within a few timeouts, and the next operation
// after it is back succeeds. A refused login, a missing database and a
// table in another layout (queuetable.ErrLayout) give errors that name
// the flag to fix, and change nothing.
package mysql
