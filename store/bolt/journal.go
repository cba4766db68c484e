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
// A journal file is named after the bbolt file, "<file>.journal.<number>",
// and holds frames back to back from offset 0, then zeros:
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
	frameHeaderSize = 8
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
// written, and makes the file and its name durable, so that a frame synced
// into it later survives a power cut.
func createJournal(path string, n uint64) (*journal, error) {
	name := journalName(path, n)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	j := &journal{number: n, f: f, room: zeroahead.New(f, 0, journalZeroMin, journalZeroStep)}
	if _, err := j.room.Extend(0); err == nil {
		err = fdatasync(f)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		os.Remove(name)
		return nil, err
	}
	return j, nil
}

// append writes frame at the journal's end and makes it durable. On error
// the end does not move, so the next frame overwrites whatever part of
// this one reached the file.
func (j *journal) append(frame []byte) error {
	_, err := j.f.WriteAt(frame, j.end)
	if err == nil {
		err = fdatasync(j.f)
	}
	if err != nil {
		// Best effort: a zero length where the frame began ends the
		// journal there, should no frame overwrite it.
		var zero [frameHeaderSize]byte
		_, _ = j.f.WriteAt(zero[:], j.end)
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
	size := frameHeaderSize + 2*binary.MaxVarintLen64 + len(b.Deletes)*binary.MaxVarintLen64
	for i := range b.Adds {
		r := &b.Adds[i]
		// Two varints here, and the value's two bytes of header, three
		// varints and four length-prefixed strings: 64 bytes covers them.
		size += 64 + len(r.Handle) + len(r.Function) + len(r.Unique) + len(r.Reducer) + len(r.Data)
	}
	frame := make([]byte, frameHeaderSize, size)
	frame = binary.AppendUvarint(frame, uint64(len(b.Deletes)))
	for _, seq := range b.Deletes {
		frame = binary.AppendUvarint(frame, seq)
	}
	frame = binary.AppendUvarint(frame, uint64(len(b.Adds)))
	var value []byte
	for i := range b.Adds {
		r := &b.Adds[i]
		value = store.AppendValue(value[:0], r)
		frame = binary.AppendUvarint(frame, r.Seq)
		frame = binary.AppendUvarint(frame, uint64(len(value)))
		frame = append(frame, value...)
	}
	payload := len(frame) - frameHeaderSize
	binary.LittleEndian.PutUint32(frame[0:4], uint32(payload))
	binary.LittleEndian.PutUint32(frame[4:8], frameCRC(n, frame[0:4], frame[frameHeaderSize:]))
	// The values' places are known only now that the frame has stopped
	// growing: read them back.
	ops, err := decodePayload(frame[frameHeaderSize:], ops)
	if err != nil {
		panic("bolt: a frame just encoded does not decode: " + err.Error())
	}
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

// errFrameEnd reports that a journal's frames stop before its end: a frame
// that does not check, or is cut short. In the newest journal after a
// crash that is the write the crash interrupted, which was never
// acknowledged; anywhere else it is damage.
var errFrameEnd = errors.New("a frame that does not check")

// readFrames calls fn for each operation in the frames of journal n, whose
// contents are data, in order. It returns the offset where the valid
// frames end and, if they end before the zeros do, an error saying why
// (wrapping errFrameEnd). Values passed to fn point into data.
func readFrames(n uint64, data []byte, fn func(op)) (int64, error) {
	off := 0
	var scratch []op
	for {
		rest := data[off:]
		if len(rest) < frameHeaderSize {
			if allZero(rest) {
				return int64(off), nil
			}
			return int64(off), fmt.Errorf("%w at offset %d: %d bytes, too short for a frame", errFrameEnd, off, len(rest))
		}
		length := binary.LittleEndian.Uint32(rest[0:4])
		if length == 0 && binary.LittleEndian.Uint32(rest[4:8]) == 0 {
			return int64(off), nil
		}
		if length > maxFrame || int(length) > len(rest)-frameHeaderSize {
			return int64(off), fmt.Errorf("%w at offset %d: length %d, %d bytes left", errFrameEnd, off, length, len(rest)-frameHeaderSize)
		}
		payload := rest[frameHeaderSize : frameHeaderSize+int(length)]
		if frameCRC(n, rest[0:4], payload) != binary.LittleEndian.Uint32(rest[4:8]) {
			return int64(off), fmt.Errorf("%w at offset %d: checksum mismatch", errFrameEnd, off)
		}
		ops, err := decodePayload(payload, scratch[:0])
		if err != nil {
			// The checksum held: not a torn write but a frame written
			// wrong. None of it is passed on.
			return int64(off), fmt.Errorf("%w at offset %d: %v", errFrameEnd, off, err)
		}
		for _, o := range ops {
			fn(o)
		}
		scratch = ops
		off += frameHeaderSize + int(length)
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
