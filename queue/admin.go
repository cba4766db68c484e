package queue

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"gearmand/protocol"
)

// JobStatus answers GET_STATUS and GET_STATUS_UNIQUE.
type JobStatus struct {
	Known       bool
	Running     bool
	Numerator   uint32
	Denominator uint32
	Clients     int // attached foreground clients
}

// Status reports on the job with this handle. Finished jobs are forgotten
// at once, so they read as unknown; clients rely on that to see that a
// background job is done.
func (q *Queue) Status(handle []byte) JobStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	return statusOf(q.mu.jobs.get(string(handle)))
}

// StatusUnique reports on the most recently created job carrying unique,
// whatever its function, as gearmand does. An empty unique is never found.
func (q *Queue) StatusUnique(unique []byte) JobStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	var found *Job
	better := func(j *Job) {
		if j != nil && (found == nil || j.seq > found.seq) {
			found = j
		}
	}
	if len(unique) == 0 {
		return JobStatus{}
	}
	for _, f := range q.mu.functions {
		if string(unique) == "-" {
			for _, j := range f.byData {
				better(j)
			}
			continue
		}
		better(f.uniques[string(unique)])
	}
	return statusOf(found)
}

func statusOf(j *Job) JobStatus {
	if j == nil {
		return JobStatus{}
	}
	return JobStatus{
		Known:       true,
		Running:     j.state == stateRunning,
		Numerator:   j.numerator,
		Denominator: j.denominator,
		Clients:     len(j.clients),
	}
}

// FunctionStatus is one line of `status` and `prioritystatus`.
type FunctionStatus struct {
	Name    string
	Queued  [3]int // per priority, delayed epoch jobs included
	Running int
	Workers int // registrations, duplicates included
}

// Total is queued plus running, the TOTAL column of `status`.
func (s FunctionStatus) Total() int { return s.Queued[0] + s.Queued[1] + s.Queued[2] + s.Running }

// Functions lists every known function in creation order.
func (q *Queue) Functions() []FunctionStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]FunctionStatus, 0, len(q.mu.functions))
	for _, f := range q.sortedFunctionsLocked() {
		out = append(out, FunctionStatus{Name: f.name, Queued: f.queued, Running: f.running, Workers: len(f.workers)})
	}
	return out
}

func (q *Queue) sortedFunctionsLocked() []*Function {
	fs := make([]*Function, 0, len(q.mu.functions))
	for _, f := range q.mu.functions {
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b *Function) int { return cmp.Compare(a.order, b.order) })
	return fs
}

// WorkerInfo is one line of `workers`: every connection, workers or not.
type WorkerInfo struct {
	FD        int
	Addr      string
	ClientID  string
	Functions []string // registrations, newest first, duplicates included
}

// Workers lists every connection in connection order.
func (q *Queue) Workers() []WorkerInfo {
	q.mu.Lock()
	defer q.mu.Unlock()
	ss := make([]*Session, 0, len(q.mu.sessions))
	for s := range q.mu.sessions {
		ss = append(ss, s)
	}
	slices.SortFunc(ss, func(a, b *Session) int { return cmp.Compare(a.order, b.order) })
	out := make([]WorkerInfo, 0, len(ss))
	for _, s := range ss {
		w := WorkerInfo{FD: s.info.FD, Addr: s.info.Addr, ClientID: s.id}
		for _, a := range s.abilities {
			w.Functions = append(w.Functions, a.function.name)
		}
		out = append(out, w)
	}
	return out
}

// JobInfo is one line of `show jobs`, plus what the unique listing needs.
type JobInfo struct {
	Handle    string
	Function  string
	Unique    string
	Priority  Priority
	Retries   uint32
	Ignore    bool
	Persisted bool
	Running   bool

	State      JobState
	Created    time.Time
	RunAt      time.Time // zero: runnable at once
	Background bool
}

// Jobs lists every job, queued or running, in creation order. JobsPage
// lists a page of them without copying the rest.
func (q *Queue) Jobs() []JobInfo {
	return q.JobsPage(0, math.MaxInt).Jobs
}

// Len is the number of jobs held, queued or running.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.jobs.len()
}

// SetMaxQueue sets the per-priority limits (HIGH, NORMAL, LOW; 0 is
// unlimited, negatives count as 0) of an existing function, matched
// exactly. It reports whether the function exists; gearmand answers OK
// either way.
func (q *Queue) SetMaxQueue(name string, limits [3]int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.mu.functions[name]
	if f == nil {
		return false
	}
	for i, l := range limits {
		f.maxQueue[i] = max(l, 0)
	}
	return true
}

// Cancel ends the job with this handle as the admin `cancel job` does: its
// clients get WORK_FAIL and are detached; a queued job is removed; a running
// one is ignored, so its worker may finish but the result goes nowhere. It
// reports whether the job existed.
func (q *Queue) Cancel(handle string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.mu.jobs.get(handle)
	if j == nil || j.state == statePending {
		return false // a pending job's handle has not been given out yet
	}
	q.sendToClientsLocked(j, protocol.WorkFail, j.handle)
	for _, c := range j.clients {
		c.waiting = removeJob(c.waiting, j)
	}
	j.clients = nil
	q.abandonLocked(j)
	return true
}

// CreateFunction makes an empty function entry (a no-op when it exists).
func (q *Queue) CreateFunction(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.functionLocked([]byte(name))
}

// DropFunction removes a function, matching its name case-insensitively as
// gearmand does. It refuses with ErrFunctionBusy while workers are
// registered or jobs are queued or running (gearmand orphans queued jobs;
// we keep them), and returns ErrFunctionNotFound for an unknown name.
func (q *Queue) DropFunction(name string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, f := range q.sortedFunctionsLocked() {
		if !strings.EqualFold(f.name, name) {
			continue
		}
		if len(f.workers) > 0 || f.total() > 0 {
			return ErrFunctionBusy
		}
		delete(q.mu.functions, f.name)
		return nil
	}
	return ErrFunctionNotFound
}
