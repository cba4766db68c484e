package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gearmand/internal/cgearmand"
	"gearmand/store"
	"gearmand/store/postgres/pgtest"
)

// handBackJob is a record of a hand-back test and what should become of it.
type handBackJob struct {
	rec       store.Record
	kept      bool // stays in our store
	newUnique bool // goes back under a generated unique
}

// handBackJobs are jobs C gearmand's table cannot all hold as they are.
func handBackJobs(now time.Time) []handBackJob {
	rec := func(seq uint64, fn, unique, data string, pri store.Priority) store.Record {
		return store.Record{Seq: seq, Handle: "H:x:1", Function: fn, Unique: unique, Data: []byte(data), Priority: pri, Created: now}
	}
	past := rec(9, "report", "due", "epoch passed", 1)
	past.RunAt = now.Add(-time.Hour)
	future := rec(10, "report", "later", "epoch to come", 1)
	future.RunAt = now.Add(time.Hour)
	return []handBackJob{
		{rec: rec(1, "resize", "u-1", "plain", 1)},
		{rec: rec(2, "resize", "", "empty unique 1", 0), newUnique: true},
		{rec: rec(3, "resize", "", "empty unique 2", 2), newUnique: true},
		{rec: rec(4, "resize", "nul", "a\x00b\xff\x00", 1)},
		{rec: rec(5, "resize", "it's", "quote in unique", 0), newUnique: true},
		{rec: rec(6, "mail", "u-1", "same unique, other function", 2)},
		{rec: rec(7, "resize", "u-1", "same function and unique", 2), newUnique: true},
		{rec: rec(8, "it's", "q", "quote in function", 1), kept: true},
		{rec: past},
		{rec: future, kept: true},
	}
}

// TestHandBackRunsOnC: jobs in our store, handed back, are run by the real
// C gearmand started on the same database, each once with its data whole;
// the ones C could not hold stay in the namespace; C's table is empty once
// C ran them (its DELETEs found every row).
func TestHandBackRunsOnC(t *testing.T) {
	url := pgtest.Server(t).NewDatabase(t)
	ns := freshNamespace(t)
	jobs := handBackJobs(time.Now())
	s := openNS(t, url, ns)
	var b store.Batch
	for _, j := range jobs {
		b.Adds = append(b.Adds, j.rec)
	}
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	rep, err := s.HandBack(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var moved, kept, renamed []handBackJob
	for _, j := range jobs {
		switch {
		case j.kept:
			kept = append(kept, j)
		default:
			moved = append(moved, j)
			if j.newUnique {
				renamed = append(renamed, j)
			}
		}
	}
	if rep.Moved != len(moved) || rep.Kept != len(kept) || rep.NewUnique != len(renamed) || rep.Where != "table queue" {
		t.Errorf("HandBack reported %+v, want %d moved to table queue, %d kept, %d under a new unique", rep, len(moved), len(kept), len(renamed))
	}
	for _, why := range []string{"kept: a quote in the function name", "kept: an epoch job not yet due", "new unique: an empty unique", "new unique: another job of the function"} {
		if !strings.Contains(notes(rep), why) {
			t.Errorf("the report's notes do not say %q:\n%s", why, notes(rep))
		}
	}
	if n := countRows(t, url, "queue"); n != len(moved) {
		t.Errorf("C's table holds %d rows, want %d", n, len(moved))
	}
	s.Close()
	left := replay(t, openNS(t, url, ns, ImportTable("-")))
	if len(left) != len(kept) || left[0].Seq != kept[0].rec.Seq || left[1].Seq != kept[1].rec.Seq {
		t.Errorf("the namespace kept seqs %v, want those of %+v", seqs(left), kept)
	}

	c := cgearmand.Start(t, "-q", "Postgres", "--libpq-conninfo", url)
	ran := cgearmand.Drain(t, c.Addr, len(moved), "resize", "mail", "report")
	c.Stop(t)
	for _, j := range moved {
		n := 0
		for _, r := range ran {
			if r.Function == j.rec.Function && bytes.Equal(r.Data, j.rec.Data) {
				n++
				if !j.newUnique && r.Unique != j.rec.Unique {
					t.Errorf("job %q ran under unique %q, want %q", j.rec.Data, r.Unique, j.rec.Unique)
				}
				if j.newUnique && len(r.Unique) != 36 {
					t.Errorf("job %q ran under unique %q, want a generated UUID", j.rec.Data, r.Unique)
				}
			}
		}
		if n != 1 {
			t.Errorf("C gearmand ran job %q %d times, want once (ran %+v)", j.rec.Data, n, ran)
		}
	}
	// C replays every row at HIGH priority, in table order: the rows went
	// in priority order, so a function's jobs ran in it.
	for i, r := range ran {
		for _, before := range ran[:i] {
			if before.Function == r.Function && pri(jobs, r) < pri(jobs, before) {
				t.Errorf("C ran %q (priority %d) after %q (priority %d)", r.Data, pri(jobs, r), before.Data, pri(jobs, before))
			}
		}
	}
	if n := countRows(t, url, "queue"); n != 0 {
		t.Errorf("after C ran every job its table holds %d rows: C could not delete them", n)
	}
}

// pri is the priority of the job of jobs that ran as r.
func pri(jobs []handBackJob, r cgearmand.Ran) store.Priority {
	for _, j := range jobs {
		if j.rec.Function == r.Function && bytes.Equal(j.rec.Data, r.Data) {
			return j.rec.Priority
		}
	}
	return 0
}

// notes is a report's notes, one a line.
func notes(rep store.HandBackReport) string {
	var b strings.Builder
	for _, n := range rep.Notes {
		b.WriteString(n.Why + "\n")
	}
	return b.String()
}

// TestHandBackAtomic: a hand-back failing half-way (a trigger on C's table
// refuses a row in the middle) moves nothing; a table of C's name in
// another layout moves nothing and says why.
func TestHandBackAtomic(t *testing.T) {
	url := pgtest.Server(t).NewDatabase(t)
	ns := freshNamespace(t)
	s := openNS(t, url, ns)
	var b store.Batch
	for i := range 1000 {
		b.Adds = append(b.Adds, store.Record{Seq: uint64(i + 1), Function: "f", Unique: fmt.Sprintf("u-%d", i), Data: []byte("d")})
	}
	b.Adds[500].Data = []byte("refuse me")
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	sqlOn(t, url, cCreateSQL, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.data = 'refuse me'::bytea THEN
				RAISE EXCEPTION 'refused half-way';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER refuse BEFORE INSERT ON queue FOR EACH ROW EXECUTE FUNCTION refuse()`)
	if _, err := s.HandBack(context.Background()); err == nil || !strings.Contains(err.Error(), "refused half-way") {
		t.Fatalf("HandBack failing half-way: %v, want the trigger's error", err)
	}
	if n := countRows(t, url, "queue"); n != 0 {
		t.Errorf("after a hand-back failed half-way C's table holds %d rows", n)
	}
	if got := replay(t, s); len(got) != len(b.Adds) {
		t.Errorf("after a hand-back failed half-way the namespace holds %d records, want %d", len(got), len(b.Adds))
	}

	sqlOn(t, url, `DROP TABLE queue`, `CREATE TABLE queue (id serial PRIMARY KEY, payload bytea)`)
	_, err := s.HandBack(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not C gearmand's queue table") || !strings.Contains(err.Error(), "--libpq-table") {
		t.Errorf("HandBack onto a table in another layout: %v, want an error saying so and naming --libpq-table", err)
	}
	if got := replay(t, s); len(got) != len(b.Adds) {
		t.Errorf("after a refused hand-back the namespace holds %d records, want %d", len(got), len(b.Adds))
	}
	if _, err := openNS(t, url, freshNamespace(t), ImportTable("-")).HandBack(context.Background()); err == nil || !strings.Contains(err.Error(), "--libpq-table") {
		t.Errorf("HandBack with no C table: %v, want an error naming --libpq-table", err)
	}
}

// envHandBackChild makes the test binary a child of TestHandBackKilled:
// it opens the store the variable names ("namespace url") and hands its
// jobs back, until the test kills it.
const envHandBackChild = "GEARMAND_TEST_POSTGRES_HANDBACK_CHILD"

// handBackChild is the child's whole life.
func handBackChild(v string) {
	ns, url, _ := strings.Cut(v, " ")
	cgearmand.HandBackChild(func() (store.Store, error) {
		return Open(context.Background(), url, ns, Logger(slog.New(slog.DiscardHandler)))
	})
}

// TestHandBackKilled SIGKILLs a server while it holds C's table in its
// hand-back transaction: PostgreSQL rolls it back, every job is still
// ours and C's table is empty, and the next hand-back moves them all.
func TestHandBackKilled(t *testing.T) {
	url := pgtest.Server(t).NewDatabase(t)
	const n = 100000
	ns := freshNamespace(t)
	openNS(t, url, ns).Close() // the schema, so that the statement below has a table
	// C's table made beforehand, so that its lock is seen from here.
	sqlOn(t, url, cCreateSQL, fmt.Sprintf(`INSERT INTO gearmand_jobs (namespace, seq, handle, function, unique_key, data,
		priority, run_at_nanos, reducer, attempts, created_nanos)
		SELECT '%s', i, '', 'f', convert_to('u-' || i, 'UTF8'), int4send(i), i %% 3, 0, '', 0, 0
		FROM generate_series(1, %d) i`, ns, n))

	child := cgearmand.StartChild(t, envHandBackChild, ns+" "+url)
	conn := connect(t, url)
	const holding = `SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE c.relname = 'queue' AND l.mode = 'ShareRowExclusiveLock' AND l.granted)`
	held := func() (bool, error) {
		var held bool
		err := conn.QueryRow(context.Background(), holding).Scan(&held)
		return held, err
	}
	if !child.KillWhen(t, held) {
		t.Fatal("the child ended before its hand-back was seen holding C's table")
	}
	// PostgreSQL notices the client is gone and rolls back: poll until the
	// lock is let go, then look.
	for still := true; still; {
		var err error
		if still, err = held(); err != nil {
			t.Fatal(err)
		}
	}
	if got := countRows(t, url, "queue"); got != 0 {
		t.Errorf("after a hand-back killed half-way C's table has %d rows, want none", got)
	}
	if got := countRows(t, url, "gearmand_jobs"); got != n {
		t.Errorf("after a hand-back killed half-way the store holds %d jobs, want all %d", got, n)
	}
	rep, err := openNS(t, url, ns, Logger(slog.New(slog.DiscardHandler))).HandBack(context.Background())
	if err != nil || rep.Moved != n {
		t.Fatalf("the next hand-back: %+v, %v; want %d moved", rep, err, n)
	}
	if got := countRows(t, url, "queue"); got != n {
		t.Errorf("after the next hand-back C's table has %d rows, want %d", got, n)
	}
}
