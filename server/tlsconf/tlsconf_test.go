package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gearmand/server/tlsconf"
	"gearmand/server/tlsconf/tlstest"
)

// handshake is what one connection to a Loader's config saw on each side.
type handshake struct {
	serverSerial   *big.Int // the certificate the client was shown
	serverErr      error    // the server's handshake error
	clientErr      error    // the client's handshake or first read error
	verifiedClient bool
}

// connect serves one connection with l's config on 127.0.0.1 and
// handshakes with it as a client trusting ca and presenting clientCert
// (nil for none).
func connect(t *testing.T, l *tlsconf.Loader, ca *tlstest.CA, clientCert *tls.Certificate) handshake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		err      error
		verified bool
	}
	served := make(chan result, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			served <- result{err: err}
			return
		}
		defer nc.Close()
		tc := tls.Server(nc, l.Config())
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			served <- result{err: err}
			return
		}
		// Send a byte so that the client learns, on its first read, whether
		// the server accepted it (TLS 1.3 reports a refused client
		// certificate only then).
		_, err = tc.Write([]byte{'!'})
		served <- result{err: err, verified: tlsconf.VerifiedClient(tc.ConnectionState())}
	}()

	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if clientCert != nil {
		// Offer it whatever CAs the server names, so that a certificate
		// from the wrong CA really is presented and refused.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return clientCert, nil }
	}
	var h handshake
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
	if err == nil {
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		h.serverSerial = nc.ConnectionState().PeerCertificates[0].SerialNumber
		_, err = io.ReadFull(nc, make([]byte, 1))
		nc.Close()
	}
	h.clientErr = err
	r := <-served
	h.serverErr, h.verifiedClient = r.err, r.verified
	return h
}

// serving is a CA, a server certificate it issued, written to files in
// dir, and a Loader serving them.
type serving struct {
	ca                *tlstest.CA
	leaf              *tlstest.Leaf
	dir               string
	certFile, keyFile string
	loader            *tlsconf.Loader
}

func newServing(t *testing.T) *serving {
	t.Helper()
	s := &serving{ca: tlstest.NewCA(t, "test CA"), dir: t.TempDir()}
	s.leaf = s.ca.Server(t)
	s.certFile, s.keyFile = s.leaf.WriteFiles(t, s.dir, "server")
	var err error
	if s.loader, err = tlsconf.Load(tlsconf.Files{Certificate: s.certFile, Key: s.keyFile}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServe(t *testing.T) {
	s := newServing(t)
	ca, leaf, l := s.ca, s.leaf, s.loader
	if l.Leaf().SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Errorf("Leaf serial %v, want %v", l.Leaf().SerialNumber, leaf.Cert.SerialNumber)
	}
	h := connect(t, l, ca, nil)
	if h.clientErr != nil || h.serverErr != nil {
		t.Fatalf("handshake: client %v, server %v", h.clientErr, h.serverErr)
	}
	if h.serverSerial.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Errorf("client saw serial %v, want %v", h.serverSerial, leaf.Cert.SerialNumber)
	}
	if h.verifiedClient {
		t.Error("a client without a certificate counts as verified")
	}

	// A client that does not trust the CA refuses the server.
	if h := connect(t, l, tlstest.NewCA(t, "other CA"), nil); h.clientErr == nil {
		t.Error("a client trusting another CA accepted the server")
	}

	// Below TLS 1.2 is refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			tls.Server(nc, l.Config()).Handshake()
			nc.Close()
		}
	}()
	old := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", ln.Addr().String(), old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

func TestReload(t *testing.T) {
	s := newServing(t)
	ca, dir, first, certFile, keyFile, l := s.ca, s.dir, s.leaf, s.certFile, s.keyFile, s.loader

	second := ca.Server(t)
	second.WriteFiles(t, dir, "server")
	if h := connect(t, l, ca, nil); h.serverSerial == nil || h.serverSerial.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("before Reload the client saw %v (err %v), want the first serial %v", h.serverSerial, h.clientErr, first.Cert.SerialNumber)
	}
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if h := connect(t, l, ca, nil); h.serverSerial == nil || h.serverSerial.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("after Reload the client saw %v (err %v), want the second serial %v", h.serverSerial, h.clientErr, second.Cert.SerialNumber)
	}

	// A failed reload keeps serving the second certificate.
	third := ca.Server(t)
	for _, tc := range []struct {
		name    string
		prepare func()
		want    string
	}{
		{"garbage key", func() { os.WriteFile(keyFile, []byte("not a key"), 0o600) }, keyFile},
		{"key of another certificate", func() {
			third.WriteFiles(t, dir, "server")
			os.WriteFile(keyFile, ca.Server(t).KeyPEM, 0o600)
		}, "private key does not match"},
		{"missing certificate", func() { os.Remove(certFile) }, certFile},
	} {
		tc.prepare()
		err := l.Reload()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Reload = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
		if h := connect(t, l, ca, nil); h.serverSerial == nil || h.serverSerial.Cmp(second.Cert.SerialNumber) != 0 {
			t.Errorf("%s: after the failed Reload the client saw %v (err %v), want the second serial", tc.name, h.serverSerial, h.clientErr)
		}
		if l.Leaf().SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
			t.Errorf("%s: Leaf changed on a failed Reload", tc.name)
		}
	}
}

func TestClientCertificates(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	other := tlstest.NewCA(t, "another CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "server")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	good := ca.Client(t, "admin").Pair
	stranger := other.Client(t, "stranger").Pair

	for _, tc := range []struct {
		auth       tls.ClientAuthType
		cert       *tls.Certificate
		ok, verify bool
	}{
		{tls.RequireAndVerifyClientCert, nil, false, false},
		{tls.RequireAndVerifyClientCert, &stranger, false, false},
		{tls.RequireAndVerifyClientCert, &good, true, true},
		{tls.VerifyClientCertIfGiven, nil, true, false},
		{tls.VerifyClientCertIfGiven, &stranger, false, false},
		{tls.VerifyClientCertIfGiven, &good, true, true},
		{tls.NoClientCert, &good, true, false},
	} {
		name := tc.auth.String()
		if tc.cert != nil {
			name += " with " + tc.cert.Leaf.Subject.CommonName
		}
		t.Run(name, func(t *testing.T) {
			l, err := tlsconf.Load(tlsconf.Files{Certificate: certFile, Key: keyFile, CA: caFile, ClientAuth: tc.auth})
			if err != nil {
				t.Fatal(err)
			}
			h := connect(t, l, ca, tc.cert)
			if ok := h.serverErr == nil && h.clientErr == nil; ok != tc.ok {
				t.Fatalf("handshake accepted = %v, want %v (client %v, server %v)", ok, tc.ok, h.clientErr, h.serverErr)
			}
			if h.verifiedClient != tc.verify {
				t.Errorf("VerifiedClient = %v, want %v", h.verifiedClient, tc.verify)
			}
		})
	}

	// Reload picks up a new CA: the stranger's CA replaces ours.
	l, err := tlsconf.Load(tlsconf.Files{Certificate: certFile, Key: keyFile, CA: caFile, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	other.WriteFile(t, dir, "ca.pem")
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if h := connect(t, l, ca, &stranger); h.serverErr != nil || !h.verifiedClient {
		t.Errorf("after reloading the CA, the new CA's client was refused: %v", h.serverErr)
	}
	if h := connect(t, l, ca, &good); h.serverErr == nil {
		t.Error("after reloading the CA, the old CA's client was still accepted")
	}
}

func TestLoadErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "server")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("-----BEGIN NOTHING-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name  string
		files tlsconf.Files
		want  string
	}{
		{"no certificate", tlsconf.Files{Key: keyFile}, "both a certificate file and a key file"},
		{"no key", tlsconf.Files{Certificate: certFile}, "both a certificate file and a key file"},
		{"missing certificate", tlsconf.Files{Certificate: missing, Key: keyFile}, missing},
		{"missing key", tlsconf.Files{Certificate: certFile, Key: missing}, missing},
		{"junk certificate", tlsconf.Files{Certificate: junk, Key: keyFile}, junk},
		{"certificate as key", tlsconf.Files{Certificate: certFile, Key: certFile}, certFile},
		{"missing CA", tlsconf.Files{Certificate: certFile, Key: keyFile, CA: missing}, missing},
		{"junk CA", tlsconf.Files{Certificate: certFile, Key: keyFile, CA: junk}, "no PEM certificate"},
		{"verify without CA", tlsconf.Files{Certificate: certFile, Key: keyFile, ClientAuth: tls.RequireAndVerifyClientCert}, "needs a CA file"},
		{"unsupported client auth", tlsconf.Files{Certificate: certFile, Key: keyFile, CA: caFile, ClientAuth: tls.RequireAnyClientCert}, "not supported"},
	} {
		l, err := tlsconf.Load(tc.files)
		if err == nil || l != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Load = %v, %v; want an error mentioning %q", tc.name, l, err, tc.want)
		}
	}
	if _, err := tlsconf.Load(tlsconf.Files{Certificate: missing, Key: keyFile}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v does not wrap os.ErrNotExist", err)
	}
}

// A client certificate signed by the CA but issued for the wrong purpose
// (server authentication only) is not accepted as a client's.
func TestClientCertificatePurpose(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t).WriteFiles(t, dir, "server")
	l, err := tlsconf.Load(tlsconf.Files{Certificate: certFile, Key: keyFile, CA: ca.WriteFile(t, dir, "ca.pem"), ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	serverOnly := ca.Server(t).Pair
	if usage := serverOnly.Leaf.ExtKeyUsage; len(usage) != 1 || usage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("test certificate usage %v", usage)
	}
	if h := connect(t, l, ca, &serverOnly); h.serverErr == nil {
		t.Error("a server-only certificate was accepted as a client certificate")
	}
}
