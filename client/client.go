package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"gearmand/protocol"
)

// Priority selects the queue a job waits in. The zero value is Normal.
type Priority int8

const (
	Normal Priority = iota
	High
	Low
)

func (p Priority) String() string {
	switch p {
	case Normal:
		return "normal"
	case High:
		return "high"
	case Low:
		return "low"
	}
	return "Priority(" + strconv.Itoa(int(p)) + ")"
}

// submitType maps a priority and mode to the SUBMIT_JOB* packet type.
func submitType(p Priority, background bool) (protocol.Type, error) {
	switch {
	case p == Normal && !background:
		return protocol.SubmitJob, nil
	case p == Normal:
		return protocol.SubmitJobBG, nil
	case p == High && !background:
		return protocol.SubmitJobHigh, nil
	case p == High:
		return protocol.SubmitJobHighBG, nil
	case p == Low && !background:
		return protocol.SubmitJobLow, nil
	case p == Low:
		return protocol.SubmitJobLowBG, nil
	}
	return 0, fmt.Errorf("gearman: invalid priority %v", p)
}

// Status is a job's state as reported by GET_STATUS or GET_STATUS_UNIQUE.
// The server forgets a job the moment it finishes, so a finished job reads
// as not Known.
type Status struct {
	Handle string // set by Client.Status
	Unique string // set by Client.StatusUnique

	Known   bool // the server holds the job (queued or running)
	Running bool // a worker has it

	// Numerator and Denominator are the last WORK_STATUS the worker sent
	// (0/0 before any, and again after a requeue).
	Numerator   uint32
	Denominator uint32

	// Clients is the number of foreground clients waiting for the job. Only
	// StatusUnique reports it.
	Clients uint32
}

// Client is one connection to a Gearman server, used to submit jobs and
// query them. It is safe for concurrent use, and pipelined: any number of
// requests may be outstanding at once. Replies are matched to requests by
// order, which the server preserves.
//
// Methods taking a context return ctx.Err() when it ends before the reply
// arrives; the connection stays usable (the late reply is read and
// discarded). Cancelling never cancels a job the server has already
// accepted. A write that the network blocks is not interrupted by ctx.
type Client struct {
	conn       net.Conn
	readerDone chan struct{}

	wmu struct {
		sync.Mutex
		// buf holds packets not yet written. The first sender to find no
		// write in progress becomes the writer: it writes buf, and whatever
		// other senders appended meanwhile, until buf is empty. Requests
		// issued while a write is under way thus share the next write.
		buf     []byte
		spare   []byte // the other half of the double buffer
		writing bool
	}

	mu struct {
		sync.Mutex
		// calls waits for replies, in the order the requests were written.
		calls []*call
		// tasks routes WORK_* packets by job handle.
		tasks map[string]*attachments
		// err is set once the connection is unusable; every later call
		// returns it.
		err error
	}
}

// attachments are the tasks of one job handle on this connection. Each
// foreground submission attaches the connection to the job once more, even
// when it coalesces with an earlier one, and the server sends every WORK_*
// packet once per attachment, the copies back to back. Handing the copies
// to the tasks in turn gives each task every packet exactly once.
type attachments struct {
	tasks []*Task
	next  int // the task that gets the next copy
}

// call is one request waiting for its reply.
type call struct {
	expect protocol.Type // reply type besides ERROR
	task   *Task         // foreground submit: registered on JOB_CREATED
	done   chan struct{} // closed once the fields below are set

	handle string
	data   []byte
	status Status
	err    error

	abandoned bool // the caller gave up (ctx); guarded by Client.mu
}

// Dial connects to the Gearman server at addr ("host:port"); WithTLS
// connects over TLS.
func Dial(ctx context.Context, addr string, opts ...DialOption) (*Client, error) {
	conn, err := connect(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}

// NewClient runs the protocol over an established connection, such as a TLS
// one. The Client owns conn from then on.
func NewClient(conn net.Conn) *Client {
	c := &Client{conn: conn, readerDone: make(chan struct{})}
	c.mu.tasks = make(map[string]*attachments)
	go c.readLoop()
	return c
}

// Close closes the connection. Every waiting call and unfinished Task fails
// with ErrClosed. Jobs already submitted stay on the server: background jobs
// run; foreground ones are abandoned by the server once no client waits for
// them. Close is idempotent.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	<-c.readerDone
	return nil
}

// SubmitBackground queues a background job and returns its handle once the
// server has accepted it. Nobody receives its results; Status tells whether
// it is still queued or running.
//
// unique is the coalescing key: "" never coalesces, "-" coalesces on equal
// data, anything else coalesces with a queued or running job of the same
// function and unique, whose handle is then returned.
func (c *Client) SubmitBackground(ctx context.Context, fn, unique string, data []byte, pri Priority) (string, error) {
	t, err := submitType(pri, true)
	if err != nil {
		return "", err
	}
	return c.submit(ctx, t, []string{fn, unique}, data)
}

// SubmitEpoch queues a background job (normal priority) that no worker gets
// before when. The server keeps one-second resolution; a past time runs it
// at once.
func (c *Client) SubmitEpoch(ctx context.Context, fn, unique string, data []byte, when time.Time) (string, error) {
	epoch := strconv.FormatInt(when.Unix(), 10)
	return c.submit(ctx, protocol.SubmitJobEpoch, []string{fn, unique, epoch}, data)
}

// SubmitReduceBackground queues a background job with a reducer name
// (SUBMIT_REDUCE_JOB_BACKGROUND). The server only stores the reducer and
// hands it to workers that grab with GRAB_JOB_ALL; there is no server-side
// map/reduce.
func (c *Client) SubmitReduceBackground(ctx context.Context, fn, unique, reducer string, data []byte) (string, error) {
	return c.submit(ctx, protocol.SubmitReduceJobBackground, []string{fn, unique, reducer, ""}, data)
}

func (c *Client) submit(ctx context.Context, t protocol.Type, fields []string, data []byte) (string, error) {
	if err := checkSubmitFields(fields); err != nil {
		return "", err
	}
	cl := &call{expect: protocol.JobCreated}
	if err := c.roundTrip(ctx, cl, t, fields, data); err != nil {
		return "", err
	}
	return cl.handle, nil
}

// Submit queues a foreground job and returns once the server has accepted
// it. The Task delivers the worker's WORK_DATA, WORK_WARNING and
// WORK_STATUS updates and the final result; see Task.Next and Task.Wait.
// unique coalesces as for SubmitBackground; when it joins a running job,
// only updates sent after that reach this Task.
//
// If ctx ends before the server's reply, Submit returns ctx.Err() and the
// job, if the server creates it, runs without this client listening.
func (c *Client) Submit(ctx context.Context, fn, unique string, data []byte, pri Priority) (*Task, error) {
	t, err := submitType(pri, false)
	if err != nil {
		return nil, err
	}
	return c.submitTask(ctx, t, []string{fn, unique}, data)
}

// SubmitReduce is Submit for SUBMIT_REDUCE_JOB: a foreground, normal
// priority job carrying a reducer name (see SubmitReduceBackground).
func (c *Client) SubmitReduce(ctx context.Context, fn, unique, reducer string, data []byte) (*Task, error) {
	return c.submitTask(ctx, protocol.SubmitReduceJob, []string{fn, unique, reducer, ""}, data)
}

func (c *Client) submitTask(ctx context.Context, t protocol.Type, fields []string, data []byte) (*Task, error) {
	if err := checkSubmitFields(fields); err != nil {
		return nil, err
	}
	task := newTask()
	cl := &call{expect: protocol.JobCreated, task: task}
	if err := c.roundTrip(ctx, cl, t, fields, data); err != nil {
		return nil, err
	}
	return task, nil
}

// Call submits a foreground job and waits for its result: the WORK_COMPLETE
// data, ErrJobFailed, an *Exception, or a connection error. If ctx ends
// first, Call returns ctx.Err() and the job keeps running on the server.
func (c *Client) Call(ctx context.Context, fn, unique string, data []byte, pri Priority) ([]byte, error) {
	task, err := c.Submit(ctx, fn, unique, data, pri)
	if err != nil {
		return nil, err
	}
	res, err := task.Wait(ctx)
	if err != nil {
		return nil, err
	}
	return res.Data, nil
}

// Status asks the server about the job with the given handle. An unknown
// handle, including that of a job that has finished, gives Known false.
func (c *Client) Status(ctx context.Context, handle string) (Status, error) {
	if err := checkField("handle", handle); err != nil {
		return Status{}, err
	}
	if len(handle) > maxHandle {
		return Status{}, fmt.Errorf("gearman: handle longer than %d bytes", maxHandle)
	}
	cl := &call{expect: protocol.StatusRes}
	if err := c.roundTrip(ctx, cl, protocol.GetStatus, []string{handle}, nil); err != nil {
		return Status{}, err
	}
	return cl.status, nil
}

// StatusUnique asks the server about the job with the given unique id
// (GET_STATUS_UNIQUE). The server looks it up without regard to the
// function name; Status.Clients counts the foreground clients waiting.
func (c *Client) StatusUnique(ctx context.Context, unique string) (Status, error) {
	if err := checkField("unique", unique); err != nil {
		return Status{}, err
	}
	if len(unique) > maxUnique {
		return Status{}, fmt.Errorf("gearman: unique longer than %d bytes", maxUnique)
	}
	cl := &call{expect: protocol.StatusResUnique}
	if err := c.roundTrip(ctx, cl, protocol.GetStatusUnique, []string{unique}, nil); err != nil {
		return Status{}, err
	}
	return cl.status, nil
}

// Echo sends data to the server and returns what it echoed back, which
// should be equal. Any bytes, NUL included, are allowed.
func (c *Client) Echo(ctx context.Context, data []byte) ([]byte, error) {
	cl := &call{expect: protocol.EchoRes}
	if err := c.roundTrip(ctx, cl, protocol.EchoReq, nil, data); err != nil {
		return nil, err
	}
	return cl.data, nil
}

// Option sets a connection option (OPTION_REQ). The only one servers know
// is "exceptions", which makes the server forward WORK_EXCEPTION to this
// connection instead of turning it into WORK_FAIL. An unknown option
// returns a *ServerError with Code "UNKNOWN_OPTION".
func (c *Client) Option(ctx context.Context, name string) error {
	if err := checkField("option", name); err != nil {
		return err
	}
	return c.roundTrip(ctx, &call{expect: protocol.OptionRes}, protocol.OptionReq, []string{name}, nil)
}

// SetClientID names this connection in the server's `workers` admin
// listing. The server does not reply; an error means the write failed.
func (c *Client) SetClientID(id string) error {
	if err := checkField("client id", id); err != nil {
		return err
	}
	return c.send(nil, protocol.SetClientID, []string{id}, nil)
}

func checkSubmitFields(fields []string) error {
	names := [...]string{"function", "unique", "third field", "fourth field"}
	for i, f := range fields {
		if err := checkField(names[i], f); err != nil {
			return err
		}
	}
	return nil
}

// roundTrip writes a request and waits for the reply that cl expects. On
// success the reply's contents are in cl.
func (c *Client) roundTrip(ctx context.Context, cl *call, t protocol.Type, fields []string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cl.done = make(chan struct{})
	if err := c.send(cl, t, fields, data); err != nil {
		return err
	}
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-cl.done: // the reply won the race; use it
		return cl.err
	default:
		cl.abandoned = true
		return ctx.Err()
	}
}

// send queues one request for writing. When cl is not nil it joins the
// reply FIFO in the same critical section that appends its bytes, so the
// FIFO order is the wire order. Unless another sender is already writing,
// send writes the buffer itself (see Client.wmu).
func (c *Client) send(cl *call, t protocol.Type, fields []string, data []byte) error {
	c.wmu.Lock()
	c.mu.Lock()
	if err := c.mu.err; err != nil {
		c.mu.Unlock()
		c.wmu.Unlock()
		return err
	}
	if cl != nil {
		c.mu.calls = append(c.mu.calls, cl)
	}
	c.mu.Unlock()
	c.wmu.buf = appendPacket(c.wmu.buf, t, fields, data)
	if c.wmu.writing {
		c.wmu.Unlock()
		return nil
	}

	c.wmu.writing = true
	for len(c.wmu.buf) > 0 {
		buf := c.wmu.buf
		c.wmu.buf = c.wmu.spare[:0]
		c.wmu.Unlock()
		_, err := c.conn.Write(buf)
		c.wmu.Lock()
		if cap(buf) <= maxSpareBuffer {
			c.wmu.spare = buf
		} else {
			c.wmu.spare = nil // do not keep a buffer grown for a large payload
		}
		if err != nil {
			c.wmu.buf = nil
			c.wmu.writing = false
			c.wmu.Unlock()
			c.fail(err)
			return c.err()
		}
	}
	c.wmu.writing = false
	c.wmu.Unlock()
	return nil
}

// maxSpareBuffer bounds the write buffer a Client keeps between writes.
const maxSpareBuffer = 1 << 20

func (c *Client) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// fail makes the connection unusable: every waiting call and task gets the
// error (ErrClosed, or ErrConnectionLost wrapping cause). Only the first
// call has an effect.
func (c *Client) fail(cause error) {
	err := cause
	if !errors.Is(cause, ErrClosed) {
		err = fmt.Errorf("%w: %w", ErrConnectionLost, cause)
	}
	c.mu.Lock()
	if c.mu.err != nil {
		c.mu.Unlock()
		return
	}
	c.mu.err = err
	calls, tasks := c.mu.calls, c.mu.tasks
	c.mu.calls, c.mu.tasks = nil, nil
	for _, cl := range calls {
		cl.err = err
		close(cl.done)
	}
	c.mu.Unlock()

	for _, a := range tasks {
		for _, t := range a.tasks {
			t.lose(err)
		}
	}
	c.conn.Close()
}

// readLoop is the only reader of the connection. It never blocks on a
// caller: replies are handed over through closed channels and task updates
// are queued, so a slow consumer cannot stall the connection.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	r := protocol.NewReader(c.conn)
	for {
		m, err := r.Next()
		if err == nil {
			err = c.dispatch(m)
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *Client) dispatch(m *protocol.Message) error {
	if m.Text {
		return fmt.Errorf("%w: text line %q from server", ErrProtocol, m.Line)
	}
	if m.Magic != protocol.Res {
		return fmt.Errorf("%w: %v packet with request magic", ErrProtocol, m.Type)
	}
	switch m.Type {
	case protocol.JobCreated, protocol.Error, protocol.StatusRes,
		protocol.StatusResUnique, protocol.EchoRes, protocol.OptionRes:
		return c.answer(&m.Packet)
	case protocol.WorkData, protocol.WorkWarning, protocol.WorkStatus,
		protocol.WorkComplete, protocol.WorkFail, protocol.WorkException:
		c.route(&m.Packet)
		return nil
	case protocol.Noop:
		return nil // wakes workers; harmless on a client connection
	}
	return fmt.Errorf("%w: unexpected %v packet", ErrProtocol, m.Type)
}

// answer hands a reply to the oldest waiting call. A JOB_CREATED for a
// foreground submit registers its task before returning, so the WORK_*
// packets that may follow at once find it.
func (c *Client) answer(p *protocol.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.err != nil {
		return c.mu.err
	}
	if len(c.mu.calls) == 0 {
		return fmt.Errorf("%w: unsolicited %v packet", ErrProtocol, p.Type)
	}
	cl := c.mu.calls[0]
	c.mu.calls[0] = nil
	c.mu.calls = c.mu.calls[1:]
	defer close(cl.done)

	switch p.Type {
	case protocol.Error:
		cl.err = &ServerError{Code: string(p.Arg(0)), Text: string(p.Arg(1))}
		return nil
	case cl.expect:
	default:
		err := fmt.Errorf("%w: got %v in reply to a request expecting %v", ErrProtocol, p.Type, cl.expect)
		cl.err = fmt.Errorf("%w: %w", ErrConnectionLost, err)
		return err
	}
	if p.Type == protocol.JobCreated && cl.task != nil {
		// Registered even when abandoned: the server sends this
		// attachment its own copy of every WORK_* packet all the same.
		cl.handle = string(p.Arg(0))
		cl.task.Handle = cl.handle
		a := c.mu.tasks[cl.handle]
		if a == nil {
			a = &attachments{}
			c.mu.tasks[cl.handle] = a
		}
		a.tasks = append(a.tasks, cl.task)
		return nil
	}
	if cl.abandoned {
		return nil
	}
	switch p.Type {
	case protocol.JobCreated:
		cl.handle = string(p.Arg(0))
	case protocol.StatusRes:
		cl.status = Status{
			Handle:      string(p.Arg(0)),
			Known:       parseUint32(p.Arg(1)) != 0,
			Running:     parseUint32(p.Arg(2)) != 0,
			Numerator:   parseUint32(p.Arg(3)),
			Denominator: parseUint32(p.Arg(4)),
		}
	case protocol.StatusResUnique:
		cl.status = Status{
			Unique:      string(p.Arg(0)),
			Known:       parseUint32(p.Arg(1)) != 0,
			Running:     parseUint32(p.Arg(2)) != 0,
			Numerator:   parseUint32(p.Arg(3)),
			Denominator: parseUint32(p.Arg(4)),
			Clients:     parseUint32(p.Arg(5)),
		}
	case protocol.EchoRes:
		cl.data = bytes.Clone(p.Arg(0))
	}
	return nil
}

// route delivers a WORK_* packet to the task it is for (see attachments).
// Packets for handles no task waits on are dropped.
func (c *Client) route(p *protocol.Packet) {
	handle := p.Arg(0)
	if p.Type == protocol.WorkFail {
		// gearmand turns WORK_EXCEPTION into WORK_FAIL "<handle>\0" for
		// clients without the exceptions option.
		handle = bytes.TrimSuffix(handle, []byte{0})
	}
	u := Update{Type: p.Type}

	c.mu.Lock()
	a := c.mu.tasks[string(handle)]
	if a == nil {
		c.mu.Unlock()
		return
	}
	t := a.tasks[a.next]
	if u.Final() {
		a.tasks = slices.Delete(a.tasks, a.next, a.next+1)
		if len(a.tasks) == 0 {
			delete(c.mu.tasks, string(handle))
		}
	} else {
		a.next++
	}
	if a.next >= len(a.tasks) {
		a.next = 0
	}
	c.mu.Unlock()

	switch p.Type {
	case protocol.WorkStatus:
		u.Numerator = parseUint32(p.Arg(1))
		u.Denominator = parseUint32(p.Arg(2))
	case protocol.WorkFail:
	default:
		u.Data = bytes.Clone(p.Arg(1))
		if u.Data == nil {
			u.Data = []byte{}
		}
	}
	t.push(u)
}
