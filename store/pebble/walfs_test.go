package pebble

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"gearmand/store"
	"gearmand/store/storetest"
)

// The newest write-ahead log is written, not preallocated, for at least
// walZeroMin bytes past its records, so commits do not write into
// unwritten extents.
func TestLogRoomIsWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	s := openAt(t, dir)
	for seq := uint64(1); seq <= 3; seq++ {
		r := store.Record{Seq: seq, Handle: "H:t", Function: "f", Data: []byte("x")}
		if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{r}}); err != nil {
			t.Fatal(err)
		}
	}
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no write-ahead log in %s: %v", dir, err)
	}
	newest := logs[len(logs)-1] // names are zero-padded numbers
	f, err := os.Open(newest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil {
		t.Skipf("SEEK_HOLE is not supported here: %v", err)
	}
	if hole < walZeroMin {
		t.Fatalf("%s is written up to %d only; want at least %d bytes of room past three small records", newest, hole, walZeroMin)
	}
}

// A process killed after its logs rotated leaves closed logs behind the
// newest, whose tail is zeros; every record it was told is durable comes
// back, with its data.
func TestKillAcrossLogs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	// 3 memtables' worth: the child rotates its log at least twice.
	acked := storetest.KillWhileWriting(t, "GEARMAND_PEBBLE_WRITE", dir, 3*memTableSize/storetest.KillRecordSize)
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	t.Logf("killed after %d records acknowledged; %d logs on disk", acked, len(logs))
	storetest.CheckAcked(t, openAt(t, dir), acked)
}
