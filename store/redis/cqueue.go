package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"gearmand/store"
)

// DefaultImportPrefix is C gearmand's --redis-prefix default: its redis
// queue keeps each job in a key "_gear_-FUNCTION-UNIQUE".
const DefaultImportPrefix = "_gear_"

// Extra keys read by ConfigFromOptions for the takeover of C gearmand's
// keys (see the package doc, "Jobs C gearmand left behind").
const (
	// ExtraImportPrefix is Config.ImportPrefix: C gearmand's
	// --redis-prefix; "-" takes nothing over.
	ExtraImportPrefix = "import-prefix"
	// ExtraImportFunctions is Config.ImportFunctions, comma-separated.
	ExtraImportFunctions = "import-functions"
)

// Paging of the takeover: SCAN asks for about importScanCount keys a
// call; a watched transaction moves the C keys one call returned, or a
// run of them holding at most replayPageBytes of data, and is tried again
// when a key changed under it, at most importTries times.
const (
	importScanCount = 512
	importTries     = 10
)

// cKey is a key of C gearmand's redis queue read as function and unique.
type cKey struct {
	key, function, unique string
	ambiguous             bool // another split of the key was possible
}

// parseCKey reads key, of the form prefix-FUNCTION-UNIQUE that C gearmand
// 1.1.20 writes ("%s-%.*s-%*s" in
// libgearman-server/plugins/queue/redis/queue.cc). Both function and
// unique may hold '-', and the key says nothing else, so a key with more
// than one '-' after the prefix can be split in several places. The split
// chosen is, in this order: the only one whose function is in functions;
// the one whose unique is a whole UUID (libgearman's clients send a
// generated UUID as the unique of every job submitted without one, so
// most keys end in one); otherwise the one C gearmand itself makes when
// it replays the key (function up to the first '-'), marked ambiguous. The function is never
// empty; the unique may be, as C gearmand writes an empty unique.
func parseCKey(key, prefix string, functions []string) (cKey, bool) {
	rest, ok := strings.CutPrefix(key, prefix+"-")
	if !ok {
		return cKey{}, false
	}
	first := strings.IndexByte(rest, '-')
	if first < 1 {
		return cKey{}, false
	}
	k := cKey{key: key, function: rest[:first], unique: rest[first+1:]}
	if strings.IndexByte(k.unique, '-') < 0 {
		return k, true
	}
	var known []int
	for i := first; i < len(rest); i++ {
		if rest[i] == '-' && slices.Contains(functions, rest[:i]) {
			known = append(known, i)
		}
	}
	if len(known) == 1 {
		k.function, k.unique = rest[:known[0]], rest[known[0]+1:]
		return k, true
	}
	if at := len(rest) - uuidLen - 1; at > 0 && rest[at] == '-' && isUUID(rest[at+1:]) {
		k.function, k.unique = rest[:at], rest[at+1:]
		return k, true
	}
	k.ambiguous = true
	return k, true
}

// uuidLen is the length of a UUID in text: 8-4-4-4-12 hex digits.
const uuidLen = 36

// isUUID reports whether s is a UUID in text, either case.
func isUUID(s string) bool {
	if len(s) != uuidLen {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// cJob is what a C gearmand key holds: a hash of the fields data and
// priority (1.1.16 and later), or, as gearmand 1.1.15 and earlier wrote
// it, a string of the data at normal priority.
func cJob(typ string, hash map[string]string, str string) (data string, pri store.Priority, err error) {
	switch typ {
	case "hash":
		if len(hash) != 2 {
			break
		}
		data, okData := hash["data"]
		p, okPri := hash["priority"]
		n, err := strconv.ParseUint(p, 10, 8)
		if !okData || !okPri || err != nil || n > 2 {
			break
		}
		return data, store.Priority(n), nil
	case "string":
		return str, 1, nil
	case "none":
		return "", 0, errGone
	}
	return "", 0, errors.New("not C gearmand's: want a hash of data and priority 0-2, or a string")
}

// errGone: the key was deleted since SCAN saw it (another server took it
// over).
var errGone = errors.New("key is gone")

// importCQueue moves the jobs C gearmand left under Config.ImportPrefix
// into the namespace, a watched transaction per SCAN page (or per part
// of one, by size), so that a crash half-way leaves each key either still
// C's or moved whole, and two servers never both take one key. The Store
// must own its namespace (gen set).
func (s *Store) importCQueue(ctx context.Context) error {
	prefix := s.cfg.ImportPrefix
	if prefix == "-" {
		return nil
	}
	if _, ok := s.client.(*goredis.ClusterClient); ok {
		// C gearmand talks to one node, which cannot be a Cluster's.
		return nil
	}
	imp := importer{s: s, prefix: prefix, log: s.cfg.Logger}
	match := escapeGlob(prefix) + "-*"
	var cursor uint64
	for {
		tctx, cancel := context.WithTimeout(ctx, s.timeout)
		keys, next, err := s.client.Scan(tctx, cursor, match, importScanCount).Result()
		cancel()
		if err != nil {
			return s.importError(ctx, err)
		}
		if err := imp.page(ctx, keys); err != nil {
			return s.importError(ctx, err)
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	imp.report()
	return nil
}

// importError is err of the takeover, saying so, through interpretError.
func (s *Store) importError(ctx context.Context, err error) error {
	return s.interpretError(ctx, fmt.Errorf("taking over the jobs of C gearmand's keys %s-* (--redis-prefix): %w", s.cfg.ImportPrefix, err))
}

// importer is one takeover's state.
type importer struct {
	s       *Store
	prefix  string
	log     *slog.Logger
	seq     uint64 // the last Seq given, once seqRead
	seqRead bool
	moved   int
	// ambiguous counts the keys split by guess, by the function read, and
	// keeps the first; left counts the keys left alone and keeps the
	// first few with the reason.
	ambiguous      map[string]int
	firstAmbiguous cKey
	left           int
	leftExamples   []string
}

// reportExamples is how many keys left alone a warning shows.
const reportExamples = 5

func (imp *importer) leave(key, why string) {
	imp.left++
	if len(imp.leftExamples) < reportExamples {
		imp.leftExamples = append(imp.leftExamples, fmt.Sprintf("%q: %s", key, why))
	}
}

// page moves the C keys among keys, in batches of at most
// replayPageBytes of data (one larger job alone), so that a takeover of
// large jobs holds a bounded amount of them in memory.
func (imp *importer) page(ctx context.Context, keys []string) error {
	var ck []cKey
	for _, k := range keys {
		if c, ok := parseCKey(k, imp.prefix, imp.s.cfg.ImportFunctions); ok {
			ck = append(ck, c)
		} else {
			imp.leave(k, "not of the form "+imp.prefix+"-FUNCTION-UNIQUE")
		}
	}
	if len(ck) == 0 {
		return nil
	}
	if !imp.seqRead {
		last, err := imp.s.lastSeq(ctx)
		if err != nil {
			return err
		}
		imp.seq, imp.seqRead = last, true
	}
	sizes, err := imp.s.dataSizes(ctx, ck)
	if err != nil {
		return err
	}
	for start := 0; start < len(ck); {
		end, size := start+1, sizes[start]
		for end < len(ck) && size+sizes[end] <= replayPageBytes {
			size += sizes[end]
			end++
		}
		if err := imp.batch(ctx, ck[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// batch moves ck, trying again while keys change under the transaction.
func (imp *importer) batch(ctx context.Context, ck []cKey) error {
	for range importTries {
		moved, left, err := imp.move(ctx, ck)
		if errors.Is(err, goredis.TxFailedErr) {
			continue // a key changed since WATCH: read again
		}
		if err != nil {
			return err
		}
		for _, c := range moved {
			if c.ambiguous {
				if imp.ambiguous == nil {
					imp.ambiguous, imp.firstAmbiguous = make(map[string]int), c
				}
				imp.ambiguous[c.function]++
			}
		}
		for _, l := range left {
			imp.leave(l[0], l[1])
		}
		imp.seq += uint64(len(moved))
		imp.moved += len(moved)
		return nil
	}
	return fmt.Errorf("%w: the keys kept changing while they were moved (%d tries): is C gearmand still running on them?", store.ErrUnavailable, importTries)
}

// dataSizes is the length of each key's data: its hash's data field, or
// the string of gearmand 1.1.15 and earlier; 0 for anything else.
func (s *Store) dataSizes(ctx context.Context, ck []cKey) ([]int, error) {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	hlen := make([]*goredis.IntCmd, len(ck))
	slen := make([]*goredis.IntCmd, len(ck))
	_, err := s.client.Pipelined(tctx, func(p goredis.Pipeliner) error {
		for i, c := range ck {
			hlen[i] = p.HStrLen(tctx, c.key, "data")
			slen[i] = p.StrLen(tctx, c.key)
		}
		return nil
	})
	var reply goredis.Error
	if err != nil && !errors.As(err, &reply) { // WRONGTYPE replies are expected
		return nil, err
	}
	sizes := make([]int, len(ck))
	for i := range ck {
		sizes[i] = int(max(hlen[i].Val(), slen[i].Val()))
	}
	return sizes, nil
}

// move is one try at moving ck: WATCH the owner key and ck, read ck, and
// in one MULTI/EXEC add their jobs to the namespace after imp.seq and
// delete them. It returns the keys moved and the keys left alone with
// why. EXEC fails with goredis.TxFailedErr if any watched key changed
// after the WATCH.
func (imp *importer) move(ctx context.Context, ck []cKey) (moved []cKey, left [][2]string, err error) {
	s := imp.s
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	watched := make([]string, 0, 1+len(ck))
	watched = append(watched, s.ownerKey)
	for _, c := range ck {
		watched = append(watched, c.key)
	}
	err = s.client.Watch(tctx, func(tx *goredis.Tx) error {
		if err := s.checkOwner(tctx, tx); err != nil {
			return err
		}
		types := make([]*goredis.StatusCmd, len(ck))
		hashes := make([]*goredis.MapStringStringCmd, len(ck))
		strs := make([]*goredis.StringCmd, len(ck))
		_, err := tx.Pipelined(tctx, func(p goredis.Pipeliner) error {
			for i, c := range ck {
				types[i] = p.Type(tctx, c.key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.Pipelined(tctx, func(p goredis.Pipeliner) error {
			for i, c := range ck {
				switch types[i].Val() {
				case "hash":
					hashes[i] = p.HGetAll(tctx, c.key)
				case "string":
					strs[i] = p.Get(tctx, c.key)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		type job struct {
			c   cKey
			rec store.Record
		}
		var jobs []job
		now := time.Now()
		for i, c := range ck {
			var hash map[string]string
			var str string
			if hashes[i] != nil {
				hash = hashes[i].Val()
			}
			if strs[i] != nil {
				str = strs[i].Val()
			}
			data, pri, err := cJob(types[i].Val(), hash, str)
			if errors.Is(err, errGone) {
				continue
			}
			if err != nil {
				left = append(left, [2]string{c.key, fmt.Sprintf("a %s: %v", types[i].Val(), err)})
				continue
			}
			jobs = append(jobs, job{c: c, rec: store.Record{Function: c.function, Unique: c.unique,
				Data: []byte(data), Priority: pri, Created: now}})
		}
		if len(jobs) == 0 {
			return nil
		}
		// SCAN gives no order; within a batch, priority first.
		slices.SortStableFunc(jobs, func(a, b job) int { return cmp.Compare(a.rec.Priority, b.rec.Priority) })
		kv := make([]any, 0, 2*len(jobs))
		zs := make([]goredis.Z, len(jobs))
		dels := make([]string, len(jobs))
		moved = make([]cKey, len(jobs))
		for i := range jobs {
			j := &jobs[i]
			j.rec.Seq = imp.seq + 1 + uint64(i)
			m := member(j.rec.Seq)
			kv = append(kv, s.jobKey+m, store.AppendValue(nil, &j.rec))
			zs[i] = goredis.Z{Member: m}
			dels[i], moved[i] = j.c.key, j.c
		}
		_, err = tx.TxPipelined(tctx, func(p goredis.Pipeliner) error {
			p.MSet(tctx, kv...)
			p.ZAdd(tctx, s.seqsKey, zs...)
			p.Del(tctx, dels...)
			return nil
		})
		return err
	}, watched...)
	if err != nil {
		return nil, nil, err
	}
	return moved, left, nil
}

// report logs what the takeover did: how many jobs it moved, which keys
// it split by guess, and which it left alone.
func (imp *importer) report() {
	if imp.moved > 0 {
		imp.log.Log(context.Background(), store.LevelNotice, fmt.Sprintf("redis: took over %d jobs that C gearmand left in keys %s-*", imp.moved, imp.prefix),
			"jobs", imp.moved, "prefix", imp.prefix, "namespace", imp.s.cfg.Namespace)
	}
	if len(imp.ambiguous) > 0 {
		n := 0
		var fns []string
		for _, f := range slices.Sorted(maps.Keys(imp.ambiguous)) {
			fns = append(fns, fmt.Sprintf("%q (%d)", f, imp.ambiguous[f]))
			n += imp.ambiguous[f]
		}
		c := imp.firstAmbiguous
		imp.log.Warn(fmt.Sprintf("redis: %d of C gearmand's keys could be split into function and unique in more than one place (such as %q, read as function %q unique %q); they were read as C gearmand reads them, function up to the first '-', giving functions %s; if a function name holds '-', stop the server, list it in --%s and start again before these jobs run",
			n, c.key, c.function, c.unique, strings.Join(fns, ", "), FlagImportFunctions), "keys", n)
	}
	if imp.left > 0 {
		imp.log.Warn(fmt.Sprintf("redis: left %d keys matching %s-* alone, not being C gearmand's jobs (%s)", imp.left, imp.prefix, strings.Join(imp.leftExamples, "; ")),
			"keys", imp.left)
	}
}

// lastSeq is the largest Seq in the namespace's index, 0 when empty.
func (s *Store) lastSeq(ctx context.Context) (uint64, error) {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	last, err := s.client.ZRevRangeByLex(tctx, s.seqsKey, &goredis.ZRangeBy{Max: "+", Min: "-", Count: 1}).Result()
	if err != nil || len(last) == 0 {
		return 0, err
	}
	return parseMember(last[0])
}

// checkOwner fails with a fenceError unless the owner key, read on tx
// after its WATCH, still holds the Store's generation.
func (s *Store) checkOwner(ctx context.Context, tx *goredis.Tx) error {
	owner, err := tx.Get(ctx, s.ownerKey).Result()
	switch want := strconv.FormatInt(s.gen, 10); {
	case errors.Is(err, goredis.Nil):
		return fenceError("owner key is missing, not " + want)
	case err != nil:
		return err
	case owner != want:
		return fenceError("owner generation is now " + owner + ", not " + want)
	}
	return nil
}

// escapeGlob quotes the glob characters of s for SCAN's MATCH.
func escapeGlob(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s)
}
