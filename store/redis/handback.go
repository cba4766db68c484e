package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"gearmand/store"
)

var _ store.HandBack = (*Store)(nil)

// C gearmand 1.1.20's limits when it replays its keys: sscanf reads the
// function into char[GEARMAN_FUNCTION_MAX_SIZE] with %512[^-] and the
// unique into char[GEARMAN_MAX_UNIQUE_SIZE] with %64[^*], each with no
// room for the terminating NUL at the full width.
const (
	cFunctionMax = 511
	cUniqueMax   = 63
)

// handBackBatch is how many jobs one watched transaction of HandBack
// moves, at most (and at most replayPageBytes of data, one larger job
// alone).
const handBackBatch = 512

// HandBack implements store.HandBack: it moves every job of the namespace
// into C gearmand's keys, a hash "<prefix>-<function>-<unique>" of the
// fields data and priority per job, as C gearmand 1.1.20 writes them
// (prefix: Config.ImportPrefix, gearmand's --redis-prefix). Each batch of
// jobs is one MULTI/EXEC that WATCHes the owner key and the C keys it
// writes: it writes the C keys and deletes the jobs' keys and index
// members together, so a crash half-way leaves every job either still
// ours or C's, never both, never neither (Open takes over again whatever
// is in C's keys).
//
// What C gearmand 1.1.20 makes of its keys decides what goes back how:
//
//   - The unique is replaced by a generated UUID when C could not read it
//     back: empty (C's sscanf then leaves the unique unset), holding a
//     NUL or a '*' (C reads the unique up to the first), over 63 bytes,
//     or the key already exists (another job of the same function and
//     unique, in C's keys or earlier in the namespace).
//   - A job whose function C would misread stays: a '-' in the name (C
//     reads the function up to the first '-'), a NUL, an empty name, or
//     one over 511 bytes.
//   - An epoch job whose time has not come stays: C's redis queue holds
//     no run time (it refuses epoch jobs). One whose time has passed goes
//     back to run now.
//   - Data holding a NUL goes back whole in the key, but C gearmand
//     1.1.20 reads it back only up to its first NUL: such jobs are
//     counted in Truncated.
//   - Handle, attempts, reducer and creation time have no place in C's
//     keys and are not kept.
//
// A Cluster cannot be handed back to (C gearmand talks to one node), nor
// a prefix holding '-' (C reads the prefix of a key up to its first '-').
func (s *Store) HandBack(ctx context.Context) (store.HandBackReport, error) {
	var rep store.HandBackReport
	prefix := s.cfg.ImportPrefix
	switch {
	case s.closed.Load():
		return rep, store.ErrClosed
	case prefix == "-":
		return rep, errors.New("redis: --redis-prefix - names no keys of C gearmand's to hand the jobs back to")
	case strings.ContainsAny(prefix, "-\x00"):
		return rep, fmt.Errorf("redis: --redis-prefix %q holds a '-' or NUL, which C gearmand 1.1.20 cannot read its keys back with", prefix)
	}
	if _, ok := s.client.(*goredis.ClusterClient); ok {
		return rep, errors.New("redis: a Redis Cluster cannot be handed back to: C gearmand talks to one Redis node")
	}
	rep.Where = "keys " + prefix + "-*"
	var (
		batch []store.Record
		size  int
		now   = time.Now()
	)
	flush := func() error {
		err := s.handBackBatch(ctx, prefix, batch, &rep)
		batch, size = batch[:0], 0
		return err
	}
	err := s.Replay(ctx, func(r store.Record) error {
		job := "seq " + strconv.FormatUint(r.Seq, 10) + ", function " + strconv.Quote(r.Function)
		if why := cKeepsFunction(r.Function); why != "" {
			rep.Kept++
			rep.Note("kept: "+why, job)
			return nil
		}
		if r.RunAt.After(now) {
			rep.Kept++
			rep.Note("kept: an epoch job not yet due; C gearmand's redis queue holds no run time", job+", runs at "+r.RunAt.UTC().Format(time.RFC3339))
			return nil
		}
		if len(batch) > 0 && (len(batch) == handBackBatch || size+len(r.Data) > replayPageBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		batch, size = append(batch, r), size+len(r.Data)
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if err != nil {
		return rep, s.interpretError(ctx, fmt.Errorf("handing the jobs back to C gearmand's keys %s-* (--redis-prefix), %d moved so far: %w", prefix, rep.Moved, err))
	}
	s.cfg.Logger.Log(ctx, store.LevelNotice, fmt.Sprintf("redis: handed %d jobs back to C gearmand's keys %s-* (%d under a new unique, %d whose data C will cut at a NUL), kept %d",
		rep.Moved, prefix, rep.NewUnique, rep.Truncated, rep.Kept), "jobs", rep.Moved, "prefix", prefix, "namespace", s.cfg.Namespace)
	return rep, nil
}

// handBackBatch moves recs into C's keys, trying again while a watched key
// changes under the transaction, and counts them into rep once moved.
func (s *Store) handBackBatch(ctx context.Context, prefix string, recs []store.Record, rep *store.HandBackReport) error {
	for range importTries {
		var try store.HandBackReport
		err := s.handBackTry(ctx, prefix, recs, &try)
		if errors.Is(err, goredis.TxFailedErr) {
			continue // a key changed since WATCH: read again
		}
		if err != nil {
			return err
		}
		rep.Merge(try)
		return nil
	}
	return fmt.Errorf("%w: C gearmand's keys kept changing while the jobs were moved (%d tries): is C gearmand running on them?", store.ErrUnavailable, importTries)
}

// handBackTry is one try at moving recs: WATCH the owner key and the C
// keys the jobs would take, see which exist, and in one MULTI/EXEC write
// the C keys and delete the jobs from the namespace. EXEC fails with
// goredis.TxFailedErr if a watched key changed after the WATCH.
func (s *Store) handBackTry(ctx context.Context, prefix string, recs []store.Record, rep *store.HandBackReport) error {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	uniques := make([]string, len(recs))
	why := make([]string, len(recs))
	watched := []string{s.ownerKey}
	for i, r := range recs {
		uniques[i] = r.Unique
		if why[i] = cKeepsUnique(r.Unique); why[i] == "" {
			watched = append(watched, cKeyName(prefix, r.Function, r.Unique))
		}
	}
	return s.client.Watch(tctx, func(tx *goredis.Tx) error {
		if err := s.checkOwner(tctx, tx); err != nil {
			return err
		}
		exists := make([]*goredis.IntCmd, len(recs))
		if _, err := tx.Pipelined(tctx, func(p goredis.Pipeliner) error {
			for i, r := range recs {
				if why[i] == "" {
					exists[i] = p.Exists(tctx, cKeyName(prefix, r.Function, r.Unique))
				}
			}
			return nil
		}); err != nil {
			return err
		}
		taken := make(map[string]bool, len(recs))
		for i, r := range recs {
			key := cKeyName(prefix, r.Function, uniques[i])
			if why[i] == "" && (exists[i].Val() > 0 || taken[key]) {
				why[i] = "a job of the same function and unique is in C's keys, which name a job by both"
			}
			if why[i] != "" {
				uniques[i] = store.NewUnique()
				key = cKeyName(prefix, r.Function, uniques[i])
				rep.NewUnique++
				rep.Note("new unique: "+why[i], fmt.Sprintf("seq %d, function %q, unique %q now %s", r.Seq, r.Function, r.Unique, uniques[i]))
			}
			taken[key] = true
			if bytes.IndexByte(r.Data, 0) >= 0 {
				rep.Truncated++
				rep.Note("data cut short: C gearmand 1.1.20 reads a job's data back only up to its first NUL byte", fmt.Sprintf("seq %d, function %q, %d bytes, %d up to the NUL", r.Seq, r.Function, len(r.Data), bytes.IndexByte(r.Data, 0)))
			}
		}
		members := make([]any, len(recs))
		jobKeys := make([]string, len(recs))
		for i, r := range recs {
			members[i] = member(r.Seq)
			jobKeys[i] = s.jobKey + member(r.Seq)
		}
		_, err := tx.TxPipelined(tctx, func(p goredis.Pipeliner) error {
			for i, r := range recs {
				p.HSet(tctx, cKeyName(prefix, r.Function, uniques[i]), "data", r.Data, "priority", strconv.Itoa(int(r.Priority)))
			}
			p.Del(tctx, jobKeys...)
			p.ZRem(tctx, s.seqsKey, members...)
			return nil
		})
		if err == nil {
			rep.Moved = len(recs)
		}
		return err
	}, watched...)
}

// cKeyName is the key C gearmand 1.1.20 keeps a job in ("%s-%.*s-%*s").
func cKeyName(prefix, function, unique string) string {
	return prefix + "-" + function + "-" + unique
}

// cKeepsFunction says why C gearmand cannot read a job of function back
// from its keys, "" when it can.
func cKeepsFunction(function string) string {
	switch {
	case function == "":
		return "no function name"
	case strings.IndexByte(function, '-') >= 0:
		return "a '-' in the function name: C gearmand 1.1.20 reads a key's function up to its first '-'"
	case strings.IndexByte(function, 0) >= 0:
		return "a NUL in the function name, which C gearmand's keys cannot hold"
	case len(function) > cFunctionMax:
		return "a function name over 511 bytes, more than C gearmand 1.1.20 reads back from a key"
	}
	return ""
}

// cKeepsUnique says why C gearmand cannot read unique back from a key, ""
// when it can.
func cKeepsUnique(unique string) string {
	switch {
	case unique == "":
		return "an empty unique, which C gearmand 1.1.20 cannot read back from a key"
	case strings.ContainsAny(unique, "*\x00"):
		return "a '*' or NUL in the unique: C gearmand 1.1.20 reads a key's unique up to the first"
	case len(unique) > cUniqueMax:
		return "a unique over 63 bytes, more than C gearmand 1.1.20 reads back from a key"
	}
	return ""
}
