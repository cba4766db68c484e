package protocol

import (
	"bytes"
	"io"
	"testing"
)

// The read buffer is not visible from outside; these tests look at it to
// check that a large packet never grows it and that a long line does not
// pin its memory for the life of a connection.

func TestReaderLargePacketHasItsOwnBuffer(t *testing.T) {
	big := AppendPacket(nil, Req, EchoReq, bytes.Repeat([]byte{0, 'x'}, 5<<20))
	small := AppendPacketStrings(nil, Req, SubmitJobBG, "fn", "", "data")

	tests := []struct {
		name  string
		reads [][]byte // what each read of the underlying reader returns
	}{
		{"small packets in the same read", [][]byte{append(append(bytes.Clone(big), small...), small...)}},
		{"small packets in later reads", [][]byte{big, small, small}},
		{"in pieces", [][]byte{big[:7], big[7:40000], big[40000:], small, small}},
		{"nothing after it", [][]byte{big}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(&readsReader{reads: tt.reads})
			m, err := r.Next()
			if err != nil || m.Type != EchoReq || len(m.Payload) != 10<<20 || !m.Owned {
				t.Fatalf("Next = %v, %v; want an owned 10 MiB ECHO_REQ", m, err)
			}
			kept := m.Payload
			if len(r.buf) != readBufferSize {
				t.Fatalf("read buffer is %d bytes after a 10 MiB packet, want %d", len(r.buf), readBufferSize)
			}
			for {
				m, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil || m.Type != SubmitJobBG || string(m.Arg(2)) != "data" || m.Owned {
					t.Fatalf("Next = %v, %v; want SUBMIT_JOB_BG, not owned", m, err)
				}
			}
			if !bytes.Equal(kept, big[HeaderSize:]) {
				t.Error("the owned payload changed after later reads")
			}
			if len(r.buf) != readBufferSize {
				t.Errorf("read buffer is %d bytes at EOF, want %d", len(r.buf), readBufferSize)
			}
		})
	}
}

func TestReaderShrinksAfterLongLine(t *testing.T) {
	long := append(bytes.Repeat([]byte{'x'}, 600<<10), '\n')
	small := AppendPacketStrings(nil, Req, SubmitJobBG, "fn", "", "data")
	r := NewReader(&readsReader{reads: [][]byte{long, small, small}})
	r.MaxLineSize = 1 << 20
	if m, err := r.Next(); err != nil || len(m.Line) != 600<<10 {
		t.Fatalf("Next = %v, %v; want a 600 KiB line", m, err)
	}
	if len(r.buf) < 600<<10 {
		t.Fatalf("buffer is %d bytes while holding a 600 KiB line", len(r.buf))
	}
	for range 2 {
		if m, err := r.Next(); err != nil || m.Type != SubmitJobBG {
			t.Fatalf("Next = %v, %v; want SUBMIT_JOB_BG", m, err)
		}
		if len(r.buf) != readBufferSize {
			t.Errorf("buffer is %d bytes after a small packet, want %d", len(r.buf), readBufferSize)
		}
	}
}

func TestReaderKeepsModerateBufferForLongLines(t *testing.T) {
	line := append(bytes.Repeat([]byte{'x'}, 100<<10), '\n')
	r := NewReader(&readsReader{reads: [][]byte{line, line, line}})
	r.MaxLineSize = 1 << 20
	var sizes []int
	for range 3 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(r.buf))
	}
	if sizes[0] < len(line) || sizes[1] != sizes[0] || sizes[2] != sizes[0] {
		t.Errorf("buffer sizes after each 100 KiB line = %v, want one size of at least %d", sizes, len(line))
	}
}

// readsReader returns one element of reads per call, then io.EOF.
type readsReader struct {
	reads [][]byte
}

func (r *readsReader) Read(p []byte) (int, error) {
	if len(r.reads) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.reads[0])
	if r.reads[0] = r.reads[0][n:]; len(r.reads[0]) == 0 {
		r.reads = r.reads[1:]
	}
	return n, nil
}
