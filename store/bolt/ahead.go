package bolt

import (
	"os"

	"gearmand/store/internal/zeroahead"
)

// The file grows at its end: bbolt allocates new pages past its high-water
// mark, into room it made by extending the file with ftruncate, which
// leaves a hole. So each checkpoint keeps the room past the high-water
// mark written with zeros (see package zeroahead): commits that grow the
// file overwrite blocks, and the allocation is paid once per
// zeroAheadStep, in a write and fsync of its own.
const (
	// zeroAheadMin is the written room below which a checkpoint writes more.
	zeroAheadMin = 2 << 20
	// zeroAheadStep is how much it writes then (the file stays at most
	// this much larger than bbolt would make it).
	zeroAheadStep = 4 << 20
)

// zeroAhead writes zeros past the file's high-water mark. bbolt never reads
// a page there (no committed page points past the mark, and it writes such
// a page before the commit that points at it), so the zeros change nothing
// it sees; they only turn holes into written blocks. Callers must make sure
// no write transaction runs meanwhile: checkpoints hold writeMu around both.
type zeroAhead struct {
	f    *os.File // opened for writing only; nil when that failed
	room *zeroahead.Room
}

func newZeroAhead(path string) *zeroAhead {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return &zeroAhead{} // zeroing is an optimization; the store works without it
	}
	return &zeroAhead{f: f, room: zeroahead.New(f, 0, zeroAheadMin, zeroAheadStep)}
}

// extend makes sure at least zeroAheadMin bytes past mark are written, and
// durable, so that the next commit's fdatasync has no allocation to commit.
// It is best effort: an error (a full disk, say) only costs speed, and
// bbolt reports the same condition on its next commit.
func (z *zeroAhead) extend(mark int64) {
	if z.f == nil {
		return
	}
	if wrote, err := z.room.Extend(mark); wrote && err == nil {
		_ = z.f.Sync()
	}
}

func (z *zeroAhead) close() {
	if z.f != nil {
		z.f.Close()
	}
}
