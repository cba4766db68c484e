package server_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"gearmand/protocol"
	"gearmand/server"
)

// rawPacket builds a packet with any magic, type and payload, including
// ones the protocol package would never produce.
func rawPacket(magic string, typ uint32, payload string) []byte {
	b := []byte(magic)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// TestErrorPackets covers every ERROR of PROTOCOL.md §1.6, including the
// cases gearmand answers with silence: each gets an ERROR packet and the
// connection stays usable.
func TestErrorPackets(t *testing.T) {
	long := strings.Repeat("x", 65)
	handle64 := strings.Repeat("h", 64)
	tests := []struct {
		name       string
		send       []byte
		code, text string
	}{
		{"response magic", rawPacket("\x00RES", uint32(protocol.EchoReq), "x"), "INVALID_MAGIC", "Request magic expected"},
		{"NOOP from a peer", rawPacket("\x00REQ", uint32(protocol.Noop), ""), "INVALID_COMMAND", "Command not expected"},
		{"JOB_CREATED from a peer", rawPacket("\x00REQ", uint32(protocol.JobCreated), "H:x:1"), "INVALID_COMMAND", "Command not expected"},
		{"STATUS_RES from a peer", rawPacket("\x00REQ", uint32(protocol.StatusRes), "a\x00b\x00c\x00d\x00e"), "INVALID_COMMAND", "Command not expected"},
		{"unused type 5", rawPacket("\x00REQ", 5, ""), "INVALID_COMMAND", "Command not expected"},
		{"ALL_YOURS", rawPacket("\x00REQ", uint32(protocol.AllYours), ""), "INVALID_COMMAND", "Command not expected"},
		{"SUBMIT_JOB_SCHED", rawPacket("\x00REQ", uint32(protocol.SubmitJobSched), "f\x00u\x001\x002\x003\x004\x005\x00data"), "INVALID_COMMAND", "Command not expected"},
		{"type 0", rawPacket("\x00REQ", 0, "junk"), "INVALID_COMMAND", "Unknown packet type 0"},
		{"type 43", rawPacket("\x00REQ", 43, ""), "INVALID_COMMAND", "Unknown packet type 43"},
		{"unique of 65 bytes", protocol.AppendPacketStrings(nil, protocol.Req, protocol.SubmitJob, "f", long, "d"), "ARGUMENT_TOO_LARGE", "Unique value too large"},
		{"unique of 65 bytes, background", protocol.AppendPacketStrings(nil, protocol.Req, protocol.SubmitJobLowBG, "f", long, "d"), "ARGUMENT_TOO_LARGE", "Unique value too large"},
		{"unique of 65 bytes, reduce", protocol.AppendPacketStrings(nil, protocol.Req, protocol.SubmitReduceJob, "f", long, "r", "", "d"), "ARGUMENT_TOO_LARGE", "Unique value too large"},
		{"reducer too large", protocol.AppendPacketStrings(nil, protocol.Req, protocol.SubmitReduceJobBackground, "f", "u", strings.Repeat("r", 513), "", "d"), "ARGUMENT_TOO_LARGE", "Reducer name too large"},
		{"WORK_STATUS unknown job", protocol.AppendPacketStrings(nil, protocol.Req, protocol.WorkStatus, "H:x:1", "1", "2"), "JOB_NOT_FOUND", "Job given in work result not found"},
		{"WORK_COMPLETE unknown job", protocol.AppendPacketStrings(nil, protocol.Req, protocol.WorkComplete, "H:x:1", "r"), "JOB_NOT_FOUND", "Job given in work result not found"},
		{"WORK_FAIL unknown job", protocol.AppendPacketStrings(nil, protocol.Req, protocol.WorkFail, "H:x:1"), "JOB_NOT_FOUND", "Job given in work result not found"},
		{"WORK_DATA unknown job", protocol.AppendPacketStrings(nil, protocol.Req, protocol.WorkData, "H:x:1", "d"), "JOB_NOT_FOUND", "Job does not exist on server"},
		{"WORK_WARNING unknown job", protocol.AppendPacketStrings(nil, protocol.Req, protocol.WorkWarning, "H:x:1", "d"), "JOB_NOT_FOUND", "Job does not exist on server"},
		{"WORK_EXCEPTION unknown job", protocol.AppendPacketStrings(nil, protocol.Req, protocol.WorkException, "H:x:1", "d"), "JOB_NOT_FOUND", "An exception was received for a job that does not exist"},
		{"WORK_FAIL handle of 64 bytes", protocol.AppendPacketStrings(nil, protocol.Req, protocol.WorkFail, handle64), "ARGUMENT_TOO_LARGE", "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf"},
		{"unknown option", protocol.AppendPacketStrings(nil, protocol.Req, protocol.OptionReq, "bogus"), "UNKNOWN_OPTION", "Server does not recognize given option"},
		{"option name of 64 bytes", protocol.AppendPacketStrings(nil, protocol.Req, protocol.OptionReq, "exceptions"+strings.Repeat(" ", 54)), "UNKNOWN_OPTION", "Server does not recognize given option"},
		// gearmand answers these with silence; we answer with an ERROR.
		{"GET_STATUS handle of 64 bytes", protocol.AppendPacketStrings(nil, protocol.Req, protocol.GetStatus, handle64), "ARGUMENT_TOO_LARGE", "Job handle too large"},
		{"GET_STATUS_UNIQUE of 65 bytes", protocol.AppendPacketStrings(nil, protocol.Req, protocol.GetStatusUnique, long), "ARGUMENT_TOO_LARGE", "Unique value too large"},
		{"CAN_DO_TIMEOUT value too long", protocol.AppendPacketStrings(nil, protocol.Req, protocol.CanDoTimeout, "f", strings.Repeat("1", 21)), "INVALID_ARGUMENT", "CAN_DO_TIMEOUT needs a base-10 number of milliseconds of at most 20 characters"},
		{"CAN_DO_TIMEOUT out of range", protocol.AppendPacketStrings(nil, protocol.Req, protocol.CanDoTimeout, "f", "99999999999999999999"), "INVALID_ARGUMENT", "CAN_DO_TIMEOUT needs a base-10 number of milliseconds of at most 20 characters"},
		{"SUBMIT_JOB_EPOCH out of range", protocol.AppendPacketStrings(nil, protocol.Req, protocol.SubmitJobEpoch, "f", "u", "99999999999999999999", "d"), "INVALID_ARGUMENT", "SUBMIT_JOB_EPOCH time is out of range"},
		// gearmand's parser reads past the packet or drops the connection.
		{"SUBMIT_JOB missing NULs", rawPacket("\x00REQ", uint32(protocol.SubmitJob), "fn"), "INVALID_PACKET", "SUBMIT_JOB needs 3 NUL-separated arguments"},
		{"SUBMIT_REDUCE_JOB with three fields", protocol.AppendPacketStrings(nil, protocol.Req, protocol.SubmitReduceJob, "f", "u", "r", "d"), "INVALID_PACKET", "SUBMIT_REDUCE_JOB needs 5 NUL-separated arguments"},
	}
	addr := startServer(t, server.Config{JobRetries: -1})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := dial(t, addr)
			p.write(tc.send)
			p.expect(protocol.Error, tc.code, tc.text)
			p.sync() // the stream is still in step
		})
	}
}

// TestErrorPacketBytes checks one ERROR byte for byte against the capture
// in PROTOCOL.md §1.6. The capture's length field reads 0x26, the length of
// the text alone; the payload it shows is 53 (0x35) bytes, which is what a
// correct header declares and what libgearman needs to stay in step.
func TestErrorPacketBytes(t *testing.T) {
	p := dial(t, startServer(t, server.Config{}))
	p.send(protocol.OptionReq, "nope")
	p.expectText("\x00RES\x00\x00\x00\x13\x00\x00\x00\x35UNKNOWN_OPTION\x00Server does not recognize given option")
}

func TestOversizedPacketIsSkipped(t *testing.T) {
	addr := startServer(t, server.Config{MaxPacketSize: 1024})
	p := dial(t, addr)
	p.write(rawPacket("\x00REQ", uint32(protocol.EchoReq), strings.Repeat("z", 2000)))
	p.expect(protocol.Error, "ARGUMENT_TOO_LARGE", "Packet of 2000 bytes exceeds the maximum packet size of 1024")
	p.send(protocol.EchoReq, strings.Repeat("y", 1024))
	p.expect(protocol.EchoRes, strings.Repeat("y", 1024))
}

func TestBadMagicClosesOnlyThatConnection(t *testing.T) {
	addr := startServer(t, server.Config{})
	bystander := dial(t, addr)
	bystander.send(protocol.CanDo, "f")

	p := dial(t, addr)
	p.write(rawPacket("\x00XYZ", 1, ""))
	p.expect(protocol.Error, "INVALID_MAGIC", "Invalid packet magic")
	p.expectClosed()

	bystander.sync()
	if got := statusOf(bystander, "f"); got != "f\t0\t0\t1" {
		t.Fatalf("status of f after another connection's garbage: %q", got)
	}
}

func TestGarbageDoesNotDisturbOtherConnections(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, worker := dial(t, addr), dial(t, addr)
	worker.send(protocol.CanDo, "f")
	client.send(protocol.SubmitJob, "f", "", "payload")
	client.expect(protocol.JobCreated, "H:test:1")

	for _, junk := range []string{
		"\x00REQ\x00\x00\x00\x07\xff\xff\xff\xff",      // 4 GiB declared
		"\x00REQ\x00\x00\x00\x00\x00\x00\x00\x00",      // type 0
		strings.Repeat("a", 9000) + "\n",               // an overlong admin line
		"one two three four five six\n",                // too many tokens
		"\x00REQ\x00\x00\x00\x07\x00\x00\x00\x02ab",    // SUBMIT_JOB without NULs
		"\x00RES\x00\x00\x00\x10\x00\x00\x00\x00",      // response magic
		"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a", // bad magic, closes
	} {
		g := dial(t, addr)
		g.write([]byte(junk))
	}
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "f", "payload")
	worker.send(protocol.WorkComplete, "H:test:1", "done")
	client.expect(protocol.WorkComplete, "H:test:1", "done")
}

func TestAdminLineErrors(t *testing.T) {
	p := dial(t, startServer(t, server.Config{}))
	p.line(strings.Repeat("a", 9000))
	p.expectText("ERR LINE_TOO_LONG Admin+line+exceeds+8192+bytes\r\n")
	p.line("a b c d e f")
	p.expectText("ERR TOO_MANY_ARGUMENTS An+admin+command+takes+at+most+5+space-separated+words\r\n")
	p.line("version")
	p.expectText("OK " + server.Version + "\n")
}

func TestMaxQueueFull(t *testing.T) {
	p := dial(t, startServer(t, server.Config{}))
	p.line("create function mq")
	p.expectText("OK\r\n")
	p.line("maxqueue mq 1")
	p.expectText("OK\r\n")
	p.send(protocol.SubmitJobBG, "mq", "a", "")
	p.expect(protocol.JobCreated, "H:test:1")
	p.send(protocol.SubmitJobBG, "mq", "b", "")
	p.expect(protocol.Error, "QUEUE_ERROR", "Job queue is full")
	// A submission that coalesces into a queued job is not limited.
	p.send(protocol.SubmitJobBG, "mq", "a", "")
	p.expect(protocol.JobCreated, "H:test:1")
}
