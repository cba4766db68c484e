package store

import "syscall"

// freeSpace is the bytes an unprivileged writer may still use on the
// filesystem holding path (statfs's f_bavail): a server running as root
// may have a little more, but that reserve is not to be counted on.
func freeSpace(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
