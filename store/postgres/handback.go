package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"gearmand/store"
)

var _ store.HandBack = (*Store)(nil)

// cCreateTableSQL creates C gearmand's table as C gearmand 1.1.20 does when it
// finds none (Postgres::initialize, GEARMAN_UNIQUE_SIZE 64), the name put
// in as given, unquoted, as C puts it.
const cCreateTableSQL = `CREATE TABLE IF NOT EXISTS %s (unique_key VARCHAR(64), function_name VARCHAR(255),
	priority INTEGER, data BYTEA, when_to_run INTEGER, UNIQUE (unique_key, function_name))`

// plainTableName is a table name HandBack may create: one or two plain SQL
// identifiers, which C gearmand's unquoted SQL reads as this SQL does.
var plainTableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)

// C gearmand 1.1.20's limits on what its table holds and how it uses it.
const (
	cUniqueChars   = 64  // unique_key VARCHAR(64)
	cFunctionChars = 255 // function_name VARCHAR(255)
)

// The statements of HandBack. %[1]s is C's table as PostgreSQL quotes it.
const (
	lockCSQL = `LOCK TABLE %[1]s IN SHARE ROW EXCLUSIVE MODE`
	// cKeysSQL lists the (function, unique) pairs C's table holds, as the
	// bytes the store keeps.
	cKeysSQL = `SELECT convert_to(coalesce(function_name, ''), pg_catalog.getdatabaseencoding()),
	convert_to(coalesce(unique_key, ''), pg_catalog.getdatabaseencoding()) FROM %[1]s`
	// handBackRowsSQL reads the namespace in the order the jobs go into
	// C's table: priority first, since C gearmand 1.1.20 replays every row
	// of its table at HIGH priority (it reads the binary priority with
	// atoi), in the order the table gives them.
	handBackRowsSQL = `SELECT seq, function, unique_key, data, priority, run_at FROM gearmand_jobs
WHERE namespace = $1 ORDER BY priority, seq FOR UPDATE`
	// handBackInsertSQL adds the jobs to C's table in array order, the
	// strings turned back from the database encoding's bytes into text.
	handBackInsertSQL = `INSERT INTO %[1]s (priority, unique_key, function_name, data, when_to_run)
SELECT r.p, convert_from(r.u, pg_catalog.getdatabaseencoding()), convert_from(r.f, pg_catalog.getdatabaseencoding()), r.d, 0
FROM unnest($1::int[], $2::bytea[], $3::bytea[], $4::bytea[]) WITH ORDINALITY AS r(p, u, f, d, o) ORDER BY r.o`
)

// HandBack implements store.HandBack: it moves every job of the namespace
// into C gearmand's table (ImportTable, gearmand's --libpq-table), creating
// it as C gearmand 1.1.20 does when absent, in one transaction opened by
// the fence like an Apply: the rows are inserted into C's table and
// deleted from gearmand_jobs together, so a crash or an error half-way
// moves nothing. C's table is locked against writes meanwhile.
//
// What C gearmand 1.1.20 makes of its table decides what goes back how:
//
//   - The unique is replaced by a generated UUID when C could not key the
//     job by it: empty, holding a NUL or a quote (C deletes a done job
//     with the unique pasted into its SQL unquoted, so it would never be
//     deleted), not text of the database encoding, longer than 64
//     characters, or already taken in C's table or by an earlier job of
//     the same function.
//   - A job whose function name C cannot keep or delete (empty, a NUL or
//     a quote, not text, over 255 characters) stays in the store.
//   - An epoch job whose time has not come stays in the store: C reads
//     when_to_run back with atoll on the binary column, gets 0 and would
//     run it at once. One whose time has passed goes back to run now.
//   - Handle, attempts, reducer and creation time have no column in C's
//     table and are not kept.
//
// C reads priority back as HIGH for every row (atoi on binary), so the
// rows go in priority order, FIFO within a priority, the order C's replay
// reads them in. A table of that name in another layout fails HandBack
// and moves nothing.
func (s *Store) HandBack(ctx context.Context) (store.HandBackReport, error) {
	var rep store.HandBackReport
	if s.closed.Load() {
		return rep, store.ErrClosed
	}
	if s.cTable == "" || s.cTable == "-" {
		return rep, errors.New("postgres: --libpq-table names no table of C gearmand's to hand the jobs back to")
	}
	hctx, cancel := context.WithTimeout(ctx, importTimeout)
	defer cancel()
	fail := func(err error) (store.HandBackReport, error) {
		return store.HandBackReport{}, interpretError(ctx, fmt.Errorf("handing the jobs back to C gearmand's table %q (--libpq-table): %w", s.cTable, err))
	}
	tx, err := s.beginFenced(hctx)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	t, err := s.cTableForHandBack(hctx, tx)
	if err != nil {
		return fail(err)
	}
	rep.Where = "table " + t
	if _, err := tx.Exec(hctx, fmt.Sprintf(lockCSQL, t)); err != nil {
		return fail(err)
	}
	var enc string
	if err := tx.QueryRow(hctx, `SELECT pg_catalog.getdatabaseencoding()`).Scan(&enc); err != nil {
		return fail(err)
	}
	taken := make(map[string]bool)
	rows, err := tx.Query(hctx, fmt.Sprintf(cKeysSQL, t))
	if err != nil {
		return fail(err)
	}
	var fn, uq []byte
	if _, err := pgx.ForEachRow(rows, []any{&fn, &uq}, func() error {
		taken[cKeyOf(fn, uq)] = true
		return nil
	}); err != nil {
		return fail(err)
	}

	var (
		pri            []int32
		uniques, funcs [][]byte
		data           [][]byte
		seqs           []int64
		seq            int64
		d              []byte
		p              int16
		runAt          pgtype.Timestamptz
		now            = time.Now()
	)
	rows, err = tx.Query(hctx, handBackRowsSQL, s.namespace)
	if err != nil {
		return fail(err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&seq, &fn, &uq, &d, &p, &runAt}, func() error {
		job := "seq " + strconv.FormatInt(seq, 10) + ", function " + strconv.Quote(string(fn))
		if why := cKeepsFunction(fn, enc); why != "" {
			rep.Kept++
			rep.Note("kept: "+why, job)
			return nil
		}
		if runAt.Valid && runAt.Time.After(now) {
			rep.Kept++
			rep.Note("kept: an epoch job not yet due; C gearmand 1.1.20 reads when_to_run back as 0 and would run it at once", job+", runs at "+runAt.Time.UTC().Format(time.RFC3339))
			return nil
		}
		u := bytes.Clone(uq)
		why := cKeepsUnique(u, enc)
		if why == "" && taken[cKeyOf(fn, u)] {
			why = "another job of the function has this unique in C's table, which keys jobs by function and unique"
		}
		if why != "" {
			rep.NewUnique++
			u = []byte(store.NewUnique())
			rep.Note("new unique: "+why, job+", unique "+strconv.Quote(string(uq))+" now "+string(u))
		}
		taken[cKeyOf(fn, u)] = true
		pri, uniques, funcs = append(pri, int32(p)), append(uniques, u), append(funcs, bytes.Clone(fn))
		data, seqs = append(data, d), append(seqs, seq)
		d = nil // pgx gives each row its own slice only when this one is nil
		return nil
	}); err != nil {
		return fail(err)
	}
	if len(seqs) > 0 {
		if _, err := tx.Exec(hctx, fmt.Sprintf(handBackInsertSQL, t), pri, uniques, funcs, data); err != nil {
			return fail(err)
		}
		if _, err := tx.Exec(hctx, deleteSQL, s.namespace, seqs); err != nil {
			return fail(err)
		}
	}
	if err := tx.Commit(hctx); err != nil {
		return fail(err)
	}
	rep.Moved = len(seqs)
	s.log.Log(ctx, store.LevelNotice, fmt.Sprintf("postgres: handed %d jobs back to C gearmand's table %s (%d under a new unique), kept %d",
		rep.Moved, t, rep.NewUnique, rep.Kept), "jobs", rep.Moved, "table", t, "namespace", s.namespace)
	return rep, nil
}

// cTableForHandBack finds C's table, creating it as C gearmand does when
// there is none, and returns its name as PostgreSQL quotes it. A table in
// another layout is an error.
func (s *Store) cTableForHandBack(ctx context.Context, tx pgx.Tx) (string, error) {
	t, err := findCTable(ctx, tx, s.cTable)
	if err != nil {
		return "", err
	}
	if t == nil {
		if !plainTableName.MatchString(s.cTable) {
			return "", fmt.Errorf("there is no table %q and this name is not one to create (want name or schema.name of letters, digits and _)", s.cTable)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(cCreateTableSQL, s.cTable)); err != nil {
			return "", err
		}
		if t, err = findCTable(ctx, tx, s.cTable); err != nil {
			return "", err
		}
		if t == nil {
			return "", fmt.Errorf("table %q cannot be found after creating it (is the schema on the search_path?)", s.cTable)
		}
	}
	if t.layout != "" {
		return "", fmt.Errorf("table %s is not C gearmand's queue table (%s); nothing was moved", t.name, t.layout)
	}
	return t.name, nil
}

// cKeyOf is the key of C's table's unique constraint as a map key.
func cKeyOf(function, unique []byte) string {
	return string(function) + "\x00" + string(unique)
}

// cKeepsFunction says why C gearmand cannot keep a job of function in its
// table, "" when it can.
func cKeepsFunction(function []byte, enc string) string {
	if len(function) == 0 {
		return "no function name"
	}
	return cTextProblem(function, enc, "function name", "function_name", cFunctionChars)
}

// cKeepsUnique says why C gearmand cannot key a job by unique, "" when it
// can.
func cKeepsUnique(unique []byte, enc string) string {
	if len(unique) == 0 {
		return "an empty unique, which C's table keys one job per function by"
	}
	return cTextProblem(unique, enc, "unique", "unique_key", cUniqueChars)
}

// cTextProblem says why b, the what of a job, cannot go into column of
// C's table (VARCHAR(maxChars)) and be deleted again by C gearmand 1.1.20,
// "" when it can.
func cTextProblem(b []byte, enc, what, column string, maxChars int) string {
	switch {
	case bytes.IndexByte(b, 0) >= 0:
		return "a NUL in the " + what + ", which text cannot hold"
	case bytes.IndexByte(b, '\'') >= 0:
		return "a quote in the " + what + ": C gearmand 1.1.20 pastes it into its DELETE unquoted and would run the job again at every start"
	case enc == "UTF8" && !utf8.Valid(b):
		return "a " + what + " that is not UTF-8 text"
	case textLen(b, enc) > maxChars:
		return fmt.Sprintf("a %s over %d characters (%s VARCHAR(%d))", what, maxChars, column, maxChars)
	}
	return ""
}

// textLen is the number of characters of b in the database encoding,
// counted as bytes (at least as many) for encodings other than UTF8.
func textLen(b []byte, enc string) int {
	if enc == "UTF8" {
		return utf8.RuneCount(b)
	}
	return len(b)
}
