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
	for off := int64(0); off+frameHeaderSize <= int64(len(data)); {
		length := binary.LittleEndian.Uint32(data[off:])
		if length == 0 {
			break
		}
		offs = append(offs, off)
		off += frameHeaderSize + int64(length)
	}
	return offs
}

// damage flips a byte of the payload of the frame at off.
func damage(t *testing.T, name string, off int64) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off+frameHeaderSize+2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off+frameHeaderSize+2); err != nil {
		t.Fatal(err)
	}
}

// A frame cut short in the newest journal is the write a crash interrupted:
// it was never acknowledged, and recovery drops it without a word.
func TestTornFrameDropped(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "jobs.db"))
	apply(t, s, span(1, 10))
	apply(t, s, span(11, 20))
	apply(t, s, span(21, 30))
	image := crashImage(t, s)
	name := journalName(image, journalsOf(t, image)[0])
	offs := frameOffsets(t, name)
	if len(offs) != 3 {
		t.Fatalf("%d frames, want 3", len(offs))
	}
	damage(t, name, offs[2])

	recovered := openAt(t, image)
	var reports []string
	recovered.SetCorruptHandler(func(key string, err error) { reports = append(reports, key+": "+err.Error()) })
	if got := seqsOf(t, recovered); !slices.Equal(got, span(1, 20)) {
		t.Fatalf("recovered %v, want 1–20", got)
	}
	if len(reports) != 0 {
		t.Errorf("reports %v, want none", reports)
	}
}

// A damaged frame in a journal that is not the newest is damage, not a
// crash: the frames after it in that journal are lost, and the first
// Replay reports it, naming the journal; the newer journal still counts.
func TestDamagedJournalReported(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "jobs.db"), CheckpointSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Hold off the checkpoints: each Apply starts a new journal, whose
	// checkpoint waits here, so both journals stay on disk.
	s.writeMu.Lock()
	apply(t, s, span(1, 10))
	apply(t, s, span(11, 20))
	image := crashImage(t, s)
	s.writeMu.Unlock()
	journals := journalsOf(t, image)
	if len(journals) != 2 {
		t.Fatalf("journals in the image: %v, want two", journals)
	}
	name := journalName(image, journals[0])
	damage(t, name, frameOffsets(t, name)[0])

	recovered := openAt(t, image)
	var reports []string
	var errs []error
	recovered.SetCorruptHandler(func(key string, err error) { reports = append(reports, key); errs = append(errs, err) })
	if got := seqsOf(t, recovered); !slices.Equal(got, span(11, 20)) {
		t.Fatalf("recovered %v, want 11–20", got)
	}
	if len(reports) != 1 || reports[0] != filepath.Base(name) || !errors.Is(errs[0], store.ErrCorrupt) || !strings.Contains(errs[0].Error(), "checksum") {
		t.Fatalf("reports %v %v, want one for %s wrapping ErrCorrupt", reports, errs, filepath.Base(name))
	}
	if got := seqsOf(t, recovered); !slices.Equal(got, span(11, 20)) || len(reports) != 1 {
		t.Fatalf("a second Replay: %v and %d reports, want the same records and no new report", got, len(reports))
	}
}

// When checkpoints fail, Apply goes on journaling, durably, until several
// checkpoints' worth waits; then it fails with the checkpoint's error until
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
	if acked < 32 || acked >= 9999 {
		t.Fatalf("%d Applies succeeded before the first failure; want journaling to go on past 8 checkpoints of 4 KiB, then stop", acked)
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
// ends the journal with errFrameEnd; zeros end it cleanly.
func TestFrames(t *testing.T) {
	b := store.Batch{Adds: []store.Record{storetest.Sample(7), storetest.Sample(9)}, Deletes: []uint64{1, 1 << 40}}
	frame, ops := encodeFrame(3, b, nil)
	if len(ops) != 4 || ops[0].seq != 1 || ops[0].value != nil || ops[1].seq != 1<<40 || ops[1].value != nil || ops[2].seq != 7 || ops[3].seq != 9 {
		t.Fatalf("ops %v", ops)
	}
	data := append(slices.Clone(frame), frame...)
	data = append(data, make([]byte, 100)...)
	var got []op
	end, err := readFrames(3, data, func(o op) { got = append(got, o) })
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
	}{
		"another journal's": {data, 4},
		"cut short":         {data[:len(frame)+len(frame)/2], 3},
		"a stray byte":      {append(slices.Clone(frame), 1), 3},
	} {
		got = got[:0]
		end, err := readFrames(c.number, c.data, func(o op) { got = append(got, o) })
		if !errors.Is(err, errFrameEnd) {
			t.Errorf("%s: %v, want errFrameEnd", name, err)
		}
		if c.number == 4 && (end != 0 || len(got) != 0) || c.number == 3 && (end != int64(len(frame)) || len(got) != 4) {
			t.Errorf("%s: end %d, %d ops", name, end, len(got))
		}
	}
}
