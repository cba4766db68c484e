package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gearmand/protocol"
)

// Errors shared by Client and Worker.
var (
	// ErrClosed is returned by calls on a Client or Worker after Close, and
	// by calls that Close interrupted.
	ErrClosed = errors.New("gearman: connection closed")

	// ErrConnectionLost wraps the cause when the connection to the server
	// breaks (read or write error, EOF, protocol violation). Every caller
	// waiting on that connection gets it: errors.Is(err, ErrConnectionLost)
	// holds, and errors.Is/As also reach the cause.
	ErrConnectionLost = errors.New("gearman: connection lost")

	// ErrProtocol is the cause given with ErrConnectionLost when the server
	// sends something the protocol does not allow at that point, such as a
	// reply nobody asked for.
	ErrProtocol = errors.New("gearman: protocol violation")

	// ErrJobFailed is returned by Task.Wait and Client.Call when the job
	// ended with WORK_FAIL: the worker failed it, or threw an exception
	// while this client had not enabled the "exceptions" option, or the
	// server gave up retrying it.
	ErrJobFailed = errors.New("gearman: job failed")

	// ErrJobDone is returned by the worker-side Job's Send methods once its
	// handler has returned.
	ErrJobDone = errors.New("gearman: job already finished")
)

// ServerError is an ERROR packet from the server: Code is the libgearman
// return-code name without its GEARMAN_ prefix (e.g. "UNKNOWN_OPTION",
// "ARGUMENT_TOO_LARGE", "QUEUE_ERROR"), Text the human-readable reason.
// Use errors.As to get it.
type ServerError struct {
	Code string
	Text string
}

func (e *ServerError) Error() string {
	return "gearman: server error " + e.Code + ": " + e.Text
}

// Exception carries the data of a WORK_EXCEPTION. Both sides use it:
//
//   - a worker Handler returns an *Exception (possibly wrapped) to end its job
//     with WORK_EXCEPTION instead of WORK_FAIL;
//   - Task.Wait and Client.Call return an *Exception when the job ended with
//     WORK_EXCEPTION, which the server sends only to clients that enabled the
//     "exceptions" option (see Client.Option); others get ErrJobFailed.
type Exception struct {
	Data []byte
}

func (e *Exception) Error() string {
	return "gearman: job exception: " + string(e.Data)
}

// Limits enforced before sending, because gearmand 1.1.20 sends no reply at
// all to a GET_STATUS or GET_STATUS_UNIQUE whose argument is this long, which
// would leave a pipelined connection waiting forever.
const (
	maxHandle = 63
	maxUnique = 63
)

// checkField rejects a value that cannot travel as a NUL-separated field.
func checkField(what, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("gearman: %s %q contains a NUL byte", what, v)
	}
	return nil
}

// appendPacket appends one request packet to dst. Whether the fields are
// all NUL-terminated and followed by data, or the last field is
// unterminated, follows t's layout (protocol.Type.Layout); data must be nil
// for a type without a data blob.
func appendPacket(dst []byte, t protocol.Type, fields []string, data []byte) []byte {
	_, hasData := t.Layout()
	n := len(data)
	for _, f := range fields {
		n += len(f) + 1
	}
	if !hasData && len(fields) > 0 {
		n-- // the last field of a type without data is not terminated
	}
	dst = protocol.AppendHeader(dst, protocol.Req, t, n)
	for i, f := range fields {
		dst = append(dst, f...)
		if hasData || i < len(fields)-1 {
			dst = append(dst, 0)
		}
	}
	return append(dst, data...)
}

// parseUint32 reads a decimal number the way gearmand's atoi-based fields
// are meant: leading digits count, anything after them is ignored, and a
// value past the uint32 range saturates.
func parseUint32(b []byte) uint32 {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	v, err := strconv.ParseUint(string(b[:n]), 10, 32)
	if err != nil && n > 0 {
		return 1<<32 - 1
	}
	return uint32(v)
}

func formatUint32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
