package queue

import (
	"strconv"
	"testing"

	"gearmand/protocol"
)

// nopPeer drops every packet: the benchmarks measure the queue, not I/O.
type nopPeer struct{}

func (nopPeer) Send([]byte)            {}
func (nopPeer) SendShared(_, _ []byte) {}

// handleOf appends the handle of job number n of a queue with prefix "H:b"
// (handles are numbered from 1 and nothing else creates jobs).
func handleOf(dst []byte, n uint64) []byte {
	return strconv.AppendUint(append(dst[:0], "H:b:"...), n, 10)
}

// BenchmarkSubmitGrabComplete is the dispatch path of one background job:
// SUBMIT_JOB_BG, GRAB_JOB, WORK_COMPLETE.
func BenchmarkSubmitGrabComplete(b *testing.B) {
	for _, bc := range []struct {
		name   string
		unique string
	}{{"unique=none", ""}, {"unique=uuid", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"}} {
		b.Run(bc.name, func(b *testing.B) {
			q := New(Config{HandlePrefix: "H:b", JobRetries: -1})
			client := q.Connect(nopPeer{}, SessionInfo{})
			worker := q.Connect(nopPeer{}, SessionInfo{})
			q.CanDo(worker, []byte("reverse"), 0)
			sub := Submission{
				Function:   []byte("reverse"),
				Unique:     []byte(bc.unique),
				Data:       []byte("hello, world"),
				Priority:   Normal,
				Background: true,
			}
			args := [][]byte{nil, []byte("dlrow ,olleh")}
			var payload []byte
			var n uint64
			b.ReportAllocs()
			for b.Loop() {
				if err := q.Submit(client, sub); err != nil {
					b.Fatal(err)
				}
				q.Grab(worker, GrabJob)
				n++
				args[0] = handleOf(args[0], n)
				payload = append(append(append(payload[:0], args[0]...), 0), args[1]...)
				if err := q.Work(worker, protocol.WorkComplete, args, payload, false); err != nil {
					b.Fatal(err)
				}
			}
			if q.Len() != 0 {
				b.Fatalf("%d jobs left", q.Len())
			}
		})
	}
}

// BenchmarkForegroundRoundTrip is one foreground job with its client
// attached: SUBMIT_JOB, GRAB_JOB_UNIQ, WORK_STATUS and WORK_COMPLETE
// forwarded to the client.
func BenchmarkForegroundRoundTrip(b *testing.B) {
	q := New(Config{HandlePrefix: "H:b", JobRetries: -1})
	client := q.Connect(nopPeer{}, SessionInfo{})
	worker := q.Connect(nopPeer{}, SessionInfo{})
	q.CanDo(worker, []byte("reverse"), 0)
	sub := Submission{Function: []byte("reverse"), Data: []byte("hello, world"), Priority: Normal}
	status := [][]byte{nil, []byte("1"), []byte("2")}
	done := [][]byte{nil, []byte("dlrow ,olleh")}
	var handle, payload []byte
	var n uint64
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Submit(client, sub); err != nil {
			b.Fatal(err)
		}
		q.Grab(worker, GrabJobUniq)
		n++
		handle = handleOf(handle, n)
		status[0], done[0] = handle, handle
		payload = append(append(payload[:0], handle...), "\x001\x002"...)
		if err := q.Work(worker, protocol.WorkStatus, status, payload, false); err != nil {
			b.Fatal(err)
		}
		payload = append(append(append(payload[:0], handle...), 0), done[1]...)
		if err := q.Work(worker, protocol.WorkComplete, done, payload, false); err != nil {
			b.Fatal(err)
		}
	}
	if q.Len() != 0 {
		b.Fatalf("%d jobs left", q.Len())
	}
}
