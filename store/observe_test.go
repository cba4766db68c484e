package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"gearmand/store"
	"gearmand/store/storetest"
)

// commits records what Observe reported.
type commits struct {
	mu  sync.Mutex
	all []store.Commit
}

func (c *commits) observe(x store.Commit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, x)
}

// sums adds up what was observed so far.
func (c *commits) sums() (adds, deletes, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.all {
		adds += x.Adds
		deletes += x.Deletes
		if x.Err != nil {
			failed++
		}
	}
	return adds, deletes, failed
}

func TestObserveReportsEveryApply(t *testing.T) {
	var seen commits
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit, Observe: seen.observe})
	const delay = 2 * time.Millisecond
	f.SetDelay(delay)
	for seq := uint64(1); seq <= 3; seq++ {
		add(t, c, seq)
	}
	eventually(t, "three adds are reported", func() bool { return got.reported() == 3 })
	c.Delete(1)
	c.Delete(2)
	eventually(t, "two deletes are observed", func() bool { _, d, _ := seen.sums(); return d == 2 })

	f.FailNext(1, errBoom)
	add(t, c, 4)
	eventually(t, "the failed add is reported", func() bool { return got.reported() == 4 })

	adds, deletes, failed := seen.sums()
	if adds != 4 || deletes != 2 || failed != 1 {
		t.Errorf("observed %d adds, %d deletes, %d failures; want 4, 2 and 1", adds, deletes, failed)
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if n := f.Applies(); len(seen.all) != n {
		t.Errorf("observed %d commits, the store saw %d Apply calls", len(seen.all), n)
	}
	for i, x := range seen.all {
		if x.Duration < delay {
			t.Errorf("commit %d took %v, less than the store's delay %v", i, x.Duration, delay)
		}
	}
	if last := seen.all[len(seen.all)-1]; !errors.Is(last.Err, errBoom) {
		t.Errorf("last commit's error is %v, want %v", last.Err, errBoom)
	}
}

func TestPendingCountsAddsUntilSettled(t *testing.T) {
	var got outcomes
	c, f := newCommitter(t, store.CommitterConfig[int]{OnCommit: got.onCommit})
	f.Hold()
	add(t, c, 1)
	add(t, c, 2)
	want := len(storetest.Sample(1).Data) + len(storetest.Sample(2).Data)
	if adds, bytes := c.Pending(); adds != 2 || bytes != want {
		t.Errorf("Pending() = %d adds, %d bytes while held; want 2 and %d", adds, bytes, want)
	}
	f.Release()
	eventually(t, "both adds are reported", func() bool { return got.reported() == 2 })
	if adds, bytes := c.Pending(); adds != 0 || bytes != 0 {
		t.Errorf("Pending() = %d adds, %d bytes once stored; want 0 and 0", adds, bytes)
	}
}
