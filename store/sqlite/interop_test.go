package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/internal/cgearmand"
	"gearmand/store"
	"gearmand/store/storetest"
)

// uuidForm is the form of the uniques libgearman generates (and so does
// the store, for an empty Unique).
var uuidForm = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestJobsCGearmandLeft: C gearmand -q libsqlite3 queues background jobs
// (through the gearman CLI: uniques, none, high and low priority, NUL
// bytes; through our client: an empty unique, an epoch job) and stops;
// our store replays every one of them, in the order C queued them, with
// Seqs that stay theirs across a reopen and by which they are deleted.
func TestJobsCGearmandLeft(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	c := cgearmand.Start(t, "-q", "libsqlite3", "--libsqlite3-db", path)
	binary := []byte("a\x00b\x00\xff\xfe\x00")
	c.RunCLI(t, []byte("one"), "-b", "-f", "resize", "-u", "u1")
	c.RunCLI(t, []byte("high"), "-b", "-I", "-f", "resize", "-u", "hi")
	c.RunCLI(t, []byte("low"), "-b", "-L", "-f", "email", "-u", "lo")
	c.RunCLI(t, binary, "-b", "-f", "bin", "-u", "nul")
	c.RunCLI(t, []byte("no unique given"), "-b", "-f", "resize")
	when := time.Unix(time.Now().Unix()+3600, 0)
	c.Submit(t,
		cgearmand.Job{Function: "email", Unique: "", Data: []byte("empty unique"), Priority: 1},
		cgearmand.Job{Function: "later", Unique: "ep", Data: []byte("in an hour"), When: when})
	c.Stop(t)

	want := []store.Record{
		{Function: "resize", Unique: "u1", Data: []byte("one"), Priority: 1},
		{Function: "resize", Unique: "hi", Data: []byte("high"), Priority: 0},
		{Function: "email", Unique: "lo", Data: []byte("low"), Priority: 2},
		{Function: "bin", Unique: "nul", Data: binary, Priority: 1},
		{Function: "resize", Unique: "(a UUID)", Data: []byte("no unique given"), Priority: 1},
		{Function: "email", Unique: "", Data: []byte("empty unique"), Priority: 1},
		{Function: "later", Unique: "ep", Data: []byte("in an hour"), Priority: 1, RunAt: when},
	}
	s := openAt(t, path)
	got := storetest.ReplayAll(t, s)
	if len(got) != len(want) {
		t.Fatalf("replayed %d jobs, want %d: %+v\nC gearmand's log:\n%s", len(got), len(want), got, c.Log())
	}
	for i, w := range want {
		w.Seq = uint64(i + 1) // numbered in the order C inserted them
		if w.Unique == "(a UUID)" {
			if !uuidForm.MatchString(got[i].Unique) {
				t.Errorf("job %d: unique %q, want the UUID libgearman generated", i, got[i].Unique)
			}
			w.Unique = got[i].Unique
		}
		if d := storetest.Diff(got[i], w); d != "" {
			t.Errorf("job %d: %s", i, d)
		}
	}

	// The numbering is durable: a reopen replays the same Seqs, and a
	// delete by Seq removes C's row.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	again := storetest.ReplayAll(t, s)
	if !slices.EqualFunc(again, got, storetest.Equal) {
		t.Fatalf("a second Replay gave\n%+v\nwant\n%+v", again, got)
	}
	if err := s.Apply(context.Background(), store.Batch{Deletes: []uint64{1, 4}}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM gearman_queue WHERE unique_key IN ('u1', 'nul')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of the deleted jobs: %d (%v), want 0", n, err)
	}
	if got := storetest.ReplayAll(t, s); len(got) != len(want)-2 || got[0].Seq != 2 {
		t.Errorf("after deleting 1 and 4: %d jobs, first %d", len(got), got[0].Seq)
	}
}

// TestCGearmandRunsOurJobs: jobs our store wrote (empty and given uniques,
// every priority, NUL bytes, empty data, a past and a future run time,
// uniques C cannot keep whole)
// are run by C gearmand -q libsqlite3 started on the file, in priority
// order, and C deletes their rows when they complete; the future one
// stays queued.
func TestCGearmandRunsOurJobs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s := openAt(t, path)
	created := time.Now()
	adds := []store.Record{
		{Seq: 1, Handle: "H:ours:1", Function: "resize", Unique: "a", Data: []byte("normal"), Priority: 1, Created: created},
		{Seq: 2, Handle: "H:ours:2", Function: "resize", Unique: "", Data: []byte("\x00high\x00"), Priority: 0, Attempts: 2},
		{Seq: 3, Handle: "H:ours:3", Function: "resize", Unique: "", Data: []byte("low"), Priority: 2},
		{Seq: 4, Function: "email", Unique: "b", Data: []byte{}, Priority: 1},
		{Seq: 5, Function: "email", Unique: "past", Data: []byte("past"), Priority: 1, RunAt: time.Now().Add(-time.Minute)},
		{Seq: 6, Function: "email", Unique: "future", Data: []byte("future"), Priority: 1, RunAt: time.Now().Add(time.Hour)},
		// Uniques C would cut short, and then never delete the rows of.
		{Seq: 7, Function: "email", Unique: strings.Repeat("x", 64), Data: []byte("long unique"), Priority: 1},
		{Seq: 8, Function: "email", Unique: "nul\x00inside", Data: []byte("NUL in the unique"), Priority: 1},
	}
	const runnable = 7
	if err := s.Apply(context.Background(), store.Batch{Adds: adds}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	c := cgearmand.Start(t, "-q", "libsqlite3", "--libsqlite3-db", path)
	type ran struct {
		function, unique string
		data             []byte
	}
	jobs := make(chan ran, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := client.NewWorker(ctx, c.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, fn := range []string{"resize", "email"} {
		if err := w.Register(fn, func(_ context.Context, j *client.Job) ([]byte, error) {
			jobs <- ran{j.Function, j.Unique, j.Data}
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _ = w.Work(ctx) }()

	var got []ran
	for len(got) < runnable {
		select {
		case j := <-jobs:
			got = append(got, j)
		case <-ctx.Done():
			t.Fatalf("C gearmand ran %d of our %d runnable jobs: %+v\nits log:\n%s", len(got), runnable, got, c.Log())
		}
	}
	var resize []ran
	for _, j := range got {
		if j.function == "resize" {
			resize = append(resize, j)
		}
	}
	// C hands out a function's jobs by priority: high, normal, low.
	if len(resize) != 3 || !bytes.Equal(resize[0].data, adds[1].Data) || !bytes.Equal(resize[1].data, adds[0].Data) ||
		!bytes.Equal(resize[2].data, adds[2].Data) {
		t.Errorf("C ran resize jobs %q, want high, normal, low", resize)
	}
	for _, j := range got {
		for _, a := range adds {
			if a.Function == j.function && bytes.Equal(a.Data, j.data) {
				standIn := a.Unique == "" || len(a.Unique) >= 64 || strings.Contains(a.Unique, "\x00")
				if standIn && !uuidForm.MatchString(j.unique) || !standIn && a.Unique != j.unique {
					t.Errorf("job %q ran with unique %q, want %q (a UUID in its stead if C cannot keep it)", a.Data, j.unique, a.Unique)
				}
			}
		}
	}

	// C deletes each row as its job completes; the future job stays.
	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		left = left[:0]
		rows, err := ro.Query(`SELECT unique_key FROM gearman_queue ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var u string
			if err := rows.Scan(&u); err != nil {
				t.Fatal(err)
			}
			left = append(left, u)
		}
		rows.Close()
		if len(left) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling C's deletes
	}
	if fmt.Sprint(left) != "[future]" {
		t.Errorf("rows left after C ran the jobs: %q, want only the future job's", left)
	}
	select {
	case j := <-jobs:
		t.Errorf("C ran a job it should not have: %+v", j)
	default:
	}
	c.Stop(t)
	ro.Close() // the store wants the file to itself

	s = openAt(t, path)
	if rest := storetest.ReplayAll(t, s); len(rest) != 1 || storetest.Diff(rest[0], adds[5]) != "" {
		t.Errorf("after C: replayed %+v, want only %+v", rest, adds[5])
	}
}

// TestCGearmandAfterKill: C gearmand started on a file whose writer was
// SIGKILLed (its WAL still holding commits no checkpoint has copied into
// the file) queues every job the writer acknowledged.
func TestCGearmandAfterKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	acked := storetest.KillWhileWriting(t, killEnv, path, 200)
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the killed writer left no WAL (%v): the test would not test reading one", err)
	}
	c := cgearmand.Start(t, "-q", "libsqlite3", "--libsqlite3-db", path)
	if n := c.Queued(t)["f"]; uint64(n) < acked {
		t.Fatalf("C gearmand queued %d jobs of %d acknowledged\n%s", n, acked, c.Log())
	}
	c.Stop(t)
	storetest.CheckAcked(t, openAt(t, path), acked)
}

// TestCGearmandKeptOut: while our store has the file, a C gearmand started
// on it fails (after its 6s busy timeout) rather than running our jobs a
// second time.
func TestCGearmandKeptOut(t *testing.T) {
	t.Parallel() // C gearmand gives up after its 6s busy timeout
	path := filepath.Join(t.TempDir(), "queue.db")
	s := openAt(t, path)
	if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(1)}}); err != nil {
		t.Fatal(err)
	}
	if log := cgearmand.StartFails(t, "-q", "libsqlite3", "--libsqlite3-db", path); !strings.Contains(log, "database is locked") {
		t.Errorf("C gearmand failed, but not because the file is locked:\n%s", log)
	}
	if n := storetest.Count(t, s); n != 1 {
		t.Errorf("%d records after C gearmand's try, want 1", n)
	}
}

// TestKeptOutByCGearmand: a C gearmand running on a file in WAL mode (one
// our store has used) keeps SQLite's shared lock on it, and our Open fails
// with store.ErrLocked after its busy timeout rather than running C's jobs
// too. (On a file in rollback-journal mode an idle C gearmand holds no
// lock, and nothing can tell it is there.)
func TestKeptOutByCGearmand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s := openAt(t, path)
	if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(1)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := cgearmand.Start(t, "-q", "libsqlite3", "--libsqlite3-db", path)
	_, err := Open(context.Background(), path, func(c *config) { c.busyTimeout = 100 * time.Millisecond })
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open while C gearmand runs on the file: %v, want ErrLocked naming the file", err)
	}
	c.Stop(t)
	if n := storetest.Count(t, openAt(t, path)); n != 1 {
		t.Errorf("after C gearmand stopped: %d records, want 1", n)
	}
}
