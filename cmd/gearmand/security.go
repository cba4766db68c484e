package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
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

func addSecurityFlags(fs *pflag.FlagSet, v *securityFlags) {
	fs.BoolVar(&v.ssl, "ssl", false, "serve TLS on the port (needs --ssl-certificate and --ssl-key); SIGHUP reloads the files")
	fs.StringVar(&v.caFile, "ssl-ca-file", "", "PEM file of the CA that signs client certificates (env "+sslEnv.ca+")")
	fs.StringVar(&v.certificate, "ssl-certificate", "", "PEM file of the server's certificate chain (env "+sslEnv.certificate+")")
	fs.StringVar(&v.key, "ssl-key", "", "PEM file of the server's private key (env "+sslEnv.key+")")
	fs.StringVar(&v.verifyClient, "ssl-verify-client", verifyOff, "client certificates checked against --ssl-ca-file: off, require (the value when none is given) or if-given (write --ssl-verify-client=if-given); a verified client may run every admin command")
	fs.Lookup("ssl-verify-client").NoOptDefVal = verifyRequire
	fs.StringVar(&v.adminAllow, "admin-allow", "", "comma-separated CIDR networks or addresses, besides loopback and verified client certificates, allowed to run the admin commands that change state (shutdown, cancel job, create function, drop function, maxqueue)")
}

// tlsFiles validates the --ssl options: nil without --ssl. getenv supplies
// gearmand's environment variables for the files not given as options.
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
	if f.Certificate == "" || f.Key == "" {
		return nil, fmt.Errorf("--ssl: needs --ssl-certificate and --ssl-key (or %s and %s)", sslEnv.certificate, sslEnv.key)
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
		return nil, fmt.Errorf("--ssl-verify-client: needs --ssl-ca-file (or %s)", sslEnv.ca)
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
