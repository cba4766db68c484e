package crashtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/internal/faultfs"
)

// mountedStore is a file store whose files go on a faultfs mount.
type mountedStore struct {
	name string
	args func(dir string) []string // the store options with its files in dir
	// commitLog is a faultfs.Fault path pattern naming the file whose
	// fsync a commit waits for: bolt's journal, pebble's WAL, SQLite's WAL.
	commitLog string
}

var mountedStores = []mountedStore{
	{"bolt", func(dir string) []string {
		return []string{"-q", "bolt", "--bolt-file", filepath.Join(dir, "gearmand.db")}
	}, "*.journal.*"},
	{"pebble", func(dir string) []string {
		return []string{"-q", "pebble", "--pebble-dir", filepath.Join(dir, "pebble")}
	}, "*.log"},
	{"libsqlite3", func(dir string) []string {
		return []string{"-q", "libsqlite3", "--libsqlite3-db", filepath.Join(dir, "queue.db")}
	}, "*-wal"},
}

// powerCuts is how many cuts each store gets: a few, or
// CRASHTEST_POWER_CUTS.
func powerCuts(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("CRASHTEST_POWER_CUTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CRASHTEST_POWER_CUTS=%q: want a positive number", s)
		}
		return n
	}
	return scale(3, 2)
}

// cutPower is a power cut under a killed server: the page cache and every
// write no sync covered are lost, and the disk comes back as it was made
// durable.
func cutPower(t *testing.T, ffs *faultfs.FS) {
	t.Helper()
	t.Logf("power cut: lost %d bytes written since their files' last sync and %d that failed syncs dropped",
		ffs.Unsynced(), ffs.Dropped())
	if err := ffs.Cut(); err != nil {
		t.Fatalf("power cut: %v", err)
	}
	if err := ffs.Mount(); err != nil {
		t.Fatalf("mounting the durable state after the cut: %v", err)
	}
}

// TestPowerCutUnderLoad kills the server under a stream of submissions at
// a random moment and cuts the power, so that only what the store synced
// survives, then restarts it on what is left, several times, and drains:
// every acknowledged job must run.
func TestPowerCutUnderLoad(t *testing.T) {
	for _, st := range mountedStores {
		t.Run(st.name, func(t *testing.T) {
			start := time.Now()
			ffs := faultfs.Start(t)
			g := newGearmand(t, append(st.args(ffs.Dir()), writeThrough...)...)
			r := newLedger(t)
			rng := newRand(t)
			cuts := powerCuts(t)
			for range cuts {
				l := g.start()
				acked := r.submitAndKill(l, submitLoad, rng, 50*time.Millisecond, 500*time.Millisecond)
				cutPower(t, ffs)
				t.Logf("life %d: replayed %d, acknowledged %d, killed, power cut", l.n, l.replayed(), acked)
			}
			l := g.start()
			r.drain(l, 4, 0)
			t.Logf("life %d: replayed %d, drained; %d runs in all", l.n, l.replayed(), r.runCount())
			v := r.check(0)
			t.Logf("%s: %d power cuts, %d jobs acknowledged, %d lost; took %v",
				st.name, cuts, v.acked, len(v.missing), time.Since(start).Round(time.Millisecond))
			l.stop(t)
		})
	}
}

// storeFault is a disk fault injected under a running server.
type storeFault struct {
	name  string
	fault faultfs.Fault
}

var storeFaults = []storeFault{
	// fsyncgate: a failed fsync drops the dirty data; a store that
	// retries the fsync and trusts it acknowledges jobs a cut loses.
	{"failed-fsync", faultfs.Fault{Op: faultfs.OpFsync, Times: 2, Err: syscall.EIO}},
	{"write-EIO", faultfs.Fault{Op: faultfs.OpWrite, Times: 3, Err: syscall.EIO}},
	{"write-ENOSPC", faultfs.Fault{Op: faultfs.OpWrite, Times: 3, Err: syscall.ENOSPC}},
	{"fsync-stall", faultfs.Fault{Op: faultfs.OpFsync, Times: 1, Delay: 3 * time.Second}},
}

// TestDiskFaults injects each fault into a server's store while jobs are
// submitted one after another, lifts it, submits more, kills the server,
// cuts the power and restarts: every acknowledged job must run. It logs
// what the submitters got meanwhile and whether the server lived.
func TestDiskFaults(t *testing.T) {
	for _, st := range mountedStores {
		for _, sf := range storeFaults {
			t.Run(st.name+"/"+sf.name, func(t *testing.T) {
				ffs := faultfs.Start(t)
				g := newGearmand(t, append(st.args(ffs.Dir()), writeThrough...)...)
				r := newLedger(t)
				l := g.start()
				before := submitEach(t, r, l, "before", 20)
				rule := ffs.Inject(sf.fault)
				during := submitEach(t, r, l, "during", 40)
				rule.Remove()
				after := submitEach(t, r, l, "after", 20)
				survived := l.serving()
				t.Logf("%s under %s: fault fired %d times; before: %s; during: %s; after: %s; server alive: %v",
					st.name, sf.name, rule.Fired(), before, during, after, survived)
				t.Logf("what the server logged about it:\n%s", problems(l.log(), 8))
				if survived {
					l.kill(t)
				} else {
					t.Errorf("the server exited under %s (%v): a disk fault must fail the store, not the process; the end of its log:\n%s",
						sf.name, l.cmd.ProcessState, tail(l.log(), 15))
				}
				cutPower(t, ffs)
				l = g.start()
				r.drain(l, 4, 0)
				v := r.judge(0)
				t.Logf("after the cut: replayed %d; acknowledged %d, recovered %d, lost %d", l.replayed(), v.acked, v.recovered, len(v.missing))
				if len(v.missing) > 0 {
					t.Errorf("%d acknowledged jobs were lost after %s and a power cut; the first %d:\n\t%s",
						len(v.missing), sf.name, min(10, len(v.missing)), strings.Join(v.missing[:min(10, len(v.missing))], "\n\t"))
				}
				if after.acked == 0 {
					t.Errorf("after the fault was lifted the server acknowledged no job: %s", after)
				}
				l.stop(t)
			})
		}
	}
}

// serving reports whether l still answers an admin command; a process
// that does not is waited for (it is on its way out).
func (l *life) serving() bool {
	if _, err := adminCommand(l.addr, "version"); err == nil {
		return true
	}
	select {
	case <-l.exited:
	case <-time.After(exitTimeout):
	}
	return false
}

// problems returns the first n WARN and ERROR lines of a log.
func problems(log string, n int) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, "\t"+line)
		}
	}
	if len(out) > n {
		out = append(out[:n], fmt.Sprintf("\t(%d more)", len(out)-n))
	}
	return strings.Join(out, "\n")
}

// submitOutcome is what one phase of submitEach got.
type submitOutcome struct {
	acked, failed int
	firstErr      string
	longest       time.Duration // the longest wait for an answer
}

func (o submitOutcome) String() string {
	s := fmt.Sprintf("%d acknowledged, %d refused, longest wait %v", o.acked, o.failed, o.longest.Round(time.Millisecond))
	if o.firstErr != "" {
		s += " (first refusal: " + o.firstErr + ")"
	}
	return s
}

// submitEach submits n background jobs one after another on one
// connection, each with 30 s to be answered, and records the acknowledged
// ones in the ledger. A refusal is not an error here; a connection lost
// (the server died) ends the phase.
func submitEach(t *testing.T, r *ledger, l *life, phase string, n int) submitOutcome {
	t.Helper()
	var o submitOutcome
	if l.hasExited() {
		return o
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, l.addr)
	if err != nil {
		o.firstErr = err.Error()
		return o
	}
	defer c.Close()
	for i := range n {
		unique := fmt.Sprintf("%s-%d-%d", phase, l.n, i)
		r.recordSent(unique)
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		h, err := c.SubmitBackground(sctx, function, unique, payload(unique), client.Normal)
		o.longest = max(o.longest, time.Since(start))
		timedOut := sctx.Err() != nil
		scancel()
		if err != nil {
			o.failed++
			if o.firstErr == "" {
				o.firstErr = err.Error()
			}
			if timedOut || !l.serving() {
				return o
			}
			continue
		}
		o.acked++
		r.recordAck(unique, h, l)
	}
	return o
}

// TestPowerCutLosesWhatWasNotSynced runs a power cut under a disk whose
// fsyncs lie: then acknowledged jobs must be lost, or the cuts above could
// not see a loss either.
func TestPowerCutLosesWhatWasNotSynced(t *testing.T) {
	ffs := faultfs.Start(t)
	g := newGearmand(t, append(mountedStores[0].args(ffs.Dir()), writeThrough...)...)
	r := newLedger(t)
	l := g.start()
	ffs.Inject(faultfs.Fault{Op: faultfs.OpFsync, Lie: true})
	acked := r.submitAndKill(l, submitLoad, newRand(t), 50*time.Millisecond, 200*time.Millisecond)
	cutPower(t, ffs)
	l = g.start()
	r.drain(l, 4, 0)
	v := r.judge(0)
	t.Logf("with lying fsyncs: acknowledged %d, recovered %d, lost %d", acked, v.recovered, len(v.missing))
	if v.acked == 0 || len(v.missing) == 0 {
		t.Errorf("a power cut under lying fsyncs lost none of %d acknowledged jobs: the cut loses nothing", v.acked)
	}
	l.stop(t)
}

// TestPowerCutAfterDiskFault fails a few writes or fsyncs of the store at
// a random moment under load, then kills the server and cuts the power
// shortly after, before later commits can paper over what a failed fsync
// dropped, and restarts, several times: every acknowledged job must run.
// Refusals are expected from the fault on.
func TestPowerCutAfterDiskFault(t *testing.T) {
	faults := storeFaults[:3] // the failing ones, not the stall
	for _, st := range mountedStores {
		t.Run(st.name, func(t *testing.T) {
			start := time.Now()
			ffs := faultfs.Start(t)
			g := newGearmand(t, append(st.args(ffs.Dir()), writeThrough...)...)
			r := newLedger(t)
			rng := newRand(t)
			cuts := powerCuts(t)
			for range cuts {
				l := g.start()
				s := r.startSubmitting(l, submitLoad)
				s.waitAcks(t, int64(50+rng.IntN(1000)))
				sf := faults[rng.IntN(len(faults))]
				sf.fault.Times = 1 + rng.IntN(3)
				s.killing.Store(true) // refusals are expected from here on
				rule := ffs.Inject(sf.fault)
				time.Sleep(time.Duration(20+rng.IntN(200)) * time.Millisecond)
				alive := l.serving()
				if alive {
					s.killServer(t)
				} else {
					s.finish(t)
					t.Errorf("life %d exited under %s: %v", l.n, sf.name, l.cmd.ProcessState)
				}
				rule.Remove()
				t.Logf("life %d: replayed %d, acknowledged %d, %s ×%d (fired %d), killed", l.n, l.replayed(), s.acks.Load(), sf.name, sf.fault.Times, rule.Fired())
				cutPower(t, ffs)
			}
			l := g.start()
			r.drain(l, 4, 0)
			v := r.check(0)
			t.Logf("%s: %d faults each followed by a power cut, %d jobs acknowledged, %d lost; took %v",
				st.name, cuts, v.acked, len(v.missing), time.Since(start).Round(time.Millisecond))
			l.stop(t)
		})
	}
}

// TestStalledFsyncAnsweredWithinStoreTimeout stalls one fsync of the store
// for longer than --store-timeout: the submitters waiting on it must get
// an answer (QUEUE_ERROR) within about the timeout, not when the disk
// wakes up, submits must succeed again afterwards, and after a kill and a
// power cut every acknowledged job must run.
func TestStalledFsyncAnsweredWithinStoreTimeout(t *testing.T) {
	const timeout, stall = time.Second, 4 * time.Second
	for _, st := range mountedStores {
		t.Run(st.name, func(t *testing.T) {
			ffs := faultfs.Start(t)
			args := append(st.args(ffs.Dir()), writeThrough...)
			g := newGearmand(t, append(args, "--store-timeout", timeout.String())...)
			r := newLedger(t)
			l := g.start()
			submitEach(t, r, l, "before", 5)
			// The commit's own fsync, not a background one that no
			// submitter waits for.
			rule := ffs.Inject(faultfs.Fault{Op: faultfs.OpFsync, Path: st.commitLog, Times: 1, Delay: stall})
			during := submitEach(t, r, l, "during", 3)
			// Poll until the stalled fsync is over and writes go through.
			var after submitOutcome
			for deadline := time.Now().Add(2 * stall); time.Now().Before(deadline); {
				if after = submitEach(t, r, l, "after", 1); after.acked == 1 {
					break
				}
			}
			t.Logf("%s, an fsync stalled %v under --store-timeout %v: during: %s; then: %s", st.name, stall, timeout, during, after)
			if rule.Fired() != 1 {
				t.Fatalf("the stall fired %d times, want 1", rule.Fired())
			}
			if during.failed == 0 {
				t.Errorf("no submit was refused while an fsync stalled %v past --store-timeout %v", stall, timeout)
			}
			if limit := 2 * timeout; during.longest > limit {
				t.Errorf("a submitter waited %v for an answer with --store-timeout %v (limit %v)", during.longest.Round(time.Millisecond), timeout, limit)
			}
			if after.acked == 0 {
				t.Errorf("no submit was acknowledged within %v after the stall began: %s", 2*stall, after)
			}
			submitEach(t, r, l, "later", 5)
			l.kill(t)
			cutPower(t, ffs)
			l = g.start()
			r.drain(l, 4, 0)
			v := r.judge(0)
			t.Logf("after the cut: replayed %d; acknowledged %d, recovered %d, lost %d; refused but stored and run %d", l.replayed(), v.acked, v.recovered, len(v.missing), v.unackedRan)
			if len(v.missing) > 0 {
				t.Errorf("%d acknowledged jobs were lost: %s", len(v.missing), strings.Join(v.missing, "; "))
			}
			l.stop(t)
		})
	}
}
