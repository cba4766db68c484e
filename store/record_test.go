package store

import (
	"strings"
	"testing"
	"time"
)

// ValueSize is the length AppendValue writes, whatever the sizes of the
// varints and strings.
func TestValueSize(t *testing.T) {
	long := strings.Repeat("u", 300) // a two-byte length
	for name, r := range map[string]Record{
		"empty":           {},
		"every field":     {Seq: 1, Handle: "H:host:1", Function: "f", Unique: "u", Reducer: "r", Data: []byte("data\x00"), Priority: 2, Attempts: 3, RunAt: time.Unix(1e9, 5), Created: time.Unix(2e9, 7)},
		"large varints":   {Attempts: 1<<32 - 1, RunAt: time.Unix(0, 1<<62), Created: time.Unix(-1e9, 0)},
		"long strings":    {Handle: long, Function: long, Unique: long[:64], Reducer: long},
		"a megabyte data": {Data: make([]byte, 1<<20)},
	} {
		if got, want := ValueSize(&r), len(AppendValue(nil, &r)); got != want {
			t.Errorf("%s: ValueSize %d, AppendValue wrote %d", name, got, want)
		}
	}
}
