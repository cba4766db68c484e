package queue

import "unsafe"

// sharedMin is the payload size from which the queue sends a job's data or
// a worker's large result by reference (Peer.SendShared) instead of copying
// it into the packet it encodes.
const sharedMin = 16 << 10

// keepData returns b as a string for a job to keep: b itself when owned
// (nobody modifies it again, see Submission.Owned), else a copy.
func keepData(b []byte, owned bool) string {
	if owned && len(b) > 0 {
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	return string(b)
}

// bytesOf returns s's bytes without copying them, for readers that never
// write to them: Peer.SendShared and store.Record.Data.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
