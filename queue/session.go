package queue

import (
	"slices"
	"sync/atomic"
	"time"
)

// Peer is the queue's view of a connection: somewhere to deliver packets.
type Peer interface {
	// Send queues one encoded packet for the connection. It is called with
	// the Queue's lock held, so it must copy frame (the queue reuses the
	// buffer), must not block and must not call back into the Queue. A
	// connection that can take no more may drop the frame and close itself.
	Send(frame []byte)
	// SendShared queues one packet made of head, to be copied as by Send,
	// followed by data, which nobody ever modifies: the peer may keep it
	// and write it out later without copying it. The queue uses it for
	// large payloads. The rules of Send apply.
	SendShared(head, data []byte)
}

// SessionInfo describes a connection for the `workers` admin listing.
type SessionInfo struct {
	FD   int    // a file descriptor number, or any connection number
	Addr string // peer IP address
	// Exceptions starts the session with the `exceptions` option on.
	Exceptions bool
}

// Session is one connection's state in the queue: it may submit jobs (as a
// client), register functions and grab jobs (as a worker), or both. Its
// fields are guarded by the Queue's lock.
type Session struct {
	peer       Peer
	info       SessionInfo
	order      uint64 // connection order, for listings
	id         string // SET_CLIENT_ID, "-" until set
	exceptions bool

	abilities []ability   // registrations, newest first, duplicates kept
	functions []*Function // distinct registered functions, for dispatch
	rr        int         // round-robin position in functions

	sleeping bool // sent PRE_SLEEP and has not grabbed since
	noopSent bool // woken since its last grab

	// outbox holds packets for this session while a JOB_CREATED it is owed
	// waits for the store, so that replies keep their order. Empty
	// otherwise: packets then go straight to the peer.
	outbox []outEntry
	// holding mirrors len(outbox) > 0 for the connection's goroutine, which
	// reads it without the lock: only its own submissions add holds, so
	// when it reads false nothing can be held until it submits again.
	holding atomic.Bool

	assigned []*Job // jobs running on this session as a worker
	waiting  []*Job // foreground jobs this session is attached to
	closed   bool
}

// ability is one CAN_DO or CAN_DO_TIMEOUT registration.
type ability struct {
	function *Function
	timeout  time.Duration // 0: no limit
}

// timeoutFor returns the run-time limit of the newest registration of f.
func (s *Session) timeoutFor(f *Function) time.Duration {
	for _, a := range s.abilities {
		if a.function == f {
			return a.timeout
		}
	}
	return 0
}

// refreshFunctions rebuilds the distinct function list after the
// registrations changed.
func (s *Session) refreshFunctions() {
	s.functions = s.functions[:0]
	for _, a := range s.abilities {
		seen := false
		for _, f := range s.functions {
			if f == a.function {
				seen = true
				break
			}
		}
		if !seen {
			s.functions = append(s.functions, a.function)
		}
	}
	if s.rr >= len(s.functions) {
		s.rr = 0
	}
}

// removeJob deletes the first occurrence of j from list, keeping the order
// of the rest (a worker's jobs are requeued in the order it took them), and
// returns the list.
func removeJob(list []*Job, j *Job) []*Job {
	if i := slices.Index(list, j); i >= 0 {
		return slices.Delete(list, i, i+1)
	}
	return list
}

// removeSession deletes every occurrence of s from list, keeping order.
func removeSession(list []*Session, s *Session) []*Session {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	for i := len(out); i < len(list); i++ {
		list[i] = nil
	}
	return out
}

// Function is a function name that workers can register and clients submit
// to, with a FIFO of queued jobs per priority. Fields are guarded by the
// Queue's lock.
type Function struct {
	name   string
	order  uint64 // creation order, for listings
	lists  [numPriorities]jobList
	queued [numPriorities]int // queued jobs per priority, delayed epoch jobs included
	// running counts jobs assigned to workers.
	running int
	// pending counts background jobs waiting for their store commit.
	pending int
	// workers holds one entry per registration, duplicates included, in
	// registration order: the ring that wake-ups walk.
	workers  []*Session
	wakeNext int
	// maxQueue limits queued+running jobs per submission priority; 0 is
	// unlimited.
	maxQueue [numPriorities]int

	uniques map[string]*Job // by unique, queued or running
	byData  map[string]*Job // unique "-": by payload
}

func (f *Function) total() int {
	return f.queued[High] + f.queued[Normal] + f.queued[Low] + f.running + f.pending
}

// runnable reports whether f has a job a worker could take now.
func (f *Function) runnable() bool {
	return f.lists[High].head != nil || f.lists[Normal].head != nil || f.lists[Low].head != nil
}
