package server_test

import (
	"context"
	"testing"

	"gearmand/protocol"
	"gearmand/server"
	"gearmand/store"
	"gearmand/store/memstore"
)

// pattern returns n bytes that differ from one position to the next, so a
// payload cut, shifted or spliced at the wrong place does not compare equal.
func pattern(n int, seed byte) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i/251) ^ seed
	}
	return string(b)
}

// Payloads above the read buffer travel by reference (the job keeps the
// packet's buffer, and JOB_ASSIGN and forwarded WORK_* packets are written
// from it). They must arrive byte for byte, in order with the small packets
// around them, to every client.
func TestLargePayloadsPassThroughIntact(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	plain, excepting, worker := dial(t, addr), dial(t, addr), dial(t, addr)
	excepting.send(protocol.OptionReq, "exceptions")
	excepting.expect(protocol.OptionRes, "exceptions")

	job := pattern(1<<20+3, 1)
	plain.send(protocol.SubmitJob, "big", "u", job)
	plain.expect(protocol.JobCreated, "H:test:1")
	excepting.send(protocol.SubmitJob, "big", "u", job) // joins the same job
	excepting.expect(protocol.JobCreated, "H:test:1")

	worker.send(protocol.CanDo, "big")
	worker.send(protocol.GrabJobUniq)
	worker.expect(protocol.JobAssignUniq, "H:test:1", "big", "u", job)

	medium, large := pattern(40<<10, 2), pattern(3<<20, 3)
	worker.send(protocol.WorkData, "H:test:1", medium)
	worker.send(protocol.WorkWarning, "H:test:1", "small")
	worker.send(protocol.WorkData, "H:test:1", large)
	worker.send(protocol.WorkException, "H:test:1", large)
	for _, c := range []*peer{plain, excepting} {
		c.expect(protocol.WorkData, "H:test:1", medium)
		c.expect(protocol.WorkWarning, "H:test:1", "small")
		c.expect(protocol.WorkData, "H:test:1", large)
	}
	excepting.expect(protocol.WorkException, "H:test:1", large)
	plain.expect(protocol.WorkFail, "H:test:1", "")

	// The same job data again, as a background job with a reducer.
	plain.send(protocol.SubmitReduceJobBackground, "big", "", "red", "", job)
	plain.expect(protocol.JobCreated, "H:test:2")
	worker.send(protocol.GrabJobAll)
	worker.expect(protocol.JobAssignAll, "H:test:2", "big", "", "red", job)
}

// A large background job's record holds the job's data as submitted, and
// comes back whole on replay.
func TestLargeBackgroundJobIsStoredWhole(t *testing.T) {
	st := memstore.New()
	addr, _ := storedServer(t, st, server.Config{})
	client := dial(t, addr)
	data := pattern(2<<20, 4)
	client.send(protocol.SubmitJobBG, "big", "", data)
	client.expect(protocol.JobCreated, "H:test:1")
	var got []store.Record
	if err := st.Replay(context.Background(), func(r store.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Data) != data {
		t.Fatalf("stored %d records; want one with the 2 MiB payload", len(got))
	}

	addr2, _ := storedServer(t, st, server.Config{})
	worker := dial(t, addr2)
	worker.send(protocol.CanDo, "big")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "big", data)
}
