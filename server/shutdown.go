package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"gearmand/store"
)

// How the server stops. Three ways, from the gentlest:
//
//   - ShutdownWhenEmpty (gearmand's SIGUSR1): stop accepting, keep
//     dispatching, stop once the server holds no job at all.
//   - Shutdown (SIGTERM, `shutdown graceful`): stop accepting and stop
//     dispatching; jobs already running finish, bounded by
//     Config.ShutdownTimeout; queued jobs are left for the next start.
//   - Close (a second signal, `shutdown`): at once.
//
// Each ends in Close, which flushes the store's committer (bounded), so
// that every acknowledged background job is stored before the process
// exits. A server whose store was taken over by another server stops by
// itself through Close and says why in Err.

// DefaultShutdownTimeout is how long Shutdown waits for running jobs when
// Config.ShutdownTimeout is zero.
const DefaultShutdownTimeout = 30 * time.Second

// FinalFlushTimeout bounds Close's last flush of the store's committer:
// what it has not written by then (write-behind adds) is logged as lost.
const FinalFlushTimeout = time.Minute

// stopState is what the server knows about why and how it stopped.
type stopState struct {
	mu   sync.Mutex
	lost error // the store fenced this server off; see storeLost
	// reported is set once the jobs left at Close were logged.
	reported bool
}

// stopAccepting closes the listeners (the HTTP protocol's too) and makes
// Serve refuse new ones; connections already open go on.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.draining = true
	for l := range s.mu.listeners {
		l.Close()
	}
	s.shutdownHTTPLocked()
}

// Shutdown stops gracefully: listeners close at once and no job is handed
// out any more (workers asking get NO_JOB). Jobs already assigned to
// workers go on until the last one ends, Config.ShutdownTimeout passes or
// ctx ends, whichever comes first; then Shutdown calls Close. Meanwhile
// open connections keep working: results of running jobs reach their
// clients, and submissions are accepted but not dispatched.
//
// Queued jobs do not run. With a Store the background ones stay stored and
// come back on the next start, as do running background jobs cut short by
// the timeout (they run again, at least once); without a Store they are
// lost, and Close logs how many. Foreground jobs end with their clients'
// connections.
//
// It returns ctx's error if ctx ended first, context.DeadlineExceeded if
// the timeout did, else Close's. Shutdown is idempotent and safe to call
// concurrently with Close and ShutdownWhenEmpty.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	idle, running := s.queue.Drain()
	timeout := s.cfg.ShutdownTimeout
	if timeout == 0 {
		timeout = DefaultShutdownTimeout
	}
	s.log.Log(ctx, LevelNotice, "graceful shutdown: no new connections or jobs handed out; waiting for running jobs",
		"running", running, "timeout", max(timeout, 0))
	wait, cancel := context.WithTimeout(ctx, max(timeout, 0))
	defer cancel()
	var err error
	select {
	case <-idle:
	case <-s.done:
	case <-wait.Done():
		err = ctx.Err()
		if err == nil {
			err = context.DeadlineExceeded
		}
		if n := s.queue.Running(); n > 0 {
			s.log.Warn("graceful shutdown: stopping with jobs still running; background ones run again after the next start",
				"running", n, "err", err)
		}
	}
	s.flushConns()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// flushConnsTimeout bounds flushConns, so that a peer that does not read
// cannot hold up the stop.
const flushConnsTimeout = time.Second

// flushConns writes out what every connection has queued, so that the
// results of the last running jobs reach their clients before Close cuts
// the connections.
func (s *Server) flushConns() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	deadline := time.Now().Add(flushConnsTimeout)
	for _, c := range conns {
		c.nc.SetWriteDeadline(deadline)
		c.flush()
	}
}

// ShutdownWhenEmpty stops as gearmand does on SIGUSR1: listeners close at
// once, existing connections keep working and jobs keep being handed out,
// and once the server holds no job (queued or running) it calls Close. If
// ctx ends first it closes at once and returns ctx's error. It is
// idempotent and safe to call concurrently with Close and Shutdown (which
// stops dispatch, so that the server may never become empty: Shutdown's
// Close ends the wait).
func (s *Server) ShutdownWhenEmpty(ctx context.Context) error {
	s.stopAccepting()
	s.log.Log(ctx, LevelNotice, "graceful shutdown: waiting until no job is left", "jobs", s.queue.Len())
	var err error
	select {
	case <-s.queue.WaitEmpty():
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.done:
	}
	s.flushConns()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Err returns why the server stopped by itself: its store was taken over
// by another server (an error wrapping store.ErrLocked). It is nil while
// the server runs and after any other stop.
func (s *Server) Err() error {
	s.stop.mu.Lock()
	defer s.stop.mu.Unlock()
	return s.stop.lost
}

// storeLost stops the server when an Apply failed because another server
// took the store over (store.ErrLocked): every write of this one is refused
// from now on, so serving on would fail every background submission while
// looking alive. Called from the committer's goroutine, so Close, which
// waits for that goroutine, runs on its own.
func (s *Server) storeLost(err error) {
	if !errors.Is(err, store.ErrLocked) {
		return
	}
	s.stop.mu.Lock()
	first := s.stop.lost == nil
	if first {
		s.stop.lost = err
	}
	s.stop.mu.Unlock()
	if !first {
		return
	}
	s.log.Log(context.Background(), LevelFatal, "the store was taken over by another server; stopping", "err", err)
	go s.Close()
}

// reportJobsLeft logs, once, the jobs the server still held when it
// stopped: stored for the next start, or lost without a Store. Call it
// after the connection goroutines have ended, when foreground jobs have
// left with their clients.
func (s *Server) reportJobsLeft() {
	s.stop.mu.Lock()
	done := s.stop.reported
	s.stop.reported = true
	s.stop.mu.Unlock()
	n := s.queue.Len()
	if done || n == 0 {
		return
	}
	if s.cfg.Store == nil {
		// At NOTICE, which is shown at every --verbose: losing jobs is a
		// line the operator must see, and WARNING is hidden by default.
		s.log.Log(context.Background(), LevelNotice, "stopped with jobs in memory only (-q builtin, no store): they are lost", "jobs", n)
		return
	}
	s.log.Log(context.Background(), LevelNotice, "stopped with background jobs left; they stay stored and come back on the next start", "jobs", n)
}
