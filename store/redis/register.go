package redis

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	goredis "github.com/redis/go-redis/v9"

	"gearmand/store"
)

// The driver answers to gearmand's -q redis and its flags, beside our
// --redis-addr for Sentinel and Cluster.
func init() {
	store.Register(store.Driver{
		Name:    "redis",
		Summary: "a Redis server, Sentinel or Cluster, shared by several servers",
		Flags: []store.Flag{
			{Name: "redis-addr", Usage: "Redis address `host:port`, or several comma-separated for Sentinel or Cluster (-q redis; default --redis-server:--redis-port)"},
			{Name: "redis-server", Default: "127.0.0.1", Usage: "gearmand's Redis `host` (-q redis)"},
			{Name: "redis-port", Default: "6379", Usage: "gearmand's Redis `port` (-q redis)"},
			{Name: "redis-password", Usage: "Redis `password` (-q redis)"},
			{Name: "redis-prefix", Usage: "gearmand's key `prefix` (default _gear_): jobs C gearmand left in keys prefix-FUNCTION-UNIQUE are moved into ours at start; also the namespace when --store-namespace is not given (-q redis)"},
			{Name: FlagImportFunctions, Usage: "comma-separated `functions` whose names hold '-', to read C gearmand's keys prefix-FUNCTION-UNIQUE right (-q redis)"},
		},
		Configure: func(v store.Values) (store.Options, error) {
			var o store.Options
			o.DSN = v.String("redis-addr")
			if o.DSN == "" {
				if _, err := v.Port("redis-port"); err != nil {
					return o, err
				}
				o.DSN = net.JoinHostPort(v.String("redis-server"), v.String("redis-port"))
			}
			if pw := v.String("redis-password"); pw != "" {
				o.Extra = map[string]string{"password": pw}
			}
			prefix := ""
			if v.Given("redis-prefix") {
				prefix = v.String("redis-prefix")
			}
			o.Namespace = v.NamespaceOr(prefix)
			if prefix != "" && prefix != DefaultImportPrefix {
				// C gearmand's keys are prefix-FUNCTION-UNIQUE: take them over.
				if o.Extra == nil {
					o.Extra = make(map[string]string)
				}
				o.Extra[ExtraImportPrefix] = prefix
			}
			if fns := v.String(FlagImportFunctions); fns != "" {
				if o.Extra == nil {
					o.Extra = make(map[string]string)
				}
				o.Extra[ExtraImportFunctions] = fns
			}
			return o, nil
		},
		Open: func(ctx context.Context, o store.Options) (store.Store, error) {
			c, err := ConfigFromOptions(o)
			if err != nil {
				return nil, err
			}
			if o.Logger != nil {
				// go-redis logs failed dials through its one package-level
				// logger, to stderr in its own format: the server's log
				// takes them instead, whatever its file and format.
				goredis.SetLogger(clientLog{o.Logger.With("store", "redis")})
			}
			return Open(ctx, c)
		},
	})
}

// FlagImportFunctions is the flag of Config.ImportFunctions.
const FlagImportFunctions = "redis-import-functions"

// clientLog hands go-redis's own log lines (a failed dial while Redis is
// away, a pool that cannot connect) to a logger, at WARNING.
type clientLog struct{ l *slog.Logger }

func (c clientLog) Printf(ctx context.Context, format string, v ...any) {
	c.l.Log(ctx, slog.LevelWarn, "redis client: "+fmt.Sprintf(format, v...))
}

var _ store.Warner = (*Store)(nil)

// Warnings implements store.Warner: what Redis's persistence settings can
// lose, or that they could not be read.
func (s *Store) Warnings(ctx context.Context) []string {
	p, err := s.Persistence(ctx)
	if err != nil {
		return []string{"could not read Redis's persistence settings (managed services often refuse CONFIG GET): check appendonly, appendfsync and maxmemory-policy yourself: " + err.Error()}
	}
	return p.Warnings()
}
