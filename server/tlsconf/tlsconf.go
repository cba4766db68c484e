// Package tlsconf loads the server's TLS material (certificate chain,
// private key and the CA that signs client certificates) from PEM files and
// serves it to crypto/tls as a *tls.Config that can be reloaded while the
// server runs.
//
// Reload re-reads every file and, only when all of them load and the key
// matches the certificate, swaps the new material in atomically: handshakes
// that start afterwards use it, connections already established keep the
// session they negotiated. A failed Reload changes nothing and returns the
// error, so a half-written certificate never takes the server down.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// Files names the PEM files a Loader reads, and how client certificates are
// treated.
type Files struct {
	// Certificate is the server's certificate chain, leaf first. Required.
	Certificate string
	// Key is the private key of the leaf certificate. Required.
	Key string
	// CA holds the certificates that sign acceptable client certificates.
	// Required when ClientAuth verifies client certificates; otherwise it
	// is optional and, when given, must still parse.
	CA string
	// ClientAuth is tls.NoClientCert (the default),
	// tls.VerifyClientCertIfGiven (a client may present a certificate
	// signed by CA; one that does not verify fails the handshake) or
	// tls.RequireAndVerifyClientCert (every client must). Other values
	// are refused.
	ClientAuth tls.ClientAuthType
}

// Loader holds the currently loaded TLS material. It is safe for concurrent
// use: Config's handshakes and Reload may run at the same time.
type Loader struct {
	files Files
	cur   atomic.Pointer[material]
}

// material is one consistent load of the files: the config handshakes use.
type material struct {
	config *tls.Config
	leaf   *x509.Certificate
}

// Load reads the files and returns a Loader serving them. Every error names
// the file at fault.
func Load(f Files) (*Loader, error) {
	switch f.ClientAuth {
	case tls.NoClientCert, tls.VerifyClientCertIfGiven, tls.RequireAndVerifyClientCert:
	default:
		return nil, fmt.Errorf("tls: client authentication %v is not supported", f.ClientAuth)
	}
	if f.ClientAuth != tls.NoClientCert && f.CA == "" {
		return nil, errors.New("tls: verifying client certificates needs a CA file")
	}
	l := &Loader{files: f}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reload re-reads the files. On success later handshakes use the new
// material; on failure the previous material stays in use and the error is
// returned.
func (l *Loader) Reload() error {
	m, err := load(l.files)
	if err != nil {
		return err
	}
	l.cur.Store(m)
	return nil
}

// Config returns the *tls.Config to serve with (for tls.NewListener or
// tls.Server). Each handshake picks up the material current at its start.
// The returned config must not be modified.
func (l *Loader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.cur.Load().config, nil
		},
	}
}

// Leaf returns the server certificate currently served, for logs (its
// serial number and expiry).
func (l *Loader) Leaf() *x509.Certificate { return l.cur.Load().leaf }

func load(f Files) (*material, error) {
	if f.Certificate == "" || f.Key == "" {
		return nil, errors.New("tls: both a certificate file and a key file are needed")
	}
	certPEM, err := os.ReadFile(f.Certificate)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", f.Certificate, f.Key, err)
	}
	m := &material{
		leaf: pair.Leaf,
		config: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{pair},
			ClientAuth:   f.ClientAuth,
		},
	}
	if f.CA != "" {
		caPEM, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("tls: CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("tls: CA %s holds no PEM certificate", f.CA)
		}
		m.config.ClientCAs = pool
	}
	return m, nil
}

// VerifiedClient reports whether the peer of a completed handshake
// presented a client certificate that verified against the CA.
func VerifiedClient(cs tls.ConnectionState) bool {
	return cs.HandshakeComplete && len(cs.VerifiedChains) > 0
}
