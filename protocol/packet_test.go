package protocol_test

import (
	"bytes"
	"testing"

	"gearmand/protocol"
)

// The layout of every type as PROTOCOL.md §1.4 lists it: terminated fields
// plus data blob, or fields with the last one unterminated.
var wantLayouts = map[protocol.Type]struct {
	name     string
	fields   int
	data     bool
	response bool
}{
	protocol.CanDo:                     {"CAN_DO", 1, false, false},
	protocol.CantDo:                    {"CANT_DO", 1, false, false},
	protocol.ResetAbilities:            {"RESET_ABILITIES", 0, false, false},
	protocol.PreSleep:                  {"PRE_SLEEP", 0, false, false},
	5:                                  {"UNUSED", 0, false, true},
	protocol.Noop:                      {"NOOP", 0, false, true},
	protocol.SubmitJob:                 {"SUBMIT_JOB", 2, true, false},
	protocol.JobCreated:                {"JOB_CREATED", 1, false, true},
	protocol.GrabJob:                   {"GRAB_JOB", 0, false, false},
	protocol.NoJob:                     {"NO_JOB", 0, false, true},
	protocol.JobAssign:                 {"JOB_ASSIGN", 2, true, true},
	protocol.WorkStatus:                {"WORK_STATUS", 3, false, false},
	protocol.WorkComplete:              {"WORK_COMPLETE", 1, true, false},
	protocol.WorkFail:                  {"WORK_FAIL", 1, false, false},
	protocol.GetStatus:                 {"GET_STATUS", 1, false, false},
	protocol.EchoReq:                   {"ECHO_REQ", 0, true, false},
	protocol.EchoRes:                   {"ECHO_RES", 0, true, true},
	protocol.SubmitJobBG:               {"SUBMIT_JOB_BG", 2, true, false},
	protocol.Error:                     {"ERROR", 2, false, true},
	protocol.StatusRes:                 {"STATUS_RES", 5, false, true},
	protocol.SubmitJobHigh:             {"SUBMIT_JOB_HIGH", 2, true, false},
	protocol.SetClientID:               {"SET_CLIENT_ID", 1, false, false},
	protocol.CanDoTimeout:              {"CAN_DO_TIMEOUT", 2, false, false},
	protocol.AllYours:                  {"ALL_YOURS", 0, false, false},
	protocol.WorkException:             {"WORK_EXCEPTION", 1, true, false},
	protocol.OptionReq:                 {"OPTION_REQ", 1, false, false},
	protocol.OptionRes:                 {"OPTION_RES", 1, false, true},
	protocol.WorkData:                  {"WORK_DATA", 1, true, false},
	protocol.WorkWarning:               {"WORK_WARNING", 1, true, false},
	protocol.GrabJobUniq:               {"GRAB_JOB_UNIQ", 0, false, false},
	protocol.JobAssignUniq:             {"JOB_ASSIGN_UNIQ", 3, true, true},
	protocol.SubmitJobHighBG:           {"SUBMIT_JOB_HIGH_BG", 2, true, false},
	protocol.SubmitJobLow:              {"SUBMIT_JOB_LOW", 2, true, false},
	protocol.SubmitJobLowBG:            {"SUBMIT_JOB_LOW_BG", 2, true, false},
	protocol.SubmitJobSched:            {"SUBMIT_JOB_SCHED", 7, true, false},
	protocol.SubmitJobEpoch:            {"SUBMIT_JOB_EPOCH", 3, true, false},
	protocol.SubmitReduceJob:           {"SUBMIT_REDUCE_JOB", 4, true, false},
	protocol.SubmitReduceJobBackground: {"SUBMIT_REDUCE_JOB_BACKGROUND", 4, true, false},
	protocol.GrabJobAll:                {"GRAB_JOB_ALL", 0, false, false},
	protocol.JobAssignAll:              {"JOB_ASSIGN_ALL", 4, true, true},
	protocol.GetStatusUnique:           {"GET_STATUS_UNIQUE", 1, false, false},
	protocol.StatusResUnique:           {"STATUS_RES_UNIQUE", 6, false, true},
}

func TestTypeTable(t *testing.T) {
	if protocol.MaxType != 42 {
		t.Errorf("MaxType = %d, want 42", protocol.MaxType)
	}
	for typ := protocol.Type(1); typ <= protocol.MaxType; typ++ {
		want, ok := wantLayouts[typ]
		if !ok {
			t.Errorf("type %d missing from the expected table", typ)
			continue
		}
		if !typ.Valid() {
			t.Errorf("%d.Valid() = false", typ)
		}
		if got := typ.String(); got != want.name {
			t.Errorf("%d.String() = %q, want %q", typ, got, want.name)
		}
		fields, data := typ.Layout()
		if fields != want.fields || data != want.data {
			t.Errorf("%v.Layout() = %d, %v; want %d, %v", typ, fields, data, want.fields, want.data)
		}
		wantArgs := want.fields
		if want.data {
			wantArgs++
		}
		if got := typ.NumArgs(); got != wantArgs {
			t.Errorf("%v.NumArgs() = %d, want %d", typ, got, wantArgs)
		}
		if got := typ.Response(); got != want.response {
			t.Errorf("%v.Response() = %v, want %v", typ, got, want.response)
		}
	}
	for _, typ := range []protocol.Type{0, 43, 1000, 0xFFFFFFFF} {
		if typ.Valid() || typ.Response() {
			t.Errorf("type %d: Valid %v, Response %v; want both false", uint32(typ), typ.Valid(), typ.Response())
		}
		if f, d := typ.Layout(); f != 0 || d {
			t.Errorf("type %d: Layout() = %d, %v; want 0, false", uint32(typ), f, d)
		}
		if n := typ.NumArgs(); n != 0 {
			t.Errorf("type %d: NumArgs() = %d, want 0", uint32(typ), n)
		}
	}
	for typ, want := range map[protocol.Type]string{0: "Type(0)", 43: "Type(43)", 0xFFFFFFFF: "Type(4294967295)"} {
		if got := typ.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestMagicString(t *testing.T) {
	for m, want := range map[protocol.Magic]string{protocol.Req: "REQ", protocol.Res: "RES", 0: "Magic(0)", 9: "Magic(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Magic(%d).String() = %q, want %q", uint8(m), got, want)
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name    string
		typ     protocol.Type
		payload string
		want    []string // nil with ok false
	}{
		{"SUBMIT_JOB empty unique", protocol.SubmitJob, "fn\x00\x00data", []string{"fn", "", "data"}},
		{"SUBMIT_JOB data with NULs", protocol.SubmitJob, "fn\x00u\x00\x00a\x00\x00", []string{"fn", "u", "\x00a\x00\x00"}},
		{"SUBMIT_JOB all empty", protocol.SubmitJob, "\x00\x00", []string{"", "", ""}},
		{"SUBMIT_JOB one NUL", protocol.SubmitJob, "fn\x00data", nil},
		{"SUBMIT_JOB no NUL", protocol.SubmitJob, "fn", nil},
		{"SUBMIT_JOB empty", protocol.SubmitJob, "", nil},
		{"CAN_DO keeps an embedded NUL", protocol.CanDo, "fn\x00", []string{"fn\x00"}},
		{"CAN_DO keeps NULs anywhere", protocol.CanDo, "\x00f\x00n", []string{"\x00f\x00n"}},
		{"CAN_DO empty", protocol.CanDo, "", []string{""}},
		{"WORK_COMPLETE handle and data", protocol.WorkComplete, "H:vm:1\x00r\x00", []string{"H:vm:1", "r\x00"}},
		{"WORK_COMPLETE handle alone is empty data", protocol.WorkComplete, "H:vm:1", []string{"H:vm:1", ""}},
		{"WORK_DATA handle alone is empty data", protocol.WorkData, "H:vm:1", []string{"H:vm:1", ""}},
		{"WORK_WARNING handle alone is empty data", protocol.WorkWarning, "H:vm:1", []string{"H:vm:1", ""}},
		{"WORK_EXCEPTION handle alone is empty data", protocol.WorkException, "H:vm:1", []string{"H:vm:1", ""}},
		{"WORK_COMPLETE empty payload is empty handle and data", protocol.WorkComplete, "", []string{"", ""}},
		{"JOB_ASSIGN needs its NULs", protocol.JobAssign, "h\x00fn", nil},
		{"WORK_FAIL whole payload", protocol.WorkFail, "H:vm:1\x00", []string{"H:vm:1\x00"}},
		{"WORK_STATUS", protocol.WorkStatus, "H:vm:1\x003\x0010", []string{"H:vm:1", "3", "10"}},
		{"WORK_STATUS last unterminated keeps NULs", protocol.WorkStatus, "h\x001\x002\x003", []string{"h", "1", "2\x003"}},
		{"WORK_STATUS two fields", protocol.WorkStatus, "h\x001", nil},
		{"CAN_DO_TIMEOUT", protocol.CanDoTimeout, "fn\x001000", []string{"fn", "1000"}},
		{"ERROR", protocol.Error, "UNKNOWN_OPTION\x00Server does not recognize given option", []string{"UNKNOWN_OPTION", "Server does not recognize given option"}},
		{"STATUS_RES", protocol.StatusRes, "h\x001\x000\x002\x005", []string{"h", "1", "0", "2", "5"}},
		{"STATUS_RES_UNIQUE", protocol.StatusResUnique, "u\x001\x001\x002\x005\x003", []string{"u", "1", "1", "2", "5", "3"}},
		{"STATUS_RES_UNIQUE five fields", protocol.StatusResUnique, "u\x001\x001\x002\x005", nil},
		{"ECHO_REQ whole payload", protocol.EchoReq, "\x00a\x00", []string{"\x00a\x00"}},
		{"ECHO_REQ empty", protocol.EchoReq, "", []string{""}},
		{"JOB_ASSIGN_UNIQ", protocol.JobAssignUniq, "h\x00fn\x00u\x00d", []string{"h", "fn", "u", "d"}},
		{"SUBMIT_JOB_EPOCH", protocol.SubmitJobEpoch, "fn\x00u\x001700000000\x00d", []string{"fn", "u", "1700000000", "d"}},
		{"SUBMIT_REDUCE_JOB four fields and data", protocol.SubmitReduceJob, "fn\x00u\x00red\x00\x00data", []string{"fn", "u", "red", "", "data"}},
		{"SUBMIT_REDUCE_JOB three NULs", protocol.SubmitReduceJob, "fn\x00u\x00red\x00data", nil},
		{"JOB_ASSIGN_ALL", protocol.JobAssignAll, "h\x00fn\x00u\x00red\x00d", []string{"h", "fn", "u", "red", "d"}},
		{"SUBMIT_JOB_SCHED seven fields and data", protocol.SubmitJobSched, "fn\x00u\x001\x002\x003\x004\x005\x00data",
			[]string{"fn", "u", "1", "2", "3", "4", "5", "data"}},
		{"SUBMIT_JOB_SCHED six NULs", protocol.SubmitJobSched, "fn\x00u\x001\x002\x003\x004\x00data", nil},
		{"GRAB_JOB ignores its payload", protocol.GrabJob, "abcd", []string{}},
		{"NOOP ignores NULs", protocol.Noop, "\x00\x00", []string{}},
		{"unknown type has no args", 43, "a\x00b", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := protocol.Split(tt.typ, []byte(tt.payload), nil)
			if want := tt.want != nil; ok != want {
				t.Fatalf("Split ok = %v, want %v (args %q)", ok, want, got)
			}
			if !ok {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Split = %q, want %q", got, tt.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], []byte(tt.want[i])) {
					t.Errorf("arg %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSplitReusesArgsAndProtectsThePayload(t *testing.T) {
	payload := []byte("fn\x00u\x00data")
	scratch := make([][]byte, 5, 8)
	args, ok := protocol.Split(protocol.SubmitJob, payload, scratch)
	if !ok || len(args) != 3 {
		t.Fatalf("Split = %q, %v", args, ok)
	}
	if &args[0] != &scratch[0] {
		t.Error("Split did not reuse the args slice it was given")
	}
	// Appending to a terminated field must not overwrite the bytes after it.
	_ = append(args[0], 'X')
	_ = append(args[1], 'Y')
	if string(payload) != "fn\x00u\x00data" {
		t.Errorf("appending to args changed the payload to %q", payload)
	}
}

func TestAppendPacket(t *testing.T) {
	got := protocol.AppendPacket([]byte("prefix"), protocol.Req, protocol.SubmitJob, []byte("fn"), nil, []byte("d\x00a"))
	want := []byte("prefix\x00REQ\x00\x00\x00\x07\x00\x00\x00\x07fn\x00\x00d\x00a")
	if !bytes.Equal(got, want) {
		t.Errorf("AppendPacket = %q, want %q", got, want)
	}
	strs := protocol.AppendPacketStrings([]byte("prefix"), protocol.Req, protocol.SubmitJob, "fn", "", "d\x00a")
	if !bytes.Equal(strs, want) {
		t.Errorf("AppendPacketStrings = %q, want %q", strs, want)
	}

	got = protocol.AppendPacket(nil, protocol.Res, protocol.Noop)
	if want := []byte("\x00RES\x00\x00\x00\x06\x00\x00\x00\x00"); !bytes.Equal(got, want) {
		t.Errorf("AppendPacket(NOOP) = %q, want %q", got, want)
	}
	// A single empty argument is an empty payload, like none.
	got = protocol.AppendPacket(nil, protocol.Req, protocol.EchoReq, nil)
	if want := []byte("\x00REQ\x00\x00\x00\x10\x00\x00\x00\x00"); !bytes.Equal(got, want) {
		t.Errorf("AppendPacket(ECHO_REQ, empty) = %q, want %q", got, want)
	}
}

func TestAppendHeader(t *testing.T) {
	got := protocol.AppendHeader(nil, protocol.Res, protocol.StatusResUnique, 0x01020304)
	want := []byte("\x00RES\x00\x00\x00\x2a\x01\x02\x03\x04")
	if !bytes.Equal(got, want) || len(got) != protocol.HeaderSize {
		t.Errorf("AppendHeader = %q, want %q", got, want)
	}
}

func TestAppendError(t *testing.T) {
	// The example of PROTOCOL.md §1.6. Its length there reads 0x26 (38, the
	// text alone); the payload, code and NUL included, is 0x35 (53) bytes.
	want := append([]byte{0x00, 0x52, 0x45, 0x53, 0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x35},
		"UNKNOWN_OPTION\x00Server does not recognize given option"...)
	got := protocol.AppendError([]byte("x"), "UNKNOWN_OPTION", "Server does not recognize given option")
	if !bytes.Equal(got, append([]byte("x"), want...)) {
		t.Errorf("AppendError = %q, want %q", got, want)
	}
}

func TestPacketArg(t *testing.T) {
	p := protocol.Packet{Args: [][]byte{[]byte("a"), {}}}
	if string(p.Arg(0)) != "a" || p.Arg(1) == nil || len(p.Arg(1)) != 0 || p.Arg(2) != nil {
		t.Errorf("Arg(0, 1, 2) = %q, %q, %q; want \"a\", empty, nil", p.Arg(0), p.Arg(1), p.Arg(2))
	}
}

// Servers build every reply with these into a reused buffer; the variadic
// argument list must not be moved to the heap on each call.
func TestAppendPacketDoesNotAllocate(t *testing.T) {
	dst := make([]byte, 0, 256)
	fn, data := []byte("fn"), []byte("data")
	if n := testing.AllocsPerRun(100, func() {
		dst = protocol.AppendPacket(dst[:0], protocol.Req, protocol.SubmitJob, fn, nil, data)
	}); n != 0 {
		t.Errorf("AppendPacket: %v allocations per call, want 0", n)
	}
	handle, fnName := "H:vm:1", "reverse"
	if n := testing.AllocsPerRun(100, func() {
		dst = protocol.AppendPacketStrings(dst[:0], protocol.Res, protocol.JobAssign, handle, fnName, "")
	}); n != 0 {
		t.Errorf("AppendPacketStrings: %v allocations per call, want 0", n)
	}
}
