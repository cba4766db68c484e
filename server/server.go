package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"gearmand/queue"
	"gearmand/server/gearhttp"
	"gearmand/store"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// Server is a Gearman job server: it accepts connections on any number of
// listeners and serves the binary and admin protocols on each, over one
// in-memory queue.
type Server struct {
	cfg       Config
	log       *slog.Logger
	queue     *queue.Queue
	committer *store.Committer[*queue.Job] // nil without a Store
	space     *store.SpaceGuard            // nil without a Store that has a Path, or StoreMinFree
	ctx       context.Context              // ends at Close
	cancel    context.CancelFunc

	mu struct {
		sync.Mutex
		listeners map[net.Listener]struct{}
		conns     map[*conn]struct{}
		closed    bool
		draining  bool
		// http serves the HTTP protocol, once ServeHTTPProtocol is called.
		http *gearhttp.Server
	}
	monitor   monitor    // store and replay figures, see status.go
	stop      stopState  // see shutdown.go
	limits    limitState // see limits.go
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // connection and timer goroutines
}

// New returns a Server configured by cfg. It starts the goroutine that
// fires epoch and timeout timers; Close stops it.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HandlePrefix == "" {
		cfg.HandlePrefix = DefaultHandlePrefix()
	}
	if len(cfg.HandlePrefix) > MaxHandlePrefix {
		cfg.HandlePrefix = cfg.HandlePrefix[:MaxHandlePrefix]
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "ERROR"
	}
	s := &Server{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	qcfg := queue.Config{
		HandlePrefix: cfg.HandlePrefix,
		JobRetries:   cfg.JobRetries,
		WorkerWakeup: cfg.WorkerWakeup,
		Now:          cfg.Now,

		MaxQueuedBytes: cfg.MaxQueuedBytes,
	}
	if cfg.Store != nil {
		var admit func() error
		if p, ok := cfg.Store.(store.Pather); ok && cfg.StoreMinFree > 0 {
			s.space = store.NewSpaceGuard(p.Path(), cfg.StoreMinFree, 0, cfg.Logger)
			admit = s.space.Admit
		}
		s.committer = store.NewCommitter(cfg.Store, store.CommitterConfig[*queue.Job]{
			Timeout: cfg.StoreTimeout,
			// A job refused for the timeout whose write landed after all
			// is stored: it runs rather than wait for the next start.
			OnLate: func(rs []store.Record) {
				for _, r := range rs {
					s.queue.Restore(r)
				}
			},
			Admit:           admit,
			Mode:            cfg.StoreMode,
			FlushInterval:   cfg.FlushInterval,
			MaxPending:      cfg.MaxPendingWrites,
			MaxPendingBytes: cfg.MaxPendingWriteBytes,
			OnCommit:        func(jobs []*queue.Job, err error) { s.queue.Durable(jobs, err) },
			Logger:          cfg.Logger,
			Observe: func(c store.Commit) {
				s.monitor.observeCommit(c)
				s.storeLost(c.Err)
			},
		})
		qcfg.Persister = s.committer
	}
	s.queue = queue.New(qcfg)
	s.mu.listeners = make(map[net.Listener]struct{})
	s.mu.conns = make(map[*conn]struct{})
	s.wg.Add(1)
	go s.runTimers()
	return s
}

// DefaultHandlePrefix is gearmand's "H:<hostname>".
func DefaultHandlePrefix() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	return "H:" + host
}

// Serve accepts connections on l until Shutdown or Close, and then returns
// ErrServerClosed. Temporary accept errors are retried with backoff; any
// other accept error is returned. Serve closes l when it returns.
//
// A listener from tls.NewListener serves TLS: each connection completes its
// handshake on its own goroutine within Config.TLSHandshakeTimeout, and one
// whose client certificate verified may run every admin command.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.mu.closed || s.mu.draining {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.mu.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.mu.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.stopping() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		s.startConn(nc)
	}
}

// isTemporary reports accept errors worth retrying, such as running out of
// file descriptors.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) stopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.closed || s.mu.draining
}

func (s *Server) startConn(nc net.Conn) {
	if !s.admitConn(nc) {
		return
	}
	if tc, ok := underlying(nc).(*net.TCPConn); ok && s.cfg.KeepAlive.Enable {
		ka := net.KeepAliveConfig{Enable: true, Idle: s.cfg.KeepAlive.Idle, Interval: s.cfg.KeepAlive.Interval, Count: s.cfg.KeepAlive.Count}
		if err := tc.SetKeepAliveConfig(ka); err != nil {
			s.log.Warn("setting keepalive failed", "remote", nc.RemoteAddr(), "err", err)
		}
	}
	c := newConn(s, nc)
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		nc.Close()
		s.releaseConn()
		return
	}
	s.mu.conns[c] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	go c.serve()
	go c.writeLoop()
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	s.mu.Unlock()
}

// Close stops at once: listeners and connections are closed, jobs held in
// memory are dropped. It waits for the connection goroutines to end.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.mu.closed = true
		for l := range s.mu.listeners {
			l.Close()
		}
		for c := range s.mu.conns {
			c.closeNet()
		}
		h := s.mu.http
		s.mu.Unlock()
		if h != nil {
			h.Close() // waits for its requests, which leave the queue
		}
		s.cancel()
		close(s.done)
	})
	s.wg.Wait()
	s.reportJobsLeft()
	return s.flushStore()
}

// flushStore writes what the committer still holds (write-behind adds were
// acknowledged already), bounded by FinalFlushTimeout so a dead store
// cannot hang the exit.
func (s *Server) flushStore() error {
	if s.committer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), FinalFlushTimeout)
	defer cancel()
	err := s.committer.Close(ctx)
	if s.space != nil {
		s.space.Close()
	}
	if err != nil {
		return fmt.Errorf("server: flushing the store: %w", err)
	}
	return nil
}

// Done is closed once the server has begun stopping, whatever stopped it:
// Close, the end of Shutdown or ShutdownWhenEmpty, the admin commands
// `shutdown` and `shutdown graceful`, or the store taken over by another
// server (then Err says so). Close returns only when its goroutines have
// ended.
func (s *Server) Done() <-chan struct{} { return s.done }

// runTimers drives the queue's epoch and timeout timers with the real clock.
func (s *Server) runTimers() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := s.queue.Tick(s.cfg.Now())
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(s.cfg.Now()), 0)
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-s.queue.TimerChanged():
		case <-s.done:
			return
		}
	}
}

// replayCheckEvery is how many records Replay loads between looks at its
// context, for drivers whose iteration does not watch it.
const replayCheckEvery = 4096

// Replay loads every job the Store holds into the queue, in sequence
// order, keeping handles, uniques, priorities, times, reducers and attempt
// counts. Call it once, before Serve. Progress is logged every 100,000
// jobs; records the driver cannot decode are logged and skipped (the driver
// keeps them). It returns the number of jobs loaded.
//
// When ctx ends Replay stops within a few thousand records and returns
// ctx's error; the store is only read, so every job stays stored for the
// next start, but the server must not serve the half-loaded queue.
func (s *Server) Replay(ctx context.Context) (_ int, err error) {
	s.monitor.replayStarted()
	defer func() { s.monitor.replayEnded(err) }()
	if s.cfg.Store == nil {
		return 0, nil
	}
	if c, ok := s.cfg.Store.(store.Corruption); ok {
		c.SetCorruptHandler(func(key string, err error) {
			s.log.Error("skipping a stored job that cannot be decoded; it is kept in the store", "key", key, "err", err)
		})
	}
	start := time.Now()
	n := 0
	// Replay only adds to the heap, so collections during it find little
	// to free: collect less often until it is done.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	err = s.cfg.Store.Replay(ctx, func(r store.Record) error {
		if n%replayCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s.queue.Restore(r)
		s.monitor.replayed.Add(1)
		n++
		if n%100_000 == 0 {
			s.log.Log(ctx, LevelNotice, "replaying stored jobs", "loaded", n, "elapsed", time.Since(start).Round(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("replaying stored jobs: %w", err)
	}
	s.log.Log(ctx, LevelNotice, "replayed stored jobs", "jobs", n, "elapsed", time.Since(start).Round(time.Millisecond))
	return n, nil
}
