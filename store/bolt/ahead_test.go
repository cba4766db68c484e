package bolt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	bbolt "go.etcd.io/bbolt"

	"gearmand/store"
)

// After every checkpoint the file holds written blocks, not holes, for at least
// zeroAheadMin bytes past bbolt's high-water mark, however far a batch
// moved the mark; and the zeros change nothing bbolt reads back.
func TestRoomPastTheMarkIsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	seq := uint64(0)
	for _, batchBytes := range []int{100, 1 << 20, 5 << 20, 100} {
		var b store.Batch
		for n := 0; n < batchBytes; n += 64 << 10 {
			seq++
			b.Adds = append(b.Adds, store.Record{Seq: seq, Handle: "H:t", Function: "f", Data: bytes.Repeat([]byte{byte(seq)}, min(64<<10, batchBytes))})
		}
		if err := s.Apply(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		checkpointNow(t, s)
		var mark int64
		s.db.View(func(tx *bbolt.Tx) error { mark = tx.Size(); return nil })
		hole, err := unix.Seek(int(f.Fd()), mark, unix.SEEK_HOLE)
		if err != nil {
			t.Skipf("SEEK_HOLE is not supported here: %v", err)
		}
		if hole < mark+zeroAheadMin {
			t.Errorf("after a batch of %d bytes: a hole at %d, %d bytes past the mark %d; want at least %d written", batchBytes, hole, hole-mark, mark, zeroAheadMin)
		}
	}

	got := 0
	err = s.Replay(context.Background(), func(r store.Record) error {
		got++
		if len(r.Data) == 0 || r.Data[0] != byte(r.Seq) {
			t.Errorf("record %d came back with the wrong data", r.Seq)
		}
		return nil
	})
	if err != nil || got != int(seq) {
		t.Fatalf("Replay: %d records, %v; want %d", got, err, seq)
	}
}
