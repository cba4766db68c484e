package redis

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"

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
		Check: func(ctx context.Context, o store.Options) error {
			c, err := ConfigFromOptions(o)
			if err != nil {
				return err
			}
			routeClientLog(o.Logger)
			client := c.client(DefaultTimeout)
			defer client.Close()
			if err := client.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("--redis-addr (or --redis-server, --redis-port, --redis-password): redis %s does not answer PING: %w", strings.Join(c.Addrs, ","), err)
			}
			return nil
		},
		Open: func(ctx context.Context, o store.Options) (store.Store, error) {
			c, err := ConfigFromOptions(o)
			if err != nil {
				return nil, err
			}
			routeClientLog(o.Logger)
			return Open(ctx, c)
		},
	})
}

// FlagImportFunctions is the flag of Config.ImportFunctions.
const FlagImportFunctions = "redis-import-functions"

// routeClientLog sends go-redis's own log lines, which go through its one
// package-level logger to stderr in its own format, to l instead (nil:
// nowhere; the errors that matter reach the caller anyway).
func routeClientLog(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	goredis.SetLogger(clientLog{l.With("store", "redis")})
}

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
