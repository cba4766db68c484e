package queue

import (
	"strconv"
	"time"
)

// Priority is a job's priority. Lower values run first.
type Priority uint8

// The three priorities, in dispatch order.
const (
	High Priority = iota
	Normal
	Low
	numPriorities = 3
)

func (p Priority) String() string {
	switch p {
	case High:
		return "high"
	case Normal:
		return "normal"
	case Low:
		return "low"
	}
	return "Priority(" + strconv.Itoa(int(p)) + ")"
}

// jobState is where a job is in its life.
type jobState uint8

const (
	statePending jobState = iota // background job waiting for its store commit; not visible to workers
	stateQueued                  // in its function's list for its priority
	stateDelayed                 // an epoch job waiting in the timer heap for its time
	stateRunning                 // assigned to a worker
	stateDone                    // removed from every index
)

// Job is one unit of work. Every field is guarded by the Queue's lock; code
// outside the package sees jobs only through the snapshots the Queue returns.
type Job struct {
	seq      uint64
	handle   string
	function *Function
	unique   string
	data     string // a string so that it can key Function.byData without a copy
	priority Priority
	runAt    time.Time // zero: runnable at once
	reducer  string
	created  time.Time

	// background is set when any background submission created or joined
	// the job: it is then never abandoned because its clients left.
	background bool
	// persisted is set when the job was background at creation, the
	// PERSISTED column of `show jobs`.
	persisted bool
	// ignore is set on a running job that was cancelled or abandoned: it is
	// out of the unique index, its clients are detached and its worker's
	// results are discarded.
	ignore bool
	// indexed tells which Function index holds the job, if any.
	indexed indexKind

	retries     uint32 // times its worker was lost or timed out
	numerator   uint32 // last WORK_STATUS
	denominator uint32

	state   jobState
	clients []*Session // attached foreground submitters
	// ackWaiters are sessions whose JOB_CREATED for this job waits for the
	// store to make it durable (write-through).
	ackWaiters []*Session
	worker     *Session // while running

	prev, next *Job // links in the function's list while queued

	deadline  time.Time // epoch due time while delayed, timeout while running
	heapIndex int       // position in the timer heap, -1 when absent
	slot      int       // position in Queue.mu.created, -1 once removed
}

// indexKind says how a job is found by later submissions.
type indexKind uint8

const (
	indexNone   indexKind = iota // empty unique, or "-" with empty data
	indexUnique                  // Function.uniques by unique
	indexData                    // Function.byData by payload, for unique "-"
)

// jobList is an intrusive FIFO of queued jobs with O(1) removal.
type jobList struct {
	head, tail *Job
}

func (l *jobList) pushBack(j *Job) {
	j.prev, j.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = j
	} else {
		l.head = j
	}
	l.tail = j
}

func (l *jobList) remove(j *Job) {
	if j.prev != nil {
		j.prev.next = j.next
	} else {
		l.head = j.next
	}
	if j.next != nil {
		j.next.prev = j.prev
	} else {
		l.tail = j.prev
	}
	j.prev, j.next = nil, nil
}

// timerHeap orders delayed and running-with-timeout jobs by deadline, and
// jobs with equal deadlines by sequence number, so that epoch jobs due at
// the same second (or timeouts expiring together) reach their lists in
// submission order: a heap alone does not keep equal keys in order. It
// implements container/heap.Interface and keeps Job.heapIndex current.
type timerHeap []*Job

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, k int) bool {
	if c := h[i].deadline.Compare(h[k].deadline); c != 0 {
		return c < 0
	}
	return h[i].seq < h[k].seq
}
func (h timerHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].heapIndex = i
	h[k].heapIndex = k
}

func (h *timerHeap) Push(x any) {
	j := x.(*Job)
	j.heapIndex = len(*h)
	*h = append(*h, j)
}

func (h *timerHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.heapIndex = -1
	return j
}
