package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
	"go.uber.org/goleak"

	"gearmand/store"
	"gearmand/store/postgres/pgtest"
	"gearmand/store/storetest"
)

// TestMain runs the tests on one throwaway PostgreSQL and then checks that
// no goroutine of a closed Store (pgxpool's, a bounded Close's) outlives
// them.
func TestMain(m *testing.M) {
	if v := os.Getenv(envCQueueChild); v != "" {
		cqueueChild(v)
		return
	}
	if v := os.Getenv(envHandBackChild); v != "" {
		handBackChild(v)
		return
	}
	code := pgtest.Run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left running:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func sharedURL(tb testing.TB) string {
	tb.Helper()
	return pgtest.Server(tb).SharedDatabase(tb)
}

var namespaces atomic.Int64

// freshNamespace is a namespace no other test uses.
func freshNamespace(tb testing.TB) string {
	return fmt.Sprintf("%s/%d", tb.Name(), namespaces.Add(1))
}

func openNS(tb testing.TB, url, namespace string, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(context.Background(), url, namespace, opts...)
	if err != nil {
		tb.Fatalf("Open(%q): %v", namespace, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	url := sharedURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openNS(t, url, freshNamespace(t))
	}, storetest.Reopen(func(t *testing.T, old store.Store) store.Store {
		return openNS(t, url, old.(*Store).Namespace())
	}), storetest.Registered([]string{"Postgres", "libpq"}, func(t *testing.T) store.Options {
		return store.Options{DSN: url, Namespace: freshNamespace(t)}
	}), storetest.Namespaced(func(t *testing.T, ns string) store.Store {
		return openNS(t, url, ns)
	}), storetest.Outage(func(t *testing.T) (store.Store, storetest.Server, time.Duration) {
		db := pgtest.Server(t)
		if !db.Throwaway() {
			t.Skipf("the server comes from %s: not stopping it", pgtest.EnvURL)
		}
		const timeout = 2 * time.Second
		// Stop is pg_ctl stop -m immediate, as a crash would.
		return openNS(t, url, freshNamespace(t), ApplyTimeout(timeout)), storetest.Server{
			Kill:  func(t *testing.T) { db.Stop(t) },
			Start: func(t *testing.T) { db.Start(t) },
		}, timeout
	}))
}

func BenchmarkStore(b *testing.B) {
	url := sharedURL(b)
	storetest.Bench(b, func(b *testing.B) store.Store {
		return openNS(b, url, freshNamespace(b))
	})
}

func TestRegistered(t *testing.T) {
	url := sharedURL(t)
	s, err := store.Open(context.Background(), "Postgres", store.Options{
		DSN: url, Namespace: freshNamespace(t), Extra: map[string]string{ExtraApplyTimeout: "3s"},
	})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	defer s.Close()
	ps, ok := s.(*Store)
	if !ok {
		t.Fatalf("store.Open gave a %T", s)
	}
	if ps.applyTimeout != 3*time.Second {
		t.Errorf("apply timeout %v, want 3s", ps.applyTimeout)
	}
	for _, o := range []store.Options{
		{DSN: url},
		{Namespace: "x"},
		{DSN: url, Namespace: "nul\x00byte"},
		{DSN: url, Namespace: "not utf-8 \xff"},
		{DSN: url, Namespace: "x", Extra: map[string]string{ExtraApplyTimeout: "soon"}},
	} {
		if s, err := store.Open(context.Background(), "postgres", o); err == nil {
			s.Close()
			t.Errorf("store.Open(%+v) succeeded", o)
		}
	}
}

func TestApplyCancelled(t *testing.T) {
	s := openNS(t, sharedURL(t), freshNamespace(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Apply(ctx, store.Batch{Adds: []store.Record{storetest.Sample(1)}})
	if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Apply with a cancelled context: %v, want context.Canceled and not ErrUnavailable", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	_, err := Open(context.Background(), "host=/nonexistent/dir port=1 user=x dbname=x sslmode=disable",
		"ns", ApplyTimeout(time.Second))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of a missing server: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open of a missing server took %v", d)
	}
}

func TestHostileNames(t *testing.T) {
	url := sharedURL(t)
	ns := freshNamespace(t) + `'; DROP TABLE gearmand_jobs; --`
	s := openNS(t, url, ns)
	r := storetest.Sample(1)
	r.Function = "f'\x00\"; DELETE FROM gearmand_jobs; --\xff\xfe"
	r.Unique = "\x00\xff'"
	r.Reducer = "\\x00"
	if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{r}}); err != nil {
		t.Fatal(err)
	}
	if got := replay(t, s); !equalRecords(got, []store.Record{r}) {
		t.Errorf("replayed %v", got)
	}
}

func TestInterpretError(t *testing.T) {
	live := context.Background()
	for _, c := range []struct {
		native error
		want   error
	}{
		{store.ErrClosed, store.ErrClosed},
		{puddle.ErrClosedPool, store.ErrClosed},
		{&pgconn.PgError{Code: "57P01"}, store.ErrUnavailable}, // admin shutdown
		{&pgconn.PgError{Code: "08006"}, store.ErrUnavailable}, // connection failure
		{&pgconn.PgError{Code: "53100"}, store.ErrUnavailable}, // disk full
		{&pgconn.PgError{Code: "40001"}, store.ErrUnavailable}, // serialization failure
		{&pgconn.PgError{Code: "54000"}, store.ErrTooLarge},
		{&pgconn.PgError{Code: "XX001"}, store.ErrCorrupt},
		{&pgconn.PgError{Code: fenceCode, Message: "namespace taken over"}, store.ErrLocked},
		{fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), store.ErrUnavailable},
		{pgconn.ErrConnClosed, store.ErrUnavailable},
		{context.DeadlineExceeded, store.ErrUnavailable}, // the apply timeout, the caller's context alive
	} {
		got := interpretError(live, c.native)
		if !errors.Is(got, c.want) || !errors.Is(got, c.native) {
			t.Errorf("interpretError(%v) = %v, want it to wrap %v and the native error", c.native, got, c.want)
		}
	}
	done, cancel := context.WithCancel(live)
	cancel()
	if err := interpretError(done, context.Canceled); err != context.Canceled {
		t.Errorf("the caller's own cancellation: %v", err)
	}
	plain := &pgconn.PgError{Code: "23505"}
	if err := interpretError(live, plain); !errors.Is(err, plain) || store.IsSentinel(err) || !strings.HasPrefix(err.Error(), "postgres: ") {
		t.Errorf("a unique violation: %v, want it wrapped without a sentinel", err)
	}
	if interpretError(live, nil) != nil {
		t.Error("interpretError(nil) != nil")
	}
}

func TestSplitTime(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Unix(0, 1),
		time.Unix(-1, 999_999_999),
		time.Unix(1_700_000_000, 123_456_789),
		time.Date(1900, 1, 1, 0, 0, 0, 7, time.UTC),
	} {
		ts, nanos := splitTime(tm)
		if got := joinTime(ts, nanos); !got.Equal(tm) || got.IsZero() != tm.IsZero() {
			t.Errorf("splitTime(%v) then joinTime = %v", tm, got)
		}
	}
}

func replay(t *testing.T, s *Store) []store.Record {
	t.Helper()
	var got []store.Record
	if err := s.Replay(context.Background(), func(r store.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}

func equalRecords(got, want []store.Record) bool {
	return slices.EqualFunc(got, want, storetest.Equal)
}

func seqs(rs []store.Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

// TestWriteRoutes runs adds that replace stored records, beside deletes,
// through both ways Apply writes: the upsert below copyMinAdds adds, COPY
// after a DELETE from it on.
func TestWriteRoutes(t *testing.T) {
	url := sharedURL(t)
	// Each case is n adds, of size bytes of data each (0: the sample's):
	// below and at copyMinAdds, and few adds that reach copyMinBytes.
	for _, tc := range []struct{ n, size int }{{1, 0}, {copyMinAdds - 1, 0}, {copyMinAdds, 0}, {500, 0}, {2, copyMinBytes / 2}} {
		n := tc.n
		sample := func(seq uint64) store.Record {
			r := storetest.Sample(seq)
			if tc.size > 0 {
				r.Data = bytes.Repeat([]byte{byte(seq)}, tc.size)
			}
			return r
		}
		t.Run(fmt.Sprint(n, "x", tc.size), func(t *testing.T) {
			s := openNS(t, url, freshNamespace(t))
			ctx := context.Background()
			var first store.Batch
			for i := range 2 * n {
				first.Adds = append(first.Adds, sample(uint64(i+1)))
			}
			if err := s.Apply(ctx, first); err != nil {
				t.Fatal(err)
			}
			// Replace the first n, delete the next n, add n more.
			var second store.Batch
			var want []store.Record
			for i := range n {
				r := sample(uint64(i + 1))
				r.Data = append(r.Data, " replaced"...)
				r.Attempts++
				second.Adds = append(second.Adds, r)
				want = append(want, r)
				second.Deletes = append(second.Deletes, uint64(n+i+1))
			}
			for i := range n {
				r := sample(uint64(2*n + i + 1))
				second.Adds = append(second.Adds, r)
				want = append(want, r)
			}
			if n == 1 {
				// One add only: the upsert route.
				second.Adds = second.Adds[:1]
				want = want[:1]
			}
			if err := s.Apply(ctx, second); err != nil {
				t.Fatal(err)
			}
			got := replay(t, s)
			if !equalRecords(got, want) {
				t.Errorf("got %d records, want %d", len(got), len(want))
				for i := range min(len(got), len(want)) {
					if d := storetest.Diff(got[i], want[i]); d != "" {
						t.Fatalf("record %d: %s", i, d)
					}
				}
			}
		})
	}
}

// TestFrozenServer puts a proxy that stops forwarding between the store
// and the server: a database that is there but does not answer must make
// Apply fail with store.ErrUnavailable at the apply timeout, not hang.
func TestFrozenServer(t *testing.T) {
	db := pgtest.Server(t)
	addr, ok := db.TCPAddr()
	if !ok {
		t.Skip("the server has no TCP address to put a proxy in front of")
	}
	url := db.NewDatabase(t)
	p := startProxy(t, addr)
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxied := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", p.port(), cfg.User, cfg.Database)
	if cfg.Password != "" {
		proxied += " password=" + cfg.Password
	}
	const timeout = time.Second
	s := openNS(t, proxied, freshNamespace(t), ApplyTimeout(timeout))
	ctx := context.Background()
	if err := s.Apply(ctx, store.Batch{Adds: []store.Record{storetest.Sample(1)}}); err != nil {
		t.Fatal(err)
	}
	p.freeze()
	for _, n := range []int{1, copyMinAdds} { // both write routes
		var b store.Batch
		for i := range n {
			b.Adds = append(b.Adds, storetest.Sample(uint64(10+i)))
		}
		start := time.Now()
		err := s.Apply(ctx, b)
		took := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Apply of %d through a frozen connection: %v, want ErrUnavailable", n, err)
		}
		if took < timeout/2 || took > timeout+2*time.Second {
			t.Errorf("Apply of %d through a frozen connection failed after %v, want about %v", n, took, timeout)
		}
		t.Logf("Apply of %d, frozen: %v after %v", n, err, took.Round(time.Millisecond))
	}
	start := time.Now()
	err = s.Close()
	took := time.Since(start)
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Close: %v", err)
	}
	if took > timeout+time.Second {
		t.Errorf("Close took %v, want at most about the apply timeout %v", took, timeout)
	}
	t.Logf("Close: %v after %v", err, took.Round(time.Millisecond))
}

// TestApplyFromReplay: the callback may Apply while Replay's query is
// open, on another pooled connection; a DSN that asks for a pool of one
// still works, as Open keeps at least two.
func TestApplyFromReplay(t *testing.T) {
	url := sharedURL(t)
	s := openNS(t, withParam(url, "pool_max_conns", "1"), freshNamespace(t))
	ctx := context.Background()
	var b store.Batch
	for seq := uint64(1); seq <= 100; seq++ {
		b.Adds = append(b.Adds, storetest.Sample(seq))
	}
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := s.Replay(ctx, func(r store.Record) error {
		n++
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return s.Apply(actx, store.Batch{Deletes: []uint64{r.Seq}, Adds: []store.Record{storetest.Sample(r.Seq + 1000)}})
	})
	if err != nil {
		t.Fatalf("Replay with Apply in its callback: %v", err)
	}
	if n != 100 {
		t.Errorf("Replay saw %d records, want the 100 of its snapshot", n)
	}
	got := replay(t, s)
	if len(got) != 100 || got[0].Seq != 1001 || got[99].Seq != 1100 {
		t.Errorf("after: %d records, %v", len(got), seqs(got)[:min(3, len(got))])
	}
}

// withParam adds a connection parameter to a URL or keyword/value DSN.
func withParam(dsn, key, value string) string {
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&" + key + "=" + value
	}
	return dsn + "?" + key + "=" + value
}
