package queuetable

import (
	"math"
	"strings"
	"testing"
	"time"

	"gearmand/store"
)

// TestFieldsRoundTrip: job_fields gives back every field it holds, with
// the stand-in flags, times at the epoch (not the zero time), and times
// whose nanoseconds overflow left to when_to_run.
func TestFieldsRoundTrip(t *testing.T) {
	epoch := time.Unix(0, 0)
	far := time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		r     store.Record
		flags byte
	}{
		{"empty", store.Record{Unique: "u", Function: "f"}, 0},
		{"all", store.Record{Handle: "H:h:1", Reducer: "red", Attempts: math.MaxUint32, Unique: "u", Function: "f",
			Created: time.Unix(1_700_000_000, 123), RunAt: time.Unix(-5, 7)}, 0},
		{"epoch times", store.Record{Unique: "u", Function: "f", Created: epoch, RunAt: epoch}, 0},
		{"unique stand-in", store.Record{Unique: "", Function: "f", Handle: "h"}, fieldUnique},
		{"function stand-in", store.Record{Unique: "u", Function: strings.Repeat("é", 300)}, fieldFunction},
		{"both stand-ins", store.Record{Unique: "a\x00b", Function: "\xff", Reducer: "r"}, fieldUnique | fieldFunction},
		{"beyond nanoseconds", store.Record{Unique: "u", Function: "f", Created: far, RunAt: far}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := appendFields(nil, &c.r, c.flags)
			got := store.Record{Unique: "column unique", Function: "column function"}
			if c.flags&fieldUnique == 0 {
				got.Unique = c.r.Unique
			}
			if c.flags&fieldFunction == 0 {
				got.Function = c.r.Function
			}
			flags, err := decodeFields(&got, b)
			if err != nil {
				t.Fatalf("decodeFields(%x): %v", b, err)
			}
			if flags&(fieldUnique|fieldFunction) != c.flags {
				t.Errorf("flags %#x, want %#x", flags, c.flags)
			}
			want := c.r
			if want.Created.Equal(far) {
				want.Created, want.RunAt = time.Time{}, time.Time{} // when_to_run keeps the second
			}
			if got.Unique != want.Unique || got.Function != want.Function || got.Handle != want.Handle ||
				got.Reducer != want.Reducer || got.Attempts != want.Attempts ||
				!got.Created.Equal(want.Created) || got.Created.IsZero() != want.Created.IsZero() ||
				!got.RunAt.Equal(want.RunAt) || got.RunAt.IsZero() != want.RunAt.IsZero() {
				t.Errorf("decoded %+v, want %+v", got, want)
			}
		})
	}
}

// TestFieldsDamaged: job_fields that is not what appendFields writes is
// an error, never a record with fields missing.
func TestFieldsDamaged(t *testing.T) {
	good := appendFields(nil, &store.Record{Handle: "H:h:1", Reducer: "r", Created: time.Unix(1, 0)}, fieldUnique)
	for name, b := range map[string][]byte{
		"empty":           {},
		"truncated":       good[:len(good)-1],
		"trailing bytes":  append(append([]byte(nil), good...), 0),
		"other version":   append([]byte{2}, good[1:]...),
		"unknown flag":    append([]byte{fieldsVersion, 0x80}, good[2:]...),
		"attempts > 2^32": {fieldsVersion, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0},
	} {
		if _, err := decodeFields(&store.Record{}, b); err == nil {
			t.Errorf("%s (%x): no error", name, b)
		}
	}
}
