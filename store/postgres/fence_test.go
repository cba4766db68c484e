package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gearmand/store"
	"gearmand/store/storetest"
)

// TestTakeoverFences: a second Store on a namespace fences the first,
// whose Applies then fail with store.ErrLocked on both write routes, and
// replays everything the first committed.
func TestTakeoverFences(t *testing.T) {
	url := sharedURL(t)
	ns := freshNamespace(t)
	ctx := context.Background()
	first := openNS(t, url, ns)
	want := []store.Record{storetest.Sample(1), storetest.Sample(2)}
	if err := first.Apply(ctx, store.Batch{Adds: want}); err != nil {
		t.Fatal(err)
	}
	second := openNS(t, url, ns)
	if second.Generation() != first.Generation()+1 {
		t.Errorf("generations %d then %d", first.Generation(), second.Generation())
	}
	for _, n := range []int{1, copyMinAdds} {
		var b store.Batch
		for i := range n {
			b.Adds = append(b.Adds, storetest.Sample(uint64(100+i)))
		}
		err := first.Apply(ctx, b)
		if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "taken over") {
			t.Errorf("fenced Apply of %d: %v, want ErrLocked", n, err)
		}
	}
	// Final for the fenced store, without asking the database.
	first.fenced.Store(nil)
	if err := first.Apply(ctx, store.Batch{Deletes: []uint64{1}}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("fenced delete: %v, want ErrLocked", err)
	}
	if err := first.Apply(ctx, store.Batch{Deletes: []uint64{1}}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("fenced delete again: %v, want ErrLocked", err)
	}
	if got := replay(t, second); !equalRecords(got, want) {
		t.Errorf("second replays %v, want %v", seqs(got), seqs(want))
	}
	if err := second.Apply(ctx, store.Batch{Adds: []store.Record{storetest.Sample(3)}}); err != nil {
		t.Errorf("the new owner's Apply: %v", err)
	}
}

// TestOpenWaitsForFencedWrite: a transaction past the fence holds the
// owner row; an Open of the namespace waits for it to commit and then
// replays what it wrote; with the wait too short, Open fails with
// store.ErrLocked.
func TestOpenWaitsForFencedWrite(t *testing.T) {
	url := sharedURL(t)
	ns := freshNamespace(t)
	ctx := context.Background()
	owner := openNS(t, url, ns)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, fenceSQL, ns, owner.Generation()); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO gearmand_jobs (namespace, seq, handle, function, unique_key, data,
		priority, reducer, attempts) VALUES ($1, 7, 'H:7', 'f', '', '', 1, '', 0)`, ns); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = Open(ctx, url, ns, TakeoverWait(300*time.Millisecond))
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "still in progress") {
		t.Errorf("Open with a short wait: %v, want ErrLocked saying a write is in progress", err)
	}
	t.Logf("Open with a short wait: %v after %v", err, time.Since(start).Round(time.Millisecond))

	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Open(ctx, url, ns)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.s != nil {
			r.s.Close()
		}
		t.Fatalf("Open returned (%v) while a fenced write was in progress", r.err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Open after the commit: %v", r.err)
	}
	defer r.s.Close()
	got := replay(t, r.s)
	if len(got) != 1 || got[0].Seq != 7 {
		t.Errorf("the new owner replays %v, want [7]", seqs(got))
	}
	if err := owner.Apply(ctx, store.Batch{Deletes: []uint64{7}}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("the old owner's Apply: %v, want ErrLocked", err)
	}
}
