package pebble

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"gearmand/store"
	"gearmand/store/storetest"
)

// errNoSpace is what failingFS's log writes return while it is failing.
var errNoSpace = errors.New("no space left on device (injected)")

// failingFS is walFS whose write-ahead logs fail every Write and Sync
// while failing is set, as on a full disk.
type failingFS struct {
	vfs.FS
	failing *atomic.Bool
}

func (fs failingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs failingFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

func (fs failingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return failingFile{File: f, failing: fs.failing}, nil
}

type failingFile struct {
	vfs.File
	failing *atomic.Bool
}

func (f failingFile) Write(p []byte) (int, error) {
	if f.failing.Load() {
		return 0, errNoSpace
	}
	return f.File.Write(p)
}

func (f failingFile) Sync() error {
	if f.failing.Load() {
		return errNoSpace
	}
	return f.File.Sync()
}

func (f failingFile) SyncData() error { return f.Sync() }

// TestFatalCommitFailsTheStoreNotTheProcess: a commit whose log cannot be
// written reaches Pebble's Fatalf; the process goes on, that Apply fails
// with ErrUnavailable naming the cause, and once the log can be written
// again the next Apply reopens the database, with every acknowledged
// batch still there.
func TestFatalCommitFailsTheStoreNotTheProcess(t *testing.T) {
	var failing atomic.Bool
	var logs bytes.Buffer
	dir := t.TempDir() + "/db"
	s, err := Open(dir, Logger(slog.New(slog.NewTextHandler(&logs, nil))), func(c *config) {
		c.fs = failingFS{FS: newWALFS(), failing: &failing}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	apply := func(seq uint64) error {
		return s.Apply(ctx, store.Batch{Adds: []store.Record{storetest.Sample(seq)}})
	}
	if err := apply(1); err != nil {
		t.Fatalf("Apply(1): %v", err)
	}

	failing.Store(true)
	err = apply(2)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "fatal commit error") {
		t.Fatalf("Apply on a log that cannot be written: %v, want ErrUnavailable naming the fatal commit error", err)
	}
	t.Logf("failed Apply: %v", err)
	if err := apply(3); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Apply while the log still fails: %v, want ErrUnavailable (the reopen fails)", err)
	}
	if !strings.Contains(logs.String(), "could not commit a batch") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}

	failing.Store(false)
	if err := apply(4); err != nil {
		t.Fatalf("Apply once the log can be written again: %v, want the store reopened", err)
	}
	var seqs []uint64
	if err := s.Replay(ctx, func(r store.Record) error { seqs = append(seqs, r.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(seqs, 1) || !slices.Contains(seqs, 4) {
		t.Errorf("stored %v after the reopen, want 1 and 4 (2 and 3 were refused and may or may not be there)", seqs)
	}
	if !strings.Contains(logs.String(), "pebble reopened") {
		t.Errorf("the reopen was not logged:\n%s", logs.String())
	}
}

// TestFatalOutsideACommitExits: any other Fatalf logs one line saying why
// and exits with status 1.
func TestFatalOutsideACommitExits(t *testing.T) {
	var logs bytes.Buffer
	g := logger{slog.New(slog.NewTextHandler(&logs, nil))}
	type exited struct{ code int }
	defer func(old func(int)) { exit = old }(exit)
	exit = func(code int) { panic(exited{code}) }
	got := func() (r any) {
		defer func() { r = recover() }()
		g.Fatalf("MANIFEST sync failed: %v", errNoSpace)
		return nil
	}()
	if e, ok := got.(exited); !ok || e.code != 1 {
		t.Fatalf("Fatalf outside a commit: %v, want exit(1)", got)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "exiting with status 1") || !strings.Contains(logs.String(), "MANIFEST sync failed") {
		t.Errorf("log: %q, want one line naming the cause and the exit", logs.String())
	}
}

// TestBackgroundErrorsAreThinnedOut: a run of background errors is logged
// once, then at most once a second with the count left out.
func TestBackgroundErrorsAreThinnedOut(t *testing.T) {
	var logs bytes.Buffer
	var e errorThinner
	report := e.log(slog.New(slog.NewTextHandler(&logs, nil)))
	for range 1000 {
		report(errNoSpace)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Fatalf("1000 errors within a second logged %d lines, want 1:\n%s", n, logs.String())
	}
	e.mu.Lock()
	e.last = e.last.Add(-2 * time.Second)
	e.mu.Unlock()
	report(errNoSpace)
	if !strings.Contains(logs.String(), "like_errors_not_logged=999") {
		t.Errorf("the next line does not count the 999 left out:\n%s", logs.String())
	}
}
