// Package diskfault runs a store's power-cut and disk-fault tests on an
// internal/faultfs mount: a child process (the driver's own test binary)
// writes to the store on the mount, the test injects faults, SIGKILLs the
// child, cuts the power and replays what is left on disk.
//
// The store runs in a child process, not in the test, because bbolt and
// SQLite's WAL index map their files into memory, and a process must not
// fault on a mapping of a FUSE file that it serves itself: the Go runtime
// may stop the goroutines serving the fault. The test replays the cut store
// from the backing directory, outside FUSE.
//
// A driver's test file wires it up:
//
//	func TestDiskFaultChild(t *testing.T) {
//		diskfault.Child(t, func(path string) (store.Store, error) { return Open(path) })
//	}
//
//	func TestDiskFaults(t *testing.T) {
//		diskfault.Run(t, "x.db", "TestDiskFaultChild", func(path string) (store.Store, error) { return Open(path) })
//	}
package diskfault

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gearmand/internal/faultfs"
	"gearmand/store"
)

// childEnv names the store path the child writes to.
const childEnv = "GEARMAND_DISKFAULT_STORE"

// Open opens the driver's store at path.
type Open func(path string) (store.Store, error)

// Child is the child process's side: a test function that does nothing
// unless the test binary was started as a child by Run. It then opens the
// store and applies one record after another, Seq 1, 2, …, printing
// "ok SEQ" when Apply returned nil and "err SEQ MESSAGE" when it failed,
// going on past failures, until it is killed.
func Child(t *testing.T, open Open) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("the child process of the disk fault tests")
	}
	out := bufio.NewWriter(os.Stdout)
	s, err := open(path)
	if err != nil {
		fmt.Fprintln(out, "open-error", err)
		out.Flush()
		os.Exit(1)
	}
	for seq := uint64(1); ; seq++ {
		err := s.Apply(context.Background(), store.Batch{Adds: []store.Record{record(seq)}})
		if err != nil {
			fmt.Fprintf(out, "err %d %s\n", seq, strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintf(out, "ok %d\n", seq)
		}
		out.Flush()
		if err != nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func record(seq uint64) store.Record {
	return store.Record{Seq: seq, Handle: "H:diskfault:" + strconv.FormatUint(seq, 10), Function: "f",
		Unique: "u" + strconv.FormatUint(seq, 10), Data: payload(seq)}
}

// payload is record seq's data: 1 KiB that names it.
func payload(seq uint64) []byte {
	head := fmt.Sprintf("record %d ", seq)
	return append([]byte(head), bytes.Repeat([]byte{'.'}, 1024-len(head))...)
}

// writer is a running child.
type writer struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when its output ended

	mu struct {
		sync.Mutex
		acked   []uint64
		refused []string
		other   []string // lines that are neither
	}
}

func startWriter(t *testing.T, childTest, path string) *writer {
	t.Helper()
	w := &writer{done: make(chan struct{})}
	w.cmd = exec.Command(os.Args[0], "-test.run=^"+childTest+"$")
	w.cmd.Env = append(os.Environ(), childEnv+"="+path)
	var stderr bytes.Buffer
	w.cmd.Stderr = &stderr
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			line := lines.Text()
			w.mu.Lock()
			switch f := strings.SplitN(line, " ", 2); f[0] {
			case "ok":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				w.mu.acked = append(w.mu.acked, seq)
			case "err":
				w.mu.refused = append(w.mu.refused, f[1])
			default:
				w.mu.other = append(w.mu.other, line)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.kill() })
	return w
}

// waitAcked waits until the child acknowledged n more records than it had
// when asked, or fails the test after 20 s.
func (w *writer) waitAcked(t *testing.T, n int) {
	t.Helper()
	w.mu.Lock()
	want := len(w.mu.acked) + n
	w.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		w.mu.Lock()
		got, refused, other := len(w.mu.acked), len(w.mu.refused), w.mu.other
		w.mu.Unlock()
		if got >= want {
			return
		}
		select {
		case <-w.done:
			t.Fatalf("the child ended after %d acknowledged and %d refused records: %s", got, refused, strings.Join(other, "; "))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child acknowledged %d records in 20 s, want %d (%d refused; last refusal: %s)", got, want, refused, w.lastRefusal())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *writer) lastRefusal() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.mu.refused) == 0 {
		return "none"
	}
	return w.mu.refused[len(w.mu.refused)-1]
}

// kill SIGKILLs the child and returns what it acknowledged and refused.
func (w *writer) kill() (acked []uint64, refused []string) {
	if w.cmd.ProcessState == nil {
		w.cmd.Process.Signal(syscall.SIGKILL)
		<-w.done
		w.cmd.Wait()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.acked, w.mu.refused
}

// check replays the store at path and fails the test for every
// acknowledged record missing or changed. It returns how many records
// came back.
func check(t *testing.T, open Open, path string, acked []uint64) int {
	t.Helper()
	s, err := open(path)
	if err != nil {
		t.Fatalf("opening the store after the power cut: %v", err)
	}
	defer s.Close()
	back := make(map[uint64]bool)
	err = s.Replay(context.Background(), func(r store.Record) error {
		if !bytes.Equal(r.Data, payload(r.Seq)) {
			return fmt.Errorf("record %d came back with other data (%d bytes)", r.Seq, len(r.Data))
		}
		back[r.Seq] = true
		return nil
	})
	if err != nil {
		t.Fatalf("replay after the power cut: %v", err)
	}
	var lost []string
	for _, seq := range acked {
		if !back[seq] {
			lost = append(lost, strconv.FormatUint(seq, 10))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged records were lost to the power cut: %s", len(lost), len(acked), strings.Join(lost[:min(20, len(lost))], " "))
	}
	return len(back)
}

// Fault is one disk fault Run injects.
type Fault struct {
	Name  string
	Fault faultfs.Fault
}

// Faults are the faults Run injects, one per subtest: none (a plain power
// cut), an fsync that fails (its unsynced data is then lost, as on Linux),
// writes that fail with EIO and ENOSPC, and an fsync that stalls.
var Faults = []Fault{
	{"power-cut", faultfs.Fault{}},
	{"failed-fsync", faultfs.Fault{Op: faultfs.OpFsync, Times: 1, Err: syscall.EIO}},
	{"write-EIO", faultfs.Fault{Op: faultfs.OpWrite, Times: 2, Err: syscall.EIO}},
	{"write-ENOSPC", faultfs.Fault{Op: faultfs.OpWrite, Times: 2, Err: syscall.ENOSPC}},
	{"fsync-stall", faultfs.Fault{Op: faultfs.OpFsync, Times: 1, Delay: 2 * time.Second}},
}

// Run runs the store, in the child that childTest names, on a faultfs
// mount at name under its root, and for each of Faults, a few times with
// random timing: lets it acknowledge records, injects the fault, waits
// until it acknowledges records again (it must recover by itself once the
// fault is over), SIGKILLs it, cuts the power and replays: every record it
// acknowledged must come back.
func Run(t *testing.T, name, childTest string, open Open) {
	for _, f := range Faults {
		t.Run(f.Name, func(t *testing.T) {
			ffs := faultfs.Start(t)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, seed))
			acks, refusals, records := 0, 0, 0
			const rounds = 2
			for round := range rounds {
				w := startWriter(t, childTest, filepath.Join(ffs.Dir(), name))
				w.waitAcked(t, 1+rng.IntN(50))
				var rule *faultfs.Rule
				if f.Fault != (faultfs.Fault{}) {
					rule = ffs.Inject(f.Fault)
				}
				w.waitAcked(t, 1+rng.IntN(20))
				acked, refused := w.kill()
				if rule != nil {
					rule.Remove()
					if rule.Fired() == 0 {
						t.Errorf("round %d: the fault never fired", round)
					}
				}
				lostBytes, dropped := ffs.Unsynced(), ffs.Dropped()
				if err := ffs.Cut(); err != nil {
					t.Fatal(err)
				}
				n := check(t, open, filepath.Join(ffs.Backing(), name), acked)
				t.Logf("round %d: %d acknowledged, %d refused (%s), killed; the cut lost %d unsynced bytes and %d dropped by failed syncs; %d records came back",
					round, len(acked), len(refused), firstOf(refused), lostBytes, dropped, n)
				acks, refusals, records = acks+len(acked), refusals+len(refused), n
				if err := ffs.Mount(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%s: %d power cuts, %d acknowledged, %d refused, %d records at the end", f.Name, rounds, acks, refusals, records)
		})
	}
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return "first: " + s[0]
}
