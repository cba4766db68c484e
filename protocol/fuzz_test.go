package protocol_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"gearmand/protocol"
)

// Limits small enough that fuzzed input reaches them.
const (
	fuzzMaxPacket = 256
	fuzzMaxLine   = 64
)

func fuzzLimits(r *protocol.Reader) {
	r.MaxPacketSize = fuzzMaxPacket
	r.MaxLineSize = fuzzMaxLine
}

// readerSeeds are streams that reach every branch of the Reader: each type
// with its arguments, text lines, and each framing error.
func readerSeeds() [][]byte {
	var seeds [][]byte
	var all []byte
	for typ := protocol.Type(1); typ <= protocol.MaxType; typ++ {
		args := make([]string, typ.NumArgs())
		for i := range args {
			args[i] = strings.Repeat(string(rune('a'+i)), i+1)
		}
		if len(args) > 0 {
			args[len(args)-1] = "d\x00t"
		}
		p := packet(protocol.Req, typ, args...)
		seeds = append(seeds, p)
		all = append(all, p...)
	}
	seeds = append(seeds,
		all,
		[]byte("version\n"),
		[]byte("status\r\nworkers\n\n\r\n"),
		cat([]byte("version\n"), packet(protocol.Req, protocol.EchoReq, "hi"), []byte("status\r\n")),
		cat(header("\x00REX", 16, 0), packet(protocol.Req, protocol.EchoReq, "x")),
		cat(header("\x00REQ", 0, 3), []byte("abc"), packet(protocol.Req, protocol.GrabJob)),
		cat(header("\x00RES", 43, 0), []byte("status\n")),
		cat(header("\x00REQ", 0xFFFFFFFF, 1), []byte("\x00")),
		cat(header("\x00REQ", uint32(protocol.SubmitJob), fuzzMaxPacket+1), make([]byte, fuzzMaxPacket+1), []byte("ok\n")),
		cat(header("\x00REQ", uint32(protocol.SubmitJob), 1<<30), []byte("abc")),
		cat(rawPacket(protocol.Req, protocol.SubmitJob, "fn"), packet(protocol.Req, protocol.EchoReq, "x")),
		cat(rawPacket(protocol.Req, protocol.SubmitJobSched, "f\x00u\x001\x002\x003\x004\x00d"), []byte("\n")),
		cat(rawPacket(protocol.Req, protocol.GrabJob, "\x00\x00junk"), packet(protocol.Res, protocol.NoJob)),
		cat([]byte(strings.Repeat("x", fuzzMaxLine)+"\n"), []byte("version\n")),
		cat([]byte(strings.Repeat("y", fuzzMaxLine-2)+"\r\n"), []byte("version\r\n")),
		[]byte(strings.Repeat("z", 2*fuzzMaxLine)),
		packet(protocol.Req, protocol.EchoReq, "x")[:7],
		packet(protocol.Req, protocol.EchoReq, "xyz")[:14],
		[]byte("no newline"),
	)
	return seeds
}

// model decodes a whole stream by the rules of PROTOCOL.md §1 and §3.1 as a
// plain loop over a byte slice, to check the resumable Reader against.
func model(data []byte, maxPacket, maxLine int) []event {
	var events []event
	for {
		if len(data) == 0 {
			return append(events, endEvent(io.EOF))
		}
		if data[0] != 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if len(data) >= maxLine {
					events = append(events, lineError("LINE_TOO_LONG"))
				}
				return append(events, endEvent(io.ErrUnexpectedEOF))
			}
			line := data[:i]
			data = data[i+1:]
			if len(line)+1 > maxLine {
				events = append(events, lineError("LINE_TOO_LONG"))
				continue
			}
			events = append(events, event{text: true, line: bytes.TrimSuffix(line, []byte("\r"))})
			continue
		}
		if len(data) < protocol.HeaderSize {
			return append(events, endEvent(io.ErrUnexpectedEOF))
		}
		var m protocol.Magic
		switch string(data[:4]) {
		case "\x00REQ":
			m = protocol.Req
		case "\x00RES":
			m = protocol.Res
		default:
			return append(events, fatalError("INVALID_MAGIC"))
		}
		t := protocol.Type(binary.BigEndian.Uint32(data[4:]))
		size := int64(binary.BigEndian.Uint32(data[8:]))
		data = data[protocol.HeaderSize:]
		code := ""
		switch {
		case t < 1 || t > 42:
			code = "INVALID_COMMAND"
		case size > int64(maxPacket):
			code = "ARGUMENT_TOO_LARGE"
		}
		if code != "" {
			events = append(events, packetError(code, m, t))
		}
		if int64(len(data)) < size {
			return append(events, endEvent(io.ErrUnexpectedEOF))
		}
		payload := data[:size]
		data = data[size:]
		if code != "" {
			continue
		}
		// n arguments are n-1 NUL-terminated fields and the rest.
		args := [][]byte{}
		if n := t.NumArgs(); n > 0 {
			args = bytes.SplitN(payload, []byte{0}, n)
			if len(args) == 1 && n == 2 && workResult(t) {
				// The handle alone: empty data (see protocol.Split).
				args = append(args, []byte{})
			}
			if len(args) < n {
				events = append(events, packetError("INVALID_PACKET", m, t))
				continue
			}
		}
		events = append(events, event{magic: m, typ: t, args: args})
	}
}

// seededChunks makes the read sizes of a chunkReader from seed: reads of 1
// to 32 bytes, now and then an empty one, and perhaps io.EOF together with
// the last byte.
func seededChunks(data []byte, seed uint64) *chunkReader {
	c := &chunkReader{data: data, eofWithData: seed&1 == 1}
	x := seed
	for range len(data) + 1 {
		// splitmix64
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		if z%16 == 0 {
			c.sizes = append(c.sizes, 0)
		} else {
			c.sizes = append(c.sizes, 1+int(z>>8)%32)
		}
	}
	return c
}

func FuzzReader(f *testing.F) {
	for i, s := range readerSeeds() {
		f.Add(s, uint64(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		want := model(data, fuzzMaxPacket, fuzzMaxLine)
		// decode itself checks every packet's Args against Split of its
		// Payload and bounds the loop.
		if d := diffEvents(decode(t, bytes.NewReader(data), fuzzLimits), want); d != "" {
			t.Fatalf("one read: %s", d)
		}
		if d := diffEvents(decode(t, seededChunks(data, seed), fuzzLimits), want); d != "" {
			t.Fatalf("chunked reads: %s", d)
		}
	})
}

func roundTripSeeds() []struct {
	typ          uint8
	res          bool
	fields, last []byte
} {
	var seeds []struct {
		typ          uint8
		res          bool
		fields, last []byte
	}
	for typ := range uint8(protocol.MaxType) {
		seeds = append(seeds, struct {
			typ          uint8
			res          bool
			fields, last []byte
		}{typ, typ%2 == 1, []byte("fn\x00uniq\x00a\x00b\x00c\x00d\x00e\x00f"), []byte("da\x00ta")})
	}
	return seeds
}

// roundTripArgs makes arguments t's layout allows from fuzzed bytes: the
// NUL-separated pieces of fields for the terminated ones (empty when there
// are too few), and last as the last, which may hold anything.
func roundTripArgs(t protocol.Type, fields, last []byte) [][]byte {
	n := t.NumArgs()
	if n == 0 {
		return nil
	}
	pieces := bytes.Split(fields, []byte{0})
	args := make([][]byte, n)
	for i := range n - 1 {
		if i < len(pieces) {
			args[i] = pieces[i]
		} else {
			args[i] = []byte{}
		}
	}
	args[n-1] = last
	return args
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range roundTripSeeds() {
		f.Add(s.typ, s.res, s.fields, s.last)
	}
	f.Add(uint8(0), false, []byte{}, []byte{})
	f.Add(uint8(255), true, []byte("\x00\x00"), []byte("\x00"))
	f.Fuzz(func(t *testing.T, typ uint8, res bool, fields, last []byte) {
		pt := protocol.Type(typ%uint8(protocol.MaxType) + 1)
		m := protocol.Req
		if res {
			m = protocol.Res
		}
		args := roundTripArgs(pt, fields, last)

		pkt := protocol.AppendPacket(nil, m, pt, args...)
		strs := make([]string, len(args))
		for i, a := range args {
			strs[i] = string(a)
		}
		if s := protocol.AppendPacketStrings(nil, m, pt, strs...); !bytes.Equal(s, pkt) {
			t.Fatalf("AppendPacketStrings = %q, AppendPacket = %q", s, pkt)
		}
		want := []event{{magic: m, typ: pt, args: args}, endEvent(io.EOF)}
		if want[0].args == nil {
			want[0].args = [][]byte{}
		}
		if d := diffEvents(decode(t, bytes.NewReader(pkt), nil), want); d != "" {
			t.Fatalf("one read: %s", d)
		}
		if d := diffEvents(decode(t, iotest.OneByteReader(bytes.NewReader(pkt)), nil), want); d != "" {
			t.Fatalf("one byte per read: %s", d)
		}

		// A type without arguments ignores whatever payload it carries.
		if len(args) == 0 {
			raw := append(protocol.AppendHeader(nil, m, pt, len(fields)), fields...)
			if d := diffEvents(decode(t, bytes.NewReader(raw), nil), want); d != "" {
				t.Fatalf("payload %q on %v: %s", fields, pt, d)
			}
		}
	})
}

// workResult reports whether t is a work result packet whose empty data may
// come without the NUL before it.
func workResult(t protocol.Type) bool {
	switch t {
	case protocol.WorkComplete, protocol.WorkData, protocol.WorkWarning, protocol.WorkException:
		return true
	}
	return false
}
