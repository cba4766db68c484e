package faultfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// writeFile writes b to p through the mount and syncs it if sync is set.
func writeFile(t *testing.T, p string, b []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", dir, err)
	}
}

// cutAndMount cuts the power and mounts the durable state again.
func cutAndMount(t *testing.T, f *FS) {
	t.Helper()
	if err := f.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := f.Mount(); err != nil {
		t.Fatal(err)
	}
}

func readOrMissing(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPowerCutKeepsOnlyWhatWasSynced(t *testing.T) {
	f := Start(t)
	m := f.Dir()
	writeFile(t, filepath.Join(m, "synced"), []byte("one"), true)
	writeFile(t, filepath.Join(m, "data-unsynced"), []byte("two"), false)
	if err := os.Mkdir(filepath.Join(m, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(m, "sub", "inner"), []byte("three"), true)
	syncDir(t, filepath.Join(m, "sub"))
	syncDir(t, m)
	// After the directory syncs: an append not synced, a file whose entry
	// is not synced, a rename and an unlink not followed by a sync.
	a, err := os.OpenFile(filepath.Join(m, "synced"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte(" more"))
	a.Close()
	writeFile(t, filepath.Join(m, "entry-unsynced"), []byte("four"), true)
	if n, want := f.Unsynced(), int64(len("two")+len(" more")); n != want {
		t.Errorf("Unsynced() = %d before the cut, want %d (the unsynced file's data and the append)", n, want)
	}
	if err := os.Rename(filepath.Join(m, "sub", "inner"), filepath.Join(m, "sub", "renamed")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m, "data-unsynced")); err != nil {
		t.Fatal(err)
	}

	cutAndMount(t, f)
	for name, want := range map[string]string{
		"synced":         "one",
		"data-unsynced":  "",          // its entry was synced, its data never
		"entry-unsynced": "<missing>", // its data was synced, its entry never
		"sub/inner":      "three",
		"sub/renamed":    "<missing>",
	} {
		if got := readOrMissing(t, filepath.Join(m, name)); got != want {
			t.Errorf("after the cut, %s holds %q, want %q", name, got, want)
		}
	}

	// A truncation and rewrite, then a sync: the sync covers both.
	p := filepath.Join(m, "synced")
	writeFile(t, p, []byte("x"), false)
	g, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt([]byte("y"), 5); err != nil {
		t.Fatal(err)
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	g.Close()
	if got := readOrMissing(t, p); got != "x\x00\x00\x00\x00y" {
		t.Fatalf("before the cut the file holds %q", got)
	}
	cutAndMount(t, f)
	if got := readOrMissing(t, p); got != "x\x00\x00\x00\x00y" {
		t.Errorf("after a truncate, a write past the end and a sync, the cut left %q", got)
	}
}

// TestFailedFsyncLosesItsData checks the fsyncgate model: a failed fsync
// drops the changes it covered, a retried fsync succeeds without making
// them durable, and the cut loses them though reads showed them.
func TestFailedFsyncLosesItsData(t *testing.T) {
	f := Start(t)
	p := filepath.Join(f.Dir(), "file")
	writeFile(t, p, []byte("durable"), true)
	syncDir(t, f.Dir())

	rule := f.Inject(Fault{Op: OpFsync, Path: "file", Times: 1, Err: syscall.EIO})
	h, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.WriteAt([]byte("LOST"), 0)
	if err := h.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("the first fsync returned %v, want EIO", err)
	}
	if err := h.Sync(); err != nil {
		t.Fatalf("the retried fsync: %v", err)
	}
	if got := readOrMissing(t, p); got != "LOSTble" {
		t.Fatalf("before the cut the file reads %q, want the page cache's LOSTble", got)
	}
	h.Close()
	if n := f.Dropped(); n != int64(len("LOST")) {
		t.Errorf("Dropped() = %d, want %d", n, len("LOST"))
	}
	if rule.Fired() != 1 {
		t.Errorf("the rule fired %d times, want 1", rule.Fired())
	}
	cutAndMount(t, f)
	if got := readOrMissing(t, p); got != "durable" {
		t.Errorf("after the cut the file reads %q, want durable: a retried fsync must not have saved the data", got)
	}
}

func TestErrorsAndDelays(t *testing.T) {
	f := Start(t)
	p := filepath.Join(f.Dir(), "x.log")
	f.Inject(Fault{Op: OpWrite, Path: "*.log", After: 1, Times: 1, Err: syscall.ENOSPC})
	h, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Write([]byte("a")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	if _, err := h.Write([]byte("b")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second write: %v, want ENOSPC", err)
	}
	if _, err := h.Write([]byte("c")); err != nil {
		t.Fatalf("third write: %v", err)
	}
	if got := readOrMissing(t, p); got != "ac" {
		t.Errorf("file holds %q, want ac: the failed write must change nothing", got)
	}
	if o, err := os.Create(filepath.Join(f.Dir(), "other")); err != nil {
		t.Errorf("a create elsewhere: %v", err)
	} else {
		o.Close()
	}

	f.Inject(Fault{Op: OpCreate, Path: "full-*", Err: syscall.ENOSPC})
	if o, err := os.Create(filepath.Join(f.Dir(), "full-1")); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("create full-1: %v, want ENOSPC", err)
		o.Close()
	}

	stall := f.Inject(Fault{Op: OpFsync, Path: "x.log", Delay: 300 * time.Millisecond})
	start := time.Now()
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("a stalled fsync took %v, want at least 300ms", d)
	}
	stall.Remove()
	start = time.Now()
	h.Sync()
	if d := time.Since(start); d >= 300*time.Millisecond {
		t.Errorf("an fsync after the stall was removed took %v", d)
	}
}

// TestBoltThroughMount runs bbolt on the mount in a child process (a
// process must not fault on the mmap of a FUSE file that it serves
// itself: the FUSE server's goroutines may be stopped by its own garbage
// collector). bbolt reads through mmap and writes with pwrite and
// fdatasync; every committed key must survive a power cut, and a key
// written with NoSync must not.
func TestBoltThroughMount(t *testing.T) {
	f := Start(t)
	db := filepath.Join(f.Dir(), "bolt.db")
	out, err := helper(t, "bolt-write", db)
	if err != nil {
		t.Fatalf("bolt through the mount: %v\n%s", err, out)
	}
	committed, _ := strconv.Atoi(helperResult(out, "committed "))
	if committed != boltKeys {
		t.Fatalf("the writer committed %d keys, want %d:\n%s", committed, boltKeys, out)
	}
	cutAndMount(t, f)
	out, err = helper(t, "bolt-check", db)
	if err != nil {
		t.Fatalf("after the cut: %v\n%s", err, out)
	}
	if got := helperResult(out, "keys "); got != strconv.Itoa(boltKeys)+" unsynced false" {
		t.Errorf("after the cut the bolt file has %q, want every committed key and not the unsynced one", got)
	}
}

const boltKeys = 300

// helperResult returns the rest of the helper's output line that starts
// with prefix.
func helperResult(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return rest
		}
	}
	return ""
}

// helper runs this test binary as the helper process, in mode on arg.
func helper(t *testing.T, mode, arg string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "FAULTFS_HELPER="+mode, "FAULTFS_HELPER_ARG="+arg)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.String(), err
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		return buf.String(), errors.New("the helper hung for 60s")
	}
}

// TestHelperProcess is the child of TestBoltThroughMount.
func TestHelperProcess(t *testing.T) {
	mode, arg := os.Getenv("FAULTFS_HELPER"), os.Getenv("FAULTFS_HELPER_ARG")
	if mode == "" {
		t.Skip("only a helper process for other tests")
	}
	bucket := []byte("b")
	db, err := bbolt.Open(arg, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "bolt-write":
		// bbolt does not sync the directory after creating its file
		// (store/bolt does): without this the cut loses the whole file.
		d, err := os.Open(filepath.Dir(arg))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		d.Close()
		for i := range boltKeys {
			err := db.Update(func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists(bucket)
				if err != nil {
					return err
				}
				return b.Put([]byte(strconv.Itoa(i)), bytes.Repeat([]byte{'v'}, 500))
			})
			if err != nil {
				t.Fatal(err)
			}
			// Read it back through the mmap.
			db.View(func(tx *bbolt.Tx) error {
				if v := tx.Bucket(bucket).Get([]byte(strconv.Itoa(i))); len(v) != 500 {
					t.Fatalf("key %d read back %d bytes", i, len(v))
				}
				return nil
			})
		}
		db.NoSync = true
		db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put([]byte("unsynced"), []byte("x")) })
		os.Stdout.WriteString("committed " + strconv.Itoa(boltKeys) + "\n")
		os.Exit(0) // no Close: the last transaction stays unsynced
	case "bolt-check":
		n, unsynced := 0, false
		err := db.View(func(tx *bbolt.Tx) error {
			for e := range tx.Check() {
				return e
			}
			b := tx.Bucket(bucket)
			for i := range boltKeys {
				if len(b.Get([]byte(strconv.Itoa(i)))) == 500 {
					n++
				}
			}
			unsynced = b.Get([]byte("unsynced")) != nil
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		os.Stdout.WriteString("keys " + strconv.Itoa(n) + " unsynced " + strconv.FormatBool(unsynced) + "\n")
	}
}
