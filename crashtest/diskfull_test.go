package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/internal/testdep"
)

// The disk-full tests put a file store on a small tmpfs and fill it with
// 1 KiB background jobs from four connections, as an operator trying the
// server would, with a ballast file standing for whatever else shares the
// disk: removing it is the operator freeing space.
const (
	fullFunction = "diskfull"
	fullTmpfs    = "24m"   // the tmpfs's size
	ballastSize  = 4 << 20 // removed to free space
	fullTimeout  = 2 * time.Second
	fullConns    = 4
	// fullSlack is what a submitter may wait past --store-timeout: the
	// watchdog's tick, scheduling on a busy machine.
	fullSlack = time.Second
)

// fullStore is a file store and its options for a path on the tmpfs.
type fullStore struct {
	name string
	args func(dir string) []string
}

var fullStores = []fullStore{
	{"bolt", func(dir string) []string {
		return []string{"-q", "bolt", "--bolt-file", filepath.Join(dir, "gearmand.db")}
	}},
	{"pebble", func(dir string) []string {
		return []string{"-q", "pebble", "--pebble-dir", filepath.Join(dir, "pebble")}
	}},
	{"libsqlite3", func(dir string) []string {
		return []string{"-q", "libsqlite3", "--libsqlite3-db", filepath.Join(dir, "queue.db")}
	}},
}

// TestDiskFull fills a tmpfs under each file store, twice: once with the
// space guard off, so that the store itself meets ENOSPC, and once with
// it on (--store-min-free 1MiB), so that new jobs are refused before. In
// each episode:
//
//   - the server stays up, and every background submit is answered within
//     --store-timeout (and a second): JOB_CREATED, or QUEUE_ERROR;
//   - workers drain every job and a foreground job runs while the disk is
//     full; with the guard on, their deletes are written (a clean restart
//     finds no job left);
//   - once the ballast is removed, submits succeed again without a
//     restart;
//   - after a SIGKILL and a restart, every acknowledged job has run.
func TestDiskFull(t *testing.T) {
	for _, st := range fullStores {
		t.Run(st.name, func(t *testing.T) {
			for _, guard := range []bool{false, true} {
				name := "no guard"
				if guard {
					name = "guard"
				}
				t.Run(name, func(t *testing.T) { diskFullEpisode(t, st, guard) })
			}
		})
	}
}

func diskFullEpisode(t *testing.T, st fullStore, guard bool) {
	dir := mountTmpfs(t, fullTmpfs)
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, bytes.Repeat([]byte("ballast "), ballastSize/8), 0o600); err != nil {
		t.Fatal(err)
	}
	minFree := "0"
	if guard {
		minFree = "8MiB"
	}
	webPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	web := net.JoinHostPort("127.0.0.1", strconv.Itoa(webPort))
	args := append(st.args(dir), "--store-timeout", fullTimeout.String(), "--store-min-free", minFree, "--web-listen", web)
	g := newGearmand(t, args...)
	book := newFullBook()

	l := g.start()
	fill := book.fill(t, l.addr, fullConns)
	t.Logf("filled: %d acknowledged, %d refused; refusals: %v; in the log: %v", fill.acked, fill.refused, fill.reasons, logEvents(l.log()))
	if strings.Contains(l.log(), "panic") {
		t.Errorf("the log mentions a panic:\n%s", tail(l.log(), 30))
	}
	if l.hasExited() {
		t.Fatalf("the server died while the disk filled (%v)\nlog:\n%s", l.cmd.ProcessState, tail(l.log(), 30))
	}
	if fill.refused == 0 {
		t.Fatalf("no submit was refused: the disk never filled")
	}
	if guard {
		if fill.reasons["space guard"] == 0 {
			t.Errorf("with --store-min-free, no refusal named the space guard: %v", fill.reasons)
		}
		st := apiStatus(t, web)
		if st.Store.Space == nil || !st.Store.Space.Low {
			t.Errorf("/api/status while refusing: store.space = %+v, want low", st.Store.Space)
		}
		if m := metricsText(t, web); !strings.Contains(m, "gearmand_store_space_low 1") {
			t.Errorf("/metrics while refusing lacks gearmand_store_space_low 1")
		}
		if !strings.Contains(l.log(), "store disk nearly full") {
			t.Errorf("the guard's trip was not logged")
		}
	}

	// Completions keep working: workers drain the queue, and a foreground
	// job runs.
	book.drain(t, l, true)

	// The operator frees space: submits succeed again, without a restart.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	after := book.submitUntilAccepted(t, l.addr, 15*time.Second)
	if guard {
		if st := apiStatus(t, web); st.Store.Space == nil || st.Store.Space.Low {
			t.Errorf("/api/status after space was freed: store.space = %+v, want not low", st.Store.Space)
		}
		if !strings.Contains(l.log(), "store disk has room again") {
			t.Errorf("the guard's clearing was not logged")
		}
		// The drained jobs' deletes were written although the disk was
		// nearly full: a clean stop and start finds only the jobs
		// submitted since.
		l.stop(t)
		l = g.start()
		if n := l.replayed(); n != after {
			t.Errorf("after a clean restart %d jobs came back, want the %d submitted after the drain: deletes were not written", n, after)
		}
	}

	lost := book.killAndCheck(t, g, l)
	book.mu.Lock()
	defer book.mu.Unlock()
	t.Logf("FIGURES store=%s guard=%v episodes=1 acknowledged=%d refused=%d lost=%d longest_wait=%v",
		strings.SplitN(t.Name(), "/", 3)[1], guard, len(book.acked), book.refused, len(lost), book.longest.Round(time.Millisecond))
	if book.longest > fullTimeout+fullSlack {
		t.Errorf("a submitter waited %v, beyond --store-timeout %v", book.longest, fullTimeout)
	}
}

// mountTmpfs mounts a tmpfs of size (mount's syntax: "4m") on a new
// directory and unmounts it when the test ends. Without the right to
// mount it skips, or fails under CI=true.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs (this test needs root): %v %s", err, bytes.TrimSpace(out))
		if testdep.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fullBook is what a disk-full episode knows of its jobs.
type fullBook struct {
	mu      sync.Mutex
	next    int
	acked   map[string]bool
	ran     map[string]int
	refused int
	longest time.Duration
	bad     []string // jobs that came back with other data
}

func newFullBook() *fullBook {
	return &fullBook{acked: make(map[string]bool), ran: make(map[string]int)}
}

// fullData is the 1 KiB payload of the job with this unique.
func fullData(unique string) []byte {
	return []byte(unique + ":" + strings.Repeat("x", 1024-len(unique)-1))
}

// fillResult sums up a fill.
type fillResult struct {
	acked, refused int
	reasons        map[string]int // refusals by kind
}

// fill submits 1 KiB background jobs from conns connections until each
// has been refused for a second on end (at most a minute), and records
// every answer and how long it took.
func (b *fullBook) fill(t *testing.T, addr string, conns int) fillResult {
	t.Helper()
	res := fillResult{reasons: make(map[string]int)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Minute)
	for c := range conns {
		wg.Go(func() {
			_, cl := dial(t, addr)
			var refusedSince time.Time
			for i := 0; time.Now().Before(stop); i++ {
				unique := fmt.Sprintf("c%d-%d", c, i)
				acked, reason := b.submit(t, cl, unique)
				mu.Lock()
				if acked {
					res.acked++
					refusedSince = time.Time{}
				} else {
					res.refused++
					res.reasons[reason]++
					if refusedSince.IsZero() {
						refusedSince = time.Now()
					}
				}
				mu.Unlock()
				if reason == "broken" || !refusedSince.IsZero() && time.Since(refusedSince) > time.Second {
					return
				}
			}
		})
	}
	wg.Wait()
	return res
}

// submit sends one background job and records the answer: acked, or the
// kind of refusal ("space guard", "store timeout", "store error"), or
// "broken" when the connection failed or no answer came in time (a test
// error).
func (b *fullBook) submit(t *testing.T, cl *client.Client, unique string) (acked bool, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*fullTimeout)
	defer cancel()
	start := time.Now()
	_, err := cl.SubmitBackground(ctx, fullFunction, unique, fullData(unique), client.Normal)
	waited := time.Since(start)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.longest = max(b.longest, waited)
	var se *client.ServerError
	switch {
	case err == nil:
		b.acked[unique] = true
		return true, ""
	case errors.As(err, &se) && se.Code == "QUEUE_ERROR":
		b.refused++
		switch {
		case strings.Contains(se.Text, "free disk space below"):
			return false, "space guard"
		case strings.Contains(se.Text, "no answer within the store timeout"):
			return false, "store timeout"
		}
		return false, "store error"
	}
	t.Errorf("submit %s: %v after %v: want JOB_CREATED or QUEUE_ERROR within %v", unique, err, waited.Round(time.Millisecond), fullTimeout)
	return false, "broken"
}

// submitUntilAccepted submits until one job is accepted, then fifty more,
// each of which must be accepted, and returns how many were accepted.
func (b *fullBook) submitUntilAccepted(t *testing.T, addr string, within time.Duration) int {
	t.Helper()
	_, cl := dial(t, addr)
	deadline := time.Now().Add(within)
	for {
		b.mu.Lock()
		b.next++
		unique := fmt.Sprintf("after-%d", b.next)
		b.mu.Unlock()
		acked, reason := b.submit(t, cl, unique)
		if acked {
			break
		}
		if reason == "broken" || time.Now().After(deadline) {
			t.Fatalf("submits still refused (%s) %v after space was freed", reason, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	accepted := 1
	for i := range 50 {
		if acked, reason := b.submit(t, cl, fmt.Sprintf("more-%d", i)); acked {
			accepted++
		} else {
			t.Errorf("submit %d after space was freed: refused (%s)", i, reason)
		}
	}
	return accepted
}

// drain runs two workers on l until no job of fullFunction is left, with a
// foreground job submitted meanwhile when foreground is set.
func (b *fullBook) drain(t *testing.T, l *life, foreground bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 2 {
		w, err := client.NewWorker(ctx, l.addr)
		if err != nil {
			t.Fatalf("worker: %v", err)
		}
		defer w.Close()
		if err := w.Register(fullFunction, func(_ context.Context, j *client.Job) ([]byte, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if j.Unique == "foreground" {
				return []byte("done"), nil
			}
			b.ran[j.Unique]++
			if !bytes.Equal(j.Data, fullData(j.Unique)) {
				b.bad = append(b.bad, j.Unique)
			}
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = w.Work(ctx) })
	}
	if foreground {
		cctx, cl := dial(t, l.addr)
		if out, err := cl.Call(cctx, fullFunction, "foreground", []byte("fg"), client.High); err != nil || string(out) != "done" {
			t.Errorf("a foreground job while the disk is full: %q, %v", out, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := jobsOf(l.addr, fullFunction)
		if err != nil {
			t.Fatalf("life %d: admin status: %v\nlog:\n%s", l.n, err, tail(l.log(), 30))
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("life %d: %d jobs left after 30s of draining", l.n, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.bad) > 0 {
		t.Errorf("%d jobs came back with other data: %v", len(b.bad), b.bad[:min(20, len(b.bad))])
	}
}

// lost lists the acknowledged jobs that never ran.
// killAndCheck kills life l of g, starts it again, runs every stored job,
// fails t for each acknowledged one that never ran, stops the server, and
// returns the lost ones.
func (b *fullBook) killAndCheck(t *testing.T, g *gearmand, l *life) []string {
	t.Helper()
	l.kill(t)
	l = g.start()
	b.drain(t, l, false)
	lost := b.lost()
	if len(lost) > 0 {
		t.Errorf("%d acknowledged jobs never ran: %v", len(lost), lost[:min(20, len(lost))])
	}
	l.stop(t)
	return lost
}

func (b *fullBook) lost() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var lost []string
	for u := range b.acked {
		if b.ran[u] == 0 {
			lost = append(lost, u)
		}
	}
	return lost
}

// statusJSON is the part of /api/status these tests read.
type statusJSON struct {
	Store struct {
		Healthy bool `json:"healthy"`
		Space   *struct {
			FreeBytes    uint64 `json:"free_bytes"`
			MinFreeBytes uint64 `json:"min_free_bytes"`
			Low          bool   `json:"low"`
		} `json:"space"`
	} `json:"store"`
}

func apiStatus(t *testing.T, web string) statusJSON {
	t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+web+"/api/status")), &st); err != nil {
		t.Fatalf("/api/status: %v", err)
	}
	return st
}

func metricsText(t *testing.T, web string) string {
	t.Helper()
	return httpGet(t, "http://"+web+"/metrics")
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(body)
}

// logEvents counts the log lines that tell how a store met the full disk.
func logEvents(log string) map[string]int {
	events := make(map[string]int)
	for _, e := range []string{
		"store write failed", "store did not answer in time", "store disk nearly full",
		"pebble could not commit a batch", "pebble reopened", "a checkpoint failed",
	} {
		if n := strings.Count(log, e); n > 0 {
			events[e] = n
		}
	}
	return events
}
