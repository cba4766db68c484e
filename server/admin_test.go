package server_test

import (
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"gearmand/protocol"
	"gearmand/server"
)

// TestAdminCapturedExchanges replays the exchanges captured from gearmand
// 1.1.20 in PROTOCOL.md §3.3, after building the same state, and compares
// the replies byte for byte.
func TestAdminCapturedExchanges(t *testing.T) {
	addr := startServer(t, server.Config{LogLevel: "DEBUG", HandlePrefix: "H:vm"})
	admin, worker, client := dial(t, addr), dial(t, addr), dial(t, addr)

	// status: co (one worker), abcd (created), co2 (one queued), rev.
	worker.send(protocol.CanDo, "co")
	worker.sync()
	admin.line("create function abcd\r")
	admin.expectText("OK\r\n")
	client.send(protocol.SubmitJobBG, "co2", "", "x")
	client.expect(protocol.JobCreated, "H:vm:1")
	admin.line("create function rev\r")
	admin.expectText("OK\r\n")
	admin.line("status")
	admin.expectText("co\t0\t0\t1\nabcd\t0\t0\t0\nco2\t1\t0\t0\nrev\t0\t0\t0\n.\n")

	for _, ex := range []struct{ send, want string }{
		{"getpid\r", "OK " + strconv.Itoa(os.Getpid()) + "\n"},
		{"verbose", "OK DEBUG\n"},
		{"maxqueue foo 1 2 3", "OK\r\n"},
		{"bogus", "ERR UNKNOWN_COMMAND Unknown+server+commandbogus\r\n"},
		{"show foo", "ERR UNKNOWN_SHOW_ARGUMENTS\r\n"},
		{"cancel job H:x:1", "ERR UNKNOWN_JOB\r\n"},
		{"drop function nope", "ERR function not found\r\n"},
		{"version", "OK " + server.Version + "\n"},
		{"STATUS", "co\t0\t0\t1\nabcd\t0\t0\t0\nco2\t1\t0\t0\nrev\t0\t0\t0\n.\n"},
		{"", "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"},
		{" status", "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"},
		{"show", "ERR UNKNOWN_COMMAND Unknown+server+commandshow\r\n"},
		{"cancel job", "ERR UNKNOWN_COMMAND Unknown+server+commandcancel\r\n"},
		{"cancel foo bar", "ERR UNKNOWN_ERROR\r\n"},
		{"cancel job a b", "ERR UNKNOWN_ERROR\r\n"},
		{"maxqueue", "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n"},
		{"create function", "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n"},
		{"drop thing x", "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+drop\r\n"},
		{"drop function CO", "ERR there are still connected workers or executing clients\r\n"},
		{"drop function co2", "ERR there are still connected workers or executing clients\r\n"},
		{"drop function ABCD", "OK\r\n"},
	} {
		admin.line(ex.send)
		admin.expectText(ex.want)
	}
	if got := statusOf(admin, "abcd"); got != "" {
		t.Fatalf("abcd still listed after drop: %q", got)
	}
}

func TestAdminPriorityStatus(t *testing.T) {
	addr := startServer(t, server.Config{})
	p := dial(t, addr)
	// The capture: pB: HIGH 1, NORMAL 1; pA: HIGH 2, NORMAL 1, LOW 2.
	for _, s := range []struct {
		typ protocol.Type
		fn  string
	}{
		{protocol.SubmitJobHighBG, "pB"}, {protocol.SubmitJobBG, "pB"},
		{protocol.SubmitJobHighBG, "pA"}, {protocol.SubmitJobHighBG, "pA"}, {protocol.SubmitJobBG, "pA"},
		{protocol.SubmitJobLowBG, "pA"}, {protocol.SubmitJobLowBG, "pA"},
	} {
		p.send(s.typ, s.fn, "", "")
		p.expectArgs(protocol.JobCreated)
	}
	p.line("prioritystatus")
	p.expectText("pB\t1\t1\t0\t0\npA\t2\t1\t2\t0\n.\n")
}

func TestAdminWorkers(t *testing.T) {
	addr := startServer(t, server.Config{})
	w, idle, admin := dial(t, addr), dial(t, addr), dial(t, addr)
	w.send(protocol.SetClientID, "worker-01")
	for _, fn := range []string{"alpha", "beta", "alpha"} {
		w.send(protocol.CanDo, fn)
	}
	w.sync()
	idle.sync()
	lines := admin.admin("workers")
	// "FD IP ID : FUNC..." for every connection, the admin one included.
	want := []*regexp.Regexp{
		regexp.MustCompile(`^\d+ 127\.0\.0\.1 worker-01 : alpha beta alpha$`),
		regexp.MustCompile(`^\d+ 127\.0\.0\.1 - :$`),
		regexp.MustCompile(`^\d+ 127\.0\.0\.1 - :$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("workers: %q", lines)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Fatalf("workers line %d: %q does not match %v", i, lines[i], re)
		}
	}
}

func TestAdminShowJobsAndUniques(t *testing.T) {
	addr := startServer(t, server.Config{JobRetries: -1})
	client, worker, admin := dial(t, addr), dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJob, "f", "fg", "")
	client.expect(protocol.JobCreated, "H:test:1")
	client.send(protocol.SubmitJobBG, "f", "", "")
	client.expect(protocol.JobCreated, "H:test:2")
	client.send(protocol.SubmitJobBG, "f", "bg", "")
	client.expect(protocol.JobCreated, "H:test:3")
	// Lose a worker once so that job 1 shows a retry.
	w2 := dial(t, addr)
	w2.send(protocol.CanDo, "f")
	w2.send(protocol.GrabJob)
	w2.expectArgs(protocol.JobAssign)
	w2.nc.Close()
	eventually(t, "the job to be requeued", func() bool { return statusOf(admin, "f") == "f\t3\t0\t0" })
	// Run job 2, then cancel it: it shows as ignored while running.
	worker.send(protocol.CanDo, "f")
	worker.send(protocol.GrabJob)
	worker.expect(protocol.JobAssign, "H:test:2", "f", "")
	admin.line("cancel job H:test:2")
	admin.expectText("OK\r\n")

	got := admin.admin("show jobs")
	want := []string{"H:test:1\t1\t0\t0", "H:test:2\t0\t1\t1", "H:test:3\t0\t0\t1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("show jobs: %q, want %q", got, want)
	}
	got = admin.admin("show unique jobs")
	if strings.Join(got, "|") != "fg||bg" {
		t.Fatalf("show unique jobs: %q", got)
	}
	// The ignored job's result is accepted and goes nowhere.
	worker.send(protocol.WorkComplete, "H:test:2", "late")
	worker.sync()
	if got := admin.admin("show jobs"); len(got) != 2 {
		t.Fatalf("show jobs after the ignored job ended: %q", got)
	}
}

func TestAdminCancelDetachesClients(t *testing.T) {
	addr := startServer(t, server.Config{})
	client, admin := dial(t, addr), dial(t, addr)
	client.send(protocol.SubmitJob, "f", "u", "")
	client.expect(protocol.JobCreated, "H:test:1")
	admin.line("cancel job H:test:1")
	admin.expectText("OK\r\n")
	client.expect(protocol.WorkFail, "H:test:1")
	// A queued job is gone at once.
	if got := statusOf(admin, "f"); got != "f\t0\t0\t0" {
		t.Fatalf("status after cancel: %q", got)
	}
	client.send(protocol.GetStatus, "H:test:1")
	client.expect(protocol.StatusRes, "H:test:1", "0", "0", "0", "0")
}

func TestAdminMaxQueueForms(t *testing.T) {
	addr := startServer(t, server.Config{})
	p := dial(t, addr)
	p.line("create function f")
	p.expectText("OK\r\n")
	submit := func(typ protocol.Type, unique string) string {
		p.send(typ, "f", unique, "")
		typ2, payload := p.readPacket()
		return typ2.String() + " " + string(payload)
	}
	// HIGH=1, NORMAL=2, LOW unlimited; the limit is on queued+running.
	p.line("maxqueue f 1 2")
	p.expectText("OK\r\n")
	if got := submit(protocol.SubmitJobHighBG, "a"); got != "JOB_CREATED H:test:1" {
		t.Fatal(got)
	}
	if got := submit(protocol.SubmitJobHighBG, "b"); got != "ERROR QUEUE_ERROR\x00Job queue is full" {
		t.Fatal(got)
	}
	if got := submit(protocol.SubmitJobBG, "c"); got != "JOB_CREATED H:test:2" {
		t.Fatal(got)
	}
	if got := submit(protocol.SubmitJobLowBG, "d"); got != "JOB_CREATED H:test:3" {
		t.Fatal(got)
	}
	p.line("maxqueue f")
	p.expectText("OK\r\n")
	if got := submit(protocol.SubmitJobHighBG, "e"); got != "JOB_CREATED H:test:4" {
		t.Fatal(got)
	}
	// An unknown function is not created, and the reply is still OK.
	p.line("maxqueue nosuch 5")
	p.expectText("OK\r\n")
	if got := statusOf(p, "nosuch"); got != "" {
		t.Fatalf("maxqueue created a function: %q", got)
	}
}

func TestAdminAndBinaryInterleaved(t *testing.T) {
	p := dial(t, startServer(t, server.Config{}))
	b := []byte("version\n")
	b = protocol.AppendPacketStrings(b, protocol.Req, protocol.EchoReq, "hi")
	b = append(b, "status\r\n"...)
	p.write(b)
	p.expectText("OK " + server.Version + "\n")
	p.expect(protocol.EchoRes, "hi")
	p.expectText(".\n")
}

func TestAdminShutdownFromLoopback(t *testing.T) {
	srv := server.New(server.Config{Logger: discardLogger()})
	addr := serveOn(t, srv)
	p := dial(t, addr)
	p.line("shutdown graceful")
	p.expectText("OK\r\n")
	<-srv.Done()
	srv.Close()
}

func TestClosedConnectionsLeaveNoGoroutines(t *testing.T) {
	addr := startServer(t, server.Config{})
	admin := dial(t, addr)
	admin.sync()
	base := runtime.NumGoroutine()
	for range 20 {
		p := dial(t, addr)
		p.sync()
		p.nc.Close()
	}
	eventually(t, "the connections' goroutines to end", func() bool {
		return len(admin.admin("workers")) == 1 && runtime.NumGoroutine() <= base
	})
}
