package client

import (
	"context"
	"io"
	"sync"

	"gearmand/protocol"
)

// Update is one packet the worker sent about a foreground job, as forwarded
// by the server.
//
// Type is one of protocol.WorkData, WorkWarning, WorkStatus (intermediate)
// or WorkComplete, WorkFail, WorkException (final). Data holds the payload
// of WORK_DATA, WORK_WARNING, WORK_COMPLETE and WORK_EXCEPTION;
// Numerator and Denominator that of WORK_STATUS, parsed leniently as the
// server does (leading digits). Data is shared with the Task's Result: do
// not modify it.
type Update struct {
	Type        protocol.Type
	Data        []byte
	Numerator   uint32
	Denominator uint32
}

// Final reports whether u ends the job.
func (u Update) Final() bool {
	return u.Type == protocol.WorkComplete || u.Type == protocol.WorkFail || u.Type == protocol.WorkException
}

// Result is what a foreground job produced, as collected by Task.Wait.
type Result struct {
	// Data is the WORK_COMPLETE payload (nil unless the job completed).
	Data []byte
	// Chunks are the WORK_DATA payloads in arrival order.
	Chunks [][]byte
	// Warnings are the WORK_WARNING payloads in arrival order.
	Warnings [][]byte
	// Numerator and Denominator are from the last WORK_STATUS.
	Numerator   uint32
	Denominator uint32
}

// Task is the client's side of a foreground job: it receives what the
// worker sends, in order. Read the updates one by one with Next, or wait
// for the end with Wait, or both: Wait does not consume Next's queue.
//
// Two Submits on one Client that coalesce into the same job get two Tasks
// with the same Handle; each receives every update once.
//
// A Task is safe for concurrent use. Updates are queued without bound, so
// the connection never waits for a slow reader.
type Task struct {
	// Handle is the job handle the server assigned.
	Handle string

	mu struct {
		sync.Mutex
		queue  []Update
		result Result
		ended  bool  // a final update arrived or the connection was lost
		err    error // Wait's error: nil, ErrJobFailed, *Exception, or the connection's
		lost   error // the connection's error, when that ended the task
		// wake is closed and replaced whenever the fields above change.
		wake chan struct{}
	}
}

func newTask() *Task {
	t := &Task{}
	t.mu.wake = make(chan struct{})
	return t
}

// Next returns the next update, blocking until one arrives or ctx ends. The
// final update (WorkComplete, WorkFail or WorkException) is returned like
// the others; after it Next returns io.EOF. If the connection is lost
// before the final update, Next returns the updates already queued and then
// the connection error.
func (t *Task) Next(ctx context.Context) (Update, error) {
	for {
		t.mu.Lock()
		if len(t.mu.queue) > 0 {
			u := t.mu.queue[0]
			t.mu.queue[0] = Update{}
			t.mu.queue = t.mu.queue[1:]
			t.mu.Unlock()
			return u, nil
		}
		if t.mu.ended {
			err := t.mu.lost
			t.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return Update{}, err
		}
		wake := t.mu.wake
		t.mu.Unlock()

		select {
		case <-wake:
		case <-ctx.Done():
			return Update{}, ctx.Err()
		}
	}
}

// Wait blocks until the job ends or ctx does, and returns everything the
// job produced. The error is nil when the job completed, ErrJobFailed after
// WORK_FAIL, an *Exception after WORK_EXCEPTION, a connection error
// (ErrConnectionLost or ErrClosed), or ctx.Err(). The Result is filled in
// as far as the job got in every case but the last.
func (t *Task) Wait(ctx context.Context) (Result, error) {
	for {
		t.mu.Lock()
		if t.mu.ended {
			res, err := t.mu.result, t.mu.err
			t.mu.Unlock()
			return res, err
		}
		wake := t.mu.wake
		t.mu.Unlock()

		select {
		case <-wake:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
}

// push records an update from the connection's reader.
func (t *Task) push(u Update) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.ended {
		return
	}
	t.mu.queue = append(t.mu.queue, u)
	r := &t.mu.result
	switch u.Type {
	case protocol.WorkData:
		r.Chunks = append(r.Chunks, u.Data)
	case protocol.WorkWarning:
		r.Warnings = append(r.Warnings, u.Data)
	case protocol.WorkStatus:
		r.Numerator, r.Denominator = u.Numerator, u.Denominator
	case protocol.WorkComplete:
		r.Data = u.Data
		t.endLocked(nil)
	case protocol.WorkFail:
		t.endLocked(ErrJobFailed)
	case protocol.WorkException:
		t.endLocked(&Exception{Data: u.Data})
	}
	t.wakeLocked()
}

// lose ends the task because the connection failed.
func (t *Task) lose(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.ended {
		return
	}
	t.mu.lost = err
	t.endLocked(err)
	t.wakeLocked()
}

func (t *Task) endLocked(err error) {
	t.mu.ended = true
	t.mu.err = err
}

func (t *Task) wakeLocked() {
	close(t.mu.wake)
	t.mu.wake = make(chan struct{})
}
