package pebble

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"gearmand/store"
)

// The newest write-ahead log is written, not preallocated, for at least
// walZeroMin bytes past its records, so commits do not write into
// unwritten extents.
func TestLogRoomIsWritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	s := openAt(t, dir)
	for seq := uint64(1); seq <= 3; seq++ {
		r := store.Record{Seq: seq, Handle: "H:t", Function: "f", Data: []byte("x")}
		if err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{r}}); err != nil {
			t.Fatal(err)
		}
	}
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no write-ahead log in %s: %v", dir, err)
	}
	newest := logs[len(logs)-1] // names are zero-padded numbers
	f, err := os.Open(newest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil {
		t.Skipf("SEEK_HOLE is not supported here: %v", err)
	}
	if hole < walZeroMin {
		t.Fatalf("%s is written up to %d only; want at least %d bytes of room past three small records", newest, hole, walZeroMin)
	}
}

// writeUntilKilled is the child process of TestKillAcrossLogs: it applies
// batches of 64 KiB records to dir and prints each batch's last Seq once
// Apply has returned, until it is killed.
func writeUntilKilled(dir string) {
	s, err := Open(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for seq := uint64(1); ; {
		var b store.Batch
		for range 8 {
			b.Adds = append(b.Adds, store.Record{Seq: seq, Handle: "H:t:" + strconv.FormatUint(seq, 10), Function: "f", Data: payloadOf(seq)})
			seq++
		}
		if err := s.Apply(context.Background(), b); err != nil {
			fmt.Fprintln(out, "error:", err)
			out.Flush()
			os.Exit(1)
		}
		fmt.Fprintln(out, seq-1)
		out.Flush()
	}
}

func payloadOf(seq uint64) []byte { return bytes.Repeat([]byte{byte(seq), byte(seq >> 8)}, 32<<10) }

// A process killed after its logs rotated leaves closed logs behind the
// newest, whose tail is zeros; every record it was told is durable comes
// back, with its data.
func TestKillAcrossLogs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "jobs")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GEARMAND_PEBBLE_WRITE="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// 3 memtables' worth: the child rotates its log at least twice.
	want := uint64(3 * memTableSize / (64 << 10))
	var acked uint64
	lines := bufio.NewScanner(stdout)
	for acked < want && lines.Scan() {
		n, err := strconv.ParseUint(lines.Text(), 10, 64)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q", lines.Text())
		}
		acked = n
	}
	cmd.Process.Kill()
	cmd.Wait()
	if acked < want {
		t.Fatalf("child stopped after %d records, want %d", acked, want)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	t.Logf("killed after %d records acknowledged; %d logs on disk", acked, len(logs))

	s := openAt(t, dir)
	var next uint64 = 1
	err = s.Replay(context.Background(), func(r store.Record) error {
		if r.Seq != next && r.Seq <= acked {
			return fmt.Errorf("replayed record %d, want %d", r.Seq, next)
		}
		if !bytes.Equal(r.Data, payloadOf(r.Seq)) {
			return fmt.Errorf("record %d came back with other data", r.Seq)
		}
		next = r.Seq + 1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next <= acked {
		t.Fatalf("replay ended at record %d; %d were acknowledged", next-1, acked)
	}
}
