package faultfs

import (
	"os"
	"testing"

	"gearmand/internal/testdep"
)

// Start mounts a new FS over an empty backing directory, both in the
// test's temporary directory, and unmounts it when the test ends (after
// the cleanups registered later, such as killing the processes using it).
// Without root or /dev/fuse it skips the test, or fails it under CI=true.
func Start(tb testing.TB) *FS {
	tb.Helper()
	Need(tb)
	f := New(tb.TempDir(), tb.TempDir())
	if err := f.Mount(); err != nil {
		unavailable(tb, err.Error())
	}
	tb.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			tb.Errorf("faultfs: %v", err)
		}
	})
	return f
}

// Need ends the test as Start does when FUSE mounts cannot be made here.
func Need(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		unavailable(tb, "faultfs needs root to mount FUSE filesystems with mount(2)")
	}
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		unavailable(tb, "faultfs needs /dev/fuse: "+err.Error()+" (modprobe fuse, or run the container with --device /dev/fuse)")
	}
	dev.Close()
}

func unavailable(tb testing.TB, why string) {
	tb.Helper()
	if testdep.InCI() {
		tb.Fatalf("%s (CI=true, so this fails)", why)
	}
	tb.Skip(why)
}
