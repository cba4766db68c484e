package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"gearmand/protocol"
)

// argSets returns argument lists that t's layout allows: every terminated
// field free of NULs, the last argument (data blob or unterminated field)
// holding anything.
func argSets(t protocol.Type) map[string][]string {
	n := t.NumArgs()
	if n == 0 {
		return map[string][]string{"none": nil}
	}
	build := func(field func(i int) string, last string) []string {
		args := make([]string, n)
		for i := range n - 1 {
			args[i] = field(i)
		}
		args[n-1] = last
		return args
	}
	return map[string][]string{
		"all empty": build(func(int) string { return "" }, ""),
		"last holds NULs": build(func(i int) string { return fmt.Sprintf("arg%d", i) },
			"\x00da\x00ta\x00\x00"),
		"last empty": build(func(i int) string { return fmt.Sprintf("arg%d", i) }, ""),
		"binary fields": build(func(i int) string { return fmt.Sprintf("\xff\r\n %d\t\x01", i) },
			"\n\x00\xff"),
	}
}

func TestReaderEveryTypeRoundTrips(t *testing.T) {
	for typ := protocol.Type(1); typ <= protocol.MaxType; typ++ {
		for name, args := range argSets(typ) {
			for _, m := range []protocol.Magic{protocol.Req, protocol.Res} {
				t.Run(fmt.Sprintf("%v/%v/%s", typ, m, name), func(t *testing.T) {
					stream := packet(m, typ, args...)
					checkStream(t, stream, nil, []event{
						packetEvent(m, typ, args...),
						endEvent(io.EOF),
					})
				})
			}
		}
	}
}

func TestReaderEveryTypeInOneStream(t *testing.T) {
	// All packets back to back, so each one starts wherever the one before
	// left the buffer.
	var stream []byte
	var want []event
	for typ := protocol.Type(1); typ <= protocol.MaxType; typ++ {
		for _, m := range []protocol.Magic{protocol.Req, protocol.Res} {
			for _, args := range argSets(typ) {
				stream = append(stream, packet(m, typ, args...)...)
				want = append(want, packetEvent(m, typ, args...))
			}
		}
	}
	want = append(want, endEvent(io.EOF))
	checkStream(t, stream, nil, want)
}

func TestReaderInterleavesLinesAndPackets(t *testing.T) {
	stream := cat(
		[]byte("version\n"),
		packet(protocol.Req, protocol.EchoReq, "hello\x00world"),
		[]byte("status\r\n"),
		[]byte("\n"),
		[]byte("\r\n"),
		packet(protocol.Req, protocol.SubmitJob, "fn", "uniq", "data"),
		packet(protocol.Req, protocol.GrabJob),
		[]byte("workers\n"),
		[]byte("a\rb\n"),      // a "\r" inside the line stays
		[]byte("x\r\r\n"),     // only one "\r" is dropped
		[]byte("nul\x00in\n"), // a NUL after the first byte is part of the line
		[]byte(" \t \n"),
	)
	checkStream(t, stream, nil, []event{
		lineEvent("version"),
		packetEvent(protocol.Req, protocol.EchoReq, "hello\x00world"),
		lineEvent("status"),
		lineEvent(""),
		lineEvent(""),
		packetEvent(protocol.Req, protocol.SubmitJob, "fn", "uniq", "data"),
		packetEvent(protocol.Req, protocol.GrabJob),
		lineEvent("workers"),
		lineEvent("a\rb"),
		lineEvent("x\r"),
		lineEvent("nul\x00in"),
		lineEvent(" \t "),
		endEvent(io.EOF),
	})
}

func TestReaderErrors(t *testing.T) {
	next := packet(protocol.Req, protocol.EchoReq, "next")
	nextEvent := packetEvent(protocol.Req, protocol.EchoReq, "next")
	limits := func(maxPacket, maxLine int) func(*protocol.Reader) {
		return func(r *protocol.Reader) {
			r.MaxPacketSize = maxPacket
			r.MaxLineSize = maxLine
		}
	}
	long := strings.Repeat("x", 40)

	tests := []struct {
		name   string
		stream []byte
		setup  func(*protocol.Reader)
		want   []event
	}{
		{
			name:   "bad magic",
			stream: cat(header("\x00REX", uint32(protocol.EchoReq), 2), []byte("hi"), next),
			want:   []event{fatalError("INVALID_MAGIC")},
		},
		{
			name:   "lower-case magic after a good packet",
			stream: cat(next, header("\x00req", uint32(protocol.EchoReq), 0), next),
			want:   []event{nextEvent, fatalError("INVALID_MAGIC")},
		},
		{
			name:   "all-NUL header",
			stream: cat(make([]byte, protocol.HeaderSize), next),
			want:   []event{fatalError("INVALID_MAGIC")},
		},
		{
			name:   "type 0",
			stream: cat(header("\x00REQ", 0, 7), []byte("abc\x00def"), next),
			want:   []event{packetError("INVALID_COMMAND", protocol.Req, 0), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "type 43",
			stream: cat(header("\x00RES", 43, 3), []byte("a\x00b"), next),
			want:   []event{packetError("INVALID_COMMAND", protocol.Res, 43), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "type 0xFFFFFFFF",
			stream: cat(header("\x00REQ", 0xFFFFFFFF, 0), next),
			want:   []event{packetError("INVALID_COMMAND", protocol.Req, 0xFFFFFFFF), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "payload above MaxPacketSize",
			stream: cat(rawPacket(protocol.Req, protocol.SubmitJob, "fn\x00u\x00"+long), next),
			setup:  limits(16, 0),
			want:   []event{packetError("ARGUMENT_TOO_LARGE", protocol.Req, protocol.SubmitJob), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "payload at MaxPacketSize",
			stream: cat(rawPacket(protocol.Req, protocol.EchoReq, long[:16]), next),
			setup:  limits(16, 0),
			want:   []event{packetEvent(protocol.Req, protocol.EchoReq, long[:16]), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "SUBMIT_JOB without NULs",
			stream: cat(rawPacket(protocol.Req, protocol.SubmitJob, "fn"), next),
			want:   []event{packetError("INVALID_PACKET", protocol.Req, protocol.SubmitJob), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "SUBMIT_JOB with one NUL",
			stream: cat(rawPacket(protocol.Req, protocol.SubmitJob, "fn\x00data"), next),
			want:   []event{packetError("INVALID_PACKET", protocol.Req, protocol.SubmitJob), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "WORK_STATUS with one NUL",
			stream: cat(rawPacket(protocol.Req, protocol.WorkStatus, "H:x:1\x001"), next),
			want:   []event{packetError("INVALID_PACKET", protocol.Req, protocol.WorkStatus), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "SUBMIT_REDUCE_JOB with three NULs",
			stream: cat(rawPacket(protocol.Req, protocol.SubmitReduceJob, "fn\x00u\x00red\x00data"), next),
			want:   []event{packetError("INVALID_PACKET", protocol.Req, protocol.SubmitReduceJob), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "SUBMIT_JOB_SCHED with six NULs",
			stream: cat(rawPacket(protocol.Req, protocol.SubmitJobSched, "fn\x00u\x001\x002\x003\x004\x00data"), next),
			want:   []event{packetError("INVALID_PACKET", protocol.Req, protocol.SubmitJobSched), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "empty ERROR payload",
			stream: cat(rawPacket(protocol.Res, protocol.Error, ""), next),
			want:   []event{packetError("INVALID_PACKET", protocol.Res, protocol.Error), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "GRAB_JOB with a payload",
			stream: cat(rawPacket(protocol.Req, protocol.GrabJob, "\x00\x00ab"), next),
			want:   []event{packetEvent(protocol.Req, protocol.GrabJob), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "PRE_SLEEP with a payload",
			stream: cat(rawPacket(protocol.Req, protocol.PreSleep, "zz"), next),
			want:   []event{packetEvent(protocol.Req, protocol.PreSleep), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "line longer than MaxLineSize",
			stream: cat([]byte(long+"\n"), next, []byte("version\n")),
			setup:  limits(0, 16),
			want:   []event{lineError("LINE_TOO_LONG"), nextEvent, lineEvent("version"), endEvent(io.EOF)},
		},
		{
			name:   "line one byte over MaxLineSize",
			stream: cat([]byte(long[:16]+"\n"), []byte("version\n")),
			setup:  limits(0, 16),
			want:   []event{lineError("LINE_TOO_LONG"), lineEvent("version"), endEvent(io.EOF)},
		},
		{
			name:   "line at MaxLineSize",
			stream: cat([]byte(long[:15]+"\n"), []byte(long[:14]+"\r\n"), []byte("version\n")),
			setup:  limits(0, 16),
			want:   []event{lineEvent(long[:15]), lineEvent(long[:14]), lineEvent("version"), endEvent(io.EOF)},
		},
		{
			name:   "CRLF line one byte over MaxLineSize",
			stream: cat([]byte(long[:15]+"\r\n"), []byte("version\n")),
			setup:  limits(0, 16),
			want:   []event{lineError("LINE_TOO_LONG"), lineEvent("version"), endEvent(io.EOF)},
		},
		{
			name:   "two long lines in a row",
			stream: cat([]byte(long+"\n"), []byte(long+"\n"), []byte("ok\n")),
			setup:  limits(0, 16),
			want:   []event{lineError("LINE_TOO_LONG"), lineError("LINE_TOO_LONG"), lineEvent("ok"), endEvent(io.EOF)},
		},
		{
			name:   "EOF between messages",
			stream: cat([]byte("version\n"), next),
			want:   []event{lineEvent("version"), nextEvent, endEvent(io.EOF)},
		},
		{
			name:   "empty stream",
			stream: nil,
			want:   []event{endEvent(io.EOF)},
		},
		{
			name:   "EOF in the magic",
			stream: cat(next, next[:3]),
			want:   []event{nextEvent, endEvent(io.ErrUnexpectedEOF)},
		},
		{
			name:   "EOF in the header",
			stream: cat(next, next[:protocol.HeaderSize-1]),
			want:   []event{nextEvent, endEvent(io.ErrUnexpectedEOF)},
		},
		{
			name:   "EOF after the header",
			stream: cat(next, next[:protocol.HeaderSize]),
			want:   []event{nextEvent, endEvent(io.ErrUnexpectedEOF)},
		},
		{
			name:   "EOF in the payload",
			stream: cat(next, next[:len(next)-1]),
			want:   []event{nextEvent, endEvent(io.ErrUnexpectedEOF)},
		},
		{
			name:   "EOF in a line",
			stream: cat(next, []byte("version")),
			want:   []event{nextEvent, endEvent(io.ErrUnexpectedEOF)},
		},
		{
			name:   "EOF after a CR",
			stream: []byte("version\r"),
			want:   []event{endEvent(io.ErrUnexpectedEOF)},
		},
		{
			name:   "EOF in the payload of an oversized packet",
			stream: cat(header("\x00REQ", uint32(protocol.EchoReq), 100), []byte(long)),
			setup:  limits(16, 0),
			want:   []event{packetError("ARGUMENT_TOO_LARGE", protocol.Req, protocol.EchoReq), endEvent(io.ErrUnexpectedEOF)},
		},
		{
			name:   "EOF in the payload of an unknown type",
			stream: cat(header("\x00REQ", 99, 100), []byte(long)),
			want:   []event{packetError("INVALID_COMMAND", protocol.Req, 99), endEvent(io.ErrUnexpectedEOF)},
		},
		{
			name:   "EOF in an overlong line",
			stream: []byte(long),
			setup:  limits(0, 16),
			want:   []event{lineError("LINE_TOO_LONG"), endEvent(io.ErrUnexpectedEOF)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkStream(t, tt.stream, tt.setup, tt.want)
		})
	}
}

// endless is an io.Reader that never runs dry, for payloads too large to
// hold in a test.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	clear(p)
	e.n += int64(len(p))
	return len(p), nil
}

// heapAllocated returns the bytes allocated on the heap since the program
// started.
func heapAllocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

func TestReaderSkipsOversizedPayloadWithoutBuffering(t *testing.T) {
	const (
		declared  = 1 << 30
		maxPacket = 1 << 20
		fed       = 64 << 20 // of the declared GiB
	)
	next := packet(protocol.Req, protocol.EchoReq, "next")

	// The header, then 64 MiB of the declared GiB, then EOF: the Reader
	// must report the packet at once and then run out of input while
	// skipping, never holding more than its read buffer.
	src := io.MultiReader(
		bytes.NewReader(header("\x00REQ", uint32(protocol.SubmitJob), declared)),
		io.LimitReader(&endless{}, fed),
	)
	before := heapAllocated()
	r := protocol.NewReader(src)
	r.MaxPacketSize = maxPacket
	_, err := r.Next()
	var fe *protocol.FrameError
	if !errors.As(err, &fe) || fe.Code != "ARGUMENT_TOO_LARGE" || fe.Fatal || fe.Line {
		t.Fatalf("Next = %v, want a non-fatal ARGUMENT_TOO_LARGE", err)
	}
	if got := r.Current().Type; got != protocol.SubmitJob {
		t.Errorf("Current().Type = %v, want SUBMIT_JOB", got)
	}
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Next after a truncated oversized payload = %v, want io.ErrUnexpectedEOF", err)
	}
	if got := heapAllocated() - before; got > maxPacket {
		t.Errorf("skipping %d bytes of an oversized packet allocated %d bytes", fed, got)
	}

	// The whole payload, then another packet, which must decode.
	const whole = 128 << 20
	src = io.MultiReader(
		bytes.NewReader(header("\x00REQ", uint32(protocol.SubmitJob), whole)),
		io.LimitReader(&endless{}, whole),
		bytes.NewReader(next),
	)
	before = heapAllocated()
	r = protocol.NewReader(src)
	r.MaxPacketSize = maxPacket
	if _, err := r.Next(); !errors.As(err, &fe) || fe.Code != "ARGUMENT_TOO_LARGE" {
		t.Fatalf("Next = %v, want ARGUMENT_TOO_LARGE", err)
	}
	m, err := r.Next()
	if err != nil || m.Type != protocol.EchoReq || string(m.Arg(0)) != "next" {
		t.Fatalf("Next after the skipped packet = %+v, %v; want ECHO_REQ next", m, err)
	}
	if got := heapAllocated() - before; got > maxPacket {
		t.Errorf("skipping %d bytes of an oversized packet allocated %d bytes", whole, got)
	}
}

func TestReaderCurrentAfterErrors(t *testing.T) {
	stream := cat(
		rawPacket(protocol.Req, protocol.SubmitJob, "fn"),
		header("\x00RES", 77, 2), []byte("zz"),
		rawPacket(protocol.Req, protocol.WorkComplete, strings.Repeat("x", 64)),
	)
	r := protocol.NewReader(bytes.NewReader(stream))
	r.MaxPacketSize = 32
	var fe *protocol.FrameError

	if _, err := r.Next(); !errors.As(err, &fe) || fe.Code != "INVALID_PACKET" {
		t.Fatalf("Next = %v, want INVALID_PACKET", err)
	}
	if cur := r.Current(); cur.Text || cur.Magic != protocol.Req || cur.Type != protocol.SubmitJob || string(cur.Payload) != "fn" || len(cur.Args) != 0 {
		t.Errorf("Current after INVALID_PACKET = %+v, want REQ SUBMIT_JOB, payload fn, no args", cur)
	}

	if _, err := r.Next(); !errors.As(err, &fe) || fe.Code != "INVALID_COMMAND" {
		t.Fatalf("Next = %v, want INVALID_COMMAND", err)
	}
	if cur := r.Current(); cur.Text || cur.Magic != protocol.Res || cur.Type != 77 || len(cur.Args) != 0 {
		t.Errorf("Current after INVALID_COMMAND = %+v, want RES type 77, no args", cur)
	}

	if _, err := r.Next(); !errors.As(err, &fe) || fe.Code != "ARGUMENT_TOO_LARGE" {
		t.Fatalf("Next = %v, want ARGUMENT_TOO_LARGE", err)
	}
	if cur := r.Current(); cur.Text || cur.Magic != protocol.Req || cur.Type != protocol.WorkComplete || len(cur.Args) != 0 {
		t.Errorf("Current after ARGUMENT_TOO_LARGE = %+v, want REQ WORK_COMPLETE, no args", cur)
	}
}

func TestReaderCurrentAfterLineError(t *testing.T) {
	stream := cat(packet(protocol.Req, protocol.EchoReq, "x"), []byte(strings.Repeat("y", 100)+"\n"))
	r := protocol.NewReader(bytes.NewReader(stream))
	r.MaxLineSize = 16
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	var fe *protocol.FrameError
	if _, err := r.Next(); !errors.As(err, &fe) || !fe.Line {
		t.Fatalf("Next = %v, want a line FrameError", err)
	}
	if cur := r.Current(); !cur.Text || cur.Type != 0 || cur.Payload != nil {
		t.Errorf("Current after a line error = %+v, want an empty text message", cur)
	}
}

func TestReaderBuffered(t *testing.T) {
	a := packet(protocol.Req, protocol.SubmitJob, "fn", "", "a")
	b := []byte("status\n")
	c := packet(protocol.Req, protocol.GrabJob)
	r := protocol.NewReader(&chunkReader{data: cat(a, b, c, a), sizes: []int{len(a) + len(b) + len(c)}})

	if r.Buffered() != 0 {
		t.Errorf("Buffered before the first read = %d, want 0", r.Buffered())
	}
	wantBuffered := []int{len(b) + len(c), len(c), 0, 0}
	for i, want := range wantBuffered {
		if _, err := r.Next(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got := r.Buffered(); got != want {
			t.Errorf("Buffered after message %d = %d, want %d", i, got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next at the end = %v, want io.EOF", err)
	}
	if r.Buffered() != 0 {
		t.Errorf("Buffered at EOF = %d, want 0", r.Buffered())
	}
}

// A rejected message whose bytes have all arrived leaves nothing buffered,
// so a server that flushes when Buffered is 0 sends its error reply before
// waiting for the next message.
func TestReaderBufferedAfterErrors(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
	}{
		{"oversized packet", rawPacket(protocol.Req, protocol.EchoReq, strings.Repeat("x", 100))},
		{"unknown type", cat(header("\x00REQ", 50, 100), make([]byte, 100))},
		{"missing NULs", rawPacket(protocol.Req, protocol.SubmitJob, "fn")},
		{"overlong line", []byte(strings.Repeat("x", 100) + "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := protocol.NewReader(bytes.NewReader(tt.stream))
			r.MaxPacketSize = 16
			r.MaxLineSize = 16
			var fe *protocol.FrameError
			if _, err := r.Next(); !errors.As(err, &fe) || fe.Fatal {
				t.Fatalf("Next = %v, want a non-fatal FrameError", err)
			}
			if got := r.Buffered(); got != 0 {
				t.Errorf("Buffered after the error = %d, want 0", got)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("Next at the end = %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderBeforeRead(t *testing.T) {
	a := packet(protocol.Req, protocol.SubmitJob, "fn", "", "a")
	b := []byte("status\n")
	// Two packets and a line in the first read, half a packet in the second,
	// the rest in the third.
	stream := cat(a, b, a, a)
	src := &chunkReader{data: stream, sizes: []int{2*len(a) + len(b), len(a) / 2}}
	r := protocol.NewReader(src)
	calls := 0
	r.BeforeRead = func() { calls++ }

	// Reads before each message: the first needs one, the next two are
	// buffered, the last needs two (half a packet, then the rest), and EOF
	// needs one.
	for i, want := range []int{1, 0, 0, 2} {
		calls = 0
		if _, err := r.Next(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if calls != want {
			t.Errorf("message %d: BeforeRead called %d times, want %d", i, calls, want)
		}
	}
	calls = 0
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next at the end = %v, want io.EOF", err)
	}
	if calls != 1 {
		t.Errorf("at EOF: BeforeRead called %d times, want 1", calls)
	}
	calls = 0
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after EOF = %v, want io.EOF", err)
	}
	if calls != 0 {
		t.Errorf("after EOF: BeforeRead called %d times, want 0 (the error is sticky)", calls)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReaderPassesReadErrorsThrough(t *testing.T) {
	boom := errors.New("connection reset")
	a := packet(protocol.Req, protocol.EchoReq, "a")
	for _, tt := range []struct {
		name   string
		stream []byte
	}{
		{"between messages", a},
		{"in a header", cat(a, a[:5])},
		{"in a payload", cat(a, a[:len(a)-1])},
		{"in a line", cat(a, []byte("stat"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := decode(t, &failingReader{data: tt.stream, err: boom}, nil)
			want := []event{packetEvent(protocol.Req, protocol.EchoReq, "a"), endEvent(boom)}
			if d := diffEvents(got, want); d != "" {
				t.Error(d)
			}
		})
	}
}

// stuckReader returns no bytes and no error forever.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderGivesUpOnReadsWithoutProgress(t *testing.T) {
	r := protocol.NewReader(stuckReader{})
	if _, err := r.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("Next = %v, want io.ErrNoProgress", err)
	}
}

func TestReaderDefaultLimits(t *testing.T) {
	r := protocol.NewReader(nil)
	if r.MaxPacketSize != protocol.DefaultMaxPacketSize || r.MaxLineSize != protocol.DefaultMaxLineSize {
		t.Errorf("NewReader limits = %d, %d; want %d, %d", r.MaxPacketSize, r.MaxLineSize,
			protocol.DefaultMaxPacketSize, protocol.DefaultMaxLineSize)
	}

	// Zero or negative limits mean the defaults.
	line := strings.Repeat("x", protocol.DefaultMaxLineSize-1)
	stream := cat([]byte(line+"\n"), []byte(line+"x\n"))
	got := decode(t, bytes.NewReader(stream), func(r *protocol.Reader) {
		r.MaxLineSize = 0
		r.MaxPacketSize = -1
	})
	want := []event{lineEvent(line), lineError("LINE_TOO_LONG"), endEvent(io.EOF)}
	if d := diffEvents(got, want); d != "" {
		t.Error(d)
	}
}

// A stream of packets that fit the read buffer decodes without allocating,
// and one of larger packets with one allocation each (the packet's own
// buffer, see Message.Owned), whether reads are large (several packets
// each) or end at every packet boundary, as when a client sends one request
// at a time.
func TestReaderSteadyStateAllocations(t *testing.T) {
	for _, size := range []int{0, 100, 20 << 10, 40 << 10, 100 << 10} {
		for _, onePerRead := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/onePerRead=%v", size, onePerRead), func(t *testing.T) {
				pkt := packet(protocol.Req, protocol.SubmitJobBG, "fn", "uniq", strings.Repeat("d", size))
				r := protocol.NewReader(&repeatReader{data: pkt, onePerRead: onePerRead})
				// Warm up: let the buffer reach its working size.
				for range 4 {
					if _, err := r.Next(); err != nil {
						t.Fatal(err)
					}
				}
				owned := len(pkt) > 32<<10
				allocs := testing.AllocsPerRun(100, func() {
					m, err := r.Next()
					if err != nil || m.Type != protocol.SubmitJobBG || len(m.Arg(2)) != size || m.Owned != owned {
						t.Fatalf("Next = %+v, %v; want Owned=%v", m, err, owned)
					}
				})
				want := 0.0
				if owned {
					want = 1
				}
				if allocs != want {
					t.Errorf("%v allocations per packet of %d bytes, want %v", allocs, len(pkt), want)
				}
			})
		}
	}
}

// repeatReader returns data over and over. A read fills all of the buffer it
// is given, or with onePerRead stops at the end of each copy of data.
type repeatReader struct {
	data       []byte
	off        int
	onePerRead bool
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
		if r.onePerRead && r.off == 0 {
			break
		}
	}
	return n, nil
}
