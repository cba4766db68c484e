package pebble

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"go.uber.org/goleak"

	"gearmand/store"
	"gearmand/store/storetest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("GEARMAND_PEBBLE_HOLD"); dir != "" {
		holdLock(dir)
		return
	}
	if dir := os.Getenv("GEARMAND_PEBBLE_WRITE"); dir != "" {
		storetest.WriteUntilKilled(func() (store.Store, error) { return Open(dir) })
		return
	}
	goleak.VerifyTestMain(m)
}

// holdLock is the child process of TestLockedByAnotherProcess: it opens
// dir, says so on stdout, and keeps it until its stdin closes.
func holdLock(dir string) {
	s, err := Open(dir)
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("open\n")
	_, _ = os.Stdin.Read(make([]byte, 1))
	s.Close()
	os.Exit(0)
}

func openAt(tb testing.TB, dir string) *Store {
	tb.Helper()
	s, err := Open(dir)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// corrupt overwrites the stored value of seq with bytes DecodeRecord
// rejects (an unknown version), straight through Pebble.
func corrupt(tb testing.TB, s *Store, seq uint64) {
	tb.Helper()
	if err := s.mu.db.Set(store.AppendKey(nil, seq), []byte{0xee, 0, 0}, pebbledb.Sync); err != nil {
		tb.Fatalf("corrupting record %d: %v", seq, err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "jobs"))
	}, storetest.Reopen(func(t *testing.T, old store.Store) store.Store {
		return openAt(t, old.(*Store).Dir())
	}), storetest.Corrupt(func(t *testing.T, s store.Store, seq uint64) {
		corrupt(t, s.(*Store), seq)
	}), storetest.Registered([]string{"pebble"}, func(t *testing.T) store.Options {
		return store.Options{Path: filepath.Join(t.TempDir(), "jobs")}
	}), storetest.Exclusive(func(t *testing.T, s store.Store) (store.Store, error) {
		return Open(s.(*Store).Dir())
	}), storetest.ReplayChunk(replayChunkRecords))
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		return openAt(b, filepath.Join(b.TempDir(), "jobs"))
	})
}

func TestDirectoryMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	openAt(t, dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o700 != 0 {
		t.Errorf("directory mode %v, want at most 0700", perm)
	}
}

func TestLockedInProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	first := openAt(t, dir)
	for _, path := range []string{dir, dir + "/", filepath.Join(dir, "..", "jobs")} {
		second, err := Open(path)
		if err == nil {
			second.Close()
			t.Fatalf("a second Open of %s succeeded", path)
		}
		if !errors.Is(err, store.ErrLocked) {
			t.Errorf("second Open of %s: %v, want an error wrapping store.ErrLocked", path, err)
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "in use by another gearmand") {
			t.Errorf("second Open: %q, want the directory named and the reason", msg)
		}
	}
	// Also through a symlink.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link); !errors.Is(err, store.ErrLocked) {
		t.Errorf("Open through a symlink: %v, want ErrLocked", err)
	}
	// The first store is unharmed, and once it is closed the directory opens.
	if err := first.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(1)}}); err != nil {
		t.Fatalf("Apply on the first store: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third := openAt(t, dir)
	if n := count(t, third); n != 1 {
		t.Errorf("after reopening: %d records, want 1", n)
	}
}

func TestLockedByAnotherProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GEARMAND_PEBBLE_HOLD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}()
	line := make([]byte, 64)
	n, _ := r.Read(line)
	out.Write(line[:n])
	r.Close()
	if out.String() != "open\n" {
		t.Fatalf("child said %q", out.String())
	}
	_, err = Open(dir)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open of a directory another process holds: %v, want ErrLocked naming it", err)
	}
	_, err = store.Open(context.Background(), "pebble", store.Options{Path: dir})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("store.Open of a held directory: %v, want ErrLocked", err)
	}
}

func TestMissingDirectory(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "no", "such")
	dir := filepath.Join(parent, "jobs")
	_, err := Open(dir)
	if err == nil {
		t.Fatal("Open under a missing directory succeeded")
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), parent) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open under a missing directory: %v; want it to name the directory and wrap fs.ErrNotExist", err)
	}
	if _, err := os.Stat(parent); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open created the parent directory (stat: %v)", err)
	}
}

func TestCorruptRecordSkippedAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	s := openAt(t, dir)
	var b store.Batch
	for seq := uint64(1); seq <= 5; seq++ {
		b.Adds = append(b.Adds, storetest.Sample(seq))
	}
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	corrupt(t, s, 3)
	// A key that is not a Seq at all, after every record.
	if err := s.mu.db.Set([]byte("\xffodd keys"), []byte("x"), pebbledb.Sync); err != nil {
		t.Fatal(err)
	}

	type report struct {
		key string
		err error
	}
	var reports []report
	s.SetCorruptHandler(func(key string, err error) { reports = append(reports, report{key, err}) })
	var seqs []uint64
	err := s.Replay(context.Background(), func(r store.Record) error {
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

	// Both are still stored after Replay and after a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, dir)
	v, closer, err := s.mu.db.Get(store.AppendKey(nil, 3))
	if err != nil || !bytes.Equal(v, []byte{0xee, 0, 0}) {
		t.Errorf("record 3 after Replay: %x, %v; want the corrupt bytes kept", v, err)
	}
	if closer != nil {
		closer.Close()
	}
	if _, closer, err := s.mu.db.Get([]byte("\xffodd keys")); err != nil {
		t.Errorf("the odd key after Replay: %v", err)
	} else {
		closer.Close()
	}
	// With no handler, Replay skips silently.
	if n := count(t, s); n != 4 {
		t.Errorf("with no handler: %d records, want 4", n)
	}
}

// TestCloseDuringReplay: fn may close the store; Replay then stops with
// ErrClosed instead of Pebble panicking on a closed DB.
func TestCloseDuringReplay(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "jobs"))
	var b store.Batch
	for seq := uint64(1); seq <= 2*replayChunkRecords; seq++ {
		b.Adds = append(b.Adds, storetest.Sample(seq))
	}
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	err := s.Replay(context.Background(), func(r store.Record) error {
		if r.Seq == 1 {
			return s.Close()
		}
		return nil
	})
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Replay after its fn closed the store: %v, want ErrClosed", err)
	}
}

func TestInterpretError(t *testing.T) {
	for _, c := range []struct {
		native error
		want   error
	}{
		{context.Canceled, context.Canceled},
		{store.ErrClosed, store.ErrClosed},
		{lockFailure{syscall.EAGAIN}, store.ErrLocked},
		{lockFailure{syscall.EACCES}, store.ErrLocked},
		{lockFailure{errHeldHere}, store.ErrLocked},
		{pebbledb.ErrClosed, store.ErrClosed},
		{pebbledb.ErrBatchTooLarge, store.ErrTooLarge},
		{pebbledb.ErrCorruption, store.ErrCorrupt},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, store.ErrUnavailable},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.EROFS}, store.ErrUnavailable},
	} {
		got := interpretError("jobs", c.native)
		if !errors.Is(got, c.want) || !errors.Is(got, c.native) {
			t.Errorf("interpretError(%v) = %v, want it to wrap %v and the native error", c.native, got, c.want)
		}
	}
	// Permission trouble opening the LOCK file is not "in use".
	perm := lockFailure{&fs.PathError{Op: "open", Path: "jobs/LOCK", Err: syscall.EACCES}}
	if got := interpretError("jobs", perm); errors.Is(got, store.ErrLocked) || !errors.Is(got, fs.ErrPermission) {
		t.Errorf("interpretError(%v) = %v, want a permission error, not ErrLocked", perm, got)
	}
	if interpretError("jobs", nil) != nil {
		t.Error("interpretError(nil) != nil")
	}
}

// TestQuietLogger: Pebble's routine lines stay below info level.
func TestQuietLogger(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := filepath.Join(t.TempDir(), "jobs")
	for range 2 { // the second open recovers the log of the first
		s, err := Open(dir, Logger(l))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(1)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("Pebble logged at info level or above:\n%s", buf.String())
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
