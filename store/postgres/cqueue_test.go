package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gearmand/internal/cgearmand"
	"gearmand/store"
	"gearmand/store/postgres/pgtest"
	"gearmand/store/storetest"
)

// cCreateSQL is the table C gearmand 1.1.20 creates for -q Postgres
// (libgearman-server/plugins/queue/postgres/queue.cc, Postgres::initialize,
// with GEARMAN_UNIQUE_SIZE 64), for tests that fill it without running it.
const cCreateSQL = `CREATE TABLE queue (unique_key VARCHAR(64), function_name VARCHAR(255),
	priority INTEGER, data BYTEA, when_to_run INTEGER, UNIQUE (unique_key, function_name))`

// connect is a connection to url, closed when the test ends.
func connect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// fillCTable creates C gearmand's table on url and fills it with n jobs of
// function f, as C gearmand would write them: unique u-I, priority I mod
// 3, the data I as four binary bytes.
func fillCTable(tb testing.TB, url string, n int) {
	tb.Helper()
	sqlOn(tb, url, cCreateSQL,
		fmt.Sprintf(`INSERT INTO queue (priority, unique_key, function_name, data, when_to_run)
			SELECT i %% 3, 'u-' || i, 'f', int4send(i), 0 FROM generate_series(1, %d) i`, n))
}

// sqlOn runs statements on url, failing the test on error.
func sqlOn(tb testing.TB, url string, stmts ...string) {
	tb.Helper()
	conn := connect(tb, url)
	for _, q := range stmts {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}

// countRows is the number of rows of table on url.
func countRows(tb testing.TB, url, table string) int {
	tb.Helper()
	var n int
	if err := connect(tb, url).QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// logTo is a logger writing into buf.
func logTo(buf *bytes.Buffer) Option {
	return Logger(slog.New(slog.NewTextHandler(buf, nil)))
}

// TestCQueueTakeover: the real C gearmand queues jobs in its table and
// stops; Open moves every one into the namespace, after the jobs already
// there, and empties C's table; nothing is taken twice.
func TestCQueueTakeover(t *testing.T) {
	url := pgtest.Server(t).NewDatabase(t)
	ns := freshNamespace(t)
	// A job the namespace already has: the taken-over ones come after it.
	own := openNS(t, url, ns, ImportTable("-"))
	if err := own.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(10)}}); err != nil {
		t.Fatal(err)
	}
	own.Close()

	c := cgearmand.Start(t, "-q", "Postgres", "--libpq-conninfo", url)
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	jobs := []cgearmand.Job{
		{Function: "resize", Unique: "u-1", Data: []byte("plain"), Priority: 1},
		{Function: "my-fn", Unique: "a-b-c", Data: []byte("dashes"), Priority: 0},
		{Function: "resize", Unique: "", Data: []byte("empty unique"), Priority: 2},
		{Function: "resize", Unique: "nul", Data: []byte("a\x00b\xff\x00"), Priority: 1},
		{Function: "resize", Unique: "it's", Data: []byte("quote"), Priority: 0},
	}
	c.Submit(t, jobs...)
	c.SubmitCLI(t, "resize", "uuid unique")
	c.Submit(t, cgearmand.Job{Function: "report", Unique: "ep", Data: []byte("at epoch"), Priority: 1, When: later})
	c.Stop(t)
	if n := countRows(t, url, "queue"); n != 7 {
		t.Fatalf("C gearmand left %d rows in its table, want 7\n%s", n, c.Log())
	}

	var log bytes.Buffer
	s := openNS(t, url, ns, logTo(&log))
	got := replay(t, s)
	if !strings.Contains(log.String(), "took over 7 jobs") {
		t.Errorf("the log does not say 7 jobs were taken over:\n%s", log.String())
	}
	if n := countRows(t, url, "queue"); n != 0 {
		t.Errorf("C's table still has %d rows", n)
	}
	if len(got) != 8 || got[0].Seq != 10 {
		t.Fatalf("replayed %d records (seqs %v), want the namespace's seq 10 and 7 taken over", len(got), seqs(got))
	}
	taken := got[1:]
	for i, r := range taken {
		if r.Seq != uint64(11+i) {
			t.Errorf("taken-over record %d has seq %d, want %d", i, r.Seq, 11+i)
		}
		if r.Handle != "" || r.Attempts != 0 || r.Created.IsZero() {
			t.Errorf("seq %d: handle %q, attempts %d, created %v: want no handle, no attempts, a creation time", r.Seq, r.Handle, r.Attempts, r.Created)
		}
		if i > 0 && r.Priority < taken[i-1].Priority {
			t.Errorf("seq %d has priority %d after priority %d: want priority order", r.Seq, r.Priority, taken[i-1].Priority)
		}
	}
	want := append(jobs, cgearmand.Job{Function: "report", Unique: "ep", Data: []byte("at epoch"), Priority: 1})
	for _, w := range want {
		i := slices.IndexFunc(taken, func(r store.Record) bool { return r.Function == w.Function && r.Unique == w.Unique })
		if i < 0 {
			t.Errorf("job %q/%q was not taken over", w.Function, w.Unique)
			continue
		}
		r := taken[i]
		if !bytes.Equal(r.Data, w.Data) || r.Priority != w.Priority {
			t.Errorf("job %q/%q came back with data %q priority %d, want %q priority %d", w.Function, w.Unique, r.Data, r.Priority, w.Data, w.Priority)
		}
		wantRunAt := time.Time{}
		if w.Function == "report" {
			wantRunAt = later
		}
		if !r.RunAt.Equal(wantRunAt) {
			t.Errorf("job %q/%q runs at %v, want %v", w.Function, w.Unique, r.RunAt, wantRunAt)
		}
	}
	if i := slices.IndexFunc(taken, func(r store.Record) bool { return string(r.Data) == "uuid unique" }); i < 0 || len(taken[i].Unique) != 36 {
		t.Errorf("the job queued by the gearman CLI did not come back with libgearman's UUID unique: %+v", taken)
	}

	// Taken once: neither the namespace reopened nor another namespace
	// finds more.
	s.Close()
	if again := replay(t, openNS(t, url, ns)); len(again) != 8 {
		t.Errorf("the namespace reopened replays %d records, want 8", len(again))
	}
	if other := replay(t, openNS(t, url, freshNamespace(t))); len(other) != 0 {
		t.Errorf("another namespace took %d jobs over too", len(other))
	}
}

// TestCQueueOtherLayout: a table of C's name in another layout is left
// alone with a warning; a name that is not a name fails Open, saying so.
func TestCQueueOtherLayout(t *testing.T) {
	url := pgtest.Server(t).NewDatabase(t)
	sqlOn(t, url, `CREATE TABLE queue (id serial PRIMARY KEY, unique_key text, payload bytea)`,
		`INSERT INTO queue (unique_key, payload) VALUES ('x', 'y')`,
		`CREATE TABLE jobs_c (unique_key text, function_name text, priority int, data text, when_to_run int)`,
		`INSERT INTO jobs_c VALUES ('u', 'f', 1, 'd', 0)`)
	for _, tc := range []struct {
		table string
		want  []string
	}{
		{"queue", []string{"leaving table queue alone", "no column function_name", "column id is not one of C gearmand's"}},
		{"public.jobs_c", []string{"leaving table jobs_c alone", "column data is text, not bytea"}},
	} {
		var log bytes.Buffer
		s := openNS(t, url, freshNamespace(t), ImportTable(tc.table), logTo(&log))
		if got := replay(t, s); len(got) != 0 {
			t.Errorf("%s: took %d jobs from a table in another layout", tc.table, len(got))
		}
		for _, w := range tc.want {
			if !strings.Contains(log.String(), w) {
				t.Errorf("%s: the log does not say %q:\n%s", tc.table, w, log.String())
			}
		}
	}
	if countRows(t, url, "queue") != 1 || countRows(t, url, "jobs_c") != 1 {
		t.Error("a table in another layout lost rows")
	}
	_, err := Open(context.Background(), url, freshNamespace(t), ImportTable("no such.table.here.x"))
	if err == nil || !strings.Contains(err.Error(), "--libpq-table") {
		t.Errorf("Open with a table name that is not one: %v, want an error naming --libpq-table", err)
	}
}

// TestCQueueAtomic fills C's table as C gearmand would and shows the move
// is one transaction: when it fails half-way (a trigger refuses a row in
// the middle) every row stays in C's table and none in the namespace;
// then two servers taking over at once take each row exactly once.
func TestCQueueAtomic(t *testing.T) {
	url := pgtest.Server(t).NewDatabase(t)
	const n = 3000
	fillCTable(t, url, n)
	// Migrate the schema first, so that the trigger has a table.
	openNS(t, url, freshNamespace(t), ImportTable("-")).Close()
	sqlOn(t, url, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.unique_key = convert_to('u-1500', 'UTF8') THEN
				RAISE EXCEPTION 'refused half-way';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER refuse BEFORE INSERT ON gearmand_jobs FOR EACH ROW EXECUTE FUNCTION refuse()`)

	failed := freshNamespace(t)
	if _, err := Open(context.Background(), url, failed); err == nil || !strings.Contains(err.Error(), "refused half-way") {
		t.Fatalf("Open with a takeover failing half-way: %v, want the trigger's error", err)
	}
	if got := countRows(t, url, "queue"); got != n {
		t.Errorf("after a takeover failed half-way C's table has %d rows, want all %d", got, n)
	}
	if got := replay(t, openNS(t, url, failed, ImportTable("-"))); len(got) != 0 {
		t.Errorf("after a takeover failed half-way the namespace holds %d records", len(got))
	}

	sqlOn(t, url, `DROP TRIGGER refuse ON gearmand_jobs`)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		seen  = make(map[string]int)
		total int
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), url, freshNamespace(t), Logger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			err = s.Replay(context.Background(), func(r store.Record) error {
				mu.Lock()
				defer mu.Unlock()
				seen[r.Unique]++
				total++
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if total != n || len(seen) != n {
		t.Errorf("two servers took %d jobs over, %d distinct, want %d", total, len(seen), n)
	}
	if got := countRows(t, url, "queue"); got != 0 {
		t.Errorf("C's table kept %d rows", got)
	}
}

// envCQueueChild makes the test binary a child of TestCQueueKilled: it
// opens the store the variable names ("namespace url"), taking over C
// gearmand's table, until the test kills it.
const envCQueueChild = "GEARMAND_TEST_POSTGRES_CQUEUE_CHILD"

// cqueueChild is the child's whole life.
func cqueueChild(v string) {
	ns, url, _ := strings.Cut(v, " ")
	cgearmand.TakeoverChild(func() (store.Store, error) {
		return Open(context.Background(), url, ns, Logger(slog.New(slog.DiscardHandler)))
	})
}

// TestCQueueKilled SIGKILLs a server while its statement moving C
// gearmand's rows runs: PostgreSQL rolls the transaction back, every row
// is still in C's table and none in the namespace, and the next Open
// takes them all.
func TestCQueueKilled(t *testing.T) {
	url := pgtest.Server(t).NewDatabase(t)
	const n = 100000
	fillCTable(t, url, n)
	ns := freshNamespace(t)
	openNS(t, url, ns, ImportTable("-")).Close() // the schema, so that the child only moves rows

	child := cgearmand.StartChild(t, envCQueueChild, ns+" "+url)
	conn := connect(t, url)
	for running := false; !running; {
		select {
		case <-child.Exited():
			t.Fatalf("the child ended before its move was seen running: %q", child.Output())
		default:
		}
		err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND query LIKE 'WITH moved AS%')`).Scan(&running)
		if err != nil {
			t.Fatal(err)
		}
	}
	child.Kill()

	// PostgreSQL notices the client is gone (client_connection_check_interval)
	// and rolls back: poll until the dead backend is gone, then look.
	for gone := false; !gone; {
		err := conn.QueryRow(context.Background(), `SELECT NOT EXISTS (SELECT FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'WITH moved AS%')`).Scan(&gone)
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := countRows(t, url, "queue"); got != n {
		t.Errorf("after a takeover killed half-way C's table has %d rows, want all %d", got, n)
	}
	if got := countRows(t, url, "gearmand_jobs"); got != 0 {
		t.Errorf("after a takeover killed half-way the store holds %d jobs, want none", got)
	}
	s := openNS(t, url, ns, Logger(slog.New(slog.DiscardHandler)))
	if got := countRows(t, url, "queue"); got != 0 {
		t.Errorf("after the takeover C's table has %d rows", got)
	}
	got := replay(t, s)
	seen := make(map[string]bool, n)
	for _, r := range got {
		seen[r.Unique] = true
	}
	if len(got) != n || len(seen) != n {
		t.Errorf("after a killed takeover the next took %d jobs, %d distinct, want %d", len(got), len(seen), n)
	}
}
