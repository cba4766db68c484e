package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"gearmand/protocol"
	"gearmand/server"
	"gearmand/store"
	"gearmand/store/memstore"
	"gearmand/store/storetest"
)

// isDone reports whether the server has begun stopping.
func isDone(srv *server.Server) bool {
	select {
	case <-srv.Done():
		return true
	default:
		return false
	}
}

// listenerClosed waits until addr refuses connections.
func listenerClosed(t *testing.T, addr string) {
	t.Helper()
	eventually(t, "the listener to close", func() bool {
		nc, err := dialOnce(addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
}

// readPacketOrClosed reads one packet, or returns type 0 if the server
// closed the connection first.
func (p *peer) readPacketOrClosed() (protocol.Type, []byte) {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(replyTimeout))
	if _, err := p.br.Peek(1); errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return 0, nil
	}
	return p.readPacket()
}

// `shutdown graceful` stops accepting and dispatching, lets the running job
// finish and report to its client, and leaves the queued background job in
// the store.
func TestShutdownGracefulWaitsForRunningJobs(t *testing.T) {
	mem := memstore.New()
	addr, srv := storedServer(t, mem, server.Config{})
	client, worker, admin := dial(t, addr), dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJob, "f", "", "running")
	client.expect(protocol.JobCreated, "H:test:1")
	client.send(protocol.SubmitJobBG, "f", "", "queued")
	client.expect(protocol.JobCreated, "H:test:2")
	worker.send(protocol.CanDo, "f")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "f", "running")

	admin.line("shutdown graceful")
	admin.expectText("OK\r\n")
	listenerClosed(t, addr)
	// No more jobs are handed out, and the server waits for the running one.
	worker.send(protocol.GrabJob)
	worker.expect(protocol.NoJob)
	if isDone(srv) {
		t.Fatal("stopped with a job running")
	}
	worker.send(protocol.WorkComplete, "H:test:1", "result")
	client.expect(protocol.WorkComplete, "H:test:1", "result")
	<-srv.Done()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Err(); err != nil {
		t.Fatalf("Err after a graceful stop: %v", err)
	}
	var left []string
	mem.Replay(context.Background(), func(r store.Record) error {
		left = append(left, string(r.Data))
		return nil
	})
	if len(left) != 1 || left[0] != "queued" {
		t.Fatalf("stored after the stop: %q, want the queued job", left)
	}
}

// Shutdown gives up on running jobs when ShutdownTimeout passes (negative:
// at once) or its context ends, and closes.
func TestShutdownTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration // negative: do not wait; 0: the default
		cancel  bool
	}{
		{name: "no wait", timeout: -1},
		{name: "context ends", cancel: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, srv := storedServer(t, memstore.New(), server.Config{ShutdownTimeout: tc.timeout})
			client, worker := dial(t, addr), dial(t, addr)
			client.send(protocol.SubmitJobBG, "f", "", "")
			client.expect(protocol.JobCreated, "H:test:1")
			worker.send(protocol.CanDo, "f")
			worker.send(protocol.GrabJob)
			worker.expect(protocol.JobAssign, "H:test:1", "f", "")
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancel {
				cancel()
			} else {
				defer cancel()
			}
			err := srv.Shutdown(ctx)
			want := context.DeadlineExceeded
			if tc.cancel {
				want = context.Canceled
			}
			if !errors.Is(err, want) {
				t.Fatalf("Shutdown = %v, want %v", err, want)
			}
			if !isDone(srv) {
				t.Fatal("Shutdown returned and the server is not stopped")
			}
			worker.expectClosed()
		})
	}
}

// ShutdownWhenEmpty (gearmand's SIGUSR1) keeps dispatching and stops once
// no job is left.
func TestShutdownWhenEmpty(t *testing.T) {
	srv := server.New(server.Config{Logger: discardLogger(), HandlePrefix: "H:test"})
	addr := serveOn(t, srv)
	client, worker := dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJobBG, "f", "", "")
	client.expect(protocol.JobCreated, "H:test:1")
	stopped := make(chan error, 1)
	go func() { stopped <- srv.ShutdownWhenEmpty(context.Background()) }()
	// New connections are refused, existing ones keep working.
	listenerClosed(t, addr)
	if isDone(srv) {
		t.Fatal("stopped with a job queued")
	}
	worker.send(protocol.CanDo, "f")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "f", "")
	worker.send(protocol.WorkComplete, "H:test:1", "")
	if err := <-stopped; err != nil {
		t.Fatalf("ShutdownWhenEmpty = %v", err)
	}
}

// A server whose store refuses its writes because another server took the
// store over stops by itself and says why.
func TestStoreTakenOverStopsTheServer(t *testing.T) {
	f := &storetest.Faulty{Store: memstore.New()}
	addr, srv := storedServer(t, f, server.Config{})
	client := dial(t, addr)
	client.send(protocol.SubmitJobBG, "f", "", "before")
	client.expect(protocol.JobCreated, "H:test:1")
	if srv.Err() != nil {
		t.Fatalf("Err while running: %v", srv.Err())
	}
	taken := fmt.Errorf("namespace taken over by generation 2: %w", store.ErrLocked)
	f.Fail(taken)
	client.send(protocol.SubmitJobBG, "f", "", "after")
	// The submitter is refused, or the server has closed its connection
	// already: either way the job is not acknowledged.
	if typ, payload := client.readPacketOrClosed(); typ != protocol.Error && typ != 0 {
		t.Fatalf("a submit the store refused got %s %q", typ, payload)
	}
	<-srv.Done()
	srv.Close()
	if err := srv.Err(); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Err = %v, want store.ErrLocked", err)
	}
}
