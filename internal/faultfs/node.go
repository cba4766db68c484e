package faultfs

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node that checks the injected faults and records what
// its operations change for the durable state.
type node struct {
	fs.LoopbackNode
	ffs *FS
}

var (
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeWritever       = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
)

// rel is the node's path relative to the root ("" for the root).
func (n *node) rel() string { return n.Path(n.Root()) }

// backingPath is the node's path in the backing directory.
func (n *node) backingPath() string { return filepath.Join(n.ffs.backing, n.rel()) }

// key is the node's identity, as listDir computes it for entries.
func (n *node) key() fileKey {
	if n.IsRoot() {
		n.ffs.mu.Lock()
		defer n.ffs.mu.Unlock()
		return n.ffs.mu.rootKey
	}
	a := n.StableAttr()
	return fileKey{ino: a.Ino, gen: a.Gen}
}

func (n *node) state() *fileState { return n.ffs.fileFor(n.key()) }

func (n *node) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := n.ffs.check(ctx, OpRead, n.rel()); errno != 0 {
		return nil, errno
	}
	r, ok := fh.(fs.FileReader)
	if !ok {
		return nil, syscall.EBADF
	}
	return r.Read(ctx, dest, off)
}

func (n *node) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := n.ffs.check(ctx, OpWrite, n.rel()); errno != 0 {
		return 0, errno
	}
	w, ok := fh.(fs.FileWriter)
	if !ok {
		return 0, syscall.EBADF
	}
	st := n.state()
	st.io.RLock()
	defer st.io.RUnlock()
	st.recordWrite(off, int64(len(data)))
	return w.Write(ctx, data, off)
}

func (n *node) Writev(ctx context.Context, fh fs.FileHandle, data [][]byte, off int64) (uint32, syscall.Errno) {
	return n.Write(ctx, fh, slices.Concat(data...), off)
}

// Fsync syncs a file, or a directory when its handle does not (see
// dirHandle.Fsyncdir).
func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	if n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return n.syncDir(ctx)
	}
	st := n.state()
	if errno, lie := n.ffs.checkLie(ctx, OpFsync, n.rel()); errno != 0 || lie {
		dropped := st.dropDirty()
		n.ffs.mu.Lock()
		n.ffs.mu.dropped += dropped
		n.ffs.mu.Unlock()
		return errno
	}
	// Read the backing file through a descriptor of our own: the
	// caller's handle may be write-only. Through the handle only when the
	// path no longer names this file (unlinked or replaced while open).
	f, err := os.Open(n.backingPath())
	if err == nil {
		defer f.Close()
		var sys syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &sys) == nil && sys.Ino == n.StableAttr().Ino {
			return st.sync(osFile{f})
		}
	}
	if fh == nil {
		return syscall.EIO
	}
	return st.sync(handleFile{ctx, fh})
}

func (n *node) syncDir(ctx context.Context) syscall.Errno {
	if errno, lie := n.ffs.checkLie(ctx, OpFsync, n.rel()); errno != 0 || lie {
		return errno
	}
	return n.ffs.syncDir(n.key(), n.backingPath())
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	size, ok := in.GetSize()
	if !ok {
		return n.LoopbackNode.Setattr(ctx, fh, in, out)
	}
	if errno := n.ffs.check(ctx, OpTruncate, n.rel()); errno != 0 {
		return errno
	}
	st := n.state()
	st.io.RLock()
	defer st.io.RUnlock()
	st.recordTruncate(int64(size))
	return n.LoopbackNode.Setattr(ctx, fh, in, out)
}

func (n *node) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	if errno := n.ffs.check(ctx, OpAllocate, n.rel()); errno != 0 {
		return errno
	}
	a, ok := fh.(fs.FileAllocater)
	if !ok {
		return syscall.EBADF
	}
	st := n.state()
	st.io.RLock()
	defer st.io.RUnlock()
	st.recordWrite(int64(off), int64(size))
	return a.Allocate(ctx, off, size, mode)
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.ffs.check(ctx, OpOpen, n.rel()); errno != 0 {
		return nil, 0, errno
	}
	if flags&syscall.O_TRUNC == 0 {
		return noPassthrough(n.LoopbackNode.Open(ctx, flags))
	}
	if errno := n.ffs.check(ctx, OpTruncate, n.rel()); errno != 0 {
		return nil, 0, errno
	}
	st := n.state()
	st.io.RLock()
	defer st.io.RUnlock()
	st.recordTruncate(0)
	return noPassthrough(n.LoopbackNode.Open(ctx, flags))
}

// fileHandle is go-fuse's loopback file without FUSE passthrough: with
// passthrough the kernel would read and write the backing file itself, and
// the FS would see neither the writes nor the faults' calls.
type fileHandle struct{ *fs.LoopbackFile }

// PassthroughFd declines passthrough.
func (fileHandle) PassthroughFd() (int, bool) { return -1, false }

func noPassthrough(fh fs.FileHandle, fuseFlags uint32, errno syscall.Errno) (fs.FileHandle, uint32, syscall.Errno) {
	if lf, ok := fh.(*fs.LoopbackFile); ok {
		fh = fileHandle{lf}
	}
	return fh, fuseFlags, errno
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.ffs.check(ctx, OpCreate, path.Join(n.rel(), name)); errno != 0 {
		return nil, nil, 0, errno
	}
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	fh, fuseFlags, errno = noPassthrough(fh, fuseFlags, errno)
	if errno == 0 && flags&syscall.O_TRUNC != 0 {
		a := ch.StableAttr()
		st := n.ffs.fileFor(fileKey{ino: a.Ino, gen: a.Gen})
		st.io.RLock()
		st.recordTruncate(0)
		st.io.RUnlock()
	}
	return ch, fh, fuseFlags, errno
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.ffs.check(ctx, OpCreate, path.Join(n.rel(), name)); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Mkdir(ctx, name, mode, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.ffs.check(ctx, OpCreate, path.Join(n.rel(), name)); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.ffs.check(ctx, OpCreate, path.Join(n.rel(), name)); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Symlink(ctx, target, name, out)
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := n.ffs.check(ctx, OpCreate, path.Join(n.rel(), name)); errno != 0 {
		return nil, errno
	}
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := n.ffs.check(ctx, OpRename, path.Join(n.rel(), name)); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := n.ffs.check(ctx, OpUnlink, path.Join(n.rel(), name)); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := n.ffs.check(ctx, OpUnlink, path.Join(n.rel(), name)); errno != 0 {
		return errno
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

// CopyFileRange is refused, so that the kernel falls back to reads and
// writes, which the FS records.
func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Tmpfile (O_TMPFILE) is refused: a file linked in later would escape the
// create check. Programs fall back to named temporary files.
func (n *node) Tmpfile(context.Context, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

// OpendirHandle wraps go-fuse's directory stream so that a directory fsync
// reaches the FS.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{inner: fh, n: n}, fuseFlags, 0
}

// dirHandle is an open directory.
type dirHandle struct {
	inner fs.FileHandle
	n     *node
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
)

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if r, ok := d.inner.(fs.FileReaddirenter); ok {
		return r.Readdirent(ctx)
	}
	return nil, syscall.ENOTSUP
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.inner.(fs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.inner.(fs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.n.syncDir(ctx)
}

// backingFile is what a sync reads from: an open handle of the file, or
// the backing file opened by path.
type backingFile interface {
	size() (int64, syscall.Errno)
	readAt(p []byte, off int64) syscall.Errno
}

// handleFile reads through a go-fuse file handle, which works for a file
// that was unlinked while open too.
type handleFile struct {
	ctx context.Context
	fh  fs.FileHandle
}

func (h handleFile) size() (int64, syscall.Errno) {
	g, ok := h.fh.(fs.FileGetattrer)
	if !ok {
		return 0, syscall.EBADF
	}
	var out fuse.AttrOut
	if errno := g.Getattr(h.ctx, &out); errno != 0 {
		return 0, errno
	}
	return int64(out.Size), 0
}

func (h handleFile) readAt(p []byte, off int64) syscall.Errno {
	r, ok := h.fh.(fs.FileReader)
	if !ok {
		return syscall.EBADF
	}
	for len(p) > 0 {
		res, errno := r.Read(h.ctx, p, off)
		if errno != 0 {
			return errno
		}
		b, status := res.Bytes(p)
		res.Done()
		if !status.Ok() {
			return syscall.Errno(status)
		}
		if len(b) == 0 {
			return syscall.EIO // shorter than its size said
		}
		copy(p, b)
		p, off = p[len(b):], off+int64(len(b))
	}
	return 0
}

type osFile struct{ f *os.File }

func (o osFile) size() (int64, syscall.Errno) {
	fi, err := o.f.Stat()
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	return fi.Size(), 0
}

func (o osFile) readAt(p []byte, off int64) syscall.Errno {
	_, err := o.f.ReadAt(p, off)
	return fs.ToErrno(err)
}
