package mysql

import (
	"context"
	"database/sql"
	"strconv"

	"gearmand/store"
)

// The Extra keys a registered driver's Options carry the Config in.
const (
	extraModule   = "module"
	extraHost     = "host"
	extraPort     = "port"
	extraSocket   = "socket"
	extraUser     = "user"
	extraPassword = "password"
	extraDatabase = "db"
	extraTable    = "table"
)

// The drivers answer to gearmand 1.1's -q MySQL with its --mysql-* flags
// and to 0.x's -q libdrizzle with its --libdrizzle-* flags, defaults as
// gearmand's (see the package doc).
func init() {
	store.Register(store.Driver{
		Name:    "MySQL",
		Summary: "a MySQL or MariaDB table, C gearmand's own",
		Flags: []store.Flag{
			{Name: "mysql-host", Default: DefaultHost, Usage: "MySQL `host`; localhost is the Unix socket " + DefaultSocket + " (-q MySQL)"},
			{Name: "mysql-port", Default: strconv.Itoa(DefaultPort), Usage: "MySQL `port` (-q MySQL)"},
			{Name: "mysql-user", Usage: "MySQL `user` (-q MySQL; default the user the server runs as)"},
			{Name: "mysql-password", Usage: "MySQL `password` (-q MySQL)"},
			{Name: "mysql-db", Usage: "MySQL `database` that holds the queue table (-q MySQL; required)"},
			{Name: "mysql-table", Default: DefaultTable, Usage: "the queue `table` (-q MySQL)"},
		},
		Configure: func(v store.Values) (store.Options, error) {
			return options(v, ModuleMySQL, "mysql-", "")
		},
		Check: check,
		Open:  open,
	})
	store.Register(store.Driver{
		Name:    "libdrizzle",
		Summary: "gearmand 0.x's spelling of MySQL",
		Flags: []store.Flag{
			{Name: "libdrizzle-host", Default: DefaultHost, Usage: "MySQL `host` (-q libdrizzle)"},
			{Name: "libdrizzle-port", Default: strconv.Itoa(DefaultPort), Usage: "MySQL `port` (-q libdrizzle; MySQL's protocol only)"},
			{Name: "libdrizzle-uds", Usage: "Unix `socket` to connect to instead of host and port (-q libdrizzle)"},
			{Name: "libdrizzle-user", Default: DrizzleDefaultUser, Usage: "MySQL `user` (-q libdrizzle)"},
			{Name: "libdrizzle-password", Usage: "MySQL `password` (-q libdrizzle)"},
			{Name: "libdrizzle-db", Default: DrizzleDefaultDatabase, Usage: "`database`, created when missing (-q libdrizzle)"},
			{Name: "libdrizzle-table", Default: DrizzleDefaultTable, Usage: "the queue `table` (-q libdrizzle)"},
			{Name: "libdrizzle-mysql", Switch: true, Usage: "accepted for -q libdrizzle: MySQL's protocol is the only one spoken"},
		},
		Configure: func(v store.Values) (store.Options, error) {
			if _, err := v.Bool("libdrizzle-mysql"); err != nil {
				return store.Options{}, err
			}
			return options(v, ModuleLibdrizzle, "libdrizzle-", v.String("libdrizzle-uds"))
		},
		Check: check,
		Open:  open,
	})
}

// options reads a module's flags, named prefix+"host" and so on.
func options(v store.Values, m Module, prefix, socket string) (store.Options, error) {
	port, err := v.Port(prefix + "port")
	if err != nil {
		return store.Options{}, err
	}
	c := Config{
		Module: m, Host: v.String(prefix + "host"), Port: port, Socket: socket,
		User: v.String(prefix + "user"), Password: v.String(prefix + "password"),
		Database: v.String(prefix + "db"), Table: v.String(prefix + "table"),
	}
	if c.Database == "" {
		return store.Options{}, errNoDatabase(&c)
	}
	c = c.WithDefaults()
	return store.Options{
		Where: c.where(),
		Extra: map[string]string{
			extraModule: strconv.Itoa(int(m)), extraHost: c.Host, extraPort: strconv.Itoa(c.Port),
			extraSocket: c.Socket, extraUser: c.User, extraPassword: c.Password,
			extraDatabase: c.Database, extraTable: c.Table,
		},
	}, nil
}

// open opens the store the Options of options describe.
func open(ctx context.Context, o store.Options) (store.Store, error) {
	return Open(ctx, fromOptions(o))
}

// check logs in to the server the Options of options describe, and into
// its database unless -q libdrizzle would create it, and changes nothing.
func check(ctx context.Context, o store.Options) error {
	cfg := fromOptions(o).WithDefaults()
	database := cfg.Database
	if cfg.Module == ModuleLibdrizzle {
		database = ""
	}
	db := sql.OpenDB(connector(&cfg, database))
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return interpret(err, &cfg)
	}
	return nil
}

// fromOptions is the Config the Options of options describe.
func fromOptions(o store.Options) Config {
	m, _ := strconv.Atoi(o.Extra[extraModule])
	port, _ := strconv.Atoi(o.Extra[extraPort])
	return Config{
		Module: Module(m), Host: o.Extra[extraHost], Port: port, Socket: o.Extra[extraSocket],
		User: o.Extra[extraUser], Password: o.Extra[extraPassword],
		Database: o.Extra[extraDatabase], Table: o.Extra[extraTable], Logger: o.Logger,
	}
}
