package bolt

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"gearmand/store"
	"gearmand/store/storetest"
)

// testLog writes a store's log lines to the test's log.
type testLog struct{ tb testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func openAt(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(path, Logger(slog.New(slog.NewTextHandler(testLog{tb}, nil))))
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// checkpointNow writes everything journaled into the bbolt file, for a
// test that looks at or writes into the file itself.
func checkpointNow(tb testing.TB, s *Store) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flush(); err != nil {
		tb.Fatalf("checkpoint: %v", err)
	}
}

// corrupt overwrites the stored value of seq with bytes DecodeRecord
// rejects (an unknown version), straight through bbolt.
func corrupt(tb testing.TB, s *Store, seq uint64) {
	tb.Helper()
	checkpointNow(tb, s)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).Put(store.AppendKey(nil, seq), []byte{0xee, 0, 0})
	})
	if err != nil {
		tb.Fatalf("corrupting record %d: %v", seq, err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "jobs.db"))
	}, storetest.Reopen(func(t *testing.T, old store.Store) store.Store {
		return openAt(t, old.(*Store).Path())
	}), storetest.Corrupt(func(t *testing.T, s store.Store, seq uint64) {
		corrupt(t, s.(*Store), seq)
	}), storetest.Registered([]string{"bolt"}, func(t *testing.T) store.Options {
		return store.Options{Path: filepath.Join(t.TempDir(), "jobs.db")}
	}), storetest.Exclusive(func(t *testing.T, s store.Store) (store.Store, error) {
		return Open(s.(*Store).Path(), LockTimeout(100*time.Millisecond))
	}), storetest.ReplayChunk(replayChunkRecords))
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		return openAt(b, filepath.Join(b.TempDir(), "jobs.db"))
	})
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	openAt(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		t.Errorf("file mode %v, want at most 0600", perm)
	}
}

// The conformance suite checks the lock (storetest.Exclusive); this, what
// it says.
func TestLockedThroughRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	openAt(t, path)
	_, err := store.Open(context.Background(), "bolt", store.Options{Path: path})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("store.Open of a held file: %v, want ErrLocked", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "in use by another gearmand") {
		t.Errorf("store.Open of a held file: %q, want the file named and the reason", msg)
	}
}

func TestMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no", "such")
	path := filepath.Join(dir, "jobs.db")
	_, err := Open(path)
	if err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open in a missing directory: %v; want it to name the directory and wrap fs.ErrNotExist", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open created the directory (stat: %v)", err)
	}
}

func TestNotABoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not bolt "), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a text file: %v, want ErrCorrupt naming the file", err)
	}
}

func TestCorruptRecordSkippedAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	s := openAt(t, path)
	var b store.Batch
	for seq := uint64(1); seq <= 5; seq++ {
		b.Adds = append(b.Adds, storetest.Sample(seq))
	}
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	corrupt(t, s, 3)
	// A key that is not a Seq at all, after every record.
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte("\xffodd keys"), []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}

	type report struct {
		key string
		err error
	}
	var reports []report
	s.SetCorruptHandler(func(key string, err error) { reports = append(reports, report{key, err}) })
	var seqs []uint64
	err = s.Replay(context.Background(), func(r store.Record) error {
		seqs = append(seqs, r.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 4, 5}; !slices.Equal(seqs, want) {
		t.Errorf("replayed %v, want %v", seqs, want)
	}
	if len(reports) != 2 {
		t.Fatalf("reports %v, want 2", reports)
	}
	if r := reports[0]; r.key != "3 (key 0000000000000003)" || !errors.Is(r.err, store.ErrCorrupt) {
		t.Errorf("first report: key %q err %v", r.key, r.err)
	}
	if r := reports[1]; r.key != "ff6f6464206b657973" || !errors.Is(r.err, store.ErrCorrupt) {
		t.Errorf("second report: key %q err %v", r.key, r.err)
	}

	// Both are still in the file after Replay and after a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	err = s.db.View(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucket)
		if v := bk.Get(store.AppendKey(nil, 3)); !bytes.Equal(v, []byte{0xee, 0, 0}) {
			t.Errorf("record 3 after Replay: %x, want the corrupt bytes kept", v)
		}
		if bk.Get([]byte("\xffodd keys")) == nil {
			t.Error("the odd key is gone after Replay")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// With no handler, Replay skips silently.
	if n := count(t, s); n != 4 {
		t.Errorf("with no handler: %d records, want 4", n)
	}
}

func TestInterpretError(t *testing.T) {
	for _, c := range []struct {
		native error
		want   error
	}{
		{context.Canceled, context.Canceled},
		{store.ErrClosed, store.ErrClosed},
		{bbolt.ErrTimeout, store.ErrLocked},
		{bbolt.ErrDatabaseNotOpen, store.ErrClosed},
		{bbolt.ErrValueTooLarge, store.ErrTooLarge},
		{bbolt.ErrInvalid, store.ErrCorrupt},
		{bbolt.ErrChecksum, store.ErrCorrupt},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, store.ErrUnavailable},
	} {
		got := interpretError("jobs.db", c.native)
		if !errors.Is(got, c.want) || !errors.Is(got, c.native) {
			t.Errorf("interpretError(%v) = %v, want it to wrap %v and the native error", c.native, got, c.want)
		}
	}
	if interpretError("jobs.db", nil) != nil {
		t.Error("interpretError(nil) != nil")
	}
}

func count(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Replay(context.Background(), func(store.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// Adds in Seq order, checkpointed into the file over many transactions,
// leave the leaf pages nearly full rather than half full: checkpoints write
// fewer pages, and the file stays smaller.
func TestSequentialAddsFillPages(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "jobs.db"))
	seq := uint64(0)
	for range 100 {
		var b store.Batch
		for range 30 {
			seq++
			b.Adds = append(b.Adds, storetest.Sample(seq))
		}
		if err := s.Apply(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		checkpointNow(t, s)
	}
	var st bbolt.BucketStats
	s.db.View(func(tx *bbolt.Tx) error { st = tx.Bucket(bucket).Stats(); return nil })
	if fill := float64(st.LeafInuse) / float64(st.LeafAlloc); fill < 0.85 {
		t.Fatalf("leaf pages are %.0f%% full (%d pages for %d records), want at least 85%%", 100*fill, st.LeafPageN, st.KeyN)
	}
}
