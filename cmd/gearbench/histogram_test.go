package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	last := bucketOf(1<<63 - 1)
	if last >= histBuckets {
		t.Fatalf("the largest duration falls in bucket %d of %d", last, histBuckets)
	}
	for i := range last {
		if got := bucketOf(upperOf(i)); got != i {
			t.Fatalf("bucketOf(upperOf(%d) = %d) = %d", i, upperOf(i), got)
		}
		if got := bucketOf(upperOf(i) + 1); got != i+1 {
			t.Fatalf("bucketOf(%d) = %d, want %d", upperOf(i)+1, got, i+1)
		}
	}
}

// TestPercentilesWithinPrecision compares the histogram's percentiles with
// the exact ones of the same samples.
func TestPercentilesWithinPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var exact []time.Duration
	for range 100000 {
		// Log-uniform from 1µs to 1s, the range latencies span.
		d := time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*6))
		h.record(d)
		exact = append(exact, d)
	}
	slices.Sort(exact)
	for _, p := range []float64{0, 50, 90, 99, 99.9, 100} {
		rank := int(p / 100 * float64(len(exact)))
		want := exact[min(max(rank-1, 0), len(exact)-1)]
		got := h.percentile(p)
		if got < want || float64(got-want) > float64(want)/subBuckets {
			t.Errorf("p%v = %v, want %v to within 1/%d above", p, got, want, subBuckets)
		}
	}
	if h.percentile(100) != exact[len(exact)-1] {
		t.Errorf("p100 = %v, want the maximum %v", h.percentile(100), exact[len(exact)-1])
	}
}

func TestMergeAddsEverySample(t *testing.T) {
	var a, b, all histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.record(d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	if a != all {
		t.Fatalf("merged histogram differs from the one that saw every sample")
	}
	if got, want := a.mean(), all.sum/1000; got != want || a.n != 1000 {
		t.Fatalf("mean %v over %d samples, want %v over 1000", got, a.n, want)
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h histogram
	if h.percentile(99) != 0 || h.mean() != 0 {
		t.Fatalf("empty histogram reports p99 %v, mean %v; want 0", h.percentile(99), h.mean())
	}
	h.record(-time.Second)
	if h.percentile(50) != 0 {
		t.Fatalf("a negative sample reads back as %v, want 0", h.percentile(50))
	}
}

// BenchmarkHistogramRecord is the cost gearbench adds to every request.
func BenchmarkHistogramRecord(b *testing.B) {
	var h histogram
	d := 1234 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		h.record(d)
		d += 7
	}
}
