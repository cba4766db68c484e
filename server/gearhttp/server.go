package gearhttp

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"gearmand/queue"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxBodySize       = 64 << 20
	DefaultMaxResponseSize   = 256 << 20
	DefaultReadHeaderTimeout = time.Minute
	DefaultIdleTimeout       = 5 * time.Minute
)

// Room is the back-pressure of the store behind the queue:
// *store.Committer implements it. Before a background job is submitted the
// request waits while HasRoom is false, as a binary connection does; a
// WaitRoom that gives up with an error wrapping store.ErrTimeout is
// answered 503 "QUEUE_ERROR: ...".
type Room interface {
	HasRoom() bool
	WaitRoom(ctx context.Context) error
}

// Config configures a Server. Queue is required; every other field has a
// documented default.
type Config struct {
	// Queue is where jobs are submitted and statuses read.
	Queue *queue.Queue
	// Room, when set, slows background submissions down while the store is
	// behind. Nil never waits.
	Room Room
	// MaxBodySize bounds a submission's SUBMIT_JOB payload (function,
	// unique and data): use the server's --max-packet-size. Default 64 MiB.
	MaxBodySize int
	// MaxResponseSize bounds what a foreground job's answer (its WORK_DATA
	// chunks and result) may hold in memory. Default 256 MiB.
	MaxResponseSize int
	// ServerName is the Server response header, e.g. "Gearman/1.1.20+go".
	// Empty sends none.
	ServerName string
	// ReadHeaderTimeout bounds reading a request's headers, IdleTimeout how
	// long a keep-alive connection may wait for its next request. Defaults
	// one and five minutes. Nothing bounds how long a foreground job runs.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// Logger receives request failures at Info and net/http's own errors
	// at Warn. Default slog.Default().
	Logger *slog.Logger
}

// Server is an http.Handler for the Gearman HTTP protocol and the
// net/http server that runs it. Its lifecycle is net/http's: Serve on any
// number of listeners, Shutdown to stop accepting and let requests in
// flight finish, Close to stop at once.
type Server struct {
	cfg Config
	log *slog.Logger
	hs  *http.Server
	// ctx ends at Close, ending every request still waiting for a job.
	ctx    context.Context
	cancel context.CancelFunc

	mu struct {
		sync.Mutex
		closed bool
	}
	// active counts requests in ServeHTTP, waiting those of them past
	// reading their body, which end promptly once ctx ends. Add to either
	// only under mu while !closed.
	active  sync.WaitGroup
	waiting sync.WaitGroup
}

// New returns a Server for cfg. It panics if cfg.Queue is nil, a
// programming error.
func New(cfg Config) *Server {
	if cfg.Queue == nil {
		panic("gearhttp: Config.Queue is nil")
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.MaxResponseSize <= 0 {
		cfg.MaxResponseSize = DefaultMaxResponseSize
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Serve accepts HTTP connections on l until Shutdown or Close, and then
// returns http.ErrServerClosed; any other accept error is returned as
// net/http returns it. l is closed when Serve returns. Header lines that
// net/http would refuse and that gearmand ignores are deleted before
// net/http reads them (see lenient.go).
func (s *Server) Serve(l net.Listener) error { return s.hs.Serve(lenientListener{l}) }

// Shutdown stops accepting: listeners close at once, idle connections
// close, and each request in flight is answered (foreground ones when their
// job ends) before its connection closes. It returns once none is left, or
// with ctx's error when ctx ends first; Close still has to be called.
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.Shutdown(ctx) }

// Close stops at once: listeners and connections close, and requests still
// waiting for a job end, leaving the queue as disconnecting clients do.
// A request whose job has already ended is answered first, so that a
// graceful stop (the jobs finish, then Close) loses no answer; the others
// get 503. It returns once every request's goroutine has left the handler.
// Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	s.cancel()
	s.waiting.Wait()
	err := s.hs.Close()
	s.active.Wait()
	return err
}

// enter counts a request into wg, unless the server is closed.
func (s *Server) enter(wg *sync.WaitGroup) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return false
	}
	wg.Add(1)
	return true
}
