package server_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"gearmand/protocol"
	"gearmand/server"
	"gearmand/store"
	"gearmand/store/memstore"
	"gearmand/store/storetest"
)

// storedServer runs a server over st, after replaying it.
func storedServer(t *testing.T, st store.Store, cfg server.Config) (string, *server.Server) {
	t.Helper()
	cfg.Store = st
	if cfg.HandlePrefix == "" {
		cfg.HandlePrefix = "H:test"
	}
	cfg.JobRetries = -1
	cfg.Logger = discardLogger()
	srv := server.New(cfg)
	if _, err := srv.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	return serveOn(t, srv), srv
}

func TestBackgroundJobsAreStoredUntilTheyEnd(t *testing.T) {
	st := memstore.New()
	addr, _ := storedServer(t, st, server.Config{})
	client, worker := dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJobBG, "f", "u", "data")
	client.expect(protocol.JobCreated, "H:test:1")
	if st.Len() != 1 {
		t.Fatalf("%d records after JOB_CREATED, want 1", st.Len())
	}
	client.send(protocol.SubmitJob, "f", "fg", "x")
	client.expect(protocol.JobCreated, "H:test:2")
	if st.Len() != 1 {
		t.Fatalf("a foreground job was stored: %d records", st.Len())
	}
	worker.send(protocol.CanDo, "f")
	worker.send(protocol.GrabJobUniq)
	worker.expect(protocol.JobAssignUniq, "H:test:1", "f", "u", "data")
	worker.send(protocol.WorkComplete, "H:test:1", "")
	eventually(t, "the finished job's record to be deleted", func() bool { return st.Len() == 0 })
}

func TestReplayRestoresJobsAndHandles(t *testing.T) {
	st := memstore.New()
	created := time.Now().Add(-time.Hour)
	err := st.Apply(context.Background(), store.Batch{Adds: []store.Record{
		{Seq: 5, Handle: "H:old:5", Function: "f", Unique: "a", Data: []byte("first"), Priority: 1, Created: created},
		{Seq: 9, Handle: "H:old:9", Function: "f", Unique: "b", Data: []byte("high"), Priority: 0, Created: created},
		{Seq: 7, Handle: "H:old:7", Function: "f", Unique: "c", Data: []byte("second"), Priority: 1, Attempts: 2, Created: created},
	}})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := storedServer(t, st, server.Config{})
	client, worker := dial(t, addr), dial(t, addr)
	client.send(protocol.GetStatus, "H:old:7")
	client.expect(protocol.StatusRes, "H:old:7", "1", "0", "0", "0")
	client.send(protocol.GetStatusUnique, "b")
	client.expect(protocol.StatusResUnique, "b", "1", "0", "0", "0", "0")
	if got := client.admin("show jobs"); len(got) != 3 || got[1] != "H:old:7\t2\t0\t1" {
		t.Fatalf("show jobs after replay: %q", got)
	}
	// A submission with a replayed unique coalesces; a new one continues
	// the handle counter.
	client.send(protocol.SubmitJobBG, "f", "a", "")
	client.expect(protocol.JobCreated, "H:old:5")
	client.send(protocol.SubmitJobBG, "f", "d", "")
	client.expect(protocol.JobCreated, "H:test:10")

	worker.send(protocol.CanDo, "f")
	for _, want := range []string{"H:old:9", "H:old:5", "H:old:7", "H:test:10"} {
		worker.send(protocol.GrabJob)
		args := worker.expectArgs(protocol.JobAssign)
		if args[0] != want {
			t.Fatalf("assigned %s, want %s (high first, then sequence order)", args[0], want)
		}
	}
}

// TestWriteThroughRepliesKeepRequestOrder pipelines background and
// foreground submits on one connection: background JOB_CREATED waits for
// the store, and nothing may overtake it.
func TestWriteThroughRepliesKeepRequestOrder(t *testing.T) {
	addr, _ := storedServer(t, memstore.New(), server.Config{})
	p := dial(t, addr)
	const n = 200
	var b []byte
	for i := range n {
		typ := protocol.SubmitJobBG
		if i%3 == 1 {
			typ = protocol.SubmitJob
		}
		b = protocol.AppendPacketStrings(b, protocol.Req, typ, "f", "u"+strconv.Itoa(i), "")
		if i%50 == 0 {
			b = protocol.AppendPacketStrings(b, protocol.Req, protocol.EchoReq, strconv.Itoa(i))
		}
	}
	p.write(b)
	for i := range n {
		p.expect(protocol.JobCreated, "H:test:"+strconv.Itoa(i+1))
		if i%50 == 0 {
			p.expect(protocol.EchoRes, strconv.Itoa(i))
		}
	}
}

func TestWriteBehindStoresAfterTheInterval(t *testing.T) {
	st := memstore.New()
	addr, _ := storedServer(t, st, server.Config{StoreMode: store.WriteBehind, FlushInterval: 20 * time.Millisecond})
	p := dial(t, addr)
	p.send(protocol.SubmitJobBG, "f", "u", "")
	p.expect(protocol.JobCreated, "H:test:1")
	eventually(t, "the write-behind flush", func() bool { return st.Len() == 1 })
}

func TestCloseFlushesWriteBehind(t *testing.T) {
	st := memstore.New()
	addr, srv := storedServer(t, st, server.Config{StoreMode: store.WriteBehind, FlushInterval: time.Hour})
	p := dial(t, addr)
	for i := range 10 {
		p.send(protocol.SubmitJobBG, "f", strconv.Itoa(i), "")
		p.expectArgs(protocol.JobCreated)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Len() != 10 {
		t.Fatalf("%d records after Close, want 10", st.Len())
	}
}

// TestStoreFailureIsAQueueError: while the store fails, a background
// submit gets ERROR QUEUE_ERROR with the reason and creates no job; other
// connections keep working; once the store is back, submits succeed and
// nothing acknowledged is missing.
func TestStoreFailureIsAQueueError(t *testing.T) {
	mem := memstore.New()
	f := &storetest.Faulty{Store: mem}
	addr, _ := storedServer(t, f, server.Config{})
	client, other := dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJobBG, "f", "before", "")
	client.expect(protocol.JobCreated, "H:test:1")

	f.Fail(store.ErrUnavailable)
	client.send(protocol.SubmitJobBG, "f", "during", "")
	client.expect(protocol.Error, "QUEUE_ERROR", store.ErrUnavailable.Error())
	other.send(protocol.SubmitJob, "g", "", "fg") // foreground jobs need no store
	other.expect(protocol.JobCreated, "H:test:3")
	other.line("status")
	other.expectText("f\t1\t0\t0\ng\t1\t0\t0\n.\n")

	f.Heal()
	client.send(protocol.SubmitJobBG, "f", "during", "")
	client.expect(protocol.JobCreated, "H:test:4")
	var uniques []string
	mem.Replay(context.Background(), func(r store.Record) error {
		uniques = append(uniques, r.Unique)
		return nil
	})
	if strings.Join(uniques, ",") != "before,during" {
		t.Fatalf("stored %q, want before and during", uniques)
	}
}

// deafReplay is a Store whose Replay ignores its context, like a driver
// that never looks at it, and calls onRecord before each record.
type deafReplay struct {
	store.Store
	onRecord func(n int)
}

func (d deafReplay) Replay(_ context.Context, fn func(store.Record) error) error {
	n := 0
	return d.Store.Replay(context.Background(), func(r store.Record) error {
		n++
		d.onRecord(n)
		return fn(r)
	})
}

func TestReplayStopsWhenItsContextEnds(t *testing.T) {
	const stored = 20_000
	mem := memstore.New()
	var adds []store.Record
	for seq := uint64(1); seq <= stored; seq++ {
		adds = append(adds, storetest.Sample(seq))
	}
	if err := mem.Apply(context.Background(), store.Batch{Adds: adds}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := deafReplay{Store: mem, onRecord: func(n int) {
		if n == 5000 {
			cancel() // a SIGTERM during the replay
		}
	}}
	srv := server.New(server.Config{Store: st, Logger: discardLogger()})
	defer srv.Close()
	n, err := srv.Replay(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Replay = %d, %v; want context.Canceled", n, err)
	}
	if n >= stored {
		t.Errorf("Replay loaded all %d jobs after its context ended", n)
	}
	if mem.Len() != stored {
		t.Errorf("the store holds %d records after a stopped replay, want %d", mem.Len(), stored)
	}
}

// TestHangingStoreAnswersWithinTheTimeout: while the store's Apply hangs,
// each background submit gets ERROR QUEUE_ERROR within StoreTimeout,
// back-pressure included, and creates no job; foreground jobs and workers
// go on. When the hung write lands after all, its job is kept and runs.
func TestHangingStoreAnswersWithinTheTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	mem := memstore.New()
	f := &storetest.Faulty{Store: mem}
	addr, _ := storedServer(t, f, server.Config{StoreTimeout: timeout, MaxPendingWrites: 2})
	client, other, worker := dial(t, addr), dial(t, addr), dial(t, addr)
	t.Cleanup(f.Release)

	f.Hold()
	var longest time.Duration
	for i := range 5 {
		start := time.Now()
		client.send(protocol.SubmitJobBG, "f", "u"+strconv.Itoa(i), "")
		a := client.expectArgs(protocol.Error)
		waited := time.Since(start)
		longest = max(longest, waited)
		if a[0] != "QUEUE_ERROR" || !strings.Contains(a[1], "no answer within the store timeout") {
			t.Fatalf("submit %d: ERROR %q, want QUEUE_ERROR naming the store timeout", i, a)
		}
		if waited > timeout+timeout/2 {
			t.Errorf("submit %d answered after %v, want within about %v", i, waited, timeout)
		}
	}
	t.Logf("longest wait %v for a timeout of %v", longest, timeout)

	other.send(protocol.SubmitJob, "g", "", "fg")
	other.expect(protocol.JobCreated, "H:test:6")
	worker.send(protocol.CanDo, "g")
	worker.send(protocol.GrabJobUniq)
	worker.expect(protocol.JobAssignUniq, "H:test:6", "g", "", "fg")
	worker.send(protocol.WorkComplete, "H:test:6", "ok")
	other.expect(protocol.WorkComplete, "H:test:6", "ok")
	other.line("status")
	other.expectText("f\t0\t0\t0\ng\t0\t0\t1\n.\n") // no job f: none was created

	// The first submit's Apply was held, not failed: once it lands, the
	// job is stored and runs although its submitter was refused.
	f.Release()
	eventually(t, "the late write to be taken back", func() bool { return mem.Len() == 1 })
	worker.send(protocol.CanDo, "f")
	worker.send(protocol.GrabJobUniq)
	worker.expect(protocol.JobAssignUniq, "H:test:1", "f", "u0", "")
	worker.send(protocol.WorkComplete, "H:test:1", "")
	eventually(t, "its record to be deleted", func() bool { return mem.Len() == 0 })
	client.send(protocol.SubmitJobBG, "f", "after", "")
	client.expect(protocol.JobCreated, "H:test:7")
}

// pathStore is a memstore that says it lives in dir (store.Pather), as
// the file stores do.
type pathStore struct {
	*memstore.Store
	dir string
}

func (p pathStore) Path() string { return p.dir }

// TestSpaceGuardRefusesNewJobsOnly: while the store's filesystem has less
// free space than StoreMinFree, background submits get QUEUE_ERROR naming
// it and no job is created; foreground jobs and completions go on, and the
// store status says the guard is low.
func TestSpaceGuardRefusesNewJobsOnly(t *testing.T) {
	mem := memstore.New()
	addr, srv := storedServer(t, pathStore{mem, t.TempDir()}, server.Config{StoreMinFree: 1 << 62})
	client, worker := dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJobBG, "f", "u", "")
	a := client.expectArgs(protocol.Error)
	if a[0] != "QUEUE_ERROR" || !strings.Contains(a[1], "free disk space below the minimum") {
		t.Fatalf("background submit on a full disk: ERROR %q, want QUEUE_ERROR naming the space guard", a)
	}
	if mem.Len() != 0 {
		t.Errorf("%d records stored for a refused job", mem.Len())
	}
	client.send(protocol.SubmitJob, "f", "fg", "x")
	client.expect(protocol.JobCreated, "H:test:2")
	worker.send(protocol.CanDo, "f")
	worker.send(protocol.GrabJobUniq)
	worker.expect(protocol.JobAssignUniq, "H:test:2", "f", "fg", "x")
	worker.send(protocol.WorkComplete, "H:test:2", "done")
	client.expect(protocol.WorkComplete, "H:test:2", "done")
	st := srv.StoreStatus()
	if st.Space == nil || !st.Space.Low || st.Space.Min != 1<<62 || st.Healthy {
		t.Errorf("StoreStatus: Space %+v, Healthy %v; want the guard low and the store not healthy", st.Space, st.Healthy)
	}
}

// TestNoSpaceGuardWithoutAPath: a store that does not say where it lives
// gets no guard, whatever StoreMinFree says.
func TestNoSpaceGuardWithoutAPath(t *testing.T) {
	addr, srv := storedServer(t, memstore.New(), server.Config{StoreMinFree: 1 << 62})
	client := dial(t, addr)
	client.send(protocol.SubmitJobBG, "f", "u", "")
	client.expect(protocol.JobCreated, "H:test:1")
	if st := srv.StoreStatus(); st.Space != nil {
		t.Errorf("StoreStatus().Space = %+v, want nil", st.Space)
	}
}

// TestBackPressureCountsTowardsTheTimeout: a submit that back-pressure
// held and that then reached the store is answered within one timeout of
// when it began to wait, not one timeout after it got room.
func TestBackPressureCountsTowardsTheTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := &storetest.Faulty{Store: memstore.New()}
	addr, srv := storedServer(t, f, server.Config{StoreTimeout: timeout, MaxPendingWrites: 2})
	t.Cleanup(f.Release)
	f.Hold()
	a, b, c := dial(t, addr), dial(t, addr), dial(t, addr)
	a.send(protocol.SubmitJobBG, "f", "held", "") // in the held Apply
	eventually(t, "the first Apply to be held", func() bool { return f.Held() == 1 })
	b.send(protocol.SubmitJobBG, "f", "queued", "") // queued: no room left
	eventually(t, "two adds to be pending", func() bool { return srv.StoreStatus().PendingAdds == 2 })
	// Half a timeout later, c waits for room; "queued" times out half a
	// timeout into that wait, and c's job goes to the store. Counted from
	// then, its answer would take a timeout and a half.
	time.Sleep(timeout / 2)
	start := time.Now()
	c.send(protocol.SubmitJobBG, "f", "waiting", "")
	args := c.expectArgs(protocol.Error)
	waited := time.Since(start)
	if args[0] != "QUEUE_ERROR" || !strings.Contains(args[1], "the job was not created") || strings.Contains(args[1], "no room") {
		t.Fatalf("ERROR %q, want QUEUE_ERROR for a job that reached the store", args)
	}
	if waited > timeout+timeout/4 {
		t.Errorf("a submit held by back-pressure was answered after %v, want within about %v (%q)", waited, timeout, args[1])
	}
	t.Logf("answered after %v: %s", waited.Round(time.Millisecond), args[1])
}
