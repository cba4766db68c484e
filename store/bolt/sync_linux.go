package bolt

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync makes f's data durable, and of its metadata only what reading
// the data back needs (its size), as bbolt does on Linux: fsync would also
// write the modification time, a second journal commit of the file system
// on every call.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
