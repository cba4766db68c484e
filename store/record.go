package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"gearmand/store/internal/fields"
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

// ValueSize is the length of r's encoded value: len(AppendValue(nil, r)).
func ValueSize(r *Record) int {
	var b [binary.MaxVarintLen64]byte
	n := 2 + len(binary.AppendUvarint(b[:0], uint64(r.Attempts))) +
		len(binary.AppendVarint(b[:0], unixNano(r.RunAt))) +
		len(binary.AppendVarint(b[:0], unixNano(r.Created)))
	for _, s := range [...]string{r.Handle, r.Function, r.Unique, r.Reducer} {
		n += len(binary.AppendUvarint(b[:0], uint64(len(s)))) + len(s)
	}
	return n + len(r.Data)
}

// DecodeRecord decodes a key and value written by AppendKey and
// AppendValue. The Record does not alias value. Errors wrap ErrCorrupt.
func DecodeRecord(key, value []byte) (Record, error) {
	seq, err := ParseKey(key)
	if err != nil {
		return Record{}, err
	}
	d := fields.NewReader(value)
	corrupt := func() error { return fmt.Errorf("%w: record %d: %v", ErrCorrupt, seq, d.Err()) }
	if v := d.Byte(); v != recordVersion {
		if d.Err() != nil {
			return Record{}, corrupt()
		}
		return Record{}, fmt.Errorf("%w: record %d has version %d, want %d", ErrCorrupt, seq, v, recordVersion)
	}
	r := Record{Seq: seq, Priority: Priority(d.Byte())}
	if r.Priority > 2 {
		return Record{}, fmt.Errorf("%w: record %d has priority %d", ErrCorrupt, seq, r.Priority)
	}
	attempts := d.Uvarint()
	if attempts > 1<<32-1 {
		return Record{}, fmt.Errorf("%w: record %d has %d attempts", ErrCorrupt, seq, attempts)
	}
	r.Attempts = uint32(attempts)
	r.RunAt = fromUnixNano(d.Varint())
	r.Created = fromUnixNano(d.Varint())
	r.Handle = d.String()
	r.Function = d.String()
	r.Unique = d.String()
	r.Reducer = d.String()
	if d.Err() != nil {
		return Record{}, corrupt()
	}
	r.Data = append([]byte(nil), d.Rest()...)
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
