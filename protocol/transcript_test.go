package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"gearmand/protocol"
)

// event is one outcome of Reader.Next, copied out of the Reader's buffer so
// a whole decode can be compared with what a test expects.
type event struct {
	// A text line.
	text bool
	line []byte

	// A binary packet, or for a non-fatal packet FrameError what Current
	// reported about the rejected packet.
	magic protocol.Magic
	typ   protocol.Type
	args  [][]byte

	// A FrameError.
	code    string
	fatal   bool
	lineErr bool

	// The error that ended the decode: io.EOF, io.ErrUnexpectedEOF or the
	// underlying reader's error.
	err error
}

func lineEvent(s string) event { return event{text: true, line: []byte(s)} }

func packetEvent(m protocol.Magic, t protocol.Type, args ...string) event {
	e := event{magic: m, typ: t, args: [][]byte{}}
	for _, a := range args {
		e.args = append(e.args, []byte(a))
	}
	return e
}

// packetError is a non-fatal FrameError about a binary packet whose header
// said magic m and type t.
func packetError(code string, m protocol.Magic, t protocol.Type) event {
	return event{code: code, magic: m, typ: t}
}

func lineError(code string) event { return event{code: code, lineErr: true} }

func fatalError(code string) event { return event{code: code, fatal: true} }

func endEvent(err error) event { return event{err: err} }

func (e event) String() string {
	switch {
	case e.err != nil:
		return fmt.Sprintf("end(%v)", e.err)
	case e.code != "":
		return fmt.Sprintf("FrameError{%s fatal=%v line=%v %v %v}", e.code, e.fatal, e.lineErr, e.magic, e.typ)
	case e.text:
		return fmt.Sprintf("line(%q)", e.line)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "packet(%v %v", e.magic, e.typ)
	for _, a := range e.args {
		fmt.Fprintf(&b, " %q", a)
	}
	b.WriteString(")")
	return b.String()
}

func (e event) equal(o event) bool {
	if e.err != nil || o.err != nil {
		return errors.Is(e.err, o.err) || errors.Is(o.err, e.err)
	}
	if e.text != o.text || !bytes.Equal(e.line, o.line) ||
		e.magic != o.magic || e.typ != o.typ || len(e.args) != len(o.args) ||
		e.code != o.code || e.fatal != o.fatal || e.lineErr != o.lineErr {
		return false
	}
	for i := range e.args {
		if !bytes.Equal(e.args[i], o.args[i]) {
			return false
		}
	}
	return true
}

// maxEvents bounds every decode loop: each call to Next either consumes at
// least one byte or ends the stream, so no test stream comes near it.
const maxEvents = 1 << 20

// decode reads src to its end with a fresh Reader (set up by setup when it
// is not nil) and returns every outcome in order. It fails the test when a
// returned packet's Args are not what Split makes of its Payload, or when a
// text line still holds its "\n".
func decode(t testing.TB, src io.Reader, setup func(*protocol.Reader)) []event {
	t.Helper()
	r := protocol.NewReader(src)
	if setup != nil {
		setup(r)
	}
	var events []event
	for range maxEvents {
		m, err := r.Next()
		if err != nil {
			var fe *protocol.FrameError
			if !errors.As(err, &fe) {
				return append(events, endEvent(err))
			}
			e := event{code: fe.Code, fatal: fe.Fatal, lineErr: fe.Line}
			if !fe.Line && !fe.Fatal {
				cur := r.Current()
				e.magic, e.typ = cur.Magic, cur.Type
			}
			events = append(events, e)
			if fe.Fatal {
				return events
			}
			continue
		}
		events = append(events, copyMessage(t, m))
	}
	t.Fatalf("decode did not end after %d messages", maxEvents)
	return nil
}

func copyMessage(t testing.TB, m *protocol.Message) event {
	t.Helper()
	if m.Text {
		if bytes.IndexByte(m.Line, '\n') >= 0 {
			t.Errorf("line %q holds a newline", m.Line)
		}
		return event{text: true, line: bytes.Clone(m.Line)}
	}
	want, ok := protocol.Split(m.Type, bytes.Clone(m.Payload), nil)
	if !ok {
		t.Errorf("%v returned although Split rejects its payload %q", m.Type, m.Payload)
	}
	if len(want) != len(m.Args) {
		t.Errorf("%v: %d args, Split of the payload gives %d", m.Type, len(m.Args), len(want))
	}
	e := event{magic: m.Magic, typ: m.Type, args: make([][]byte, len(m.Args))}
	for i, a := range m.Args {
		if i < len(want) && !bytes.Equal(a, want[i]) {
			t.Errorf("%v arg %d = %q, Split of the payload gives %q", m.Type, i, a, want[i])
		}
		e.args[i] = bytes.Clone(a)
	}
	return e
}

// diffEvents describes the first difference between two decodes, or
// returns "" when they are equal.
func diffEvents(got, want []event) string {
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return fmt.Sprintf("event %d: missing, want %v", i, want[i])
		case i >= len(want):
			return fmt.Sprintf("event %d: got %v, want nothing more", i, got[i])
		case !got[i].equal(want[i]):
			return fmt.Sprintf("event %d: got %v, want %v", i, got[i], want[i])
		}
	}
	return ""
}

// chunkReader returns its data in reads of the given sizes (a size of 0 is
// an empty read), then whatever is left in one read, then io.EOF. When
// eofWithData is set, the read that delivers the last byte also returns
// io.EOF, as io.Reader allows.
type chunkReader struct {
	data        []byte
	sizes       []int
	eofWithData bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.sizes) > 0 {
		n = min(n, c.sizes[0])
		c.sizes = c.sizes[1:]
	}
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	if c.eofWithData && len(c.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// checkStream decodes stream in one read, one byte at a time, in halves
// returned together with io.EOF, and split into two reads at every point,
// and requires the same events every time.
func checkStream(t *testing.T, stream []byte, setup func(*protocol.Reader), want []event) {
	t.Helper()
	check := func(how string, src io.Reader) {
		t.Helper()
		if d := diffEvents(decode(t, src, setup), want); d != "" {
			t.Errorf("%s: %s", how, d)
		}
	}
	check("one read", bytes.NewReader(stream))
	check("one byte per read", iotest.OneByteReader(bytes.NewReader(stream)))
	check("half reads", iotest.HalfReader(bytes.NewReader(stream)))
	check("EOF with the last data", iotest.DataErrReader(bytes.NewReader(stream)))
	for k := 0; k <= len(stream); k++ {
		check(fmt.Sprintf("split at %d", k), &chunkReader{data: stream, sizes: []int{k}})
		if t.Failed() {
			return // one report per stream is enough
		}
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func packet(m protocol.Magic, t protocol.Type, args ...string) []byte {
	return protocol.AppendPacketStrings(nil, m, t, args...)
}

// rawPacket is a packet with the given payload bytes, whatever its type's
// layout says.
func rawPacket(m protocol.Magic, t protocol.Type, payload string) []byte {
	return append(protocol.AppendHeader(nil, m, t, len(payload)), payload...)
}

// header is a raw 12-byte header with any magic bytes, type and size.
func header(magic string, t uint32, size uint32) []byte {
	h := []byte(magic)
	h = append(h, byte(t>>24), byte(t>>16), byte(t>>8), byte(t))
	return append(h, byte(size>>24), byte(size>>16), byte(size>>8), byte(size))
}
