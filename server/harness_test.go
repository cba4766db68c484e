package server_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"gearmand/protocol"
	"gearmand/server"
)

// startServer runs a Server on 127.0.0.1:0 and returns its address. The
// server is closed when the test ends.
func startServer(t *testing.T, cfg server.Config) string {
	t.Helper()
	if cfg.HandlePrefix == "" {
		cfg.HandlePrefix = "H:test"
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	return serveOn(t, server.New(cfg))
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serveOn serves srv on 127.0.0.1:0 until the test ends and returns the
// address.
func serveOn(t *testing.T, srv *server.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, srv, l)
	return l.Addr().String()
}

// serveListener serves srv on l until the test ends.
func serveListener(t *testing.T, srv *server.Server, l net.Listener) {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
}

func dialOnce(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }

// peer is one raw connection driven by a test: it sends bytes and expects
// exact replies.
type peer struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *peer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &peer{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (p *peer) write(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// send writes one request packet.
func (p *peer) send(typ protocol.Type, args ...string) {
	p.t.Helper()
	p.write(protocol.AppendPacketStrings(nil, protocol.Req, typ, args...))
}

// line writes an admin command line.
func (p *peer) line(s string) {
	p.t.Helper()
	p.write([]byte(s + "\n"))
}

const replyTimeout = 5 * time.Second

// readPacket reads one response packet.
func (p *peer) readPacket() (protocol.Type, []byte) {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(replyTimeout))
	var h [protocol.HeaderSize]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		p.t.Fatalf("reading a packet header: %v", err)
	}
	if string(h[:4]) != "\x00RES" {
		p.t.Fatalf("magic %q, want \\0RES", h[:4])
	}
	typ := protocol.Type(uint32(h[4])<<24 | uint32(h[5])<<16 | uint32(h[6])<<8 | uint32(h[7]))
	n := uint32(h[8])<<24 | uint32(h[9])<<16 | uint32(h[10])<<8 | uint32(h[11])
	payload := make([]byte, n)
	if _, err := io.ReadFull(p.br, payload); err != nil {
		p.t.Fatalf("reading a %v payload: %v", typ, err)
	}
	return typ, payload
}

// expect reads one packet and checks its type and NUL-joined arguments.
func (p *peer) expect(typ protocol.Type, args ...string) {
	p.t.Helper()
	gotType, got := p.readPacket()
	want := strings.Join(args, "\x00")
	if gotType != typ || string(got) != want {
		p.t.Fatalf("got %v %q, want %v %q", gotType, got, typ, want)
	}
}

// expectPrefix reads one packet of type typ and returns its payload
// split on NUL.
func (p *peer) expectArgs(typ protocol.Type) []string {
	p.t.Helper()
	gotType, got := p.readPacket()
	if gotType != typ {
		p.t.Fatalf("got %v %q, want a %v", gotType, got, typ)
	}
	return strings.Split(string(got), "\x00")
}

// expectText reads exactly len(want) bytes and compares them.
func (p *peer) expectText(want string) {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(replyTimeout))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p.br, got); err != nil {
		p.t.Fatalf("reading %q: %v (got %q)", want, err, got)
	}
	if string(got) != want {
		p.t.Fatalf("got %q, want %q", got, want)
	}
}

// readListing reads admin lines up to and including the "." line.
func (p *peer) readListing() []string {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(replyTimeout))
	var lines []string
	for {
		l, err := p.br.ReadString('\n')
		if err != nil {
			p.t.Fatalf("reading a listing: %v (so far %q)", err, lines)
		}
		if l == ".\n" {
			return lines
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
}

// admin sends an admin command and returns its listing.
func (p *peer) admin(cmd string) []string {
	p.t.Helper()
	p.line(cmd)
	return p.readListing()
}

// expectSilence checks that nothing arrives within a short while. It is
// used only where the protocol says no reply is sent; a following
// request's reply proves ordering in most tests instead.
func (p *peer) expectSilence() {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if b, err := p.br.Peek(1); err == nil {
		p.t.Fatalf("unexpected bytes %q", b)
	}
	var ne net.Error
	if _, err := p.br.Peek(1); !errors.As(err, &ne) || !ne.Timeout() {
		p.t.Fatalf("connection state: %v", err)
	}
	p.br = bufio.NewReader(p.nc) // a timed-out bufio.Reader keeps its error
}

// sync proves every earlier request was processed: an ECHO round trip.
func (p *peer) sync() {
	p.t.Helper()
	p.send(protocol.EchoReq, "sync")
	p.expect(protocol.EchoRes, "sync")
}

// expectClosed checks that the server closed the connection.
func (p *peer) expectClosed() {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(replyTimeout))
	if b, err := p.br.ReadByte(); err == nil {
		p.t.Fatalf("read %q, want the connection closed", b)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(replyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// statusOf returns the `status` line of fn, or "".
func statusOf(p *peer, fn string) string {
	for _, l := range p.admin("status") {
		if strings.HasPrefix(l, fn+"\t") {
			return l
		}
	}
	return ""
}
