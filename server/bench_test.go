package server_test

import (
	"bufio"
	"net"
	"strconv"
	"testing"

	"gearmand/protocol"
	"gearmand/server"
)

// benchConn is a raw connection for benchmarks: batched writes, a
// protocol.Reader for replies.
type benchConn struct {
	nc net.Conn
	w  *bufio.Writer
	r  *protocol.Reader
}

func benchDial(b *testing.B, addr string) *benchConn {
	b.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	return &benchConn{nc: nc, w: bufio.NewWriterSize(nc, 64<<10), r: protocol.NewReader(nc)}
}

func (c *benchConn) send(b *testing.B, t protocol.Type, args ...[]byte) {
	if _, err := c.w.Write(protocol.AppendPacket(nil, protocol.Req, t, args...)); err != nil {
		b.Fatal(err)
	}
}

func (c *benchConn) flush(b *testing.B) {
	if err := c.w.Flush(); err != nil {
		b.Fatal(err)
	}
}

func (c *benchConn) next(b *testing.B, want protocol.Type) *protocol.Message {
	m, err := c.r.Next()
	if err != nil {
		b.Fatal(err)
	}
	if m.Type != want {
		b.Fatalf("got %v %q, want %v", m.Type, m.Payload, want)
	}
	return m
}

func benchServer(b *testing.B) string {
	b.Helper()
	srv := server.New(server.Config{JobRetries: -1, HandlePrefix: "H:bench", Logger: discardLogger()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// BenchmarkSubmitBackground pipelines background submits, window at a
// time, on one connection; one op is one job acknowledged.
func BenchmarkSubmitBackground(b *testing.B) {
	for _, window := range []int{1, 64} {
		b.Run("window="+strconv.Itoa(window), func(b *testing.B) {
			c := benchDial(b, benchServer(b))
			fn, data := []byte("bench"), make([]byte, 64)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for n := 0; n < b.N; {
				k := min(window, b.N-n)
				for i := range k {
					c.send(b, protocol.SubmitJobBG, fn, strconv.AppendInt(nil, int64(n+i), 10), data)
				}
				c.flush(b)
				for range k {
					c.next(b, protocol.JobCreated)
				}
				n += k
			}
		})
	}
}

// BenchmarkForegroundRoundTrip runs one foreground job at a time through a
// worker: submit, grab, complete, result. One op is one finished job.
func BenchmarkForegroundRoundTrip(b *testing.B) {
	addr := benchServer(b)
	client, worker := benchDial(b, addr), benchDial(b, addr)
	worker.send(b, protocol.CanDo, []byte("rt"))
	data := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		client.send(b, protocol.SubmitJob, []byte("rt"), nil, data)
		client.flush(b)
		h := append([]byte(nil), client.next(b, protocol.JobCreated).Args[0]...)
		worker.send(b, protocol.GrabJob)
		worker.flush(b)
		worker.next(b, protocol.JobAssign)
		worker.send(b, protocol.WorkComplete, h, data)
		worker.flush(b)
		client.next(b, protocol.WorkComplete)
	}
}
