package storetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"gearmand/store"
)

// A kill test runs the driver's own test binary twice: as the test, and as
// a child process that writes to the store until the test SIGKILLs it. The
// driver's TestMain hands over to WriteUntilKilled when the environment
// variable the test named is set:
//
//	func TestMain(m *testing.M) {
//		if dir := os.Getenv("GEARMAND_X_WRITE"); dir != "" {
//			storetest.WriteUntilKilled(func() (store.Store, error) { return Open(dir) })
//			return
//		}
//		os.Exit(m.Run())
//	}
//
//	func TestKill(t *testing.T) {
//		dir := filepath.Join(t.TempDir(), "jobs")
//		acked := storetest.KillWhileWriting(t, "GEARMAND_X_WRITE", dir, 100)
//		storetest.CheckAcked(t, openAt(t, dir), acked)
//	}

// KillRecordSize is the payload of every record WriteUntilKilled writes; a
// batch holds KillBatch of them.
const (
	KillRecordSize = 64 << 10
	KillBatch      = 8
)

// KillPayload is the payload of record seq in a kill test.
func KillPayload(seq uint64) []byte {
	return bytes.Repeat([]byte{byte(seq), byte(seq >> 8)}, KillRecordSize/2)
}

// WriteUntilKilled is the child process of a kill test: it opens the store,
// applies batches of KillBatch records with Seqs 1, 2, … and prints each
// batch's last Seq once Apply has returned, until it is killed. It exits 1
// after printing "error: …" if the store fails.
func WriteUntilKilled(open func() (store.Store, error)) {
	out := bufio.NewWriter(os.Stdout)
	fail := func(err error) {
		fmt.Fprintln(out, "error:", err)
		out.Flush()
		os.Exit(1)
	}
	s, err := open()
	if err != nil {
		fail(err)
	}
	for seq := uint64(1); ; {
		var b store.Batch
		for range KillBatch {
			b.Adds = append(b.Adds, store.Record{Seq: seq, Handle: "H:t:" + strconv.FormatUint(seq, 10), Function: "f", Data: KillPayload(seq)})
			seq++
		}
		if err := s.Apply(context.Background(), b); err != nil {
			fail(err)
		}
		fmt.Fprintln(out, seq-1)
		out.Flush()
	}
}

// KillWhileWriting starts the test binary as a kill test's child, with env
// set to value, SIGKILLs it once it has acknowledged at least want records,
// and returns how many it acknowledged.
func KillWhileWriting(t *testing.T, env, value string, want uint64) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+value)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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
	return acked
}

// CheckAcked replays s, which a killed kill test's child wrote, and fails
// unless every record up to acked came back in order with its data.
// Records past acked (written, not yet acknowledged) may come back too.
func CheckAcked(t *testing.T, s store.Store, acked uint64) {
	t.Helper()
	var next uint64 = 1
	err := s.Replay(context.Background(), func(r store.Record) error {
		if r.Seq != next && r.Seq <= acked {
			return fmt.Errorf("replayed record %d, want %d", r.Seq, next)
		}
		if !bytes.Equal(r.Data, KillPayload(r.Seq)) {
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
