package protocol

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// HeaderSize is the length of a binary packet header:
//
//	+--------+--------+--------+--------------------+
//	| magic  |  type  | length | payload ...        |
//	| 4 B    | 4 B BE | 4 B BE | length bytes       |
//	+--------+--------+--------+--------------------+
//
// The payload is a sequence of fields separated by single NUL bytes, with no
// NUL after the last one (see Type.Layout for how each type splits it).
const HeaderSize = 12

// Magic tells a request (sent to the server) from a response (sent by it).
type Magic uint8

const (
	// Req is "\x00REQ": anything sent to the server.
	Req Magic = iota + 1
	// Res is "\x00RES": anything sent by the server.
	Res
)

var (
	magicReq = [4]byte{0, 'R', 'E', 'Q'}
	magicRes = [4]byte{0, 'R', 'E', 'S'}
)

func (m Magic) bytes() [4]byte {
	if m == Res {
		return magicRes
	}
	return magicReq
}

// String returns "REQ" or "RES".
func (m Magic) String() string {
	switch m {
	case Req:
		return "REQ"
	case Res:
		return "RES"
	}
	return "Magic(" + strconv.Itoa(int(m)) + ")"
}

// Type is a binary packet type number.
type Type uint32

// Packet types, numbered as on the wire.
const (
	CanDo                     Type = 1
	CantDo                    Type = 2
	ResetAbilities            Type = 3
	PreSleep                  Type = 4
	Noop                      Type = 6
	SubmitJob                 Type = 7
	JobCreated                Type = 8
	GrabJob                   Type = 9
	NoJob                     Type = 10
	JobAssign                 Type = 11
	WorkStatus                Type = 12
	WorkComplete              Type = 13
	WorkFail                  Type = 14
	GetStatus                 Type = 15
	EchoReq                   Type = 16
	EchoRes                   Type = 17
	SubmitJobBG               Type = 18
	Error                     Type = 19
	StatusRes                 Type = 20
	SubmitJobHigh             Type = 21
	SetClientID               Type = 22
	CanDoTimeout              Type = 23
	AllYours                  Type = 24
	WorkException             Type = 25
	OptionReq                 Type = 26
	OptionRes                 Type = 27
	WorkData                  Type = 28
	WorkWarning               Type = 29
	GrabJobUniq               Type = 30
	JobAssignUniq             Type = 31
	SubmitJobHighBG           Type = 32
	SubmitJobLow              Type = 33
	SubmitJobLowBG            Type = 34
	SubmitJobSched            Type = 35
	SubmitJobEpoch            Type = 36
	SubmitReduceJob           Type = 37
	SubmitReduceJobBackground Type = 38
	GrabJobAll                Type = 39
	JobAssignAll              Type = 40
	GetStatusUnique           Type = 41
	StatusResUnique           Type = 42

	// MaxType is the highest type number defined.
	MaxType = StatusResUnique
)

// layout says how a type's payload splits into arguments: Fields fields each
// terminated by a NUL, then (when Data is set) an opaque blob that is the rest
// of the payload. Types without Data but with Fields > 0 end in one
// unterminated field, so they have Fields-1 terminated ones.
type layout struct {
	name     string
	fields   int
	data     bool
	response bool // sent by the server only; a request carrying it is an error
}

var layouts = [MaxType + 1]layout{
	CanDo:                     {"CAN_DO", 1, false, false},
	CantDo:                    {"CANT_DO", 1, false, false},
	ResetAbilities:            {"RESET_ABILITIES", 0, false, false},
	PreSleep:                  {"PRE_SLEEP", 0, false, false},
	5:                         {"UNUSED", 0, false, true},
	Noop:                      {"NOOP", 0, false, true},
	SubmitJob:                 {"SUBMIT_JOB", 2, true, false},
	JobCreated:                {"JOB_CREATED", 1, false, true},
	GrabJob:                   {"GRAB_JOB", 0, false, false},
	NoJob:                     {"NO_JOB", 0, false, true},
	JobAssign:                 {"JOB_ASSIGN", 2, true, true},
	WorkStatus:                {"WORK_STATUS", 3, false, false},
	WorkComplete:              {"WORK_COMPLETE", 1, true, false},
	WorkFail:                  {"WORK_FAIL", 1, false, false},
	GetStatus:                 {"GET_STATUS", 1, false, false},
	EchoReq:                   {"ECHO_REQ", 0, true, false},
	EchoRes:                   {"ECHO_RES", 0, true, true},
	SubmitJobBG:               {"SUBMIT_JOB_BG", 2, true, false},
	Error:                     {"ERROR", 2, false, true},
	StatusRes:                 {"STATUS_RES", 5, false, true},
	SubmitJobHigh:             {"SUBMIT_JOB_HIGH", 2, true, false},
	SetClientID:               {"SET_CLIENT_ID", 1, false, false},
	CanDoTimeout:              {"CAN_DO_TIMEOUT", 2, false, false},
	AllYours:                  {"ALL_YOURS", 0, false, false},
	WorkException:             {"WORK_EXCEPTION", 1, true, false},
	OptionReq:                 {"OPTION_REQ", 1, false, false},
	OptionRes:                 {"OPTION_RES", 1, false, true},
	WorkData:                  {"WORK_DATA", 1, true, false},
	WorkWarning:               {"WORK_WARNING", 1, true, false},
	GrabJobUniq:               {"GRAB_JOB_UNIQ", 0, false, false},
	JobAssignUniq:             {"JOB_ASSIGN_UNIQ", 3, true, true},
	SubmitJobHighBG:           {"SUBMIT_JOB_HIGH_BG", 2, true, false},
	SubmitJobLow:              {"SUBMIT_JOB_LOW", 2, true, false},
	SubmitJobLowBG:            {"SUBMIT_JOB_LOW_BG", 2, true, false},
	SubmitJobSched:            {"SUBMIT_JOB_SCHED", 7, true, false},
	SubmitJobEpoch:            {"SUBMIT_JOB_EPOCH", 3, true, false},
	SubmitReduceJob:           {"SUBMIT_REDUCE_JOB", 4, true, false},
	SubmitReduceJobBackground: {"SUBMIT_REDUCE_JOB_BACKGROUND", 4, true, false},
	GrabJobAll:                {"GRAB_JOB_ALL", 0, false, false},
	JobAssignAll:              {"JOB_ASSIGN_ALL", 4, true, true},
	GetStatusUnique:           {"GET_STATUS_UNIQUE", 1, false, false},
	StatusResUnique:           {"STATUS_RES_UNIQUE", 6, false, true},
}

// Valid reports whether t is a defined packet type number (1 to 42; 5 is
// defined but unused).
func (t Type) Valid() bool { return t >= CanDo && t <= MaxType }

// String returns the protocol name of t, such as "SUBMIT_JOB_BG".
func (t Type) String() string {
	if t.Valid() {
		return layouts[t].name
	}
	return "Type(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// Response reports whether t is only ever sent by the server (NOOP,
// JOB_CREATED, ...). Type 5 counts as one: no request may carry it.
func (t Type) Response() bool { return t.Valid() && layouts[t].response }

// Layout returns how t's payload splits: the number of arguments and
// whether the last of them is an opaque data blob that may hold NULs. For a
// type with data, Args has fields+1 elements; without data, Args has fields
// elements, the last one unterminated.
func (t Type) Layout() (fields int, data bool) {
	if !t.Valid() {
		return 0, false
	}
	l := layouts[t]
	return l.fields, l.data
}

// dataOmittable reports whether t is one of the work result packets whose
// data, when empty, some workers send without the NUL before it (see Split).
func (t Type) dataOmittable() bool {
	switch t {
	case WorkComplete, WorkData, WorkWarning, WorkException:
		return true
	}
	return false
}

// NumArgs is the number of elements Split returns for t.
func (t Type) NumArgs() int {
	f, d := t.Layout()
	if d {
		return f + 1
	}
	return f
}

// Packet is one decoded binary packet. Args alias the buffer they were
// decoded from unless stated otherwise by the API that returned it.
type Packet struct {
	Magic Magic
	Type  Type
	Args  [][]byte
}

// Arg returns argument i, or nil when the packet has fewer arguments.
func (p *Packet) Arg(i int) []byte {
	if i < len(p.Args) {
		return p.Args[i]
	}
	return nil
}

// Split cuts payload into t's arguments, appending them to args[:0] and
// returning the result. It reports false when the payload holds fewer NUL
// terminators than t requires; the search never looks past the payload.
// For a type with no arguments the payload is ignored.
//
// One exception: a WORK_COMPLETE, WORK_DATA, WORK_WARNING or WORK_EXCEPTION
// that is the job handle alone, with no NUL after it, splits into that
// handle and empty data. Perl's Gearman::Worker (2.004.015, Debian's
// libgearman-client-perl) sends those packets so whenever the job's result
// is false in Perl ("" or "0"); C gearmand closes such a connection and the
// job never completes.
func Split(t Type, payload []byte, args [][]byte) ([][]byte, bool) {
	args = args[:0]
	fields, data := t.Layout()
	terminated := fields
	if !data && fields > 0 {
		terminated = fields - 1
	}
	rest := payload
	for i := 0; i < terminated; i++ {
		n := bytes.IndexByte(rest, 0)
		if n < 0 && i == terminated-1 && data && t.dataOmittable() {
			end := len(rest)
			return append(args, rest[:end:end], rest[end:end:end]), true
		}
		if n < 0 {
			return args, false
		}
		args = append(args, rest[:n:n])
		rest = rest[n+1:]
	}
	if data || fields > 0 {
		args = append(args, rest)
	}
	return args, true
}

// AppendPacket appends one binary packet with the given magic, type and
// arguments, joined by single NULs, to dst and returns the extended slice.
// It does not check the arguments against t's layout.
func AppendPacket(dst []byte, m Magic, t Type, args ...[]byte) []byte {
	n := max(len(args)-1, 0) // the NULs between arguments
	for _, a := range args {
		n += len(a)
	}
	dst = AppendHeader(dst, m, t, n)
	for i, a := range args {
		if i > 0 {
			dst = append(dst, 0)
		}
		dst = append(dst, a...)
	}
	return dst
}

// AppendPacketStrings is AppendPacket for string arguments.
//
// It repeats AppendPacket's body rather than sharing a generic one: once
// inlined into a caller in another package, a call to the generic body made
// the variadic argument slice escape, one heap allocation per packet.
func AppendPacketStrings(dst []byte, m Magic, t Type, args ...string) []byte {
	n := max(len(args)-1, 0)
	for _, a := range args {
		n += len(a)
	}
	dst = AppendHeader(dst, m, t, n)
	for i, a := range args {
		if i > 0 {
			dst = append(dst, 0)
		}
		dst = append(dst, a...)
	}
	return dst
}

// AppendPacketHead appends the start of a packet whose arguments are args
// followed by a last one of dataLen bytes that the caller sends after it:
// the header (declaring the whole payload), args, and the NUL after each.
// Appending the data to the result gives what AppendPacketStrings would.
func AppendPacketHead(dst []byte, m Magic, t Type, dataLen int, args ...string) []byte {
	n := dataLen + len(args)
	for _, a := range args {
		n += len(a)
	}
	dst = AppendHeader(dst, m, t, n)
	for _, a := range args {
		dst = append(dst, a...)
		dst = append(dst, 0)
	}
	return dst
}

// AppendHeader appends a 12-byte header declaring a payload of n bytes.
func AppendHeader(dst []byte, m Magic, t Type, n int) []byte {
	mb := m.bytes()
	dst = append(dst, mb[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(t))
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// AppendError appends an ERROR response carrying code and text.
func AppendError(dst []byte, code, text string) []byte {
	dst = AppendHeader(dst, Res, Error, len(code)+1+len(text))
	dst = append(dst, code...)
	dst = append(dst, 0)
	return append(dst, text...)
}
