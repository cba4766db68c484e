package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gearmand/protocol"
	"gearmand/queue"
	"gearmand/server/tlsconf"
	"gearmand/store"
)

// conn is one client connection. One goroutine (serve) reads and handles
// its messages; replies it produces, and packets other connections cause
// for it (NOOP, forwarded WORK_*), are appended to out (large payloads by
// reference, see SendShared). The reading goroutine flushes out itself just
// before it would block on a read; while it is not handling messages, the
// writeLoop goroutine flushes what other connections append.
type conn struct {
	srv     *Server
	nc      net.Conn
	r       *protocol.Reader
	session *queue.Session
	remote  string     // peer IP, for logs and `workers`
	peer    netip.Addr // peer IP (IPv4 unmapped), for admin access control
	// verifiedClient is set once a TLS handshake has verified the peer's
	// client certificate against the CA.
	verifiedClient bool

	out struct {
		sync.Mutex
		buf    []byte
		shared []sharedSpan // in order of at
		bytes  int          // len(buf) plus the shared bytes
		closed bool
	}
	// handling is set while serve is between reads; a Send from another
	// goroutine then leaves the flush to serve.
	handling atomic.Bool
	wake     chan struct{}
	closed   chan struct{} // closed when serve returns; ends writeLoop

	writeMu     sync.Mutex   // serialises flushes, so buffers go out in order
	spare       []byte       // the buffer out.buf is swapped with, guarded by writeMu
	spareShared []sharedSpan // and out.shared's

	args   [][]byte // scratch for admin tokens
	packet []byte   // scratch for replies built here

	// limits are the server's per-connection limits (limits.go); out.buf
	// never holds more than limits.maxUnsent bytes.
	limits   connLimits
	deadline packetDeadline // used by serve's goroutine only
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, wake: make(chan struct{}, 1), closed: make(chan struct{})}
	c.r = protocol.NewReader(nc)
	c.r.MaxPacketSize = s.cfg.MaxPacketSize
	c.r.BeforeRead = c.beforeRead
	c.limits = connLimitsOf(&s.cfg)
	c.remote = nc.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(c.remote); err == nil {
		c.remote = host
	}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.peer = ta.AddrPort().Addr().Unmap()
	}
	c.session = s.queue.Connect(c, queue.SessionInfo{FD: connFD(nc), Addr: c.remote, Exceptions: s.cfg.Exceptions})
	return c
}

// connFD returns the connection's file descriptor number, which the
// `workers` listing shows as gearmand does, or -1.
func connFD(nc net.Conn) int {
	sc, ok := underlying(nc).(syscall.Conn)
	if !ok {
		return -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	_ = raw.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// underlying returns the network connection under a TLS one, or nc itself.
func underlying(nc net.Conn) net.Conn {
	if w, ok := nc.(interface{ NetConn() net.Conn }); ok {
		return w.NetConn()
	}
	return nc
}

// closeNet closes the connection at once, from any goroutine, without
// blocking: on a TLS connection it closes the socket beneath, since the
// close_notify alert tls.Conn.Close writes first can wait seconds on a peer
// that does not read.
func (c *conn) closeNet() { underlying(c.nc).Close() }

// defaultTLSHandshakeTimeout is Config.TLSHandshakeTimeout's default.
const defaultTLSHandshakeTimeout = 10 * time.Second

// handshake completes the TLS handshake of a connection accepted from a TLS
// listener, within Config.TLSHandshakeTimeout so that a peer that stalls
// cannot hold the goroutine, and records whether the peer presented a
// verified client certificate. It reports false when the connection is to
// be closed; a plain connection needs nothing.
func (c *conn) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	timeout := c.srv.cfg.TLSHandshakeTimeout
	if timeout <= 0 {
		timeout = defaultTLSHandshakeTimeout
	}
	tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		c.srv.log.Warn("TLS handshake failed; connection closed", "remote", c.remote, "err", err)
		return false
	}
	tc.SetDeadline(time.Time{})
	c.verifiedClient = tlsconf.VerifiedClient(tc.ConnectionState())
	return true
}

// sharedSpan is a payload queued by reference: data goes out after the
// first at bytes of the output buffer.
type sharedSpan struct {
	at   int
	data []byte
}

// Send implements queue.Peer: it copies frame into the output buffer and,
// when the connection's own goroutine is not going to flush soon, wakes the
// writer. It never blocks.
func (c *conn) Send(frame []byte) { c.SendShared(frame, nil) }

// SendShared implements queue.Peer: head is copied as by Send, and data,
// which nobody modifies, is written after it straight from where it lies.
func (c *conn) SendShared(head, data []byte) {
	c.out.Lock()
	if c.out.closed {
		c.out.Unlock()
		return
	}
	if c.out.bytes+len(head)+len(data) > c.limits.maxUnsent {
		c.out.closed = true
		queued := c.out.bytes
		c.out.Unlock()
		c.srv.log.Warn("closing connection that does not read its replies", "remote", c.remote, "queued_bytes", queued)
		c.closeNet()
		return
	}
	c.out.buf = append(c.out.buf, head...)
	if len(data) > 0 {
		c.out.shared = append(c.out.shared, sharedSpan{at: len(c.out.buf), data: data})
	}
	c.out.bytes += len(head) + len(data)
	c.out.Unlock()
	if !c.handling.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// flushOwn is called by serve before it blocks on a read.
func (c *conn) flushOwn() {
	c.handling.Store(false)
	c.flush()
}

// flush writes everything queued so far. Errors close the connection; the
// reader then sees them and cleans up.
func (c *conn) flush() {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.out.Lock()
	b, shared := c.out.buf, c.out.shared
	c.out.buf, c.out.shared, c.out.bytes = c.spare[:0], c.spareShared[:0], 0
	c.out.Unlock()
	if len(b) == 0 {
		c.spare, c.spareShared = b, shared
		return
	}
	if err := c.writeShared(b, shared); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.srv.log.Warn("closing connection that does not read its replies", "remote", c.remote, "write_timeout", c.limits.writeTimeout)
		}
		c.closeNet()
	}
	if cap(b) > 1<<20 {
		b = nil // do not keep a large buffer for an idle connection
	}
	clear(shared) // let the payloads go
	c.spare, c.spareShared = b[:0], shared[:0]
}

// writeShared writes b with each shared span's data inserted at its place.
func (c *conn) writeShared(b []byte, shared []sharedSpan) error {
	from := 0
	for _, s := range shared {
		if err := c.write(b[from:s.at]); err != nil {
			return err
		}
		if err := c.write(s.data); err != nil {
			return err
		}
		from = s.at
	}
	return c.write(b[from:])
}

func (c *conn) writeLoop() {
	defer c.srv.wg.Done()
	for {
		select {
		case <-c.wake:
			c.flush()
		case <-c.closed:
			return
		}
	}
}

func (c *conn) serve() {
	defer c.srv.wg.Done()
	defer func() {
		if v := recover(); v != nil {
			c.srv.limits.panics.Add(1)
			c.srv.log.Error("panic serving connection; closed it", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
		}
		defer c.srv.releaseConn()
		c.srv.queue.Disconnect(c.session)
		c.out.Lock()
		c.out.closed = true
		c.out.Unlock()
		c.nc.Close()
		close(c.closed)
		c.srv.removeConn(c)
		c.srv.log.Info("connection closed", "remote", c.remote)
	}()
	c.srv.log.Info("connection opened", "remote", c.remote)
	if !c.handshake() {
		return
	}
	for {
		msg, err := c.r.Next()
		c.handling.Store(true)
		c.messageRead(err)
		if err != nil {
			var fe *protocol.FrameError
			if !errors.As(err, &fe) {
				if c.deadline.timedOut {
					c.srv.log.Warn("closing connection that did not complete a message within the packet timeout", "remote", c.remote, "packet_timeout", c.limits.packetTimeout)
				} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					c.srv.log.Info("connection read failed", "remote", c.remote, "err", err)
				}
				return
			}
			c.frameError(fe)
			if fe.Fatal {
				c.flush()
				return
			}
			continue
		}
		if msg.Text {
			c.admin(msg.Line)
		} else {
			c.packetReceived(msg)
		}
	}
}

func (c *conn) frameError(fe *protocol.FrameError) {
	c.srv.log.Info("protocol error", "remote", c.remote, "code", fe.Code, "reason", fe.Text)
	if fe.Line {
		c.sendText("ERR " + fe.Code + " " + plusEscape(fe.Text) + "\r\n")
		return
	}
	c.sendError(fe.Code, fe.Text)
}

// Reply helpers for packets built on this goroutine.

func (c *conn) sendError(code, text string) {
	c.packet = protocol.AppendError(c.packet[:0], code, text)
	c.reply(c.packet)
}

func (c *conn) sendText(s string) {
	c.packet = append(c.packet[:0], s...)
	c.reply(c.packet)
}

func (c *conn) sendPacket(t protocol.Type, args ...[]byte) {
	c.packet = protocol.AppendPacket(c.packet[:0], protocol.Res, t, args...)
	c.reply(c.packet)
}

// reply sends a reply built on this goroutine. While the connection is
// owed a JOB_CREATED that waits for the store, the reply queues behind it.
func (c *conn) reply(frame []byte) {
	if c.session.Holding() {
		c.srv.queue.Deliver(c.session, frame)
		return
	}
	c.Send(frame)
}

// Error replies with the exact codes and texts gearmand uses.
const (
	textNotExpected  = "Command not expected"
	textResultNoJob  = "Job given in work result not found"
	textDataNoJob    = "Job does not exist on server"
	textExceptNoJob  = "An exception was received for a job that does not exist"
	textUniqueTooBig = "Unique value too large"
	textWorkFailSize = "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf"
	textQueueFull    = "Job queue is full"
	textUnknownOpt   = "Server does not recognize given option"
)

// maxHandle is gearmand's handle buffer: a handle must be shorter.
const maxHandle = 64

func (c *conn) packetReceived(m *protocol.Message) {
	t := m.Type
	if m.Magic != protocol.Req {
		c.sendError("INVALID_MAGIC", "Request magic expected")
		return
	}
	if t.Response() {
		c.sendError("INVALID_COMMAND", textNotExpected)
		return
	}
	q := c.srv.queue
	a := m.Args
	switch t {
	case protocol.CanDo:
		q.CanDo(c.session, a[0], 0)
	case protocol.CanDoTimeout:
		ms, ok := parseTimeout(a[1])
		if !ok {
			c.sendError("INVALID_ARGUMENT", "CAN_DO_TIMEOUT needs a base-10 number of milliseconds of at most 20 characters")
			return
		}
		q.CanDo(c.session, a[0], time.Duration(ms)*time.Millisecond)
	case protocol.CantDo:
		q.CantDo(c.session, a[0])
	case protocol.ResetAbilities:
		q.ResetAbilities(c.session)
	case protocol.PreSleep:
		q.PreSleep(c.session)
	case protocol.GrabJob:
		q.Grab(c.session, queue.GrabJob)
	case protocol.GrabJobUniq:
		q.Grab(c.session, queue.GrabJobUniq)
	case protocol.GrabJobAll:
		q.Grab(c.session, queue.GrabJobAll)
	case protocol.SubmitJob, protocol.SubmitJobBG, protocol.SubmitJobHigh, protocol.SubmitJobHighBG,
		protocol.SubmitJobLow, protocol.SubmitJobLowBG:
		c.submit(queue.Submission{Function: a[0], Unique: a[1], Data: a[2], Priority: submitPriority(t), Background: submitBackground(t), Owned: m.Owned})
	case protocol.SubmitJobEpoch:
		when, ok := parseEpoch(a[2])
		if !ok {
			c.sendError("INVALID_ARGUMENT", "SUBMIT_JOB_EPOCH time is out of range")
			return
		}
		sub := queue.Submission{Function: a[0], Unique: a[1], Data: a[3], Priority: queue.Normal, Background: true, Owned: m.Owned}
		if when > 0 {
			sub.RunAt = time.Unix(when, 0)
		}
		c.submit(sub)
	case protocol.SubmitReduceJob, protocol.SubmitReduceJobBackground:
		c.submit(queue.Submission{Function: a[0], Unique: a[1], Reducer: a[2], Data: a[4], Priority: queue.Normal,
			Background: t == protocol.SubmitReduceJobBackground, Owned: m.Owned})
	case protocol.SubmitJobSched, protocol.AllYours:
		c.sendError("INVALID_COMMAND", textNotExpected)
	case protocol.WorkStatus, protocol.WorkData, protocol.WorkWarning, protocol.WorkComplete,
		protocol.WorkFail, protocol.WorkException:
		c.work(t, m)
	case protocol.GetStatus:
		if len(a[0]) >= maxHandle {
			c.sendError("ARGUMENT_TOO_LARGE", "Job handle too large")
			return
		}
		st := q.Status(a[0])
		c.sendStatus(protocol.StatusRes, a[0], st, false)
	case protocol.GetStatusUnique:
		if len(a[0]) > queue.MaxUnique {
			c.sendError("ARGUMENT_TOO_LARGE", textUniqueTooBig)
			return
		}
		st := q.StatusUnique(a[0])
		c.sendStatus(protocol.StatusResUnique, a[0], st, true)
	case protocol.EchoReq:
		c.sendPacket(protocol.EchoRes, m.Payload)
	case protocol.SetClientID:
		q.SetClientID(c.session, a[0])
	case protocol.OptionReq:
		if len(a[0]) < maxHandle && strings.EqualFold(string(a[0]), "exceptions") {
			q.SetExceptions(c.session)
			c.sendPacket(protocol.OptionRes, a[0])
			return
		}
		c.sendError("UNKNOWN_OPTION", textUnknownOpt)
	default:
		c.sendError("INVALID_COMMAND", textNotExpected)
	}
}

func (c *conn) submit(sub queue.Submission) {
	if sub.Background && c.srv.committer != nil && !c.srv.committer.HasRoom() {
		// Back-pressure: while the store is behind, stop reading this
		// connection rather than queue without bound. Flush first, so the
		// replies this client already earned are not held up.
		c.flushOwn()
		sub.Since = time.Now() // the store's timeout counts this wait too
		if err := c.srv.committer.WaitRoom(c.srv.ctx); err != nil {
			if errors.Is(err, store.ErrTimeout) {
				c.sendError("QUEUE_ERROR", err.Error())
			} else {
				c.sendError("QUEUE_ERROR", "server is shutting down")
			}
			return
		}
		c.handling.Store(true)
	}
	switch err := c.srv.queue.Submit(c.session, sub); {
	case err == nil:
	case errors.Is(err, queue.ErrUniqueTooLarge):
		c.sendError("ARGUMENT_TOO_LARGE", textUniqueTooBig)
	case errors.Is(err, queue.ErrReducerTooLarge):
		c.sendError("ARGUMENT_TOO_LARGE", "Reducer name too large")
	case errors.Is(err, queue.ErrQueueFull):
		c.sendError("QUEUE_ERROR", textQueueFull)
	default:
		c.sendError("QUEUE_ERROR", err.Error())
	}
}

func (c *conn) work(t protocol.Type, m *protocol.Message) {
	if t == protocol.WorkFail && len(m.Args[0]) >= maxHandle {
		c.sendError("ARGUMENT_TOO_LARGE", textWorkFailSize)
		return
	}
	payload, owned := m.Payload, m.Owned
	if len(m.Args) == 2 && len(payload) == len(m.Args[0]) {
		// The handle alone, which protocol.Split reads as empty data:
		// clients get it with the NUL, as a well-formed packet.
		payload, owned = append(slices.Clip(m.Args[0]), 0), false
	}
	err := c.srv.queue.Work(c.session, t, m.Args, payload, owned)
	if err == nil {
		return
	}
	switch t {
	case protocol.WorkData, protocol.WorkWarning:
		c.sendError("JOB_NOT_FOUND", textDataNoJob)
	case protocol.WorkException:
		c.sendError("JOB_NOT_FOUND", textExceptNoJob)
	default:
		c.sendError("JOB_NOT_FOUND", textResultNoJob)
	}
}

func (c *conn) sendStatus(t protocol.Type, key []byte, st queue.JobStatus, withClients bool) {
	var nums [5][]byte
	var buf [64]byte
	b := buf[:0]
	fields := []uint64{bool01(st.Known), bool01(st.Running), uint64(st.Numerator), uint64(st.Denominator), uint64(st.Clients)}
	if !withClients {
		fields = fields[:4]
	}
	for i, v := range fields {
		start := len(b)
		b = strconv.AppendUint(b, v, 10)
		nums[i] = b[start:len(b):len(b)]
	}
	args := append([][]byte{key}, nums[:len(fields)]...)
	c.sendPacket(t, args...)
}

func bool01(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func submitPriority(t protocol.Type) queue.Priority {
	switch t {
	case protocol.SubmitJobHigh, protocol.SubmitJobHighBG:
		return queue.High
	case protocol.SubmitJobLow, protocol.SubmitJobLowBG:
		return queue.Low
	}
	return queue.Normal
}

func submitBackground(t protocol.Type) bool {
	switch t {
	case protocol.SubmitJobBG, protocol.SubmitJobHighBG, protocol.SubmitJobLowBG:
		return true
	}
	return false
}

// parseTimeout reads a CAN_DO_TIMEOUT value as gearmand does (strtol, base
// 10, leading digits): at most 20 characters and within int64, else !ok.
// Non-numeric text is 0, no limit.
func parseTimeout(b []byte) (int64, bool) {
	if len(b) > 20 {
		return 0, false
	}
	return strtoll(b)
}

// parseEpoch reads a SUBMIT_JOB_EPOCH time with strtoll semantics: garbage
// is 0 (run now); out of range is !ok.
func parseEpoch(b []byte) (int64, bool) { return strtoll(b) }

// strtoll parses leading spaces, a sign and leading decimal digits; ok is
// false when the number overflows int64.
func strtoll(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
		i++
	}
	start := i
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	digits := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == digits {
		return 0, true
	}
	n, err := strconv.ParseInt(string(b[start:i]), 10, 64)
	return n, err == nil
}
