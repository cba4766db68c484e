package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gearmand/protocol"
)

// collect returns a handler that records each job it runs on a channel and
// completes it with its data.
func collect(ch chan<- *Job) Handler {
	return func(ctx context.Context, job *Job) ([]byte, error) {
		ch <- job
		return job.Data, nil
	}
}

func TestBackgroundPriorities(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c := dial(t, addr)
		handles := map[string]string{}
		for _, p := range []Priority{Low, Normal, High} {
			h, err := c.SubmitBackground(ctx, "prio", "", []byte(p.String()), p)
			if err != nil {
				t.Fatalf("SubmitBackground(%v): %v", p, err)
			}
			if h == "" {
				t.Fatalf("SubmitBackground(%v): empty handle", p)
			}
			handles[p.String()] = h
			st, err := c.Status(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Known || st.Running || st.Handle != h {
				t.Fatalf("Status(%s) = %+v, want known and queued", h, st)
			}
		}

		jobs := make(chan *Job, 3)
		startWorker(t, addr, func(w *Worker) { mustRegister(t, w, "prio", collect(jobs)) })
		var got []string
		for range 3 {
			j := <-jobs
			if j.Handle != handles[string(j.Data)] || j.Function != "prio" {
				t.Errorf("job %+v does not match its submission", j)
			}
			got = append(got, string(j.Data))
		}
		if want := []string{"high", "normal", "low"}; !slices.Equal(got, want) {
			t.Errorf("run order %v, want %v", got, want)
		}
		// Finished jobs are forgotten.
		for _, h := range handles {
			waitFor(t, "job "+h+" to be forgotten", func() bool {
				st, err := c.Status(ctx, h)
				return err == nil && !st.Known
			})
		}
	})
}

func TestForeground(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "steps", func(ctx context.Context, job *Job) ([]byte, error) {
				if job.Unique != "u-steps" || string(job.Data) != "in\x00put" {
					return nil, fmt.Errorf("job %+v", job)
				}
				for _, err := range []error{
					job.SendData([]byte("chunk1")),
					job.SendStatus(1, 3),
					job.SendWarning([]byte("careful")),
					job.SendData([]byte("chunk\x002")),
					job.SendStatus(3, 3),
				} {
					if err != nil {
						return nil, err
					}
				}
				return []byte("result\x00"), nil
			})
		})
		c := dial(t, addr)
		for _, p := range []Priority{High, Normal, Low} {
			task, err := c.Submit(ctx, "steps", "u-steps", []byte("in\x00put"), p)
			if err != nil {
				t.Fatal(err)
			}
			want := []Update{
				{Type: protocol.WorkData, Data: []byte("chunk1")},
				{Type: protocol.WorkStatus, Numerator: 1, Denominator: 3},
				{Type: protocol.WorkWarning, Data: []byte("careful")},
				{Type: protocol.WorkData, Data: []byte("chunk\x002")},
				{Type: protocol.WorkStatus, Numerator: 3, Denominator: 3},
				{Type: protocol.WorkComplete, Data: []byte("result\x00")},
			}
			for i, w := range want {
				u, err := task.Next(ctx)
				if err != nil {
					t.Fatalf("%v: update %d: %v", p, i, err)
				}
				if u.Type != w.Type || !bytes.Equal(u.Data, w.Data) || u.Numerator != w.Numerator || u.Denominator != w.Denominator {
					t.Fatalf("%v: update %d = %+v, want %+v", p, i, u, w)
				}
				if u.Final() != (i == len(want)-1) {
					t.Errorf("update %d: Final() = %v", i, u.Final())
				}
			}
			if _, err := task.Next(ctx); err != io.EOF {
				t.Fatalf("Next after the end: %v, want io.EOF", err)
			}
			res, err := task.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Data) != "result\x00" || len(res.Chunks) != 2 || string(res.Chunks[1]) != "chunk\x002" ||
				len(res.Warnings) != 1 || res.Numerator != 3 || res.Denominator != 3 {
				t.Errorf("Wait = %+v", res)
			}
		}
		out, err := c.Call(ctx, "steps", "u-steps", []byte("in\x00put"), Normal)
		if err != nil || string(out) != "result\x00" {
			t.Errorf("Call = %q, %v", out, err)
		}
	})
}

func TestWorkFail(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "fail", func(ctx context.Context, job *Job) ([]byte, error) {
				job.SendData([]byte("partial"))
				return nil, errors.New("no")
			})
		})
		c := dial(t, addr)
		task, err := c.Submit(ctx, "fail", "", nil, Normal)
		if err != nil {
			t.Fatal(err)
		}
		res, err := task.Wait(ctx)
		if !errors.Is(err, ErrJobFailed) {
			t.Fatalf("Wait error %v, want ErrJobFailed", err)
		}
		if len(res.Chunks) != 1 || string(res.Chunks[0]) != "partial" {
			t.Errorf("Result %+v, want the partial chunk", res)
		}
		if _, err := c.Call(ctx, "fail", "", nil, Low); !errors.Is(err, ErrJobFailed) {
			t.Errorf("Call error %v, want ErrJobFailed", err)
		}
	})
}

func TestWorkException(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "throw", func(ctx context.Context, job *Job) ([]byte, error) {
				return nil, fmt.Errorf("wrapped: %w", &Exception{Data: []byte("boom\x00!")})
			})
		})

		plain := dial(t, addr)
		if _, err := plain.Call(ctx, "throw", "", nil, Normal); !errors.Is(err, ErrJobFailed) {
			t.Errorf("without the exceptions option: %v, want ErrJobFailed", err)
		}
		// The connection is still in step after the WORK_FAIL.
		if out, err := plain.Echo(ctx, []byte("x")); err != nil || string(out) != "x" {
			t.Errorf("Echo after exception: %q, %v", out, err)
		}

		exc := dial(t, addr)
		if err := exc.Option(ctx, "exceptions"); err != nil {
			t.Fatal(err)
		}
		_, err := exc.Call(ctx, "throw", "", nil, Normal)
		var e *Exception
		if !errors.As(err, &e) || string(e.Data) != "boom\x00!" {
			t.Errorf("with the exceptions option: %v, want an Exception with the data", err)
		}
	})
}

func TestPipelined(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		reverse := func(ctx context.Context, job *Job) ([]byte, error) {
			out := slices.Clone(job.Data)
			slices.Reverse(out)
			return out, nil
		}
		for range 2 {
			startWorker(t, addr, func(w *Worker) { mustRegister(t, w, "rev", reverse) })
		}
		c := dial(t, addr)

		const goroutines, each = 8, 25
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			handles = map[string]bool{}
		)
		errs := make(chan error, goroutines*each*3)
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					in := fmt.Sprintf("g%d-i%d", g, i)
					h, err := c.SubmitBackground(ctx, "bg-only", in, []byte(in), Priority(i%3))
					if err != nil {
						errs <- err
						continue
					}
					mu.Lock()
					dup := handles[h]
					handles[h] = true
					mu.Unlock()
					if dup {
						errs <- fmt.Errorf("handle %s given twice", h)
					}
					out, err := c.Call(ctx, "rev", "", []byte(in), Priority(i%3))
					if err != nil {
						errs <- err
					} else if want := reverseString(in); string(out) != want {
						errs <- fmt.Errorf("Call(%q) = %q, want %q", in, out, want)
					}
					if echo, err := c.Echo(ctx, []byte(in)); err != nil || string(echo) != in {
						errs <- fmt.Errorf("Echo(%q) = %q, %v", in, echo, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if len(handles) != goroutines*each {
			t.Errorf("%d distinct handles, want %d", len(handles), goroutines*each)
		}
	})
}

func reverseString(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

func TestStatus(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c := dial(t, addr)

		st, err := c.Status(ctx, "H:nowhere:1")
		if err != nil || st.Known || st.Running || st.Handle != "H:nowhere:1" {
			t.Errorf("Status(unknown) = %+v, %v", st, err)
		}
		st, err = c.StatusUnique(ctx, "no-such-unique")
		if err != nil || st.Known || st.Clients != 0 || st.Unique != "no-such-unique" {
			t.Errorf("StatusUnique(unknown) = %+v, %v", st, err)
		}

		started := make(chan struct{})
		release := make(chan struct{})
		w := startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "slow", func(ctx context.Context, job *Job) ([]byte, error) {
				if err := job.SendStatus(3, 7); err != nil {
					return nil, err
				}
				close(started)
				<-release
				return nil, nil
			})
		})
		_ = w

		other := dial(t, addr)
		task1, err := c.Submit(ctx, "slow", "u-status", nil, Normal)
		if err != nil {
			t.Fatal(err)
		}
		<-started
		task2, err := other.Submit(ctx, "slow", "u-status", nil, Normal) // coalesces
		if err != nil {
			t.Fatal(err)
		}
		if task2.Handle != task1.Handle {
			t.Errorf("coalesced submit got handle %s, want %s", task2.Handle, task1.Handle)
		}
		if u, err := task1.Next(ctx); err != nil || u.Type != protocol.WorkStatus || u.Numerator != 3 {
			t.Fatalf("first update %+v, %v", u, err)
		}

		st, err = c.Status(ctx, task1.Handle)
		if err != nil || !st.Known || !st.Running || st.Numerator != 3 || st.Denominator != 7 {
			t.Errorf("Status(running) = %+v, %v", st, err)
		}
		st, err = c.StatusUnique(ctx, "u-status")
		if err != nil || !st.Known || !st.Running || st.Numerator != 3 || st.Denominator != 7 || st.Clients != 2 {
			t.Errorf("StatusUnique(running) = %+v, %v; want 2 clients", st, err)
		}

		close(release)
		for _, task := range []*Task{task1, task2} {
			if _, err := task.Wait(ctx); err != nil {
				t.Error(err)
			}
		}
		st, err = c.Status(ctx, task1.Handle)
		if err != nil || st.Known {
			t.Errorf("Status(finished) = %+v, %v", st, err)
		}

		if _, err := c.Status(ctx, strings.Repeat("h", 64)); err == nil {
			t.Error("Status with a 64-byte handle: no error")
		}
	})
}

func TestEcho(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c := dial(t, addr)
		for _, in := range [][]byte{
			{},
			[]byte("\x00"),
			[]byte("a\x00b\x00\x00c\x00"),
			bytes.Repeat([]byte("0123456789\x00"), 20000), // larger than any buffer
		} {
			out, err := c.Echo(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, in) {
				t.Errorf("Echo of %d bytes returned %d different bytes", len(in), len(out))
			}
		}
	})
}

func TestServerError(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c := dial(t, addr)
		var se *ServerError
		if err := c.Option(ctx, "no-such-option"); !errors.As(err, &se) || se.Code != "UNKNOWN_OPTION" {
			t.Errorf("Option(unknown) = %v, want ServerError UNKNOWN_OPTION", err)
		}
		if err := c.Option(ctx, "exceptions"); err != nil {
			t.Errorf("Option(exceptions) = %v", err)
		}
		_, err := c.SubmitBackground(ctx, "f", strings.Repeat("u", 65), nil, Normal)
		if !errors.As(err, &se) || se.Code != "ARGUMENT_TOO_LARGE" {
			t.Errorf("65-byte unique: %v, want ServerError ARGUMENT_TOO_LARGE", err)
		}
		if _, err := c.Submit(ctx, "f", strings.Repeat("u", 65), nil, Normal); !errors.As(err, &se) {
			t.Errorf("foreground 65-byte unique: %v, want ServerError", err)
		}
		// Still in step.
		if out, err := c.Echo(ctx, []byte("ok")); err != nil || string(out) != "ok" {
			t.Errorf("Echo after errors = %q, %v", out, err)
		}
		// Arguments that cannot be framed never leave the client.
		if _, err := c.SubmitBackground(ctx, "f\x00g", "", nil, Normal); err == nil {
			t.Error("function with a NUL: no error")
		}
		if _, err := c.SubmitBackground(ctx, "f", "", nil, Priority(9)); err == nil {
			t.Error("invalid priority: no error")
		}
	})
}

func TestEpochAndReduce(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c := dial(t, addr)
		if _, err := c.SubmitEpoch(ctx, "later", "e1", []byte("epoch"), time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SubmitReduceBackground(ctx, "red", "r1", "sum", []byte("bg")); err != nil {
			t.Fatal(err)
		}
		jobs := make(chan *Job, 4)
		startWorker(t, addr, func(w *Worker) {
			w.SetGrabAll(true)
			mustRegister(t, w, "later", collect(jobs))
			mustRegister(t, w, "red", collect(jobs))
		})
		seen := map[string]*Job{}
		for range 2 {
			j := <-jobs
			seen[j.Unique] = j
		}
		if j := seen["e1"]; j == nil || string(j.Data) != "epoch" || j.Reducer != "" {
			t.Errorf("epoch job %+v", j)
		}
		if j := seen["r1"]; j == nil || string(j.Data) != "bg" || j.Reducer != "sum" {
			t.Errorf("background reduce job %+v", j)
		}

		task, err := c.SubmitReduce(ctx, "red", "r2", "count", []byte("fg"))
		if err != nil {
			t.Fatal(err)
		}
		if j := <-jobs; j.Unique != "r2" || j.Reducer != "count" || string(j.Data) != "fg" {
			t.Errorf("foreground reduce job %+v", j)
		}
		if res, err := task.Wait(ctx); err != nil || string(res.Data) != "fg" {
			t.Errorf("reduce Wait = %+v, %v", res, err)
		}
	})
}

func TestCancel(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c := dial(t, addr)

		// Cancel calls at random points of their round trip: whatever each
		// returns, later replies must still match their requests.
		for i := range 50 {
			cctx, cancel := context.WithCancel(ctx)
			in := []byte(fmt.Sprint("echo-", i))
			go cancel()
			out, err := c.Echo(cctx, in)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Echo: %v", err)
			}
			if err == nil && !bytes.Equal(out, in) {
				t.Fatalf("Echo(%q) = %q", in, out)
			}
			cancel()
		}
		if out, err := c.Echo(ctx, []byte("check")); err != nil || string(out) != "check" {
			t.Fatalf("Echo after cancellations = %q, %v", out, err)
		}

		// Waiting for a job nobody runs ends with the context.
		task, err := c.Submit(ctx, "nobody", "", nil, Normal)
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := task.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait = %v, want DeadlineExceeded", err)
		}
		if _, err := task.Next(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next = %v, want DeadlineExceeded", err)
		}

		// A context that has already ended sends nothing.
		done, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.SubmitBackground(done, "nobody", "", nil, Normal); !errors.Is(err, context.Canceled) {
			t.Errorf("SubmitBackground with a done ctx = %v", err)
		}

		// Submits whose context ends mid-flight: those that return a Task
		// get their results, the others' packets are dropped, and the
		// connection stays in step.
		var tasks []*Task
		for i := range 20 {
			cctx, cancel := context.WithCancel(ctx)
			go cancel()
			task, err := c.Submit(cctx, "nobody", "", []byte(fmt.Sprint(i)), Normal)
			if err == nil {
				tasks = append(tasks, task)
			} else if !errors.Is(err, context.Canceled) {
				t.Fatalf("Submit: %v", err)
			}
		}
		startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "nobody", func(ctx context.Context, job *Job) ([]byte, error) {
				return append([]byte("done "), job.Data...), nil
			})
		})
		// The job whose Wait timed out above still delivers its result.
		if res, err := task.Wait(ctx); err != nil || string(res.Data) != "done " {
			t.Errorf("Wait after the worker came = %+v, %v", res, err)
		}
		for _, task := range tasks {
			if res, err := task.Wait(ctx); err != nil || !strings.HasPrefix(string(res.Data), "done ") {
				t.Errorf("Wait = %+v, %v", res, err)
			}
		}
		if out, err := c.Echo(ctx, []byte("still")); err != nil || string(out) != "still" {
			t.Errorf("Echo = %q, %v", out, err)
		}
	})
}

func TestConnectionLoss(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		paddr, cut := proxy(t, addr)
		c := dial(t, paddr)
		task, err := c.Submit(ctx, "nobody", "", nil, Normal)
		if err != nil {
			t.Fatal(err)
		}
		cut()
		if _, err := task.Wait(ctx); !errors.Is(err, ErrConnectionLost) {
			t.Errorf("Wait = %v, want ErrConnectionLost", err)
		}
		if _, err := task.Next(ctx); !errors.Is(err, ErrConnectionLost) {
			t.Errorf("Next = %v, want ErrConnectionLost", err)
		}
		if _, err := c.Echo(ctx, nil); !errors.Is(err, ErrConnectionLost) {
			t.Errorf("Echo after loss = %v, want ErrConnectionLost", err)
		}
	})
}

// TestWaitersFailOnLoss holds requests unanswered with a server that reads
// but never replies, then drops the connection.
func TestWaitersFailOnLoss(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := l.Accept()
		if err == nil {
			accepted <- conn
		}
	}()
	ctx := testCtx(t)
	c := dial(t, l.Addr().String())
	conn := <-accepted
	r := protocol.NewReader(conn)

	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Echo(ctx, []byte("x"))
			errs <- err
		}()
	}
	for range n { // all requests are on the wire, so all are waiting
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	for range n {
		if err := <-errs; !errors.Is(err, ErrConnectionLost) || !errors.Is(err, io.EOF) {
			t.Errorf("Echo = %v, want ErrConnectionLost wrapping io.EOF", err)
		}
	}
}

// TestUnsolicitedReply: a reply with no request waiting desynchronises the
// connection, which is then failed rather than trusted.
func TestUnsolicitedReply(t *testing.T) {
	server, conn := net.Pipe()
	c := NewClient(conn)
	defer c.Close()
	go io.Copy(io.Discard, server)
	if _, err := server.Write(protocol.AppendPacketStrings(nil, protocol.Res, protocol.EchoRes, "surprise")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client to fail", func() bool { return c.err() != nil })
	_, err := c.Echo(testCtx(t), nil)
	if !errors.Is(err, ErrConnectionLost) || !errors.Is(err, ErrProtocol) {
		t.Errorf("Echo = %v, want ErrConnectionLost wrapping ErrProtocol", err)
	}
	server.Close()
}

func TestClose(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c, err := Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		task, err := c.Submit(ctx, "nobody", "", nil, Normal)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		c.Close()
		if _, err := task.Wait(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Wait after Close = %v, want ErrClosed", err)
		}
		if _, err := c.Echo(ctx, nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Echo after Close = %v, want ErrClosed", err)
		}
	})
}

func TestSetClientID(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c := dial(t, addr)
		if err := c.SetClientID("client-id-1"); err != nil {
			t.Fatal(err)
		}
		w := startWorker(t, addr, func(w *Worker) {
			if err := w.SetClientID("worker-id-1"); err != nil {
				t.Fatal(err)
			}
			mustRegister(t, w, "fn-listed", func(context.Context, *Job) ([]byte, error) { return nil, nil })
		})
		_ = w
		// The server does not answer SET_CLIENT_ID; an echo on the same
		// connection orders it before the admin query.
		if _, err := c.Echo(ctx, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "both ids in the workers listing", func() bool {
			out := adminCommand(t, addr, "workers")
			return strings.Contains(out, " client-id-1 :") && strings.Contains(out, " worker-id-1 : fn-listed")
		})
	})
}

// adminCommand sends one admin text command and returns the listing up to
// the terminating ".".
func adminCommand(t *testing.T, addr, cmd string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("admin %q: %v after %q", cmd, err, out.String())
		}
		if line == ".\n" {
			return out.String()
		}
		out.WriteString(line)
	}
}

// TestCoalesce: foreground submissions with the same unique share one job,
// on one connection or several, and every Task sees every update once
// although the server sends one copy per submission.
func TestCoalesce(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		ctx := testCtx(t)
		c, other := dial(t, addr), dial(t, addr)
		var tasks []*Task
		for _, cl := range []*Client{c, c, other, c} {
			task, err := cl.Submit(ctx, "co", "same", []byte("first wins"), Normal)
			if err != nil {
				t.Fatal(err)
			}
			tasks = append(tasks, task)
		}
		for _, task := range tasks[1:] {
			if task.Handle != tasks[0].Handle {
				t.Fatalf("handles %s and %s for one unique", task.Handle, tasks[0].Handle)
			}
		}
		startWorker(t, addr, func(w *Worker) {
			mustRegister(t, w, "co", func(ctx context.Context, job *Job) ([]byte, error) {
				job.SendData([]byte("d1"))
				job.SendStatus(1, 2)
				job.SendData([]byte("d2"))
				return job.Data, nil
			})
		})
		for i, task := range tasks {
			var got []string
			for {
				u, err := task.Next(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("task %d: %v", i, err)
				}
				got = append(got, fmt.Sprintf("%v:%s:%d", u.Type, u.Data, u.Numerator))
			}
			want := []string{"WORK_DATA:d1:0", "WORK_STATUS::1", "WORK_DATA:d2:0", "WORK_COMPLETE:first wins:0"}
			if !slices.Equal(got, want) {
				t.Errorf("task %d saw %q, want %q", i, got, want)
			}
		}
		if out, err := c.Echo(ctx, []byte("x")); err != nil || string(out) != "x" {
			t.Errorf("Echo = %q, %v", out, err)
		}
	})
}
