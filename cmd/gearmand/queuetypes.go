package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// A queueType is a job store that --queue-type can select.
//
// To add a store: give its entry supported: true, define its options in
// addQueueTypeFlags (visible, bound to real variables) and open it in run.
// gearmand's plugins that nothing here replaces yet stay listed with
// supported false, so that selecting one, or passing one of its options,
// fails with "queue type X is not supported" rather than "unknown flag".
type queueType struct {
	name      string // as gearmand spells it; matched case-insensitively
	driver    string // the store driver's registered name; "" for builtin
	supported bool
	flags     []queueFlag // options that configure only this store
}

// A queueFlag is one store option. A noValue option is a switch (--x alone means --x=true).
type queueFlag struct {
	name    string
	noValue bool
}

var queueTypes = []queueType{
	{name: "bolt", driver: "bolt", supported: true, flags: []queueFlag{{name: "bolt-file"}}},      // the default: one file, embedded
	{name: "pebble", driver: "pebble", supported: true, flags: []queueFlag{{name: "pebble-dir"}}}, // embedded LSM store in a directory
	{name: "builtin", supported: true}, // memory only, like gearmand's default
	{name: "libsqlite3", flags: []queueFlag{{name: "libsqlite3-db"}, {name: "libsqlite3-table"}, {name: "store-queue-on-shutdown", noValue: true}}},
	{name: "Postgres", driver: "postgres", supported: true, flags: []queueFlag{{name: "dsn"}, {name: "libpq-conninfo"}, {name: "libpq-table"}}},
	{name: "MySQL", flags: []queueFlag{{name: "mysql-host"}, {name: "mysql-port"}, {name: "mysql-user"}, {name: "mysql-password"}, {name: "mysql-db"}, {name: "mysql-table"}}},
	{name: "redis", driver: "redis", supported: true, flags: []queueFlag{{name: "redis-addr"}, {name: "redis-server"}, {name: "redis-port"}, {name: "redis-password"}, {name: "redis-prefix"}}},
	{name: "libmemcached", flags: []queueFlag{{name: "libmemcached-servers"}, {name: "libmemcached-prefix"}}},
	{name: "libtokyocabinet", flags: []queueFlag{{name: "libtokyocabinet-file"}, {name: "libtokyocabinet-optimize", noValue: true}}},
}

// addQueueTypeFlags defines the options of the stores that are not
// supported, hidden, only so that selectQueueType can reject them by name.
func addQueueTypeFlags(fs *pflag.FlagSet) {
	for _, qt := range queueTypes {
		if qt.supported {
			continue
		}
		for _, f := range qt.flags {
			fs.String(f.name, "", "")
			if f.noValue {
				fs.Lookup(f.name).NoOptDefVal = "true"
			}
			fs.MarkHidden(f.name)
		}
	}
}

// queueTypeNames lists the supported stores for --help.
func queueTypeNames() string {
	var names []string
	for _, qt := range queueTypes {
		if qt.supported {
			names = append(names, qt.name)
		}
	}
	return strings.Join(names, ", ")
}

// selectQueueType finds the store named by --queue-type and checks that no
// other store's options were given.
func selectQueueType(name string, fs *pflag.FlagSet) (*queueType, error) {
	var selected *queueType
	for i := range queueTypes {
		if strings.EqualFold(queueTypes[i].name, name) {
			selected = &queueTypes[i]
		}
	}
	if selected == nil {
		return nil, fmt.Errorf("--queue-type: unknown queue type %q (supported: %s)", name, queueTypeNames())
	}
	if !selected.supported {
		return nil, fmt.Errorf("--queue-type: queue type %s is not supported (supported: %s)", selected.name, queueTypeNames())
	}
	for _, qt := range queueTypes {
		if qt.name == selected.name {
			continue
		}
		for _, f := range qt.flags {
			if !fs.Changed(f.name) {
				continue
			}
			if !qt.supported {
				return nil, fmt.Errorf("--%s: queue type %s is not supported (supported: %s)", f.name, qt.name, queueTypeNames())
			}
			return nil, fmt.Errorf("--%s is an option of --queue-type=%s, not %s", f.name, qt.name, selected.name)
		}
	}
	return selected, nil
}
