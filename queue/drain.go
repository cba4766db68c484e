package queue

// Drain stops dispatch for a graceful stop: from now on GRAB_JOB and its
// variants are answered with NO_JOB, PRE_SLEEP gets no NOOP and new or
// requeued jobs wake nobody. Jobs already assigned to workers go on, and
// their results reach their clients as usual; submissions are still
// accepted (and, in the background, persisted) but not handed out.
//
// It returns a channel closed once no job is assigned to a worker (at once
// if none is now), and the number assigned now. Drain cannot be undone; it
// is safe to call more than once.
func (q *Queue) Drain() (idle <-chan struct{}, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mu.draining = true
	ch := make(chan struct{})
	running = q.runningLocked()
	if running == 0 {
		close(ch)
		return ch, 0
	}
	q.mu.idleWaiter = append(q.mu.idleWaiter, ch)
	return ch, running
}

// Running is the number of jobs assigned to workers now.
func (q *Queue) Running() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.runningLocked()
}

func (q *Queue) runningLocked() int {
	n := 0
	for _, f := range q.mu.functions {
		n += f.running
	}
	return n
}

// idleCheckLocked closes Drain's channels once no job runs. Called where a
// running job ends; it costs nothing unless someone waits.
func (q *Queue) idleCheckLocked() {
	if len(q.mu.idleWaiter) == 0 || q.runningLocked() > 0 {
		return
	}
	for _, ch := range q.mu.idleWaiter {
		close(ch)
	}
	q.mu.idleWaiter = nil
}
