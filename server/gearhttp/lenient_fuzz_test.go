package gearhttp

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzHeaderFilter checks the header filter on any byte stream:
//
//   - its output is its input with whole lines deleted, and a deleted line
//     is never a valid header line nor one that mentions Content-Length or
//     Transfer-Encoding;
//   - it reads the same through one-byte reads;
//   - every request net/http reads from the raw bytes (up to the first one
//     it refuses) is read identically from the filtered bytes, bodies
//     included: the filter changes no request that was accepted before.
//
// The seeds run in every go test.
func FuzzHeaderFilter(f *testing.F) {
	for _, seed := range []string{
		"POST /f HTTP/1.1\r\nHost: x\r\n\"X-Gearman-Unique: u\"\r\nContent-Length: 3\r\n\r\nabc",
		"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n\"bad\"\r\nno: \x01\r\n" +
			"GET /g HTTP/1.1\r\nHost: x\r\nbad line\r\n\r\n",
		"POST /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n\"a\"\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\"x\r\n\r\n",
		"POST /f HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello",
		"POST /f HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST /f HTTP/1.1\r\nX-A: 1\r\n folded\r\n\"q\"\r\n\r\n",
		"\r\n\nGET / HTTP/1.0\n\"bad\"\nHost: y\n\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\"partial",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("v", filterLineSize) + "\r\n\"bad\"\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := io.ReadAll(newHeaderFilter(bytes.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		slow, err := io.ReadAll(newHeaderFilter(iotest.OneByteReader(bytes.NewReader(raw))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, slow) {
			t.Fatalf("one-byte reads give %q, large reads %q", slow, out)
		}

		outLines := bytes.SplitAfter(out, []byte("\n"))
		k := 0
		for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
			if k < len(outLines) && bytes.Equal(line, outLines[k]) {
				k++
				continue
			}
			content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			lower := bytes.ToLower(content)
			if bytes.Contains(lower, []byte("content-length")) || bytes.Contains(lower, []byte("transfer-encoding")) {
				t.Fatalf("deleted a line about framing: %q", line)
			}
			if name, value, ok := bytes.Cut(content, []byte(":")); ok && validName(name) && validValue(value) {
				t.Fatalf("deleted a valid header line: %q", line)
			}
		}
		if k != len(outLines) {
			t.Fatalf("output %q is not the input %q with whole lines deleted", out, raw)
		}

		want, got := readRequests(raw), readRequests(out)
		if len(got) < len(want) || len(want) > 0 && !reflect.DeepEqual(got[:len(want)], want) {
			t.Fatalf("requests read from the raw bytes:\n%+v\nfrom the filtered bytes:\n%+v", want, got)
		}
	})
}

// readRequest is what a handler sees of one request.
type readRequest struct {
	Method, URL, Proto string
	Header             http.Header
	ContentLength      int64
	TransferEncoding   []string
	Body               string
}

// readRequests reads requests from b until net/http's server would refuse
// one (or the body of one) or b ends.
func readRequests(b []byte) []readRequest {
	br := bufio.NewReader(bytes.NewReader(b))
	var out []readRequest
	for range 16 {
		req, err := http.ReadRequest(br)
		if err != nil || !serverAccepts(req.Header) {
			return out
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return out
		}
		out = append(out, readRequest{req.Method, req.URL.String(), req.Proto, req.Header, req.ContentLength, req.TransferEncoding, string(body)})
	}
	return out
}

// serverAccepts checks h as http.Server does after http.ReadRequest, which
// lets some names through that the server then answers with 400. It states
// RFC 9110's token rule by its excluded characters, apart from validName.
func serverAccepts(h http.Header) bool {
	for name, values := range h {
		if name == "" || strings.ContainsAny(name, "\"(),/:;<=>?@[\\]{} \t") {
			return false
		}
		for _, c := range []byte(name) {
			if c < ' ' || c >= 0x7f {
				return false
			}
		}
		for _, v := range values {
			for _, c := range []byte(v) {
				if c < ' ' && c != '\t' || c == 0x7f {
					return false
				}
			}
		}
	}
	return true
}

func TestHeaderFilterKeepsATimedOutPartialLine(t *testing.T) {
	r := &stepReader{steps: []step{
		{data: "GET / HTTP/1.1\r\nHost: x\r\n\"bad"},
		{err: timeoutError{}},
		{data: "\"\r\nX-Ok: 1\r\n\r\n"},
	}}
	f := newHeaderFilter(r)
	var got []byte
	buf := make([]byte, 64)
	sawTimeout := false
	for {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if isTimeout(err) {
			sawTimeout = true
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := "GET / HTTP/1.1\r\nHost: x\r\nX-Ok: 1\r\n\r\n"; string(got) != want || !sawTimeout {
		t.Fatalf("read %q (timeout seen %v), want %q and the timeout passed on", got, sawTimeout, want)
	}
}

type step struct {
	data string
	err  error
}

// stepReader returns its steps one Read at a time, then io.EOF.
type stepReader struct{ steps []step }

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	s := r.steps[0]
	n := copy(p, s.data)
	if n < len(s.data) {
		r.steps[0].data = s.data[n:]
		return n, nil
	}
	r.steps = r.steps[1:]
	return n, s.err
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
