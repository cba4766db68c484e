package redis

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"gearmand/internal/cgearmand"
	"gearmand/store"
	"gearmand/store/storetest"
)

func TestParseCKey(t *testing.T) {
	for _, tc := range []struct {
		key, function, unique string
		functions             []string
		ambiguous, bad        bool
	}{
		{key: "_gear_-fn-u1", function: "fn", unique: "u1"},
		{key: "_gear_-fn-", function: "fn", unique: ""},
		{key: "_gear_-fn--", function: "fn", unique: "-", ambiguous: true},
		{key: "_gear_-fn--", function: "fn-", unique: "", functions: []string{"fn-"}},
		{key: "_gear_-my-fn-a-b", function: "my", unique: "fn-a-b", ambiguous: true},
		{key: "_gear_-my-fn-a-b", function: "my-fn", unique: "a-b", functions: []string{"my-fn", "other"}},
		{key: "_gear_-my-fn-a-b", function: "my", unique: "fn-a-b", functions: []string{"my", "my-fn"}, ambiguous: true},
		{key: "_gear_-fn-0ba4c51a-d3c5-11f1-9c4e-0242ac110002", function: "fn", unique: "0ba4c51a-d3c5-11f1-9c4e-0242ac110002"},
		{key: "_gear_-my-fn-0BA4C51A-D3C5-11F1-9C4E-0242AC110002", function: "my-fn", unique: "0BA4C51A-D3C5-11F1-9C4E-0242AC110002"},
		{key: "_gear_-my-fn-0ba4c51a-d3c5-11f1-9c4e-0242ac11000g", function: "my", unique: "fn-0ba4c51a-d3c5-11f1-9c4e-0242ac11000g", ambiguous: true},
		{key: "_gear_-0ba4c51a-d3c5-11f1-9c4e-0242ac110002", function: "0ba4c51a", unique: "d3c5-11f1-9c4e-0242ac110002", ambiguous: true},
		{key: "_gear_-my-fn-x-0ba4c51a-d3c5-11f1-9c4e-0242ac110002", function: "my", unique: "fn-x-0ba4c51a-d3c5-11f1-9c4e-0242ac110002", functions: []string{"my"}},
		{key: "_gear_-fn", bad: true},
		{key: "_gear_--u", bad: true},
		{key: "_gearX-fn-u", bad: true},
		{key: "other-fn-u", bad: true},
	} {
		got, ok := parseCKey(tc.key, "_gear_", tc.functions)
		switch {
		case ok == tc.bad:
			t.Errorf("parseCKey(%q, %q): ok %v", tc.key, tc.functions, ok)
		case ok && (got.function != tc.function || got.unique != tc.unique || got.ambiguous != tc.ambiguous):
			t.Errorf("parseCKey(%q, %q) = %+v, want function %q unique %q ambiguous %v",
				tc.key, tc.functions, got, tc.function, tc.unique, tc.ambiguous)
		}
	}
}

// ownRedis is a redis-server of the test's own, so that C gearmand's
// keys under the default prefix meet no other test's Open.
func ownRedis(t *testing.T) Config {
	t.Helper()
	needRedisServer(t)
	srv, err := startRedisServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	return Config{Addrs: []string{srv.addr}, Namespace: newNamespace(t)}
}

// cKeys lists the keys under C gearmand's default prefix.
func cKeys(tb testing.TB, client goredis.UniversalClient) []string {
	tb.Helper()
	keys, err := client.Keys(context.Background(), DefaultImportPrefix+"-*").Result()
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// TestCQueueTakeover: the real C gearmand queues jobs in Redis and stops;
// Open moves every one into the namespace after the jobs already there,
// deletes C's keys, and leaves alone the keys that are not C's jobs.
func TestCQueueTakeover(t *testing.T) {
	c := ownRedis(t)
	ctx := context.Background()
	raw := rawClient(t, c)
	noImport := c
	noImport.ImportPrefix = "-"
	own := openStore(t, noImport)
	apply(t, own, store.Batch{Adds: []store.Record{storetest.Sample(10)}})
	own.Close()

	host, port, _ := strings.Cut(c.Addrs[0], ":")
	gm := cgearmand.Start(t, "-q", "redis", "--redis-server", host, "--redis-port", port)
	jobs := []cgearmand.Job{
		{Function: "resize", Unique: "u-1", Data: []byte("plain"), Priority: 1},
		{Function: "resize", Unique: "", Data: []byte("empty unique"), Priority: 2},
		{Function: "resize", Unique: "nul", Data: []byte("a\x00b\xff\x00"), Priority: 1},
		{Function: "resize", Unique: "it's", Data: []byte("quote"), Priority: 0},
		{Function: "my-fn", Unique: "a-b-c", Data: []byte("named function"), Priority: 0},
	}
	gm.Submit(t, jobs...)
	gm.SubmitCLI(t, "resize", "uuid unique")
	gm.Submit(t, cgearmand.Job{Function: "two-part", Unique: "q", Data: []byte("guessed"), Priority: 1})
	gm.Stop(t)
	// Beside them: a job as gearmand 1.1.15 and earlier kept it (a
	// string), and keys under the prefix that are not C's jobs.
	for _, err := range []error{
		raw.Set(ctx, "_gear_-old-u", "legacy", 0).Err(),
		raw.Set(ctx, "_gear_-notajob", "x", 0).Err(),
		raw.SAdd(ctx, "_gear_-set-x", "member").Err(),
		raw.HSet(ctx, "_gear_-hash-x", "data", "d", "priority", "7").Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(cKeys(t, raw)); n != 11 {
		t.Fatalf("C gearmand left %d keys, want 7 (and 4 of the test's): %v\n%s", n, cKeys(t, raw), gm.Log())
	}

	var log bytes.Buffer
	c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	c.ImportFunctions = []string{"my-fn"}
	s := openStore(t, c)
	got := replayAll(t, s)
	for _, w := range []string{"took over 8 jobs", "2 of C gearmand's keys could be split", `giving functions \"resize\" (1), \"two\" (1)`,
		"left 3 keys", `\"_gear_-set-x\": a set`, `\"_gear_-hash-x\": a hash`, `\"_gear_-notajob\": not of the form`} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("the log does not say %s:\n%s", w, log.String())
		}
	}
	if left := cKeys(t, raw); !slices.Equal(left, []string{"_gear_-hash-x", "_gear_-notajob", "_gear_-set-x"}) {
		t.Errorf("after the takeover the keys under C's prefix are %q, want only those that are not its jobs", left)
	}
	if len(got) != 9 || got[0].Seq != 10 {
		t.Fatalf("replayed %d records (seqs %v), want the namespace's seq 10 and 8 taken over", len(got), seqs(got))
	}
	taken := got[1:]
	for i, r := range taken {
		if r.Seq != uint64(11+i) || r.Handle != "" || r.Attempts != 0 || r.Created.IsZero() || !r.RunAt.IsZero() {
			t.Errorf("taken-over record %d: %+v: want seq %d, no handle, no attempts, a creation time, no run time", i, r, 11+i)
		}
		if i > 0 && r.Priority < taken[i-1].Priority {
			t.Errorf("seq %d has priority %d after priority %d: want priority order", r.Seq, r.Priority, taken[i-1].Priority)
		}
	}
	want := append(jobs,
		cgearmand.Job{Function: "two", Unique: "part-q", Data: []byte("guessed"), Priority: 1},
		cgearmand.Job{Function: "old", Unique: "u", Data: []byte("legacy"), Priority: 1})
	for _, w := range want {
		i := slices.IndexFunc(taken, func(r store.Record) bool { return r.Function == w.Function && r.Unique == w.Unique })
		if i < 0 {
			t.Errorf("job %q/%q was not taken over: %+v", w.Function, w.Unique, taken)
			continue
		}
		if r := taken[i]; !bytes.Equal(r.Data, w.Data) || r.Priority != w.Priority {
			t.Errorf("job %q/%q came back with data %q priority %d, want %q priority %d", w.Function, w.Unique, r.Data, r.Priority, w.Data, w.Priority)
		}
	}
	if i := slices.IndexFunc(taken, func(r store.Record) bool { return string(r.Data) == "uuid unique" }); i < 0 || len(taken[i].Unique) != 36 {
		t.Errorf("the job queued by the gearman CLI did not come back with libgearman's UUID unique: %+v", taken)
	}

	s.Close()
	c.Logger = slog.New(slog.DiscardHandler)
	if again := replayAll(t, openStore(t, c)); len(again) != 9 {
		t.Errorf("the namespace reopened replays %d records, want 9", len(again))
	}
	other := c
	other.Namespace = newNamespace(t)
	if got := replayAll(t, openStore(t, other)); len(got) != 0 {
		t.Errorf("another namespace took %d jobs over too", len(got))
	}
}

// envCQueueChild makes the test binary a child of TestCQueueKilledHalfway:
// it opens the store the variable names ("address namespace"), taking
// over C gearmand's keys, until the test kills it.
const envCQueueChild = "GEARMAND_TEST_REDIS_CQUEUE_CHILD"

// cqueueChild is the child's whole life.
func cqueueChild(v string) {
	addr, ns, _ := strings.Cut(v, " ")
	cgearmand.TakeoverChild(func() (store.Store, error) {
		return Open(context.Background(), Config{Addrs: []string{addr}, Namespace: ns, Logger: slog.New(slog.DiscardHandler)})
	})
}

// TestCQueueKilledHalfway fills Redis with C gearmand's keys as its
// Hiredis::hmset writes them (HMSET key data D priority P), SIGKILLs a
// server in the middle of taking them over, and then lets two servers
// take over the rest at once: every job ends up in exactly one namespace,
// whole, and no C key is left.
func TestCQueueKilledHalfway(t *testing.T) {
	c := ownRedis(t)
	ctx := context.Background()
	raw := rawClient(t, c)
	const n = 20000
	_, err := raw.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range n {
			p.HMSet(ctx, fmt.Sprintf("_gear_-f-%d", i), "data", strconv.Itoa(i)+"\x00", "priority", strconv.Itoa(i%3))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	child := cgearmand.StartChild(t, envCQueueChild, c.Addrs[0]+" "+c.Namespace)
	seqsKey := "gearmand:{" + c.Namespace + "}:seqs"
	var before int64
poll:
	for before == 0 {
		select {
		case <-child.Exited():
			if out := child.Output(); out != "done\n" {
				t.Fatalf("the child failed: %q", out)
			}
			t.Logf("the child ended before it was killed")
			break poll
		default:
		}
		if before, err = raw.ZCard(ctx, seqsKey).Result(); err != nil {
			t.Fatal(err)
		}
	}
	child.Kill()
	moved, _ := raw.ZCard(ctx, seqsKey).Result()
	t.Logf("killed the first server with %d of %d jobs moved", moved, n)
	if left := len(cKeys(t, raw)); int(moved)+left != n {
		t.Fatalf("after the kill: %d jobs moved and %d C keys left, want %d in all", moved, left, n)
	}

	// Two servers take the rest at once; then the killed one's
	// namespace is opened again.
	namespaces := []string{newNamespace(t), newNamespace(t), c.Namespace}
	done := make(chan error, 2)
	for _, ns := range namespaces[:2] {
		go func() {
			cc := c
			cc.Namespace, cc.Logger = ns, slog.New(slog.DiscardHandler)
			s, err := Open(ctx, cc)
			if err == nil {
				err = s.Close()
			}
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[string]bool)
	for _, ns := range namespaces {
		cc := c
		cc.Namespace, cc.ImportPrefix = ns, "-"
		for _, r := range replayAll(t, openStore(t, cc)) {
			i, err := strconv.Atoi(r.Unique)
			if err != nil || r.Function != "f" || string(r.Data) != r.Unique+"\x00" || r.Priority != store.Priority(i%3) {
				t.Fatalf("namespace %q: a job came back as %+v", ns, r)
			}
			if seen[r.Unique] {
				t.Fatalf("job %s was taken over twice", r.Unique)
			}
			seen[r.Unique] = true
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d jobs were taken over", len(seen), n)
	}
	if left := cKeys(t, raw); len(left) != 0 {
		t.Errorf("%d C keys are left", len(left))
	}
}

// TestCQueueLargeJobs: jobs are moved in transactions of at most
// replayPageBytes of data, so three 7 MiB jobs take two EXECs, and each
// comes back whole.
func TestCQueueLargeJobs(t *testing.T) {
	c := ownRedis(t)
	ctx := context.Background()
	raw := rawClient(t, c)
	const size = 7 << 20
	data := func(i int) string { return strings.Repeat(string([]byte{byte(i), 0, 0xff}), size/3) }
	for i := range 3 {
		if err := raw.HMSet(ctx, fmt.Sprintf("_gear_-big-%d", i), "data", data(i), "priority", "1").Err(); err != nil {
			t.Fatal(err)
		}
	}
	execs := func() int {
		info, err := raw.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		_, after, _ := strings.Cut(info, "cmdstat_exec:calls=")
		n, _ := strconv.Atoi(after[:strings.IndexByte(after+",", ',')])
		return n
	}
	before := execs()
	c.Logger = slog.New(slog.DiscardHandler)
	got := replayAll(t, openStore(t, c))
	if n := execs() - before; n != 2 {
		t.Errorf("three 7 MiB jobs were moved in %d transactions, want 2", n)
	}
	if len(got) != 3 {
		t.Fatalf("took over %d jobs, want 3", len(got))
	}
	for _, r := range got {
		i, err := strconv.Atoi(r.Unique)
		if err != nil || r.Function != "big" || string(r.Data) != data(i) {
			t.Errorf("job %q/%q came back with %d bytes of other data", r.Function, r.Unique, len(r.Data))
		}
	}
}
