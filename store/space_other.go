//go:build !linux

package store

import "errors"

// freeSpace is not implemented here: the guard logs once and never trips.
func freeSpace(string) (uint64, error) {
	return 0, errors.New("free space is read on Linux only")
}
