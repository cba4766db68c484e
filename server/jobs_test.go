package server_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"gearmand/protocol"
	"gearmand/server"
)

func TestForegroundJobRoundTrip(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, worker := dial(t, addr), dial(t, addr)

	worker.send(protocol.CanDo, "rev")
	client.send(protocol.SubmitJob, "rev", "", "abc")
	client.expect(protocol.JobCreated, "H:test:1")

	worker.send(protocol.GrabJobUniq)
	worker.expect(protocol.JobAssignUniq, "H:test:1", "rev", "", "abc")
	worker.send(protocol.WorkData, "H:test:1", "part")
	worker.send(protocol.WorkWarning, "H:test:1", "careful")
	worker.send(protocol.WorkStatus, "H:test:1", "12abc", "7")
	worker.send(protocol.WorkComplete, "H:test:1", "cba")

	client.expect(protocol.WorkData, "H:test:1", "part")
	client.expect(protocol.WorkWarning, "H:test:1", "careful")
	client.expect(protocol.WorkStatus, "H:test:1", "12abc", "7")
	client.expect(protocol.WorkComplete, "H:test:1", "cba")

	client.send(protocol.GetStatus, "H:test:1")
	client.expect(protocol.StatusRes, "H:test:1", "0", "0", "0", "0")
}

func TestBackgroundJobStatus(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, worker := dial(t, addr), dial(t, addr)

	client.send(protocol.SubmitJobBG, "bg", "u1", "data")
	client.expect(protocol.JobCreated, "H:test:1")
	client.send(protocol.GetStatus, "H:test:1")
	client.expect(protocol.StatusRes, "H:test:1", "1", "0", "0", "0")

	worker.send(protocol.CanDo, "bg")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "bg", "data")
	worker.send(protocol.WorkStatus, "H:test:1", "3", "7")
	worker.sync()
	client.send(protocol.GetStatus, "H:test:1")
	client.expect(protocol.StatusRes, "H:test:1", "1", "1", "3", "7")
	client.send(protocol.GetStatusUnique, "u1")
	client.expect(protocol.StatusResUnique, "u1", "1", "1", "3", "7", "0")

	worker.send(protocol.WorkComplete, "H:test:1", "")
	worker.sync()
	client.send(protocol.GetStatus, "H:test:1")
	client.expect(protocol.StatusRes, "H:test:1", "0", "0", "0", "0")
}

func TestPrioritiesAreGlobalAcrossFunctions(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, worker := dial(t, addr), dial(t, addr)
	for _, s := range []struct {
		typ protocol.Type
		fn  string
	}{
		{protocol.SubmitJobLowBG, "a"}, {protocol.SubmitJobBG, "a"}, {protocol.SubmitJobHighBG, "a"},
		{protocol.SubmitJobLow, "b"}, {protocol.SubmitJob, "b"}, {protocol.SubmitJobHigh, "b"},
	} {
		client.send(s.typ, s.fn, "", s.fn+"-"+s.typ.String())
		client.expectArgs(protocol.JobCreated)
	}
	worker.send(protocol.CanDo, "a")
	worker.send(protocol.CanDo, "b")
	var got []string
	for range 6 {
		worker.send(protocol.GrabJob)
		args := worker.expectArgs(protocol.JobAssign)
		got = append(got, args[2])
		worker.send(protocol.WorkComplete, args[0], "")
	}
	// All HIGH before any NORMAL, alternating functions, newest registration first.
	want := "b-SUBMIT_JOB_HIGH a-SUBMIT_JOB_HIGH_BG b-SUBMIT_JOB a-SUBMIT_JOB_BG b-SUBMIT_JOB_LOW a-SUBMIT_JOB_LOW_BG"
	if strings.Join(got, " ") != want {
		t.Fatalf("dispatch order\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	worker.send(protocol.GrabJob)
	worker.expect(protocol.NoJob)
}

func TestCoalescingClientsAllReceiveResults(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	c1, c2, bg, worker := dial(t, addr), dial(t, addr), dial(t, addr), dial(t, addr)
	c1.send(protocol.SubmitJob, "f", "same", "first")
	c1.expect(protocol.JobCreated, "H:test:1")
	c2.send(protocol.SubmitJobHigh, "f", "same", "second")
	c2.expect(protocol.JobCreated, "H:test:1")
	bg.send(protocol.SubmitJobBG, "f", "same", "third")
	bg.expect(protocol.JobCreated, "H:test:1")
	c1.send(protocol.GetStatusUnique, "same")
	c1.expect(protocol.StatusResUnique, "same", "1", "0", "0", "0", "2")

	worker.send(protocol.CanDo, "f")
	worker.send(protocol.GrabJobUniq)
	worker.expect(protocol.JobAssignUniq, "H:test:1", "f", "same", "first")
	worker.send(protocol.WorkData, "H:test:1", "chunk")
	worker.send(protocol.WorkComplete, "H:test:1", "result")
	for _, c := range []*peer{c1, c2} {
		c.expect(protocol.WorkData, "H:test:1", "chunk")
		c.expect(protocol.WorkComplete, "H:test:1", "result")
	}
	// "-" coalesces on identical payloads; "" never coalesces.
	c1.send(protocol.SubmitJobBG, "f", "-", "p")
	c1.expect(protocol.JobCreated, "H:test:2")
	c1.send(protocol.SubmitJobBG, "f", "-", "p")
	c1.expect(protocol.JobCreated, "H:test:2")
	c1.send(protocol.SubmitJobBG, "f", "", "p")
	c1.expect(protocol.JobCreated, "H:test:3")
	c1.send(protocol.SubmitJobBG, "f", "", "p")
	c1.expect(protocol.JobCreated, "H:test:4")
}

func TestForegroundClientLeavingKeepsJoinedBackgroundJob(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	bg, fg, worker := dial(t, addr), dial(t, addr), dial(t, addr)
	bg.send(protocol.SubmitJobBG, "f", "k2", "x")
	bg.expect(protocol.JobCreated, "H:test:1")
	fg.send(protocol.SubmitJob, "f", "k2", "y")
	fg.expect(protocol.JobCreated, "H:test:1")
	fg.nc.Close()
	// A foreground-only job is abandoned when its only client leaves.
	lone := dial(t, addr)
	lone.send(protocol.SubmitJob, "f", "lone", "z")
	lone.expect(protocol.JobCreated, "H:test:2")
	lone.nc.Close()
	eventually(t, "the abandoned job to go", func() bool { return statusOf(bg, "f") == "f\t1\t0\t0" })

	worker.send(protocol.CanDo, "f")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "f", "x")
}

func TestSleepingWorkersAreWoken(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, sleeper, awake := dial(t, addr), dial(t, addr), dial(t, addr)
	sleeper.send(protocol.CanDo, "f")
	sleeper.send(protocol.PreSleep)
	awake.send(protocol.CanDo, "f")
	sleeper.sync()
	awake.sync()
	client.send(protocol.SubmitJobBG, "f", "", "1")
	client.expect(protocol.JobCreated, "H:test:1")
	sleeper.expect(protocol.Noop)
	client.send(protocol.SubmitJobBG, "f", "", "2")
	client.expect(protocol.JobCreated, "H:test:2")
	awake.sync() // an awake worker gets no NOOP: the echo comes first
	sleeper.sync()

	// PRE_SLEEP with work queued gets NOOP at once.
	sleeper.send(protocol.PreSleep)
	sleeper.expect(protocol.Noop)
}

func TestWorkerWakeupLimit(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1, WorkerWakeup: 1})
	client := dial(t, addr)
	workers := []*peer{dial(t, addr), dial(t, addr)}
	for _, w := range workers {
		w.send(protocol.CanDo, "f")
		w.send(protocol.PreSleep)
		w.sync()
	}
	client.send(protocol.SubmitJobBG, "f", "", "1")
	client.expectArgs(protocol.JobCreated)
	workers[0].expect(protocol.Noop)
	workers[1].sync() // not woken by the first job
	client.send(protocol.SubmitJobBG, "f", "", "2")
	client.expectArgs(protocol.JobCreated)
	workers[1].expect(protocol.Noop)
}

func TestLostWorkerRequeuesAndRetriesRunOut(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: 2})
	client := dial(t, addr)
	client.send(protocol.SubmitJob, "f", "", "d")
	client.expect(protocol.JobCreated, "H:test:1")
	for i := range 2 {
		w := dial(t, addr)
		w.send(protocol.CanDo, "f")
		w.send(protocol.GrabJob)
		w.expect(protocol.JobAssign, "H:test:1", "f", "d")
		if i == 0 {
			w.send(protocol.CantDo, "f") // loses the job like a disconnect
			w.sync()
			continue
		}
		w.nc.Close()
	}
	client.expect(protocol.WorkFail, "H:test:1")
	client.send(protocol.GetStatus, "H:test:1")
	client.expect(protocol.StatusRes, "H:test:1", "0", "0", "0", "0")
}

func TestResetAbilitiesRequeues(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, w := dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJobBG, "f", "", "d")
	client.expect(protocol.JobCreated, "H:test:1")
	w.send(protocol.CanDo, "f")
	w.send(protocol.GrabJob)
	w.expectArgs(protocol.JobAssign)
	w.send(protocol.ResetAbilities)
	w.send(protocol.GrabJob)
	w.expect(protocol.NoJob)
	w.send(protocol.CanDo, "f")
	w.send(protocol.GrabJob)
	w.expect(protocol.JobAssign, "H:test:1", "f", "d")
}

func TestCanDoTimeoutRequeues(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, slow, other := dial(t, addr), dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJob, "f", "", "d")
	client.expect(protocol.JobCreated, "H:test:1")
	slow.send(protocol.CanDoTimeout, "f", "500") // raised to the 1 s floor
	slow.send(protocol.GrabJob)
	slow.expect(protocol.JobAssign, "H:test:1", "f", "d")
	other.send(protocol.CanDo, "f")
	other.send(protocol.PreSleep)
	other.expect(protocol.Noop) // woken by the requeue after the timeout
	slow.send(protocol.WorkComplete, "H:test:1", "late")
	slow.expect(protocol.Error, "JOB_NOT_FOUND", "Job given in work result not found")
	other.send(protocol.GrabJob)
	other.expect(protocol.JobAssign, "H:test:1", "f", "d")
	other.send(protocol.WorkComplete, "H:test:1", "ok")
	client.expect(protocol.WorkComplete, "H:test:1", "ok")
}

func TestEpochJobWakesSleepersWhenDue(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, w := dial(t, addr), dial(t, addr)
	w.send(protocol.CanDo, "f")
	w.send(protocol.PreSleep)
	w.sync()
	when := time.Now().Add(time.Second).Unix()
	client.send(protocol.SubmitJobEpoch, "f", "e", strconv.FormatInt(when, 10), "later")
	client.expect(protocol.JobCreated, "H:test:1")
	client.send(protocol.SubmitJobEpoch, "f", "p", "abc", "now") // garbage time: run now
	client.expect(protocol.JobCreated, "H:test:2")
	w.expect(protocol.Noop)
	w.send(protocol.GrabJob)
	w.expect(protocol.JobAssign, "H:test:2", "f", "now")
	w.send(protocol.WorkComplete, "H:test:2", "")
	w.send(protocol.PreSleep)
	w.expect(protocol.Noop) // at the due time
	if time.Now().Unix() < when {
		t.Fatalf("woken at %v, before the epoch time %d", time.Now(), when)
	}
	w.send(protocol.GrabJob)
	w.expect(protocol.JobAssign, "H:test:1", "f", "later")
}

func TestReduceJobAndGrabJobAll(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, w := dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitReduceJobBackground, "f", "u1", "red", "", "d1")
	client.expect(protocol.JobCreated, "H:test:1")
	client.send(protocol.SubmitJobBG, "f", "u2", "d2")
	client.expect(protocol.JobCreated, "H:test:2")
	w.send(protocol.CanDo, "f")
	w.send(protocol.GrabJobAll)
	w.expect(protocol.JobAssignAll, "H:test:1", "f", "u1", "red", "d1")
	w.send(protocol.GrabJobAll)
	w.expect(protocol.JobAssignUniq, "H:test:2", "f", "u2", "d2")
}

func TestExceptionsOption(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	plain, opted, w := dial(t, addr), dial(t, addr), dial(t, addr)
	opted.send(protocol.OptionReq, "EXCEPTIONS")
	opted.expect(protocol.OptionRes, "EXCEPTIONS")
	plain.send(protocol.SubmitJob, "f", "u", "")
	plain.expect(protocol.JobCreated, "H:test:1")
	opted.send(protocol.SubmitJob, "f", "u", "")
	opted.expect(protocol.JobCreated, "H:test:1")
	w.send(protocol.CanDo, "f")
	w.send(protocol.GrabJob)
	w.expectArgs(protocol.JobAssign)
	w.send(protocol.WorkException, "H:test:1", "boom")
	opted.expect(protocol.WorkException, "H:test:1", "boom")
	plain.expect(protocol.WorkFail, "H:test:1", "") // handle and a trailing NUL
}

func TestExceptionsForEveryConnection(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1, Exceptions: true})
	client, w := dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJob, "f", "", "")
	client.expect(protocol.JobCreated, "H:test:1")
	w.send(protocol.CanDo, "f")
	w.send(protocol.GrabJob)
	w.expectArgs(protocol.JobAssign)
	w.send(protocol.WorkException, "H:test:1", "boom")
	client.expect(protocol.WorkException, "H:test:1", "boom")
}

func TestWorkFailAndWorkFromWrongConnection(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, w, intruder := dial(t, addr), dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJob, "f", "", "")
	client.expect(protocol.JobCreated, "H:test:1")
	w.send(protocol.CanDo, "f")
	w.send(protocol.GrabJob)
	w.expectArgs(protocol.JobAssign)
	intruder.send(protocol.WorkComplete, "H:test:1", "x")
	intruder.expect(protocol.Error, "JOB_NOT_FOUND", "Job given in work result not found")
	w.send(protocol.WorkFail, "H:test:1")
	client.expect(protocol.WorkFail, "H:test:1")
	w.send(protocol.WorkFail, "H:test:1")
	w.expect(protocol.Error, "JOB_NOT_FOUND", "Job given in work result not found")
}

func TestEchoSetClientIDAndEmptyFunction(t *testing.T) {
	addr := startServer(t, server.Config{})
	p := dial(t, addr)
	p.send(protocol.EchoReq, "a\x00b\x00")
	p.expect(protocol.EchoRes, "a\x00b\x00")
	p.send(protocol.EchoReq)
	p.expect(protocol.EchoRes)
	p.send(protocol.SetClientID, "my client "+strings.Repeat("x", 200))
	p.send(protocol.CanDo, "")
	p.sync()
	lines := p.admin("workers")
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " my client "+strings.Repeat("x", 117)+" : ") {
		t.Fatalf("workers: %q", lines)
	}
	p.send(protocol.GrabJob, "ignored payload")
	p.expect(protocol.NoJob)
}

// TestWorkResultsAsTheHandleAlone: Perl's Gearman::Worker sends WORK_DATA,
// WORK_WARNING, WORK_COMPLETE and WORK_EXCEPTION as the job handle with no
// NUL and no data when the result is false in Perl ("" or "0"). Each means
// empty data: the job completes, the client gets empty results, and the
// worker's next GRAB_JOB is answered as usual rather than with an ERROR.
func TestWorkResultsAsTheHandleAlone(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1, Exceptions: true})
	client, worker := dial(t, addr), dial(t, addr)
	worker.send(protocol.CanDo, "perl")

	client.send(protocol.SubmitJob, "perl", "", "fg")
	client.expect(protocol.JobCreated, "H:test:1")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:1", "perl", "fg")
	worker.send(protocol.WorkData, "H:test:1")
	worker.send(protocol.WorkWarning, "H:test:1")
	worker.send(protocol.WorkComplete, "H:test:1")
	client.expect(protocol.WorkData, "H:test:1", "")
	client.expect(protocol.WorkWarning, "H:test:1", "")
	client.expect(protocol.WorkComplete, "H:test:1", "")

	client.send(protocol.SubmitJob, "perl", "", "ex")
	client.expect(protocol.JobCreated, "H:test:2")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:2", "perl", "ex")
	worker.send(protocol.WorkException, "H:test:2")
	client.expect(protocol.WorkException, "H:test:2", "")

	client.send(protocol.SubmitJobBG, "perl", "", "bg")
	client.expect(protocol.JobCreated, "H:test:3")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:3", "perl", "bg")
	worker.send(protocol.WorkComplete, "H:test:3")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.NoJob)
	client.send(protocol.GetStatus, "H:test:3")
	client.expect(protocol.StatusRes, "H:test:3", "0", "0", "0", "0")
	if got := statusOf(client, "perl"); got != "perl\t0\t0\t1" {
		t.Errorf("status = %q, want perl with no jobs and one worker", got)
	}
}
