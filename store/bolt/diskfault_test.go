package bolt

import (
	"testing"

	"gearmand/store"
	"gearmand/store/storetest/diskfault"
)

func openForDiskFault(path string) (store.Store, error) { return Open(path) }

// TestDiskFaultChild is the writer process of TestDiskFaults.
func TestDiskFaultChild(t *testing.T) { diskfault.Child(t, openForDiskFault) }

// TestDiskFaults: power cuts, a failed fsync, EIO and ENOSPC on writes and
// a stalled fsync under a writing store: every acknowledged record must
// survive the cut that follows.
func TestDiskFaults(t *testing.T) {
	diskfault.Run(t, "jobs.db", "TestDiskFaultChild", openForDiskFault)
}
