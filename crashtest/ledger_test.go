package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gearmand/client"
)

// function is the one function every test job is submitted to.
const function = "crashtest"

// payload is the data of the job with this unique id, so that a worker can
// tell that a job came back whole.
func payload(unique string) []byte {
	return []byte("job " + unique + " " + strings.Repeat("-", 40) + " end")
}

// ledger is what the tests know about their jobs: every unique submitted,
// every one acknowledged, and every run.
type ledger struct {
	t        *testing.T
	nextConn int // numbers client connections across lives; test goroutine only

	mu struct {
		sync.Mutex
		sent        map[string]bool
		acked       map[string]ack
		runs        map[string]int
		lastRun     map[string]int // the last life a unique ran in
		totalRuns   int
		wrongData   []string
		wrongHandle []string
		submitErrs  []string // submissions that failed with no kill under way
	}
}

// ack is one acknowledged submission.
type ack struct {
	handle string
	at     time.Time // when the JOB_CREATED reached the client
	life   *life     // the process that sent it
}

func newLedger(t *testing.T) *ledger {
	r := &ledger{t: t}
	r.mu.sent = make(map[string]bool)
	r.mu.acked = make(map[string]ack)
	r.mu.runs = make(map[string]int)
	r.mu.lastRun = make(map[string]int)
	return r
}

func (r *ledger) recordSent(unique string) {
	r.mu.Lock()
	r.mu.sent[unique] = true
	r.mu.Unlock()
}

func (r *ledger) recordAck(unique, handle string, l *life) {
	at := time.Now()
	r.mu.Lock()
	r.mu.acked[unique] = ack{handle: handle, at: at, life: l}
	r.mu.Unlock()
}

func (r *ledger) recordSubmitErr(unique string, err error) {
	r.mu.Lock()
	r.mu.submitErrs = append(r.mu.submitErrs, fmt.Sprintf("%s: %v", unique, err))
	r.mu.Unlock()
}

// handler returns the handler of workers on l: it records the run and
// checks the job.
func (r *ledger) handler(l *life) client.Handler {
	return func(_ context.Context, j *client.Job) ([]byte, error) {
		r.recordRun(l, j)
		return nil, nil
	}
}

func (r *ledger) recordRun(l *life, j *client.Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.runs[j.Unique]++
	r.mu.lastRun[j.Unique] = l.n
	r.mu.totalRuns++
	if want := payload(j.Unique); string(j.Data) != string(want) {
		r.mu.wrongData = append(r.mu.wrongData, fmt.Sprintf("%s: got %q, want %q", j.Unique, j.Data, want))
	}
	if a, ok := r.mu.acked[j.Unique]; ok && a.handle != j.Handle {
		r.mu.wrongHandle = append(r.mu.wrongHandle, fmt.Sprintf("%s: acknowledged as %s, ran as %s", j.Unique, a.handle, j.Handle))
	}
}

// ranIn returns the uniques whose last run was in l: those that ran there
// for the first time, those that had run before, and those never
// submitted.
func (r *ledger) ranIn(l *life) (first, again, unknown []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for u, n := range r.mu.lastRun {
		switch {
		case n != l.n:
		case !r.mu.sent[u]:
			unknown = append(unknown, u)
		case r.mu.runs[u] == 1:
			first = append(first, u)
		default:
			again = append(again, u)
		}
	}
	slices.Sort(first)
	slices.Sort(again)
	slices.Sort(unknown)
	return first, again, unknown
}

func (r *ledger) runCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.totalRuns
}

func (r *ledger) ackCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.mu.acked)
}

// load is the shape of a submitting workload.
type load struct {
	conns   int // client connections
	perConn int // goroutines sharing each connection, each with one request in flight
	maxEach int // submissions per goroutine, at most
	// rate, when positive, paces the submissions to about this many a
	// second in all; zero submits as fast as the server acknowledges.
	rate int
}

// submitter is a running workload against one life.
type submitter struct {
	r       *ledger
	l       *life
	clients []*client.Client
	killing atomic.Bool // set just before the kill: errors from then on are expected
	acks    atomic.Int64
	cancel  context.CancelFunc
	done    chan struct{}
}

// startSubmitting starts ld against l: every goroutine submits background
// jobs with unique ids "c<conn>-<n>" one after another until it has
// submitted maxEach or a submission fails.
func (r *ledger) startSubmitting(l *life, ld load) *submitter {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s := &submitter{r: r, l: l, cancel: cancel, done: make(chan struct{})}
	for range ld.conns {
		c, err := client.Dial(ctx, l.addr)
		if err != nil {
			s.closeClients()
			cancel()
			r.t.Fatalf("dial %s: %v", l.addr, err)
		}
		s.clients = append(s.clients, c)
	}
	var wg sync.WaitGroup
	for _, c := range s.clients {
		conn := r.nextConn
		r.nextConn++
		var n atomic.Int64
		for range ld.perConn {
			wg.Go(func() {
				var every time.Duration
				if ld.rate > 0 {
					every = time.Duration(ld.conns*ld.perConn) * time.Second / time.Duration(ld.rate)
				}
				next := time.Now()
				for range ld.maxEach {
					if every > 0 {
						next = next.Add(every)
						if d := time.Until(next); d > 0 {
							time.Sleep(d)
						}
					}
					unique := fmt.Sprintf("c%d-%d", conn, n.Add(1))
					r.recordSent(unique)
					h, err := c.SubmitBackground(ctx, function, unique, payload(unique), client.Normal)
					if err != nil {
						if !s.killing.Load() {
							r.recordSubmitErr(unique, err)
						}
						return
					}
					r.recordAck(unique, h, l)
					s.acks.Add(1)
				}
			})
		}
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return s
}

// waitAcks waits until n jobs of this workload were acknowledged or every
// submitter has ended.
func (s *submitter) waitAcks(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.acks.Load() < n {
		select {
		case <-s.done:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("life %d: only %d of %d jobs acknowledged after 20s; the end of its log:\n%s", s.l.n, s.acks.Load(), n, tail(s.l.log(), 30))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killServer SIGKILLs the life under the submitters and waits for them to
// notice.
func (s *submitter) killServer(t *testing.T) {
	t.Helper()
	s.killing.Store(true)
	s.l.kill(t)
	s.finish(t)
}

// finish waits for every submitter to end (all of them are expected to end
// by themselves: count reached, or connection lost) and closes the clients.
func (s *submitter) finish(t *testing.T) {
	t.Helper()
	defer s.closeClients()
	defer s.cancel()
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cancel()
		<-s.done
		t.Fatalf("life %d: submitters still busy 20s later (%d acknowledged); the end of its log:\n%s", s.l.n, s.acks.Load(), tail(s.l.log(), 30))
	}
}

func (s *submitter) closeClients() {
	for _, c := range s.clients {
		c.Close()
	}
}

// submitAndKill runs ld against l, waits until at least one job was
// acknowledged, then for a random delay in [minDelay, maxDelay) and kills
// l mid-stream. It returns how many jobs this life acknowledged.
func (r *ledger) submitAndKill(l *life, ld load, rng *rand.Rand, minDelay, maxDelay time.Duration) int64 {
	r.t.Helper()
	s := r.startSubmitting(l, ld)
	s.waitAcks(r.t, 1)
	time.Sleep(minDelay + time.Duration(rng.Int64N(int64(maxDelay-minDelay))))
	select {
	case <-s.done:
		r.t.Logf("life %d: every submitter finished before the kill; raise load.maxEach", l.n)
	default:
	}
	s.killServer(r.t)
	return s.acks.Load()
}

// drain runs workers against l until l holds no job of function. If
// killAfterRuns is positive it instead kills l once the ledger has counted
// that many runs in all, and returns false.
func (r *ledger) drain(l *life, workers, killAfterRuns int) (drained bool) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ws []*client.Worker
	var workErrs sync.Map
	defer func() {
		cancel()
		for _, w := range ws {
			w.Close()
		}
		wg.Wait()
	}()
	for i := range workers {
		w, err := client.NewWorker(ctx, l.addr)
		if err != nil {
			r.t.Fatalf("worker dial %s: %v", l.addr, err)
		}
		ws = append(ws, w)
		if err := w.Register(function, r.handler(l)); err != nil {
			r.t.Fatalf("register: %v", err)
		}
		wg.Go(func() {
			if err := w.Work(ctx); ctx.Err() == nil {
				workErrs.Store(i, err)
			}
		})
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		if killAfterRuns > 0 && r.runCount() >= killAfterRuns {
			l.kill(r.t)
			return false
		}
		n, err := jobsOf(l.addr, function)
		if err != nil {
			r.t.Fatalf("life %d: admin status: %v\nlog:\n%s", l.n, err, l.log())
		}
		if n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			var errs []string
			workErrs.Range(func(k, v any) bool {
				errs = append(errs, fmt.Sprintf("worker %v: %v", k, v))
				return true
			})
			r.t.Fatalf("life %d: %d jobs still queued after 30s of draining (%d runs so far); worker errors: %v\nlog:\n%s",
				l.n, n, r.runCount(), errs, l.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verdict is the outcome of a test run, from the ledger.
type verdict struct {
	sent, acked, ran int
	recovered        int      // acknowledged jobs that ran
	missing          []string // acknowledged, never ran, not excused
	lostInWindow     []string // acknowledged within the write-behind window before a kill, never ran
	maxLostAge       time.Duration
	lostAges         []time.Duration // of every acknowledged job that never ran, when its life was killed
	duplicates       int             // uniques that ran more than once
	extraRuns        int             // runs beyond the first
	unackedRan       int             // ran, submitted, never acknowledged
	phantoms         []string
	// holes are lost jobs that a later job of the same life outlived: the
	// committer writes adds in order, so what a kill loses is always the
	// newest adds of the life, whatever the timing.
	holes []string
}

// judge compares acknowledgements with runs. A missing job is excused only
// when window > 0 (write-behind) and it was acknowledged less than window
// before the kill of the life that acknowledged it.
func (r *ledger) judge(window time.Duration) verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := verdict{sent: len(r.mu.sent), acked: len(r.mu.acked), ran: len(r.mu.runs)}
	for u, a := range r.mu.acked {
		if r.mu.runs[u] > 0 {
			v.recovered++
			continue
		}
		// age is how long before the kill the reply arrived; negative when
		// it was read from the socket after SIGKILL was sent.
		killed := !a.life.killedAt.IsZero()
		age := a.life.killedAt.Sub(a.at)
		if killed {
			v.lostAges = append(v.lostAges, age)
		}
		if window > 0 && killed && age < window {
			v.lostInWindow = append(v.lostInWindow, u)
			v.maxLostAge = max(v.maxLostAge, age)
			continue
		}
		what := fmt.Sprintf("%s (handle %s, acknowledged by life %d", u, a.handle, a.life.n)
		switch {
		case !killed:
			what += ", which was not killed)"
		case age >= 0:
			what += fmt.Sprintf(" %v before its kill)", age.Round(time.Millisecond))
		default:
			what += fmt.Sprintf(" %v after SIGKILL was sent)", (-age).Round(time.Millisecond))
		}
		v.missing = append(v.missing, what)
	}
	v.holes = r.holesLocked()
	for u, n := range r.mu.runs {
		if n > 1 {
			v.duplicates++
			v.extraRuns += n - 1
		}
		_, acked := r.mu.acked[u]
		switch {
		case acked:
		case r.mu.sent[u]:
			v.unackedRan++
		default:
			v.phantoms = append(v.phantoms, u)
		}
	}
	slices.Sort(v.missing)
	slices.Sort(v.phantoms)
	return v
}

// holesLocked finds, for each killed life, acknowledged jobs that never
// ran though a job the same life acknowledged with a higher sequence number
// (the number ending its handle) was stored: it ran in a later life.
func (r *ledger) holesLocked() []string {
	type lost struct {
		unique string
		seq    uint64
		a      ack
	}
	newestStored := make(map[*life]uint64)
	newestUnique := make(map[*life]string)
	var losses []lost
	for u, a := range r.mu.acked {
		seq, ok := handleSeq(a.handle)
		if !ok || a.life.killedAt.IsZero() {
			continue
		}
		switch {
		case r.mu.lastRun[u] > a.life.n:
			if seq > newestStored[a.life] {
				newestStored[a.life] = seq
				newestUnique[a.life] = u
			}
		case r.mu.runs[u] == 0:
			losses = append(losses, lost{u, seq, a})
		}
	}
	var holes []string
	for _, x := range losses {
		if newest := newestStored[x.a.life]; x.seq < newest {
			holes = append(holes, fmt.Sprintf("%s (handle %s, acknowledged %v before the kill of life %d) was lost, but %s (handle …:%d) of the same life was stored",
				x.unique, x.a.handle, x.a.life.killedAt.Sub(x.a.at).Round(time.Millisecond), x.a.life.n, newestUnique[x.a.life], newest))
		}
	}
	slices.Sort(holes)
	return holes
}

// handleSeq returns the sequence number that ends a handle of this server
// ("H:host:123"), if it does.
func handleSeq(handle string) (uint64, bool) {
	i := strings.LastIndexByte(handle, ':')
	n, err := strconv.ParseUint(handle[i+1:], 10, 64)
	return n, err == nil
}

// check judges the run, logs the summary and fails the test for every
// broken promise: acknowledged jobs missing, jobs that ran but were never
// submitted, data or handles changed, submissions refused while no kill was
// under way.
func (r *ledger) check(window time.Duration) verdict {
	r.t.Helper()
	v := r.judge(window)
	r.t.Logf("acknowledged %d of %d submitted; recovered %d; missing %d; lost within the %v write-behind window %d (oldest %v before its kill); duplicates %d (%d extra runs); ran but never acknowledged %d",
		v.acked, v.sent, v.recovered, len(v.missing), window, len(v.lostInWindow), v.maxLostAge.Round(time.Millisecond), v.duplicates, v.extraRuns, v.unackedRan)
	if len(v.lostAges) > 0 {
		r.t.Logf("acknowledged jobs lost, by time from acknowledgement to kill: %s", ageHistogram(v.lostAges))
	}
	if len(v.missing) > 0 {
		r.t.Errorf("%d acknowledged jobs never ran after the restart; the first %d:\n\t%s",
			len(v.missing), min(20, len(v.missing)), strings.Join(v.missing[:min(20, len(v.missing))], "\n\t"))
	}
	if len(v.holes) > 0 {
		r.t.Errorf("%d acknowledged jobs were lost while newer ones of the same life survived; the first %d:\n\t%s",
			len(v.holes), min(20, len(v.holes)), strings.Join(v.holes[:min(20, len(v.holes))], "\n\t"))
	}
	if len(v.phantoms) > 0 {
		r.t.Errorf("%d jobs ran that were never submitted; the first %d: %s",
			len(v.phantoms), min(20, len(v.phantoms)), strings.Join(v.phantoms[:min(20, len(v.phantoms))], " "))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, list := range []struct {
		what  string
		items []string
	}{
		{"jobs came back with other data", r.mu.wrongData},
		{"jobs came back under another handle", r.mu.wrongHandle},
		{"submissions failed with no kill under way", r.mu.submitErrs},
	} {
		if n := len(list.items); n > 0 {
			r.t.Errorf("%d %s; the first %d:\n\t%s", n, list.what, min(20, n), strings.Join(list.items[:min(20, n)], "\n\t"))
		}
	}
	return v
}

// ageHistogram counts ages in buckets of a logarithmic scale.
func ageHistogram(ages []time.Duration) string {
	bounds := []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second}
	counts := make([]int, len(bounds)+1)
	for _, a := range ages {
		i, _ := slices.BinarySearch(bounds, a+1) // first bound above a
		counts[i]++
	}
	var b strings.Builder
	for i, n := range counts {
		if n == 0 {
			continue
		}
		switch {
		case i == 0:
			fmt.Fprintf(&b, " after-kill:%d", n)
		case i == len(bounds):
			fmt.Fprintf(&b, " >=%v:%d", bounds[i-1], n)
		default:
			fmt.Fprintf(&b, " %v-%v:%d", bounds[i-1], bounds[i], n)
		}
	}
	return strings.TrimSpace(b.String())
}
