package gearhttp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
)

// # Header lines net/http refuses
//
// gearmand's HTTP plugin looks for the header lines it knows and skips every
// other line, however it is written. Clients rely on that without knowing:
// gearmand's own test runs `curl --header '"X-Gearman-Unique: ..."'`, whose
// line starts with a quote. net/http answers such a request 400 before any
// handler runs. So each connection's bytes pass through a headerFilter
// before net/http reads them, which deletes the header lines net/http would
// refuse: a name that is not an HTTP token (quotes, spaces before the
// colon, no colon at all) or a value holding control characters.
//
// Request smuggling defences stay net/http's. The filter never deletes a
// line that mentions Content-Length or Transfer-Encoding, however
// malformed: net/http still sees it and refuses the request. The filter
// finds where a request's body ends only from one plain Content-Length; for
// anything else (Transfer-Encoding, a doubtful Content-Length, a folded
// line, a line longer than its buffer, a header section past
// http.DefaultMaxHeaderBytes) it stops filtering and passes the rest of the
// connection through unchanged, so it can never take body bytes for header
// lines. A request it did not filter is read exactly as before.

// lenientListener hands out connections whose header lines are filtered.
type lenientListener struct{ net.Listener }

func (l lenientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lenientConn{Conn: c, f: newHeaderFilter(c)}, nil
}

// lenientConn is a connection read through a headerFilter. net/http never
// reads one connection from two goroutines at once, so it needs no lock.
type lenientConn struct {
	net.Conn
	f *headerFilter
}

func (c *lenientConn) Read(p []byte) (int, error) { return c.f.Read(p) }

// CloseWrite half-closes a TCP connection, which net/http does before it
// closes one after an error, so that the client reads the answer.
func (c *lenientConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// filterLineSize bounds one header line the filter can look at; a longer
// one ends filtering on its connection.
const filterLineSize = 16 << 10

type filterState uint8

const (
	stateRequestLine filterState = iota // before a request, and on its first line
	stateHeaders                        // inside a request's header section
	stateBody                           // inside a Content-Length body
	statePassThrough                    // no filtering for the rest of the stream
)

var errLineTooLong = errors.New("header line longer than the filter's buffer")

// headerFilter is an io.Reader over an HTTP/1.x request stream that deletes
// the header lines net/http would refuse and that gearmand ignores (see the
// comment at the top of this file). Everything else passes unchanged.
type headerFilter struct {
	br    *bufio.Reader
	state filterState
	out   []byte // filtered bytes not yet returned
	keep  []byte // backing array of out

	// Of the current request:
	remaining   int64 // body bytes left in stateBody
	headerBytes int   // header section bytes so far, deleted lines included
	length      int64 // its Content-Length, -1 without one
	unclear     bool  // its body's end is not known from a plain Content-Length
}

func newHeaderFilter(r io.Reader) *headerFilter {
	return &headerFilter{br: bufio.NewReaderSize(r, filterLineSize)}
}

// Read returns the filtered stream.
func (f *headerFilter) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		switch f.state {
		case statePassThrough:
			return f.br.Read(p)
		case stateBody:
			if f.remaining == 0 {
				f.state = stateRequestLine
				continue
			}
			n, err := f.br.Read(p[:min(int64(len(p)), f.remaining)])
			f.remaining -= int64(n)
			return n, err
		}
		line, err := f.line()
		switch {
		case errors.Is(err, errLineTooLong):
			f.state = statePassThrough
		case err != nil && f.br.Buffered() > 0 && !isTimeout(err):
			// The stream ends in the middle of a line: pass that on.
			f.state = statePassThrough
		case err != nil:
			return 0, err
		default:
			f.take(line)
		}
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// line returns the next whole line, its "\n" included, still buffered: the
// caller must consume it with Discard. On an error nothing is consumed.
func (f *headerFilter) line() ([]byte, error) {
	for {
		buf, _ := f.br.Peek(f.br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return buf[:i+1], nil
		}
		if len(buf) == f.br.Size() {
			return nil, errLineTooLong
		}
		if _, err := f.br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// take consumes line, passing it on unless it is a header line to delete.
func (f *headerFilter) take(line []byte) {
	pass := true
	switch f.state {
	case stateRequestLine:
		if len(bytes.TrimRight(line, "\r\n")) > 0 {
			f.state = stateHeaders
			f.headerBytes, f.length, f.unclear = 0, -1, false
		}
	case stateHeaders:
		pass = f.header(line)
	}
	if pass {
		f.keep = append(f.keep[:0], line...)
		f.out = f.keep
	}
	f.br.Discard(len(line))
}

// header looks at one line of a header section and reports whether to pass
// it on.
func (f *headerFilter) header(line []byte) bool {
	f.headerBytes += len(line)
	content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	switch {
	case len(content) == 0: // the end of the header section
		switch {
		case f.unclear:
			f.state = statePassThrough
		case f.length > 0:
			f.state, f.remaining = stateBody, f.length
		default:
			f.state = stateRequestLine
		}
		return true
	case f.headerBytes > http.DefaultMaxHeaderBytes:
		f.state = statePassThrough
		return true
	case content[0] == ' ' || content[0] == '\t': // a folded line
		f.unclear = true
		return true
	}
	name, value, ok := bytes.Cut(content, []byte(":"))
	if ok && validName(name) && validValue(value) {
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseLength(bytes.Trim(value, " \t"))
			if !ok || (f.length >= 0 && n != f.length) {
				f.unclear = true
			}
			f.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			f.unclear = true
		}
		return true
	}
	lower := bytes.ToLower(content)
	if bytes.Contains(lower, []byte("content-length")) || bytes.Contains(lower, []byte("transfer-encoding")) {
		f.unclear = true
		return true // for net/http to refuse
	}
	return false
}

// validName reports whether name is an HTTP token (RFC 9110 §5.6.2).
func validName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !isTokenByte(c) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c != 0 && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// validValue reports whether value holds no control character but HTAB.
func validValue(value []byte) bool {
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length of decimal digits only, below 1<<62.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return -1, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
