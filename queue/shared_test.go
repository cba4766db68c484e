package queue

import (
	"strings"
	"testing"

	"gearmand/protocol"
)

// A job's data and a worker's owned payload from sharedMin bytes on go to
// the peer by reference (SendShared); smaller ones, and payloads the caller
// may reuse, are copied into the packet (Send). Either way the packet is the
// same.
func TestLargePayloadsAreSentByReference(t *testing.T) {
	h := newHarness(t, Config{})
	client, w := h.connect("client"), h.worker("w", "f")
	small, large := "small", strings.Repeat("L", sharedMin)

	for _, data := range []string{small, large} {
		handle := h.submit(client, Submission{Function: []byte("f"), Data: []byte(data)})
		before := w.p.shared
		if got, gotData := h.assign(w); got != handle || gotData != data {
			t.Fatalf("JOB_ASSIGN %s with %d bytes, want %s with %d", got, len(gotData), handle, len(data))
		}
		if sent := w.p.shared - before; sent != boolInt(len(data) >= sharedMin) {
			t.Errorf("JOB_ASSIGN of %d bytes: %d packets by reference", len(data), sent)
		}

		for _, owned := range []bool{false, true} {
			before := client.p.shared
			payload := []byte(handle + "\x00" + data)
			args, _ := protocol.Split(protocol.WorkData, payload, nil)
			if err := h.q.Work(w.s, protocol.WorkData, args, payload, owned); err != nil {
				t.Fatal(err)
			}
			pk := next(t, client)
			if pk.Type != protocol.WorkData || pk.Payload != string(payload) {
				t.Fatalf("client got %s of %d bytes, want WORK_DATA of %d", pk.Type, len(pk.Payload), len(payload))
			}
			if sent := client.p.shared - before; sent != boolInt(owned && len(payload) >= sharedMin) {
				t.Errorf("WORK_DATA of %d bytes, owned=%v: %d packets by reference", len(payload), owned, sent)
			}
		}
		h.complete(w, handle, "")
		next(t, client) // WORK_COMPLETE
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
