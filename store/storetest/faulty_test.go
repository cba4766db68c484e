package storetest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gearmand/store"
	"gearmand/store/memstore"
	"gearmand/store/storetest"
)

// Faulty passing everything through is a conforming store itself.
func TestFaultyConforms(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store {
		return &storetest.Faulty{Store: memstore.New()}
	}, storetest.Volatile(), storetest.Records(1000))
}

func TestFaulty(t *testing.T) {
	ctx := context.Background()
	errBoom := errors.New("boom")
	f := &storetest.Faulty{Store: memstore.New()}
	defer f.Close()
	f.KeepCalls()
	one := func(seq uint64) store.Batch { return store.Batch{Adds: []store.Record{storetest.Sample(seq)}} }
	count := func() int {
		n := 0
		if err := f.Store.Replay(ctx, func(store.Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}

	f.FailNext(2, errBoom)
	for i := range 2 {
		if err := f.Apply(ctx, one(1)); !errors.Is(err, errBoom) {
			t.Fatalf("FailNext call %d: %v", i, err)
		}
	}
	if err := f.Apply(ctx, one(1)); err != nil {
		t.Fatalf("after FailNext ran out: %v", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d records stored, want only the one that passed", n)
	}

	f.Fail(nil)
	for range 3 {
		if err := f.Apply(ctx, one(2)); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Fail(nil): %v, want ErrUnavailable", err)
		}
	}
	f.Heal()
	f.FailAfterNext(1, errBoom)
	if err := f.Apply(ctx, one(3)); !errors.Is(err, errBoom) {
		t.Fatalf("FailAfterNext: %v", err)
	}
	if n := count(); n != 2 {
		t.Fatalf("FailAfterNext stored %d records, want 2", n)
	}

	f.FailReplay(errBoom)
	if err := f.Replay(ctx, func(store.Record) error { return nil }); !errors.Is(err, errBoom) {
		t.Fatalf("FailReplay: %v", err)
	}
	f.Heal()
	if err := f.Replay(ctx, func(store.Record) error { return nil }); err != nil {
		t.Fatalf("Replay after Heal: %v", err)
	}

	if got, want := f.Applies(), 7; got != want {
		t.Errorf("Applies %d, want %d", got, want)
	}
	if got, want := f.Failed(), 6; got != want {
		t.Errorf("Failed %d, want %d", got, want)
	}
	if got, want := f.Replays(), 2; got != want {
		t.Errorf("Replays %d, want %d", got, want)
	}
	calls := f.Calls()
	if len(calls) != 7 || calls[2].Err != nil || calls[2].Batch.Adds[0].Seq != 1 || !errors.Is(calls[6].Err, errBoom) {
		t.Errorf("Calls: %+v", calls)
	}

	// Hold, with a context ending while held, and Release.
	f.Hold()
	done := make(chan error, 1)
	go func() { done <- f.Apply(ctx, one(4)) }()
	for f.Held() != 1 {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.Apply(short, one(5)); !errors.Is(err, context.Canceled) {
		t.Errorf("held Apply with a canceled context: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("held Apply returned %v before Release", err)
	default:
	}
	f.Release()
	if err := <-done; err != nil {
		t.Fatalf("released Apply: %v", err)
	}

	f.SetDelay(20 * time.Millisecond)
	start := time.Now()
	if err := f.Apply(ctx, one(6)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("delayed Apply took %v", d)
	}
	if n := count(); n != 4 {
		t.Errorf("%d records stored, want 4", n)
	}
}
