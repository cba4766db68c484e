package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gearmand/store"
	"gearmand/store/internal/queuetable"
	"gearmand/store/storetest"
)

const killEnv = "GEARMAND_SQLITE_WRITE"

func TestMain(m *testing.M) {
	if path := os.Getenv(killEnv); path != "" {
		storetest.WriteUntilKilled(func() (store.Store, error) { return Open(context.Background(), path) })
		return
	}
	if path := os.Getenv(openEnv); path != "" {
		fmt.Println(openOutcome(path))
		return
	}
	os.Exit(m.Run())
}

func openAt(tb testing.TB, path string, opts ...Option) *Store {
	tb.Helper()
	opts = append([]Option{Logger(storetest.Logger(tb))}, opts...)
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// corrupt gives record seq a priority no job has, straight in the table.
func corrupt(tb testing.TB, s *Store, seq uint64) {
	tb.Helper()
	if _, err := s.DB().Exec(`UPDATE gearman_queue SET priority = 7 WHERE seq = ?`, seq); err != nil {
		tb.Fatalf("corrupting record %d: %v", seq, err)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "queue.db"))
	}, storetest.Reopen(func(t *testing.T, old store.Store) store.Store {
		return openAt(t, old.(*Store).Path())
	}), storetest.Corrupt(func(t *testing.T, s store.Store, seq uint64) {
		corrupt(t, s.(*Store), seq)
	}), storetest.Registered([]string{"libsqlite3", "sqlite"}, func(t *testing.T) store.Options {
		return store.Options{Path: filepath.Join(t.TempDir(), "queue.db")}
	}), storetest.Exclusive(func(t *testing.T, s store.Store) (store.Store, error) {
		return Open(context.Background(), s.(*Store).Path())
	}), storetest.ReplayChunk(queuetable.ReplayChunk))
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		return openAt(b, filepath.Join(b.TempDir(), "queue.db"))
	})
}

func TestKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	acked := storetest.KillWhileWriting(t, killEnv, path, 200)
	storetest.CheckAcked(t, openAt(t, path), acked)
}

// TestLockedNamesFile: the error of a second Open (the Exclusive case
// checks the rest) names the file.
func TestLockedNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	openAt(t, path)
	_, err := Open(context.Background(), path)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open of %s: %v, want ErrLocked naming the file", path, err)
	}
}

func TestBadPaths(t *testing.T) {
	dir := t.TempDir()
	notSQLite := filepath.Join(dir, "text.db")
	if err := os.WriteFile(notSQLite, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.db")
	if err := os.WriteFile(short, []byte("SQL"+"ite"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		is         error
		says       []string
	}{
		{"empty", "", nil, []string{"--libsqlite3-db"}},
		{"missing directory", filepath.Join(dir, "no", "such", "q.db"), fs.ErrNotExist, []string{filepath.Join(dir, "no", "such"), "does not exist"}},
		{"a directory", dir, nil, []string{dir, "is a directory"}},
		{"not SQLite", notSQLite, store.ErrCorrupt, []string{notSQLite, "not an SQLite database"}},
		{"a short file", short, store.ErrCorrupt, []string{short, "not an SQLite database"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := os.ReadFile(c.path)
			s, err := Open(context.Background(), c.path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("Open: %v, want an error wrapping %v", err, c.is)
			}
			for _, want := range c.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open: %q does not say %q", err, want)
				}
			}
			if after, _ := os.ReadFile(c.path); string(after) != string(before) {
				t.Errorf("Open changed %s", c.path)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open created a directory (stat: %v)", err)
	}
}

// TestOtherLayout: a table of the same name that is not a queue table is
// refused with an error naming the table and the flag, and left as it
// was, rows included.
func TestOtherLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s := openAt(t, path, Table("unused"))
	if _, err := s.DB().Exec(`CREATE TABLE gearman_queue (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(`INSERT INTO gearman_queue (name) VALUES ('keep me')`); err != nil {
		t.Fatal(err)
	}
	schema := func() string {
		var sql string
		if err := s.DB().QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'gearman_queue'`).Scan(&sql); err != nil {
			t.Fatal(err)
		}
		return sql
	}
	before := schema()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path)
	if !errors.Is(err, queuetable.ErrLayout) {
		t.Fatalf("Open: %v, want ErrLayout", err)
	}
	for _, want := range []string{"gearman_queue", "--libsqlite3-table", path, "unique_key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open: %q does not say %q", err, want)
		}
	}
	s = openAt(t, path, Table("unused"))
	if after := schema(); after != before {
		t.Errorf("the table changed:\n%s\nwas\n%s", after, before)
	}
	var name string
	if err := s.DB().QueryRow(`SELECT name FROM gearman_queue`).Scan(&name); err != nil || name != "keep me" {
		t.Errorf("the row: %q, %v", name, err)
	}
}
