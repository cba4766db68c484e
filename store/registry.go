package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// OpenFunc opens a driver's Store.
type OpenFunc func(ctx context.Context, o Options) (Store, error)

// Driver is a store as the registry knows it: the --queue-type names it
// answers to, its command-line flags in gearmand's spellings, how their
// values become the Options it is opened with, and how it is opened. A
// driver package registers one or more in an init function, so that adding
// a store changes no other package.
type Driver struct {
	// Name is the canonical --queue-type name, spelled as gearmand spells
	// it ("MySQL", "libsqlite3"). Names match case-insensitively.
	Name string
	// Aliases are further --queue-type names, such as a gearmand 0.x
	// spelling ("libdrizzle").
	Aliases []string
	// Summary is a short phrase for --help's list of queue types.
	Summary string
	// Flags are the options that configure only this store.
	Flags []Flag
	// Configure turns the values of Flags into what Open gets. It runs
	// while the command line is parsed (--check-args included), so it
	// checks what it can without connecting; its errors name the flag at
	// fault. nil gives Options{Namespace: v.NamespaceOr(default)}.
	Configure func(v Values) (Options, error)
	// Open opens the store; nil for a refused queue type.
	Open OpenFunc
	// Check, when set, tells whether Open would find what it needs (a
	// directory it may write in, a server that answers and lets it log
	// in), without changing anything and without taking the store from a
	// server that holds it. --check-args runs it. Its errors name the
	// flag at fault.
	Check func(ctx context.Context, o Options) error
	// Refusal, for one of gearmand's queue types that is deliberately not
	// served, says why and what to use instead. The type's flags are still
	// defined (hidden), so that giving one yields this message rather than
	// "unknown flag".
	Refusal string
}

// Names is the driver's name followed by its aliases.
func (d *Driver) Names() []string { return append([]string{d.Name}, d.Aliases...) }

// Flag is one command-line option of a driver.
type Flag struct {
	// Name is the long name without dashes, as gearmand spells it.
	Name string
	// Default is the value when the flag is not given.
	Default string
	// Usage is the --help text. A word in `backquotes` names the value.
	Usage string
	// Switch marks an option that takes no value: --name alone means
	// --name=true.
	Switch bool
}

// Values are the command-line values a Driver's Configure reads: those of
// its own flags (the default when not given) and the settings every store
// may use.
type Values struct {
	// Lookup returns a flag's value and whether it was given.
	Lookup func(name string) (value string, given bool)
	// Namespace is --store-namespace, "" when not given.
	Namespace string
	// DefaultNamespace is what a store that several servers may share
	// uses when no namespace is given: "<hostname>:<port>".
	DefaultNamespace string
}

// String is the value of flag name.
func (v Values) String(name string) string {
	s, _ := v.Lookup(name)
	return s
}

// Given reports whether flag name was given.
func (v Values) Given(name string) bool {
	_, given := v.Lookup(name)
	return given
}

// Port is the value of flag name as a TCP port number.
func (v Values) Port(name string) (int, error) {
	s := v.String(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("--%s: %q is not a port number (1..65535)", name, s)
	}
	return n, nil
}

// Bool is the value of flag name as a switch.
func (v Values) Bool(name string) (bool, error) {
	s := v.String(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("--%s: %q is not true or false", name, s)
	}
	return b, nil
}

// NamespaceOr is Namespace when given, else fallback when not empty, else
// DefaultNamespace.
func (v Values) NamespaceOr(fallback string) string {
	switch {
	case v.Namespace != "":
		return v.Namespace
	case fallback != "":
		return fallback
	}
	return v.DefaultNamespace
}

var registry struct {
	sync.Mutex
	drivers []*Driver
}

// Register makes d available to Open and to the command line under each of
// its names. It panics if a name or a flag is taken by another driver, or
// if d has neither Open nor Refusal: registration happens in init
// functions, where such a mistake must stop the program.
func Register(d Driver) {
	registry.Lock()
	defer registry.Unlock()
	if d.Name == "" || (d.Open == nil) == (d.Refusal == "") {
		panic("store: driver " + d.Name + " needs a name and exactly one of Open and Refusal")
	}
	for _, other := range registry.drivers {
		for _, n := range d.Names() {
			if other.answers(n) {
				panic("store: queue type " + n + " registered twice")
			}
		}
		for _, f := range d.Flags {
			if other.flag(f.Name) != nil {
				panic("store: flag --" + f.Name + " registered by " + other.Name + " and " + d.Name)
			}
		}
	}
	registry.drivers = append(registry.drivers, &d)
}

func (d *Driver) answers(name string) bool {
	return slices.ContainsFunc(d.Names(), func(n string) bool { return strings.EqualFold(n, name) })
}

func (d *Driver) flag(name string) *Flag {
	for i := range d.Flags {
		if d.Flags[i].Name == name {
			return &d.Flags[i]
		}
	}
	return nil
}

// Lookup finds the driver answering to name (case-insensitive).
func Lookup(name string) (*Driver, bool) {
	registry.Lock()
	defer registry.Unlock()
	for _, d := range registry.drivers {
		if d.answers(name) {
			return d, true
		}
	}
	return nil, false
}

// Drivers lists the registered drivers, by name. The caller must not
// change them.
func Drivers() []*Driver {
	registry.Lock()
	defer registry.Unlock()
	ds := slices.Clone(registry.drivers)
	slices.SortFunc(ds, func(a, b *Driver) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return ds
}

// Open opens the driver registered as name (case-insensitive).
func Open(ctx context.Context, name string, o Options) (Store, error) {
	d, ok := Lookup(name)
	switch {
	case !ok:
		var names []string
		for _, d := range Drivers() {
			if d.Open != nil {
				names = append(names, d.Name)
			}
		}
		return nil, fmt.Errorf("store: no driver %q (have %s)", name, strings.Join(names, ", "))
	case d.Open == nil:
		return nil, fmt.Errorf("store: queue type %s is not supported: %s", d.Name, d.Refusal)
	}
	return d.Open(ctx, o)
}

// Warner is an optional capability: a store whose own settings can lose
// acknowledged jobs (a Redis without an fsynced append-only file) says so
// in plain sentences, logged at start whatever the log level. A store
// that cannot tell says that too.
type Warner interface {
	Warnings(ctx context.Context) []string
}

// PathOption is the Configure of an embedded store kept at the path that
// flag names, which may not be empty.
func PathOption(v Values, flag string) (Options, error) {
	p := v.String(flag)
	if p == "" {
		return Options{}, fmt.Errorf("--%s: empty path", flag)
	}
	return Options{Path: p}, nil
}

// CheckDir is a Check for a store kept at path (a file, or a directory
// when dir is true) that flag names: path, if it exists, must be of that
// kind, and the directory that holds it (or path itself, for an existing
// directory) must exist and be writable by this process.
func CheckDir(path string, dir bool, flag string) error {
	where := filepath.Dir(path)
	switch fi, err := os.Stat(path); {
	case err == nil && fi.IsDir() != dir:
		kind := "a file"
		if dir {
			kind = "a directory"
		}
		return fmt.Errorf("--%s: %s is not %s", flag, path, kind)
	case err == nil && dir:
		where = path
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--%s: %w", flag, err)
	}
	fi, err := os.Stat(where)
	if err != nil {
		return fmt.Errorf("--%s: directory %s: %w", flag, where, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("--%s: %s is not a directory", flag, where)
	}
	if err := unix.Access(where, unix.W_OK); err != nil {
		return fmt.Errorf("--%s: cannot write in directory %s: %w", flag, where, err)
	}
	return nil
}
