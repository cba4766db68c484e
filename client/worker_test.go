package client

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkerWakeup: a worker that found no job sleeps (PRE_SLEEP) and only
// grabs again when the server's NOOP arrives, which a new submission causes.
func TestWorkerWakeup(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		var sleeps atomic.Int32
		jobs := make(chan *Job, 1)
		startWorker(t, addr, func(w *Worker) {
			w.testHookSleep = func() { sleeps.Add(1) }
			w.SetPollInterval(0) // only a NOOP may wake it
			mustRegister(t, w, "wake", collect(jobs))
		})
		waitFor(t, "the worker to sleep", func() bool { return sleeps.Load() >= 1 })

		c := dial(t, addr)
		for i := range 3 {
			before := sleeps.Load()
			out, err := c.Call(ctx, "wake", "", []byte("job"), Normal)
			if err != nil || string(out) != "job" {
				t.Fatalf("Call %d = %q, %v", i, out, err)
			}
			<-jobs
			waitFor(t, "the worker to sleep again", func() bool { return sleeps.Load() > before })
		}
	})
}

// TestWorkCancel: Work returns when its context ends while asleep, and a
// later Work on the same Worker carries on in step.
func TestWorkCancel(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		w, err := NewWorker(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		jobs := make(chan *Job, 1)
		mustRegister(t, w, "resume", collect(jobs))
		var sleeps atomic.Int32
		w.testHookSleep = func() { sleeps.Add(1) }

		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Work(wctx) }()
		waitFor(t, "the worker to sleep", func() bool { return sleeps.Load() == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Work = %v, want Canceled", err)
		}

		c := dial(t, addr)
		if _, err := c.SubmitBackground(ctx, "resume", "", []byte("later"), Normal); err != nil {
			t.Fatal(err)
		}
		wctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() { done <- w.Work(wctx) }()
		if j := <-jobs; string(j.Data) != "later" {
			t.Errorf("job %+v", j)
		}
		if err := w.Work(wctx); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("concurrent Work = %v, want an error", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Work = %v, want Canceled", err)
		}
	})
}

// TestWorkCancelRequeues: a handler that gives up because Work's context
// ended does not fail its job; the worker hangs up and the server hands the
// job to another worker.
func TestWorkCancelRequeues(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		w, err := NewWorker(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		started := make(chan struct{})
		mustRegister(t, w, "requeue", func(ctx context.Context, job *Job) ([]byte, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		})
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Work(wctx) }()

		c := dial(t, addr)
		task, err := c.Submit(ctx, "requeue", "", []byte("again"), Normal)
		if err != nil {
			t.Fatal(err)
		}
		<-started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Work = %v, want Canceled", err)
		}
		startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "requeue", func(ctx context.Context, job *Job) ([]byte, error) {
				return []byte("second run"), nil
			})
		})
		if res, err := task.Wait(ctx); err != nil || string(res.Data) != "second run" {
			t.Errorf("Wait = %+v, %v", res, err)
		}
	})
}

// TestUnregister: after CANT_DO the worker no longer gets the function's
// jobs.
func TestUnregister(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		jobs := make(chan *Job, 2)
		startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "gone", collect(jobs))
			if err := w.Unregister("gone"); err != nil {
				t.Fatal(err)
			}
			mustRegister(t, w, "kept", collect(jobs))
		})
		c := dial(t, addr)
		gone, err := c.SubmitBackground(ctx, "gone", "", nil, High)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := c.Call(ctx, "kept", "", []byte("k"), Low); err != nil || string(out) != "k" {
			t.Fatalf("Call = %q, %v", out, err)
		}
		if j := <-jobs; j.Function != "kept" {
			t.Errorf("ran %+v", j)
		}
		st, err := c.Status(ctx, gone)
		if err != nil || !st.Known || st.Running {
			t.Errorf("Status of the unregistered function's job = %+v, %v; want queued", st, err)
		}
	})
}

// TestRegisterTimeout: a run that overruns its CAN_DO_TIMEOUT is taken back
// and run by another worker; the late result is refused by the server and
// ignored by the first worker, which carries on.
func TestRegisterTimeout(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		started := make(chan *Job, 1)
		release := make(chan struct{})
		var runs atomic.Int32
		startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "slow-only", func(ctx context.Context, job *Job) ([]byte, error) {
				return job.Data, nil
			})
			if err := w.RegisterTimeout("limited", time.Second, func(ctx context.Context, job *Job) ([]byte, error) {
				if runs.Add(1) == 1 {
					started <- job
					select {
					case <-release:
					case <-ctx.Done():
					}
					return []byte("too late"), nil
				}
				return nil, errors.New("the slow worker ran the job twice")
			}); err != nil {
				t.Fatal(err)
			}
			if err := w.RegisterTimeout("bad", 0, nil); err == nil {
				t.Error("RegisterTimeout with 0: no error")
			}
		})
		c := dial(t, addr)
		task, err := c.Submit(ctx, "limited", "", nil, Normal)
		if err != nil {
			t.Fatal(err)
		}
		<-started
		startWorker(t, addr, func(w *Worker) {
			// gearmand 1.1.20 does not wake sleeping workers when it
			// requeues a job after a timeout; poll instead.
			w.SetPollInterval(50 * time.Millisecond)
			mustRegister(t, w, "limited", func(ctx context.Context, job *Job) ([]byte, error) {
				return []byte("in time"), nil
			})
		})
		if res, err := task.Wait(ctx); err != nil || string(res.Data) != "in time" {
			t.Fatalf("Wait = %q, %v; want the second worker's result", res.Data, err)
		}
		close(release)
		// The slow worker's late WORK_COMPLETE gets ERROR JOB_NOT_FOUND,
		// which comes before the answer to its next grab; only it can run
		// slow-only, so that job completing shows it read past the ERROR.
		if out, err := c.Call(ctx, "slow-only", "", []byte("x"), Normal); err != nil || string(out) != "x" {
			t.Errorf("Call(slow-only) = %q, %v", out, err)
		}
	})
}

// TestWorkerConnectionLoss: Work reports a lost connection.
func TestWorkerConnectionLoss(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		paddr, cut := proxy(t, addr)
		w, err := NewWorker(ctx, paddr)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var sleeps atomic.Int32
		w.testHookSleep = func() { sleeps.Add(1) }
		mustRegister(t, w, "f", collect(nil))
		done := make(chan error, 1)
		go func() { done <- w.Work(ctx) }()
		waitFor(t, "the worker to sleep", func() bool { return sleeps.Load() == 1 })
		cut()
		if err := <-done; !errors.Is(err, ErrConnectionLost) {
			t.Errorf("Work = %v, want ErrConnectionLost", err)
		}
		if err := w.Register("g", collect(nil)); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrConnectionLost) {
			t.Errorf("Register after loss = %v", err)
		}
	})
}
