package client

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"testing"

	"gearmand/server"
	"gearmand/server/tlsconf"
	"gearmand/server/tlsconf/tlstest"
)

// startTLSServer runs this module's server behind a TLS listener whose
// certificate ca signed, and returns its address.
func startTLSServer(t *testing.T, ca *tlstest.CA) string {
	t.Helper()
	certFile, keyFile := ca.Server(t).WriteFiles(t, t.TempDir(), "server")
	loader, err := tlsconf.Load(tlsconf.Files{Certificate: certFile, Key: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Config{JobRetries: -1, Logger: slog.New(slog.DiscardHandler)})
	served := make(chan error, 1)
	go func() { served <- s.Serve(tls.NewListener(l, loader.Config())) }()
	t.Cleanup(func() {
		s.Close()
		<-served
	})
	return l.Addr().String()
}

func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	addr := startTLSServer(t, ca)
	ctx := testCtx(t)
	cfg := &tls.Config{RootCAs: ca.Pool()}

	w, err := NewWorker(ctx, addr, WithTLS(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Register("reverse", func(_ context.Context, job *Job) ([]byte, error) {
		return []byte(reverseString(string(job.Data))), nil
	}); err != nil {
		t.Fatal(err)
	}
	go w.Work(ctx)

	c, err := Dial(ctx, addr, WithTLS(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Call(ctx, "reverse", "", []byte("over tls"), Normal)
	if err != nil || string(out) != "slt revo" {
		t.Fatalf("Call over TLS = %q, %v", out, err)
	}

	// A client that does not trust the server's CA fails in Dial.
	if c, err := Dial(ctx, addr, WithTLS(&tls.Config{RootCAs: tlstest.NewCA(t, "other").Pool()})); err == nil {
		c.Close()
		t.Error("Dial trusting another CA succeeded")
	}

	// A plain client is disconnected by the server's failed handshake.
	plain, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Echo(ctx, []byte("x")); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Echo without TLS = %v, want ErrConnectionLost", err)
	}
}
