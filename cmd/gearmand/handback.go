package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"gearmand/store"
)

// handBackUsage is --hand-back's --help text.
const handBackUsage = "move the queued background jobs into C gearmand's own table or keys (-q Postgres, -q redis), then exit; start C gearmand with the same command line afterwards"

// handBack is gearmand --hand-back: the way back to C gearmand. It opens
// the store as a start would (which fences off any server of the
// namespace and takes over what C gearmand left), has it move its jobs
// into C gearmand's own layout (store.HandBack), and says what it did.
// It serves nothing. The exit status is 0 when every job went back (or
// the store is C's own table already), 1 when the store cannot hand back,
// fails, or keeps some jobs that C gearmand could not run as they are.
func handBack(o *options, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "gearmand: --hand-back: "+format+"\n", args...)
		return 1
	}
	if o.storeDriver == "" {
		return fail("-q %s keeps no jobs once stopped: there is nothing to hand back", o.queueType)
	}
	lg, err := newLogging(o, stderr)
	if err != nil {
		return fail("%v", err)
	}
	defer lg.close()
	so := o.store
	so.Logger = lg.logger
	ctx := context.Background()
	st, err := store.Open(ctx, o.storeDriver, so)
	if err != nil {
		return fail("--queue-type=%s: %v", o.queueType, err)
	}
	defer st.Close()
	var hb store.HandBack
	switch s := st.(type) {
	case store.HandBack:
		hb = s
	case store.CQueueTable:
		fmt.Fprintf(stdout, "gearmand: -q %s keeps its jobs in C gearmand's own table %s already: C gearmand started with the same command line runs them; nothing needs moving\n",
			o.queueType, s.Table())
		return 0
	default:
		return fail("-q %s keeps its jobs in a layout of its own that C gearmand does not read, and cannot move them into one it does: let this server run them first (SIGUSR1 stops it once no job is left)", o.queueType)
	}
	rep, err := hb.HandBack(ctx)
	if errors.Is(err, store.ErrLocked) {
		return fail("%v (another gearmand took the namespace over meanwhile: stop it, then try again)", err)
	}
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "gearmand: handed %d jobs back to C gearmand's %s (-q %s); start C gearmand with the same command line to run them\n",
		rep.Moved, rep.Where, o.queueType)
	for _, n := range rep.Notes {
		fmt.Fprintf(stdout, "  %d jobs: %s (such as %s)\n", n.Jobs, n.Why, n.Example)
	}
	if rep.Kept > 0 {
		return fail("%d jobs could not go back and stay in our store (see above); to run them, let C gearmand empty its queue, then start this gearmand again without --hand-back", rep.Kept)
	}
	return 0
}
