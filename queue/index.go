package queue

import (
	"iter"
	"maps"
	"strconv"
	"strings"
)

// jobIndex finds every job by its handle. A handle of the queue's own
// form, the prefix, a colon and the job's Seq in decimal, is looked up in a
// map keyed by the Seq: an integer is hashed without reading any string
// and stored inline, so neither a lookup nor the growth of a map of
// millions of jobs (during a replay, say) has to fetch the handles' bytes
// from all over memory. Any other handle (a job replayed from a server with
// another prefix, or renamed because its handle was taken) is kept in a map
// keyed by the handle itself.
type jobIndex struct {
	prefix string // HandlePrefix and the colon
	bySeq  map[uint64]*Job
	other  map[string]*Job
}

func newJobIndex(handlePrefix string) jobIndex {
	return jobIndex{prefix: handlePrefix + ":", bySeq: make(map[uint64]*Job), other: make(map[string]*Job)}
}

// seqOf returns the number after the prefix, if handle is the prefix and
// a decimal number.
func (x *jobIndex) seqOf(handle string) (uint64, bool) {
	digits, ok := strings.CutPrefix(handle, x.prefix)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// ownForm reports whether j's handle is the prefix and j's own Seq, which
// puts it in bySeq.
func (x *jobIndex) ownForm(j *Job) bool {
	seq, ok := x.seqOf(j.handle)
	return ok && seq == j.seq
}

// get returns the job with this handle, or nil.
func (x *jobIndex) get(handle string) *Job {
	if seq, ok := x.seqOf(handle); ok {
		// "H:x:07" parses as 7 too, so the handle must match exactly.
		if j := x.bySeq[seq]; j != nil && j.handle == handle {
			return j
		}
	}
	return x.other[handle]
}

// put adds j under its handle, replacing any job indexed there.
func (x *jobIndex) put(j *Job) {
	if x.ownForm(j) {
		x.bySeq[j.seq] = j
	} else {
		x.other[j.handle] = j
	}
}

// remove takes j out of the index.
func (x *jobIndex) remove(j *Job) {
	if x.ownForm(j) {
		delete(x.bySeq, j.seq)
	} else {
		delete(x.other, j.handle)
	}
}

// len returns the number of jobs indexed.
func (x *jobIndex) len() int { return len(x.bySeq) + len(x.other) }

// all yields every job indexed, in no particular order.
func (x *jobIndex) all() iter.Seq[*Job] {
	return func(yield func(*Job) bool) {
		for j := range maps.Values(x.bySeq) {
			if !yield(j) {
				return
			}
		}
		for j := range maps.Values(x.other) {
			if !yield(j) {
				return
			}
		}
	}
}
