package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"gearmand/store"
)

// DefaultImportTable is the table C gearmand's libpq queue keeps its jobs
// in unless --libpq-table says otherwise. Open takes over the jobs it
// finds there (see the package doc, "Jobs C gearmand left behind").
const DefaultImportTable = "queue"

// ExtraImportTable is the store.Options.Extra key read by
// OptionsFromExtra: the table of C gearmand's jobs for ImportTable
// (gearmand's --libpq-table). Absent means DefaultImportTable; "" or "-"
// takes nothing over.
const ExtraImportTable = "import-table"

// importTimeout bounds the transaction that moves C gearmand's jobs into
// the store: the whole table moves at once, so it gets longer than an
// Apply.
const importTimeout = 5 * time.Minute

// ImportTable names the table of C gearmand's libpq queue (its
// --libpq-table, optionally schema-qualified, resolved on the
// connection's search_path as C gearmand resolves it) whose jobs Open
// moves into the store. The default is DefaultImportTable; "" or "-"
// moves nothing.
func ImportTable(name string) Option {
	return func(c *config) { c.importTable = name }
}

// Logger sets where Open logs what it took over from C gearmand's table
// or why it left that table alone (default slog.Default()).
func Logger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// OptionsFromExtra gives the Options that the registry's store.Options
// carry besides DSN and Namespace: Extra[ExtraApplyTimeout],
// Extra[ExtraImportTable] and Logger.
func OptionsFromExtra(o store.Options) ([]Option, error) {
	opts := []Option{Logger(o.Logger)}
	if v, ok := o.Extra[ExtraApplyTimeout]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("postgres: %s %q: want a positive duration such as 5s", ExtraApplyTimeout, v)
		}
		opts = append(opts, ApplyTimeout(d))
	}
	if v, ok := o.Extra[ExtraImportTable]; ok {
		opts = append(opts, ImportTable(v))
	}
	return opts, nil
}

// cLayout is the table C gearmand 1.1.20's libpq queue creates:
//
//	CREATE TABLE queue (unique_key VARCHAR(64), function_name VARCHAR(255),
//	    priority INTEGER, data BYTEA, when_to_run INTEGER,
//	    UNIQUE (unique_key, function_name))
//
// A table qualifies when it has exactly these columns, in any order, each
// of one of the types listed (text for the VARCHARs of a table made by
// hand, any integer width for the INTEGERs).
var cLayout = []struct {
	column string
	types  []string
}{
	{"unique_key", []string{"character varying", "text"}},
	{"function_name", []string{"character varying", "text"}},
	{"priority", []string{"integer", "smallint", "bigint"}},
	{"data", []string{"bytea"}},
	{"when_to_run", []string{"integer", "smallint", "bigint"}},
}

// findTableSQL resolves a table name as a query would (search_path
// included) and lists its columns: the relation's name as PostgreSQL
// quotes it, its kind, and each column's name and type.
const findTableSQL = `SELECT c.oid::regclass::text, c.relkind::text, a.attname::text, a.atttypid::regtype::text
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = to_regclass($1)
ORDER BY a.attnum`

// cTable is C gearmand's queue table as Open found it.
type cTable struct {
	name   string // as PostgreSQL quotes it: safe to put into SQL
	layout string // what is not C's layout about it; "" when it is
}

// findCTable looks name up. It returns nil when there is no relation of
// that name.
func findCTable(ctx context.Context, tx pgx.Tx, name string) (*cTable, error) {
	rows, err := tx.Query(ctx, findTableSQL, name)
	if err != nil {
		return nil, err
	}
	var (
		t                 cTable
		relkind, col, typ string
		problems          []string
		types             = make(map[string]string)
	)
	if _, err := pgx.ForEachRow(rows, []any{&t.name, &relkind, &col, &typ}, func() error {
		types[col] = typ
		return nil
	}); err != nil || t.name == "" {
		return nil, err
	}
	if relkind != "r" && relkind != "p" {
		problems = append(problems, "it is not a table (relkind "+relkind+")")
	}
	for _, c := range cLayout {
		switch typ, ok := types[c.column]; {
		case !ok:
			problems = append(problems, "it has no column "+c.column)
		case !slices.Contains(c.types, typ):
			problems = append(problems, fmt.Sprintf("column %s is %s, not %s", c.column, typ, strings.Join(c.types, " or ")))
		}
		delete(types, c.column)
	}
	for _, col := range slices.Sorted(maps.Keys(types)) {
		problems = append(problems, "column "+col+" is not one of C gearmand's")
	}
	t.layout = strings.Join(problems, "; ")
	return &t, nil
}

// moveSQL moves every row of C gearmand's table that names a function into
// gearmand_jobs under namespace $1, numbered after the namespace's largest
// Seq in the order priority, when_to_run, position in the table (about
// the order C gearmand inserted them), and deletes them from C's table,
// in one statement. FOR UPDATE SKIP LOCKED leaves rows that another
// server's takeover holds to that server. It returns the number of rows
// moved.
//
// Conversions: unique_key and function_name go back to the bytes C
// gearmand sent (libpq's client encoding defaults to the database's), a
// NULL unique or data is empty, a priority outside 0-2 (C gearmand itself
// reads the column back wrongly, with atoi on binary) is NORMAL, and a
// when_to_run above 0 is the epoch second the job runs at. The handle is
// empty, so the queue gives each job a fresh one.
const moveSQL = `WITH moved AS (
	DELETE FROM %[1]s q
	WHERE q.ctid = ANY (ARRAY(SELECT ctid FROM %[1]s WHERE function_name <> '' FOR UPDATE SKIP LOCKED))
	RETURNING q.unique_key, q.function_name, q.priority, q.data, q.when_to_run, q.ctid AS pos
), top AS (
	SELECT coalesce(max(seq), 0) AS seq FROM gearmand_jobs WHERE namespace = $1
), added AS (
	INSERT INTO gearmand_jobs (namespace, seq, handle, function, unique_key, data,
		priority, run_at, run_at_nanos, reducer, attempts, created, created_nanos)
	SELECT $1, top.seq + row_number() OVER (ORDER BY p, coalesce(when_to_run, 0), pos), ''::bytea,
		convert_to(function_name, pg_catalog.getdatabaseencoding()),
		convert_to(coalesce(unique_key, ''), pg_catalog.getdatabaseencoding()),
		coalesce(data, ''::bytea), p,
		CASE WHEN when_to_run > 0 THEN to_timestamp(when_to_run) END, 0, ''::bytea, 0, now(), 0
	FROM (SELECT *, CASE WHEN priority BETWEEN 0 AND 2 THEN priority ELSE 1 END AS p FROM moved) m, top
	RETURNING 1
)
SELECT count(*) FROM added`

// leftSQL counts the rows of C gearmand's table that name no function:
// no server can run them, so the takeover leaves them.
const leftSQL = `SELECT count(*) FROM %s WHERE function_name IS NULL OR function_name = ''`

// importCQueue moves the jobs C gearmand left in its table into the
// namespace, in one transaction fenced like an Apply, so that a crash
// half-way leaves them all where they were and two servers never take
// the same row. A relation of that name in another layout is left alone
// with a warning.
func (s *Store) importCQueue(ctx context.Context, table string, log *slog.Logger) error {
	if table == "" || table == "-" {
		return nil
	}
	ictx, cancel := context.WithTimeout(ctx, importTimeout)
	defer cancel()
	fail := func(err error) error {
		return interpretError(ctx, fmt.Errorf("taking over the jobs of C gearmand's table %q (--libpq-table): %w", table, err))
	}
	tx, err := s.beginFenced(ictx)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	t, err := findCTable(ictx, tx, table)
	switch {
	case err != nil:
		return fail(err)
	case t == nil:
		return nil
	case t.layout != "":
		log.Warn("postgres: leaving table "+t.name+" alone: it is not C gearmand's queue table ("+t.layout+"); name C gearmand's table with --libpq-table, or none with --libpq-table -",
			"table", t.name, "namespace", s.namespace)
		return nil
	}
	var moved, left int64
	if err := tx.QueryRow(ictx, fmt.Sprintf(moveSQL, t.name), s.namespace).Scan(&moved); err != nil {
		return fail(err)
	}
	if err := tx.QueryRow(ictx, fmt.Sprintf(leftSQL, t.name)).Scan(&left); err != nil {
		return fail(err)
	}
	if err := tx.Commit(ictx); err != nil {
		return fail(err)
	}
	if moved > 0 {
		log.Log(ctx, store.LevelNotice, fmt.Sprintf("postgres: took over %d jobs that C gearmand left in table %s", moved, t.name),
			"jobs", moved, "table", t.name, "namespace", s.namespace)
	}
	if left > 0 {
		log.Warn(fmt.Sprintf("postgres: left %d rows in table %s that name no function: no worker could run them", left, t.name),
			"rows", left, "table", t.name)
	}
	return nil
}

// beginFenced begins a transaction opened by the fence, as an Apply's is:
// it fails unless the namespace is still this Store's, and a takeover
// waits for it to end. The caller rolls it back or commits it.
func (s *Store) beginFenced(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, fenceSQL, s.namespace, s.generation); err != nil {
		_ = tx.Rollback(context.Background())
		return nil, err
	}
	return tx, nil
}
