package protocol_test

import (
	"fmt"
	"testing"

	"gearmand/protocol"
)

var benchSizes = []int{0, 64, 1024, 65536}

// BenchmarkReader decodes an endless stream of SUBMIT_JOB_BG packets whose
// data blob has the given size, arriving in reads as large as the Reader's
// buffer (a pipelining client) or one packet per read.
func BenchmarkReader(b *testing.B) {
	for _, size := range benchSizes {
		for _, onePerRead := range []bool{false, true} {
			name := fmt.Sprintf("size=%d", size)
			if onePerRead {
				name += "/onePerRead"
			}
			b.Run(name, func(b *testing.B) {
				pkt := protocol.AppendPacket(nil, protocol.Req, protocol.SubmitJobBG,
					[]byte("reverse"), []byte("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), make([]byte, size))
				r := protocol.NewReader(&repeatReader{data: pkt, onePerRead: onePerRead})
				b.ReportAllocs()
				b.SetBytes(int64(len(pkt)))
				for b.Loop() {
					m, err := r.Next()
					if err != nil || len(m.Args) != 3 {
						b.Fatalf("Next = %v, %v", m, err)
					}
				}
			})
		}
	}
}

func BenchmarkAppendPacket(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			fn, uniq, data := []byte("reverse"), []byte("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), make([]byte, size)
			dst := protocol.AppendPacket(nil, protocol.Req, protocol.SubmitJobBG, fn, uniq, data)
			b.ReportAllocs()
			b.SetBytes(int64(len(dst)))
			for b.Loop() {
				dst = protocol.AppendPacket(dst[:0], protocol.Req, protocol.SubmitJobBG, fn, uniq, data)
			}
		})
	}
}

func BenchmarkAppendPacketStrings(b *testing.B) {
	handle := "H:vm:123456"
	dst := protocol.AppendPacketStrings(nil, protocol.Res, protocol.JobCreated, handle)
	b.ReportAllocs()
	b.SetBytes(int64(len(dst)))
	for b.Loop() {
		dst = protocol.AppendPacketStrings(dst[:0], protocol.Res, protocol.JobCreated, handle)
	}
}

func BenchmarkFields(b *testing.B) {
	line := []byte("maxqueue reverse 10 20 30")
	tokens := make([][]byte, 0, protocol.MaxAdminTokens)
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		var ok bool
		if tokens, ok = protocol.Fields(line, tokens); !ok || len(tokens) != 5 {
			b.Fatalf("Fields = %q, %v", tokens, ok)
		}
	}
}
