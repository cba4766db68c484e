//go:build !linux

package bolt

import "os"

// fdatasync makes f's data durable; without fdatasync, through fsync.
func fdatasync(f *os.File) error { return f.Sync() }
