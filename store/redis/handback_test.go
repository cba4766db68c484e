package redis

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"gearmand/internal/cgearmand"
	"gearmand/store"
)

// TestHandBackRunsOnC: jobs in our store, handed back, are run by the real
// C gearmand started on the same Redis, each once; the ones C could not
// read back stay in the namespace; data with a NUL reaches C's worker cut
// at the NUL, as C gearmand 1.1.20 reads it; C's keys are gone once C ran
// the jobs (C found each key to delete).
func TestHandBackRunsOnC(t *testing.T) {
	c := ownRedis(t)
	ctx := context.Background()
	raw := rawClient(t, c)
	now := time.Now()
	rec := func(seq uint64, fn, unique, data string, pri store.Priority) store.Record {
		return store.Record{Seq: seq, Handle: "H:x:1", Function: fn, Unique: unique, Data: []byte(data), Priority: pri, Created: now}
	}
	past := rec(10, "report", "due", "epoch passed", 1)
	past.RunAt = now.Add(-time.Hour)
	future := rec(11, "report", "later", "epoch to come", 1)
	future.RunAt = now.Add(time.Hour)
	type job struct {
		rec       store.Record
		kept      bool
		newUnique bool
		runsAs    string // the data C's worker gets, when not the job's
	}
	jobs := []job{
		{rec: rec(1, "resize", "u-1", "plain", 1)},
		{rec: rec(2, "resize", "", "empty unique 1", 0), newUnique: true},
		{rec: rec(3, "resize", "", "empty unique 2", 2), newUnique: true},
		{rec: rec(4, "resize", "nul", "a\x00b\xff\x00", 1), runsAs: "a"},
		{rec: rec(5, "resize", "star*x", "star in unique", 0), newUnique: true},
		{rec: rec(6, "mail", "u-1", "same unique, other function", 2)},
		{rec: rec(7, "resize", "u-1", "same function and unique", 2), newUnique: true},
		{rec: rec(8, "my-fn", "q", "dash in function", 1), kept: true},
		{rec: rec(9, "mail", "taken", "C has this key", 1), newUnique: true},
		{rec: past},
		{rec: future, kept: true},
	}
	s := openStore(t, c)
	var b store.Batch
	for _, j := range jobs {
		b.Adds = append(b.Adds, j.rec)
	}
	apply(t, s, b)
	// A job C gearmand queued after our Open took its keys over.
	if err := raw.HSet(ctx, "_gear_-mail-taken", "data", "C's own", "priority", "1").Err(); err != nil {
		t.Fatal(err)
	}

	rep, err := s.HandBack(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var moved, kept, renamed int
	for _, j := range jobs {
		switch {
		case j.kept:
			kept++
		case j.newUnique:
			renamed++
			moved++
		default:
			moved++
		}
	}
	if rep.Moved != moved || rep.Kept != kept || rep.NewUnique != renamed || rep.Truncated != 1 || rep.Where != "keys _gear_-*" {
		t.Errorf("HandBack reported %+v, want %d moved to keys _gear_-*, %d kept, %d under a new unique, 1 truncated", rep, moved, kept, renamed)
	}
	var notes strings.Builder
	for _, n := range rep.Notes {
		notes.WriteString(n.Why + "\n")
	}
	for _, why := range []string{"kept: a '-' in the function name", "kept: an epoch job not yet due", "new unique: an empty unique",
		"new unique: a job of the same function and unique", "new unique: a '*' or NUL", "data cut short"} {
		if !strings.Contains(notes.String(), why) {
			t.Errorf("the report's notes do not say %q:\n%s", why, notes.String())
		}
	}
	if n := len(cKeys(t, raw)); n != moved+1 {
		t.Errorf("C's keys are %d, want %d: %v", n, moved+1, cKeys(t, raw))
	}
	s.Close()
	noImport := c
	noImport.ImportPrefix = "-"
	if left := replayAll(t, openStore(t, noImport)); len(left) != kept || left[0].Seq != 8 || left[1].Seq != 11 {
		t.Errorf("the namespace kept seqs %v, want 8 and 11", seqs(left))
	}

	host, port, _ := strings.Cut(c.Addrs[0], ":")
	gm := cgearmand.Start(t, "-q", "redis", "--redis-server", host, "--redis-port", port)
	ran := cgearmand.Drain(t, gm.Addr, moved+1, "resize", "mail", "report")
	gm.Stop(t)
	for _, j := range jobs {
		if j.kept {
			continue
		}
		want := string(j.rec.Data)
		if j.runsAs != "" {
			want = j.runsAs
		}
		n := 0
		for _, r := range ran {
			if r.Function != j.rec.Function || string(r.Data) != want {
				continue
			}
			n++
			switch {
			case j.newUnique && len(r.Unique) != 36:
				t.Errorf("job %q ran under unique %q, want a generated UUID", want, r.Unique)
			case !j.newUnique && r.Unique != j.rec.Unique:
				t.Errorf("job %q ran under unique %q, want %q", want, r.Unique, j.rec.Unique)
			}
		}
		if n != 1 {
			t.Errorf("C gearmand ran job %q %d times, want once (ran %+v)", want, n, ran)
		}
	}
	if !bytes.Contains(bytes.Join(dataOf(ran), nil), []byte("C's own")) {
		t.Errorf("C gearmand did not run its own job beside ours: %+v", ran)
	}
	if keys := cKeys(t, raw); len(keys) != 0 {
		t.Errorf("after C ran every job its keys %v remain: C could not delete them", keys)
	}
}

// dataOf is the data of each job that ran.
func dataOf(ran []cgearmand.Ran) [][]byte {
	out := make([][]byte, len(ran))
	for i, r := range ran {
		out[i] = r.Data
	}
	return out
}

// TestHandBackRefused: a prefix C gearmand could not read its keys back
// with, or none, moves nothing and says why.
func TestHandBackRefused(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"-", "--redis-prefix - names no keys"},
		{"my-prefix", "holds a '-'"},
	} {
		c := config(t)
		c.ImportPrefix = tc.prefix
		s := openStore(t, c)
		apply(t, s, store.Batch{Adds: samples(1, 2)})
		if _, err := s.HandBack(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("HandBack with prefix %q: %v, want an error saying %q", tc.prefix, err, tc.want)
		}
		if got := replayAll(t, s); len(got) != 2 {
			t.Errorf("HandBack with prefix %q refused, yet the namespace holds %d of 2 records", tc.prefix, len(got))
		}
	}
}

// envHandBackChild makes the test binary a child of
// TestHandBackKilledHalfway: it opens the store the variable names
// ("address namespace") and hands its jobs back, until the test kills it.
const envHandBackChild = "GEARMAND_TEST_REDIS_HANDBACK_CHILD"

// handBackChild is the child's whole life.
func handBackChild(v string) {
	addr, ns, _ := strings.Cut(v, " ")
	cgearmand.HandBackChild(func() (store.Store, error) {
		return Open(context.Background(), Config{Addrs: []string{addr}, Namespace: ns, Logger: slog.New(slog.DiscardHandler)})
	})
}

// TestHandBackKilledHalfway SIGKILLs a server in the middle of handing a
// namespace's jobs back: every job is then either still ours or in C's
// keys, once; and the next Open takes C's keys over again, all of them.
func TestHandBackKilledHalfway(t *testing.T) {
	c := ownRedis(t)
	ctx := context.Background()
	raw := rawClient(t, c)
	const n = 50000
	var b store.Batch
	for i := range n {
		b.Adds = append(b.Adds, store.Record{Seq: uint64(i + 1), Function: "f", Unique: strconv.Itoa(i), Data: []byte(strconv.Itoa(i)), Priority: store.Priority(i % 3)})
	}
	apply(t, openStore(t, c), b)

	child := cgearmand.StartChild(t, envHandBackChild, c.Addrs[0]+" "+c.Namespace)
	seqsKey := "gearmand:{" + c.Namespace + "}:seqs"
	killed := child.KillWhen(t, func() (bool, error) {
		ours, err := raw.ZCard(ctx, seqsKey).Result()
		return ours < n, err
	})
	if !killed {
		t.Logf("the child ended before it was killed")
	}
	ck := cKeys(t, raw)
	noImport := c
	noImport.ImportPrefix = "-"
	ours := replayAll(t, openStore(t, noImport))
	t.Logf("killed the server with %d of %d jobs handed back", len(ck), n)
	seen := make(map[string]int, n)
	for _, k := range ck {
		seen[strings.TrimPrefix(k, "_gear_-f-")]++
	}
	for _, r := range ours {
		seen[r.Unique]++
	}
	if len(ck)+len(ours) != n || len(seen) != n {
		t.Fatalf("after the kill: %d jobs ours and %d C keys, %d distinct, want %d in all", len(ours), len(ck), len(seen), n)
	}

	again := replayAll(t, openStore(t, c))
	if len(again) != n || len(cKeys(t, raw)) != 0 {
		t.Errorf("the next Open holds %d jobs and left %d C keys, want all %d and none", len(again), len(cKeys(t, raw)), n)
	}
	for _, r := range again {
		if i, err := strconv.Atoi(r.Unique); err != nil || string(r.Data) != r.Unique || r.Priority != store.Priority(i%3) {
			t.Fatalf("a job came back as %+v", r)
		}
	}
}
