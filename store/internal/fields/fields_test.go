package fields

import (
	"encoding/binary"
	"testing"
)

func TestReader(t *testing.T) {
	b := []byte{7}
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -5)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	b = append(b, 2, 'x', 'y', 'z')
	r := NewReader(b)
	if got := r.Byte(); got != 7 {
		t.Errorf("Byte = %d", got)
	}
	if got := r.Uvarint(); got != 300 {
		t.Errorf("Uvarint = %d", got)
	}
	if got := r.Varint(); got != -5 {
		t.Errorf("Varint = %d", got)
	}
	if got := r.String(); got != "abc" {
		t.Errorf("String = %q", got)
	}
	if got := r.Count(); got != 2 {
		t.Errorf("Count = %d", got)
	}
	got := r.Bytes(2)
	if string(got) != "xy" || cap(got) != 2 {
		t.Errorf("Bytes = %q, cap %d; want \"xy\", cap 2", got, cap(got))
	}
	if r.Err() != nil || string(r.Rest()) != "z" {
		t.Fatalf("Err %v, Rest %q", r.Err(), r.Rest())
	}
}

// The first fault sticks: later reads return zero values and Err keeps
// the first.
func TestFaultsStick(t *testing.T) {
	for name, read := range map[string]func(r *Reader){
		"Byte past the end":  func(r *Reader) { r.Bytes(3); r.Byte() },
		"a bad uvarint":      func(r *Reader) { r.Bytes(2); r.Uvarint() },
		"a bad varint":       func(r *Reader) { r.Bytes(2); r.Varint() },
		"a count too large":  func(r *Reader) { r.Bytes(1); r.Count() },
		"Bytes past the end": func(r *Reader) { r.Bytes(4) },
		"a string too long":  func(r *Reader) { r.Bytes(1); _ = r.String() },
	} {
		// 0xff alone is a varint cut short; 5 is more than what follows it.
		r := NewReader([]byte{0x01, 0x05, 0xff})
		read(&r)
		first := r.Err()
		if first == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if r.Byte() != 0 || r.Uvarint() != 0 || r.String() != "" || r.Bytes(0) != nil || r.Err() != first {
			t.Errorf("%s: reads after the fault did not return zero values or changed the error", name)
		}
	}
}
