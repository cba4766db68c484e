package server

import (
	"log/slog"
	"net/netip"
	"time"

	"gearmand/store"
)

// Version is what the `version` admin command reports after "OK ". It keeps
// gearmand's shape (monitors parse the leading 1.1.x) and says what we are.
const Version = "1.1.20+go"

// Config configures a Server. The zero value is usable: every field has a
// documented default.
type Config struct {
	// HandlePrefix starts every job handle ("<prefix>:<n>"). Default
	// "H:<hostname>". A prefix longer than MaxHandlePrefix is cut.
	HandlePrefix string

	// JobRetries bounds how many times a job runs when its worker is lost
	// or times out, with gearmand master's meaning: any negative value is
	// unlimited, 0 means no retry (dropped on the first loss) and N means at
	// most N runs. When retries are exhausted waiting clients get WORK_FAIL.
	// Note that the zero value is "no retry"; gearmand's default, and the
	// command line's, is -1.
	JobRetries int

	// WorkerWakeup is how many sleeping workers one newly runnable job
	// wakes with NOOP; 0 wakes them all.
	WorkerWakeup int

	// Exceptions turns the `exceptions` option on for every connection, so
	// clients receive WORK_EXCEPTION instead of WORK_FAIL.
	Exceptions bool

	// MaxPacketSize bounds a binary packet's payload; larger packets are
	// answered with ERROR ARGUMENT_TOO_LARGE and skipped. Default 64 MiB.
	MaxPacketSize int

	// KeepAlive, when Enable is set, applies TCP keepalive to every accepted
	// connection. Zero durations and counts leave the OS defaults.
	KeepAlive KeepAlive

	// TLSHandshakeTimeout bounds the TLS handshake of a connection accepted
	// from a TLS listener (see Serve); a peer that has not finished it in
	// time is disconnected. Default 10s.
	TLSHandshakeTimeout time.Duration

	// AdminAllow lists the networks, besides loopback, whose connections
	// may run the admin commands that change state (shutdown, cancel job,
	// create function, drop function, maxqueue). Connections that
	// presented a verified TLS client certificate may run them from
	// anywhere. See AdminPermitted.
	AdminAllow []netip.Prefix

	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger

	// LogLevel is the name the `verbose` admin command reports (FATAL,
	// ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO or DEBUG). Default
	// "ERROR", gearmand's default.
	LogLevel string

	// Now returns the current time. Default time.Now. Tests inject a clock.
	Now func() time.Time

	// Store, when set, makes background jobs durable: they are written
	// through it (or behind it, see StoreMode) and Replay reloads them.
	// The caller opens it and closes it after Close returns. Nil keeps
	// jobs in memory only (-q builtin).
	Store store.Store
	// StoreName names the Store's kind ("bolt", "postgres", ...) for the
	// dashboard and metrics. Default "custom" when Store is set.
	StoreName string
	// StoreMode is write-through (the default: JOB_CREATED only once the
	// job is durable) or write-behind.
	StoreMode store.Mode
	// FlushInterval is how often write-behind flushes. Default 10ms.
	FlushInterval time.Duration
	// MaxPendingWrites bounds the background jobs waiting for the store
	// (count and payload bytes); submitters wait beyond it. Defaults:
	// 100,000 jobs and 64 MiB.
	MaxPendingWrites     int
	MaxPendingWriteBytes int
	// StoreTimeout bounds how long a background submitter waits for the
	// store, back-pressure included (Submission.Since): past it the submitter
	// gets ERROR QUEUE_ERROR and the job is not created. A write that the
	// store finishes after that keeps the job, which then runs (at least
	// once; see store.CommitterConfig.Timeout). Zero: no bound.
	StoreTimeout time.Duration
	// StoreMinFree is the free space, in bytes, below which new background
	// jobs are refused with QUEUE_ERROR, on the filesystem of a Store that
	// says where it lives (store.Pather); completions still work, and
	// submits succeed again once space is freed. Zero: no guard.
	StoreMinFree uint64

	// ShutdownTimeout bounds how long Shutdown waits for running jobs to
	// finish before it closes anyway. Zero means DefaultShutdownTimeout
	// (30s); negative means do not wait.
	ShutdownTimeout time.Duration

	// Resource limits (see limits.go). Each keeps one peer from taking
	// what the others need; gearmand has none of them.

	// MaxConnections bounds the open Gearman protocol connections (the
	// HTTP protocol's are not counted). A connection accepted beyond it is
	// sent ERROR TOO_MANY_CONNECTIONS, when that cannot block, and closed;
	// the refusals are logged at WARNING at most once a second. Zero or
	// negative: no limit (the default, as in gearmand).
	MaxConnections int

	// MaxQueuedBytes bounds the payload bytes of all the jobs the server
	// holds, queued or running; a submission beyond it gets ERROR
	// QUEUE_ERROR "Job queue is full", as `maxqueue` does. Jobs replayed
	// from the store count but are never refused. Zero: no limit.
	MaxQueuedBytes int64

	// PacketTimeout bounds the time from the first byte of a packet or
	// admin line to its last; a peer that takes longer (a slow-loris) is
	// disconnected. A connection idle between messages is never cut:
	// workers wait for jobs for hours. Zero means DefaultPacketTimeout
	// (30s); negative means no limit.
	PacketTimeout time.Duration

	// MaxUnsentBytes bounds the replies and forwarded packets queued for a
	// connection that does not read them; past it the connection is
	// closed. Zero means DefaultMaxUnsentBytes (256 MiB).
	MaxUnsentBytes int

	// WriteTimeout bounds each write to a connection (of at most 1 MiB): a
	// peer that takes no more for that long is disconnected, so a client
	// that never reads cannot hold its connection's goroutine. Zero means
	// DefaultWriteTimeout (60s); negative means no limit.
	WriteTimeout time.Duration
}

// KeepAlive is gearmand's --keepalive* settings.
type KeepAlive struct {
	Enable   bool
	Idle     time.Duration // --keepalive-idle
	Interval time.Duration // --keepalive-interval
	Count    int           // --keepalive-count
}

// MaxHandlePrefix leaves room in a 64-byte handle for ":" and a 20-digit
// counter.
const MaxHandlePrefix = 43
