package queue

import (
	"bytes"
	"strconv"
	"time"

	"gearmand/protocol"
	"gearmand/store"
)

// Persister is where the queue makes background jobs durable;
// *store.Committer[*Job] implements it. Its methods are called with the
// queue's lock held, so they must not block or call back into the Queue.
// In write-through mode the persister reports each Add's outcome later by
// calling Queue.Durable.
type Persister interface {
	Mode() store.Mode
	// AddSince queues a new record; j comes back through Queue.Durable.
	// since is when its submitter began to wait (Submission.Since; zero:
	// now), for the persister's timeout.
	AddSince(r store.Record, j *Job, since time.Time) error
	// Update queues a replacement of a stored record; nobody waits for it.
	Update(r store.Record) error
	// Delete queues the removal of a stored record.
	Delete(seq uint64)
}

// writeThrough reports whether new background jobs wait for durability.
func (q *Queue) writeThrough() bool {
	return q.cfg.Persister != nil && q.cfg.Persister.Mode() == store.WriteThrough
}

// recordLocked is j as stored.
func recordLocked(j *Job) store.Record {
	return store.Record{
		Seq:      j.seq,
		Handle:   j.handle,
		Function: j.function.name,
		Unique:   j.unique,
		Data:     bytesOf(j.data), // stores only read it
		Priority: store.Priority(j.priority),
		RunAt:    j.runAt,
		Reducer:  j.reducer,
		Attempts: j.retries,
		Created:  j.created,
	}
}

// persistLocked hands j to the persister, for a submitter waiting since
// then. In write-through mode s's JOB_CREATED is held until Durable
// reports the outcome.
func (q *Queue) persistLocked(s *Session, j *Job, since time.Time) error {
	if err := q.cfg.Persister.AddSince(recordLocked(j), j, since); err != nil {
		return err
	}
	j.persisted = true
	if q.writeThrough() {
		q.holdLocked(s, j)
	} else {
		q.sendLocked(s, protocol.JobCreated, j.handle)
	}
	return nil
}

// Durable settles write-through adds: with err nil the jobs are stored, so
// pending ones become runnable and every submitter waiting on them gets
// JOB_CREATED; otherwise each waiting submitter gets ERROR QUEUE_ERROR with
// the reason and a job that was pending is dropped. It is the persister's
// callback and takes the queue's lock.
func (q *Queue) Durable(jobs []*Job, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.cfg.Now()
	var ack []byte
	for _, j := range jobs {
		if err == nil {
			ack = protocol.AppendPacketStrings(ack[:0], protocol.Res, protocol.JobCreated, j.handle)
		} else {
			ack = protocol.AppendError(ack[:0], "QUEUE_ERROR", err.Error())
		}
		waiters := j.ackWaiters
		j.ackWaiters = nil
		for _, s := range waiters {
			q.resolveLocked(s, j, ack)
		}
		switch {
		case err == nil && j.state == statePending:
			j.function.pending--
			q.enqueueLocked(j, now)
		case err != nil && j.state == statePending:
			j.function.pending--
			j.persisted = false
			q.removeLocked(j)
		case err != nil:
			// A job that a background submission joined: it goes on as a
			// foreground job, not stored.
			j.persisted = false
		}
	}
}

// Restore adds a job replayed from the store at startup, before any
// connection exists: it keeps its sequence number, handle, priority, time,
// reducer and attempt count, and the handle counter moves past it. Records
// are expected in Seq order. It also takes back, while serving, a job
// whose submitter was refused for the store timeout but whose write landed
// later (store.CommitterConfig.OnLate): it is stored, so it runs.
func (q *Queue) Restore(r store.Record) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.functionLocked([]byte(r.Function))
	handle := r.Handle
	if handle == "" {
		handle = q.cfg.HandlePrefix + ":" + strconv.FormatUint(r.Seq, 10)
	}
	j := &Job{
		seq:        r.Seq,
		handle:     handle,
		function:   f,
		unique:     r.Unique,
		data:       keepData(r.Data, true), // the record belongs to Restore (store.Store)
		priority:   min(Priority(r.Priority), Low),
		runAt:      r.RunAt,
		reducer:    r.Reducer,
		created:    r.Created,
		retries:    r.Attempts,
		background: true,
		persisted:  true,
		heapIndex:  -1,
	}
	q.mu.seq = max(q.mu.seq, r.Seq)
	if q.mu.jobs.get(handle) != nil {
		// Another record claims the handle (a changed prefix cannot do this;
		// a hand-edited store can): keep the job under a fresh one.
		q.mu.seq++
		j.handle = q.cfg.HandlePrefix + ":" + strconv.FormatUint(q.mu.seq, 10)
	}
	q.mu.jobs.put(j)
	q.listLocked(j)
	q.countBytesLocked(j)
	if lookupIn(f, j.unique, j.data) == nil {
		f.index(j)
	}
	q.enqueueLocked(j, q.cfg.Now())
}

// outEntry is one packet in a session's outbox: a frame to send, or a place
// held for the JOB_CREATED (or ERROR) of a job not yet durable.
type outEntry struct {
	frame  []byte
	shared []byte // sent after frame by reference (Peer.SendShared)
	job    *Job   // set while the entry waits for this job's Durable
}

// send passes e to peer.
func (e *outEntry) send(peer Peer) {
	if e.shared != nil {
		peer.SendShared(e.frame, e.shared)
	} else {
		peer.Send(e.frame)
	}
}

// deliverLocked sends frame to s now, or after the replies s is still
// owed, keeping the order in which they were produced.
func (q *Queue) deliverLocked(s *Session, frame []byte) {
	q.deliverSharedLocked(s, frame, nil)
}

// deliverSharedLocked is deliverLocked for a packet made of head and then
// shared, which nobody modifies (see Peer.SendShared); a nil shared sends
// head alone.
func (q *Queue) deliverSharedLocked(s *Session, head, shared []byte) {
	e := outEntry{frame: head, shared: shared}
	if len(s.outbox) == 0 {
		e.send(s.peer)
		return
	}
	e.frame = bytes.Clone(head)
	s.outbox = append(s.outbox, e)
}

// holdLocked keeps a place in s's outbox for j's acknowledgement.
func (q *Queue) holdLocked(s *Session, j *Job) {
	s.outbox = append(s.outbox, outEntry{job: j})
	s.holding.Store(true)
	j.ackWaiters = append(j.ackWaiters, s)
}

// Holding reports whether s is owed a reply that waits for the store, so
// that replies built outside the queue must go through Deliver to keep
// their order. Only s's own connection goroutine may rely on a false
// answer (see Session.holding).
func (s *Session) Holding() bool { return s.holding.Load() }

// Deliver sends frame to s in order behind any reply s is still owed.
func (q *Queue) Deliver(s *Session, frame []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deliverLocked(s, frame)
}

// resolveLocked fills s's places held for j with frame and sends whatever
// is no longer waiting, in order. frame is the caller's: places sent now
// pass it to Send, which copies it; places still behind another job's
// keep a copy.
func (q *Queue) resolveLocked(s *Session, j *Job, frame []byte) {
	n := 0
sending:
	for ; n < len(s.outbox); n++ {
		switch e := &s.outbox[n]; e.job {
		case nil:
			e.send(s.peer)
		case j:
			s.peer.Send(frame)
		default:
			break sending // this place waits for another job
		}
	}
	for i := n; i < len(s.outbox); i++ {
		if s.outbox[i].job == j {
			s.outbox[i] = outEntry{frame: bytes.Clone(frame)}
		}
	}
	// Move what is left to the front, so that the outbox's array serves
	// the next submissions too.
	left := copy(s.outbox, s.outbox[n:])
	clear(s.outbox[left:])
	s.outbox = s.outbox[:left]
	if left == 0 {
		s.holding.Store(false)
		if cap(s.outbox) > maxKeptOutbox {
			s.outbox = nil
		}
	}
}

// maxKeptOutbox bounds the outbox array a session keeps once it is empty:
// a client that pipelined a burst should not pin its memory for good.
const maxKeptOutbox = 1024

// dropOutboxLocked forgets what a closing session was still owed.
func (q *Queue) dropOutboxLocked(s *Session) {
	for _, e := range s.outbox {
		if e.job != nil {
			e.job.ackWaiters = removeSession(e.job.ackWaiters, s)
		}
	}
	s.outbox = nil
	s.holding.Store(false)
}

// unpersistLocked deletes j's record, if it has one.
// Without a persister the flag is only what `show jobs` displays, as in
// gearmand's builtin queue, and stays as it is.
func (q *Queue) unpersistLocked(j *Job) {
	if j.persisted && q.cfg.Persister != nil {
		q.cfg.Persister.Delete(j.seq)
		j.persisted = false
	}
}

// recordAttemptLocked stores j's new attempt count, so --job-retries holds
// across a restart.
func (q *Queue) recordAttemptLocked(j *Job) {
	if j.persisted && q.cfg.Persister != nil {
		_ = q.cfg.Persister.Update(recordLocked(j))
	}
}
