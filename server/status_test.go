package server_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"gearmand/protocol"
	"gearmand/server"
	"gearmand/store"
	"gearmand/store/memstore"
	"gearmand/store/storetest"
)

func TestStoreStatusWithoutAStore(t *testing.T) {
	srv := server.New(server.Config{Logger: discardLogger()})
	defer srv.Close()
	st := srv.StoreStatus()
	if st.Kind != "builtin" || st.Durable || !st.Healthy || st.Mode != "" {
		t.Errorf("StoreStatus() = %+v, want builtin, not durable, healthy, no mode", st)
	}
	if _, err := srv.Replay(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := srv.ReplayStatus(); r.State != server.ReplayDone || r.Loaded != 0 {
		t.Errorf("ReplayStatus() = %+v, want done with 0 loaded", r)
	}
}

func TestStoreStatusFollowsCommits(t *testing.T) {
	faulty := &storetest.Faulty{Store: memstore.New()}
	var observed atomic.Int64
	srv := server.New(server.Config{Store: faulty, StoreName: "memory-test", HandlePrefix: "H:test", Logger: discardLogger()})
	srv.ObserveCommits(func(store.Commit) { observed.Add(1) })
	if r := srv.ReplayStatus(); r.State != server.ReplayNotStarted {
		t.Errorf("before Replay: %+v, want not started", r)
	}
	addr := serveOn(t, srv)
	c := dial(t, addr)
	c.send(protocol.SubmitJobBG, "f", "", "one")
	c.expect(protocol.JobCreated, "H:test:1")

	st := srv.StoreStatus()
	if st.Kind != "memory-test" || !st.Durable || st.Mode != "write-through" || !st.Healthy {
		t.Errorf("after a commit: %+v, want memory-test, durable, write-through, healthy", st)
	}
	if st.Commits != 1 || st.Last.Adds != 1 || st.Failures != 0 || st.LastAt.IsZero() {
		t.Errorf("after one commit: commits %d, last adds %d, failures %d, at %v", st.Commits, st.Last.Adds, st.Failures, st.LastAt)
	}
	if observed.Load() != 1 {
		t.Errorf("the observer heard of %d commits, want 1", observed.Load())
	}

	faulty.Fail(errors.New("disk on fire"))
	c.send(protocol.SubmitJobBG, "f", "", "two")
	c.expectArgs(protocol.Error)
	st = srv.StoreStatus()
	if st.Healthy || st.Failures != 1 || !strings.Contains(st.LastError, "disk on fire") {
		t.Errorf("after a failed commit: healthy %v, failures %d, last error %q", st.Healthy, st.Failures, st.LastError)
	}

	faulty.Heal()
	c.send(protocol.SubmitJobBG, "f", "", "three")
	c.expect(protocol.JobCreated, "H:test:3")
	if st = srv.StoreStatus(); !st.Healthy || st.Commits != 3 || st.LastError == "" {
		t.Errorf("after recovering: healthy %v, commits %d, last error %q (kept)", st.Healthy, st.Commits, st.LastError)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("Connections() = %d, want 1", n)
	}
}

func TestReplayStatusCountsLoadedJobs(t *testing.T) {
	st := memstore.New()
	var adds []store.Record
	for seq := uint64(1); seq <= 25; seq++ {
		adds = append(adds, storetest.Sample(seq))
	}
	if err := st.Apply(context.Background(), store.Batch{Adds: adds}); err != nil {
		t.Fatal(err)
	}
	_, srv := storedServer(t, st, server.Config{})
	r := srv.ReplayStatus()
	if r.State != server.ReplayDone || r.Loaded != 25 || r.Started.IsZero() || r.Err != "" {
		t.Errorf("ReplayStatus() = %+v, want done with 25 loaded", r)
	}
	if page := srv.JobsPage(20, 10); page.Total != 25 || len(page.Jobs) != 5 {
		t.Errorf("JobsPage(20, 10): total %d, %d jobs; want 25 and 5", page.Total, len(page.Jobs))
	}
}

func TestReplayStatusReportsFailure(t *testing.T) {
	faulty := &storetest.Faulty{Store: memstore.New()}
	faulty.FailReplay(errors.New("unreadable"))
	srv := server.New(server.Config{Store: faulty, Logger: discardLogger()})
	defer srv.Close()
	if _, err := srv.Replay(context.Background()); err == nil {
		t.Fatal("Replay succeeded over a failing store")
	}
	if r := srv.ReplayStatus(); r.State != server.ReplayFailed || !strings.Contains(r.Err, "unreadable") {
		t.Errorf("ReplayStatus() = %+v, want failed with the reason", r)
	}
}

// pausingStore stops its Replay after the first record until resume is
// closed, telling paused when it gets there.
type pausingStore struct {
	store.Store
	paused, resume chan struct{}
}

func (p *pausingStore) Replay(ctx context.Context, fn func(store.Record) error) error {
	n := 0
	return p.Store.Replay(ctx, func(r store.Record) error {
		if n++; n == 2 {
			close(p.paused)
			<-p.resume
		}
		return fn(r)
	})
}

func TestReplayStatusWhileRunning(t *testing.T) {
	mem := memstore.New()
	if err := mem.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(1), storetest.Sample(2)}}); err != nil {
		t.Fatal(err)
	}
	st := &pausingStore{Store: mem, paused: make(chan struct{}), resume: make(chan struct{})}
	srv := server.New(server.Config{Store: st, Logger: discardLogger()})
	defer srv.Close()
	replayed := make(chan error, 1)
	go func() {
		_, err := srv.Replay(context.Background())
		replayed <- err
	}()
	<-st.paused
	if r := srv.ReplayStatus(); r.State != server.ReplayRunning || r.Loaded != 1 || r.Duration <= 0 {
		t.Errorf("during the replay: %+v, want running with 1 loaded and a duration so far", r)
	}
	close(st.resume)
	if err := <-replayed; err != nil {
		t.Fatal(err)
	}
	if r := srv.ReplayStatus(); r.State != server.ReplayDone || r.Loaded != 2 {
		t.Errorf("after the replay: %+v, want done with 2 loaded", r)
	}
}
