package queuetable_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"gearmand/store"
	"gearmand/store/internal/queuetable"
	"gearmand/store/sqlite"
	"gearmand/store/storetest"
)

// The core is tested through the SQLite dialect; store/sqlite runs the
// conformance suite, these the behaviour the package doc promises.

var uuidForm = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Logger(storetest.Logger(t)))
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func apply(t *testing.T, s store.Store, b store.Batch) {
	t.Helper()
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func expect(t *testing.T, s store.Store, want ...store.Record) {
	t.Helper()
	got := storetest.ReplayAll(t, s)
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if d := storetest.Diff(got[i], want[i]); d != "" {
			t.Errorf("record %d: %s", i, d)
		}
	}
}

// cRow is one row as C gearmand's replay sees it, with the SQLite types
// it insists on.
type cRow struct {
	unique, function                string
	priority, whenToRun             int64
	data                            []byte
	uniqueType, functionType        string
	priorityType, dataType, wtrType string
}

func cRowOf(t *testing.T, db *sql.DB, seq uint64) cRow {
	t.Helper()
	var r cRow
	err := db.QueryRow(`SELECT unique_key, function_name, priority, data, when_to_run,
		typeof(unique_key), typeof(function_name), typeof(priority), typeof(data), typeof(when_to_run)
		FROM gearman_queue WHERE seq = ?`, seq).Scan(&r.unique, &r.function, &r.priority, &r.data, &r.whenToRun,
		&r.uniqueType, &r.functionType, &r.priorityType, &r.dataType, &r.wtrType)
	if err != nil {
		t.Fatalf("row %d: %v", seq, err)
	}
	if r.uniqueType != "text" || r.functionType != "text" || r.priorityType != "integer" || r.dataType != "blob" || r.wtrType != "integer" {
		t.Errorf("row %d has C's columns typed %s, %s, %s, %s, %s; C gearmand's replay needs text, text, integer, blob, integer",
			seq, r.uniqueType, r.functionType, r.priorityType, r.dataType, r.wtrType)
	}
	return r
}

// TestRowsAsCWritesThem: C's five columns are filled as C gearmand fills
// them: an empty unique becomes a UUID, data is a blob even when empty or
// nil, when_to_run the run time's second rounded up, 0 for none.
func TestRowsAsCWritesThem(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	adds := []store.Record{
		{Seq: 1, Function: "f", Unique: "given", Data: []byte("x\x00y"), Priority: 2},
		{Seq: 2, Function: "f", Unique: "", Data: nil, Priority: 0, RunAt: time.Unix(1_700_000_000, 1)},
		{Seq: 3, Function: "f", Unique: "", Data: []byte{}, Priority: 1, RunAt: time.Unix(1_700_000_000, 0)},
	}
	apply(t, s, store.Batch{Adds: adds})
	r1, r2, r3 := cRowOf(t, s.DB(), 1), cRowOf(t, s.DB(), 2), cRowOf(t, s.DB(), 3)
	if r1.unique != "given" || r1.function != "f" || r1.priority != 2 || !bytes.Equal(r1.data, adds[0].Data) || r1.whenToRun != 0 {
		t.Errorf("row 1: %+v", r1)
	}
	if !uuidForm.MatchString(r2.unique) || !uuidForm.MatchString(r3.unique) || r2.unique == r3.unique {
		t.Errorf("empty uniques stored as %q and %q, want two different UUIDs", r2.unique, r3.unique)
	}
	if r2.whenToRun != 1_700_000_001 || r3.whenToRun != 1_700_000_000 {
		t.Errorf("when_to_run %d and %d, want 1700000001 (rounded up) and 1700000000", r2.whenToRun, r3.whenToRun)
	}
	adds[1].Data = []byte{}
	expect(t, s, adds...)
}

// TestCollisionKeepsBoth: an add whose unique and function are stored
// under another Seq (a delete not yet applied, a row C left) keeps both
// jobs, in one batch or across two; the later gets a stand-in unique_key.
func TestCollisionKeepsBoth(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	a := store.Record{Seq: 1, Function: "f", Unique: "u", Data: []byte("first")}
	b := store.Record{Seq: 2, Function: "f", Unique: "u", Data: []byte("second")}
	other := store.Record{Seq: 3, Function: "g", Unique: "u", Data: []byte("other function")}
	apply(t, s, store.Batch{Adds: []store.Record{a}})
	apply(t, s, store.Batch{Adds: []store.Record{b, other}})
	c := store.Record{Seq: 4, Function: "h", Unique: "v", Data: []byte("third")}
	d := store.Record{Seq: 5, Function: "h", Unique: "v", Data: []byte("fourth")}
	apply(t, s, store.Batch{Adds: []store.Record{c, d}})
	expect(t, s, a, b, other, c, d)
	if r := cRowOf(t, s.DB(), 1); r.unique != "u" {
		t.Errorf("the stored job's unique_key became %q", r.unique)
	}
	if r := cRowOf(t, s.DB(), 2); !uuidForm.MatchString(r.unique) {
		t.Errorf("the colliding job's unique_key is %q, want a stand-in UUID", r.unique)
	}
	// Deleting the first frees nothing for the second (it keeps its
	// stand-in) and loses nothing.
	apply(t, s, store.Batch{Deletes: []uint64{1, 4}})
	expect(t, s, b, other, d)
}

// TestCTableCompleted: a table as an older C gearmand left it (no
// when_to_run) gets when_to_run and our columns; its rows replay.
func TestCTableCompleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := open(t, path)
	db := s.DB()
	for _, q := range []string{
		`DROP TABLE gearman_queue`,
		`CREATE TABLE gearman_queue ( unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, PRIMARY KEY (unique_key, function_name))`,
		`INSERT INTO gearman_queue VALUES ('old', 'f', 2, x'00ff')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	expect(t, s, store.Record{Seq: 1, Function: "f", Unique: "old", Data: []byte{0, 0xff}, Priority: 2})
}

// TestCRowsNumberedAfterOurs: rows C gearmand wrote into a table that also
// holds ours get Seqs above ours, in the order C inserted them, once.
func TestCRowsNumberedAfterOurs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := open(t, path)
	ours := []store.Record{storetest.Sample(10), storetest.Sample(20)}
	apply(t, s, store.Batch{Adds: ours})
	for _, q := range []string{
		`INSERT OR REPLACE INTO gearman_queue (priority, unique_key, function_name, data, when_to_run) VALUES (0, 'c2', 'f', x'02', 0)`,
		`INSERT OR REPLACE INTO gearman_queue (priority, unique_key, function_name, data, when_to_run) VALUES (2, 'c1', 'f', x'01', 1800000000)`,
	} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	want := append(ours,
		store.Record{Seq: 21, Function: "f", Unique: "c2", Data: []byte{2}, Priority: 0},
		store.Record{Seq: 22, Function: "f", Unique: "c1", Data: []byte{1}, Priority: 2, RunAt: time.Unix(1_800_000_000, 0)})
	expect(t, s, want...)
	expect(t, s, want...)
}

// TestReplayChunksCloseBeforeCallback: fn may Apply (the store has one
// connection, so a read left open would deadlock it), across chunks cut
// by count and by bytes.
func TestReplayChunksCloseBeforeCallback(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	var b store.Batch
	for seq := uint64(1); seq <= queuetable.ReplayChunk+10; seq++ {
		b.Adds = append(b.Adds, storetest.Sample(seq))
	}
	for seq := uint64(queuetable.ReplayChunk + 11); seq <= queuetable.ReplayChunk+13; seq++ {
		r := storetest.Sample(seq)
		r.Data = bytes.Repeat([]byte{byte(seq)}, queuetable.ReplayChunkBytes/2+1)
		b.Adds = append(b.Adds, r)
	}
	apply(t, s, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := uint64(1)
	err := s.Replay(ctx, func(r store.Record) error {
		if r.Seq != next {
			t.Fatalf("replayed %d, want %d", r.Seq, next)
		}
		next++
		return s.Apply(ctx, store.Batch{Deletes: []uint64{r.Seq}})
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if next != uint64(len(b.Adds))+1 {
		t.Fatalf("replayed %d records, want %d", next-1, len(b.Adds))
	}
	expect(t, s)
}

// TestSeqTooLarge: a Seq SQLite cannot order as stored is refused, not
// wrapped around.
func TestSeqTooLarge(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{{Seq: 1 << 63, Function: "f"}}})
	if err == nil || !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Apply of Seq 2^63: %v, want ErrTooLarge", err)
	}
}

// TestDamagedFieldsSkippedAndKept: a row whose job_fields cannot be read
// is reported to the Corruption handler, not replayed, and left in the
// table; the rows around it replay whole.
func TestDamagedFieldsSkippedAndKept(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	recs := []store.Record{storetest.Sample(1), storetest.Sample(2), storetest.Sample(3)}
	apply(t, s, store.Batch{Adds: recs})
	if _, err := s.DB().Exec(`UPDATE gearman_queue SET job_fields = x'0100' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	var reported []string
	s.SetCorruptHandler(func(key string, err error) {
		if !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("corruption of %s reported as %v, want ErrCorrupt", key, err)
		}
		reported = append(reported, key)
	})
	expect(t, s, recs[0], recs[2])
	if len(reported) != 1 || reported[0] != "seq 2" {
		t.Errorf("reported %q, want [seq 2]", reported)
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM gearman_queue WHERE seq = 2`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the damaged row: count %d (%v), want it kept", n, err)
	}
}

// TestBatchShapes: batches of every shape Apply cuts differently (one
// statement without a transaction, several statements, deletes beyond
// one DELETE's Seqs, adds beyond one INSERT's rows, both) leave exactly
// the records they should.
func TestBatchShapes(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	var want []store.Record
	seq := uint64(0)
	adds := func(n int) []store.Record {
		var rs []store.Record
		for range n {
			seq++
			rs = append(rs, storetest.Sample(seq))
		}
		want = append(want, rs...)
		return rs
	}
	deletes := func(n int) []uint64 {
		var seqs []uint64
		for _, r := range want[:n] {
			seqs = append(seqs, r.Seq)
		}
		want = want[n:]
		return seqs
	}
	for _, n := range []int{1, 63, 64, 65, 200, 3} {
		apply(t, s, store.Batch{Adds: adds(n)})
	}
	apply(t, s, store.Batch{Deletes: deletes(1)})
	apply(t, s, store.Batch{Deletes: deletes(300)})
	apply(t, s, store.Batch{Deletes: deletes(5), Adds: adds(130)})
	expect(t, s, want...)
}
