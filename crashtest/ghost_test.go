package crashtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gearmand/client"
	"gearmand/store/postgres/pgtest"
)

// TestPostgresBatchOutlivesKill shows how a batch a killed server sent to
// PostgreSQL can commit after the next server replayed, and then replace
// a job that server acknowledged and stored.
//
// Apply sends a small batch (DELETE of finished jobs, INSERT ... ON
// CONFLICT (namespace, seq) DO UPDATE of new ones) as one pipelined
// implicit transaction. PostgreSQL runs it to the end whether or not the
// client is still there. The next life numbers its jobs from the largest
// Seq it replayed, so it reuses the Seq of the dead life's unwritten add;
// when the dead batch commits later, its upsert overwrites the live job.
//
// Here a row lock held by the test delays the dead batch, as a slow fsync
// or a lock wait would: life 1 acknowledges "ghost" (write-behind) in the
// same batch as the delete of a finished job whose row the test holds;
// life 1 is killed; life 2 replays, acknowledges "x", which gets the
// ghost's Seq, and writes it; the test lets go of the row; the dead batch
// commits and the stored "x" is gone.
//
// The postgres store fences: each Open takes the namespace over one
// generation on, waiting for the writes past the fence, and the dead
// batch is aborted once PostgreSQL sees its client gone
// (client_connection_check_interval), so life 2 replays without it and x
// stays.
func TestPostgresBatchOutlivesKill(t *testing.T) {
	const (
		doneFn  = "crashtest-done"  // the job that finishes in life 1
		ghostFn = "crashtest-ghost" // no worker: its jobs stay queued
	)
	dsn := pgtest.Server(t).NewDatabase(t)
	ns := namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A long flush interval, so that the delete and the ghost's add go
	// out in one batch.
	g := newGearmand(t, "-q", "postgres", "--dsn", dsn, "--store-namespace", ns,
		"--store-mode", "write-behind", "--flush-interval", "300ms")

	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	// stored returns the unique stored under seq, or "" when none is.
	stored := func(seq uint64) string {
		var u []byte
		err := db.QueryRow(ctx, `SELECT unique_key FROM gearmand_jobs WHERE namespace = $1 AND seq = $2`, ns, int64(seq)).Scan(&u)
		if err == pgx.ErrNoRows {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(u)
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 10s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	submit := func(l *life, fn, unique string) uint64 {
		t.Helper()
		c, err := client.Dial(ctx, l.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h, err := c.SubmitBackground(ctx, fn, unique, payload(unique), client.Normal)
		if err != nil {
			t.Fatalf("life %d: submit %s: %v", l.n, unique, err)
		}
		seq, ok := handleSeq(h)
		if !ok {
			t.Fatalf("handle %q ends in no sequence number", h)
		}
		return seq
	}

	l := g.start()
	doneSeq := submit(l, doneFn, "done")
	poll("flush of the first job", func() bool { return stored(doneSeq) == "done" })

	// Hold the finished job's row: the dead batch's DELETE will wait on it.
	lockConn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lockConn.Close(context.Background())
	lockTx, err := lockConn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lockTx.Rollback(context.Background())
	if _, err := lockTx.Exec(ctx, `SELECT 1 FROM gearmand_jobs WHERE namespace = $1 AND seq = $2 FOR UPDATE`, ns, int64(doneSeq)); err != nil {
		t.Fatal(err)
	}

	w, err := client.NewWorker(ctx, l.addr)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { wcancel(); w.Close(); wg.Wait() }()
	if err := w.Register(doneFn, func(context.Context, *client.Job) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { w.Work(wctx) })
	poll("run of the first job", func() bool { n, err := jobsOf(l.addr, doneFn); return err == nil && n == 0 })
	ghostSeq := submit(l, ghostFn, "ghost")
	poll("batch waiting on the row lock", func() bool {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	})
	if u := stored(ghostSeq); u != "" {
		t.Skipf("timing: the ghost's add was written in a batch of its own (%q stored); run again", u)
	}
	l.kill(t)

	l = g.start()
	xSeq := submit(l, ghostFn, "x")
	t.Logf("life 1 acknowledged ghost as seq %d and was killed with its batch waiting; life 2 replayed %d jobs and acknowledged x as seq %d", ghostSeq, l.replayed(), xSeq)
	if xSeq != ghostSeq {
		t.Skipf("life 2 gave x seq %d, not the ghost's %d: no collision to show", xSeq, ghostSeq)
	}
	poll("flush of x", func() bool { return stored(xSeq) == "x" })

	// Let the dead life's batch go on.
	if err := lockTx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for stored(xSeq) == "x" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if u := stored(xSeq); u != "x" {
		var h []byte
		db.QueryRow(ctx, `SELECT handle FROM gearmand_jobs WHERE namespace = $1 AND seq = $2`, ns, int64(xSeq)).Scan(&h)
		t.Errorf("x, acknowledged and stored by the living life %d as seq %d, was replaced by %q (handle %s) when the batch of the killed life 1 committed after life 2 had replayed",
			l.n, xSeq, u, h)
	}
}
