package pebble

import (
	"testing"

	"gearmand/store"
	"gearmand/store/storetest/diskfault"
)

func openForDiskFault(dir string) (store.Store, error) { return Open(dir) }

// TestDiskFaultChild is the writer process of TestDiskFaults.
func TestDiskFaultChild(t *testing.T) { diskfault.Child(t, openForDiskFault) }

// TestDiskFaults: power cuts, a failed fsync, EIO and ENOSPC on writes and
// a stalled fsync under a writing store: every acknowledged record must
// survive the cut that follows.
func TestDiskFaults(t *testing.T) {
	diskfault.Run(t, "jobs", "TestDiskFaultChild", openForDiskFault)
}
