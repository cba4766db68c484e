package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gearmand/store"
	"gearmand/store/storetest"
)

func TestMain(m *testing.M) {
	if path := os.Getenv("GEARMAND_BOLT_WRITE"); path != "" {
		storetest.WriteUntilKilled(func() (store.Store, error) { return Open(path, CheckpointSize(killCheckpointSize)) })
		return
	}
	os.Exit(m.Run())
}

// killCheckpointSize makes the kill test's child checkpoint every 32 of
// its 64 KiB records.
const killCheckpointSize = 2 << 20

// A process killed while it journals and checkpoints loses nothing it was
// told is durable, whichever step the kill lands in.
func TestKillAcrossCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	acked := storetest.KillWhileWriting(t, "GEARMAND_BOLT_WRITE", path, 8*killCheckpointSize/storetest.KillRecordSize)
	journals, _ := listJournals(path)
	t.Logf("killed after %d records acknowledged; journals on disk: %v", acked, journals)
	storetest.CheckAcked(t, openAt(t, path), acked)
}

// crashImage copies the bbolt file and its journals as they are on disk
// now, as a crash would leave them, into a new directory, and returns the
// copy's path. No checkpoint may be running: the test holds writeMu, or
// none has started.
func crashImage(t *testing.T, s *Store) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	dst := filepath.Join(t.TempDir(), filepath.Base(s.path))
	copyFile(t, s.path, dst)
	numbers, err := listJournals(s.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range numbers {
		copyFile(t, journalName(s.path, n), journalName(dst, n))
	}
	return dst
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// seqsOf replays s and returns the Seqs, checking each record's data.
func seqsOf(t *testing.T, s *Store) []uint64 {
	t.Helper()
	var seqs []uint64
	err := s.Replay(context.Background(), func(r store.Record) error {
		if want := storetest.Sample(r.Seq); !storetest.Equal(r, want) {
			t.Errorf("record %d: %s", r.Seq, storetest.Diff(r, want))
		}
		seqs = append(seqs, r.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func apply(t *testing.T, s *Store, adds []uint64, deletes ...uint64) {
	t.Helper()
	b := store.Batch{Deletes: deletes}
	for _, seq := range adds {
		b.Adds = append(b.Adds, storetest.Sample(seq))
	}
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func span(from, to uint64) []uint64 {
	var seqs []uint64
	for seq := from; seq <= to; seq++ {
		seqs = append(seqs, seq)
	}
	return seqs
}

func journalsOf(t *testing.T, path string) []uint64 {
	t.Helper()
	numbers, err := listJournals(path)
	if err != nil {
		t.Fatal(err)
	}
	return numbers
}

// Before any checkpoint, the bbolt file holds nothing of the batches: a
// crash then leaves them in the journal alone, and Open brings them back,
// deletes and replacements included, then removes the journal.
func TestJournalRecovered(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "jobs.db"))
	apply(t, s, span(1, 50))
	apply(t, s, span(51, 60), 3, 4, 5)
	apply(t, s, []uint64{7}, 51) // 7 replaced, 51 gone
	if n := count(t, openAt(t, crashImage(t, s))); n != 56 {
		t.Fatalf("a crash image has %d records, want 56", n)
	}

	image := crashImage(t, s)
	if got := journalsOf(t, image); len(got) != 1 {
		t.Fatalf("journals in the image: %v, want one", got)
	}
	recovered := openAt(t, image)
	if got := journalsOf(t, image); len(got) != 0 {
		t.Errorf("journals after Open: %v, want none", got)
	}
	want := slices.Concat(span(1, 2), span(6, 50), span(52, 60))
	if got := seqsOf(t, recovered); !slices.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

// With a small checkpoint size, checkpoints run in the background while
// Apply goes on; the journals they cover are removed; Close checkpoints
// the rest and leaves no journal.
func TestCheckpointsInTheBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	s, err := Open(path, CheckpointSize(4<<10))
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := uint64(0); i < 200; i++ {
		adds := span(10*i+1, 10*i+10)
		var deletes []uint64
		if i > 0 {
			deletes = []uint64{10*i - 9, 10*i - 5} // from the batch before
		}
		apply(t, s, adds, deletes...)
		want = slices.DeleteFunc(append(want, adds...), func(seq uint64) bool { return slices.Contains(deletes, seq) })
		if got := len(journalsOf(t, path)); got > 2 {
			t.Fatalf("after batch %d: %d journals, want at most 2 (the newest, and one being checkpointed)", i, got)
		}
	}
	s.mu.Lock()
	next := s.next
	s.mu.Unlock()
	if next < 10 {
		t.Errorf("journal %d is the next to create; want more than ten checkpoints in 200 batches", next)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := journalsOf(t, path); len(got) != 0 {
		t.Errorf("journals after Close: %v, want none", got)
	}
	if got := seqsOf(t, openAt(t, path)); !slices.Equal(got, want) {
		t.Fatalf("after reopening: %d records, want %d", len(got), len(want))
	}
}

// frameOffsets returns where each frame of a journal file begins.
func frameOffsets(t *testing.T, name string) []int64 {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := int64(journalHeaderSize); off+frameHeaderSize <= int64(len(data)); {
		length := binary.LittleEndian.Uint32(data[off:])
		if length == 0 {
			break
		}
		offs = append(offs, off)
		off += frameHeaderSize + int64(length)
	}
	return offs
}

// rewrite lets change alter the bytes of a file.
func rewrite(t *testing.T, name string, change func([]byte)) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	change(data)
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// reports collects what s reports to its corruption handler.
func reports(s *Store) *[]string {
	var got []string
	s.SetCorruptHandler(func(key string, err error) {
		if !errors.Is(err, store.ErrCorrupt) {
			got = append(got, key+": not ErrCorrupt: "+err.Error())
			return
		}
		got = append(got, key+": "+err.Error())
	})
	return &got
}

// A frame cut short at the end of a journal is the write a crash
// interrupted: it was never acknowledged, and recovery drops it without a
// word, whether the crash left half of it or a stray byte.
func TestTornFrameDropped(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "jobs.db"))
	apply(t, s, span(1, 10))
	apply(t, s, span(11, 20))
	apply(t, s, span(21, 30))
	for name, tear := range map[string]func(data []byte, last, end int64){
		"half written": func(data []byte, last, end int64) { clear(data[(last+end)/2 : end]) },
		"a byte wrong": func(data []byte, last, end int64) { data[end-1] ^= 0xff },
	} {
		image := crashImage(t, s)
		journal := journalName(image, journalsOf(t, image)[0])
		offs := frameOffsets(t, journal)
		if len(offs) != 3 {
			t.Fatalf("%d frames, want 3", len(offs))
		}
		rewrite(t, journal, func(data []byte) {
			length := binary.LittleEndian.Uint32(data[offs[2]:])
			tear(data, offs[2], offs[2]+frameHeaderSize+int64(length))
		})
		recovered := openAt(t, image)
		got := reports(recovered)
		if seqs := seqsOf(t, recovered); !slices.Equal(seqs, span(1, 20)) {
			t.Errorf("%s: recovered %v, want 1–20", name, seqs)
		}
		if len(*got) != 0 {
			t.Errorf("%s: reports %v, want none", name, *got)
		}
		if damaged, _ := filepath.Glob(journal + ".damaged"); len(damaged) != 0 {
			t.Errorf("%s: %v kept, want no copy of a torn journal", name, damaged)
		}
	}
}

// A frame that does not check but has frames after it is damage, not a
// torn write: the frames after it are lost, Open keeps a copy of the
// journal, and the first Replay reports it, naming the journal.
func TestDamagedJournalReported(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "jobs.db"))
	apply(t, s, span(1, 10))
	apply(t, s, span(11, 20))
	apply(t, s, span(21, 30))
	image := crashImage(t, s)
	journal := journalName(image, journalsOf(t, image)[0])
	rewrite(t, journal, func(data []byte) { data[frameOffsets(t, journal)[1]+frameHeaderSize+2] ^= 0xff })
	before, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}

	recovered := openAt(t, image)
	got := reports(recovered)
	if seqs := seqsOf(t, recovered); !slices.Equal(seqs, span(1, 10)) {
		t.Fatalf("recovered %v, want 1–10", seqs)
	}
	if len(*got) != 1 || !strings.HasPrefix((*got)[0], filepath.Base(journal)+": ") || !strings.Contains((*got)[0], "checksum") {
		t.Fatalf("reports %q, want one for %s, about a checksum", *got, filepath.Base(journal))
	}
	if kept, err := os.ReadFile(journal + ".damaged"); err != nil || !bytes.Equal(kept, before) {
		t.Errorf("the copy of the damaged journal: %d bytes, %v; want the journal as it was", len(kept), err)
	}
	if seqs := seqsOf(t, recovered); !slices.Equal(seqs, span(1, 10)) || len(*got) != 1 {
		t.Fatalf("a second Replay: %v and %d reports, want the same records and no new report", seqs, len(*got))
	}
}

// Two journals, the older still being checkpointed when the crash comes:
// recovery reads both, in order.
func TestRecoveryAcrossJournals(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "jobs.db"), CheckpointSize(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Hold off the checkpoints: the first starts once journal 1 has taken
	// 1 KiB and waits here, while Apply goes on in journal 2.
	s.writeMu.Lock()
	seq := uint64(0)
	for len(journalsOf(t, s.path)) < 2 {
		apply(t, s, []uint64{seq + 1, seq + 2})
		seq += 2
	}
	apply(t, s, []uint64{seq + 1}, 1, seq) // deletes in journal 2 of adds in journal 1
	image := crashImage(t, s)
	s.writeMu.Unlock()
	want := slices.DeleteFunc(span(2, seq+1), func(n uint64) bool { return n == seq })
	if got := seqsOf(t, openAt(t, image)); !slices.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

// A journal numbered below the file's checkpoint marker is already in the
// file: one that a crash brought back after its removal changes nothing,
// not even a job deleted since.
func TestJournalBelowMarkerIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	s := openAt(t, path)
	apply(t, s, []uint64{5})
	old, err := os.ReadFile(journalName(path, 1))
	if err != nil {
		t.Fatal(err)
	}
	checkpointNow(t, s)
	apply(t, s, nil, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journalName(path, 1), old, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	if n := count(t, s); n != 0 {
		t.Errorf("%d records, want 0: the old journal was replayed", n)
	}
	if got := journalsOf(t, path); len(got) != 0 {
		t.Errorf("journals after Open: %v, want none", got)
	}
}

// Journals that do not follow the file (a file deleted or restored beside
// a crashed server's journals) make Open refuse, naming them, and stay.
func TestForeignJournalsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jobs.db")
	s := openAt(t, path)
	apply(t, s, span(1, 3))
	image := crashImage(t, s)
	journal := journalName(image, 1)

	// The file deleted, its journal left: a new file has another identity.
	if err := os.Remove(image); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(image); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(journal)) || !strings.Contains(err.Error(), "another bolt file") {
		t.Errorf("Open of a new file beside an old journal: %v, want ErrCorrupt naming the journal", err)
	}
	if _, err := os.Stat(journal); err != nil {
		t.Errorf("the journal is gone: %v", err)
	}

	// A gap: the file expects journal 1, journal 2 is there.
	image = crashImage(t, s)
	if err := os.Rename(journalName(image, 1), journalName(image, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(image); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "expects next (number 1)") {
		t.Errorf("Open with journal 2 where 1 should be: %v, want ErrCorrupt about the number", err)
	}
}

// When checkpoints fail, Apply goes on journaling, durably, until
// maxPendingCheckpoints' worth waits; then it fails with the checkpoint's error until
// one succeeds, and nothing acknowledged is lost.
func TestFailingCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	var logged bytes.Buffer
	s, err := Open(path, CheckpointSize(4<<10), Logger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	full := &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
	s.writeMu.Lock()
	s.fault = full
	s.writeMu.Unlock()

	var acked uint64
	for seq := uint64(1); seq < 10000; seq++ {
		err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(seq)}})
		if err != nil {
			if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Apply of %d: %v, want ErrUnavailable wrapping ENOSPC", seq, err)
			}
			break
		}
		acked = seq
	}
	if acked >= 9999 {
		t.Fatal("Apply never failed")
	}
	s.mu.Lock()
	waiting := s.journal + s.ckpt.bytes
	s.mu.Unlock()
	if waiting < maxPendingCheckpoints*4<<10 {
		t.Fatalf("Apply failed with %d bytes journaled since the last checkpoint; want it to go on to %d", waiting, maxPendingCheckpoints*4<<10)
	}
	if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(acked + 1)}}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Apply while checkpoints still fail: %v, want ENOSPC", err)
	}
	if n := count2(t, s); n != -1 {
		t.Fatalf("Replay while checkpoints fail: %d records, want an error", n)
	}

	s.writeMu.Lock()
	s.fault = nil
	s.writeMu.Unlock()
	apply(t, s, []uint64{acked + 1})
	if got := seqsOf(t, s); !slices.Equal(got, span(1, acked+1)) {
		t.Fatalf("after the disk healed: %d records, want %d", len(got), acked+1)
	}
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "no space left") ||
		!strings.Contains(lines[1], "level=INFO") || !strings.Contains(lines[1], "checkpoints work again") {
		t.Errorf("logged:\n%s\nwant one warning naming the error, then one line saying checkpoints work again", logged.String())
	}
}

// count2 is count, returning -1 when Replay fails.
func count2(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Replay(context.Background(), func(store.Record) error { n++; return nil }); err != nil {
		return -1
	}
	return n
}

// Frames round-trip; a frame read as another journal's, or cut short,
// ends the journal: torn when only zeros follow it, damaged otherwise;
// zeros end it cleanly.
func TestFrames(t *testing.T) {
	b := store.Batch{Adds: []store.Record{storetest.Sample(7), storetest.Sample(9)}, Deletes: []uint64{1, 1 << 40}}
	frame, ops := encodeFrame(3, b, nil)
	if len(ops) != 4 || ops[0].seq != 1 || ops[0].value != nil || ops[1].seq != 1<<40 || ops[1].value != nil || ops[2].seq != 7 || ops[3].seq != 9 {
		t.Fatalf("ops %v", ops)
	}
	data := append(slices.Clone(frame), frame...)
	data = append(data, make([]byte, 100)...)
	var got []op
	end, err := readFrames(3, data, 0, func(o op) { got = append(got, o) })
	if err != nil || end != int64(2*len(frame)) || len(got) != 8 {
		t.Fatalf("readFrames: end %d, %d ops, %v; want end %d, 8 ops, no error", end, len(got), err, 2*len(frame))
	}
	for i, o := range got[:4] {
		if o.seq != ops[i].seq || string(o.value) != string(ops[i].value) {
			t.Errorf("op %d: %d %x, want %d %x", i, o.seq, o.value, ops[i].seq, ops[i].value)
		}
	}
	if r, err := store.DecodeRecord(store.AppendKey(nil, 7), got[2].value); err != nil || !storetest.Equal(r, storetest.Sample(7)) {
		t.Errorf("the value of 7 decodes to %+v, %v", r, err)
	}

	for name, c := range map[string]struct {
		data   []byte
		number uint64
		want   error
	}{
		"another journal's, with more after it": {data, 4, errDamaged},
		"another journal's, the last":           {frame, 4, errTorn},
		"cut short":                             {data[:len(frame)+len(frame)/2], 3, errTorn},
		"cut short, zeros after":                {append(slices.Clone(data[:len(frame)+len(frame)/2]), make([]byte, 50)...), 3, errTorn},
		"a stray byte":                          {append(slices.Clone(frame), 1), 3, errTorn},
	} {
		got = got[:0]
		end, err := readFrames(c.number, c.data, 0, func(o op) { got = append(got, o) })
		if !errors.Is(err, c.want) || !errors.Is(err, errFrameEnd) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if c.number == 4 && (end != 0 || len(got) != 0) || c.number == 3 && (end != int64(len(frame)) || len(got) != 4) {
			t.Errorf("%s: end %d, %d ops", name, end, len(got))
		}
	}
}

// After a failed append Apply does not write to that journal again: the
// next Apply starts a new one, and recovery reads both.
func TestFailedAppendStartsNewJournal(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "jobs.db"))
	apply(t, s, span(1, 5))
	s.mu.Lock()
	s.j.f.Close() // every write to journal 1 fails from now on
	s.mu.Unlock()
	if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(6)}}); err == nil {
		t.Fatal("Apply into a closed journal succeeded")
	}
	apply(t, s, span(7, 9))
	if got := journalsOf(t, s.path); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("journals %v, want [1 2]", got)
	}
	want := slices.Concat(span(1, 5), span(7, 9))
	if got := seqsOf(t, openAt(t, crashImage(t, s))); !slices.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

// When checkpoints fall maxPendingCheckpoints behind, Apply waits for the
// one running instead of piling up more in memory.
func TestApplyWaitsForASlowCheckpoint(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "jobs.db"), CheckpointSize(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.writeMu.Lock() // the checkpoint that starts cannot write
	held := true
	defer func() {
		if held {
			s.writeMu.Unlock()
		}
	}()
	behind := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ckpt != nil && s.journal+s.ckpt.bytes >= maxPendingCheckpoints*1<<10
	}
	seq := uint64(0)
	for !behind() {
		seq++
		apply(t, s, []uint64{seq})
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(seq + 1)}})
	}()
	select {
	case err := <-done:
		t.Fatalf("Apply returned (%v) while the checkpoint it should wait for was held", err)
	case <-time.After(200 * time.Millisecond):
	}
	s.writeMu.Unlock()
	held = false
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := count(t, s); n != int(seq+1) {
		t.Fatalf("%d records, want %d", n, seq+1)
	}
}

// A panic of bbolt's in a checkpoint (its answer to a damaged file), on
// the checkpoint's own goroutine, does not end the process: checkpoints
// stop, Apply journals on until the bound and then fails with the reason,
// and a reopen recovers every acknowledged job from the journals.
func TestBboltPanicInACheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	var logged bytes.Buffer
	s, err := Open(path, CheckpointSize(4<<10), Logger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	s.writeMu.Lock()
	s.panicWith = "page 7 already freed"
	s.writeMu.Unlock()
	var acked uint64
	for seq := uint64(1); seq < 10000; seq++ {
		err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{storetest.Sample(seq)}})
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "page 7 already freed") {
				t.Fatalf("Apply of %d: %v, want ErrCorrupt naming bbolt's panic", seq, err)
			}
			break
		}
		acked = seq
	}
	if acked >= 9999 {
		t.Fatal("Apply never failed")
	}
	if !strings.Contains(logged.String(), "bbolt failed") {
		t.Errorf("the failure was not logged:\n%s", logged.String())
	}
	if err := s.Close(); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Close: %v, want the checkpoint's error (the journals stay)", err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s2.Close()
	if got := seqsOf(t, s2); !slices.Equal(got, span(1, acked)) {
		t.Fatalf("after a reopen: %d records, want the %d acknowledged", len(got), acked)
	}
}

// A page whose type bbolt does not know makes bbolt panic when Replay's
// cursor reaches it; Replay fails with ErrCorrupt instead of the process.
func TestBboltPanicInReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db")
	s := openAt(t, path)
	apply(t, s, span(1, 400))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Page header: id (8 bytes), flags (2), count (2), overflow (4). Turn
	// the leaf pages (flag 0x02) past the metas into an unknown type.
	const pageSize = 4096
	damaged := 0
	for off := 4 * pageSize; off+pageSize <= len(data); off += pageSize {
		if binary.LittleEndian.Uint16(data[off+8:]) == 0x02 && binary.LittleEndian.Uint16(data[off+10:]) > 10 {
			binary.LittleEndian.PutUint16(data[off+8:], 0x40)
			damaged++
		}
	}
	if damaged == 0 {
		t.Fatal("no leaf page found to damage")
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatalf("Open of a file whose metas are whole: %v", err)
	}
	defer s2.Close()
	err = s2.Replay(context.Background(), func(store.Record) error { return nil })
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Replay of a file with %d damaged pages: %v, want ErrCorrupt", damaged, err)
	}
	t.Logf("Replay: %v", err)
}
