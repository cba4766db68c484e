package server

import (
	"sync"
	"sync/atomic"
	"time"

	"gearmand/queue"
	"gearmand/store"
)

// This file holds what the server tells monitoring (the dashboard, the
// JSON API and the metrics): snapshots of the queue, the store's health
// and the state of the start-up replay. None of it is on the job path
// beyond one atomic add per replayed record and one short lock per commit.

// Functions lists every function with its queued (per priority), running
// and worker counts, in creation order.
func (s *Server) Functions() []queue.FunctionStatus { return s.queue.Functions() }

// Workers lists every connection with the functions it registered.
func (s *Server) Workers() []queue.WorkerInfo { return s.queue.Workers() }

// JobsPage lists at most limit jobs in creation order after skipping
// offset, without copying the others.
func (s *Server) JobsPage(offset, limit int) queue.JobPage { return s.queue.JobsPage(offset, limit) }

// Counters returns the queue's running totals of submitted, completed,
// failed and requeued jobs.
func (s *Server) Counters() queue.Counters { return s.queue.Counters() }

// Now is the server's clock (Config.Now), for ages of listed jobs.
func (s *Server) Now() time.Time { return s.cfg.Now() }

// Connections is the number of open client and worker connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.conns)
}

// ObserveCommits makes fn hear of every store commit (see store.Commit),
// replacing any earlier observer; nil stops it. fn is called from the
// committer's goroutine and must not block. Without a Store it is never
// called.
func (s *Server) ObserveCommits(fn func(store.Commit)) {
	if fn == nil {
		s.monitor.observer.Store(nil)
		return
	}
	s.monitor.observer.Store(&fn)
}

// StoreStatus is the state of the server's store.
type StoreStatus struct {
	// Kind is Config.StoreName, or "builtin" without a Store.
	Kind string
	// Durable is false for the builtin memory queue.
	Durable bool
	// Mode is "write-through" or "write-behind"; empty when not Durable.
	Mode string
	// Healthy is false while the latest commit failed: background submits
	// are being refused (write-through) or not yet written (write-behind);
	// and while the space guard refuses new background jobs.
	Healthy bool
	// Commits and Failures count Apply calls since start, and CommitTime
	// is their total duration.
	Commits    uint64
	Failures   uint64
	CommitTime time.Duration
	// Last is the latest commit, and LastAt when it ended (zero if none).
	Last   store.Commit
	LastAt time.Time
	// LastError is the latest failure's message, and LastErrorAt its time.
	LastError   string
	LastErrorAt time.Time
	// PendingAdds and PendingBytes are background jobs waiting for, or
	// being written to, the store.
	PendingAdds  int
	PendingBytes int
	// Timeout is Config.StoreTimeout (0: none).
	Timeout time.Duration
	// Space is what the space guard saw last; nil without a guard.
	Space *store.SpaceStatus
}

// MeanCommit is the mean duration of the commits so far.
func (st StoreStatus) MeanCommit() time.Duration {
	if st.Commits == 0 {
		return 0
	}
	return st.CommitTime / time.Duration(st.Commits)
}

// StoreStatus reports the store's kind, health and commit figures.
func (s *Server) StoreStatus() StoreStatus {
	if s.committer == nil {
		return StoreStatus{Kind: "builtin", Healthy: true}
	}
	s.monitor.mu.Lock()
	st := s.monitor.mu.store
	s.monitor.mu.Unlock()
	st.Kind = s.cfg.StoreName
	if st.Kind == "" {
		st.Kind = "custom"
	}
	st.Durable = true
	st.Mode = s.cfg.StoreMode.String()
	st.Healthy = st.Last.Err == nil
	st.PendingAdds, st.PendingBytes = s.committer.Pending()
	st.Timeout = s.cfg.StoreTimeout
	if s.space != nil {
		sp := s.space.Status()
		st.Space = &sp
		st.Healthy = st.Healthy && !sp.Low
	}
	return st
}

// ReplayState says where the start-up replay is.
type ReplayState string

// The replay states.
const (
	ReplayNotStarted ReplayState = "not started"
	ReplayRunning    ReplayState = "running"
	ReplayDone       ReplayState = "done"
	ReplayFailed     ReplayState = "failed"
)

// ReplayStatus is the progress or outcome of Replay.
type ReplayStatus struct {
	State   ReplayState
	Loaded  int64     // jobs loaded so far
	Started time.Time // zero before Replay
	// Duration is how long Replay took, or has taken so far while running.
	Duration time.Duration
	Err      string // why it failed
}

// ReplayStatus reports the start-up replay's progress: a dashboard started
// before Replay shows it as it goes.
func (s *Server) ReplayStatus() ReplayStatus {
	s.monitor.mu.Lock()
	r := s.monitor.mu.replay
	s.monitor.mu.Unlock()
	r.Loaded = s.monitor.replayed.Load()
	if r.State == ReplayRunning {
		r.Duration = time.Since(r.Started)
	}
	if r.State == "" {
		r.State = ReplayNotStarted
	}
	return r
}

// monitor is the server's record of store commits and of the replay.
type monitor struct {
	mu struct {
		sync.Mutex
		store  StoreStatus
		replay ReplayStatus
	}
	replayed atomic.Int64
	observer atomic.Pointer[func(store.Commit)]
}

// observeCommit is the committer's Observe: it keeps the store's figures
// and passes the commit on to ObserveCommits' observer.
func (m *monitor) observeCommit(c store.Commit) {
	now := time.Now()
	m.mu.Lock()
	st := &m.mu.store
	st.Commits++
	st.CommitTime += c.Duration
	st.Last, st.LastAt = c, now
	if c.Err != nil {
		st.Failures++
		st.LastError, st.LastErrorAt = c.Err.Error(), now
	}
	m.mu.Unlock()
	if fn := m.observer.Load(); fn != nil {
		(*fn)(c)
	}
}

func (m *monitor) replayStarted() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.replay = ReplayStatus{State: ReplayRunning, Started: time.Now()}
	m.replayed.Store(0)
}

func (m *monitor) replayEnded(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &m.mu.replay
	r.Duration = time.Since(r.Started)
	r.State = ReplayDone
	if err != nil {
		r.State, r.Err = ReplayFailed, err.Error()
	}
}
