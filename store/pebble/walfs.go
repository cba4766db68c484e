package pebble

import (
	"github.com/cockroachdb/pebble/v2/vfs"

	"gearmand/store/internal/zeroahead"
)

// Pebble preallocates each write-ahead log with fallocate, which on ext4
// leaves unwritten extents: the first write into each block then converts
// it, and the fdatasync that makes a commit durable has to commit that
// conversion too (see package zeroahead). In a 200,000-job run, past four
// log rotations, commits were still 22–28% faster with zeros than with
// fallocate. So the store runs Pebble on walFS: the default file system, except that a
// file Pebble asks to preallocate has the room past its end written with
// zeros instead, a step at a time.
//
// The zeros are past the last record, where a fallocated log reads as
// zeros too; what changes is that the file's size now covers them. Pebble
// reads a log's tail the same either way: a log other than the newest
// always ends with an EOF trailer (Pebble closes and syncs the old log
// before it creates the next), and a zeroed tail after the newest log's
// last record is the unclean end it tolerates after a crash.
const (
	walZeroMin  = 256 << 10
	walZeroStep = 1 << 20
)

// walFS is vfs.Default with zeroing in place of preallocation.
type walFS struct{ vfs.FS }

func newWALFS() vfs.FS { return walFS{vfs.Default} }

// Create opens a new file for writing.
func (fs walFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	return &walFile{File: f}, nil
}

// ReuseForWrite renames an old log for reuse; its written bytes count as
// room already.
func (fs walFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	return &walFile{File: f}, nil
}

// walFile counts what is written through Write, and once Pebble has asked
// to preallocate it, keeps the room past that end written with zeros.
// Pebble writes a log from one goroutine at a time, and only through Write.
type walFile struct {
	vfs.File
	end  int64           // bytes written through Write
	room *zeroahead.Room // nil until Preallocate
}

// Preallocate starts zeroing ahead of the end instead of fallocating the
// range asked for; the room it keeps is smaller than Pebble's
// preallocation, and grows with the log. An error only costs speed.
func (f *walFile) Preallocate(offset, length int64) error {
	if f.room == nil {
		fi, err := f.File.Stat()
		if err != nil {
			return err
		}
		f.room = zeroahead.New(f.File, fi.Size(), walZeroMin, walZeroStep)
	}
	_, err := f.room.Extend(f.end)
	return err
}

// Write appends p, then tops the zeroed room up.
func (f *walFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.end += int64(n)
	if err == nil && f.room != nil {
		_, _ = f.room.Extend(f.end)
	}
	return n, err
}
