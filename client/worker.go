package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gearmand/protocol"
)

// Handler runs one job. Its result is sent as WORK_COMPLETE when err is
// nil; an error that is (or wraps) an *Exception is sent as WORK_EXCEPTION
// with the exception's data; any other error as WORK_FAIL.
//
// ctx is the one given to Worker.Work. If it ends and the handler returns
// an error, the job is neither failed nor completed: the Worker closes its
// connection so the server hands the job to another worker.
//
// The Job and its Data are the handler's to keep.
type Handler func(ctx context.Context, job *Job) ([]byte, error)

// Job is a job assigned to a Worker, as the handler sees it.
type Job struct {
	Handle   string
	Function string
	Unique   string
	// Reducer is set only for reduce jobs grabbed with GRAB_JOB_ALL (see
	// Worker.SetGrabAll).
	Reducer string
	Data    []byte

	w    *Worker
	done atomic.Bool
}

// SendData sends a WORK_DATA packet: a chunk of intermediate output that
// the server forwards to every waiting client. Safe for concurrent use;
// returns ErrJobDone once the handler has returned.
func (j *Job) SendData(data []byte) error {
	return j.send(protocol.WorkData, []string{j.Handle}, data)
}

// SendWarning sends a WORK_WARNING packet, forwarded like SendData.
func (j *Job) SendWarning(data []byte) error {
	return j.send(protocol.WorkWarning, []string{j.Handle}, data)
}

// SendStatus sends a WORK_STATUS packet (progress num of den); the server
// forwards it to waiting clients and reports it through GET_STATUS.
func (j *Job) SendStatus(num, den uint32) error {
	return j.send(protocol.WorkStatus, []string{j.Handle, formatUint32(num), formatUint32(den)}, nil)
}

func (j *Job) send(t protocol.Type, fields []string, data []byte) error {
	if j.done.Load() {
		return ErrJobDone
	}
	return j.w.send(t, fields, data)
}

// Worker is one connection to a Gearman server that runs jobs, one at a
// time, for the functions registered on it. Register, Unregister,
// SetClientID, SetGrabAll and Close may be called from any goroutine, also
// while Work runs; Work itself runs in one goroutine at a time.
type Worker struct {
	conn       net.Conn
	closed     chan struct{}
	closeOnce  sync.Once
	readerDone chan struct{}
	// packets carries the server's packets, copied, from the reader
	// goroutine to Work. After it is closed, readErr says why.
	packets chan packet
	readErr error

	working atomic.Bool
	// grabPending is set while a GRAB's answer is still to be read, so a
	// Work call that ctx interrupted leaves the next one in step. Only Work
	// touches it.
	grabPending bool

	wmu struct {
		sync.Mutex
		buf []byte
	}

	mu struct {
		sync.Mutex
		funcs        map[string]Handler
		grabAll      bool
		pollInterval time.Duration
	}

	// testHookSleep, when set, is called after PRE_SLEEP is sent.
	testHookSleep func()
}

type packet struct {
	typ  protocol.Type
	args [][]byte
}

// NewWorker connects to the Gearman server at addr ("host:port"); WithTLS
// connects over TLS.
func NewWorker(ctx context.Context, addr string, opts ...DialOption) (*Worker, error) {
	conn, err := connect(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return NewWorkerConn(conn), nil
}

// NewWorkerConn runs a Worker over an established connection. The Worker
// owns conn from then on.
func NewWorkerConn(conn net.Conn) *Worker {
	w := &Worker{
		conn:       conn,
		closed:     make(chan struct{}),
		readerDone: make(chan struct{}),
		packets:    make(chan packet, 16),
	}
	w.mu.funcs = make(map[string]Handler)
	w.mu.pollInterval = DefaultPollInterval
	go w.readLoop()
	return w
}

// Close closes the connection. The server requeues any job the Worker
// holds. A running Work returns ErrClosed (possibly wrapped); a running
// handler is not interrupted, but its Send calls and its result fail.
// Close is idempotent.
func (w *Worker) Close() error {
	w.closeOnce.Do(func() {
		close(w.closed)
		w.conn.Close()
	})
	<-w.readerDone
	return nil
}

// Register announces that this worker can run fn (CAN_DO) and runs h for
// its jobs. Registering fn again replaces the handler (the server counts
// each registration). The error reports a failed write.
func (w *Worker) Register(fn string, h Handler) error {
	return w.register(fn, 0, h)
}

// RegisterTimeout is Register with a run-time limit (CAN_DO_TIMEOUT): the
// server takes the job back and requeues it when a run exceeds timeout
// (gearmand raises anything under a second to one second). The handler is
// not interrupted; the result of a run that overran is refused by the
// server (ERROR JOB_NOT_FOUND, which Work ignores). A handler that wants to
// stop early can derive its own deadline from ctx.
func (w *Worker) RegisterTimeout(fn string, timeout time.Duration, h Handler) error {
	if timeout <= 0 {
		return fmt.Errorf("gearman: timeout %v is not positive", timeout)
	}
	return w.register(fn, timeout, h)
}

func (w *Worker) register(fn string, timeout time.Duration, h Handler) error {
	if err := checkField("function", fn); err != nil {
		return err
	}
	if h == nil {
		return errors.New("gearman: nil Handler")
	}
	w.mu.Lock()
	w.mu.funcs[fn] = h
	w.mu.Unlock()
	if timeout == 0 {
		return w.send(protocol.CanDo, []string{fn}, nil)
	}
	ms := (timeout + time.Millisecond - 1) / time.Millisecond
	return w.send(protocol.CanDoTimeout, []string{fn, strconv.FormatInt(int64(ms), 10)}, nil)
}

// Unregister withdraws fn (CANT_DO); the server then requeues any job of fn
// this connection holds. If such a job still reaches Work afterwards (it was
// assigned before the server read CANT_DO), Work answers WORK_FAIL, which
// the server refuses since the job was requeued.
func (w *Worker) Unregister(fn string) error {
	if err := checkField("function", fn); err != nil {
		return err
	}
	err := w.send(protocol.CantDo, []string{fn}, nil)
	w.mu.Lock()
	delete(w.mu.funcs, fn)
	w.mu.Unlock()
	return err
}

// SetClientID names this connection in the server's `workers` admin
// listing.
func (w *Worker) SetClientID(id string) error {
	if err := checkField("client id", id); err != nil {
		return err
	}
	return w.send(protocol.SetClientID, []string{id}, nil)
}

// SetGrabAll chooses GRAB_JOB_ALL instead of GRAB_JOB_UNIQ for later grabs,
// so reduce jobs arrive with their Reducer. Servers that do not know
// GRAB_JOB_ALL answer with an ERROR, which ends Work.
func (w *Worker) SetGrabAll(on bool) {
	w.mu.Lock()
	w.mu.grabAll = on
	w.mu.Unlock()
}

// DefaultPollInterval is how long a sleeping Worker waits for a NOOP before
// it grabs again anyway, as libgearman workers do: gearmand 1.1.20 does not
// wake sleeping workers when an epoch job becomes due or when a job is
// requeued after a CAN_DO_TIMEOUT expiry.
const DefaultPollInterval = 10 * time.Second

// SetPollInterval sets how long Work, once asleep, waits for the server's
// NOOP before grabbing again (default DefaultPollInterval). Zero or less
// waits for the NOOP only.
func (w *Worker) SetPollInterval(d time.Duration) {
	w.mu.Lock()
	w.mu.pollInterval = d
	w.mu.Unlock()
}

// Work runs jobs until ctx ends or the connection fails, and returns why:
// ctx.Err(), ErrClosed, an error wrapping ErrConnectionLost, or a
// *ServerError the server sent in answer to a grab.
//
// The loop grabs a job (GRAB_JOB_UNIQ, or GRAB_JOB_ALL), runs its handler
// and sends the result. When the server has no job it sends PRE_SLEEP and
// waits for the server's NOOP, or at most the poll interval (see
// SetPollInterval), before grabbing again. ERROR packets with
// code JOB_NOT_FOUND are ignored: they answer results for jobs the server
// had already taken back (timeout, CANT_DO).
//
// Work may be called again after it returned because ctx ended, unless it
// closed the connection to hand back a job (see Handler).
func (w *Worker) Work(ctx context.Context) error {
	if !w.working.CompareAndSwap(false, true) {
		return errors.New("gearman: Work is already running on this Worker")
	}
	defer w.working.Store(false)

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !w.grabPending {
			w.mu.Lock()
			grab := protocol.GrabJobUniq
			if w.mu.grabAll {
				grab = protocol.GrabJobAll
			}
			w.mu.Unlock()
			if err := w.send(grab, nil, nil); err != nil {
				return err
			}
			w.grabPending = true
		}
		p, err := w.recv(ctx, nil)
		if err != nil {
			return err
		}
		switch p.typ {
		case protocol.Noop:
			// A wake-up from before the grab; its answer is still to come.
		case protocol.Error:
			if err := serverError(p); err != nil {
				return err
			}
		case protocol.NoJob:
			w.grabPending = false
			if err := w.sleep(ctx); err != nil {
				return err
			}
		case protocol.JobAssign, protocol.JobAssignUniq, protocol.JobAssignAll:
			w.grabPending = false
			if err := w.run(ctx, p); err != nil {
				return err
			}
		default:
			return w.lost(fmt.Errorf("%w: unexpected %v packet", ErrProtocol, p.typ))
		}
	}
}

// sleep sends PRE_SLEEP and waits for a NOOP or the poll interval.
func (w *Worker) sleep(ctx context.Context) error {
	if err := w.send(protocol.PreSleep, nil, nil); err != nil {
		return err
	}
	if w.testHookSleep != nil {
		w.testHookSleep()
	}
	w.mu.Lock()
	interval := w.mu.pollInterval
	w.mu.Unlock()
	var poll <-chan time.Time
	if interval > 0 {
		t := time.NewTimer(interval)
		defer t.Stop()
		poll = t.C
	}
	for {
		p, err := w.recv(ctx, poll)
		if errors.Is(err, errPoll) {
			return nil // grab again; a late NOOP is then just spurious
		}
		if err != nil {
			return err
		}
		switch p.typ {
		case protocol.Noop:
			return nil
		case protocol.Error:
			if err := serverError(p); err != nil {
				return err
			}
		default:
			return w.lost(fmt.Errorf("%w: unexpected %v packet while asleep", ErrProtocol, p.typ))
		}
	}
}

// run calls the job's handler and sends its result.
func (w *Worker) run(ctx context.Context, p packet) error {
	job := &Job{w: w, Handle: string(p.arg(0)), Function: string(p.arg(1))}
	switch p.typ {
	case protocol.JobAssign:
		job.Data = p.arg(2)
	case protocol.JobAssignUniq:
		job.Unique, job.Data = string(p.arg(2)), p.arg(3)
	case protocol.JobAssignAll:
		job.Unique, job.Reducer, job.Data = string(p.arg(2)), string(p.arg(3)), p.arg(4)
	}

	w.mu.Lock()
	h, ok := w.mu.funcs[job.Function]
	w.mu.Unlock()
	if !ok {
		// Unregistered while the grab was under way.
		return w.send(protocol.WorkFail, []string{job.Handle}, nil)
	}

	result, err := h(ctx, job)
	job.done.Store(true)

	var exc *Exception
	switch {
	case err == nil:
		return w.send(protocol.WorkComplete, []string{job.Handle}, result)
	case ctx.Err() != nil:
		w.Close() // the server requeues the job
		return ctx.Err()
	case errors.As(err, &exc):
		return w.send(protocol.WorkException, []string{job.Handle}, exc.Data)
	default:
		return w.send(protocol.WorkFail, []string{job.Handle}, nil)
	}
}

// serverError turns an ERROR packet into the error Work returns, or nil for
// one it ignores.
func serverError(p packet) error {
	e := &ServerError{Code: string(p.arg(0)), Text: string(p.arg(1))}
	if e.Code == "JOB_NOT_FOUND" {
		return nil
	}
	return e
}

// errPoll is recv's report that the poll timer fired first.
var errPoll = errors.New("poll interval elapsed")

// recv returns the next packet from the server; poll may be nil.
func (w *Worker) recv(ctx context.Context, poll <-chan time.Time) (packet, error) {
	select {
	case p, ok := <-w.packets:
		if !ok {
			return packet{}, w.lost(w.readErr)
		}
		return p, nil
	case <-ctx.Done():
		return packet{}, ctx.Err()
	case <-poll:
		return packet{}, errPoll
	}
}

// send writes one packet at once: a worker's packets are few and each
// should reach the server without delay.
func (w *Worker) send(t protocol.Type, fields []string, data []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.wmu.buf = appendPacket(w.wmu.buf[:0], t, fields, data)
	_, err := w.conn.Write(w.wmu.buf)
	if cap(w.wmu.buf) > maxSpareBuffer {
		w.wmu.buf = nil
	}
	if err != nil {
		return w.lost(err)
	}
	return nil
}

// lost maps an I/O error to what callers see: ErrClosed after Close,
// otherwise ErrConnectionLost wrapping the cause. Any lost connection is
// closed.
func (w *Worker) lost(cause error) error {
	select {
	case <-w.closed:
		return ErrClosed
	default:
	}
	if errors.Is(cause, ErrClosed) {
		return cause
	}
	w.closeOnce.Do(func() {
		close(w.closed)
		w.conn.Close()
	})
	return fmt.Errorf("%w: %w", ErrConnectionLost, cause)
}

func (w *Worker) readLoop() {
	defer close(w.readerDone)
	defer close(w.packets)
	r := protocol.NewReader(w.conn)
	for {
		m, err := r.Next()
		if err == nil && (m.Text || m.Magic != protocol.Res) {
			err = fmt.Errorf("%w: request or text message from server", ErrProtocol)
		}
		if err != nil {
			select {
			case <-w.closed:
				err = ErrClosed
			default:
			}
			w.readErr = err
			return
		}
		select {
		case w.packets <- packet{typ: m.Type, args: cloneArgs(m.Args)}:
		case <-w.closed:
			w.readErr = ErrClosed
			return
		}
	}
}

func (p packet) arg(i int) []byte {
	if i < len(p.args) {
		return p.args[i]
	}
	return nil
}

// cloneArgs copies args into one allocation; they alias the Reader's buffer.
func cloneArgs(args [][]byte) [][]byte {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		out[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	return out
}
