package queue

import (
	"sync/atomic"
	"time"
)

// Counters are running totals since the Queue was created, for monitoring.
// Jobs replayed from a store are not counted as submitted.
type Counters struct {
	// Submitted counts jobs created by submissions; a submission that
	// coalesces into an existing job creates none.
	Submitted uint64
	// Completed counts WORK_COMPLETE results.
	Completed uint64
	// Failed counts WORK_FAIL and WORK_EXCEPTION results and jobs that
	// ran out of retries.
	Failed uint64
	// Requeued counts jobs put back in their queue after their worker was
	// lost or timed out.
	Requeued uint64
}

// counters are the atomics behind Counters: bumped under the queue's lock
// on the paths that already touch the job, read without it.
type counters struct {
	submitted, completed, failed, requeued atomic.Uint64
}

// Counters returns the running totals. It does not take the queue's lock.
func (q *Queue) Counters() Counters {
	return Counters{
		Submitted: q.counters.submitted.Load(),
		Completed: q.counters.completed.Load(),
		Failed:    q.counters.failed.Load(),
		Requeued:  q.counters.requeued.Load(),
	}
}

// The creation list: q.mu.created holds every job of the index in creation
// (and replay) order, with nil where a job has been removed, so that
// listings can page through the jobs without copying or sorting the whole
// index. Each job knows its slot, so removal is O(1); the holes are squeezed
// out once they outnumber the jobs, which keeps the cost amortised O(1) per
// job and a scan over the list at most about twice the number of jobs.

// minCompact is the number of holes below which the list is never
// compacted: small lists are not worth the pass.
const minCompact = 1024

// listLocked appends a new job to the creation list.
func (q *Queue) listLocked(j *Job) {
	j.slot = len(q.mu.created)
	q.mu.created = append(q.mu.created, j)
}

// unlistLocked removes j from the creation list.
func (q *Queue) unlistLocked(j *Job) {
	if j.slot < 0 {
		return
	}
	q.mu.created[j.slot] = nil
	j.slot = -1
	q.mu.holes++
	live := len(q.mu.created) - q.mu.holes
	if q.mu.holes < minCompact || q.mu.holes < live {
		return
	}
	kept := q.mu.created[:0]
	for _, x := range q.mu.created {
		if x != nil {
			x.slot = len(kept)
			kept = append(kept, x)
		}
	}
	clear(q.mu.created[len(kept):])
	q.mu.created = kept
	q.mu.holes = 0
}

// JobPage is one page of the job listing.
type JobPage struct {
	// Total is the number of jobs held, queued, delayed, pending or running.
	Total int
	// Jobs are the jobs of the page, in creation order.
	Jobs []JobInfo
}

// JobsPage lists at most limit jobs in creation order, skipping the first
// offset. It copies only the page: the cost under the queue's lock is a
// scan of the first offset jobs' slots plus the page. A negative offset
// counts as 0 and a limit below 1 returns no jobs (Total is still set).
func (q *Queue) JobsPage(offset, limit int) JobPage {
	q.mu.Lock()
	defer q.mu.Unlock()
	page := JobPage{Total: q.mu.jobs.len()}
	if limit < 1 || offset >= page.Total {
		return page
	}
	offset = max(offset, 0)
	page.Jobs = make([]JobInfo, 0, min(limit, page.Total-offset))
	skipped := 0
	for _, j := range q.mu.created {
		if j == nil {
			continue
		}
		if skipped < offset {
			skipped++
			continue
		}
		page.Jobs = append(page.Jobs, infoOf(j))
		if len(page.Jobs) == limit {
			break
		}
	}
	return page
}

// JobState says where a listed job is in its life.
type JobState string

// The states a listing shows.
const (
	JobPending JobState = "pending" // background, waiting for its store commit
	JobQueued  JobState = "queued"  // waiting for a worker
	JobDelayed JobState = "delayed" // an epoch job waiting for its time
	JobRunning JobState = "running" // assigned to a worker
)

func (s jobState) listed() JobState {
	switch s {
	case statePending:
		return JobPending
	case stateDelayed:
		return JobDelayed
	case stateRunning:
		return JobRunning
	}
	return JobQueued
}

// infoOf describes j; the queue's lock must be held.
func infoOf(j *Job) JobInfo {
	return JobInfo{
		Handle: j.handle, Function: j.function.name, Unique: j.unique, Priority: j.priority,
		Retries: j.retries, Ignore: j.ignore, Persisted: j.persisted, Running: j.state == stateRunning,
		State: j.state.listed(), Created: j.created, RunAt: j.runAt, Background: j.background,
	}
}

// Age is how long ago a listed job was created, as of now.
func (j JobInfo) Age(now time.Time) time.Duration { return max(now.Sub(j.Created), 0) }
