package faultfs

import (
	"context"
	"path"
	"syscall"
	"time"
)

// Op is a kind of filesystem operation a Fault applies to.
type Op string

// The operations. OpFsync covers fsync and fdatasync of files and of
// directories; OpCreate covers create, mkdir, mknod, symlink and link;
// OpUnlink covers unlink and rmdir; OpTruncate is a size change through
// truncate, ftruncate or open with O_TRUNC.
const (
	OpRead     Op = "read"
	OpWrite    Op = "write"
	OpFsync    Op = "fsync"
	OpOpen     Op = "open"
	OpCreate   Op = "create"
	OpRename   Op = "rename"
	OpUnlink   Op = "unlink"
	OpTruncate Op = "truncate"
	OpAllocate Op = "allocate"
)

// Fault says which operations to fail or delay.
type Fault struct {
	// Op is the operation; "" matches every one.
	Op Op
	// Path is a path.Match pattern, matched against the slash-separated
	// path relative to the mount's root and against the last element of
	// that path (for a create, rename or unlink, of the entry's path);
	// "" matches every path.
	Path string
	// After is how many matching calls pass before the fault applies.
	After int
	// Times is how many calls the fault applies to, then it lets every
	// call pass; 0 means every call from After on.
	Times int
	// Err is the error the calls fail with (syscall.ENOSPC, syscall.EIO,
	// ...); 0 fails none, for a pure delay. A failed write or create
	// changes nothing; a failed fsync loses the changes it would have
	// made durable (see the package doc).
	Err syscall.Errno
	// Lie makes the calls succeed without doing what they promise: a
	// sync that makes nothing durable (a disk lying about its write
	// cache). The changes it would have covered are lost to the next cut.
	// For tests that check a test can see a loss at all.
	Lie bool
	// Delay is added to each call the fault applies to, before it runs or
	// fails. The caller's interruption (a killed process) cuts it short.
	Delay time.Duration
}

// Rule is an injected Fault.
type Rule struct {
	fault Fault
	fs    *FS
	seen  int // matching calls; guarded by fs.mu
	fired int // calls the fault applied to; guarded by fs.mu
}

// Inject adds a fault, applied from the next matching call on, until the
// rule is removed or has fired Times times. Rules are checked in the order
// they were added; a call that several rules match gets the first error
// and the sum of the delays.
func (f *FS) Inject(fault Fault) *Rule {
	r := &Rule{fault: fault, fs: f}
	f.mu.Lock()
	f.mu.faults = append(f.mu.faults, r)
	f.mu.Unlock()
	return r
}

// Remove stops the rule from applying to later calls.
func (r *Rule) Remove() {
	r.fs.mu.Lock()
	defer r.fs.mu.Unlock()
	for i, x := range r.fs.mu.faults {
		if x == r {
			r.fs.mu.faults = append(r.fs.mu.faults[:i:i], r.fs.mu.faults[i+1:]...)
			return
		}
	}
}

// Fired returns how many calls the rule has failed or delayed.
func (r *Rule) Fired() int {
	r.fs.mu.Lock()
	defer r.fs.mu.Unlock()
	return r.fired
}

// check applies the injected faults to one call of op on rel (the path
// relative to the root) and returns the error to fail it with, or 0, once
// the delay has passed.
func (f *FS) check(ctx context.Context, op Op, rel string) syscall.Errno {
	errno, _ := f.checkLie(ctx, op, rel)
	return errno
}

// checkLie is check that also says whether a Lie fault applies.
func (f *FS) checkLie(ctx context.Context, op Op, rel string) (errno syscall.Errno, lie bool) {
	var delay time.Duration
	f.mu.Lock()
	for _, r := range f.mu.faults {
		if !r.matches(op, rel) {
			continue
		}
		r.seen++
		if r.seen <= r.fault.After || (r.fault.Times > 0 && r.fired >= r.fault.Times) {
			continue
		}
		r.fired++
		lie = lie || r.fault.Lie
		delay += r.fault.Delay
		if errno == 0 {
			errno = r.fault.Err
		}
	}
	f.mu.Unlock()
	sleepCtx(ctx.Done(), delay)
	return errno, lie
}

func (r *Rule) matches(op Op, rel string) bool {
	if r.fault.Op != "" && r.fault.Op != op {
		return false
	}
	if r.fault.Path == "" {
		return true
	}
	if ok, _ := path.Match(r.fault.Path, rel); ok {
		return true
	}
	ok, _ := path.Match(r.fault.Path, path.Base(rel))
	return ok
}
