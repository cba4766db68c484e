package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
)

// Limits applied by a Reader unless its fields say otherwise.
const (
	// DefaultMaxPacketSize bounds a binary packet's payload (64 MiB).
	DefaultMaxPacketSize = 64 << 20
	// DefaultMaxLineSize bounds an admin text line, terminator included,
	// like gearmand's 8 KiB receive buffer.
	DefaultMaxLineSize = 8192
	// readBufferSize is the read buffer a Reader starts with and shrinks back
	// to after holding a long text line. A binary packet larger than it is
	// read into a buffer of its own (see Message.Owned).
	readBufferSize = 32 << 10
	// maxRetainedBufferSize is the largest grown buffer a Reader keeps while
	// long lines keep coming; a larger one is dropped as soon as the bytes
	// still buffered fit the default buffer.
	maxRetainedBufferSize = 256 << 10
	// maxEmptyReads is how many reads in a row may return neither bytes nor
	// an error before the Reader gives up with io.ErrNoProgress.
	maxEmptyReads = 100
)

// Message is one unit read from a connection: an admin text line or a binary
// packet. Which one is decided per message by its first byte (0x00 starts a
// binary header, anything else a text line), so both may be interleaved on
// one connection.
//
// All slices alias the Reader's buffer and stay valid only until the next
// call to Next; copy what must outlive it. The exception is a packet larger
// than the read buffer: it is read into a buffer allocated for it alone,
// Owned is set, and its slices stay valid and unchanged for as long as the
// caller keeps them, so a large payload can be kept or sent on without a
// copy.
type Message struct {
	// Text is set for an admin line; Line then holds it without its "\n" and
	// without one "\r" before that.
	Text bool
	Line []byte

	// Packet is the decoded binary packet when Text is false. Its Args are
	// split by the type's layout.
	Packet
	// Payload is the whole payload of a binary packet. It is nil for a
	// packet rejected before its payload was read (see Reader.Current).
	Payload []byte
	// Owned is set when Payload (and so Args) lies in a buffer the Reader
	// allocated for this packet alone and never touches again.
	Owned bool
}

// FrameError is a protocol error found while framing. When Fatal is false
// the offending message has been consumed whole and the stream is still in
// step: the caller may report the error and call Next again. When Fatal is
// true the byte stream cannot be resynchronised and must be closed.
type FrameError struct {
	Code  string // libgearman return-code name, e.g. "INVALID_MAGIC"
	Text  string // human-readable reason
	Fatal bool
	// Line is set when the error concerns an admin text line, which is
	// answered with an ERR line rather than an ERROR packet.
	Line bool
}

func (e *FrameError) Error() string { return e.Code + ": " + e.Text }

// Reader decodes messages from an io.Reader. It keeps its parse state
// between calls, so any split of the byte stream (one byte at a time
// included) decodes the same messages. It never allocates more than the
// declared size of a packet it has accepted, and it checks that size against
// MaxPacketSize before reading the payload.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	// MaxPacketSize bounds the payload of a binary packet. A larger packet is
	// discarded as it arrives (never buffered) and reported as a non-fatal
	// ARGUMENT_TOO_LARGE FrameError.
	MaxPacketSize int
	// MaxLineSize bounds an admin text line; a longer one is discarded up to
	// its newline and reported as a non-fatal FrameError with Line set.
	MaxLineSize int
	// BeforeRead, when set, is called before every read from the underlying
	// reader, that is whenever the Reader is about to wait for more bytes
	// because no complete message is buffered. A server flushes its pending
	// replies there, so nothing it owes a peer waits behind a blocking read.
	BeforeRead func()

	r          io.Reader
	buf        []byte
	start, end int
	err        error // sticky read error
	discard    int64 // bytes of a rejected packet's payload still to skip
	skipLine   bool  // skipping the rest of an overlong text line
	lastLarge  bool  // the last message took over half the default buffer
	msg        Message
	args       [][]byte
}

// NewReader returns a Reader with the default limits.
func NewReader(r io.Reader) *Reader {
	return &Reader{
		MaxPacketSize: DefaultMaxPacketSize,
		MaxLineSize:   DefaultMaxLineSize,
		r:             r,
		buf:           make([]byte, readBufferSize),
		args:          make([][]byte, 0, 8),
	}
}

// Buffered returns the number of bytes read from the underlying reader but
// not yet returned as messages. A server flushes its replies when this is 0.
func (r *Reader) Buffered() int { return r.end - r.start }

// InMessage reports whether the Reader is inside a message: it holds bytes
// of one not yet complete, or is skipping the rest of a rejected packet or
// overlong line. Called from BeforeRead it tells a wait for the rest of a
// message from a wait between messages.
func (r *Reader) InMessage() bool { return r.end > r.start || r.discard > 0 || r.skipLine }

// Next returns the next message. The returned pointer and every slice in it
// are valid until the following call. Errors are io.EOF at a clean message
// boundary, io.ErrUnexpectedEOF inside a message, a *FrameError for protocol
// errors, or the underlying reader's error.
func (r *Reader) Next() (*Message, error) {
	r.shrink()
	if err := r.skip(); err != nil {
		return nil, r.unexpected(err)
	}
	if err := r.fill(1); err != nil {
		return nil, err
	}
	if r.buf[r.start] != 0 {
		return r.nextLine()
	}
	return r.nextPacket()
}

// shrink drops a buffer grown for a large message once what is still
// buffered fits the default size. A grown buffer up to
// maxRetainedBufferSize is kept while large messages keep coming, so a
// stream of them does not allocate one buffer per message.
func (r *Reader) shrink() {
	if len(r.buf) <= readBufferSize || r.end-r.start > readBufferSize/2 {
		return
	}
	if r.lastLarge && len(r.buf) <= maxRetainedBufferSize {
		return
	}
	nb := make([]byte, readBufferSize)
	r.end = copy(nb, r.buf[r.start:r.end])
	r.start = 0
	r.buf = nb
}

// skip consumes whatever an earlier rejected message left unread. Its
// errors are those of fill: io.EOF here is inside a message.
func (r *Reader) skip() error {
	for r.discard > 0 {
		if r.start == r.end {
			if err := r.fill(1); err != nil {
				return err
			}
		}
		r.discardBuffered()
	}
	for r.skipLine {
		if r.start == r.end {
			if err := r.fill(1); err != nil {
				return err
			}
		}
		if i := bytes.IndexByte(r.buf[r.start:r.end], '\n'); i >= 0 {
			r.start += i + 1
			r.skipLine = false
		} else {
			r.start = r.end
		}
	}
	return nil
}

func (r *Reader) nextLine() (*Message, error) {
	scanned := 0
	for {
		window := r.buf[r.start+scanned : r.end]
		if i := bytes.IndexByte(window, '\n'); i >= 0 {
			end := r.start + scanned + i
			line := r.buf[r.start:end]
			r.start = end + 1
			if len(line)+1 > r.maxLine() {
				return nil, r.lineTooLong()
			}
			r.lastLarge = len(line)+1 > readBufferSize/2
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			r.msg = Message{Text: true, Line: line}
			return &r.msg, nil
		}
		scanned = r.end - r.start
		if scanned >= r.maxLine() {
			r.start = r.end
			r.skipLine = true
			return nil, r.lineTooLong()
		}
		if err := r.fill(scanned + 1); err != nil {
			return nil, r.unexpected(err)
		}
	}
}

func (r *Reader) nextPacket() (*Message, error) {
	if err := r.fill(HeaderSize); err != nil {
		return nil, r.unexpected(err)
	}
	h := r.buf[r.start : r.start+HeaderSize]
	var m Magic
	switch [4]byte(h[0:4]) {
	case magicReq:
		m = Req
	case magicRes:
		m = Res
	default:
		return nil, &FrameError{Code: "INVALID_MAGIC", Text: "Invalid packet magic", Fatal: true}
	}
	t := Type(binary.BigEndian.Uint32(h[4:8]))
	size := binary.BigEndian.Uint32(h[8:12])
	// A rejected packet's payload is skipped as it arrives, never buffered:
	// the next call to Next goes on discarding what has not come yet.
	if !t.Valid() {
		r.reject(m, t, size)
		return nil, &FrameError{Code: "INVALID_COMMAND", Text: "Unknown packet type " + strconv.FormatUint(uint64(t), 10)}
	}
	if int64(size) > int64(r.maxPacket()) {
		r.reject(m, t, size)
		return nil, &FrameError{Code: "ARGUMENT_TOO_LARGE", Text: "Packet of " + strconv.FormatUint(uint64(size), 10) + " bytes exceeds the maximum packet size of " + strconv.Itoa(r.maxPacket())}
	}
	total := HeaderSize + int(size)
	var payload []byte
	owned := total > readBufferSize
	if owned {
		p, err := r.readOwned(total)
		if err != nil {
			return nil, r.unexpected(err)
		}
		payload = p[HeaderSize:]
	} else {
		if err := r.fill(total); err != nil {
			return nil, r.unexpected(err)
		}
		payload = r.buf[r.start+HeaderSize : r.start+total : r.start+total]
		r.start += total
	}
	r.lastLarge = false
	r.msg = Message{Packet: Packet{Magic: m, Type: t}, Payload: payload, Owned: owned}
	args, ok := Split(t, payload, r.args)
	r.args = args
	if !ok {
		return nil, &FrameError{Code: "INVALID_PACKET", Text: t.String() + " needs " + strconv.Itoa(t.NumArgs()) + " NUL-separated arguments"}
	}
	r.msg.Args = args
	return &r.msg, nil
}

// readOwned consumes the next n bytes, a whole packet, into a new buffer
// of exactly n bytes: what is buffered first, then straight from the
// underlying reader, never past the packet's end.
func (r *Reader) readOwned(n int) ([]byte, error) {
	p := make([]byte, n)
	got := copy(p, r.buf[r.start:r.end])
	r.start += got
	for empty := 0; got < n; {
		if r.err != nil {
			return nil, r.err
		}
		got += r.read(p[got:], &empty)
	}
	return p, nil
}

// reject consumes the header of a packet that will not be decoded and
// whatever of its payload is already buffered, so Buffered counts only the
// messages after it, and leaves the rest of the payload to skip.
func (r *Reader) reject(m Magic, t Type, size uint32) {
	r.start += HeaderSize
	r.discard = int64(size)
	r.discardBuffered()
	r.msg = Message{Packet: Packet{Magic: m, Type: t}}
}

// discardBuffered drops up to r.discard buffered bytes.
func (r *Reader) discardBuffered() {
	n := min(int64(r.end-r.start), r.discard)
	r.start += int(n)
	r.discard -= n
}

func (r *Reader) lineTooLong() error {
	r.msg = Message{Text: true}
	return &FrameError{Code: "LINE_TOO_LONG", Text: "Admin line exceeds " + strconv.Itoa(r.maxLine()) + " bytes", Line: true}
}

// Current returns the message most recently framed, including one whose
// non-fatal FrameError Next just returned: its Magic and Type tell the
// caller what was rejected. After INVALID_PACKET it also holds the Payload;
// after INVALID_COMMAND and ARGUMENT_TOO_LARGE the payload is skipped unread
// and Payload is nil; after a line error it is an empty text message.
func (r *Reader) Current() *Message { return &r.msg }

// fill reads until at least n unconsumed bytes are buffered.
func (r *Reader) fill(n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if r.start == r.end {
		r.start, r.end = 0, 0 // read into the whole buffer
	}
	if r.start+n > len(r.buf) {
		if n > len(r.buf) {
			nb := make([]byte, max(n, 2*len(r.buf)))
			r.end = copy(nb, r.buf[r.start:r.end])
			r.buf = nb
		} else {
			r.end = copy(r.buf, r.buf[r.start:r.end])
		}
		r.start = 0
	}
	for empty := 0; r.end-r.start < n; {
		if r.err != nil {
			return r.err
		}
		r.end += r.read(r.buf[r.end:], &empty)
	}
	return nil
}

// read calls BeforeRead, then reads once into p and returns the byte count.
// An error becomes the sticky r.err, as does io.ErrNoProgress once *empty
// (the reads in a row that returned nothing) reaches maxEmptyReads.
func (r *Reader) read(p []byte, empty *int) int {
	if r.BeforeRead != nil {
		r.BeforeRead()
	}
	m, err := r.r.Read(p)
	switch {
	case err != nil:
		r.err = err
	case m > 0:
		*empty = 0
	case *empty+1 >= maxEmptyReads:
		r.err = io.ErrNoProgress
	default:
		*empty++
	}
	return m
}

// unexpected maps a read error inside a message: io.EOF becomes
// io.ErrUnexpectedEOF.
func (r *Reader) unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *Reader) maxPacket() int {
	if r.MaxPacketSize <= 0 {
		return DefaultMaxPacketSize
	}
	// HeaderSize plus the payload must not overflow an int.
	return min(r.MaxPacketSize, math.MaxInt-HeaderSize)
}

func (r *Reader) maxLine() int {
	if r.MaxLineSize <= 0 {
		return DefaultMaxLineSize
	}
	return r.MaxLineSize
}
