package main

import (
	"math/bits"
	"time"
)

// A histogram counts durations in log-linear buckets, in the manner of an
// HDR histogram: exact below 128ns, and above that 64 buckets for each power
// of two, so a reported percentile is at most 1/64 (1.6%) above the true
// value. Its size is fixed whatever the number of samples, so a long run
// cannot grow the load generator. It is not safe for concurrent use: give
// each goroutine its own and merge them at the end.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	subBits     = 6
	subBuckets  = 1 << subBits
	histBuckets = 64 * subBuckets // enough for every non-negative int64
)

// bucketOf returns the bucket holding v nanoseconds.
func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [64, 128)
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// upperOf returns the largest value that falls in bucket i.
func upperOf(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return (m+1)<<shift - 1
}

// record adds one sample; negative durations count as zero.
func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// merge adds every sample of o to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// percentile returns the smallest bucket bound at or below which p percent
// of the samples lie (never above the largest sample), or 0 when h is
// empty.
func (h *histogram) percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(p / 100 * float64(h.n))
	if float64(rank) < p/100*float64(h.n) {
		rank++
	}
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(upperOf(i)), h.max)
		}
	}
	return h.max
}

// mean returns the average sample, or 0 when h is empty.
func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}
