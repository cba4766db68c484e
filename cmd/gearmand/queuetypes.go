package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"gearmand/store"
)

// builtinQueue is --queue-type builtin: jobs in memory only, no store.
const builtinQueue = "builtin"

// The stores --queue-type selects are the drivers registered with package
// store (imported in drivers.go); each brings its flags, in gearmand's
// spellings. This file knows none of them by name.

// addStoreFlags defines every registered driver's flags. Those of queue
// types that are refused are hidden: they exist only so that giving one
// says why the type is refused.
func addStoreFlags(fs *pflag.FlagSet) {
	for _, d := range store.Drivers() {
		for _, f := range d.Flags {
			if f.Switch {
				fs.Bool(f.Name, f.Default == "true", f.Usage)
			} else {
				fs.String(f.Name, f.Default, f.Usage)
			}
			if d.Refusal != "" {
				fs.MarkHidden(f.Name)
			}
		}
	}
}

// queueTypeNames lists the queue types served, for --help and errors.
func queueTypeNames() string {
	var names []string
	for _, d := range store.Drivers() {
		if d.Refusal == "" {
			names = append(names, d.Name)
		}
	}
	return strings.Join(append(names, builtinQueue), ", ")
}

// selectQueueType finds the driver named by --queue-type (nil for
// builtin) and checks that no other store's flags were given. An empty
// name is the default, as gearmand takes it (its own tests pass
// --queue-type= to mean that).
func selectQueueType(name string, fs *pflag.FlagSet) (*store.Driver, error) {
	if name == "" {
		name = defaultQueueType
	}
	selected := builtinQueue
	var d *store.Driver
	if !strings.EqualFold(name, builtinQueue) {
		var ok bool
		if d, ok = store.Lookup(name); !ok {
			return nil, fmt.Errorf("--queue-type: unknown queue type %q (supported: %s)", name, queueTypeNames())
		}
		if d.Refusal != "" {
			return nil, fmt.Errorf("--queue-type: queue type %s is not supported: %s", d.Name, d.Refusal)
		}
		selected = d.Name
	}
	for _, other := range store.Drivers() {
		if other == d {
			continue
		}
		for _, f := range other.Flags {
			if !fs.Changed(f.Name) {
				continue
			}
			if other.Refusal != "" {
				return nil, fmt.Errorf("--%s: queue type %s is not supported: %s", f.Name, other.Name, other.Refusal)
			}
			return nil, fmt.Errorf("--%s is an option of --queue-type=%s, not %s", f.Name, other.Name, selected)
		}
	}
	return d, nil
}

// storeOptions gathers what driver d is opened with from its flags.
// namespace is --store-namespace ("" when not given); port is the
// server's, part of the default namespace.
func storeOptions(d *store.Driver, fs *pflag.FlagSet, namespace string, port int) (store.Options, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	v := store.Values{
		Lookup: func(name string) (string, bool) {
			f := fs.Lookup(name)
			if f == nil {
				return "", false
			}
			return f.Value.String(), f.Changed
		},
		Namespace:        namespace,
		DefaultNamespace: host + ":" + strconv.Itoa(port),
	}
	if d.Configure == nil {
		return store.Options{Namespace: v.NamespaceOr("")}, nil
	}
	return d.Configure(v)
}
