package queue

import (
	"container/heap"
	"errors"
	"strconv"
	"sync"
	"time"

	"gearmand/protocol"
)

// Limits from gearmand that the queue enforces.
const (
	// MaxUnique is the longest unique id accepted, stored whole.
	MaxUnique = 64
	// MaxClientID is how much of a SET_CLIENT_ID value is kept.
	MaxClientID = 127
	// MaxReducer bounds a reducer name.
	MaxReducer = 512
	// MinTimeout is the floor of a non-zero CAN_DO_TIMEOUT.
	MinTimeout = time.Second
)

// maxScratch bounds the encode buffer kept between packets, so that one
// large job or result does not pin a buffer of its size for the life of the
// queue (packets may be as large as the server's packet limit).
const maxScratch = 64 << 10

// Errors returned to the connection that caused them.
var (
	ErrUniqueTooLarge   = errors.New("unique value too large")
	ErrReducerTooLarge  = errors.New("reducer name too large")
	ErrQueueFull        = errors.New("job queue is full")
	ErrJobNotFound      = errors.New("job not found or not assigned to this connection")
	ErrFunctionNotFound = errors.New("function not found")
	ErrFunctionBusy     = errors.New("function has workers or jobs")
)

// Config configures a Queue.
type Config struct {
	// HandlePrefix starts every handle: "<prefix>:<n>".
	HandlePrefix string
	// JobRetries: negative is unlimited, 0 is no retry, N is at most N runs.
	JobRetries int
	// WorkerWakeup is how many sleeping workers one runnable job wakes; 0 is
	// all of them.
	WorkerWakeup int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Persister makes background jobs durable; nil keeps them in memory
	// only (-q builtin).
	Persister Persister
	// MaxQueuedBytes bounds the payload bytes of all the jobs the queue
	// holds (see QueuedBytes); a new job that would exceed it is refused
	// with ErrQueueBytesFull. Restored jobs count but are never refused.
	// 0 or negative: no limit.
	MaxQueuedBytes int64
}

// Queue is the in-memory job index and dispatcher. All methods are safe for
// concurrent use; they run under one lock and do no I/O, delivering packets
// through each Session's Peer.
type Queue struct {
	cfg Config

	mu struct {
		sync.Mutex
		functions   map[string]*Function
		jobs        jobIndex // every job, by handle
		sessions    map[*Session]struct{}
		timers      timerHeap
		seq         uint64 // last job sequence number handed out
		order       uint64 // last session/function order number
		emptyWaiter []chan struct{}
		// draining stops dispatch for a graceful stop; idleWaiter waits
		// for the running jobs to end. See drain.go.
		draining   bool
		idleWaiter []chan struct{}
		// created lists the jobs in creation order for paged listings,
		// with holes (nil) where jobs were removed; see listing.go.
		created []*Job
		holes   int
		// queuedBytes is the payload bytes of the jobs in the index; see
		// limits.go.
		queuedBytes int64
	}
	counters counters
	// scratch is the buffer packets are encoded into; guarded by mu. It is
	// let go after a packet larger than maxScratch.
	scratch []byte
	// timerChanged is signalled when the earliest deadline moves earlier.
	timerChanged chan struct{}
}

// New returns an empty Queue.
func New(cfg Config) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	q := &Queue{cfg: cfg, timerChanged: make(chan struct{}, 1)}
	q.mu.functions = make(map[string]*Function)
	q.mu.jobs = newJobIndex(cfg.HandlePrefix)
	q.mu.sessions = make(map[*Session]struct{})
	return q
}

// Connect registers a new connection and returns its Session.
func (q *Queue) Connect(p Peer, info SessionInfo) *Session {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mu.order++
	s := &Session{peer: p, info: info, order: q.mu.order, id: "-", exceptions: info.Exceptions}
	q.mu.sessions[s] = struct{}{}
	return s
}

// Disconnect removes a connection: jobs it was running are requeued (or
// dropped when out of retries), its registrations go, and foreground jobs
// it alone was waiting for are abandoned. Background jobs are never dropped
// because a client left. Disconnect is idempotent.
func (q *Queue) Disconnect(s *Session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	q.dropOutboxLocked(s)
	// Unregister before requeueing, as CantDo and ResetAbilities do: the
	// wake-up for the requeued jobs must go to live workers, not to this
	// one (with WorkerWakeup set it would use up the wake-up).
	for _, f := range s.functions {
		f.workers = removeSession(f.workers, s)
	}
	s.abilities, s.functions = nil, nil
	s.sleeping = false
	q.loseJobsLocked(s, nil)
	for _, j := range s.waiting {
		j.clients = removeSession(j.clients, s)
		if len(j.clients) == 0 && !j.background {
			q.abandonLocked(j)
		}
	}
	s.waiting = nil
	delete(q.mu.sessions, s)
}

// Submission is one SUBMIT_* request. Its byte slices may alias a read
// buffer: Submit copies what it keeps.
type Submission struct {
	Function   []byte
	Unique     []byte
	Data       []byte
	Priority   Priority
	Background bool
	// RunAt delays the job until then (SUBMIT_JOB_EPOCH); zero runs it now.
	RunAt   time.Time
	Reducer []byte
	// Owned is set when Data lies in memory nobody modifies again (a
	// protocol.Message with Owned set): the job then keeps Data itself
	// rather than a copy.
	Owned bool
	// Since is when the submitter began to wait, when that was before
	// Submit (held back by the store's back-pressure): the store's
	// timeout counts that wait too. Zero: now.
	Since time.Time
}

// Submit creates a job, or coalesces into an existing one with the same
// function and unique, and sends JOB_CREATED with its handle to s.
//
// Coalescing: an empty unique never coalesces; "-" coalesces on identical
// non-empty payloads; any other unique on exact bytes, while the job is
// queued or running. A foreground submission attaches s as a client that
// receives every later WORK_* packet of the job.
func (q *Queue) Submit(s *Session, sub Submission) error {
	if len(sub.Unique) > MaxUnique {
		return ErrUniqueTooLarge
	}
	if len(sub.Reducer) > MaxReducer {
		return ErrReducerTooLarge
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.functionLocked(sub.Function)
	if j := f.lookup(sub.Unique, sub.Data); j != nil {
		return q.joinLocked(s, j, sub.Background, sub.Since)
	}
	if limit := f.maxQueue[sub.Priority]; limit > 0 && f.total() >= limit {
		return ErrQueueFull
	}
	if !q.admitBytesLocked(len(sub.Data)) {
		return ErrQueueBytesFull
	}
	now := q.cfg.Now()
	q.mu.seq++
	j := &Job{
		seq:        q.mu.seq,
		handle:     q.cfg.HandlePrefix + ":" + strconv.FormatUint(q.mu.seq, 10),
		function:   f,
		unique:     string(sub.Unique),
		data:       keepData(sub.Data, sub.Owned),
		priority:   sub.Priority,
		runAt:      sub.RunAt,
		reducer:    string(sub.Reducer),
		created:    now,
		background: sub.Background,
		persisted:  sub.Background && q.cfg.Persister == nil, // gearmand shows bg jobs as persisted even in memory
		heapIndex:  -1,
	}
	q.mu.jobs.put(j)
	q.listLocked(j)
	q.countBytesLocked(j)
	q.counters.submitted.Add(1)
	f.index(j)
	if !sub.Background {
		q.attachLocked(j, s)
	}
	if sub.Background && q.cfg.Persister != nil {
		j.state = statePending
		if err := q.persistLocked(s, j, sub.Since); err != nil {
			q.removeLocked(j)
			return err
		}
		if q.writeThrough() {
			f.pending++
			return nil // runnable, and acknowledged, once Durable says so
		}
	} else {
		q.sendLocked(s, protocol.JobCreated, j.handle)
	}
	q.enqueueLocked(j, now)
	return nil
}

// joinLocked coalesces a submission from s into the existing job j. A
// foreground submitter is attached as a client. The acknowledgement waits
// while j is not yet durable. A background submission that joins a job no
// store holds yet (a foreground one) makes it durable first: a background
// submitter's JOB_CREATED always means the job survives a crash.
func (q *Queue) joinLocked(s *Session, j *Job, background bool, since time.Time) error {
	switch {
	case j.state == statePending:
		q.holdLocked(s, j)
	case background && !j.persisted && q.cfg.Persister != nil:
		if err := q.persistLocked(s, j, since); err != nil {
			return err
		}
	default:
		q.sendLocked(s, protocol.JobCreated, j.handle)
	}
	if background {
		j.background = true
	} else {
		q.attachLocked(j, s)
	}
	return nil
}

// lookup finds the job a submission coalesces into, if any.
func (f *Function) lookup(unique, data []byte) *Job { return lookupIn(f, unique, data) }

// lookupIn is lookup for bytes or strings; indexing a map with string(b)
// does not copy, so neither form allocates.
func lookupIn[B ~string | ~[]byte](f *Function, unique, data B) *Job {
	switch {
	case len(unique) == 0:
		return nil
	case len(unique) == 1 && unique[0] == '-':
		if len(data) == 0 {
			return nil
		}
		return f.byData[string(data)]
	default:
		return f.uniques[string(unique)]
	}
}

// index makes j findable by later submissions.
func (f *Function) index(j *Job) {
	switch {
	case j.unique == "":
	case j.unique == "-":
		if j.data != "" {
			if f.byData == nil {
				f.byData = make(map[string]*Job)
			}
			f.byData[j.data] = j
			j.indexed = indexData
		}
	default:
		if f.uniques == nil {
			f.uniques = make(map[string]*Job)
		}
		f.uniques[j.unique] = j
		j.indexed = indexUnique
	}
}

// unindex stops later submissions from coalescing into j.
func (f *Function) unindex(j *Job) {
	switch j.indexed {
	case indexUnique:
		delete(f.uniques, j.unique)
	case indexData:
		delete(f.byData, j.data)
	}
	j.indexed = indexNone
}

func (q *Queue) attachLocked(j *Job, s *Session) {
	j.clients = append(j.clients, s)
	s.waiting = append(s.waiting, j)
}

// enqueueLocked puts j at the tail of its priority list, or in the timer
// heap when it is not due yet, and wakes sleeping workers.
func (q *Queue) enqueueLocked(j *Job, now time.Time) {
	f := j.function
	f.queued[j.priority]++
	if !j.runAt.IsZero() && now.Before(j.runAt) {
		j.state = stateDelayed
		q.setTimerLocked(j, j.runAt)
		return
	}
	j.state = stateQueued
	f.lists[j.priority].pushBack(j)
	q.wakeLocked(f)
}

// wakeLocked sends NOOP to sleeping workers of f that have not been woken
// since their last grab, walking f's registrations as a ring from a rotating
// start, at most WorkerWakeup of them (0: all).
func (q *Queue) wakeLocked(f *Function) {
	if q.mu.draining {
		return
	}
	n := len(f.workers)
	woken := 0
	for i := 0; i < n; i++ {
		w := f.workers[(f.wakeNext+i)%n]
		if !w.sleeping || w.noopSent {
			continue
		}
		w.noopSent = true
		q.sendLocked(w, protocol.Noop)
		woken++
		if q.cfg.WorkerWakeup > 0 && woken >= q.cfg.WorkerWakeup {
			f.wakeNext = (f.wakeNext + i + 1) % n
			return
		}
	}
}

// GrabKind says which JOB_ASSIGN variant a worker asked for.
type GrabKind uint8

// The three grab packets.
const (
	GrabJob     GrabKind = iota // JOB_ASSIGN: handle, function, data
	GrabJobUniq                 // JOB_ASSIGN_UNIQ: also the unique
	GrabJobAll                  // JOB_ASSIGN_ALL when the job has a reducer, else JOB_ASSIGN_UNIQ
)

// Grab assigns s the next job of its registered functions and sends the
// JOB_ASSIGN variant kind asks for, or NO_JOB. Priority is global across
// s's functions (every HIGH job before any NORMAL one); among functions with
// a job at that priority the choice rotates; within one it is FIFO.
func (q *Queue) Grab(s *Session, kind GrabKind) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s.sleeping, s.noopSent = false, false
	j := q.nextLocked(s)
	if j == nil {
		q.sendLocked(s, protocol.NoJob)
		return
	}
	now := q.cfg.Now()
	f := j.function
	f.lists[j.priority].remove(j)
	f.queued[j.priority]--
	f.running++
	j.state = stateRunning
	j.worker = s
	s.assigned = append(s.assigned, j)
	if d := s.timeoutFor(f); d > 0 {
		q.setTimerLocked(j, now.Add(d))
	}
	switch {
	case kind == GrabJob:
		q.sendJobLocked(s, j, protocol.JobAssign, j.handle, f.name)
	case kind == GrabJobAll && j.reducer != "":
		q.sendJobLocked(s, j, protocol.JobAssignAll, j.handle, f.name, j.unique, j.reducer)
	default:
		q.sendJobLocked(s, j, protocol.JobAssignUniq, j.handle, f.name, j.unique)
	}
}

// sendJobLocked sends s a packet of type t whose arguments are args then
// j's data. Data of sharedMin bytes or more is not copied: the job's
// string goes out by reference.
func (q *Queue) sendJobLocked(s *Session, j *Job, t protocol.Type, args ...string) {
	q.scratch = protocol.AppendPacketHead(q.scratch[:0], protocol.Res, t, len(j.data), args...)
	if len(j.data) >= sharedMin {
		q.deliverSharedLocked(s, q.scratch, bytesOf(j.data))
		return
	}
	q.scratch = append(q.scratch, j.data...)
	q.deliverLocked(s, q.scratch)
	q.releaseScratchLocked()
}

func (q *Queue) nextLocked(s *Session) *Job {
	if q.mu.draining {
		return nil
	}
	n := len(s.functions)
	for p := High; p < numPriorities; p++ {
		for i := 0; i < n; i++ {
			k := (s.rr + i) % n
			if j := s.functions[k].lists[p].head; j != nil {
				s.rr = (k + 1) % n
				return j
			}
		}
	}
	return nil
}

// PreSleep answers a worker about to sleep: NOOP at once if any of its
// functions has a runnable job, otherwise it is marked asleep and will get
// one NOOP when a job arrives.
//
// A worker that goes to sleep while it still holds jobs is no longer timed:
// the CAN_DO_TIMEOUT timers of the jobs it holds stop, and those jobs run
// until the worker ends them or is lost, as in C gearmand ("remove any
// timeouts while sleeping"; libgearman sends PRE_SLEEP while holding a job
// on some of its timeout paths). Jobs it grabs afterwards are timed again.
// The timers stay when the answer is NOOP, as in C.
func (q *Queue) PreSleep(s *Session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, f := range s.functions {
		if f.runnable() && !q.mu.draining {
			s.noopSent = true
			q.sendLocked(s, protocol.Noop)
			return
		}
	}
	s.sleeping, s.noopSent = true, false
	for _, j := range s.assigned {
		q.stopTimerLocked(j)
	}
}

// CanDo registers s for function name, with a run-time limit per job when
// timeout > 0 (raised to MinTimeout). A sleeping worker that registers a
// function with queued work is woken at once.
func (q *Queue) CanDo(s *Session, name []byte, timeout time.Duration) {
	if timeout > 0 && timeout < MinTimeout {
		timeout = MinTimeout
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.functionLocked(name)
	s.abilities = append([]ability{{function: f, timeout: max(timeout, 0)}}, s.abilities...)
	f.workers = append(f.workers, s)
	s.refreshFunctions()
	if s.sleeping && !s.noopSent && f.runnable() {
		s.noopSent = true
		q.sendLocked(s, protocol.Noop)
	}
}

// CantDo removes every registration of name from s; jobs s is running for it
// are requeued.
func (q *Queue) CantDo(s *Session, name []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.mu.functions[string(name)]
	if f == nil {
		return
	}
	kept := s.abilities[:0]
	for _, a := range s.abilities {
		if a.function != f {
			kept = append(kept, a)
		}
	}
	s.abilities = kept
	f.workers = removeSession(f.workers, s)
	s.refreshFunctions()
	q.loseJobsLocked(s, f)
}

// ResetAbilities removes all of s's registrations and requeues its jobs.
func (q *Queue) ResetAbilities(s *Session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, f := range s.functions {
		f.workers = removeSession(f.workers, s)
	}
	s.abilities = nil
	s.refreshFunctions()
	q.loseJobsLocked(s, nil)
}

// loseJobsLocked requeues the jobs s runs for f (every function when f is
// nil), as when a worker is lost. They reach the tails of their lists in the
// order s took them, so jobs that were queued in order stay in order.
func (q *Queue) loseJobsLocked(s *Session, f *Function) {
	now := q.cfg.Now()
	kept := s.assigned[:0]
	for _, j := range s.assigned {
		if f != nil && j.function != f {
			kept = append(kept, j)
			continue
		}
		q.requeueLocked(j, now)
	}
	clear(s.assigned[len(kept):])
	s.assigned = kept
}

// requeueLocked handles a job whose worker was lost or timed out: it goes
// to the tail of its list, or, when it is ignored or out of retries, ends
// (clients of an exhausted job get WORK_FAIL).
func (q *Queue) requeueLocked(j *Job, now time.Time) {
	f := j.function
	f.running--
	q.idleCheckLocked()
	j.worker = nil
	q.stopTimerLocked(j)
	j.retries++
	if j.ignore {
		q.removeLocked(j)
		return
	}
	if r := q.cfg.JobRetries; r >= 0 && int64(j.retries) >= int64(max(r, 1)) {
		q.counters.failed.Add(1)
		q.sendToClientsLocked(j, protocol.WorkFail, j.handle)
		q.removeLocked(j)
		return
	}
	q.counters.requeued.Add(1)
	j.numerator, j.denominator = 0, 0
	j.runAt = time.Time{}
	q.recordAttemptLocked(j)
	q.enqueueLocked(j, now)
}

// Work handles a worker's WORK_STATUS, WORK_DATA, WORK_WARNING,
// WORK_COMPLETE, WORK_FAIL or WORK_EXCEPTION. args are the packet's
// arguments (args[0] the handle) and payload its whole payload, forwarded
// verbatim to the job's clients; owned says that nobody modifies payload
// again (protocol.Message.Owned), so a large one is forwarded uncopied.
// The job must be assigned to s, or ErrJobNotFound is returned. COMPLETE, FAIL and EXCEPTION end the job.
// Clients without the exceptions option get WORK_EXCEPTION as WORK_FAIL
// with the handle and a trailing NUL, as gearmand sends it.
func (q *Queue) Work(s *Session, t protocol.Type, args [][]byte, payload []byte, owned bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.mu.jobs.get(string(args[0]))
	if j == nil || j.worker != s {
		return ErrJobNotFound
	}
	switch t {
	case protocol.WorkStatus:
		j.numerator = atou32(args[1])
		j.denominator = atou32(args[2])
		q.forwardLocked(j.clients, t, payload, owned)
	case protocol.WorkData, protocol.WorkWarning:
		q.forwardLocked(j.clients, t, payload, owned)
	case protocol.WorkComplete, protocol.WorkFail:
		if t == protocol.WorkComplete {
			q.counters.completed.Add(1)
		} else {
			q.counters.failed.Add(1)
		}
		q.forwardLocked(j.clients, t, payload, owned)
		q.finishLocked(j)
	case protocol.WorkException:
		q.counters.failed.Add(1)
		var excepting []*Session
		var fail []byte
		for _, c := range j.clients {
			if c.exceptions {
				excepting = append(excepting, c)
				continue
			}
			if fail == nil {
				fail = protocol.AppendPacketStrings(nil, protocol.Res, protocol.WorkFail, j.handle, "")
			}
			q.deliverLocked(c, fail)
		}
		q.forwardLocked(excepting, t, payload, owned)
		q.finishLocked(j)
	default:
		return errors.New("queue: " + t.String() + " is not a work result")
	}
	return nil
}

// forwardLocked sends a worker's packet verbatim to clients, encoded once:
// the payload by reference when owned and of sharedMin bytes or more,
// else copied into the packet.
func (q *Queue) forwardLocked(clients []*Session, t protocol.Type, payload []byte, owned bool) {
	if len(clients) == 0 {
		return
	}
	q.scratch = protocol.AppendHeader(q.scratch[:0], protocol.Res, t, len(payload))
	if owned && len(payload) >= sharedMin {
		for _, c := range clients {
			q.deliverSharedLocked(c, q.scratch, payload)
		}
		return
	}
	q.scratch = append(q.scratch, payload...)
	for _, c := range clients {
		q.deliverLocked(c, q.scratch)
	}
	q.releaseScratchLocked()
}

// finishLocked ends a running job after its worker's final result.
func (q *Queue) finishLocked(j *Job) {
	j.function.running--
	q.idleCheckLocked()
	j.worker.assigned = removeJob(j.worker.assigned, j)
	j.worker = nil
	q.stopTimerLocked(j)
	q.removeLocked(j)
}

// removeLocked drops a job that is not running from every index. Clients
// still attached are detached without being told. A job already removed is
// left alone (a client attached twice to one job reaches it twice when it
// disconnects).
func (q *Queue) removeLocked(j *Job) {
	if j.state == stateDone {
		return
	}
	f := j.function
	switch j.state {
	case stateQueued:
		f.lists[j.priority].remove(j)
		f.queued[j.priority]--
	case stateDelayed:
		q.stopTimerLocked(j)
		f.queued[j.priority]--
	}
	j.state = stateDone
	q.unpersistLocked(j)
	f.unindex(j)
	q.mu.jobs.remove(j)
	q.unlistLocked(j)
	q.uncountBytesLocked(j)
	for _, c := range j.clients {
		c.waiting = removeJob(c.waiting, j)
	}
	j.clients = nil
	if q.mu.jobs.len() == 0 {
		for _, ch := range q.mu.emptyWaiter {
			close(ch)
		}
		q.mu.emptyWaiter = nil
	}
}

// abandonLocked ends a job nobody waits for any more: a queued one is
// removed now; a running one is ignored, so its worker's results are
// discarded and it is not requeued if the worker is lost.
func (q *Queue) abandonLocked(j *Job) {
	if j.state == stateRunning {
		j.ignore = true
		j.function.unindex(j)
		q.unpersistLocked(j) // nobody wants it any more: do not run it again after a restart
		return
	}
	q.removeLocked(j)
}

func (q *Queue) sendToClientsLocked(j *Job, t protocol.Type, args ...string) {
	if len(j.clients) == 0 {
		return
	}
	q.scratch = protocol.AppendPacketStrings(q.scratch[:0], protocol.Res, t, args...)
	for _, c := range j.clients {
		q.deliverLocked(c, q.scratch)
	}
	q.releaseScratchLocked()
}

func (q *Queue) sendLocked(s *Session, t protocol.Type, args ...string) {
	q.scratch = protocol.AppendPacketStrings(q.scratch[:0], protocol.Res, t, args...)
	q.deliverLocked(s, q.scratch)
	q.releaseScratchLocked()
}

// releaseScratchLocked lets go of the encode buffer when a large packet grew
// it past maxScratch.
func (q *Queue) releaseScratchLocked() {
	if cap(q.scratch) > maxScratch {
		q.scratch = nil
	}
}

// functionLocked returns the function named name, creating it.
func (q *Queue) functionLocked(name []byte) *Function {
	if f := q.mu.functions[string(name)]; f != nil {
		return f
	}
	q.mu.order++
	f := &Function{name: string(name), order: q.mu.order}
	q.mu.functions[f.name] = f
	return f
}

// SetClientID sets the id shown by `workers`, keeping MaxClientID bytes.
func (q *Queue) SetClientID(s *Session, id []byte) {
	if len(id) > MaxClientID {
		id = id[:MaxClientID]
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	s.id = string(id)
}

// SetExceptions turns on the exceptions option for s.
func (q *Queue) SetExceptions(s *Session) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s.exceptions = true
}

// atou32 parses like C atoi stored into a uint32: leading spaces, an
// optional sign and the leading digits; anything else ends the number.
// "12abc" is 12 and "-1" is 4294967295.
func atou32(b []byte) uint32 {
	i := 0
	for i < len(b) && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	var n uint32
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + uint32(b[i]-'0')
	}
	if neg {
		n = -n
	}
	return n
}

// setTimerLocked (re)arms j's deadline.
func (q *Queue) setTimerLocked(j *Job, at time.Time) {
	j.deadline = at
	if j.heapIndex >= 0 {
		heap.Fix(&q.mu.timers, j.heapIndex)
	} else {
		heap.Push(&q.mu.timers, j)
	}
	if j.heapIndex == 0 {
		select {
		case q.timerChanged <- struct{}{}:
		default:
		}
	}
}

func (q *Queue) stopTimerLocked(j *Job) {
	if j.heapIndex >= 0 {
		heap.Remove(&q.mu.timers, j.heapIndex)
	}
}

// TimerChanged is signalled when the earliest deadline moved earlier; the
// caller should then call Tick again.
func (q *Queue) TimerChanged() <-chan struct{} { return q.timerChanged }

// Tick runs everything due at now: epoch jobs become runnable (waking
// sleeping workers) and running jobs past their CAN_DO_TIMEOUT are requeued
// as if their worker were lost. It returns the next deadline, or the zero
// time when none is pending.
func (q *Queue) Tick(now time.Time) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.mu.timers) > 0 && !now.Before(q.mu.timers[0].deadline) {
		j := heap.Pop(&q.mu.timers).(*Job)
		switch j.state {
		case stateDelayed:
			j.state = stateQueued
			j.function.lists[j.priority].pushBack(j)
			q.wakeLocked(j.function)
		case stateRunning:
			j.worker.assigned = removeJob(j.worker.assigned, j)
			q.requeueLocked(j, now)
		}
	}
	if len(q.mu.timers) == 0 {
		return time.Time{}
	}
	return q.mu.timers[0].deadline
}

// WaitEmpty returns a channel closed once the queue holds no job, queued or
// running (at once if it holds none now).
func (q *Queue) WaitEmpty() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch := make(chan struct{})
	if q.mu.jobs.len() == 0 {
		close(ch)
		return ch
	}
	q.mu.emptyWaiter = append(q.mu.emptyWaiter, ch)
	return ch
}
