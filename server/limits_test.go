package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gearmand/protocol"
	"gearmand/server"
)

// logRecorder is a slog.Handler that keeps every record's message and
// attributes, so tests can check what the server reported.
type logRecorder struct {
	mu      sync.Mutex
	records []map[string]string // "msg" and each attribute, as text
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := map[string]string{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool {
		rec[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	return nil
}

// find returns the records whose message starts with prefix.
func (h *logRecorder) find(prefix string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.records {
		if strings.HasPrefix(r["msg"], prefix) {
			out = append(out, r)
		}
	}
	return out
}

func TestMaxConnections(t *testing.T) {
	logs := &logRecorder{}
	srv := server.New(server.Config{HandlePrefix: "H:test", MaxConnections: 2, Logger: slog.New(logs)})
	addr := serveOn(t, srv)
	a, b := dial(t, addr), dial(t, addr)
	a.sync()
	b.sync()

	const refusals = 10
	for range refusals {
		c := dial(t, addr)
		c.expect(protocol.Error, "TOO_MANY_CONNECTIONS", "Server has reached its connection limit")
		c.expectClosed()
	}
	b.sync() // the admitted connections are unaffected
	if got := srv.Connections(); got != 2 {
		t.Fatalf("Connections() = %d with two admitted and %d refused", got, refusals)
	}
	warned := logs.find("refused a connection")
	if len(warned) == 0 || len(warned) >= refusals {
		t.Fatalf("%d refusals were logged %d times; want at least once and rate-limited", refusals, len(warned))
	}
	if warned[0]["level"] != slog.LevelWarn.String() || warned[0]["limit"] != "2" {
		t.Fatalf("refusal logged as %v", warned[0])
	}

	// A slot given back is taken by the next connection.
	a.nc.Close()
	eventually(t, "a new connection to be admitted", func() bool { return echoWorks(addr) })
	b.sync()
}

// echoWorks dials addr and reports whether an ECHO round trip succeeds.
func echoWorks(addr string) bool {
	nc, err := dialOnce(addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(replyTimeout))
	want := protocol.AppendPacketStrings(nil, protocol.Res, protocol.EchoRes, "ping")
	if _, err := nc.Write(protocol.AppendPacketStrings(nil, protocol.Req, protocol.EchoReq, "ping")); err != nil {
		return false
	}
	got := make([]byte, len(want))
	_, err = io.ReadFull(nc, got)
	return err == nil && string(got) == string(want)
}

func TestPacketTimeoutCutsPartialMessagesOnly(t *testing.T) {
	logs := &logRecorder{}
	const timeout = 200 * time.Millisecond
	addr := startServer(t, server.Config{PacketTimeout: timeout, MaxPacketSize: 1024, Logger: slog.New(logs)})
	idle := dial(t, addr)
	idle.send(protocol.CanDo, "f")
	idle.sync() // a complete message, then nothing

	echo := protocol.AppendPacketStrings(nil, protocol.Req, protocol.EchoReq, "0123456789")
	oversized := rawPacket("\x00REQ", uint32(protocol.EchoReq), strings.Repeat("x", 4096))
	tests := []struct {
		name  string
		send  []byte
		reply func(p *peer)
	}{
		{"half a header", echo[:6], nil},
		{"header and part of the payload", echo[:15], nil},
		{"a message and half the next", append(append([]byte{}, echo...), echo[:15]...), func(p *peer) {
			p.expect(protocol.EchoRes, "0123456789")
		}},
		{"oversized packet being skipped", oversized[:100], func(p *peer) {
			p.expect(protocol.Error, "ARGUMENT_TOO_LARGE", "Packet of 4096 bytes exceeds the maximum packet size of 1024")
		}},
		{"admin line without its newline", []byte("stat"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := dial(t, addr)
			p.write(tc.send)
			if tc.reply != nil {
				tc.reply(p)
			}
			p.expectClosed()
		})
	}
	if n := len(logs.find("closing connection that did not complete a message")); n != len(tests) {
		t.Errorf("%d slow connections logged %d times", len(tests), n)
	}
	// idle has now waited longer than the timeout between messages.
	idle.sync()
	if got := statusOf(idle, "f"); got != "f\t0\t0\t1" {
		t.Fatalf("status of f: %q; the idle worker was cut", got)
	}
}

func TestUnsentOutputBoundClosesNonReader(t *testing.T) {
	logs := &logRecorder{}
	const bound = 1 << 20
	addr := startServer(t, server.Config{JobRetries: -1, MaxUnsentBytes: bound, Logger: slog.New(logs)})
	client, worker := dial(t, addr), dial(t, addr)
	worker.send(protocol.CanDo, "f")
	client.send(protocol.SubmitJob, "f", "", "x")
	client.expect(protocol.JobCreated, "H:test:1")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "f", "x")

	// The client reads nothing more. Far more than the socket buffers hold
	// is forwarded to it, until the server gives up on it.
	chunk := strings.Repeat("d", 64<<10)
	closed := func() bool { return len(logs.find("closing connection that does not read its replies")) > 0 }
	for sent := 0; !closed(); sent += len(chunk) {
		if sent > 256<<20 {
			t.Fatal("forwarded 256 MiB to a client that does not read, and it is still connected")
		}
		worker.send(protocol.WorkData, "H:test:1", chunk)
		if sent%(4<<20) == 0 {
			worker.sync()
		}
	}
	rec := logs.find("closing connection that does not read its replies")[0]
	if n, err := strconv.Atoi(rec["queued_bytes"]); err != nil || n > bound {
		t.Fatalf("closed with %s bytes queued, want at most %d", rec["queued_bytes"], bound)
	}
	// The worker goes on; its job lost its only client.
	worker.send(protocol.WorkComplete, "H:test:1", "done")
	eventually(t, "the client's connection to go", func() bool { return len(worker.admin("workers")) == 1 })
}

func TestWriteTimeoutClosesNonReader(t *testing.T) {
	logs := &logRecorder{}
	addr := startServer(t, server.Config{WriteTimeout: 100 * time.Millisecond, Logger: slog.New(logs)})
	bystander := dial(t, addr)
	bystander.sync()

	// A client that sends ECHO after ECHO and reads none of the replies:
	// the server's writes stall, and the client is disconnected.
	nc, err := dialOnce(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	echo := protocol.AppendPacketStrings(nil, protocol.Req, protocol.EchoReq, strings.Repeat("e", 256<<10))
	w := bufio.NewWriter(nc)
	nc.SetWriteDeadline(time.Now().Add(time.Minute)) // a hang guard, not a speed goal
	for err == nil {
		_, err = w.Write(echo)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server still had not closed a client that never reads after a minute")
	}
	if len(logs.find("closing connection that does not read its replies")) == 0 {
		t.Fatalf("the client's writes failed with %v, but the server logged no write timeout", err)
	}
	bystander.sync()
}

func TestMaxQueuedBytesRefusesSubmits(t *testing.T) {
	srv := server.New(server.Config{HandlePrefix: "H:test", MaxQueuedBytes: 10, Logger: discardLogger()})
	addr := serveOn(t, srv)
	p := dial(t, addr)
	p.send(protocol.SubmitJobBG, "f", "a", "123456")
	p.expect(protocol.JobCreated, "H:test:1")
	p.send(protocol.SubmitJobBG, "f", "b", "12345")
	p.expect(protocol.Error, "QUEUE_ERROR", "Job queue is full")
	p.send(protocol.SubmitJob, "f", "c", "1234") // fits exactly
	p.expect(protocol.JobCreated, "H:test:2")
	if got := srv.QueuedBytes(); got != 10 {
		t.Fatalf("QueuedBytes() = %d, want 10", got)
	}
	// Coalescing brings no payload, so it is accepted at the limit.
	p.send(protocol.SubmitJobBG, "f", "a", "anything")
	p.expect(protocol.JobCreated, "H:test:1")

	w := dial(t, addr)
	w.send(protocol.CanDo, "f")
	w.send(protocol.GrabJob)
	w.expect(protocol.JobAssign, "H:test:1", "f", "123456")
	w.send(protocol.WorkComplete, "H:test:1", "")
	w.sync()
	p.send(protocol.SubmitJobBG, "f", "d", "12345")
	p.expect(protocol.JobCreated, "H:test:3")
}

// panickyListener hands out connections whose Read panics once the peer
// sends "panic!", so that a test can reach the recovery in a connection's
// goroutine without a bug to trigger it.
type panickyListener struct{ net.Listener }

func (l panickyListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return panickyConn{nc}, nil
}

type panickyConn struct{ net.Conn }

func (c panickyConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if strings.Contains(string(b[:n]), "panic!") {
		panic("the peer asked for it")
	}
	return n, err
}

func TestPanicClosesOnlyItsConnectionAndIsCounted(t *testing.T) {
	logs := &logRecorder{}
	srv := server.New(server.Config{HandlePrefix: "H:test", JobRetries: -1, Logger: slog.New(logs)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, srv, panickyListener{l})
	addr := l.Addr().String()
	client, worker := dial(t, addr), dial(t, addr)
	worker.send(protocol.CanDo, "f")
	client.send(protocol.SubmitJob, "f", "", "x")
	client.expect(protocol.JobCreated, "H:test:1")

	p := dial(t, addr)
	p.send(protocol.CanDo, "f")
	p.send(protocol.GrabJob)
	p.expect(protocol.JobAssign, "H:test:1", "f", "x")
	p.line("panic!")
	p.expectClosed()
	if got := srv.Panics(); got != 1 {
		t.Fatalf("Panics() = %d, want 1", got)
	}
	rec := logs.find("panic serving connection")
	if len(rec) != 1 || !strings.Contains(rec[0]["stack"], "panickyConn.Read") {
		t.Fatalf("panic logged as %v", rec)
	}
	// The job the panicking connection held went back to the queue.
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "f", "x")
	worker.send(protocol.WorkComplete, "H:test:1", "done")
	client.expect(protocol.WorkComplete, "H:test:1", "done")
}
