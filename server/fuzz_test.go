package server_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"gearmand/protocol"
	"gearmand/server"
)

// fuzzConfig keeps fuzzed servers small: packets and queues reach their
// limits within the inputs the fuzzer makes.
func fuzzConfig() server.Config {
	return server.Config{
		HandlePrefix:   "H:fuzz",
		JobRetries:     -1,
		MaxPacketSize:  4096,
		MaxQueuedBytes: 1 << 20,
		Logger:         discardLogger(),
	}
}

// connectionSeeds are byte streams that reach each part of a connection:
// every request type, admin commands, framing errors, a job's whole life.
func connectionSeeds() [][]byte {
	req := func(t protocol.Type, args ...string) []byte {
		return protocol.AppendPacketStrings(nil, protocol.Req, t, args...)
	}
	seeds := [][]byte{
		bytes.Join([][]byte{
			req(protocol.CanDo, "f"), req(protocol.SubmitJob, "f", "u", "data"), req(protocol.GrabJobUniq),
			req(protocol.WorkStatus, "H:fuzz:1", "1", "2"), req(protocol.WorkData, "H:fuzz:1", "d"),
			req(protocol.WorkComplete, "H:fuzz:1", "r"), req(protocol.GetStatus, "H:fuzz:1"),
		}, nil),
		bytes.Join([][]byte{
			req(protocol.OptionReq, "exceptions"), req(protocol.CanDoTimeout, "g", "1"),
			req(protocol.SubmitJobBG, "g", "", "x"), req(protocol.SubmitJobEpoch, "g", "e", "1", "y"),
			req(protocol.SubmitReduceJob, "g", "r", "red", "", "z"), req(protocol.GrabJobAll),
			req(protocol.WorkException, "H:fuzz:1", "boom"), req(protocol.PreSleep), req(protocol.CantDo, "g"),
			req(protocol.ResetAbilities), req(protocol.GetStatusUnique, "r"), req(protocol.SetClientID, "me"),
		}, nil),
		[]byte("status\nworkers\nshow jobs\nshow unique jobs\nprioritystatus\nversion\ngetpid\nverbose\n"),
		[]byte("create function f\r\nmaxqueue f 1 2 3\r\ncancel job H:fuzz:1\r\ndrop function f\r\n"),
		append([]byte("version\n"), req(protocol.EchoReq, "hi")...),
		rawPacket("\x00REQ", uint32(protocol.EchoReq), strings.Repeat("z", 5000)),
		rawPacket("\x00RES", uint32(protocol.EchoReq), "x"),
		rawPacket("\x00REQ", 0, "junk"),
		rawPacket("\x00REQ", uint32(protocol.SubmitJob), "fn"),
		[]byte("\x00XYZ\x00\x00\x00\x01\x00\x00\x00\x00"),
		[]byte(strings.Repeat("a", 9000) + "\n"),
		[]byte("a b c d e f\n"),
	}
	for typ := protocol.Type(1); typ <= protocol.MaxType; typ++ {
		args := make([]string, typ.NumArgs())
		for i := range args {
			args[i] = "a"
		}
		seeds = append(seeds, req(typ, args...))
	}
	return seeds
}

// FuzzConnection feeds any bytes to a live server connection, then checks
// that the server closed it once the bytes ended, recovered no panic, and
// still serves a connection opened before them.
func FuzzConnection(f *testing.F) {
	for _, s := range connectionSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		srv := server.New(fuzzConfig())
		addr := serveOn(t, srv)
		bystander := dial(t, addr)
		bystander.send(protocol.CanDo, "bystander")
		bystander.sync()

		sendAndDrain(t, addr, data)
		if n := srv.Panics(); n != 0 {
			t.Fatalf("%d panics recovered serving %q", n, data)
		}
		if bytes.Contains(bytes.ToLower(data), []byte("shutdown")) {
			return // the admin command may have stopped the server
		}
		select {
		case <-srv.Done():
			t.Fatalf("the server stopped after %q", data)
		default:
		}
		bystander.sync()
		if got := statusOf(bystander, "bystander"); !strings.HasPrefix(got, "bystander\t") {
			t.Fatalf("status of the bystander's function: %q", got)
		}
	})
}

// sendAndDrain writes data on a new connection, half-closes it and reads
// every reply until the server closes the connection.
func sendAndDrain(t *testing.T, addr string, data []byte) {
	t.Helper()
	nc, err := dialOnce(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		nc.Write(data)
		nc.(*net.TCPConn).CloseWrite()
	}()
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatalf("reading the replies until the server closes: %v", err)
	}
}

// FuzzAdminLines sends lines of any text to the admin dispatcher and checks
// that each gets exactly one reply of the right shape (a listing ending in
// ".", or one OK or ERR line), in order, and that the connection and the
// server go on working.
func FuzzAdminLines(f *testing.F) {
	for _, s := range []string{
		"status", "STATUS\r", "workers", "prioritystatus", "show jobs", "show unique jobs", "show", "show x",
		"version", "getpid extra", "verbose", "maxqueue", "maxqueue f", "maxqueue f 1", "maxqueue f 1 2",
		"maxqueue f 1 2 3", "maxqueue f -1 x 99999999999999999999", "create function f\nstatus\ndrop function f",
		"create function", "drop function nope", "cancel job H:fuzz:1", "cancel job", "cancel x y", "cancel job a b",
		"", " ", " status", "a b c d e f", "bogus\r\nversion", "status\tx", "shutdown graceful nope",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Split(data, []byte("\n"))
		for _, l := range lines {
			if len(l) > 0 && l[0] == 0 {
				t.Skip("a line starting with NUL is a binary packet")
			}
			if tok, _ := protocol.Fields(bytes.TrimSuffix(l, []byte("\r")), nil); strings.EqualFold(string(tok[0]), "shutdown") {
				t.Skip("shutdown stops the server")
			}
		}
		srv := server.New(fuzzConfig())
		p := dial(t, serveOn(t, srv))
		var out []byte
		for _, l := range lines {
			out = append(append(out, l...), '\n')
		}
		p.write(out)
		for _, l := range lines {
			expectAdminReply(t, p, l)
		}
		p.line("version")
		p.expectText("OK " + server.Version + "\n")
		if n := srv.Panics(); n != 0 {
			t.Fatalf("%d panics recovered serving %q", n, data)
		}
	})
}

// expectAdminReply reads the reply to the admin line l and checks its
// shape: listings for the commands that list, one OK or ERR line otherwise.
func expectAdminReply(t *testing.T, p *peer, l []byte) {
	t.Helper()
	readLine := func() string {
		p.nc.SetReadDeadline(time.Now().Add(replyTimeout))
		s, err := p.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the reply to %q: %v (got %q)", l, err, s)
		}
		return s
	}
	line := bytes.TrimSuffix(l, []byte("\r"))
	tok, ok := protocol.Fields(line, nil)
	word := func(i int) string {
		if i < len(tok) {
			return strings.ToLower(string(tok[i]))
		}
		return ""
	}
	listing := ok && len(l)+1 <= protocol.DefaultMaxLineSize &&
		(word(0) == "status" || word(0) == "prioritystatus" || word(0) == "workers" ||
			word(0) == "show" && (len(tok) == 2 && word(1) == "jobs" || len(tok) == 3 && word(1) == "unique" && word(2) == "jobs"))
	if !listing {
		if s := readLine(); !strings.HasPrefix(s, "OK") && !strings.HasPrefix(s, "ERR ") {
			t.Fatalf("reply to %q: %q, want one OK or ERR line", l, s)
		}
		return
	}
	for {
		s := readLine()
		if s == ".\n" {
			return
		}
		if strings.HasPrefix(s, "OK") || strings.HasPrefix(s, "ERR ") {
			t.Fatalf("listing for %q holds %q", l, s)
		}
	}
}
