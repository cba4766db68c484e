package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"gearmand/store"
)

// Capabilities a driver declares beside the conformance cases, each with
// what the suite needs to check it. A driver that lacks one does not
// declare it; the case then reports itself skipped, naming the option.

// Registered declares the names the driver is registered under with
// store.Register and Options that open a fresh, empty store of the test's
// own through store.Open. Run checks that each name, in any case, finds
// the driver, that its flags are unique and documented, that Configure
// (when set) accepts the flags' defaults or names a flag in its error,
// that Check (when set) passes, and that store.Open gives a store that
// keeps a record.
func Registered(names []string, options func(t *testing.T) store.Options) Option {
	return func(c *config) { c.names, c.options = names, options }
}

// Exclusive declares a store that one process at a time may hold (a file
// or directory lock). openSame must open the data s holds, a second time,
// and return what its Open returned. Run checks that it fails with
// store.ErrLocked within two seconds while s is open, that s is unharmed,
// and that the data opens once s is closed.
func Exclusive(openSame func(t *testing.T, s store.Store) (store.Store, error)) Option {
	return func(c *config) { c.openSame = openSame }
}

// Namespaced declares a store several servers share, each in a namespace
// of its own. open must open the store of namespace ns (always the same
// database or server for one test). Run checks that namespaces neither see
// nor change each other's records, even under the same Seqs, and that a
// store opened with the namespace of one that was never closed (its
// server died) replays its records: the heir takes them over.
func Namespaced(open func(t *testing.T, ns string) store.Store) Option {
	return func(c *config) { c.namespaced = open }
}

// ReplayChunk declares that Replay reads n records at a time (n at
// most, when it also bounds bytes). Run writes three chunks and more, and
// Applies from inside fn while the first chunk is read: deletes of
// records in a chunk not yet read, and adds past the end. Replay must
// skip the deleted ones, may give or skip the added ones, and must give
// every other record once, in Seq order.
func ReplayChunk(n int) Option {
	return func(c *config) { c.chunk = n }
}

var capabilityCases = []struct {
	name string
	run  func(t *testing.T, st *suite)
}{
	{"Registered", testRegistered},
	{"Exclusive", testExclusive},
	{"Namespaces", testNamespaces},
	{"ReplayAcrossChunks", testReplayAcrossChunks},
	{"Outage", testOutage},
}

func testRegistered(t *testing.T, st *suite) {
	if st.cfg.names == nil {
		t.Skip("the driver declares no storetest.Registered")
	}
	var d *store.Driver
	for _, name := range st.cfg.names {
		for _, spelling := range []string{name, strings.ToUpper(name), strings.ToLower(name)} {
			got, ok := store.Lookup(spelling)
			if !ok {
				t.Fatalf("store.Lookup(%q) found no driver", spelling)
			}
			if d != nil && got != d {
				t.Errorf("store.Lookup(%q) found %s, another driver than %s", spelling, got.Name, d.Name)
			}
			d = got
		}
	}
	if d.Open == nil || d.Refusal != "" {
		t.Fatalf("driver %s has no Open (refusal %q)", d.Name, d.Refusal)
	}
	seen := make(map[string]bool)
	defaults := make(map[string]string)
	for _, f := range d.Flags {
		if f.Name == "" || strings.HasPrefix(f.Name, "-") || f.Usage == "" || seen[f.Name] {
			t.Errorf("flag %+v: want a unique name without dashes and a usage text", f)
		}
		seen[f.Name] = true
		defaults[f.Name] = f.Default
	}
	if d.Configure != nil {
		v := store.Values{
			Lookup: func(name string) (string, bool) {
				value, ok := defaults[name]
				if !ok {
					t.Errorf("Configure of %s read --%s, which is not one of its flags", d.Name, name)
				}
				return value, false
			},
			DefaultNamespace: "host:4730",
		}
		if _, err := d.Configure(v); err != nil && !strings.Contains(err.Error(), "--") {
			t.Errorf("Configure of %s with every flag at its default: %v; an error must name the flag to fix", d.Name, err)
		}
	}
	o := st.cfg.options(t)
	if d.Check != nil {
		if err := d.Check(context.Background(), o); err != nil {
			t.Errorf("Check of %s on Options that open: %v", d.Name, err)
		}
	}
	s, err := store.Open(context.Background(), strings.ToUpper(st.cfg.names[0]), o)
	if err != nil {
		t.Fatalf("store.Open(%q): %v", strings.ToUpper(st.cfg.names[0]), err)
	}
	t.Cleanup(func() { _ = s.Close() })
	apply(t, s, store.Batch{Adds: []store.Record{Sample(1)}})
	expect(t, s, []store.Record{Sample(1)})
}

func testExclusive(t *testing.T, st *suite) {
	if st.cfg.openSame == nil {
		t.Skip("the driver declares no storetest.Exclusive")
	}
	first := st.open(t)
	start := time.Now()
	second, err := st.cfg.openSame(t, first)
	if err == nil {
		second.Close()
		t.Fatal("a second Open of the same data succeeded while the first was open")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Errorf("second Open: %v, want an error wrapping store.ErrLocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the second Open took %v to fail", d)
	}
	apply(t, first, store.Batch{Adds: []store.Record{Sample(1)}})
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := st.cfg.openSame(t, first)
	if err != nil {
		t.Fatalf("Open after the first store closed: %v", err)
	}
	t.Cleanup(func() { _ = third.Close() })
	expect(t, third, []store.Record{Sample(1)})
}

func testNamespaces(t *testing.T, st *suite) {
	open := st.cfg.namespaced
	if open == nil {
		t.Skip("the driver declares no storetest.Namespaced")
	}
	ns := strings.NewReplacer("/", ".", "{", "(", "}", ")").Replace(t.Name()) + "-" + time.Now().Format("150405.000000000")
	a, b := open(t, ns+"-a"), open(t, ns+"-b")
	// The same Seqs in both: they must not replace or delete each other.
	apply(t, a, store.Batch{Adds: []store.Record{Sample(1), Sample(2), Sample(3)}})
	other := Sample(2)
	other.Function, other.Handle = "other", "H:b:2"
	apply(t, b, store.Batch{Adds: []store.Record{other, Sample(4)}})
	apply(t, b, store.Batch{Deletes: []uint64{1, 3}})
	apply(t, a, store.Batch{Deletes: []uint64{4}})
	expect(t, a, []store.Record{Sample(1), Sample(2), Sample(3)})
	expect(t, b, []store.Record{other, Sample(4)})

	// a is never closed: its server died. The heir takes its records.
	heir := open(t, ns+"-a")
	expect(t, heir, []store.Record{Sample(1), Sample(2), Sample(3)})
	apply(t, heir, store.Batch{Deletes: []uint64{2}})
	expect(t, heir, []store.Record{Sample(1), Sample(3)})
	expect(t, b, []store.Record{other, Sample(4)})
}

func testReplayAcrossChunks(t *testing.T, st *suite) {
	n := st.cfg.chunk
	if n == 0 {
		t.Skip("the driver declares no storetest.ReplayChunk")
	}
	s := st.open(t)
	total := uint64(3*n + 17)
	var b store.Batch
	for seq := uint64(1); seq <= total; seq++ {
		b.Adds = append(b.Adds, Sample(seq))
	}
	apply(t, s, b)
	deleted := []uint64{uint64(2 * n), uint64(2*n + 1)}
	var seqs []uint64
	err := s.Replay(context.Background(), func(r store.Record) error {
		seqs = append(seqs, r.Seq)
		if r.Seq != 10 {
			return nil
		}
		var b store.Batch
		for seq := total + 1; seq <= total+10; seq++ {
			b.Adds = append(b.Adds, Sample(seq))
		}
		b.Deletes = deleted
		return s.Apply(context.Background(), b)
	})
	if err != nil {
		t.Fatalf("Replay with an Apply from fn: %v", err)
	}
	// The added records may come or not; nothing else may differ.
	seqs = slices.DeleteFunc(seqs, func(seq uint64) bool { return seq > total })
	var want []uint64
	for seq := uint64(1); seq <= total; seq++ {
		if !slices.Contains(deleted, seq) {
			want = append(want, seq)
		}
	}
	if !slices.Equal(seqs, want) {
		t.Errorf("replayed %d of the first %d records (%v...), want %d: every record but the deleted, once, in order",
			len(seqs), total, seqs[:min(len(seqs), 5)], len(want))
	}
	// All of it is stored afterwards.
	if got := Count(t, s); got != int(total)+10-len(deleted) {
		t.Errorf("after the Replay %d records are stored, want %d", got, int(total)+10-len(deleted))
	}
}

// Server is the server behind a networked store, as a test controls it.
type Server struct {
	// Kill makes the server go away at once, without a clean shutdown.
	Kill func(t *testing.T)
	// Start brings it back, on the same data and address, after Kill.
	Start func(t *testing.T)
	// Freeze and Thaw, when set, stop and resume the server's process
	// (SIGSTOP, SIGCONT): connections stay open and nothing answers.
	Freeze, Thaw func(t *testing.T)
}

// Outage declares a store behind a server that can go away. setup must
// open a fresh store whose operations are bounded by timeout, on a server
// the test may control through srv (a server of the test's own, or one
// that no other test uses meanwhile). Run checks that with the server
// frozen or dead, Apply and Replay fail with store.ErrUnavailable within
// about timeout, that Apply succeeds again once the server is back
// (retried, as the Committer retries), and that every record committed
// before the outage is there, whole.
func Outage(setup func(t *testing.T) (s store.Store, srv Server, timeout time.Duration)) Option {
	return func(c *config) { c.outage = setup }
}

func testOutage(t *testing.T, st *suite) {
	if st.cfg.outage == nil {
		t.Skip("the driver declares no storetest.Outage")
	}
	s, srv, timeout := st.cfg.outage(t)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	var acked []store.Record
	for first := uint64(1); first <= 300; first += 100 {
		var b store.Batch
		for seq := first; seq < first+100; seq++ {
			b.Adds = append(b.Adds, Sample(seq))
		}
		apply(t, s, b)
		acked = append(acked, b.Adds...)
	}
	apply(t, s, store.Batch{Deletes: []uint64{1, 2, 3}})
	acked = acked[3:]

	// The Applies that fail during the outage add these: an error does not
	// promise that nothing was stored, so they may or may not come back.
	const failedFrom, failedTo = 1000, 1099
	failed := uint64(failedFrom)
	failsPromptly := func(what string) {
		t.Helper()
		start := time.Now()
		err := s.Apply(ctx, store.Batch{Adds: []store.Record{Sample(failed)}})
		failed++
		took := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Apply with the server %s: %v, want an error wrapping store.ErrUnavailable", what, err)
		}
		if took > timeout+time.Second {
			t.Errorf("Apply with the server %s took %v; the store's timeout is %v", what, took, timeout)
		}
		t.Logf("Apply with the server %s: %v after %v", what, err, took.Round(time.Millisecond))
	}
	if srv.Freeze != nil {
		srv.Freeze(t)
		failsPromptly("frozen")
		srv.Thaw(t)
	}
	srv.Kill(t)
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			srv.Start(t)
		}
	})
	failsPromptly("killed") // a pooled connection that died
	failsPromptly("dead")   // new connections that cannot connect
	if err := s.Replay(ctx, func(store.Record) error { return nil }); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Replay with the server dead: %v, want an error wrapping store.ErrUnavailable", err)
	}

	srv.Start(t)
	restarted = true
	late := store.Batch{Adds: []store.Record{Sample(2000)}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := s.Apply(ctx, late)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Apply after the server came back: %v", err)
		}
	}
	acked = append(acked, Sample(2000))
	got := ReplayAll(t, s)
	got = slices.DeleteFunc(got, func(r store.Record) bool { return r.Seq >= failedFrom && r.Seq <= failedTo })
	if d := diffAll(got, acked); d != "" {
		t.Errorf("after the outage, Replay differs from what was acknowledged: %s", d)
	}
}
