package migrations_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"

	"gearmand/migrations"
	"gearmand/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestFiles checks the embedded files without a database: numbered from 1
// with no gap (tern's own finder), each with a down migration.
func TestFiles(t *testing.T) {
	names, err := migrate.FindMigrations(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	for _, name := range names {
		body, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		_, down, ok := strings.Cut(string(body), "---- create above / drop below ----")
		if !ok || strings.TrimSpace(down) == "" {
			t.Errorf("%s has no down migration", name)
		}
	}
}

// TestUpThenDownToZeroAndBackUp applies every migration, reverts them all,
// and applies them again, checking the table after each step: every down
// migration undoes its up migration completely.
func TestUpThenDownToZeroAndBackUp(t *testing.T) {
	url := pgtest.Server(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	m, err := migrations.NewMigrator(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	last := int32(len(m.Migrations))
	if last == 0 {
		t.Fatal("no migrations loaded")
	}
	check := func(wantVersion int32, wantTable bool) {
		t.Helper()
		v, err := m.GetCurrentVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != wantVersion {
			t.Errorf("version %d, want %d", v, wantVersion)
		}
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('gearmand_jobs') IS NOT NULL").Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != wantTable {
			t.Errorf("at version %d: table gearmand_jobs exists: %v, want %v", v, exists, wantTable)
		}
		// Migration 002: the owners table and the fence.
		wantOwners := wantTable && wantVersion >= 2
		if err := conn.QueryRow(ctx, "SELECT to_regclass('gearmand_owners') IS NOT NULL").Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != wantOwners {
			t.Errorf("at version %d: table gearmand_owners exists: %v, want %v", v, exists, wantOwners)
		}
		if err := conn.QueryRow(ctx, "SELECT to_regprocedure('gearmand_fence(text,bigint)') IS NOT NULL").Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != wantOwners {
			t.Errorf("at version %d: function gearmand_fence exists: %v, want %v", v, exists, wantOwners)
		}
	}
	check(0, false)
	if err := migrations.Up(ctx, conn); err != nil {
		t.Fatalf("up: %v", err)
	}
	check(last, true)
	// A row goes in, so the down migration meets a table with data.
	_, err = conn.Exec(ctx, `INSERT INTO gearmand_jobs (namespace, seq, handle, function, unique_key, data,
		priority, reducer, attempts) VALUES ('ns', 1, 'H:1', 'f', '', '\x00', 1, '', 0)`)
	if err != nil {
		t.Fatalf("inserting into the migrated table: %v", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO gearmand_owners (namespace, generation) VALUES ('ns', 1)`); err != nil {
		t.Fatalf("inserting into the owners table: %v", err)
	}
	if _, err := conn.Exec(ctx, `SELECT gearmand_fence('ns', 1)`); err != nil {
		t.Errorf("the fence refused the owner: %v", err)
	}
	var pgErr *pgconn.PgError
	if _, err := conn.Exec(ctx, `SELECT gearmand_fence('ns', 2)`); !errors.As(err, &pgErr) || pgErr.Code != "GMD01" {
		t.Errorf("the fence let another generation through: %v", err)
	}
	if _, err := conn.Exec(ctx, `SELECT gearmand_fence('other', 1)`); !errors.As(err, &pgErr) || pgErr.Code != "GMD01" {
		t.Errorf("the fence let a namespace without owner through: %v", err)
	}
	if err := migrations.Up(ctx, conn); err != nil {
		t.Fatalf("up again (a no-op): %v", err)
	}
	check(last, true)
	if err := m.MigrateTo(ctx, 0); err != nil {
		t.Fatalf("down to zero: %v", err)
	}
	check(0, false)
	if err := m.MigrateTo(ctx, last); err != nil {
		t.Fatalf("up again: %v", err)
	}
	check(last, true)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM gearmand_jobs").Scan(&n); err != nil || n != 0 {
		t.Errorf("after down and up: %d rows (%v), want an empty table", n, err)
	}
}
