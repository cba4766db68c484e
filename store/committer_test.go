package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"gearmand/store"
	"gearmand/store/memstore"
	"gearmand/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var errBoom = errors.New("boom")

// quiet is the committers' logger: the failures these tests cause are
// expected.
var quiet = slog.New(slog.DiscardHandler)

// outcomes records what OnCommit reported, call by call.
type outcomes struct {
	mu    sync.Mutex
	calls []outcome
}

type outcome struct {
	tokens []int
	err    error
}

func (o *outcomes) onCommit(tokens []int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, outcome{slices.Clone(tokens), err})
}

func (o *outcomes) snapshot() []outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.calls)
}

// reported is the number of tokens reported so far.
func (o *outcomes) reported() int {
	n := 0
	for _, c := range o.snapshot() {
		n += len(c.tokens)
	}
	return n
}

// eventually polls cond until it holds, failing the test after a generous
// deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// never checks that cond stays false for a short while: the one place a
// test has to wait for something not to happen.
func never(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("%s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func replaySeqs(t testing.TB, s store.Store) []uint64 {
	t.Helper()
	var seqs []uint64
	if err := s.Replay(context.Background(), func(r store.Record) error {
		seqs = append(seqs, r.Seq)
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return seqs
}

func replayed(t testing.TB, s store.Store) map[uint64]store.Record {
	t.Helper()
	m := make(map[uint64]store.Record)
	if err := s.Replay(context.Background(), func(r store.Record) error {
		m[r.Seq] = r
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return m
}

func seqRange(first, last uint64) []uint64 {
	var s []uint64
	for seq := first; seq <= last; seq++ {
		s = append(s, seq)
	}
	return s
}

// newCommitter starts a Committer over a Faulty memstore and closes it
// when the test ends.
func newCommitter(t *testing.T, cfg store.CommitterConfig[int]) (*store.Committer[int], *storetest.Faulty) {
	t.Helper()
	f := &storetest.Faulty{Store: memstore.New()}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	c := store.NewCommitter(f, cfg)
	t.Cleanup(func() {
		f.Heal()
		f.Release()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Committer.Close: %v", err)
		}
		_ = f.Close()
	})
	return c, f
}

func add(t testing.TB, c *store.Committer[int], seq uint64) {
	t.Helper()
	if err := c.Add(storetest.Sample(seq), int(seq)); err != nil {
		t.Fatalf("Add(%d): %v", seq, err)
	}
}

func TestGroupCommit(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	f.SetDelay(2 * time.Millisecond)
	const goroutines, each = 8, 250
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				add(t, c, uint64(g*each+i+1))
			}
		}()
	}
	wg.Wait()
	const total = goroutines * each
	eventually(t, "every token is reported", func() bool { return got.reported() >= total })

	seen := make(map[int]int)
	for _, call := range got.snapshot() {
		if call.err != nil {
			t.Errorf("OnCommit reported %v", call.err)
		}
		for _, tok := range call.tokens {
			seen[tok]++
		}
	}
	for tok := 1; tok <= total; tok++ {
		if seen[tok] != 1 {
			t.Errorf("token %d reported %d times", tok, seen[tok])
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct tokens reported, want %d", len(seen), total)
	}
	if applies := f.Applies(); applies > total/10 {
		t.Errorf("%d Apply calls for %d records: adds are not grouped", applies, total)
	} else {
		t.Logf("%d records in %d Apply calls", total, applies)
	}
	if got := replaySeqs(t, f); !slices.Equal(got, seqRange(1, total)) {
		t.Errorf("Replay gave %d records, want %d in Seq order", len(got), total)
	}
}

func TestOnCommitInAddOrder(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	f.SetDelay(time.Millisecond)
	// Many goroutines, but the order of their Adds is known: each takes
	// the lock around its Add.
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				seq := uint64(g*1000 + i + 1)
				mu.Lock()
				add(t, c, seq)
				order = append(order, int(seq))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	eventually(t, "every token is reported", func() bool { return got.reported() >= len(order) })
	var reported []int
	for _, call := range got.snapshot() {
		reported = append(reported, call.tokens...)
	}
	if !slices.Equal(reported, order) {
		t.Errorf("tokens reported out of Add order:\n got %v\nwant %v", reported, order)
	}
}

func TestFailedBatch(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	// Token 1 goes alone into a batch that waits at the hold; 2..10 gather
	// behind it into the next.
	f.Hold()
	add(t, c, 1)
	eventually(t, "the first batch reaches the store", func() bool { return f.Held() == 1 })
	for seq := uint64(2); seq <= 10; seq++ {
		add(t, c, seq)
	}
	f.Fail(errBoom)
	f.Release()
	eventually(t, "every token is reported", func() bool { return got.reported() >= 10 })

	calls := got.snapshot()
	want := []outcome{{[]int{1}, errBoom}, {[]int{2, 3, 4, 5, 6, 7, 8, 9, 10}, errBoom}}
	if len(calls) != len(want) {
		t.Fatalf("OnCommit calls %v, want %v", calls, want)
	}
	for i, call := range calls {
		if !slices.Equal(call.tokens, want[i].tokens) || !errors.Is(call.err, errBoom) {
			t.Errorf("OnCommit call %d: %v, want %v", i, call, want[i])
		}
	}
	if seqs := replaySeqs(t, f); len(seqs) != 0 {
		t.Errorf("failed batches left %v stored", seqs)
	}

	// Once the store heals, later adds succeed; the failed ones stay failed.
	f.Heal()
	for seq := uint64(11); seq <= 20; seq++ {
		add(t, c, seq)
	}
	eventually(t, "the later tokens are reported", func() bool { return got.reported() >= 20 })
	for _, call := range got.snapshot()[2:] {
		if call.err != nil {
			t.Errorf("after healing, OnCommit(%v) reported %v", call.tokens, call.err)
		}
	}
	if seqs := replaySeqs(t, f); !slices.Equal(seqs, seqRange(11, 20)) {
		t.Errorf("Replay %v, want 11..20", seqs)
	}
}

func TestDeleteRetriedUntilStored(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	for seq := uint64(1); seq <= 5; seq++ {
		add(t, c, seq)
	}
	eventually(t, "the adds are durable", func() bool { return got.reported() == 5 })
	failedBefore, callsBefore := f.Failed(), len(got.snapshot())
	f.FailNext(3, errBoom)
	c.Delete(2)
	c.Delete(4)
	eventually(t, "the deletes are stored", func() bool {
		return slices.Equal(replaySeqs(t, f), []uint64{1, 3, 5})
	})
	if n := f.Failed() - failedBefore; n != 3 {
		t.Errorf("%d failed Apply calls, want 3", n)
	}
	if n := len(got.snapshot()) - callsBefore; n != 0 {
		t.Errorf("OnCommit called %d more times for deletes, which have no tokens", n)
	}
}

func TestUpdateReplaces(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	add(t, c, 1)
	add(t, c, 2)
	eventually(t, "the adds are durable", func() bool { return got.reported() == 2 })
	callsBefore := len(got.snapshot())

	r := storetest.Sample(1)
	r.Attempts = 3
	r.RunAt = time.Unix(1_900_000_000, 5)
	if err := c.Update(r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the update is stored", func() bool { return replayed(t, f)[1].Attempts == 3 })
	if d := storetest.Diff(replayed(t, f)[1], r); d != "" {
		t.Errorf("updated record: %s", d)
	}

	// An update that fails is retried.
	f.FailNext(2, errBoom)
	r.Attempts = 4
	if err := c.Update(r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the retried update is stored", func() bool { return replayed(t, f)[1].Attempts == 4 })
	if d := storetest.Diff(replayed(t, f)[2], storetest.Sample(2)); d != "" {
		t.Errorf("the other record changed: %s", d)
	}
	if n := len(got.snapshot()) - callsBefore; n != 0 {
		t.Errorf("OnCommit called %d more times for updates, which have no tokens", n)
	}
}

// Several adds of one Seq waiting together (an update queued behind the add
// or behind a failed update) reach the store as one: the last. A batch
// that adds a Seq twice is ambiguous, and an SQL upsert rejects it.
func TestOneAddPerSeqInABatch(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	f.KeepCalls()
	add(t, c, 1)
	eventually(t, "the add is durable", func() bool { return got.reported() == 1 })
	f.Hold()
	add(t, c, 2)
	eventually(t, "the second batch reaches the store", func() bool { return f.Held() == 1 })
	add(t, c, 3)
	for attempts := uint32(1); attempts <= 3; attempts++ {
		for _, seq := range []uint64{1, 3} {
			r := storetest.Sample(seq)
			r.Attempts = attempts
			if err := c.Update(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.FailNext(1, errBoom) // the held batch; the updates then wait behind a failure
	f.Release()
	eventually(t, "the updates are stored", func() bool {
		m := replayed(t, f)
		return m[1].Attempts == 3 && m[3].Attempts == 3
	})
	for i, call := range f.Calls() {
		seen := make(map[uint64]bool)
		for _, r := range call.Batch.Adds {
			if seen[r.Seq] {
				t.Errorf("Apply call %d adds Seq %d twice", i, r.Seq)
			}
			seen[r.Seq] = true
		}
	}
}

func TestWriteBehindAddReturnsAtOnce(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{
		Mode:          store.WriteBehind,
		FlushInterval: time.Millisecond,
		OnCommit:      got.onCommit,
	})
	f.Hold() // the store accepts nothing, yet every Add returns
	for seq := uint64(1); seq <= 100; seq++ {
		add(t, c, seq)
	}
	f.Release()
	eventually(t, "the adds are stored", func() bool { return len(replaySeqs(t, f)) == 100 })
	if seqs := replaySeqs(t, f); !slices.Equal(seqs, seqRange(1, 100)) {
		t.Errorf("Replay %v, want 1..100", seqs)
	}
	if calls := got.snapshot(); len(calls) != 0 {
		t.Errorf("OnCommit called in write-behind mode: %v", calls)
	}
}

func TestWriteBehindWaitsForTheInterval(t *testing.T) {
	const interval = 50 * time.Millisecond
	c, f := newCommitter(t, store.CommitterConfig[int]{Mode: store.WriteBehind, FlushInterval: interval})
	for round := uint64(1); round <= 2; round++ {
		// Round 2 starts with the committer idle since its last flush: an
		// add still waits its interval, giving a Delete the chance to
		// cancel it.
		start := time.Now()
		add(t, c, round)
		eventually(t, "the add is stored", func() bool { return slices.Contains(replaySeqs(t, f), round) })
		if waited := time.Since(start); waited < interval {
			t.Errorf("round %d: stored after %v, before the flush interval %v", round, waited, interval)
		}
		if round == 1 {
			time.Sleep(2 * interval) // let the committer go idle; not a wait for a result
		}
	}
}

func TestWriteBehindDeleteBeforeFlush(t *testing.T) {
	c, f := newCommitter(t, store.CommitterConfig[int]{Mode: store.WriteBehind, FlushInterval: time.Millisecond})
	f.KeepCalls()
	f.Hold()
	add(t, c, 1)
	eventually(t, "the first batch reaches the store", func() bool { return f.Held() == 1 })
	// While that batch is in flight, 2 is added and deleted, 3 only added.
	add(t, c, 2)
	add(t, c, 3)
	c.Delete(2)
	f.Release()
	eventually(t, "the adds are stored", func() bool { return slices.Equal(replaySeqs(t, f), []uint64{1, 3}) })
	for i, call := range f.Calls() {
		for _, r := range call.Batch.Adds {
			if r.Seq == 2 {
				t.Errorf("Apply call %d wrote record 2, deleted before its flush", i)
			}
		}
	}
}

func TestWriteBehindRetriesUntilStored(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{
		Mode:          store.WriteBehind,
		FlushInterval: time.Millisecond,
		OnCommit:      got.onCommit,
	})
	f.FailNext(3, errBoom)
	for seq := uint64(1); seq <= 50; seq++ {
		add(t, c, seq)
	}
	eventually(t, "the adds are stored", func() bool { return len(replaySeqs(t, f)) == 50 })

	// A store that fails until healed, with adds, updates and deletes
	// arriving meanwhile.
	f.Fail(errBoom)
	failed := f.Failed()
	for seq := uint64(51); seq <= 60; seq++ {
		add(t, c, seq)
	}
	c.Delete(1)
	r := storetest.Sample(2)
	r.Attempts = 9
	if err := c.Update(r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a few Apply calls fail", func() bool { return f.Failed() >= failed+2 })
	f.Heal()
	eventually(t, "everything is stored", func() bool {
		m := replayed(t, f)
		return len(m) == 59 && m[2].Attempts == 9
	})
	if seqs := replaySeqs(t, f); !slices.Equal(seqs, seqRange(2, 60)) {
		t.Errorf("Replay %v, want 2..60", seqs)
	}
	if calls := got.snapshot(); len(calls) != 0 {
		t.Errorf("OnCommit called in write-behind mode: %v", calls)
	}
}

func TestFailAfterStoringKeepsWriteThroughHonest(t *testing.T) {
	// A commit whose reply is lost: the submitter hears of the error (it
	// was not acknowledged), and a delete of such a record, retried,
	// removes it.
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	f.FailAfterNext(1, errBoom)
	add(t, c, 1)
	eventually(t, "the token is reported", func() bool { return got.reported() == 1 })
	if call := got.snapshot()[0]; !errors.Is(call.err, errBoom) {
		t.Errorf("OnCommit(%v, %v), want errBoom", call.tokens, call.err)
	}
	f.FailAfterNext(1, errBoom)
	c.Delete(1)
	eventually(t, "the delete is stored", func() bool { return len(replaySeqs(t, f)) == 0 })
}

func TestWaitRoom(t *testing.T) {
	t.Run("MaxPending", func(t *testing.T) {
		var got outcomes
		c, f := newCommitter(t, store.CommitterConfig[int]{MaxPending: 4, OnCommit: got.onCommit})
		f.Hold()
		add(t, c, 1)
		eventually(t, "the first batch reaches the store", func() bool { return f.Held() == 1 })
		if err := c.WaitRoom(context.Background()); err != nil {
			t.Fatalf("WaitRoom below the bound: %v", err)
		}
		for seq := uint64(2); seq <= 4; seq++ {
			add(t, c, seq)
		}
		if c.HasRoom() {
			t.Error("HasRoom with 4 adds pending and MaxPending 4")
		}
		testWaitRoomBlocks(t, c, f)
	})
	t.Run("MaxPendingBytes", func(t *testing.T) {
		c, f := newCommitter(t, store.CommitterConfig[int]{MaxPendingBytes: 1000})
		f.Hold()
		r := storetest.Sample(1)
		r.Data = make([]byte, 1000)
		if err := c.Add(r, 1); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the batch reaches the store", func() bool { return f.Held() == 1 })
		testWaitRoomBlocks(t, c, f)
	})
	t.Run("Closed", func(t *testing.T) {
		c, f := newCommitter(t, store.CommitterConfig[int]{MaxPending: 1})
		f.Hold()
		add(t, c, 1)
		eventually(t, "the batch reaches the store", func() bool { return f.Held() == 1 })
		closed := make(chan error, 1)
		go func() { closed <- c.Close(context.Background()) }()
		// A closing committer makes room at once: the Add that follows
		// gets ErrClosed instead of waiting on a store that may never
		// recover.
		eventually(t, "the committer is closing", func() bool { return c.Add(storetest.Sample(2), 2) != nil })
		if err := c.WaitRoom(context.Background()); err != nil {
			t.Errorf("WaitRoom on a closing committer: %v", err)
		}
		f.Release()
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// testWaitRoomBlocks checks that c has no room while f holds its batch,
// that WaitRoom gives up with its context, and that it returns once the
// held batch settles.
func testWaitRoomBlocks(t *testing.T, c *store.Committer[int], f *storetest.Faulty) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := c.WaitRoom(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitRoom at the bound with a deadline: %v, want DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	canceled := make(chan error, 1)
	go func() { canceled <- c.WaitRoom(ctx) }()
	waited := make(chan error, 1)
	go func() { waited <- c.WaitRoom(context.Background()) }()
	never(t, "WaitRoom returned while the store held every pending add", func() bool {
		return len(canceled) > 0 || len(waited) > 0
	})
	cancel()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Errorf("WaitRoom canceled: %v, want context.Canceled", err)
	}
	f.Release()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("WaitRoom after the batch settled: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitRoom still blocked after the held batch settled")
	}
}

func TestCloseFlushes(t *testing.T) {
	for _, mode := range []store.Mode{store.WriteThrough, store.WriteBehind} {
		t.Run(mode.String(), func(t *testing.T) {
			var got outcomes
			f := &storetest.Faulty{Store: memstore.New()}
			defer f.Close()
			f.SetDelay(time.Millisecond)
			// A flush interval far longer than the test: Close must not
			// wait it out.
			c := store.NewCommitter(f, store.CommitterConfig[int]{Mode: mode, FlushInterval: time.Hour, OnCommit: got.onCommit, Logger: quiet})
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 100 {
						add(t, c, uint64(g*100+i+1))
					}
				}()
			}
			wg.Wait()
			c.Delete(400)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			if err := c.Close(ctx); err != nil {
				t.Fatalf("Close: %v (after %v)", err, time.Since(start))
			}
			if seqs := replaySeqs(t, f); !slices.Equal(seqs, seqRange(1, 399)) {
				t.Errorf("after Close, Replay has %d records, want 1..399", len(seqs))
			}
			if mode == store.WriteThrough {
				if n := got.reported(); n != 400 {
					t.Errorf("after Close, %d tokens reported, want 400", n)
				}
			}
			if err := c.Add(storetest.Sample(1000), 1000); !errors.Is(err, store.ErrClosed) {
				t.Errorf("Add after Close: %v, want ErrClosed", err)
			}
			if err := c.Update(storetest.Sample(1)); !errors.Is(err, store.ErrClosed) {
				t.Errorf("Update after Close: %v, want ErrClosed", err)
			}
			if err := c.Close(ctx); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestCloseGivesUpWithItsContext(t *testing.T) {
	f := &storetest.Faulty{Store: memstore.New()}
	defer f.Close()
	f.Fail(errBoom)
	c := store.NewCommitter(f, store.CommitterConfig[int]{Mode: store.WriteBehind, FlushInterval: time.Millisecond, Logger: quiet})
	add(t, c, 1)
	eventually(t, "an Apply fails", func() bool { return f.Failed() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a store that keeps failing: %v, want DeadlineExceeded", err)
	}
	// The committer's goroutine stops retrying soon after.
	eventually(t, "the committer stops", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		return c.Close(ctx) == nil
	})
	n := f.Applies()
	never(t, "the committer still calls Apply after Close gave up", func() bool { return f.Applies() != n })
}

func TestCloseGivesUpOnAHungStore(t *testing.T) {
	f := &storetest.Faulty{Store: memstore.New()}
	defer f.Close()
	defer f.Release()
	f.Hold() // Apply waits until Release or until its context ends
	var got outcomes
	c := store.NewCommitter(f, store.CommitterConfig[int]{OnCommit: got.onCommit, Logger: quiet})
	add(t, c, 1)
	eventually(t, "the batch reaches the store", func() bool { return f.Held() == 1 })
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		closed <- c.Close(ctx)
	}()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close with a hung store: %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return when its context ended: a hung Apply holds it")
	}
	calls := got.snapshot()
	if len(calls) != 1 || !slices.Equal(calls[0].tokens, []int{1}) || calls[0].err == nil {
		t.Errorf("OnCommit calls %v, want token 1 with an error", calls)
	}
}

func TestDeletesBatchedWithAdds(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	f.KeepCalls()
	for seq := uint64(1); seq <= 3; seq++ {
		add(t, c, seq)
	}
	eventually(t, "the adds are durable", func() bool { return got.reported() == 3 })
	f.Hold()
	add(t, c, 4)
	eventually(t, "the batch reaches the store", func() bool { return f.Held() == 1 })
	add(t, c, 5)
	c.Delete(1)
	c.Delete(2)
	f.Release()
	eventually(t, "everything is stored", func() bool { return slices.Equal(replaySeqs(t, f), []uint64{3, 4, 5}) })
	last := f.Calls()[len(f.Calls())-1].Batch
	if len(last.Adds) != 1 || last.Adds[0].Seq != 5 || !slices.Equal(last.Deletes, []uint64{1, 2}) {
		t.Errorf("last batch adds %d records and deletes %v; want add 5 and delete 1, 2 in one batch", len(last.Adds), last.Deletes)
	}
}

func BenchmarkCommitter(b *testing.B) {
	for _, mode := range []store.Mode{store.WriteThrough, store.WriteBehind} {
		b.Run(fmt.Sprintf("%s/submitters=128/payload=64", mode), func(b *testing.B) {
			benchCommitter(b, mode, 128, 64)
		})
	}
}

// benchCommitter has many goroutines submit records, each waiting (in
// write-through mode) for its record to be durable before the next, as
// clients waiting for JOB_CREATED do. Each goroutine deletes its records
// a while after adding them, as workers finishing jobs would, so the store
// stays small. One op is one record accepted.
func benchCommitter(b *testing.B, mode store.Mode, submitters, payload int) {
	s := memstore.New()
	defer s.Close()
	type waiter chan error
	c := store.NewCommitter(s, store.CommitterConfig[waiter]{
		Mode:          mode,
		FlushInterval: time.Millisecond,
		OnCommit: func(ws []waiter, err error) {
			for _, w := range ws {
				w <- err
			}
		},
	})
	defer c.Close(context.Background())
	data := make([]byte, payload)
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetBytes(int64(payload))
	b.SetParallelism(max(1, submitters/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := make(waiter, 1)
		r := storetest.Sample(0)
		r.Data = data
		var recent [16]uint64
		for i := 0; pb.Next(); i++ {
			r.Seq = seq.Add(1)
			if err := c.WaitRoom(context.Background()); err != nil {
				b.Error(err)
				return
			}
			if err := c.Add(r, w); err != nil {
				b.Error(err)
				return
			}
			if mode == store.WriteThrough {
				if err := <-w; err != nil {
					b.Error(err)
					return
				}
			}
			if old := recent[i%len(recent)]; old != 0 {
				c.Delete(old)
			}
			recent[i%len(recent)] = r.Seq
		}
	})
}

// TestWriteBehindRefusesRoomWhenBehind: while the store cannot keep up,
// write-behind stops granting room once the oldest unwritten add is two
// flush intervals old, so that the window a crash can lose stays bounded;
// room comes back when the store catches up. Write-through acknowledges
// only durable jobs and has no such limit.
func TestWriteBehindRefusesRoomWhenBehind(t *testing.T) {
	const interval = 20 * time.Millisecond
	c, f := newCommitter(t, store.CommitterConfig[int]{Mode: store.WriteBehind, FlushInterval: interval})
	f.Hold()
	add(t, c, 1)
	eventually(t, "the first batch to reach the held store", func() bool { return f.Held() == 1 })
	add(t, c, 2) // waits behind the held batch
	if !c.HasRoom() {
		t.Fatal("no room right after an add")
	}
	eventually(t, "room to be refused while the store is behind", func() bool { return !c.HasRoom() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.WaitRoom(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRoom while behind: %v", err)
	}
	f.Release()
	if err := c.WaitRoom(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both adds stored", func() bool { return len(replaySeqs(t, f)) == 2 })

	wt, held := newCommitter(t, store.CommitterConfig[int]{Mode: store.WriteThrough, OnCommit: func([]int, error) {}})
	held.Hold()
	add(t, wt, 1)
	eventually(t, "the write-through batch to reach the held store", func() bool { return held.Held() == 1 })
	add(t, wt, 2)
	never(t, "write-through refusing room for age", func() bool { return !wt.HasRoom() })
}

// TestLockedIsFinal: when the store answers ErrLocked (another server has
// taken it over), the batch's submitters are told, and nothing of it is
// retried: no loop of writes that can never succeed.
func TestLockedIsFinal(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	f.Fail(store.ErrLocked)
	// The delete goes first: the committer may take it alone or with the
	// add, but once the add is reported nothing new is left, and any later
	// Apply would be a retry.
	c.Delete(7)
	add(t, c, 1)
	eventually(t, "the submitter to be told", func() bool { return got.reported() == 1 })
	if calls := got.snapshot(); !errors.Is(calls[0].err, store.ErrLocked) {
		t.Fatalf("OnCommit got %v, want ErrLocked", calls[0].err)
	}
	applies := f.Applies()
	never(t, "a retry of the refused batch", func() bool { return f.Applies() > applies })
}

// lateRecords records what OnLate reported.
type lateRecords struct {
	mu   sync.Mutex
	seqs []uint64
}

func (l *lateRecords) onLate(rs []store.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		l.seqs = append(l.seqs, r.Seq)
	}
}

func (l *lateRecords) snapshot() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seqs)
}

// TestTimeoutAnswersWhileTheStoreHangs: with Apply held, every add is
// reported within Timeout as ErrTimeout; the queued ones are never
// written, and the one in flight, once its Apply lands, goes to OnLate
// and is stored.
func TestTimeoutAnswersWhileTheStoreHangs(t *testing.T) {
	const timeout = 100 * time.Millisecond
	var got outcomes
	var late lateRecords
	c, f := newCommitter(t, store.CommitterConfig[int]{Timeout: timeout, OnCommit: got.onCommit, OnLate: late.onLate})
	f.Hold()
	start := time.Now()
	add(t, c, 1)
	eventually(t, "the first Apply is held", func() bool { return f.Held() == 1 })
	add(t, c, 2)
	add(t, c, 3)
	eventually(t, "every add is reported", func() bool { return got.reported() == 3 })
	if waited := time.Since(start); waited > 2*timeout {
		t.Errorf("answered after %v, want within about %v", waited, timeout)
	}
	for _, call := range got.snapshot() {
		if !errors.Is(call.err, store.ErrTimeout) {
			t.Errorf("OnCommit(%v, %v), want ErrTimeout", call.tokens, call.err)
		}
	}
	if adds, _ := c.Pending(); adds != 1 {
		t.Errorf("Pending() = %d adds while one Apply is held, want 1 (the queued ones dropped)", adds)
	}
	if len(late.snapshot()) != 0 {
		t.Errorf("OnLate called before the held Apply landed: %v", late.snapshot())
	}
	f.Release()
	eventually(t, "the late add reaches OnLate", func() bool { return len(late.snapshot()) == 1 })
	if seqs := late.snapshot(); !slices.Equal(seqs, []uint64{1}) {
		t.Errorf("OnLate got %v, want [1]", seqs)
	}
	eventually(t, "nothing is pending", func() bool { adds, _ := c.Pending(); return adds == 0 })
	if n := got.reported(); n != 3 {
		t.Errorf("%d tokens reported, want each of 3 once", n)
	}
	if seqs := replaySeqs(t, f); !slices.Equal(seqs, []uint64{1}) {
		t.Errorf("stored %v, want [1]: the queued adds must never be written", seqs)
	}
}

// TestTimeoutLeavesQuickAddsAlone: adds durable well within Timeout are
// reported once, as stored, and OnLate is never called.
func TestTimeoutLeavesQuickAddsAlone(t *testing.T) {
	var got outcomes
	var late lateRecords
	c, f := newCommitter(t, store.CommitterConfig[int]{Timeout: time.Second, OnCommit: got.onCommit, OnLate: late.onLate})
	f.SetDelay(time.Millisecond)
	for seq := uint64(1); seq <= 200; seq++ {
		add(t, c, seq)
	}
	eventually(t, "every add is reported", func() bool { return got.reported() == 200 })
	for _, call := range got.snapshot() {
		if call.err != nil {
			t.Errorf("OnCommit(%v, %v), want nil", call.tokens, call.err)
		}
	}
	if seqs := late.snapshot(); len(seqs) != 0 {
		t.Errorf("OnLate got %v", seqs)
	}
}

// TestAdmitRefusesAdds: Admit's error comes back from Add and nothing is
// queued, while Update still queues.
func TestAdmitRefusesAdds(t *testing.T) {
	errFull := errors.New("disk nearly full")
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit, Admit: func() error { return errFull }})
	if err := c.Add(storetest.Sample(1), 1); !errors.Is(err, errFull) {
		t.Fatalf("Add: %v, want the Admit error", err)
	}
	if err := c.Update(storetest.Sample(2)); err != nil {
		t.Fatalf("Update: %v", err)
	}
	eventually(t, "the update is stored", func() bool { return len(replaySeqs(t, f)) == 1 })
	if seqs := replaySeqs(t, f); !slices.Equal(seqs, []uint64{2}) {
		t.Errorf("stored %v, want [2]", seqs)
	}
}

// TestFailingStoreGetsSmallerBatches: once an Apply has failed, retries
// carry at most 1024 operations, so that a store short of room can take
// them.
func TestFailingStoreGetsSmallerBatches(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	const n = 3000
	var recs []store.Record
	for seq := uint64(1); seq <= n; seq++ {
		recs = append(recs, storetest.Sample(seq))
	}
	if err := f.Store.Apply(context.Background(), store.Batch{Adds: recs}); err != nil {
		t.Fatal(err)
	}
	f.KeepCalls()
	f.FailNext(1, errBoom)
	f.Hold()
	for seq := uint64(1); seq <= n; seq++ {
		c.Delete(seq)
	}
	f.Release()
	eventually(t, "every delete to be stored", func() bool { return len(replaySeqs(t, f)) == 0 })
	calls := f.Calls()
	if len(calls) < 3 || calls[0].Err == nil {
		t.Fatalf("%d calls, the first %v: want a failure and then retries", len(calls), calls[0].Err)
	}
	for i, call := range calls[1:] {
		if ops := call.Batch.Len(); ops > 1024 {
			t.Errorf("retry %d after a failure: %d operations, want at most 1024", i+1, ops)
		}
		if call.Err == nil {
			break
		}
	}
	if d := len(calls[1].Batch.Deletes); d != 1024 {
		t.Errorf("first retry: %d deletes, want 1024", d)
	}
}

// TestSmallerBatchesNeverReviveADeletedRecord: an update left queued when
// a smaller batch takes its record's delete is dropped, not written after
// the delete.
func TestSmallerBatchesNeverReviveADeletedRecord(t *testing.T) {
	c, f := newCommitter(t, store.CommitterConfig[int]{})
	var recs []store.Record
	for seq := uint64(1); seq <= 1024; seq++ {
		recs = append(recs, storetest.Sample(seq))
	}
	if err := f.Store.Apply(context.Background(), store.Batch{Adds: recs}); err != nil {
		t.Fatal(err)
	}
	f.FailNext(1, errBoom)
	f.Hold()
	if err := c.Update(storetest.Sample(1)); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 1024; seq++ {
		c.Delete(seq)
	}
	f.Release()
	eventually(t, "the deletes to be stored and nothing pending", func() bool {
		adds, _ := c.Pending()
		return len(replaySeqs(t, f)) == 0 && adds == 0
	})
	never(t, "the update came back after its delete", func() bool { return len(replaySeqs(t, f)) != 0 })
}

// TestAddSinceCountsTheWaitBefore: an add whose submitter has waited
// since an earlier time times out that much sooner.
func TestAddSinceCountsTheWaitBefore(t *testing.T) {
	const timeout = 400 * time.Millisecond
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{Timeout: timeout, OnCommit: got.onCommit})
	f.Hold()
	start := time.Now()
	if err := c.AddSince(storetest.Sample(1), 1, start.Add(-timeout*3/4)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the add is reported", func() bool { return got.reported() == 1 })
	if waited := time.Since(start); waited > timeout/2 {
		t.Errorf("reported after %v, want within about %v (a quarter of the timeout was left)", waited, timeout/4)
	}
	if call := got.snapshot()[0]; !errors.Is(call.err, store.ErrTimeout) {
		t.Errorf("OnCommit(%v, %v), want ErrTimeout", call.tokens, call.err)
	}
}
