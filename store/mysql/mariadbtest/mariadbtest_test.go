package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestMain(m *testing.M) { Main(m) }

// TestServer checks what tests rely on: the user logs in with its password
// and not without it, a database of the test's own is there, and the
// server comes back after Kill.
func TestServer(t *testing.T) {
	db := Server(t)
	name := db.NewDatabase(t)
	pool := db.Open(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got string
	if err := pool.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&got); err != nil || got != name {
		t.Fatalf("SELECT DATABASE() = %q, %v; want %q", got, err, name)
	}

	cfg, err := mysql.ParseDSN(db.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Passwd = "wrong"
	wrong, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	var myErr *mysql.MySQLError
	if err := wrong.PingContext(ctx); !errors.As(err, &myErr) || myErr.Number != 1045 {
		t.Fatalf("logging in with a wrong password: %v; want error 1045 (access denied)", err)
	}

	if !db.Throwaway() {
		return
	}
	if _, err := pool.ExecContext(ctx, "CREATE TABLE t (v INT) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.ExecContext(ctx, "INSERT INTO t VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	db.Kill(t)
	if err := pool.PingContext(ctx); err == nil {
		t.Fatal("Ping succeeded with the server killed")
	}
	db.Start(t)
	var v int
	if err := pool.QueryRowContext(ctx, "SELECT v FROM t").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after a restart, SELECT v = %d, %v; want 7", v, err)
	}
}

// TestFreeze checks that a frozen server leaves a query unanswered until
// Thaw.
func TestFreeze(t *testing.T) {
	db := Server(t)
	if !db.Throwaway() {
		t.Skip("not a throwaway server")
	}
	pool := db.Open(t, "")
	db.Freeze(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := pool.PingContext(ctx); err == nil {
		t.Fatal("Ping answered by a frozen server")
	}
	db.Thaw(t)
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pool.PingContext(ctx); err != nil {
		t.Fatalf("Ping after Thaw: %v", err)
	}
}
