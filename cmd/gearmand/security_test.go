package main

import (
	"bufio"
	"crypto/tls"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"gearmand/internal/testdep"
	"gearmand/server"
	"gearmand/server/tlsconf"
	"gearmand/server/tlsconf/tlstest"
)

// useDefaultTLSFiles points gearmand's default --ssl files into dir (as
// gearmand.pem, gearmand.key and gearmand-ca.pem) until the test ends, so
// that no test reads the machine's /etc/ssl/certs.
func useDefaultTLSFiles(t *testing.T, dir string) {
	t.Helper()
	saved := defaultTLSFiles
	t.Cleanup(func() { defaultTLSFiles = saved })
	defaultTLSFiles.ca = filepath.Join(dir, "gearmand-ca.pem")
	defaultTLSFiles.certificate = filepath.Join(dir, "gearmand.pem")
	defaultTLSFiles.key = filepath.Join(dir, "gearmand.key")
}

func TestSecurityOptions(t *testing.T) {
	useDefaultTLSFiles(t, t.TempDir())
	sslEnvSet := env("GEARMAND_CA_CERTIFICATE", "/env/ca.pem", "GEARMAND_SERVER_PEM", "/env/server.pem", "GEARMAND_SERVER_KEY", "/env/server.key")
	for _, tc := range []struct {
		name  string
		args  []string
		env   func(string) string
		tls   *tlsconf.Files
		allow string
	}{
		{"off", nil, env(), nil, ""},
		{"env without --ssl is ignored", nil, sslEnvSet, nil, ""},
		{"options", []string{"--ssl", "--ssl-certificate", "/c.pem", "--ssl-key=/k.pem"}, env(),
			&tlsconf.Files{Certificate: "/c.pem", Key: "/k.pem"}, ""},
		{"environment", []string{"--ssl"}, sslEnvSet,
			&tlsconf.Files{Certificate: "/env/server.pem", Key: "/env/server.key", CA: "/env/ca.pem"}, ""},
		{"options win over the environment", []string{"--ssl", "--ssl-key", "/k.pem", "--ssl-ca-file", "/ca.pem"}, sslEnvSet,
			&tlsconf.Files{Certificate: "/env/server.pem", Key: "/k.pem", CA: "/ca.pem"}, ""},
		{"verify client", []string{"--ssl", "--ssl-verify-client", "--ssl-ca-file", "/ca.pem"}, sslEnvSet,
			&tlsconf.Files{Certificate: "/env/server.pem", Key: "/env/server.key", CA: "/ca.pem", ClientAuth: tls.RequireAndVerifyClientCert}, ""},
		{"verify client if given", []string{"--ssl", "--ssl-verify-client=if-given"}, sslEnvSet,
			&tlsconf.Files{Certificate: "/env/server.pem", Key: "/env/server.key", CA: "/env/ca.pem", ClientAuth: tls.VerifyClientCertIfGiven}, ""},
		{"verify client off", []string{"--ssl", "--ssl-verify-client=off"}, sslEnvSet,
			&tlsconf.Files{Certificate: "/env/server.pem", Key: "/env/server.key", CA: "/env/ca.pem"}, ""},
		{"admin allow", []string{"--admin-allow", "10.0.0.0/8,192.0.2.7"}, env(), nil, "10.0.0.0/8,192.0.2.7/32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.tls, tc.tls) {
				t.Errorf("tls = %+v, want %+v", o.tls, tc.tls)
			}
			var got []string
			for _, p := range o.serverConfig(nil).AdminAllow {
				got = append(got, p.String())
			}
			if strings.Join(got, ",") != tc.allow {
				t.Errorf("AdminAllow = %v, want %s", got, tc.allow)
			}
		})
	}

	// The config file takes them too, the command line winning.
	conf := writeConfig(t, "--ssl --ssl-certificate /conf.pem --ssl-key /conf.key --ssl-verify-client=if-given --ssl-ca-file /ca.pem --admin-allow 10.0.0.0/8\n")
	o, err := parseOptions([]string{"--config-file", conf, "--ssl-verify-client", "--admin-allow=fd00::/8"}, env())
	if err != nil {
		t.Fatal(err)
	}
	want := &tlsconf.Files{Certificate: "/conf.pem", Key: "/conf.key", CA: "/ca.pem", ClientAuth: tls.RequireAndVerifyClientCert}
	if !reflect.DeepEqual(o.tls, want) || !reflect.DeepEqual(o.adminAllow, []netip.Prefix{netip.MustParsePrefix("fd00::/8")}) {
		t.Errorf("from the config file: tls %+v, admin allow %v", o.tls, o.adminAllow)
	}
}

func TestSecurityOptionErrors(t *testing.T) {
	useDefaultTLSFiles(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string
	}{
		{[]string{"--ssl-certificate", "/c.pem"}, env(), "--ssl-certificate: needs --ssl"},
		{[]string{"--ssl-verify-client"}, env(), "--ssl-verify-client: needs --ssl"},
		{[]string{"--ssl"}, env(), "--ssl: needs --ssl-certificate and --ssl-key (or GEARMAND_SERVER_PEM and GEARMAND_SERVER_KEY)"},
		{[]string{"--ssl", "--ssl-certificate", "/c.pem"}, env(), "--ssl: needs --ssl-certificate and --ssl-key"},
		{[]string{"--ssl", "--ssl-certificate", "", "--ssl-key", "/k"}, env("GEARMAND_SERVER_PEM", "/c.pem"), "--ssl-certificate: empty file name"},
		{[]string{"--ssl", "--ssl-certificate", "/c", "--ssl-key", "/k", "--ssl-verify-client"}, env(), "--ssl-verify-client: needs --ssl-ca-file (or GEARMAND_CA_CERTIFICATE, or gearmand's default file "},
		{[]string{"--ssl", "--ssl-certificate", "/c", "--ssl-key", "/k", "--ssl-verify-client=maybe"}, env(), `--ssl-verify-client: "maybe" is not off, require or if-given`},
		{[]string{"--admin-allow", "10.0.0.0/33"}, env(), `--admin-allow: "10.0.0.0/33" is not an address or CIDR network`},
		{[]string{"--admin-allow", "10.0.0.0/8,,fd00::/8"}, env(), "--admin-allow: empty entry"},
		{[]string{"--admin-allow", "intranet"}, env(), `--admin-allow: "intranet" is not an address or CIDR network`},
	} {
		if o, err := parseOptions(tc.args, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseOptions(%q) = %+v, %v; want an error containing %q", tc.args, o, err, tc.want)
		}
	}
}

// TestSSLDefaultFiles: --ssl with no file named by an option or the
// environment uses gearmand's default files, each one on its own; the CA
// file only when it exists. Missing defaults are refused with a message
// that names them.
func TestSSLDefaultFiles(t *testing.T) {
	dir := t.TempDir()
	useDefaultTLSFiles(t, dir)
	ca := tlstest.NewCA(t, "test CA")
	leaf := ca.Server(t)
	certFile, keyFile := leaf.WriteFiles(t, t.TempDir(), "server")
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	parse := func(args ...string) (*tlsconf.Files, error) {
		o, err := parseOptions(args, env())
		if err != nil {
			return nil, err
		}
		return o.tls, nil
	}
	wantError := func(args []string, want ...string) {
		t.Helper()
		f, err := parse(args...)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("parseOptions(%q) = %+v, %v; want an error containing %q", args, f, err, w)
			}
		}
	}
	def := defaultTLSFiles

	wantError([]string{"--ssl"}, "--ssl: needs --ssl-certificate and --ssl-key (or GEARMAND_SERVER_PEM and GEARMAND_SERVER_KEY), or gearmand's default files "+def.certificate+" and "+def.key, "no such file or directory")
	copyFile(certFile, def.certificate)
	wantError([]string{"--ssl"}, def.key+": no such file or directory")
	copyFile(keyFile, def.key)

	f, err := parse("--ssl")
	if want := (&tlsconf.Files{Certificate: def.certificate, Key: def.key}); err != nil || !reflect.DeepEqual(f, want) {
		t.Fatalf("--ssl with the default certificate and key: %+v, %v; want %+v", f, err, want)
	}
	l, err := loadTLS(f)
	if err != nil {
		t.Fatalf("loading the default files: %v", err)
	}
	if got := l.Leaf().SerialNumber; got.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Errorf("serving serial %v, want the default file's %v", got, leaf.Cert.SerialNumber)
	}
	wantError([]string{"--ssl", "--ssl-verify-client"}, "--ssl-verify-client: needs --ssl-ca-file (or GEARMAND_CA_CERTIFICATE, or gearmand's default file "+def.ca+")")

	ca.WriteFile(t, dir, filepath.Base(def.ca))
	f, err = parse("--ssl", "--ssl-verify-client")
	if want := (&tlsconf.Files{Certificate: def.certificate, Key: def.key, CA: def.ca, ClientAuth: tls.RequireAndVerifyClientCert}); err != nil || !reflect.DeepEqual(f, want) {
		t.Fatalf("--ssl with every default file: %+v, %v; want %+v", f, err, want)
	}
	if _, err := loadTLS(f); err != nil {
		t.Fatalf("loading the default files with the CA: %v", err)
	}

	// Options and the environment still win, one file at a time.
	o, err := parseOptions([]string{"--ssl", "--ssl-key", "/k.pem"}, env("GEARMAND_CA_CERTIFICATE", "/env/ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (&tlsconf.Files{Certificate: def.certificate, Key: "/k.pem", CA: "/env/ca.pem"}); !reflect.DeepEqual(o.tls, want) {
		t.Errorf("--ssl --ssl-key with the CA from the environment: %+v, want %+v", o.tls, want)
	}
}

// tlsSerial handshakes with the server at addr, trusting ca, and returns
// the serial number of the certificate it presents.
func tlsSerial(t *testing.T, addr string, ca *tlstest.CA) *big.Int {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func TestBinaryTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildGearmand(t)
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir, "ca.pem")
	first := ca.Server(t)
	certFile, keyFile := first.WriteFiles(t, dir, "server")

	t.Run("bad options exit 1", func(t *testing.T) {
		type badOptions struct {
			args []string
			want string
		}
		cases := []badOptions{
			{[]string{"--admin-allow", "10.0.0.0/33"}, `gearmand: --admin-allow: "10.0.0.0/33" is not an address or CIDR network`},
			{[]string{"-q", "builtin", "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(t.TempDir(), "pid"),
				"--ssl", "--ssl-certificate", filepath.Join(dir, "missing.pem"), "--ssl-key", keyFile}, "missing.pem: no such file or directory"},
		}
		// The binary's defaults are the machine's own files.
		if _, err := os.Stat(defaultTLSFiles.certificate); err != nil {
			cases = append(cases, badOptions{[]string{"--ssl", "--ssl-key", keyFile},
				"gearmand: --ssl: needs --ssl-certificate and --ssl-key (or GEARMAND_SERVER_PEM and GEARMAND_SERVER_KEY), or gearmand's default files " + defaultTLSFiles.certificate})
		}
		for _, tc := range cases {
			stdout, stderr, status := runGearmand(t, bin, tc.args...)
			if status != 1 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("gearmand %q: status %d, stdout %q, stderr %q; want status 1 and %q", tc.args, status, stdout, stderr, tc.want)
			}
		}
	})

	t.Run("reload on SIGHUP", func(t *testing.T) {
		logFile := filepath.Join(t.TempDir(), "log")
		cmd := gearmandCmd(t, bin, "-q", "builtin", "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(t.TempDir(), "pid"),
			"-l", logFile, "--verbose", "NOTICE", "--ssl", "--ssl-certificate", certFile, "--ssl-key", keyFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitFor(t, "the started line in the log", func() bool { return startedAddr(readFile(t, logFile)) != "" })
		addr := startedAddr(readFile(t, logFile))
		if got := tlsSerial(t, addr, ca); got.Cmp(first.Cert.SerialNumber) != 0 {
			t.Fatalf("serial %v, want %v", got, first.Cert.SerialNumber)
		}

		second := ca.Server(t)
		second.WriteFiles(t, dir, "server")
		cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, "the reload in the log", func() bool { return strings.Contains(readFile(t, logFile), "TLS files reloaded") })
		if got := tlsSerial(t, addr, ca); got.Cmp(second.Cert.SerialNumber) != 0 {
			t.Fatalf("after SIGHUP: serial %v, want the new %v", got, second.Cert.SerialNumber)
		}

		// A broken key is refused and logged; the new certificate stays.
		if err := os.WriteFile(keyFile, []byte("truncated"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, "the failed reload in the log", func() bool {
			return strings.Contains(readFile(t, logFile), "reloading the TLS files failed; still serving the previous certificate")
		})
		if got := tlsSerial(t, addr, ca); got.Cmp(second.Cert.SerialNumber) != 0 {
			t.Fatalf("after a failed reload: serial %v, want %v", got, second.Cert.SerialNumber)
		}
		second.WriteFiles(t, dir, "server")

		cmd.Process.Signal(syscall.SIGTERM)
		if err := waitExit(t, cmd); err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	})

	t.Run("openssl s_client", func(t *testing.T) {
		openssl := testdep.Need(t, "openssl", "openssl")
		// The files come from gearmand's environment variables this time,
		// and client certificates are required.
		logFile := filepath.Join(t.TempDir(), "log")
		cmd := gearmandCmd(t, bin, "-q", "builtin", "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(t.TempDir(), "pid"),
			"-l", logFile, "--ssl", "--ssl-verify-client")
		cmd.Env = append(cmd.Env, "GEARMAND_CA_CERTIFICATE="+caFile, "GEARMAND_SERVER_PEM="+certFile, "GEARMAND_SERVER_KEY="+keyFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitFor(t, "the started line in the log", func() bool { return startedAddr(readFile(t, logFile)) != "" })
		addr := startedAddr(readFile(t, logFile))

		clientCert, clientKey := ca.Client(t, "admin").WriteFiles(t, t.TempDir(), "client")
		sc := exec.Command(openssl, "s_client", "-connect", addr, "-CAfile", caFile, "-verify_return_error",
			"-cert", clientCert, "-key", clientKey, "-quiet")
		stdin, err := sc.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := sc.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		sc.Stderr = &stderr
		if err := sc.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			stdin.Close()
			sc.Process.Kill()
			sc.Wait()
		}()
		if _, err := stdin.Write([]byte("version\r\ncreate function viatls\r\n")); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 2)
		go func() {
			defer close(lines)
			r := bufio.NewReader(stdout)
			for range 2 {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				lines <- l
			}
		}()
		for _, want := range []string{"OK " + server.Version + "\n", "OK\r\n"} {
			select {
			case got, ok := <-lines:
				if !ok || got != want {
					t.Fatalf("openssl s_client read %q (closed %v), want %q; its stderr:\n%s", got, !ok, want, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no reply through openssl s_client; its stderr:\n%s", stderr.String())
			}
		}
	})
}
