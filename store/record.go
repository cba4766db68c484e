package store

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The key/value encoding used by the embedded stores (bolt, pebble).
//
// Key: the Seq as 8 bytes big-endian, so byte order is replay order.
//
// Value, version 1:
//
//	+---------+----------+----------+---------+---------+
//	| version | priority | attempts | run_at  | created |
//	| 1 byte  | 1 byte   | uvarint  | varint  | varint  |
//	+---------+----------+----------+---------+---------+
//	| handle  | function | unique   | reducer | data... |
//	| uvarint length + bytes, four times        | rest   |
//	+-------------------------------------------+--------+
//
// run_at and created are Unix nanoseconds, 0 for the zero time. Data is the
// rest of the value, so it may hold any bytes.
const recordVersion = 1

// KeySize is the length of an encoded key.
const KeySize = 8

// AppendKey appends the key of seq to dst.
func AppendKey(dst []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(dst, seq) }

// ParseKey returns the Seq of an encoded key.
func ParseKey(k []byte) (uint64, error) {
	if len(k) != KeySize {
		return 0, fmt.Errorf("%w: key of %d bytes, want %d", ErrCorrupt, len(k), KeySize)
	}
	return binary.BigEndian.Uint64(k), nil
}

// AppendValue appends the encoded value of r to dst.
func AppendValue(dst []byte, r *Record) []byte {
	dst = append(dst, recordVersion, byte(r.Priority))
	dst = binary.AppendUvarint(dst, uint64(r.Attempts))
	dst = binary.AppendVarint(dst, unixNano(r.RunAt))
	dst = binary.AppendVarint(dst, unixNano(r.Created))
	for _, s := range [...]string{r.Handle, r.Function, r.Unique, r.Reducer} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return append(dst, r.Data...)
}

// DecodeRecord decodes a key and value written by AppendKey and
// AppendValue. The Record does not alias value. Errors wrap ErrCorrupt.
func DecodeRecord(key, value []byte) (Record, error) {
	seq, err := ParseKey(key)
	if err != nil {
		return Record{}, err
	}
	d := decoder{b: value}
	if v := d.byte(); v != recordVersion {
		if d.err != nil {
			return Record{}, d.corrupt(seq)
		}
		return Record{}, fmt.Errorf("%w: record %d has version %d, want %d", ErrCorrupt, seq, v, recordVersion)
	}
	r := Record{Seq: seq, Priority: Priority(d.byte())}
	if r.Priority > 2 {
		return Record{}, fmt.Errorf("%w: record %d has priority %d", ErrCorrupt, seq, r.Priority)
	}
	attempts := d.uvarint()
	if attempts > 1<<32-1 {
		return Record{}, fmt.Errorf("%w: record %d has %d attempts", ErrCorrupt, seq, attempts)
	}
	r.Attempts = uint32(attempts)
	r.RunAt = fromUnixNano(d.varint())
	r.Created = fromUnixNano(d.varint())
	r.Handle = d.string()
	r.Function = d.string()
	r.Unique = d.string()
	r.Reducer = d.string()
	if d.err != nil {
		return Record{}, d.corrupt(seq)
	}
	r.Data = append([]byte(nil), d.b...)
	return r, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// decoder reads fields from a value, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) corrupt(seq uint64) error {
	return fmt.Errorf("%w: record %d: %v", ErrCorrupt, seq, d.err)
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("field longer than the value")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s", why)
	}
}
