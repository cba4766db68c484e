package server_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gearmand/server"
	"gearmand/server/tlsconf"
	"gearmand/server/tlsconf/tlstest"
)

func TestAdminPermitted(t *testing.T) {
	allow, err := server.ParseAdminAllow("10.0.0.0/8, 2001:db8::/32, 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		peer     string // "" is no IP at all
		verified bool
		allow    []netip.Prefix
		want     bool
	}{
		{"127.0.0.1", false, nil, true},
		{"127.8.9.10", false, nil, true},
		{"::1", false, nil, true},
		{"::ffff:127.0.0.1", false, nil, true},
		{"192.0.2.1", false, nil, false},
		{"192.0.2.1", true, nil, true},
		{"", false, nil, false},
		{"", true, nil, true},
		{"10.1.2.3", false, allow, true},
		{"::ffff:10.1.2.3", false, allow, true},
		{"11.1.2.3", false, allow, false},
		{"2001:db8:1::5", false, allow, true},
		{"2001:db9::5", false, allow, false},
		{"192.0.2.7", false, allow, true},
		{"192.0.2.8", false, allow, false},
		{"fe80::1%eth0", false, []netip.Prefix{netip.MustParsePrefix("fe80::/10")}, true},
	} {
		var peer netip.Addr
		if tc.peer != "" {
			peer = netip.MustParseAddr(tc.peer)
		}
		if got := server.AdminPermitted(peer, tc.verified, tc.allow); got != tc.want {
			t.Errorf("AdminPermitted(%q, verified %v, %v) = %v, want %v", tc.peer, tc.verified, tc.allow, got, tc.want)
		}
	}
}

func TestParseAdminAllow(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the prefixes joined by ","; "ERR:..." for an error holding the text
	}{
		{"", ""},
		{"  ", ""},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.0.2.7", "192.0.2.7/32"},
		{" 10.0.0.0/8 , fd00::/8 ,::1", "10.0.0.0/8,fd00::/8,::1/128"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"10.0.0.0/33", `ERR:"10.0.0.0/33" is not an address or CIDR network`},
		{"example.com", `ERR:"example.com" is not an address or CIDR network`},
		{"10.0.0.0/8,", "ERR:empty entry"},
		{",10.0.0.0/8", "ERR:empty entry"},
		{"fe80::1%eth0", "ERR:is not an address"},
		{"::ffff:0.0.0.0/64", "ERR:needs at least 96 bits"},
	} {
		got, err := server.ParseAdminAllow(tc.in)
		if strings.HasPrefix(tc.want, "ERR:") {
			if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "ERR:")) {
				t.Errorf("ParseAdminAllow(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.want)
			}
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if err != nil || strings.Join(s, ",") != tc.want {
			t.Errorf("ParseAdminAllow(%q) = %v, %v; want %s", tc.in, s, err, tc.want)
		}
	}
}

// nonLoopbackIP returns an address of this machine that is not a loopback
// one, so that a connection from it to itself reaches the server as a
// non-loopback peer. It skips the test when the machine has none.
func nonLoopbackIP(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ip, ok := netip.AddrFromSlice(n.IP)
			if ok && ip.Unmap().Is4() && ip.IsGlobalUnicast() {
				return ip.Unmap()
			}
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to test admin access from; AdminPermitted's table covers the policy")
	return netip.Addr{}
}

// listenOn listens on ip:0.
func listenOn(t *testing.T, ip netip.Addr) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// stateChanging are admin commands that change state, each with the word
// its refusal names.
var stateChanging = []struct{ cmd, word string }{
	{"shutdown", "shutdown"},
	{"shutdown graceful", "shutdown"},
	{"SHUTDOWN", "shutdown"},
	{"cancel job H:test:1", "cancel"},
	{"create function f", "create"},
	{"drop function f", "drop"},
	{"maxqueue f 1", "maxqueue"},
}

func denied(word string) string {
	return "ERR PERMISSION_DENIED " + word + "+is+only+accepted+from+loopback,+--admin-allow+networks+or+verified+client+certificates\r\n"
}

// checkReadOnlyOpen checks that the read-only admin commands answer.
func checkReadOnlyOpen(t *testing.T, p *peer) {
	t.Helper()
	p.admin("status")
	p.admin("prioritystatus")
	p.admin("workers")
	p.admin("show jobs")
	p.admin("show unique jobs")
	p.line("version")
	p.expectText("OK " + server.Version + "\n")
	p.line("verbose")
	p.expectText("OK ERROR\n")
}

func TestAdminAccessFromOtherAddresses(t *testing.T) {
	ip := nonLoopbackIP(t)

	t.Run("refused", func(t *testing.T) {
		srv := server.New(server.Config{Logger: discardLogger(), HandlePrefix: "H:test"})
		l := listenOn(t, ip)
		serveListener(t, srv, l)
		p := dial(t, l.Addr().String())
		for _, c := range stateChanging {
			p.line(c.cmd)
			p.expectText(denied(c.word))
		}
		checkReadOnlyOpen(t, p)
		if got := p.admin("status"); len(got) != 0 {
			t.Errorf("a refused command changed the functions: %q", got)
		}
		select {
		case <-srv.Done():
			t.Fatal("a refused shutdown stopped the server")
		default:
		}
	})

	t.Run("allowed by --admin-allow", func(t *testing.T) {
		srv := server.New(server.Config{Logger: discardLogger(), HandlePrefix: "H:test",
			AdminAllow: []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}})
		l := listenOn(t, ip)
		serveListener(t, srv, l)
		p := dial(t, l.Addr().String())
		checkStateChangesAllowed(t, p)
		p.line("shutdown")
		p.expectText("OK\r\n")
		<-srv.Done()
	})

	t.Run("allowed by a client certificate", func(t *testing.T) {
		ca := tlstest.NewCA(t, "test CA")
		dir := t.TempDir()
		certFile, keyFile := ca.Server(t, ip.AsSlice()).WriteFiles(t, dir, "server")
		loader, err := tlsconf.Load(tlsconf.Files{Certificate: certFile, Key: keyFile,
			CA: ca.WriteFile(t, dir, "ca.pem"), ClientAuth: tls.VerifyClientCertIfGiven})
		if err != nil {
			t.Fatal(err)
		}
		srv := server.New(server.Config{Logger: discardLogger(), HandlePrefix: "H:test"})
		l := listenOn(t, ip)
		serveListener(t, srv, tls.NewListener(l, loader.Config()))
		addr := l.Addr().String()

		anonymous := dialTLS(t, addr, &tls.Config{RootCAs: ca.Pool()})
		anonymous.line("create function f")
		anonymous.expectText(denied("create"))
		checkReadOnlyOpen(t, anonymous)

		admin := dialTLS(t, addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Client(t, "admin").Pair}})
		checkStateChangesAllowed(t, admin)
	})
}

// checkStateChangesAllowed runs each state-changing command but shutdown
// and checks its ordinary reply.
func checkStateChangesAllowed(t *testing.T, p *peer) {
	t.Helper()
	p.line("create function f")
	p.expectText("OK\r\n")
	p.line("maxqueue f 1")
	p.expectText("OK\r\n")
	p.line("cancel job H:test:1")
	p.expectText("ERR UNKNOWN_JOB\r\n")
	p.line("drop function f")
	p.expectText("OK\r\n")
}

// dialTLS connects to addr over TLS with cfg and completes the handshake.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) *peer {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: replyTimeout}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &peer{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func TestTLSConnections(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "server")
	loader, err := tlsconf.Load(tlsconf.Files{Certificate: certFile, Key: keyFile,
		CA: ca.WriteFile(t, dir, "ca.pem"), ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	// Short enough to be seen within replyTimeout, long enough for the
	// honest handshakes on a busy machine.
	srv := server.New(server.Config{Logger: discardLogger(), HandlePrefix: "H:test", TLSHandshakeTimeout: 2 * time.Second})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, srv, tls.NewListener(l, loader.Config()))
	addr := l.Addr().String()
	withCert := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Client(t, "worker").Pair}}

	good := dialTLS(t, addr, withCert)
	good.sync()

	// A peer that opens TCP and never handshakes is dropped once the
	// handshake timeout passes; meanwhile others are served.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	other := dialTLS(t, addr, withCert)
	other.sync()
	expectDropped(t, stalled)

	// A client without a certificate fails its handshake (TLS 1.3 tells it
	// on its first read) and only its own connection is closed.
	anonymous, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool()})
	if err == nil {
		anonymous.Write([]byte("version\n"))
		expectDropped(t, anonymous)
		anonymous.Close()
	}
	good.sync()

	// The server sees TLS connections' descriptors, as for plain ones.
	for _, w := range good.admin("workers") {
		if strings.HasPrefix(w, "-1 ") {
			t.Errorf("a TLS connection is listed without its descriptor: %q", w)
		}
	}
	// The server forgets a failed handshake's connection just after the
	// alert it sent, which the client may read first: wait for it.
	n := 0
	for deadline := time.Now().Add(replyTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n = len(good.admin("workers")); n == 2 {
			break
		}
	}
	if n != 2 {
		t.Errorf("workers lists %d connections, want the 2 that handshook", n)
	}
}

// expectDropped checks that the server closes nc without sending it
// anything readable: a read ends in an error that is not our own deadline.
func expectDropped(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(replyTimeout))
	buf := make([]byte, 64)
	n, err := nc.Read(buf)
	var ne net.Error
	switch {
	case err == nil:
		t.Fatalf("the server answered %q instead of closing", buf[:n])
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("the server did not close the connection within %v", replyTimeout)
	}
}
