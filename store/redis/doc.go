// Package redis is a store.Store on Redis (gearmand -q redis): a single
// node, a Sentinel-managed primary, or a Redis Cluster, through go-redis's
// UniversalClient. Several servers may share one Redis: each keeps its jobs
// under its own namespace, and a replacement server adopts a dead one's jobs
// by opening the same namespace. A namespace has one live owner at a time:
// opening it fences the server that had it before (see Fencing).
//
// It registers itself as "redis". store.Options.DSN is either one
// "host:port", a comma-separated list of them (a Cluster seed list, or the
// Sentinels when Extra["master"] names the primary), or a redis:// or
// rediss:// (TLS) URL of a single node. store.Options.Namespace is required.
// Extra["username"], Extra["password"], Extra["db"], Extra["cluster"]
// ("true": a single address that is a Cluster's) and Extra["timeout"] are
// optional.
//
// # Key layout
//
// Every key of a namespace carries the namespace as its hash tag, so all of
// them hash to one Cluster slot and each Apply can be one Lua script or
// one transaction:
//
//	gearmand:{<namespace>}:owner                       string, an integer
//	+----------------------+
//	| owner generation: 7  |   incremented by each Open; the Store that
//	+----------------------+   took the current value is the one owner
//
//	gearmand:{<namespace>}:seqs                        sorted set, the index
//	+----------------------+-------+
//	| member               | score |   one member per stored job, all with
//	| 00000000000000000042 |   0   |   score 0; a member is the Seq as 20
//	| 00000000000000000043 |   0   |   zero-padded decimal digits, so the
//	| ...                  |       |   set's lexicographic order is Seq order
//	+----------------------+-------+
//
//	gearmand:{<namespace>}:job:00000000000000000042    string, one per job
//	+---------------------------------------------------------------+
//	| value: store.AppendValue (version 1, priority, attempts,      |
//	| run_at, created, handle, function, unique, reducer, data)     |
//	+---------------------------------------------------------------+
//
// The Seq is the identity, never (function, unique): empty and repeated
// uniques do not collide, '-' and NUL in a function name mean nothing to the
// layout, and the value is binary (Redis strings are binary-safe), so data
// with NULs comes back whole. These are the bugs of gearmand's own redis
// queue that this layout does not have.
//
// Why lexicographic members rather than scores: a score is a float64, exact
// only up to 2^53, and a Seq is a uint64. With every score 0, ZRANGEBYLEX
// orders members bytewise, and fixed-width decimal makes bytewise order the
// numeric order for every uint64, while staying readable in redis-cli.
//
// A namespace may hold any bytes except '{' and '}', which would end the
// hash tag early.
//
// # Apply and Replay
//
// Apply is one Lua script (EVALSHA, or EVAL when Redis does not have it
// cached), all its keys in KEYS: it checks the owner key (see Fencing),
// then runs DEL of the deleted jobs' keys and ZREM of their members, then
// MSET of the added jobs' keys and ZADD of their members, each in chunks
// of at most a thousand keys (Lua's unpack is limited to about 8000
// values), so a batch of any size is one script. Redis runs a script
// without interleaving, and the append-only file records its writes
// between MULTI and EXEC, so after a crash Redis loads all of a batch or
// none of it.
//
// A batch carrying 1 MiB of payload or more is a MULTI/EXEC instead,
// because a script copies every argument into Lua and back: WATCH of the
// owner key, a GET of it (see Fencing), then the same DEL, ZREM, MSET and
// ZADD between MULTI and EXEC, in one round trip. Redis runs EXEC only if
// the owner key has not changed since the WATCH, and runs it whole, so the
// batch is fenced and atomic as the script is, at the cost of two more
// round trips.
//
// # Fencing
//
// Open increments the namespace's owner key and keeps the generation it
// got. Every Apply's script first compares the owner key with that
// generation (a transaction watches it) and writes nothing when they
// differ, failing with an error
// wrapping store.ErrLocked that is final for that Store. This closes two
// holes. A batch sent by a server that was then killed can still be
// executed by Redis after the next server opened the namespace, replayed
// without it, and reused its Seqs for jobs it acknowledged: unfenced, the
// late batch would overwrite those jobs; fenced, it is refused. And two
// live servers on one namespace would number jobs independently and
// overwrite each other's: fenced, the older one's writes fail and it must
// stop. So run one live server per namespace; a second start on the same
// namespace takes it over. An owner key that is missing (deleted by hand,
// a flushed database) fences every open Store too.
//
// Replay walks the index with ZRANGEBYLEX in pages, each after the last
// member of the page before, and reads each page's values with one MGET.
// It reads only its own namespace: O(own jobs), never KEYS, never a SCAN of
// the database. An index member whose value is missing or does not decode
// is skipped, left as it is, and reported to the store.Corruption handler
// with its key.
//
// Each Apply, each Replay page, and Open's INCR of the owner key run under
// the store's timeout (DefaultTimeout unless Config.Timeout says otherwise), so a dead
// or hung Redis fails an Apply promptly with an error wrapping
// store.ErrUnavailable. The driver does not retry (go-redis's retries are
// turned off): the Committer retries, once for every driver. After Redis
// comes back the client reconnects on its own. go-redis logs failed dials
// through its own package-level logger (redis.SetLogger), standard error by
// default; a store opened through the registry with Options.Logger sends
// those lines to that logger instead, at WARNING.
//
// # Jobs C gearmand left behind
//
// A user switching from C gearmand's -q redis keeps its command line, and
// the jobs C gearmand queued must run. C gearmand 1.1.20
// (libgearman-server/plugins/queue/redis/queue.cc) keeps each background
// job in a hash
//
//	<prefix>-<function>-<unique>          hash, one per job
//	+----------+--------------------------+
//	| data     | the payload, binary-safe |   written with HMSET in this
//	| priority | "0" high, "1" normal,    |   order; deleted with DEL
//	|          | "2" low                  |   when the job is done
//	+----------+--------------------------+
//
// where the prefix is --redis-prefix (default "_gear_") and the unique is
// the client's, empty included (libgearman sends a UUID when the
// caller gives none). It stores nothing else: no when_to_run (it refuses
// epoch jobs with QUEUE_ERROR), no function or unique apart from the key.
// Versions up to 1.1.15 kept a plain string of the data instead, which
// 1.1.20 still reads, at normal priority; so does this store.
//
// Open, once it owns the namespace, moves these jobs into it. It finds
// them with SCAN MATCH <prefix>-* (C gearmand keeps no index, so this is
// the one walk over the keyspace the store makes, once per start, in
// bounded pages; KEYS is never used). The keys of each SCAN page are
// moved in one transaction: WATCH of the owner key and of the page's
// keys, their TYPE and HGETALL, then MULTI, MSET of the new job values
// and ZADD of their members (Seqs after the namespace's largest, the
// page's jobs in priority order), DEL of C's keys, EXEC. Redis runs EXEC
// whole or not at all, and only if none of the watched keys changed, so
// a crash half-way leaves each job either in C's key or in the namespace,
// never both and never neither; two servers taking over at once never
// both take one key (the loser's EXEC fails and it reads the page again);
// and a namespace taken over meanwhile fences the move like an Apply.
// The data comes back whole, NUL bytes included (C gearmand 1.1.20 itself
// cuts it at the first NUL when it replays). Stop C gearmand first: a job
// it still holds in memory would run on both servers.
//
// The key is the only record of function and unique, and both may hold
// '-'. A key with one '-' after the prefix splits one way; one with more
// is split after the function named in Config.ImportFunctions
// (Extra["import-functions"]) it starts with, when exactly one fits, and
// otherwise as C gearmand splits it when it replays, function up to the
// first '-'; such guesses are summed up in one warning, with the
// functions they gave. Keys under the prefix that are not C's jobs (of
// another type, other fields, no second '-') are left alone with a
// warning. A Cluster is not searched: C gearmand cannot use one.
// Config.ImportPrefix (Extra["import-prefix"]) names C's prefix, "-" for
// none; the registry maps --redis-prefix to it. The number of jobs taken
// over is logged through Config.Logger (store.Options.Logger through the
// registry).
//
// # The way back
//
// HandBack (store.HandBack, gearmand --hand-back) moves the namespace's
// jobs the other way, into C gearmand's hashes under the same prefix, a
// batch per WATCHed MULTI/EXEC that writes C's keys and deletes the jobs
// here together, so that a crash half-way leaves each job in one place
// and C gearmand 1.1.20 started with the same command line runs them.
// What C's keys cannot hold is said in HandBack's doc: some uniques are
// replaced by a generated UUID, data with a NUL is read back by C only up
// to the NUL, and jobs C would run wrongly (an epoch job not yet due, a
// function name with '-') stay here.
//
// # Durability
//
// The store is only as durable as the Redis behind it, and Redis by
// default is not durable. Apply returning nil means Redis executed the
// transaction; whether it is on disk depends on Redis's settings:
//
//   - appendonly yes, appendfsync always: the batch was written to the
//     append-only file and fsynced before Redis replied. This is the only
//     setting under which a power loss cannot lose an acknowledged job.
//   - appendonly yes, appendfsync everysec (Redis's default once AOF is on):
//     a crash of redis-server alone loses nothing, but a power loss or
//     kernel crash loses about the last second or two of batches.
//   - appendonly no (Redis's default): only RDB snapshots, if any; a crash
//     loses everything since the last snapshot, and with snapshots off
//     (save "") a restart of Redis loses every job. Persistence reads save
//     too, so that the warning says which.
//
// Replication is asynchronous: a Sentinel or Cluster failover can lose
// batches the old primary acknowledged. And Redis must never evict these
// keys: run it with maxmemory-policy noeviction (the default), or jobs
// vanish without a trace (an evicted value whose index member survives is
// reported as corrupt by Replay). Store.Persistence reads these settings
// with CONFIG GET, and Persistence.Warnings says in words what each unsafe
// one can lose, for the server to log at start.
package redis
