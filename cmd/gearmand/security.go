package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/pflag"

	"gearmand/server"
	"gearmand/server/tlsconf"
)

// securityFlags are gearmand's --ssl options and our --ssl-verify-client
// and --admin-allow, as parsed.
type securityFlags struct {
	ssl          bool
	caFile       string
	certificate  string
	key          string
	verifyClient string
	adminAllow   string
}

// Values of --ssl-verify-client. Given without a value it means
// verifyRequire.
const (
	verifyOff     = "off"
	verifyRequire = "require"
	verifyIfGiven = "if-given"
)

// sslEnv are the environment variables gearmand reads for its --ssl files,
// used here when the option is not given.
var sslEnv = struct{ ca, certificate, key string }{
	ca:          "GEARMAND_CA_CERTIFICATE",
	certificate: "GEARMAND_SERVER_PEM",
	key:         "GEARMAND_SERVER_KEY",
}

// defaultTLSFiles are C gearmand's --ssl files, used for each one that
// neither its option nor its environment variable names: gearmand 1.1.20
// builds them from $(sysconfdir)/ssl/certs (Makefile.am), /etc on Debian.
// The certificate and key must then exist; the CA file is used when it
// exists (gearmand only logs its absence). A variable so that tests need
// not write into /etc.
var defaultTLSFiles = struct{ ca, certificate, key string }{
	ca:          "/etc/ssl/certs/gearmand-ca.pem",
	certificate: "/etc/ssl/certs/gearmand.pem",
	key:         "/etc/ssl/certs/gearmand.key",
}

func addSecurityFlags(fs *pflag.FlagSet, v *securityFlags) {
	fs.BoolVar(&v.ssl, "ssl", false, "serve TLS on the port; SIGHUP reloads the files")
	fs.StringVar(&v.caFile, "ssl-ca-file", "", "PEM file of the CA that signs client certificates (env "+sslEnv.ca+"; default "+defaultTLSFiles.ca+" when it exists)")
	fs.StringVar(&v.certificate, "ssl-certificate", "", "PEM file of the server's certificate chain (env "+sslEnv.certificate+"; default "+defaultTLSFiles.certificate+")")
	fs.StringVar(&v.key, "ssl-key", "", "PEM file of the server's private key (env "+sslEnv.key+"; default "+defaultTLSFiles.key+")")
	fs.StringVar(&v.verifyClient, "ssl-verify-client", verifyOff, "client certificates checked against --ssl-ca-file: off, require (the value when none is given) or if-given (write --ssl-verify-client=if-given); a verified client may run every admin command")
	fs.Lookup("ssl-verify-client").NoOptDefVal = verifyRequire
	fs.StringVar(&v.adminAllow, "admin-allow", "", "comma-separated CIDR networks or addresses, besides loopback and verified client certificates, allowed to run the admin commands that change state (shutdown, cancel job, create function, drop function, maxqueue)")
}

// tlsFiles validates the --ssl options: nil without --ssl. getenv supplies
// gearmand's environment variables for the files not given as options, and
// defaultTLSFiles those named by neither.
func (v *securityFlags) tlsFiles(fs *pflag.FlagSet, getenv func(string) string) (*tlsconf.Files, error) {
	if !v.ssl {
		for _, name := range []string{"ssl-ca-file", "ssl-certificate", "ssl-key", "ssl-verify-client"} {
			if fs.Changed(name) {
				return nil, fmt.Errorf("--%s: needs --ssl", name)
			}
		}
		return nil, nil
	}
	f := &tlsconf.Files{Certificate: v.certificate, Key: v.key, CA: v.caFile}
	for _, s := range []struct {
		option, env string
		value       *string
	}{
		{"ssl-ca-file", sslEnv.ca, &f.CA},
		{"ssl-certificate", sslEnv.certificate, &f.Certificate},
		{"ssl-key", sslEnv.key, &f.Key},
	} {
		if !fs.Changed(s.option) {
			*s.value = getenv(s.env)
		}
		if fs.Changed(s.option) && *s.value == "" {
			return nil, fmt.Errorf("--%s: empty file name", s.option)
		}
	}
	for _, d := range []struct {
		value *string
		path  string
	}{
		{&f.Certificate, defaultTLSFiles.certificate},
		{&f.Key, defaultTLSFiles.key},
	} {
		if *d.value != "" {
			continue
		}
		if _, err := os.Stat(d.path); err != nil {
			return nil, fmt.Errorf("--ssl: needs --ssl-certificate and --ssl-key (or %s and %s), or gearmand's default files %s and %s: %w",
				sslEnv.certificate, sslEnv.key, defaultTLSFiles.certificate, defaultTLSFiles.key, err)
		}
		*d.value = d.path
	}
	if f.CA == "" {
		if _, err := os.Stat(defaultTLSFiles.ca); err == nil {
			f.CA = defaultTLSFiles.ca
		}
	}
	switch v.verifyClient {
	case verifyOff:
		f.ClientAuth = tls.NoClientCert
	case verifyRequire:
		f.ClientAuth = tls.RequireAndVerifyClientCert
	case verifyIfGiven:
		f.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		return nil, fmt.Errorf("--ssl-verify-client: %q is not off, require or if-given", v.verifyClient)
	}
	if f.ClientAuth != tls.NoClientCert && f.CA == "" {
		return nil, fmt.Errorf("--ssl-verify-client: needs --ssl-ca-file (or %s, or gearmand's default file %s)", sslEnv.ca, defaultTLSFiles.ca)
	}
	return f, nil
}

// adminNetworks validates --admin-allow.
func (v *securityFlags) adminNetworks() ([]netip.Prefix, error) {
	allow, err := server.ParseAdminAllow(v.adminAllow)
	if err != nil {
		return nil, fmt.Errorf("--admin-allow: %w", err)
	}
	return allow, nil
}

// loadTLS loads the TLS files named by the options, or returns nil without
// --ssl.
func loadTLS(f *tlsconf.Files) (*tlsconf.Loader, error) {
	if f == nil {
		return nil, nil
	}
	l, err := tlsconf.Load(*f)
	if err != nil {
		return nil, fmt.Errorf("--ssl: %w", err)
	}
	return l, nil
}

// certificateAttrs are the log attributes that tell which certificate is
// served: its serial number (hex, as openssl prints it) and its expiry.
func certificateAttrs(c *x509.Certificate) []any {
	return []any{"serial", c.SerialNumber.Text(16), "not_after", c.NotAfter.UTC().Format(time.RFC3339)}
}
