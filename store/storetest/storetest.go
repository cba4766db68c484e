// Package storetest holds what every store driver is tested with: one
// conformance suite (Run), one set of benchmarks (Bench), and Faulty, a
// decorator over any store.Store that injects failures and delays for the
// tests of the layers above.
//
// A driver runs the suite from its own test file:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			return openAt(t, filepath.Join(t.TempDir(), "jobs.db"))
//		}, storetest.Reopen(func(t *testing.T, old store.Store) store.Store {
//			return openAt(t, old.(*Store).path)
//		}))
//	}
//
//	func BenchmarkStore(b *testing.B) {
//		storetest.Bench(b, func(b *testing.B) store.Store {
//			return openAt(b, filepath.Join(b.TempDir(), "jobs.db"))
//		})
//	}
//
// Differences between drivers are declared with options (Reopen, Volatile,
// Corrupt, Records), never by forking the suite. So are the capabilities
// only some drivers have (capabilities.go): Registered (its names and
// flags in the store registry), Exclusive (one process at a time),
// Namespaced (servers sharing one database), ReplayChunk (Replay in
// chunks, with Apply called from inside it) and Outage (a server that
// freezes, dies and comes back). A new driver is written
// against the suite: declare what it can do, and the suite checks it.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gearmand/store"
)

// Option declares what the driver under test can do.
type Option func(*config)

type config struct {
	reopen   func(t *testing.T, old store.Store) store.Store
	volatile bool
	corrupt  func(t *testing.T, s store.Store, seq uint64)
	records  int

	// The capabilities of capabilities.go.
	names      []string
	options    func(t *testing.T) store.Options
	openSame   func(t *testing.T, s store.Store) (store.Store, error)
	namespaced func(t *testing.T, ns string) store.Store
	chunk      int
	outage     func(t *testing.T) (store.Store, Server, time.Duration)
}

// Reopen declares a durable driver and how to get its data back. Run closes
// old first, then calls reopen, which must open the same data (the same
// file, directory or namespace) and return the new store. A driver's store
// usually knows where it lives, so reopen can read that from old. Run
// closes the returned store when the test ends.
func Reopen(reopen func(t *testing.T, old store.Store) store.Store) Option {
	return func(c *config) { c.reopen = reopen }
}

// Volatile declares a store that keeps nothing across Close, such as
// memstore: the reopen case is skipped. A driver must give either Reopen
// or Volatile, so that a durable driver cannot skip the reopen case by
// forgetting it.
func Volatile() Option {
	return func(c *config) { c.volatile = true }
}

// Corrupt declares that the driver has the store.Corruption capability.
// corrupt must damage the stored bytes of record seq in s, in place, so
// that Replay cannot decode it. Run then checks that Replay skips the
// record, reports it to the handler with an error wrapping
// store.ErrCorrupt, keeps it stored, and that a delete removes it.
func Corrupt(corrupt func(t *testing.T, s store.Store, seq uint64)) Option {
	return func(c *config) { c.corrupt = corrupt }
}

// Records sets how many records the ManyRecords case writes, in batches of
// 1,000. The default is 100,000, or 10,000 under go test -short.
func Records(n int) Option {
	return func(c *config) { c.records = n }
}

// Run runs the conformance suite against one driver, each case a subtest
// with a fresh store from open. open must return a new, empty store that
// belongs to the calling test (t.TempDir, a fresh namespace); Run closes it
// when the test ends. Give Reopen or Volatile in opts.
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	cfg := config{records: 100_000}
	if testing.Short() {
		cfg.records = 10_000
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.reopen == nil && !cfg.volatile {
		t.Fatal("storetest: give Reopen for a durable driver, or Volatile for one that keeps nothing across Close")
	}
	fresh := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	for _, c := range slices.Concat(cases, capabilityCases) {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, &suite{cfg: cfg, open: fresh})
		})
	}
}

// suite is what a case gets: the driver's options and a way to open a
// fresh store.
type suite struct {
	cfg  config
	open func(t *testing.T) store.Store
}

// reopen closes s and opens its data again, or skips a volatile driver.
func (st *suite) reopen(t *testing.T, s store.Store) store.Store {
	t.Helper()
	if st.cfg.reopen == nil {
		t.Skip("volatile store: nothing survives Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close before reopening: %v", err)
	}
	s = st.cfg.reopen(t, s)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var cases = []struct {
	name string
	run  func(t *testing.T, st *suite)
}{
	{"Empty", testEmpty},
	{"ReplayInSeqOrder", testReplayInSeqOrder},
	{"Delete", testDelete},
	{"DeleteMissingIsNotAnError", testDeleteMissing},
	{"AddReplaces", testAddReplaces},
	{"UniquesDoNotCollide", testUniquesDoNotCollide},
	{"NULBytes", testNULBytes},
	{"Payloads", testPayloads},
	{"FieldsRoundTrip", testFieldsRoundTrip},
	{"ManyRecords", testManyRecords},
	{"Reopen", testReopen},
	{"ConcurrentApply", testConcurrentApply},
	{"Closed", testClosed},
	{"ReplayStopsOnError", testReplayStops},
	{"ApplyDoesNotKeepBatch", testApplyDoesNotKeepBatch},
	{"ReplayDataBelongsToCaller", testReplayDataOwned},
	{"BatchIsAtomic", testBatchAtomic},
	{"Corruption", testCorruption},
}

func testEmpty(t *testing.T, st *suite) {
	s := st.open(t)
	expect(t, s, nil)
	apply(t, s, store.Batch{})
	apply(t, s, store.Batch{Adds: []store.Record{}, Deletes: []uint64{}})
	expect(t, s, nil)
}

func testReplayInSeqOrder(t *testing.T, st *suite) {
	s := st.open(t)
	// Seqs straddling byte boundaries catch keys compared as little-endian
	// bytes or as decimal strings.
	batches := [][]uint64{
		{5, 3, 9},
		{1, 7},
		{256, 2, 255, 65536, 1 << 40, 10, 65535, 1<<32 + 1, 1 << 32},
	}
	var want []store.Record
	for _, seqs := range batches {
		var b store.Batch
		for _, seq := range seqs {
			b.Adds = append(b.Adds, Sample(seq))
		}
		apply(t, s, b)
		want = append(want, b.Adds...)
	}
	expect(t, s, want)
}

func testDelete(t *testing.T, st *suite) {
	s := st.open(t)
	var want []store.Record
	var b store.Batch
	for seq := uint64(1); seq <= 10; seq++ {
		b.Adds = append(b.Adds, Sample(seq))
	}
	apply(t, s, b)
	apply(t, s, store.Batch{Deletes: []uint64{2, 4, 6, 8, 10}})
	for seq := uint64(1); seq <= 10; seq += 2 {
		want = append(want, Sample(seq))
	}
	expect(t, s, want)
	apply(t, s, store.Batch{Deletes: []uint64{1}})
	apply(t, s, store.Batch{Deletes: []uint64{9, 5, 7, 3}})
	expect(t, s, nil)
}

func testDeleteMissing(t *testing.T, st *suite) {
	s := st.open(t)
	apply(t, s, store.Batch{Deletes: []uint64{42}})
	apply(t, s, store.Batch{Adds: []store.Record{Sample(1), Sample(2)}})
	apply(t, s, store.Batch{Deletes: []uint64{3, 1 << 40, 0}})
	apply(t, s, store.Batch{Deletes: []uint64{2, 2}}) // twice in one batch
	apply(t, s, store.Batch{Deletes: []uint64{2}})    // already gone
	expect(t, s, []store.Record{Sample(1)})
}

func testAddReplaces(t *testing.T, st *suite) {
	s := st.open(t)
	apply(t, s, store.Batch{Adds: []store.Record{Sample(4), Sample(5), Sample(6)}})
	v2 := store.Record{
		Seq:      5,
		Handle:   "H:other:5",
		Function: "replaced",
		Unique:   "",
		Data:     []byte("v2"),
		Priority: 0,
		Attempts: 3,
		Created:  time.Unix(1_800_000_000, 1),
	}
	apply(t, s, store.Batch{Adds: []store.Record{v2}})
	expect(t, s, []store.Record{Sample(4), v2, Sample(6)})
	// Replacing with a longer record, in a batch with other work.
	v3 := Sample(5)
	v3.Data = bytes.Repeat([]byte("v3"), 1000)
	v3.Reducer = "reduce"
	apply(t, s, store.Batch{Adds: []store.Record{Sample(7), v3}, Deletes: []uint64{4}})
	expect(t, s, []store.Record{v3, Sample(6), Sample(7)})
}

func testUniquesDoNotCollide(t *testing.T, st *suite) {
	s := st.open(t)
	var want []store.Record
	for seq := uint64(1); seq <= 6; seq++ {
		r := Sample(seq)
		r.Function = "same-function"
		r.Data = []byte("same data")
		r.Handle = "H:same"
		if seq > 3 {
			r.Unique = "same-unique"
		} else {
			r.Unique = ""
		}
		want = append(want, r)
	}
	apply(t, s, store.Batch{Adds: want[:3]})
	apply(t, s, store.Batch{Adds: want[3:]})
	expect(t, s, want)
}

func testNULBytes(t *testing.T, st *suite) {
	s := st.open(t)
	r1 := store.Record{
		Seq:      1,
		Handle:   "H:\x00host:1",
		Function: "f\x00n\x00",
		Unique:   "\x00u\x00\xff\xfe",
		Data:     []byte{0, 0, 'a', 0, 0xff, 0xc0, 0},
		Priority: 1,
		Reducer:  "\x00r",
		Created:  time.Unix(1_700_000_000, 0),
	}
	r2 := store.Record{
		Seq:      2,
		Handle:   "\x00",
		Function: "\x00",
		Unique:   strings.Repeat("\x00", 64),
		Data:     make([]byte, 100), // all NUL
		Reducer:  "\x00",
	}
	r3 := store.Record{Seq: 3, Function: "plain", Data: []byte("\x00")}
	apply(t, s, store.Batch{Adds: []store.Record{r1, r2, r3}})
	expect(t, s, []store.Record{r1, r2, r3})
}

func testPayloads(t *testing.T, st *suite) {
	s := st.open(t)
	sizes := []struct {
		seq  uint64
		data []byte
	}{
		{1, nil},
		{2, []byte{}},
		{3, []byte{0}},
		{4, pattern(64 << 10)},
		{5, pattern(10 << 20)},
	}
	var want []store.Record
	for _, sz := range sizes {
		r := Sample(sz.seq)
		r.Data = sz.data
		want = append(want, r)
	}
	// The large record alone in its batch, then the rest together.
	apply(t, s, store.Batch{Adds: want[4:]})
	apply(t, s, store.Batch{Adds: want[:4]})
	expect(t, s, want)
	if st.cfg.reopen == nil {
		return
	}
	// They survive a reopen, and deleting them leaves nothing behind.
	s = st.reopen(t, s)
	expect(t, s, want)
	apply(t, s, store.Batch{Deletes: []uint64{1, 2, 3, 4, 5}})
	s = st.reopen(t, s)
	expect(t, s, nil)
}

func testFieldsRoundTrip(t *testing.T, st *suite) {
	s := st.open(t)
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	want := []store.Record{
		{Seq: 1, Function: "f", Priority: 0},
		{Seq: 2, Function: "f", Priority: 1, RunAt: time.Unix(1_700_000_000, 123_456_789)},
		{Seq: 3, Function: "f", Priority: 2, RunAt: time.Date(2200, 1, 2, 3, 4, 5, 999_999_999, time.UTC)},
		{
			Seq:      4,
			Handle:   "H:gearman.example.com:4",
			Function: strings.Repeat("function", 32),
			Unique:   strings.Repeat("u", 64),
			Data:     []byte("payload"),
			Priority: 2,
			RunAt:    time.Date(2026, 11, 23, 19, 31, 7, 1, loc),
			Reducer:  "reducer-function",
			Attempts: math.MaxUint32,
			Created:  time.Date(2026, 11, 23, 19, 31, 6, 999_999_999, loc),
		},
		{Seq: 5, Function: "f", Attempts: 1, Created: time.Now()}, // with a monotonic reading
		{Seq: 6, Function: "f", Reducer: "r", Created: time.Unix(1, 1)},
	}
	apply(t, s, store.Batch{Adds: want})
	expect(t, s, want)
}

func testManyRecords(t *testing.T, st *suite) {
	s := st.open(t)
	n := st.cfg.records
	const perBatch = 1000
	start := time.Now()
	adds := make([]store.Record, 0, perBatch)
	for first := 1; first <= n; first += perBatch {
		adds = adds[:0]
		for seq := first; seq < first+perBatch && seq <= n; seq++ {
			adds = append(adds, Sample(uint64(seq)))
		}
		apply(t, s, store.Batch{Adds: adds})
	}
	applied := time.Since(start)
	start = time.Now()
	var got, bad int
	next := uint64(1)
	err := s.Replay(context.Background(), func(r store.Record) error {
		got++
		if bad < 5 {
			if r.Seq != next {
				bad++
				t.Errorf("record %d: Seq %d, want %d", got, r.Seq, next)
			} else if d := Diff(r, Sample(r.Seq)); d != "" {
				bad++
				t.Errorf("record %d: %s", r.Seq, d)
			}
		}
		next = r.Seq + 1
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if got != n {
		t.Fatalf("Replay gave %d records, want %d", got, n)
	}
	t.Logf("%d records: Apply %v, Replay %v", n, applied.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func testReopen(t *testing.T, st *suite) {
	if st.cfg.reopen == nil {
		t.Skip("volatile store: nothing survives Close")
	}
	s := st.open(t)
	var b store.Batch
	for seq := uint64(1); seq <= 20; seq++ {
		b.Adds = append(b.Adds, Sample(seq))
	}
	big := Sample(21)
	big.Data = pattern(1 << 20)
	nul := store.Record{Seq: 22, Handle: "\x00", Function: "f\x00", Unique: "\x00", Data: []byte{0}, Reducer: "\x00"}
	b.Adds = append(b.Adds, big, nul)
	apply(t, s, b)
	apply(t, s, store.Batch{Deletes: []uint64{1, 5, 10}})
	replaced := Sample(2)
	replaced.Attempts = 7
	apply(t, s, store.Batch{Adds: []store.Record{replaced}})

	var want []store.Record
	for _, r := range b.Adds {
		switch r.Seq {
		case 1, 5, 10:
		case 2:
			want = append(want, replaced)
		default:
			want = append(want, r)
		}
	}
	s = st.reopen(t, s)
	expect(t, s, want)

	// The reopened store takes writes, and they survive another reopen.
	apply(t, s, store.Batch{Adds: []store.Record{Sample(23)}, Deletes: []uint64{3, 21}})
	want = append(want, Sample(23))
	want = remove(want, 3, 21)
	s = st.reopen(t, s)
	expect(t, s, want)
}

func testConcurrentApply(t *testing.T, st *suite) {
	s := st.open(t)
	const (
		goroutines = 8
		batches    = 20
		perBatch   = 10
		span       = 1 << 20
	)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := uint64(g+1) * span
			for i := range batches {
				var b store.Batch
				for j := range perBatch {
					b.Adds = append(b.Adds, Sample(base+uint64(i*perBatch+j)))
				}
				// Each batch also deletes the first record of the one before.
				if i > 0 {
					b.Deletes = []uint64{base + uint64((i-1)*perBatch)}
				}
				if err := s.Apply(context.Background(), b); err != nil {
					errs <- fmt.Errorf("goroutine %d batch %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var want []store.Record
	for g := range goroutines {
		base := uint64(g+1) * span
		for i := range batches * perBatch {
			if i%perBatch == 0 && i/perBatch < batches-1 {
				continue
			}
			want = append(want, Sample(base+uint64(i)))
		}
	}
	expect(t, s, want)
}

func testClosed(t *testing.T, st *suite) {
	s := st.open(t)
	apply(t, s, store.Batch{Adds: []store.Record{Sample(1)}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{Sample(2)}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Apply after Close: %v, want ErrClosed", err)
	}
	if err := s.Apply(context.Background(), store.Batch{Deletes: []uint64{1}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Apply of a delete after Close: %v, want ErrClosed", err)
	}
	if err := s.Apply(context.Background(), store.Batch{}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Apply of an empty batch after Close: %v, want ErrClosed", err)
	}
	called := false
	err := s.Replay(context.Background(), func(store.Record) error { called = true; return nil })
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("Replay after Close: %v, want ErrClosed", err)
	}
	if called {
		t.Error("Replay after Close called fn")
	}
	if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		t.Errorf("second Close: %v, want nil or ErrClosed", err)
	}
}

func testReplayStops(t *testing.T, st *suite) {
	s := st.open(t)
	var b store.Batch
	for seq := uint64(1); seq <= 10; seq++ {
		b.Adds = append(b.Adds, Sample(seq))
	}
	apply(t, s, b)
	errStop := errors.New("stop here")
	for _, stopAt := range []int{1, 3, 10} {
		var seen []uint64
		err := s.Replay(context.Background(), func(r store.Record) error {
			seen = append(seen, r.Seq)
			if len(seen) == stopAt {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Errorf("fn failing at record %d: Replay returned %v, want fn's error", stopAt, err)
		}
		if len(seen) != stopAt {
			t.Errorf("fn failing at record %d: Replay went on to %v", stopAt, seen)
		}
	}
	// Stopping leaves nothing behind that breaks the next Replay or Apply.
	apply(t, s, store.Batch{Adds: []store.Record{Sample(11)}})
	expect(t, s, append(b.Adds, Sample(11)))
}

func testApplyDoesNotKeepBatch(t *testing.T, st *suite) {
	s := st.open(t)
	r := Sample(1)
	data := []byte("original data")
	r.Data = data
	adds := []store.Record{r, Sample(2)}
	apply(t, s, store.Batch{Adds: adds})
	want := []store.Record{r, Sample(2)}
	want[0].Data = []byte("original data")
	copy(data, "XXXXXXXX")
	adds[1] = Sample(99) // the caller reuses its slice
	expect(t, s, want)
}

func testReplayDataOwned(t *testing.T, st *suite) {
	s := st.open(t)
	var want []store.Record
	for seq := uint64(1); seq <= 5; seq++ {
		r := Sample(seq)
		r.Data = pattern(int(seq) * 1000)
		want = append(want, r)
	}
	apply(t, s, store.Batch{Adds: want})
	// Records kept across fn calls and across Replays must not change:
	// ReplayAll keeps them, and the second Replay runs after the first.
	first := ReplayAll(t, s)
	for _, r := range first {
		for i := range r.Data {
			r.Data[i] ^= 0xff
		}
		if cap(r.Data) > len(r.Data) {
			_ = append(r.Data, "spill"...) // writes past len, into the driver's memory if it is shared
		}
	}
	second := ReplayAll(t, s)
	if d := diffAll(second, want); d != "" {
		t.Errorf("changing the Data of one Replay changed the next: %s", d)
	}
	for _, r := range first {
		for i := range r.Data {
			r.Data[i] ^= 0xff
		}
	}
	if d := diffAll(first, want); d != "" {
		t.Errorf("a second Replay changed the records of the first: %s", d)
	}
}

func testBatchAtomic(t *testing.T, st *suite) {
	s := st.open(t)
	var b store.Batch
	for seq := uint64(1); seq <= 6; seq++ {
		b.Adds = append(b.Adds, Sample(seq))
	}
	apply(t, s, b)
	v2 := Sample(3)
	v2.Attempts = 9
	apply(t, s, store.Batch{Adds: []store.Record{Sample(7), Sample(8), v2}, Deletes: []uint64{1, 2, 4}})
	want := []store.Record{v2, Sample(5), Sample(6), Sample(7), Sample(8)}
	expect(t, s, want)

	// A batch whose context ends before or during Apply is stored whole or
	// not at all; with a nil error, whole. (An error does not promise that
	// nothing was stored: a commit may succeed as its reply is lost.)
	allOrNothing := func(ctx context.Context, first uint64, n int) {
		t.Helper()
		var b store.Batch
		for i := range n {
			b.Adds = append(b.Adds, Sample(first+uint64(i)))
		}
		b.Deletes = []uint64{want[0].Seq}
		before := want
		after := sortedBySeq(append(remove(want, want[0].Seq), b.Adds...))
		err := s.Apply(ctx, b)
		got := ReplayAll(t, s)
		switch {
		case diffAll(got, after) == "":
			want = after
		case err == nil:
			t.Fatalf("Apply returned nil but did not store the whole batch:\n\t%s", diffAll(got, after))
		case diffAll(got, before) != "":
			t.Fatalf("Apply failed (%v) and stored part of the batch: %d records, want %d (none of it) or %d (all of it)",
				err, len(got), len(before), len(after))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	allOrNothing(ctx, 100, 100)
	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	allOrNothing(ctx, 1000, 5000)
	allOrNothing(context.Background(), 10000, 10)
}

func testCorruption(t *testing.T, st *suite) {
	s := st.open(t)
	cs, ok := s.(store.Corruption)
	if st.cfg.corrupt == nil {
		if ok {
			t.Skip("the driver has the Corruption capability but gives no Corrupt option to test it")
		}
		t.Skip("the driver has no Corruption capability")
	}
	if !ok {
		t.Fatalf("Corrupt option given, but %T does not implement store.Corruption", s)
	}
	apply(t, s, store.Batch{Adds: []store.Record{Sample(1), Sample(2), Sample(3)}})
	type report struct {
		key string
		err error
	}
	var reports []report
	cs.SetCorruptHandler(func(key string, err error) { reports = append(reports, report{key, err}) })
	st.cfg.corrupt(t, s, 2)
	for range 2 { // skipped and reported each time: it stays stored
		reports = nil
		expect(t, s, []store.Record{Sample(1), Sample(3)})
		if len(reports) != 1 {
			t.Fatalf("Replay reported %d corrupt records, want 1: %v", len(reports), reports)
		}
		if r := reports[0]; r.key == "" || !errors.Is(r.err, store.ErrCorrupt) {
			t.Errorf("report (key %q, err %v): want a key and an error wrapping ErrCorrupt", r.key, r.err)
		}
	}
	apply(t, s, store.Batch{Deletes: []uint64{2}})
	reports = nil
	expect(t, s, []store.Record{Sample(1), Sample(3)})
	if len(reports) != 0 {
		t.Errorf("after deleting the corrupt record, Replay still reported %v", reports)
	}
}

// Sample is a record with every field set, derived from seq: the same seq
// always gives the same record. Tests of other packages use it too.
func Sample(seq uint64) store.Record {
	n := strconv.FormatUint(seq, 10)
	r := store.Record{
		Seq:      seq,
		Handle:   "H:storetest:" + n,
		Function: functions[seq%uint64(len(functions))],
		Unique:   "unique-" + n,
		Data:     append(append([]byte("data of record "), n...), "\x00with a NUL"...),
		Priority: store.Priority(seq % 3),
		Attempts: uint32(seq % 5),
		Created:  time.Unix(1_700_000_000, int64(seq%1_000_000_000)),
	}
	if seq%2 == 1 {
		r.RunAt = time.Unix(1_800_000_000+int64(seq%1_000_000), 999_999_999)
	}
	if seq%4 == 0 {
		r.Reducer = "reducer"
	}
	return r
}

var functions = []string{"resize", "email", "report", "index", "f\x00nul", "", "thumbnail"}

// Equal reports whether got and want are the same record: times compare
// by instant (not location), and nil and empty Data are the same.
func Equal(got, want store.Record) bool {
	return got.Seq == want.Seq && got.Handle == want.Handle && got.Function == want.Function &&
		got.Unique == want.Unique && bytes.Equal(got.Data, want.Data) && got.Priority == want.Priority &&
		sameTime(got.RunAt, want.RunAt) && got.Reducer == want.Reducer && got.Attempts == want.Attempts &&
		sameTime(got.Created, want.Created)
}

// Diff describes how got differs from want, or returns "" when they are
// Equal.
func Diff(got, want store.Record) string {
	if Equal(got, want) {
		return ""
	}
	var d []string
	field := func(name string, differ bool, g, w any) {
		if differ {
			d = append(d, fmt.Sprintf("%s %s, want %s", name, show(g), show(w)))
		}
	}
	field("Seq", got.Seq != want.Seq, got.Seq, want.Seq)
	field("Handle", got.Handle != want.Handle, got.Handle, want.Handle)
	field("Function", got.Function != want.Function, got.Function, want.Function)
	field("Unique", got.Unique != want.Unique, got.Unique, want.Unique)
	field("Data", !bytes.Equal(got.Data, want.Data), got.Data, want.Data)
	field("Priority", got.Priority != want.Priority, got.Priority, want.Priority)
	field("RunAt", !sameTime(got.RunAt, want.RunAt), got.RunAt, want.RunAt)
	field("Reducer", got.Reducer != want.Reducer, got.Reducer, want.Reducer)
	field("Attempts", got.Attempts != want.Attempts, got.Attempts, want.Attempts)
	field("Created", !sameTime(got.Created, want.Created), got.Created, want.Created)
	return strings.Join(d, "; ")
}

func sameTime(a, b time.Time) bool { return a.IsZero() == b.IsZero() && a.Equal(b) }

// show prints a field value short enough for a test log.
func show(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 80 {
			return fmt.Sprintf("%q... (%d bytes)", v[:80], len(v))
		}
		return fmt.Sprintf("%q", v)
	case []byte:
		if len(v) > 80 {
			return fmt.Sprintf("%q... (%d bytes)", v[:80], len(v))
		}
		return fmt.Sprintf("%q", v)
	case time.Time:
		if v.IsZero() {
			return "zero time"
		}
		return v.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// diffAll compares two record lists, describing the first few differences.
func diffAll(got, want []store.Record) string {
	var d []string
	for i := 0; i < len(got) || i < len(want); i++ {
		if len(d) == 5 {
			d = append(d, "...")
			break
		}
		switch {
		case i >= len(got):
			d = append(d, fmt.Sprintf("missing record %d (Seq %d)", i, want[i].Seq))
		case i >= len(want):
			d = append(d, fmt.Sprintf("extra record %d (Seq %d)", i, got[i].Seq))
		default:
			if s := Diff(got[i], want[i]); s != "" {
				d = append(d, fmt.Sprintf("record %d: %s", i, s))
			}
		}
	}
	if len(got) != len(want) {
		d = append([]string{fmt.Sprintf("%d records, want %d", len(got), len(want))}, d...)
	}
	return strings.Join(d, "\n\t")
}

func apply(t *testing.T, s store.Store, b store.Batch) {
	t.Helper()
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatalf("Apply(%d adds, %d deletes): %v", len(b.Adds), len(b.Deletes), err)
	}
}

// ReplayAll returns every record s replays, in the order Replay gives
// them, failing t if Replay fails.
func ReplayAll(t testing.TB, s store.Store) []store.Record {
	t.Helper()
	var got []store.Record
	if err := s.Replay(context.Background(), func(r store.Record) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}

// expect checks that Replay gives want, sorted here by Seq, and nothing else.
func expect(t *testing.T, s store.Store, want []store.Record) {
	t.Helper()
	want = sortedBySeq(want)
	if d := diffAll(ReplayAll(t, s), want); d != "" {
		t.Fatalf("Replay:\n\t%s", d)
	}
}

func sortedBySeq(rs []store.Record) []store.Record {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b store.Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

func remove(rs []store.Record, seqs ...uint64) []store.Record {
	var out []store.Record
next:
	for _, r := range rs {
		for _, s := range seqs {
			if r.Seq == s {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// pattern is n bytes that are not all alike and include NULs.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// Count returns how many records st would replay, failing t on an error.
func Count(t testing.TB, st store.Store) int {
	t.Helper()
	n := 0
	if err := st.Replay(context.Background(), func(store.Record) error { n++; return nil }); err != nil {
		t.Fatalf("replaying to count the stored records: %v", err)
	}
	return n
}
