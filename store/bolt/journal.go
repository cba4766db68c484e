package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gearmand/store"
	"gearmand/store/internal/fields"
	"gearmand/store/internal/zeroahead"
)

// The journal: Apply appends each batch as one frame to the newest journal
// file and makes it durable with one fdatasync; a checkpoint later writes
// what the journal holds into the bbolt file (see the package doc).
//
// A journal file is named after the bbolt file, "<file>.journal.<number>".
// It starts with a header, "gmjournl" and the 16 random bytes that the
// bbolt file holds as its identity (meta bucket, key "id"), so that a
// journal left beside another file is recognized; then come frames back to
// back, then zeros:
//
//	+----------------+----------------+-------------------------------+
//	| length, 4 bytes| CRC-32C,       | payload: length bytes         |
//	| little-endian  | 4 bytes        |                               |
//	+----------------+----------------+-------------------------------+
//
//	payload: uvarint deletes, that many uvarint Seqs,
//	         uvarint adds, that many (uvarint Seq, uvarint length, value)
//
// Values are store.AppendValue's encoding, as in the bbolt file. The CRC
// (Castagnoli) covers the file's number as 8 bytes little-endian, then the
// length field, then the payload: a frame read from the wrong file, or cut
// short by a crash, does not check. A length of zero (the zeros past the
// last frame) ends the file; so does the first frame that does not check.
const (
	journalMagic      = "gmjournl"
	idSize            = 16
	journalHeaderSize = len(journalMagic) + idSize
	frameHeaderSize   = 8
	// maxFrame bounds a frame's length, so that a damaged length field is
	// not taken for a frame of gigabytes. The Committer's batches are far
	// smaller.
	maxFrame = 1 << 30
)

// The room kept written with zeros past a journal's last frame (see
// package zeroahead): with it, a commit's fdatasync writes data blocks
// only. Pebble's write-ahead log uses the same sizes (store/pebble).
const (
	journalZeroMin  = 256 << 10
	journalZeroStep = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journalName is the name of journal number n of the bbolt file at path.
func journalName(path string, n uint64) string {
	return fmt.Sprintf("%s.journal.%08d", path, n)
}

// listJournals returns the numbers of the journal files of the bbolt file
// at path, ascending. Names that only look like one are not listed.
func listJournals(path string) ([]uint64, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(path) + ".journal."
	var numbers []uint64
	for _, e := range entries {
		digits, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || e.IsDir() || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
			continue
		}
		if n, err := strconv.ParseUint(digits, 10, 64); err == nil {
			numbers = append(numbers, n)
		}
	}
	slices.Sort(numbers)
	return numbers, nil
}

// journal is the journal file Apply appends to.
type journal struct {
	number uint64
	f      *os.File
	end    int64 // where the next frame goes
	room   *zeroahead.Room
}

// createJournal creates journal number n, with its first room of zeros
// written if there is space for it, and makes the file and its name
// durable, so that a frame synced into it later survives a power cut. A
// file left by an earlier attempt at the same number is emptied: numbers
// from the next one on never hold frames of use.
func createJournal(path string, n uint64, id []byte) (*journal, error) {
	name := journalName(path, n)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	j := &journal{number: n, f: f, end: int64(journalHeaderSize), room: zeroahead.New(f, 0, journalZeroMin, journalZeroStep)}
	_, err = f.WriteAt(append([]byte(journalMagic), id...), 0)
	if err == nil {
		// Best effort, as in append: without the room, commits are slower.
		_, _ = j.room.Extend(j.end)
		err = fdatasync(f)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// append writes frame at the journal's end and makes it durable. After an
// error the journal must not be appended to again (the caller starts a new
// one): after a failed fdatasync, Linux may have dropped the pages it could
// not write, and a later fdatasync would not say so. append tries to erase
// the frame's header, so that recovery ends the journal before it rather
// than apply a batch whose Apply failed; should the frame survive anyway,
// it is followed by zeros only, which recovery reads as the end.
func (j *journal) append(frame []byte) error {
	_, err := j.f.WriteAt(frame, j.end)
	if err == nil {
		err = fdatasync(j.f)
	}
	if err != nil {
		var zero [frameHeaderSize]byte
		if _, werr := j.f.WriteAt(zero[:], j.end); werr == nil {
			_ = fdatasync(j.f)
		}
		return err
	}
	j.end += int64(len(frame))
	// Best effort, as for the bbolt file (ahead.go): without the room the
	// next commit is slower, not less durable.
	if wrote, err := j.room.Extend(j.end); wrote && err == nil {
		_ = fdatasync(j.f)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// op is one operation of a frame: an add of Seq with its encoded value, or
// a delete (value nil).
type op struct {
	seq   uint64
	value []byte
}

// encodeFrame returns b encoded as one frame of journal n, and b's
// operations appended to ops, their values pointing into the frame.
func encodeFrame(n uint64, b store.Batch, ops []op) ([]byte, []op) {
	var v [binary.MaxVarintLen64]byte
	varint := func(x uint64) int { return len(binary.AppendUvarint(v[:0], x)) }
	size := frameHeaderSize + varint(uint64(len(b.Deletes))) + varint(uint64(len(b.Adds)))
	for _, seq := range b.Deletes {
		size += varint(seq)
		ops = append(ops, op{seq: seq})
	}
	for i := range b.Adds {
		r := &b.Adds[i]
		vs := store.ValueSize(r)
		size += varint(r.Seq) + varint(uint64(vs)) + vs
	}
	frame := make([]byte, frameHeaderSize, size)
	frame = binary.AppendUvarint(frame, uint64(len(b.Deletes)))
	for _, seq := range b.Deletes {
		frame = binary.AppendUvarint(frame, seq)
	}
	frame = binary.AppendUvarint(frame, uint64(len(b.Adds)))
	for i := range b.Adds {
		r := &b.Adds[i]
		frame = binary.AppendUvarint(frame, r.Seq)
		frame = binary.AppendUvarint(frame, uint64(store.ValueSize(r)))
		start := len(frame)
		frame = store.AppendValue(frame, r)
		// size is exact, so frame never grew into a new array: the value
		// stays where it was written.
		ops = append(ops, op{seq: r.Seq, value: frame[start:len(frame):len(frame)]})
	}
	if len(frame) != size {
		panic(fmt.Sprintf("bolt: a frame of %d bytes, %d computed", len(frame), size))
	}
	binary.LittleEndian.PutUint32(frame[0:4], uint32(size-frameHeaderSize))
	binary.LittleEndian.PutUint32(frame[4:8], frameCRC(n, frame[0:4], frame[frameHeaderSize:]))
	return frame, ops
}

func frameCRC(n uint64, length, payload []byte) uint32 {
	var number [8]byte
	binary.LittleEndian.PutUint64(number[:], n)
	crc := crc32.Update(0, castagnoli, number[:])
	crc = crc32.Update(crc, castagnoli, length)
	return crc32.Update(crc, castagnoli, payload)
}

// decodePayload appends the operations of a frame's payload to ops, its
// deletes then its adds, with values pointing into p. On error the ops it
// appended are not to be used.
func decodePayload(p []byte, ops []op) ([]op, error) {
	d := fields.NewReader(p)
	for n := d.Count(); n > 0; n-- {
		ops = append(ops, op{seq: d.Uvarint()})
	}
	for n := d.Count(); n > 0; n-- {
		seq := d.Uvarint()
		value := d.Bytes(d.Uvarint())
		if d.Err() == nil && len(value) == 0 {
			return ops, errors.New("an add with an empty value")
		}
		ops = append(ops, op{seq: seq, value: value})
	}
	if d.Err() == nil && len(d.Rest()) != 0 {
		return ops, fmt.Errorf("%d bytes after the last add", len(d.Rest()))
	}
	return ops, d.Err()
}

// errForeign reports a journal whose header names another bbolt file.
var errForeign = errors.New("the journal belongs to another bolt file")

// readJournal checks that data, journal n of the file with identity id,
// starts with its header, and reads its frames as readFrames does. A journal shorter
// than its header, or whose header is zeros, holds nothing: a crash cut its
// creation short.
func readJournal(n uint64, id, data []byte, fn func(op)) (int64, error) {
	if len(data) < journalHeaderSize || allZero(data[:journalHeaderSize]) {
		return 0, nil
	}
	if string(data[:len(journalMagic)]) != journalMagic {
		return 0, fmt.Errorf("%w: no journal header", errForeign)
	}
	if got := data[len(journalMagic):journalHeaderSize]; string(got) != string(id) {
		return 0, fmt.Errorf("%w: it names file %x, this file is %x", errForeign, got, id)
	}
	return readFrames(n, data, journalHeaderSize, fn)
}

// A journal's frames can stop before its zeros do in two ways. Both wrap
// errFrameEnd.
var (
	// errFrameEnd: the frames stop at a frame that does not check.
	errFrameEnd = errors.New("a frame that does not check")
	// errTorn: that frame is followed by nothing but zeros. It is the last
	// write, cut short by a crash or failed (Apply returned an error), and
	// was never acknowledged: nothing is lost.
	errTorn = fmt.Errorf("%w, the last write, cut short", errFrameEnd)
	// errDamaged: something follows that frame. Acknowledged frames may
	// be lost behind it.
	errDamaged = fmt.Errorf("%w, with data after it", errFrameEnd)
)

// readFrames calls fn for each operation in the frames of journal n, whose
// contents are data, in order, from offset start. It returns the offset
// where the valid frames end and, if they end before the zeros do, an error saying where
// and why, wrapping errTorn or errDamaged. Values passed to fn point into
// data.
func readFrames(n uint64, data []byte, start int, fn func(op)) (int64, error) {
	off := start
	var scratch []op
	// stop describes a frame at off that does not check and whose bytes
	// end at end, or that claims more than there is.
	stop := func(end int, why string, args ...any) (int64, error) {
		kind := errDamaged
		if end >= len(data) || allZero(data[end:]) {
			kind = errTorn
		}
		return int64(off), fmt.Errorf("%w: at offset %d: %s", kind, off, fmt.Sprintf(why, args...))
	}
	for {
		rest := data[off:]
		if len(rest) < frameHeaderSize {
			if allZero(rest) {
				return int64(off), nil
			}
			return stop(len(data), "%d bytes, too short for a frame", len(rest))
		}
		length := binary.LittleEndian.Uint32(rest[0:4])
		if length == 0 && binary.LittleEndian.Uint32(rest[4:8]) == 0 {
			return int64(off), nil
		}
		if length > maxFrame {
			return stop(off+frameHeaderSize, "length %d", length)
		}
		end := off + frameHeaderSize + int(length)
		if end > len(data) {
			return stop(end, "length %d, %d bytes left", length, len(rest)-frameHeaderSize)
		}
		payload := rest[frameHeaderSize : frameHeaderSize+int(length)]
		if frameCRC(n, rest[0:4], payload) != binary.LittleEndian.Uint32(rest[4:8]) {
			return stop(end, "checksum mismatch")
		}
		ops, err := decodePayload(payload, scratch[:0])
		if err != nil {
			// The checksum held: not a torn write but a frame written
			// wrong. None of it is passed on.
			return int64(off), fmt.Errorf("%w: at offset %d: %v", errDamaged, off, err)
		}
		for _, o := range ops {
			fn(o)
		}
		scratch = ops
		off = end
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
