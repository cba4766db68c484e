// Package fields reads the varint-framed fields of the embedded stores'
// encodings: a stored record's value (store/record.go) and a bolt journal
// frame (store/bolt).
package fields

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Reader reads fields from the front of a byte slice. The first fault
// sticks: every read after it returns the zero value, and Err reports it.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader of b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Err is the first fault, nil if there was none.
func (r *Reader) Err() error { return r.err }

// Rest returns what is left unread.
func (r *Reader) Rest() []byte { return r.b }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errors.New("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 { return readVarint(r, binary.Uvarint, "bad uvarint") }

// Varint reads a signed varint.
func (r *Reader) Varint() int64 { return readVarint(r, binary.Varint, "bad varint") }

func readVarint[T uint64 | int64](r *Reader, read func([]byte) (T, int), fault string) T {
	if r.err != nil {
		return 0
	}
	v, n := read(r.b)
	if n <= 0 {
		r.err = errors.New(fault)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count reads a uvarint counting items that take at least one byte each:
// a count larger than what is left is a fault.
func (r *Reader) Count() uint64 {
	n := r.Uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = fmt.Errorf("a count of %d with %d bytes left", n, len(r.b))
		return 0
	}
	return n
}

// Bytes reads the next n bytes, aliasing the Reader's slice (capped, so
// appending to them cannot overwrite what follows).
func (r *Reader) Bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("a field of %d bytes with %d left", n, len(r.b))
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

// String reads a uvarint length and that many bytes, copied.
func (r *Reader) String() string { return string(r.Bytes(r.Uvarint())) }
