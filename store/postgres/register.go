package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gearmand/store"
)

// The driver answers to gearmand's -q Postgres (and 0.x's libpq), with
// gearmand's --libpq-conninfo beside our --dsn.
func init() {
	store.Register(store.Driver{
		Name:    "Postgres",
		Aliases: []string{"libpq"},
		Summary: "a PostgreSQL database, shared by several servers",
		Flags: []store.Flag{
			{Name: "dsn", Usage: "PostgreSQL connection `URL` or key=value string (-q postgres)"},
			{Name: "libpq-conninfo", Usage: "gearmand's spelling of --dsn (-q Postgres)"},
			{Name: "libpq-table", Default: "queue", Usage: "the `table` C gearmand's -q Postgres kept its jobs in; jobs found there at start are taken over (-q Postgres)"},
		},
		Configure: func(v store.Values) (store.Options, error) {
			dsn := v.String("dsn")
			if dsn == "" {
				dsn = v.String("libpq-conninfo")
			}
			if dsn == "" {
				return store.Options{}, errors.New("--dsn: -q postgres needs a connection string (--dsn or --libpq-conninfo)")
			}
			return store.Options{DSN: dsn, Namespace: v.NamespaceOr("")}, nil
		},
		Open: func(ctx context.Context, o store.Options) (store.Store, error) {
			var opts []Option
			if v, ok := o.Extra[ExtraApplyTimeout]; ok {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return nil, fmt.Errorf("postgres: %s %q: want a positive duration such as 5s", ExtraApplyTimeout, v)
				}
				opts = append(opts, ApplyTimeout(d))
			}
			return Open(ctx, o.DSN, o.Namespace, opts...)
		},
	})
}
