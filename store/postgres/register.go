package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
			{Name: "libpq-table", Default: DefaultImportTable, Usage: "the `table` C gearmand's -q Postgres kept its jobs in; jobs found there at start are moved into ours, - for none (-q Postgres)"},
		},
		Configure: func(v store.Values) (store.Options, error) {
			dsn := v.String("dsn")
			if dsn == "" {
				dsn = v.String("libpq-conninfo")
			}
			if dsn == "" {
				return store.Options{}, errors.New("--dsn: -q postgres needs a connection string (--dsn or --libpq-conninfo)")
			}
			o := store.Options{DSN: dsn, Namespace: v.NamespaceOr("")}
			if t := v.String("libpq-table"); t != DefaultImportTable {
				o.Extra = map[string]string{ExtraImportTable: t}
			}
			return o, nil
		},
		Check: func(ctx context.Context, o store.Options) error {
			cfg, err := pgx.ParseConfig(o.DSN)
			if err != nil {
				return fmt.Errorf("--dsn (or --libpq-conninfo): %w", err)
			}
			if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > DefaultApplyTimeout {
				cfg.ConnectTimeout = DefaultApplyTimeout
			}
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				return fmt.Errorf("--dsn (or --libpq-conninfo): cannot connect: %w", err)
			}
			defer conn.Close(context.Background())
			if err := conn.Ping(ctx); err != nil {
				return fmt.Errorf("--dsn (or --libpq-conninfo): %w", err)
			}
			return nil
		},
		Open: func(ctx context.Context, o store.Options) (store.Store, error) {
			opts, err := OptionsFromExtra(o)
			if err != nil {
				return nil, err
			}
			return Open(ctx, o.DSN, o.Namespace, opts...)
		},
	})
}
