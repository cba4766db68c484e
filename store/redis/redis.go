package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"gearmand/store"
)

// DefaultTimeout bounds each Apply, each Replay page and Open's INCR of
// the owner key when Config.Timeout is zero: long enough for a large batch
// fsynced by a busy Redis, short enough that a dead one fails the Apply
// while its submitters still wait.
const DefaultTimeout = 5 * time.Second

// Replay reads the index in pages of at most this many members, fewer
// while the values of a page come to more than replayPageBytes.
const (
	replayPageMax   = 1024
	replayPageMin   = 16
	replayPageBytes = 16 << 20
)

// seqDigits is the width of a Seq in keys and index members: enough for
// the largest uint64, 18446744073709551615.
const seqDigits = 20

// Config says which Redis to use and which namespace in it.
type Config struct {
	// Addrs is one "host:port" of a single node, the seed nodes of a
	// Cluster (more than one address), or the Sentinels when MasterName is
	// set. Empty means 127.0.0.1:6379.
	Addrs []string
	// MasterName is the Sentinel name of the primary; empty for a single
	// node or a Cluster.
	MasterName string
	// Cluster makes a single address a Cluster's (a managed service's
	// configuration endpoint); more than one address always is.
	Cluster  bool
	Username string
	Password string
	// DB is the database number of a single node or a Sentinel primary;
	// Cluster has only database 0.
	DB int
	// Namespace separates the jobs of servers sharing one Redis. Required;
	// it may not contain '{' or '}'.
	Namespace string
	// Timeout bounds each Apply, each Replay page and the INCR of Open;
	// zero means DefaultTimeout.
	Timeout time.Duration
	// TLS, when set, is used for every connection (a rediss:// DSN sets
	// it).
	TLS *tls.Config
	// ImportPrefix is C gearmand's --redis-prefix: Open moves the jobs C
	// gearmand left in keys ImportPrefix-FUNCTION-UNIQUE into the
	// namespace (see the package doc). Empty means DefaultImportPrefix;
	// "-" moves nothing.
	ImportPrefix string
	// ImportFunctions are function names that may hold '-': a C gearmand
	// key that can be split into function and unique in several places
	// is split after the one of these it starts with.
	ImportFunctions []string
	// Logger is where Open logs what it took over from C gearmand or
	// left alone; nil means slog.Default().
	Logger *slog.Logger
}

// ConfigFromOptions reads a Config from the store registry's options:
// DSN is "host:port", a comma-separated list of them, or a redis:// or
// rediss:// (TLS) URL of a single node, whose user, password and database
// are used;
// Namespace is required; Extra may hold "username", "password", "db",
// "master" (the Sentinel name of the primary), "cluster" ("true" when a
// single address is a Cluster's) and "timeout" (a Go duration), which
// override what the URL says, and ExtraImportPrefix and
// ExtraImportFunctions (comma-separated); Logger is Config.Logger.
func ConfigFromOptions(o store.Options) (Config, error) {
	c := Config{Namespace: o.Namespace, Logger: o.Logger}
	dsn := strings.TrimSpace(o.DSN)
	switch {
	case strings.HasPrefix(dsn, "redis://"), strings.HasPrefix(dsn, "rediss://"):
		u, err := goredis.ParseURL(dsn)
		if err != nil {
			return Config{}, fmt.Errorf("redis: DSN %q: %w", dsn, err)
		}
		c.Addrs = []string{u.Addr}
		c.TLS = u.TLSConfig
		c.Username, c.Password, c.DB = u.Username, u.Password, u.DB
	case dsn != "":
		for a := range strings.SplitSeq(dsn, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.Addrs = append(c.Addrs, a)
			}
		}
	}
	for k, v := range o.Extra {
		switch k {
		case "username":
			c.Username = v
		case "password":
			c.Password = v
		case "master":
			c.MasterName = v
		case "cluster":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("redis: cluster %q: want true or false", v)
			}
			c.Cluster = b
		case "db":
			db, err := strconv.Atoi(v)
			if err != nil || db < 0 {
				return Config{}, fmt.Errorf("redis: db %q: want a database number", v)
			}
			c.DB = db
		case ExtraImportPrefix:
			c.ImportPrefix = v
		case ExtraImportFunctions:
			c.ImportFunctions = nil
			for f := range strings.SplitSeq(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					c.ImportFunctions = append(c.ImportFunctions, f)
				}
			}
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return Config{}, fmt.Errorf("redis: timeout %q: want a positive duration such as 5s", v)
			}
			c.Timeout = d
		}
	}
	return c, nil
}

// client is a go-redis client for c, every operation bounded by timeout.
func (c *Config) client(timeout time.Duration) goredis.UniversalClient {
	return goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs:         c.Addrs,
		MasterName:    c.MasterName,
		IsClusterMode: c.Cluster,
		TLSConfig:     c.TLS,
		Username:      c.Username,
		Password:      c.Password,
		DB:            c.DB,
		// The Committer retries; a retry here would only hide an outage
		// for longer than the timeout promises.
		MaxRetries:            -1,
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	})
}

// Store keeps background jobs in one namespace of a Redis. It is safe for
// concurrent use.
type Store struct {
	client   goredis.UniversalClient
	cfg      Config
	timeout  time.Duration
	seqsKey  string // gearmand:{ns}:seqs
	jobKey   string // gearmand:{ns}:job: , followed by the Seq
	ownerKey string // gearmand:{ns}:owner
	// gen is the owner generation Open took: Apply writes only while the
	// owner key still holds it.
	gen    int64
	closed atomic.Bool
	// fenced is set once an Apply found the namespace taken over; every
	// later Apply returns it.
	fenced atomic.Pointer[error]

	// The store.Corruption capability. The key reported is the Redis key
	// of a job whose value is missing or undecodable, or the index key and
	// the member when the member is not a Seq.
	store.CorruptReporter
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Corruption = (*Store)(nil)
)

// Open connects to the Redis c names and takes ownership of the namespace:
// it increments the namespace's owner key within the timeout and keeps the
// new generation, so that any Store opened on the namespace before stops
// writing (its Apply fails with store.ErrLocked). A Redis that does not
// answer gives an error wrapping store.ErrUnavailable. Then, unless the
// client is a Cluster's, it moves into the namespace the jobs C gearmand
// left under c.ImportPrefix (see the package doc, "Jobs C gearmand left
// behind"). Open writes nothing else.
func Open(ctx context.Context, c Config) (*Store, error) {
	if c.Namespace == "" {
		return nil, errors.New("redis: no namespace given (servers sharing a Redis need one each)")
	}
	if strings.ContainsAny(c.Namespace, "{}") {
		return nil, fmt.Errorf("redis: namespace %q contains '{' or '}', which would break its hash tag", c.Namespace)
	}
	if len(c.Addrs) == 0 {
		c.Addrs = []string{"127.0.0.1:6379"}
	}
	c.Addrs = append([]string(nil), c.Addrs...)
	if c.ImportPrefix == "" {
		c.ImportPrefix = DefaultImportPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	client := c.client(timeout)
	s := &Store{
		client:   client,
		cfg:      c,
		timeout:  timeout,
		seqsKey:  "gearmand:{" + c.Namespace + "}:seqs",
		jobKey:   "gearmand:{" + c.Namespace + "}:job:",
		ownerKey: "gearmand:{" + c.Namespace + "}:owner",
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	gen, err := client.Incr(pctx, s.ownerKey).Result()
	if err != nil {
		client.Close()
		return nil, s.interpretError(ctx, err)
	}
	s.gen = gen
	if err := s.importCQueue(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return s, nil
}

// Config is what the store was opened with (Addrs defaulted).
func (s *Store) Config() Config {
	c := s.cfg
	c.Addrs = append([]string(nil), c.Addrs...)
	return c
}

// applyChunk is how many keys or members the apply script hands one
// Redis command: Lua's unpack is limited to about 8000 values.
const applyChunk = 1000

// fencePrefix begins the error reply of the apply script when the owner
// key no longer holds the Store's generation.
const fencePrefix = "GEARMAND_FENCED"

// applyScript is one Apply, atomic because Redis runs a script without
// interleaving and logs its effects as one MULTI/EXEC. It writes nothing
// unless the owner key still holds this Store's generation.
//
//	KEYS: owner key, index key, the deleted jobs' keys, the added jobs' keys
//	ARGV: generation, number of deletes, number of adds, the deleted
//	      members, the added members, the added values
var applyScript = goredis.NewScript(`
local owner = redis.call('GET', KEYS[1])
if owner ~= ARGV[1] then
  return redis.error_reply('` + fencePrefix + ` owner generation is now ' .. tostring(owner) .. ', not ' .. ARGV[1])
end
local ndel = tonumber(ARGV[2])
local nadd = tonumber(ARGV[3])
local step = ` + strconv.Itoa(applyChunk) + `
local i = 1
while i <= ndel do
  local j = math.min(i + step - 1, ndel)
  redis.call('DEL', unpack(KEYS, 2 + i, 2 + j))
  redis.call('ZREM', KEYS[2], unpack(ARGV, 3 + i, 3 + j))
  i = j + 1
end
i = 1
while i <= nadd do
  local j = math.min(i + step - 1, nadd)
  local kv, zs = {}, {}
  for k = i, j do
    kv[#kv + 1] = KEYS[2 + ndel + k]
    kv[#kv + 1] = ARGV[3 + ndel + nadd + k]
    zs[#zs + 1] = 0
    zs[#zs + 1] = ARGV[3 + ndel + k]
  end
  redis.call('MSET', unpack(kv))
  redis.call('ZADD', KEYS[2], unpack(zs))
  i = j + 1
end
return ndel + nadd
`)

// Apply makes b's adds and deletes one Lua script (EVALSHA, EVAL when
// Redis does not have it cached), or from watchMinBytes of payload one
// watched MULTI/EXEC, run only while the namespace's owner key still
// holds the generation Open took. It returns nil once Redis has
// executed it (see the package doc for what that means on disk), fails
// with store.ErrUnavailable if Redis does not answer within the timeout,
// and with store.ErrLocked, for good, once another Store opened the
// namespace.
func (s *Store) Apply(ctx context.Context, b store.Batch) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := s.fenced.Load(); err != nil {
		return *err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if dataBytes(b.Adds) >= watchMinBytes {
		return s.interpretError(ctx, s.applyWatched(tctx, b))
	}
	// Encoded before the call: go-redis writes the arguments out while
	// Run runs and keeps nothing afterwards, so the caller may reuse the
	// batch once Apply returns.
	nd, na := len(b.Deletes), len(b.Adds)
	keys := make([]string, 2, 2+nd+na)
	keys[0], keys[1] = s.ownerKey, s.seqsKey
	args := make([]any, 3, 3+nd+2*na)
	args[0], args[1], args[2] = s.gen, nd, na
	for _, seq := range b.Deletes {
		m := member(seq)
		keys = append(keys, s.jobKey+m)
		args = append(args, m)
	}
	if na > 0 {
		// All values in one allocation: 40 bytes cover the header and
		// every varint of a record.
		size := 0
		for i := range b.Adds {
			r := &b.Adds[i]
			size += 40 + len(r.Handle) + len(r.Function) + len(r.Unique) + len(r.Reducer) + len(r.Data)
		}
		for i := range b.Adds {
			m := member(b.Adds[i].Seq)
			keys = append(keys, s.jobKey+m)
			args = append(args, m)
		}
		buf := make([]byte, 0, size)
		for i := range b.Adds {
			start := len(buf)
			buf = store.AppendValue(buf, &b.Adds[i])
			args = append(args, buf[start:len(buf):len(buf)])
		}
	}
	err := applyScript.Run(tctx, s.client, keys, args...).Err()
	return s.interpretError(ctx, err)
}

// watchMinBytes is the payload size of a batch from which Apply uses a
// watched MULTI/EXEC instead of the script. A script copies each argument
// into a Lua string and each Lua string again into Redis, where EXEC
// stores the arguments Redis read as they are. gearbench large (1 MiB
// jobs, 4x16, 300 jobs, four alternating rounds) did 263-280 jobs/s with
// the script and 439-504 with MULTI/EXEC (C gearmand's redis queue
// 405-499). Below it the script's single round trip wins.
const watchMinBytes = 1 << 20

// dataBytes is the sum of the adds' payload sizes.
func dataBytes(adds []store.Record) int {
	n := 0
	for i := range adds {
		n += len(adds[i].Data)
	}
	return n
}

// applyWatched is Apply as a transaction with optimistic fencing: WATCH the
// owner key, read it, and queue the batch's writes in MULTI/EXEC, which
// Redis runs only if the owner key is unchanged since the WATCH, and
// atomically, as it does the script. Four round trips (WATCH, GET,
// MULTI...EXEC, UNWATCH) instead of one.
func (s *Store) applyWatched(ctx context.Context, b store.Batch) error {
	return s.client.Watch(ctx, func(tx *goredis.Tx) error {
		if err := s.checkOwner(ctx, tx); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for chunk := range slices.Chunk(b.Deletes, applyChunk) {
				keys := make([]string, len(chunk))
				members := make([]any, len(chunk))
				for i, seq := range chunk {
					m := member(seq)
					keys[i], members[i] = s.jobKey+m, m
				}
				p.Del(ctx, keys...)
				p.ZRem(ctx, s.seqsKey, members...)
			}
			for chunk := range slices.Chunk(b.Adds, applyChunk) {
				kv := make([]any, 0, 2*len(chunk))
				zs := make([]goredis.Z, len(chunk))
				for i := range chunk {
					m := member(chunk[i].Seq)
					kv = append(kv, s.jobKey+m, store.AppendValue(nil, &chunk[i]))
					zs[i] = goredis.Z{Member: m}
				}
				p.MSet(ctx, kv...)
				p.ZAdd(ctx, s.seqsKey, zs...)
			}
			return nil
		})
		if errors.Is(err, goredis.TxFailedErr) {
			// Only Open changes the owner key: a new owner took over
			// between the WATCH and the EXEC.
			return fenceError("owner key changed during the transaction")
		}
		return err
	}, s.ownerKey)
}

// fenceError is the error a fenced Apply gets, in the form of the script's
// reply, for interpretError.
type fenceError string

func (e fenceError) Error() string { return fencePrefix + " " + string(e) }

// member is the index member of seq, also the suffix of its job key.
func member(seq uint64) string {
	var b [seqDigits]byte
	for i := seqDigits - 1; i >= 0; i-- {
		b[i] = '0' + byte(seq%10)
		seq /= 10
	}
	return string(b[:])
}

// parseMember is the inverse of member; anything else is an error.
func parseMember(m string) (uint64, error) {
	if len(m) != seqDigits {
		return 0, fmt.Errorf("%w: index member %q is not %d digits", store.ErrCorrupt, m, seqDigits)
	}
	seq, err := strconv.ParseUint(m, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: index member %q is not a Seq", store.ErrCorrupt, m)
	}
	return seq, nil
}

// Replay calls fn for every job of the namespace in ascending Seq order.
// No page read is in flight while fn runs, so fn may call Apply; but
// Replay is not a snapshot, and jobs added or deleted during it may or may
// not be seen.
func (s *Store) Replay(ctx context.Context, fn func(store.Record) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	from := "-"
	page := replayPageMin * 4 // grows while values are small
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		members, values, err := s.readPage(ctx, from, page)
		if err != nil {
			return err
		}
		size := 0
		for i, m := range members {
			if err := ctx.Err(); err != nil {
				return err
			}
			seq, err := parseMember(m)
			if err != nil {
				s.ReportCorrupt(fmt.Sprintf("%s member %q", s.seqsKey, m), err)
				continue
			}
			key := s.jobKey + m
			v, ok := values[i].(string)
			if !ok {
				s.ReportCorrupt(key, fmt.Errorf("%w: record %d is in the index but its value %s is missing", store.ErrCorrupt, seq, key))
				continue
			}
			size += len(v)
			rec, err := store.DecodeRecord(store.AppendKey(nil, seq), []byte(v))
			if err != nil {
				s.ReportCorrupt(key, err)
				continue
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(members) < page {
			return nil
		}
		from = "(" + members[len(members)-1]
		// Keep a page's values near replayPageBytes, so that a namespace
		// of large jobs does not make one huge MGET reply.
		switch {
		case size > replayPageBytes && page > replayPageMin:
			page /= 2
		case size < replayPageBytes/4 && page < replayPageMax:
			page *= 2
		}
	}
}

// readPage reads up to n index members after from (a ZRANGEBYLEX bound)
// and their values, under one timeout.
func (s *Store) readPage(ctx context.Context, from string, n int) ([]string, []any, error) {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	members, err := s.client.ZRangeByLex(tctx, s.seqsKey, &goredis.ZRangeBy{
		Min: from, Max: "+", Count: int64(n),
	}).Result()
	if err != nil {
		return nil, nil, s.interpretError(ctx, err)
	}
	if len(members) == 0 {
		return nil, nil, nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = s.jobKey + m
	}
	values, err := s.client.MGet(tctx, keys...).Result()
	if err != nil {
		return nil, nil, s.interpretError(ctx, err)
	}
	if len(values) != len(keys) {
		return nil, nil, fmt.Errorf("redis: MGET of %d keys gave %d values", len(keys), len(values))
	}
	return members, values, nil
}

// Persistence is what a Redis says of its own durability settings (see
// the package doc for what each means).
type Persistence struct {
	AppendOnly      bool   // appendonly
	AppendFsync     string // appendfsync: "always", "everysec" or "no"
	MaxmemoryPolicy string // maxmemory-policy
	Snapshots       bool   // save is not "": RDB snapshots are taken
}

// Warnings says in plain sentences how p can lose acknowledged jobs; none
// when appendonly is on with appendfsync always and nothing is evicted.
// Replication is asynchronous whatever p says: a failover can lose jobs.
func (p Persistence) Warnings() []string {
	var w []string
	switch {
	case !p.AppendOnly && !p.Snapshots:
		w = append(w, `Redis has appendonly off and no snapshots (save ""): a restart or crash of Redis loses every job`)
	case !p.AppendOnly:
		w = append(w, "Redis has appendonly off: a crash of Redis loses every job since its last snapshot")
	case p.AppendFsync != "always":
		w = append(w, fmt.Sprintf("Redis has appendfsync %s, not always: a power loss or OS crash can lose the last second or two of acknowledged jobs", p.AppendFsync))
	}
	if p.MaxmemoryPolicy != "noeviction" {
		w = append(w, fmt.Sprintf("Redis has maxmemory-policy %s, not noeviction: it may evict jobs when memory runs short", p.MaxmemoryPolicy))
	}
	return w
}

// Persistence asks Redis for its durability settings with CONFIG GET, so
// that the server can warn at start. Managed Redis services often refuse
// CONFIG; then it returns an error and the settings are unknown. In a
// Cluster the answer is one node's.
func (s *Store) Persistence(ctx context.Context) (Persistence, error) {
	if s.closed.Load() {
		return Persistence{}, store.ErrClosed
	}
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	names := [...]string{"appendonly", "appendfsync", "maxmemory-policy", "save"}
	var cmds [len(names)]*goredis.MapStringStringCmd
	_, err := s.client.Pipelined(tctx, func(p goredis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.ConfigGet(tctx, n)
		}
		return nil
	})
	if err != nil {
		return Persistence{}, s.interpretError(ctx, err)
	}
	var got [len(names)]string
	for i, n := range names {
		v, ok := cmds[i].Val()[n]
		if !ok {
			return Persistence{}, fmt.Errorf("redis %s: CONFIG GET %s gave no value", strings.Join(s.cfg.Addrs, ","), n)
		}
		got[i] = v
	}
	return Persistence{AppendOnly: got[0] == "yes", AppendFsync: got[1], MaxmemoryPolicy: got[2], Snapshots: got[3] != ""}, nil
}

// Close closes the client's connections. Later calls of any method return
// store.ErrClosed, except Close, which returns nil. The jobs stay in Redis.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.interpretError(context.Background(), s.client.Close())
}

// interpretError maps go-redis's, the network's and Redis's errors to the
// store sentinels, keeping the native error in the chain. ctx is the
// caller's context, before the store's timeout was added to it: if it
// ended, the caller gave up and its error is returned; if only the timeout
// ended, Redis is too slow or gone. It is the only place that knows
// go-redis's errors.
func (s *Store) interpretError(ctx context.Context, err error) error {
	where := fmt.Sprintf("redis %s namespace %q", strings.Join(s.cfg.Addrs, ","), s.cfg.Namespace)
	var errno syscall.Errno
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case store.IsSentinel(err):
		return err
	case goredis.HasErrorPrefix(err, fencePrefix), errors.As(err, new(fenceError)):
		// Final: the namespace has a newer owner, and this Store must
		// never write to it again.
		fenced := store.Wrap(fmt.Sprintf("%s: taken over by another gearmand (this store opened it as owner generation %d, %s): this server must stop; run one live server per namespace",
			where, s.gen, strings.TrimPrefix(err.Error(), fencePrefix+" ")), store.ErrLocked, err)
		s.fenced.CompareAndSwap(nil, &fenced)
		return *s.fenced.Load()
	case errors.Is(err, goredis.ErrClosed), s.closed.Load():
		// An Apply racing Close sees its connection closed under it.
		return store.Wrap(where+": "+err.Error(), store.ErrClosed, err)
	case ctx.Err() != nil:
		return store.Wrap(where+": "+err.Error(), ctx.Err(), err)
	case errors.Is(err, context.DeadlineExceeded):
		return store.Wrap(fmt.Sprintf("%s: no answer within %v: %v", where, s.timeout, err), store.ErrUnavailable, err)
	case errors.As(err, &netErr), errors.As(err, &errno),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrPoolExhausted),
		// Redis is up but cannot take writes now: still loading its
		// data, a replica after a failover, a Cluster or Sentinel
		// without a primary, too many clients, or out of memory until
		// jobs are deleted.
		goredis.IsLoadingError(err), goredis.IsReadOnlyError(err),
		goredis.IsClusterDownError(err), goredis.IsTryAgainError(err),
		goredis.IsMasterDownError(err), goredis.IsMaxClientsError(err),
		goredis.IsOOMError(err):
		return store.Wrap(where+": "+err.Error(), store.ErrUnavailable, err)
	case goredis.HasErrorPrefix(err, "Protocol error: invalid bulk length"),
		goredis.HasErrorPrefix(err, "string exceeds maximum allowed size"):
		return store.Wrap(where+": "+err.Error(), store.ErrTooLarge, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}
