// Package refused registers the queue types of C gearmand that this server
// deliberately does not serve, with their flags, so that a command line
// naming one fails at start with the reason and what to do instead, never
// with "unknown flag" and never by starting on another store.
//
//   - libmemcached: memcached is a cache. It evicts keys when memory runs
//     short and keeps nothing across its own restart, so a job it holds
//     can vanish after its submitter was told it was queued: the opposite
//     of this server's promise. gearmand's module also rewrote the whole
//     queue's index key on every job.
//   - libtokyocabinet: Tokyo Cabinet has had no release since 2012, and
//     Debian's gearmand is built without it; its file has no reader in Go.
//
// Both messages say how to carry the jobs already queued over: C gearmand
// keeps serving the old queue until its workers have drained it.
package refused

import "gearmand/store"

// drain is how queued jobs are carried over from a refused queue type.
const drain = " To carry over the jobs already queued there: start this server on another port (or host) " +
	"with the new store, point clients at it, and keep C gearmand running on the old queue until " +
	"`gearadmin --status` shows no jobs left; then stop C gearmand."

func init() {
	store.Register(store.Driver{
		Name: "libmemcached",
		Flags: []store.Flag{
			{Name: "libmemcached-servers", Usage: "memcached servers (refused: see -q libmemcached)"},
			{Name: "libmemcached-prefix", Default: "gear_", Usage: "memcached key prefix (refused: see -q libmemcached)"},
		},
		Refusal: "memcached evicts keys under memory pressure and keeps nothing across its own restart, " +
			"so it cannot keep queued jobs safe; use -q redis (C gearmand's own Redis queue is taken over at start), " +
			"-q Postgres, -q MySQL or the default -q bolt." + drain,
	})
	store.Register(store.Driver{
		Name: "libtokyocabinet",
		Flags: []store.Flag{
			{Name: "libtokyocabinet-file", Usage: "Tokyo Cabinet file (refused: see -q libtokyocabinet)"},
			{Name: "libtokyocabinet-optimize", Switch: true, Usage: "optimize the Tokyo Cabinet file (refused: see -q libtokyocabinet)"},
		},
		Refusal: "Tokyo Cabinet is unmaintained (no release since 2012) and its file cannot be read here; " +
			"use the default -q bolt (one file, embedded) or -q libsqlite3." + drain,
	})
}
