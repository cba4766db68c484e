// Package migrations holds the PostgreSQL schema of the postgres store as
// numbered SQL files embedded in the binary, and applies them with tern
// (github.com/jackc/tern/v2/migrate).
//
// Each file is NNN_name.sql in tern's format: the up migration, then the
// line "---- create above / drop below ----", then the down migration.
// Files are never edited once released; a schema change is a new file
// with the next number. The version applied is kept in the table
// gearmand_schema_version; tern holds a PostgreSQL advisory lock while it
// migrates, so servers starting together on one database do not race.
//
// The files live in their own package because //go:embed cannot reach a
// parent directory.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

// FS holds the migration files, at its root.
//
//go:embed *.sql
var FS embed.FS

// VersionTable is the table in which tern records the schema version.
const VersionTable = "gearmand_schema_version"

// NewMigrator returns a tern Migrator on conn loaded with every migration
// in FS.
func NewMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if err := m.LoadMigrations(FS); err != nil {
		return nil, fmt.Errorf("migrations: loading: %w", err)
	}
	return m, nil
}

// Up migrates the database behind conn to the newest schema in FS. It is a
// no-op on a database already there.
func Up(ctx context.Context, conn *pgx.Conn) error {
	m, err := NewMigrator(ctx, conn)
	if err != nil {
		return err
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	return nil
}
