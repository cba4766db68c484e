package bolt

import "os"

// The file grows at its end: bbolt allocates new pages past its high-water
// mark, into room it made by extending the file with ftruncate, which on
// ext4 and most file systems leaves a hole. A commit that writes into a
// hole makes the file system allocate blocks, and the fdatasync that ends
// the commit then has to commit that allocation too; measured here, it
// takes about twice as long as one over blocks already written. So Apply
// keeps the room past the high-water mark written with zeros: commits that
// grow the file overwrite blocks, and the allocation is paid once per
// zeroAheadStep, in a write of its own.
const (
	// zeroAheadMin is the written room below which Apply writes more.
	zeroAheadMin = 2 << 20
	// zeroAheadStep is how much it writes then (the file stays at most
	// this much larger than bbolt would make it).
	zeroAheadStep = 4 << 20
)

// zeroAhead writes zeros past the file's high-water mark. bbolt never reads
// a page there (no committed page points past the mark, and it writes such
// a page before the commit that points at it), so the zeros change nothing
// it sees; they only turn holes into written blocks. Callers must make sure
// no write transaction runs meanwhile: Apply holds applyMu around both.
type zeroAhead struct {
	f    *os.File // opened for writing only; nil when that failed
	upTo int64    // the file is known to be written up to here
	zero []byte   // zeroAheadStep zeros, allocated on first use
}

func newZeroAhead(path string) *zeroAhead {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		f = nil // zeroing is an optimization; the store works without it
	}
	return &zeroAhead{f: f}
}

// extend makes sure at least zeroAheadMin bytes past mark are written. It
// is best effort: an error (a full disk, say) only costs speed, and bbolt
// reports the same condition on its next commit.
func (z *zeroAhead) extend(mark int64) {
	if z.f == nil || z.upTo-mark >= zeroAheadMin {
		return
	}
	if z.zero == nil {
		z.zero = make([]byte, zeroAheadStep)
	}
	from := max(z.upTo, mark)
	if _, err := z.f.WriteAt(z.zero, from); err != nil {
		return
	}
	if err := z.f.Sync(); err != nil {
		return
	}
	z.upTo = from + zeroAheadStep
}

func (z *zeroAhead) close() {
	if z.f != nil {
		z.f.Close()
	}
}
