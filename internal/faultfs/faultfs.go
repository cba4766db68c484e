package faultfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// FS is a fault-injecting mirror of a backing directory, mounted at a
// mount point. Its methods are safe for concurrent use.
type FS struct {
	backing    string
	mountpoint string

	mu struct {
		sync.Mutex
		server  *fuse.Server
		files   map[fileKey]*fileState
		dirs    map[fileKey]map[string]dirEntry // durable entries of each directory
		rootKey fileKey
		faults  []*Rule
		dropped int64 // bytes failed syncs dropped since the mount
	}
}

// fileKey is the identity of a backing file or directory: its inode number
// and birth time, computed as go-fuse's loopback computes a node's
// StableAttr (Ino, Gen) on a backing tree within one device.
type fileKey struct{ ino, gen uint64 }

// dirEntry is one durable directory entry.
type dirEntry struct {
	key    fileKey
	mode   uint32 // type and permission bits
	target string // of a symbolic link
}

// fileState is what the FS knows of one regular file's durability.
type fileState struct {
	// io orders writes against syncs: writes hold it shared while they
	// record their range and write, a sync holds it exclusively while it
	// copies the dirty ranges, so no write falls between the two.
	io sync.RWMutex

	mu struct {
		sync.Mutex
		durable []byte   // content as of the last successful sync
		dirty   []extent // ranges changed since
		minSize int64    // smallest size since the last sync; -1: no truncation
	}
}

type extent struct{ off, n int64 }

// New returns an FS mirroring backing at mountpoint, both existing
// directories on one filesystem. It does not mount: see Mount.
func New(backing, mountpoint string) *FS {
	return &FS{backing: backing, mountpoint: mountpoint}
}

// Dir returns the mount point: the directory the programs under test use.
func (f *FS) Dir() string { return f.mountpoint }

// Backing returns the backing directory.
func (f *FS) Backing() string { return f.backing }

// Mount takes the backing directory's present state as durable and serves
// it at the mount point. Injected faults are kept across mounts.
func (f *FS) Mount() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.server != nil {
		return errors.New("faultfs: already mounted")
	}
	if err := f.snapshotLocked(); err != nil {
		return err
	}
	f.mu.dropped = 0
	var st syscall.Stat_t
	if err := syscall.Stat(f.backing, &st); err != nil {
		return err
	}
	root := &fs.LoopbackRoot{Path: f.backing, Dev: uint64(st.Dev)}
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, ffs: f}
	}
	rootNode := &node{LoopbackNode: fs.LoopbackNode{RootData: root}, ffs: f}
	root.RootNode = rootNode
	server, err := fs.Mount(f.mountpoint, rootNode, &fs.Options{
		MountOptions: fuse.MountOptions{
			// No fusermount here: mount(2) directly, which needs root.
			DirectMountStrict: true,
			FsName:            f.backing,
			Name:              "faultfs",
			// Kernel-side POSIX and flock locks: the programs under test
			// lock their stores, and no other machine shares the mount.
			EnableLocks: false,
		},
	})
	if err != nil {
		return fmt.Errorf("faultfs: mount %s on %s: %w", f.backing, f.mountpoint, err)
	}
	f.mu.server = server
	return nil
}

// Unmount unmounts the FS and leaves the backing directory as it is: a
// clean shutdown, after which everything written counts as durable. It
// does nothing when the FS is not mounted.
func (f *FS) Unmount() error {
	f.mu.Lock()
	server := f.mu.server
	f.mu.server = nil
	f.mu.Unlock()
	if server == nil {
		return nil
	}
	if err := server.Unmount(); err != nil {
		// A process that still has files open keeps the mount busy;
		// detach it so that the test can go on, and say so.
		if derr := syscall.Unmount(f.mountpoint, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("faultfs: unmount %s: %v; lazy unmount: %w", f.mountpoint, err, derr)
		}
		return fmt.Errorf("faultfs: unmount %s: %w (detached instead)", f.mountpoint, err)
	}
	return nil
}

// Cut is a power cut: it unmounts the FS and rewrites the backing
// directory to the durable state, losing every write, truncation and
// directory change that no successful sync covered. The processes using
// the mount must have ended (SIGKILL them first). Mount serves the result.
func (f *FS) Cut() error {
	if err := f.Unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old, err := os.ReadDir(f.backing)
	if err != nil {
		return err
	}
	for _, e := range old {
		if err := os.RemoveAll(filepath.Join(f.backing, e.Name())); err != nil {
			return err
		}
	}
	return f.buildLocked(f.backing, f.mu.rootKey)
}

// Unsynced returns how many bytes were written, truncated or allocated
// since the last successful sync of their files: roughly what a Cut now
// would lose (ranges written twice count twice).
func (f *FS) Unsynced() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, st := range f.mu.files {
		st.mu.Lock()
		for _, e := range st.mu.dirty {
			n += e.n
		}
		st.mu.Unlock()
	}
	return n
}

// buildLocked recreates the durable entries of directory key in dir.
func (f *FS) buildLocked(dir string, key fileKey) error {
	for name, e := range f.mu.dirs[key] {
		p := filepath.Join(dir, name)
		perm := os.FileMode(e.mode & 0o7777)
		var err error
		switch e.mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			if err = os.Mkdir(p, perm); err == nil {
				err = f.buildLocked(p, e.key)
			}
		case syscall.S_IFREG:
			var content []byte
			if st := f.mu.files[e.key]; st != nil {
				st.mu.Lock()
				content = st.mu.durable
				st.mu.Unlock()
			}
			err = os.WriteFile(p, content, perm)
		case syscall.S_IFLNK:
			err = os.Symlink(e.target, p)
		default:
			continue // sockets, fifos, devices: not kept
		}
		if err != nil {
			return fmt.Errorf("faultfs: restoring %s: %w", p, err)
		}
		if e.mode&syscall.S_IFMT != syscall.S_IFLNK {
			if err := os.Chmod(p, perm); err != nil {
				return err
			}
		}
	}
	return nil
}

// snapshotLocked forgets the durable state and takes the backing tree as
// it is now.
func (f *FS) snapshotLocked() error {
	f.mu.files = make(map[fileKey]*fileState)
	f.mu.dirs = make(map[fileKey]map[string]dirEntry)
	key, _, err := statKey(f.backing)
	if err != nil {
		return err
	}
	f.mu.rootKey = key
	return f.snapshotDirLocked(f.backing, key)
}

func (f *FS) snapshotDirLocked(dir string, key fileKey) error {
	entries, err := listDir(dir)
	if err != nil {
		return err
	}
	f.mu.dirs[key] = entries
	for name, e := range entries {
		p := filepath.Join(dir, name)
		switch e.mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			if err := f.snapshotDirLocked(p, e.key); err != nil {
				return err
			}
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st := newFileState()
			st.mu.durable = b
			f.mu.files[e.key] = st
		}
	}
	return nil
}

func newFileState() *fileState {
	st := &fileState{}
	st.mu.minSize = -1
	return st
}

// listDir reads the entries of a backing directory with their identities.
func listDir(dir string) (map[string]dirEntry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	entries := make(map[string]dirEntry, len(des))
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		key, mode, err := statKey(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed while listing
		}
		if err != nil {
			return nil, err
		}
		e := dirEntry{key: key, mode: mode}
		if mode&syscall.S_IFMT == syscall.S_IFLNK {
			if e.target, err = os.Readlink(p); err != nil {
				return nil, err
			}
		}
		entries[de.Name()] = e
	}
	return entries, nil
}

// statKey returns the identity and mode of the backing file at p, not
// following a symbolic link.
func statKey(p string) (fileKey, uint32, error) {
	var x unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO|unix.STATX_TYPE|unix.STATX_MODE|unix.STATX_BTIME, &x); err != nil {
		return fileKey{}, 0, &os.PathError{Op: "statx", Path: p, Err: err}
	}
	gen := uint64(1) // as go-fuse's loopback when there is no birth time
	if x.Mask&unix.STATX_BTIME != 0 && (x.Btime.Sec != 0 || x.Btime.Nsec != 0) {
		gen = uint64(x.Btime.Sec)*1e9 + uint64(x.Btime.Nsec)
	}
	return fileKey{ino: x.Ino, gen: gen}, uint32(x.Mode), nil
}

// fileFor returns the state of the regular file key, creating it (nothing
// durable yet) when the file was created on this mount.
func (f *FS) fileFor(key fileKey) *fileState {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.mu.files[key]
	if st == nil {
		st = newFileState()
		f.mu.files[key] = st
	}
	return st
}

// syncDir makes the present entries of the backing directory dir durable.
func (f *FS) syncDir(key fileKey, dir string) syscall.Errno {
	entries, err := listDir(dir)
	if err != nil {
		return fs.ToErrno(err)
	}
	f.mu.Lock()
	f.mu.dirs[key] = entries
	f.mu.Unlock()
	return 0
}

// recordWrite notes that [off, off+n) changes. The caller holds st.io
// shared.
func (st *fileState) recordWrite(off, n int64) {
	st.mu.Lock()
	st.mu.dirty = append(st.mu.dirty, extent{off, n})
	st.mu.Unlock()
}

// recordTruncate notes that the file is cut to size. The caller holds
// st.io shared.
func (st *fileState) recordTruncate(size int64) {
	st.mu.Lock()
	if st.mu.minSize < 0 || size < st.mu.minSize {
		st.mu.minSize = size
	}
	st.mu.Unlock()
}

// dropDirty forgets the changes since the last sync without making them
// durable, what a failed sync does on Linux, and returns how many bytes
// they covered.
func (st *fileState) dropDirty() int64 {
	st.io.Lock()
	defer st.io.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	var n int64
	for _, e := range st.mu.dirty {
		n += e.n
	}
	st.mu.dirty = nil
	st.mu.minSize = -1
	return n
}

// Dropped returns how many written bytes failed (or lying) syncs dropped
// since the FS was mounted: data the programs saw written and a cut loses
// whatever later syncs say.
func (f *FS) Dropped() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.dropped
}

// sync makes the file's present content durable: the durable copy is cut
// to the smallest size since the last sync, sized to the present size, and
// the dirty ranges are copied in from the file.
func (st *fileState) sync(file backingFile) syscall.Errno {
	st.io.Lock()
	defer st.io.Unlock()
	size, errno := file.size()
	if errno != 0 {
		return errno
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	d := st.mu.durable
	if m := st.mu.minSize; m >= 0 && int64(len(d)) > m {
		d = d[:m]
	}
	if int64(len(d)) > size {
		d = d[:size]
	}
	if grow := size - int64(len(d)); grow > 0 {
		d = append(d, make([]byte, grow)...)
	}
	for _, e := range st.mu.dirty {
		end := min(e.off+e.n, size)
		if e.off >= end {
			continue
		}
		if errno := file.readAt(d[e.off:end], e.off); errno != 0 {
			return errno
		}
	}
	st.mu.durable = d
	st.mu.dirty = nil
	st.mu.minSize = -1
	return 0
}

// sleepCtx waits d or until done is closed.
func sleepCtx(done <-chan struct{}, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
}
