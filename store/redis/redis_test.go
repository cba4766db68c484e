package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"gearmand/store"
	"gearmand/store/storetest"
)

// corrupt overwrites the stored value of seq with bytes DecodeRecord
// rejects (an unknown version), behind the store's back.
func corrupt(tb testing.TB, s *Store, seq uint64) {
	tb.Helper()
	if err := rawClient(tb, s.cfg).Set(context.Background(), s.jobKey+member(seq), []byte{0xee, 0, 0}, 0).Err(); err != nil {
		tb.Fatalf("corrupting record %d: %v", seq, err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, config(t))
	}, storetest.Reopen(func(t *testing.T, old store.Store) store.Store {
		return openStore(t, old.(*Store).Config())
	}), storetest.Corrupt(func(t *testing.T, s store.Store, seq uint64) {
		corrupt(t, s.(*Store), seq)
	}), storetest.Registered([]string{"redis"}, func(t *testing.T) store.Options {
		c := config(t)
		o := store.Options{DSN: strings.Join(c.Addrs, ","), Namespace: c.Namespace, Extra: map[string]string{}}
		if c.Password != "" {
			o.Extra["password"] = c.Password
		}
		if c.Username != "" {
			o.Extra["username"] = c.Username
		}
		if c.DB != 0 {
			o.Extra["db"] = strconv.Itoa(c.DB)
		}
		return o
	}), storetest.Namespaced(func(t *testing.T, ns string) store.Store {
		c := config(t)
		c.Namespace = ns
		t.Cleanup(func() { dropNamespace(t, c) })
		return openStore(t, c)
	}), storetest.ReplayChunk(replayPageMax), storetest.Outage(outage))
}

// outage is the storetest.Outage setup: a redis-server of the test's own,
// killed and started again on the same port and append-only file.
func outage(t *testing.T) (store.Store, storetest.Server, time.Duration) {
	needRedisServer(t)
	dir := t.TempDir()
	srv, err := startRedisServer(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop() })
	const timeout = 500 * time.Millisecond
	s := openStore(t, Config{Addrs: []string{srv.addr}, Namespace: newNamespace(t), Timeout: timeout})
	return s, storetest.Server{
		Kill: func(*testing.T) { srv.kill() },
		Start: func(t *testing.T) {
			again, err := startRedisServer(dir, srv.port)
			if err != nil {
				t.Fatal(err)
			}
			srv = again
			t.Cleanup(func() { srv.stop() })
		},
		Freeze: func(t *testing.T) { srv.signal(t, syscall.SIGSTOP) },
		Thaw:   func(t *testing.T) { srv.signal(t, syscall.SIGCONT) },
	}, timeout
}

// The whole suite on a Redis Cluster of two primaries: every Apply is a
// Lua script, which Cluster refuses (CROSSSLOT) unless all its keys share a
// slot, and the tests' namespaces land on both nodes.
func TestCluster(t *testing.T) {
	needRedisServer(t)
	addrs := startCluster(t)
	var slots [2]int
	open := func(t *testing.T) store.Store {
		c := Config{Addrs: addrs, Namespace: newNamespace(t)}
		slots[keySlot(c.Namespace)/(16384/2)]++
		s := openStore(t, c)
		if _, ok := s.client.(*goredis.ClusterClient); !ok {
			t.Fatalf("two addresses gave a %T, want a cluster client", s.client)
		}
		return s
	}
	storetest.Run(t, open, storetest.Reopen(func(t *testing.T, old store.Store) store.Store {
		return openStore(t, old.(*Store).Config())
	}), storetest.Corrupt(func(t *testing.T, s store.Store, seq uint64) {
		corrupt(t, s.(*Store), seq)
	}), storetest.Records(5000))
	if slots[0]+slots[1] > 10 && (slots[0] == 0 || slots[1] == 0) {
		t.Errorf("namespaces per node: %v; the test did not use both nodes", slots)
	}

	// One address of the cluster, said to be one: the client finds the
	// other node and follows its namespaces there.
	t.Run("OneSeed", func(t *testing.T) {
		for i := range 8 {
			s := openStore(t, Config{Addrs: addrs[:1], Cluster: true, Namespace: newNamespace(t) + strconv.Itoa(i)})
			apply(t, s, store.Batch{Adds: samples(1, 2)})
			apply(t, s, store.Batch{Adds: samples(3), Deletes: []uint64{1}})
			if got := seqs(replayAll(t, s)); !slices.Equal(got, []uint64{2, 3}) {
				t.Errorf("namespace %q replays %v, want [2 3]", s.cfg.Namespace, got)
			}
		}
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		return openStore(b, config(b))
	})
}

func replayAll(tb testing.TB, s store.Store) []store.Record {
	tb.Helper()
	var got []store.Record
	if err := s.Replay(context.Background(), func(r store.Record) error {
		got = append(got, r)
		return nil
	}); err != nil {
		tb.Fatalf("Replay: %v", err)
	}
	return got
}

func seqs(rs []store.Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func apply(tb testing.TB, s store.Store, b store.Batch) {
	tb.Helper()
	if err := s.Apply(context.Background(), b); err != nil {
		tb.Fatalf("Apply: %v", err)
	}
}

func samples(seqs ...uint64) []store.Record {
	out := make([]store.Record, len(seqs))
	for i, seq := range seqs {
		out[i] = storetest.Sample(seq)
	}
	return out
}

// routes are the two ways Apply writes a batch that adds: the script, and
// a watched MULTI/EXEC from watchMinBytes of payload. pad gives adds the
// payload that takes their batch down the route.
var routes = []struct {
	name string
	pad  func(adds []store.Record) []store.Record
}{
	{"script", func(adds []store.Record) []store.Record { return adds }},
	{"multi", func(adds []store.Record) []store.Record {
		each := watchMinBytes/len(adds) + 1
		for i := range adds {
			adds[i].Data = []byte(strings.Repeat(strconv.FormatUint(adds[i].Seq, 10)+" ", each)[:each])
		}
		return adds
	}},
}

func TestConfigFromOptions(t *testing.T) {
	for _, tc := range []struct {
		o    store.Options
		want Config
		bad  bool
	}{
		{o: store.Options{DSN: "10.0.0.1:6379", Namespace: "n"},
			want: Config{Addrs: []string{"10.0.0.1:6379"}, Namespace: "n"}},
		{o: store.Options{DSN: " a:1, b:2 ,c:3", Namespace: "n"},
			want: Config{Addrs: []string{"a:1", "b:2", "c:3"}, Namespace: "n"}},
		{o: store.Options{DSN: "s1:26379,s2:26379", Namespace: "n", Extra: map[string]string{"master": "mymaster", "password": "pw", "db": "3", "timeout": "250ms"}},
			want: Config{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "mymaster", Password: "pw", DB: 3, Namespace: "n", Timeout: 250 * time.Millisecond}},
		{o: store.Options{DSN: "redis://u:p@h:7000/2", Namespace: "n"},
			want: Config{Addrs: []string{"h:7000"}, Username: "u", Password: "p", DB: 2, Namespace: "n"}},
		{o: store.Options{DSN: "redis://u:p@h:7000/2", Namespace: "n", Extra: map[string]string{"password": "other"}},
			want: Config{Addrs: []string{"h:7000"}, Username: "u", Password: "other", DB: 2, Namespace: "n"}},
		{o: store.Options{Namespace: "n"}, want: Config{Namespace: "n"}},
		{o: store.Options{DSN: "cfg.example:6379", Namespace: "n", Extra: map[string]string{"cluster": "true"}},
			want: Config{Addrs: []string{"cfg.example:6379"}, Cluster: true, Namespace: "n"}},
		{o: store.Options{DSN: "h:1", Extra: map[string]string{"cluster": "maybe"}}, bad: true},
		{o: store.Options{DSN: "h:1", Extra: map[string]string{"db": "x"}}, bad: true},
		{o: store.Options{DSN: "h:1", Extra: map[string]string{"timeout": "5"}}, bad: true},
		{o: store.Options{DSN: "redis://h:1/notanumber"}, bad: true},
		{o: store.Options{DSN: "h:1", Namespace: "n", Extra: map[string]string{ExtraImportPrefix: "myq", ExtraImportFunctions: "a-b, c ,,d-e"}},
			want: Config{Addrs: []string{"h:1"}, Namespace: "n", ImportPrefix: "myq", ImportFunctions: []string{"a-b", "c", "d-e"}}},
		{o: store.Options{DSN: "rediss://h:6380", Namespace: "n"},
			want: Config{Addrs: []string{"h:6380"}, Namespace: "n", TLS: &tls.Config{ServerName: "h"}}},
	} {
		got, err := ConfigFromOptions(tc.o)
		if tc.bad {
			if err == nil {
				t.Errorf("%+v: no error, got %+v", tc.o, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc.o, err)
			continue
		}
		if !slices.Equal(got.Addrs, tc.want.Addrs) || got.MasterName != tc.want.MasterName ||
			got.Username != tc.want.Username || got.Password != tc.want.Password || got.DB != tc.want.DB ||
			got.Namespace != tc.want.Namespace || got.Timeout != tc.want.Timeout || got.Cluster != tc.want.Cluster ||
			got.ImportPrefix != tc.want.ImportPrefix || !slices.Equal(got.ImportFunctions, tc.want.ImportFunctions) ||
			(got.TLS == nil) != (tc.want.TLS == nil) || got.TLS != nil && got.TLS.ServerName != tc.want.TLS.ServerName {
			t.Errorf("%+v:\n got %+v\nwant %+v", tc.o, got, tc.want)
		}
	}
}

func TestNamespaceRequired(t *testing.T) {
	for _, ns := range []string{"", "a{b", "a}b", "{x}"} {
		s, err := Open(context.Background(), Config{Addrs: []string{"127.0.0.1:1"}, Namespace: ns})
		if err == nil {
			s.Close()
			t.Errorf("Open with namespace %q succeeded", ns)
		}
	}
}

func TestMember(t *testing.T) {
	for _, seq := range []uint64{0, 1, 9, 10, 1 << 53, 1<<53 + 1, 1<<64 - 1} {
		m := member(seq)
		if len(m) != seqDigits {
			t.Errorf("member(%d) = %q: %d bytes", seq, m, len(m))
		}
		if got, err := parseMember(m); err != nil || got != seq {
			t.Errorf("parseMember(member(%d) = %q) = %d, %v", seq, m, got, err)
		}
	}
	if member(1<<53) >= member(1<<53+1) || member(9) >= member(10) || member(1<<64-2) >= member(1<<64-1) {
		t.Error("member order is not Seq order")
	}
	for _, bad := range []string{"", "1", "0000000000000000000a", "99999999999999999999", "-0000000000000000001"} {
		if _, err := parseMember(bad); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("parseMember(%q): %v, want ErrCorrupt", bad, err)
		}
	}
}

// Seqs beyond 2^53, where a float64 score would round, replay in order.
func TestLargeSeqs(t *testing.T) {
	s := openStore(t, config(t))
	want := []uint64{1<<53 - 1, 1 << 53, 1<<53 + 1, 1<<53 + 2, 1<<63 + 5, 1<<64 - 2, 1<<64 - 1}
	apply(t, s, store.Batch{Adds: samples(1<<64-1, 1<<53+1, 1<<53, 1<<63+5, 1<<53+2, 1<<64-2, 1<<53-1)})
	if got := seqs(replayAll(t, s)); !slices.Equal(got, want) {
		t.Errorf("Replay gave %v, want %v", got, want)
	}
}

// Replay crosses page boundaries, including pages that shrink for large
// values, without losing or repeating a record.
func TestReplayPages(t *testing.T) {
	s := openStore(t, config(t))
	var b store.Batch
	n := replayPageMax*2 + 7
	for seq := 1; seq <= n; seq++ {
		r := storetest.Sample(uint64(seq))
		if seq%700 == 0 {
			r.Data = make([]byte, 3<<20) // a few pages over replayPageBytes
		}
		b.Adds = append(b.Adds, r)
		if len(b.Adds) == 500 {
			apply(t, s, b)
			b = store.Batch{}
		}
	}
	apply(t, s, b)
	got := replayAll(t, s)
	if len(got) != n {
		t.Fatalf("Replay gave %d records, want %d", len(got), n)
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has Seq %d", i, r.Seq)
		}
	}
}

// The layout: exactly one index key and one key per job, each carrying the
// namespace as its hash tag, all in one Cluster slot, the value binary.
func TestKeyLayout(t *testing.T) {
	c := config(t)
	c.Namespace += ":with-dash\x00and NUL"
	t.Cleanup(func() { dropNamespace(t, c) })
	s := openStore(t, c)
	r := store.Record{Seq: 42, Function: "image-resize", Unique: "", Data: []byte{0, 'a', 0, 0xff}}
	apply(t, s, store.Batch{Adds: append(samples(1, 2, 3), r)})
	apply(t, s, store.Batch{Deletes: []uint64{2}})

	keys := namespaceKeys(t, c)
	slices.Sort(keys)
	prefix := "gearmand:{" + c.Namespace + "}:"
	want := []string{
		prefix + "job:00000000000000000001",
		prefix + "job:00000000000000000003",
		prefix + "job:00000000000000000042",
		prefix + "owner",
		prefix + "seqs",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys of the namespace:\n\t%q\nwant\n\t%q", keys, want)
	}
	slot := keySlot(keys[0])
	for _, k := range keys {
		if got := keySlot(k); got != slot {
			t.Errorf("key %q is in slot %d, %q in %d", k, got, keys[0], slot)
		}
	}
	if keySlot("gearmand:{"+c.Namespace+"}") != keySlot(c.Namespace) {
		t.Error("the hash tag is not the whole namespace")
	}

	client := rawClient(t, c)
	ctx := context.Background()
	members, err := client.ZRangeWithScores(ctx, prefix+"seqs", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, z := range members {
		if z.Score != 0 {
			t.Errorf("member %v has score %v, want 0", z.Member, z.Score)
		}
		got = append(got, z.Member.(string))
	}
	if want := []string{"00000000000000000001", "00000000000000000003", "00000000000000000042"}; !slices.Equal(got, want) {
		t.Errorf("index members %q, want %q", got, want)
	}
	v, err := client.Get(ctx, prefix+"job:00000000000000000042").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if want := store.AppendValue(nil, &r); string(v) != string(want) {
		t.Errorf("stored value %q, want %q", v, want)
	}
}

func TestKeySlot(t *testing.T) {
	// Vectors from the Redis Cluster specification.
	if got := crc16([]byte("123456789")); got != 0x31c3 {
		t.Errorf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]uint16{
		"{user1000}.following": keySlot("user1000"),
		"foo{}{bar}":           keySlot("foo{}{bar}"),
		"foo{{bar}}zap":        keySlot("{bar"),
		"foo{bar}{zap}":        keySlot("bar"),
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

// keySlot is the Redis Cluster hash slot of key: CRC16 of its hash tag
// (the bytes between the first '{' and the next '}', if not empty) or of
// the whole key, modulo 16384.
func keySlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16([]byte(key)) % 16384
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), Redis Cluster's.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// A value gone from under its index member (evicted, or deleted by hand)
// is reported as corrupt and skipped, and the member is kept.
func TestMissingValue(t *testing.T) {
	c := config(t)
	s := openStore(t, c)
	apply(t, s, store.Batch{Adds: samples(1, 2, 3)})
	client := rawClient(t, c)
	if err := client.Del(context.Background(), s.jobKey+member(2)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.ZAdd(context.Background(), s.seqsKey, goredis.Z{Member: "not-a-seq"}).Err(); err != nil {
		t.Fatal(err)
	}
	var reports []string
	s.SetCorruptHandler(func(key string, err error) {
		if !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("report for %q: %v, want ErrCorrupt", key, err)
		}
		reports = append(reports, key)
	})
	for range 2 {
		reports = nil
		if got := seqs(replayAll(t, s)); !slices.Equal(got, []uint64{1, 3}) {
			t.Errorf("Replay gave %v, want [1 3]", got)
		}
		want := []string{s.jobKey + member(2), s.seqsKey + ` member "not-a-seq"`}
		if !slices.Equal(reports, want) {
			t.Errorf("reports %q, want %q", reports, want)
		}
	}
}

// A Redis that is not there fails Open with ErrUnavailable, promptly.
func TestOpenUnavailable(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := Open(context.Background(), Config{
		Addrs: []string{"127.0.0.1:" + strconv.Itoa(port)}, Namespace: "n", Timeout: time.Second,
	})
	if err == nil {
		s.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %v to fail", d)
	}
}

// Close while Applys run: each Apply either succeeds or fails with
// ErrClosed, and none hangs.
func TestCloseDuringApply(t *testing.T) {
	s := openStore(t, config(t))
	done := make(chan error, 4)
	applied := make(chan struct{}, 4*1000)
	for g := range 4 {
		go func() {
			for i := range uint64(1000) {
				if err := s.Apply(context.Background(), store.Batch{Adds: samples(uint64(g)<<20 + i)}); err != nil {
					done <- err
					return
				}
				applied <- struct{}{}
			}
			done <- nil
		}()
	}
	for range 20 { // close in the middle, not before the first Apply
		<-applied
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 4 {
		if err := <-done; err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Apply racing Close: %v, want nil or ErrClosed", err)
		}
	}
}

func TestPersistence(t *testing.T) {
	needRedisServer(t)
	srv, err := startRedisServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	s := openStore(t, Config{Addrs: []string{srv.addr}, Namespace: newNamespace(t)})
	p, err := s.Persistence(context.Background())
	if err != nil {
		t.Fatalf("Persistence: %v", err)
	}
	if want := (Persistence{AppendOnly: true, AppendFsync: "always", MaxmemoryPolicy: "noeviction"}); p != want {
		t.Errorf("Persistence = %+v, want %+v", p, want)
	}
	if w := p.Warnings(); len(w) != 0 {
		t.Errorf("warnings for the durable settings: %q", w)
	}
	if err := rawClient(t, s.cfg).ConfigSet(context.Background(), "appendfsync", "everysec").Err(); err != nil {
		t.Fatal(err)
	}
	if p, err = s.Persistence(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := p.Warnings(); len(w) != 1 || !strings.Contains(w[0], "everysec") {
		t.Errorf("warnings for appendfsync everysec: %q", w)
	}
	p = Persistence{MaxmemoryPolicy: "allkeys-lru", Snapshots: true}
	if w := p.Warnings(); len(w) != 2 || !strings.Contains(w[0], "since its last snapshot") {
		t.Errorf("warnings for %+v: %q", p, w)
	}
	// Without snapshots there is no last snapshot to speak of.
	p = Persistence{MaxmemoryPolicy: "noeviction"}
	if w := p.Warnings(); len(w) != 1 || !strings.Contains(w[0], "no snapshots") || strings.Contains(w[0], "last snapshot") {
		t.Errorf("warnings for %+v: %q", p, w)
	}
}

// A second Store on a namespace fences the first: the first's Apply fails
// with ErrLocked, for good, and writes nothing, while the second replays
// everything the first wrote and goes on writing.
func TestFenced(t *testing.T) {
	c := config(t)
	first := openStore(t, c)
	apply(t, first, store.Batch{Adds: samples(1, 2, 3)})
	apply(t, first, store.Batch{Deletes: []uint64{2}})

	second := openStore(t, c)
	if second.gen <= first.gen {
		t.Fatalf("generations: first %d, second %d", first.gen, second.gen)
	}
	if got := seqs(replayAll(t, second)); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("the second store replays %v, want [1 3]", got)
	}
	apply(t, second, store.Batch{Adds: samples(4)})

	// The first one's late batch, by either route: an add of the Seq the
	// second used, a delete of one of its jobs. The Store remembers a
	// refusal; forgetting it makes each route ask Redis again.
	for _, route := range routes {
		first.fenced.Store(nil)
		late := route.pad(samples(4, 5))
		late[0].Function = "late"
		err := first.Apply(context.Background(), store.Batch{Adds: late, Deletes: []uint64{1}})
		if !errors.Is(err, store.ErrLocked) {
			t.Fatalf("%s: Apply of the fenced store: %v, want ErrLocked", route.name, err)
		}
		if !strings.Contains(err.Error(), "taken over") || !strings.Contains(err.Error(), "generation is now "+strconv.FormatInt(second.gen, 10)) {
			t.Errorf("%s: the fence error does not say why: %v", route.name, err)
		}
		t.Logf("%s: fenced: %v", route.name, err)
		if err := first.Apply(context.Background(), store.Batch{Deletes: []uint64{3}}); !errors.Is(err, store.ErrLocked) {
			t.Errorf("%s: second Apply of the fenced store: %v, want ErrLocked", route.name, err)
		}
	}
	got := replayAll(t, second)
	if s := seqs(got); !slices.Equal(s, []uint64{1, 3, 4}) {
		t.Fatalf("after the fenced Apply the namespace holds %v, want [1 3 4]", s)
	}
	for _, r := range got {
		if d := storetest.Diff(r, storetest.Sample(r.Seq)); d != "" {
			t.Errorf("record %d: %s", r.Seq, d)
		}
	}

	// A fresh Store fences the second in turn.
	third := openStore(t, c)
	if err := second.Apply(context.Background(), store.Batch{Deletes: []uint64{1}}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("Apply of the second store after a third opened: %v, want ErrLocked", err)
	}
	apply(t, third, store.Batch{Deletes: []uint64{1, 3, 4}})
	if got := replayAll(t, third); len(got) != 0 {
		t.Errorf("after the third deleted them: %v", seqs(got))
	}
}

// A store whose owner key vanished (deleted by hand, a flushed database)
// is fenced too: it cannot tell whether someone else took over.
func TestOwnerKeyGone(t *testing.T) {
	for _, route := range routes {
		t.Run(route.name, func(t *testing.T) {
			c := config(t)
			s := openStore(t, c)
			if err := rawClient(t, c).Del(context.Background(), s.ownerKey).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.Apply(context.Background(), store.Batch{Adds: route.pad(samples(1))}); !errors.Is(err, store.ErrLocked) {
				t.Fatalf("Apply without the owner key: %v, want ErrLocked", err)
			}
			if keys := namespaceKeys(t, c); len(keys) != 0 {
				t.Errorf("the fenced Apply wrote %q", keys)
			}
		})
	}
}

// A takeover between the WATCH and the EXEC of a large batch aborts the
// transaction: nothing is written and the Store is fenced.
func TestFencedDuringTransaction(t *testing.T) {
	c := config(t)
	s := openStore(t, c)
	raw := rawClient(t, c)
	s.client.AddHook(takeoverBeforeExec{raw: raw, owner: s.ownerKey})
	err := s.Apply(context.Background(), store.Batch{Adds: routes[1].pad(samples(1, 2))})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "owner key changed") {
		t.Fatalf("Apply with a takeover before its EXEC: %v, want ErrLocked saying the owner key changed", err)
	}
	if keys := namespaceKeys(t, c); !slices.Equal(keys, []string{s.ownerKey}) {
		t.Errorf("the aborted transaction left %q, want only the owner key", keys)
	}
	if err := s.Apply(context.Background(), store.Batch{Deletes: []uint64{1}}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("Apply after the abort: %v, want ErrLocked", err)
	}
}

// takeoverBeforeExec is a go-redis hook that increments the owner key, as
// a new owner's Open does, just before a MULTI/EXEC goes out.
type takeoverBeforeExec struct {
	raw   goredis.UniversalClient
	owner string
}

func (h takeoverBeforeExec) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h takeoverBeforeExec) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h takeoverBeforeExec) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			if err := h.raw.Incr(ctx, h.owner).Err(); err != nil {
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// Each route is the one taken: Redis counts the script's EVALSHA and the
// transaction's EXEC.
func TestRoutes(t *testing.T) {
	c := config(t)
	s := openStore(t, c)
	raw := rawClient(t, c)
	calls := func(cmd string) int {
		info, err := raw.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(info) {
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	for i, route := range routes {
		evalsha, exec := calls("evalsha"), calls("exec")
		apply(t, s, store.Batch{Adds: route.pad(samples(uint64(2*i+1), uint64(2*i+2)))})
		gotScript, gotExec := calls("evalsha")-evalsha, calls("exec")-exec
		if want := route.name == "script"; (gotScript == 1) != want || (gotExec == 1) == want {
			t.Errorf("%s: the batch made %d EVALSHA and %d EXEC", route.name, gotScript, gotExec)
		}
	}
}

// Batches larger than Lua's unpack limit are cut into commands, inside the
// script or in the MULTI/EXEC.
func TestLargeBatch(t *testing.T) {
	const n = 10000
	for _, route := range routes {
		t.Run(route.name, func(t *testing.T) {
			s := openStore(t, config(t))
			var b store.Batch
			for seq := uint64(1); seq <= n; seq++ {
				b.Adds = append(b.Adds, storetest.Sample(seq))
			}
			want := slices.Clone(route.pad(b.Adds))
			apply(t, s, b)
			got := replayAll(t, s)
			if len(got) != n {
				t.Fatalf("replayed %d records, want %d", len(got), n)
			}
			for i, r := range got {
				if d := storetest.Diff(r, want[i]); d != "" {
					t.Fatalf("record %d: %s", i+1, d)
				}
			}
			// Deletes of all of them and adds of as many new ones, in one batch.
			b = store.Batch{}
			for seq := uint64(1); seq <= n; seq++ {
				b.Deletes = append(b.Deletes, seq)
				b.Adds = append(b.Adds, storetest.Sample(n+seq))
			}
			route.pad(b.Adds)
			apply(t, s, b)
			got = replayAll(t, s)
			if len(got) != n || got[0].Seq != n+1 || got[n-1].Seq != 2*n {
				t.Fatalf("after the second batch: %d records, want seqs %d..%d", len(got), n+1, 2*n)
			}
			b = store.Batch{}
			for seq := uint64(n + 1); seq <= 2*n; seq++ {
				b.Deletes = append(b.Deletes, seq)
			}
			apply(t, s, b)
			if got := replayAll(t, s); len(got) != 0 {
				t.Fatalf("after deleting all: %d records left", len(got))
			}
		})
	}
}
