package sqlite

import (
	"context"
	"errors"

	"gearmand/store"
	"gearmand/store/internal/queuetable"
)

// extraTable is the store.Options.Extra key of the table.
const extraTable = "table"

// The driver answers to gearmand's -q libsqlite3 and its flags.
func init() {
	store.Register(store.Driver{
		Name:    "libsqlite3",
		Aliases: []string{"sqlite"},
		Summary: "an SQLite file, in C gearmand's own table",
		Flags: []store.Flag{
			{Name: FlagDB, Usage: "the SQLite `file` (-q libsqlite3; required, created when absent)"},
			{Name: FlagTable, Default: queuetable.DefaultTable, Usage: "the `table` in it (-q libsqlite3)"},
			{Name: "store-queue-on-shutdown", Switch: true, Usage: "accepted for gearmand's -q libsqlite3: every job is stored before it is acknowledged"},
		},
		Configure: func(v store.Values) (store.Options, error) {
			if v.String(FlagDB) == "" {
				return store.Options{}, errors.New("--" + FlagDB + ": -q libsqlite3 needs the database file")
			}
			if v.String(FlagTable) == "" {
				return store.Options{}, errors.New("--" + FlagTable + ": empty table name")
			}
			if _, err := v.Bool("store-queue-on-shutdown"); err != nil {
				return store.Options{}, err
			}
			return store.Options{Path: v.String(FlagDB), Extra: map[string]string{extraTable: v.String(FlagTable)}}, nil
		},
		Check: func(_ context.Context, o store.Options) error {
			return store.CheckDir(o.Path, false, FlagDB)
		},
		Open: func(ctx context.Context, o store.Options) (store.Store, error) {
			return Open(ctx, o.Path, Table(o.Extra[extraTable]), Logger(o.Logger))
		},
	})
}
