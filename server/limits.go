package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gearmand/protocol"
)

// Defaults of the limits in Config.
const (
	DefaultPacketTimeout  = 30 * time.Second
	DefaultMaxUnsentBytes = 256 << 20
	DefaultWriteTimeout   = 60 * time.Second
)

// writeChunk is the most one write to a connection carries, so that
// WriteTimeout bounds a stall rather than the time a large reply takes.
const writeChunk = 1 << 20

// refusalLogInterval is how often refused connections are logged at most.
const refusalLogInterval = time.Second

// limitState is the server's share of the limits: the connection count
// behind MaxConnections and the count of recovered panics.
type limitState struct {
	conns   atomic.Int64 // open protocol connections, refused ones excluded
	refused logLimiter
	panics  atomic.Int64
}

// admitConn takes a connection slot for nc under MaxConnections, or refuses
// nc: it sends an ERROR when that cannot block (a fresh plain TCP socket has
// an empty send buffer; a TLS one would need a handshake first) and closes
// it. A slot taken must be given back with releaseConn.
func (s *Server) admitConn(nc net.Conn) bool {
	n := s.limits.conns.Add(1)
	limit := s.cfg.MaxConnections
	if limit <= 0 || n <= int64(limit) {
		return true
	}
	s.limits.conns.Add(-1)
	if underlying(nc) == nc {
		nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		nc.Write(protocol.AppendError(nil, "TOO_MANY_CONNECTIONS", "Server has reached its connection limit"))
	}
	underlying(nc).Close()
	if suppressed, ok := s.limits.refused.allow(time.Now()); ok {
		s.log.Warn("refused a connection: --max-connections reached", "limit", limit,
			"remote", nc.RemoteAddr().String(), "refused_unlogged", suppressed)
	}
	return false
}

// releaseConn gives back the slot of a connection that admitConn admitted.
func (s *Server) releaseConn() { s.limits.conns.Add(-1) }

// QueuedBytes returns the payload bytes of the jobs the server holds, the
// figure MaxQueuedBytes bounds.
func (s *Server) QueuedBytes() int64 { return s.queue.QueuedBytes() }

// Panics returns how many panics serving a connection were recovered (each
// closed only its own connection). It is never expected to be above zero:
// tests and fuzz targets fail on it, operators may alert on it.
func (s *Server) Panics() int64 { return s.limits.panics.Load() }

// logLimiter lets one log record through per refusalLogInterval and counts
// the events it held back.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether an event at now may be logged and, if so, how many
// were held back since the last one logged.
func (l *logLimiter) allow(now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < refusalLogInterval {
		l.suppressed++
		return 0, false
	}
	suppressed, l.suppressed, l.last = l.suppressed, 0, now
	return suppressed, true
}

// Connection limits applied by conn. packetTimeout and writeTimeout are 0
// when off; maxUnsent is always positive.
type connLimits struct {
	packetTimeout time.Duration
	writeTimeout  time.Duration
	maxUnsent     int
}

// connLimitsOf resolves cfg's defaults.
func connLimitsOf(cfg *Config) connLimits {
	l := connLimits{
		packetTimeout: orDefault(cfg.PacketTimeout, DefaultPacketTimeout),
		writeTimeout:  orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		maxUnsent:     cfg.MaxUnsentBytes,
	}
	if l.maxUnsent <= 0 {
		l.maxUnsent = DefaultMaxUnsentBytes
	}
	return l
}

// orDefault is d, def when d is zero, and 0 (off) when d is negative.
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// packetDeadline keeps a read deadline on a connection only while a
// message is partly received: it is armed once per message, when the
// reader first waits for more of it, and cleared when the reader waits
// between messages, so an idle connection is never cut.
type packetDeadline struct {
	armed    bool // the socket has a read deadline
	thisMsg  bool // ... and it was set for the message now being read
	timedOut bool // the deadline of a partial message passed
}

// beforeRead is the Reader's BeforeRead hook: it flushes what this
// connection owes its peer, then arms or clears the packet deadline.
func (c *conn) beforeRead() {
	c.flushOwn()
	t := c.limits.packetTimeout
	if t <= 0 {
		return
	}
	d := &c.deadline
	switch {
	case c.r.InMessage() && !d.thisMsg:
		c.nc.SetReadDeadline(time.Now().Add(t))
		d.armed, d.thisMsg = true, true
	case !c.r.InMessage() && d.armed:
		c.nc.SetReadDeadline(time.Time{})
		d.armed, d.thisMsg = false, false
	}
}

// messageRead is called after each Reader.Next: the next message gets its
// own deadline.
func (c *conn) messageRead(err error) {
	c.deadline.thisMsg = false
	if c.deadline.armed && errors.Is(err, os.ErrDeadlineExceeded) {
		c.deadline.timedOut = true
	}
}

// write writes b in chunks of at most writeChunk, each within the write
// timeout.
func (c *conn) write(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		if c.limits.writeTimeout > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.limits.writeTimeout))
		}
		if _, err := c.nc.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
