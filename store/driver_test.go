package store

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestIsDiskFault(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("checkpoint: %w", &fs.PathError{Op: "fsync", Path: "x", Err: syscall.EIO}), true},
		{syscall.EDQUOT, true},
		{syscall.EROFS, true},
		{&fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, false},
		{errors.New("no space left on device"), false}, // words are not an errno
		{nil, false},
	} {
		if got := IsDiskFault(c.err); got != c.want {
			t.Errorf("IsDiskFault(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
