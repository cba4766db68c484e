package queue

import "fmt"

// ErrQueueBytesFull refuses a submission whose payload would take the
// payload bytes held by the queue past Config.MaxQueuedBytes. It wraps
// ErrQueueFull, so callers that answer ErrQueueFull with gearmand's
// QUEUE_ERROR "Job queue is full" answer this the same way.
var ErrQueueBytesFull = fmt.Errorf("%w: queued payloads would exceed the byte limit", ErrQueueFull)

// The payload bytes of the queue are the data of every job in its index,
// whatever its state (waiting for the store, queued, delayed or running):
// a running job's payload stays in memory until the job ends. A job is
// counted when it enters the index (Submit, Restore) and uncounted when it
// leaves it (removeLocked), under the queue's lock, so the figure is exact
// and costs one addition on each path. Coalesced submissions add nothing:
// their payload is discarded.

// admitBytesLocked reports whether a new job carrying n payload bytes fits
// under Config.MaxQueuedBytes (0 or negative: no limit).
func (q *Queue) admitBytesLocked(n int) bool {
	limit := q.cfg.MaxQueuedBytes
	return limit <= 0 || q.mu.queuedBytes+int64(n) <= limit
}

// countBytesLocked adds j's payload to the queue's total.
func (q *Queue) countBytesLocked(j *Job) { q.mu.queuedBytes += int64(len(j.data)) }

// uncountBytesLocked takes j's payload off the queue's total.
func (q *Queue) uncountBytesLocked(j *Job) { q.mu.queuedBytes -= int64(len(j.data)) }

// QueuedBytes returns the payload bytes of every job the queue holds.
func (q *Queue) QueuedBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.queuedBytes
}
