package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func TestHTTPOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want *httpOptions
	}{
		{nil, nil},
		{[]string{"-r", "http"}, &httpOptions{port: defaultHTTPPort}},
		{[]string{"--protocol=HTTP", "--http-port", "9090"}, &httpOptions{port: 9090}},
		{[]string{"-r", "http", "--http-port=0"}, &httpOptions{port: 0}},
	} {
		o, err := parseOptions(tc.args, env())
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if (o.http == nil) != (tc.want == nil) || o.http != nil && *o.http != *tc.want {
			t.Errorf("%q: http options %+v, want %+v", tc.args, o.http, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-r", "gopher"}, `--protocol: "gopher" is not supported (the only protocol is "http")`},
		{[]string{"--http-port", "9090"}, "--http-port: needs -r http"},
		{[]string{"-r", "http", "--http-port", "70000"}, "--http-port: 70000 is not a port number"},
		{[]string{"-r", "http", "--http-port", "-1"}, "--http-port: -1 is not a port number"},
	} {
		if _, err := parseOptions(tc.args, env()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

var httpStartedRE = regexp.MustCompile(`msg="HTTP protocol started" .*listen=(\S+)`)

// TestBinaryHTTP runs the binary with -r http: a job submitted over HTTP is
// known to the status query, and SIGTERM stops the HTTP side too.
func TestBinaryHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildGearmand(t)
	logFile := filepath.Join(t.TempDir(), "log")
	cmd := gearmandCmd(t, bin, "-q", "builtin", "-p", "0", "-L", "127.0.0.1", "-r", "http", "--http-port", "0",
		"-P", filepath.Join(t.TempDir(), "gm.pid"), "-l", logFile, "--job-handle-prefix", "H:bin")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var web string
	waitFor(t, "the HTTP protocol's started line in the log", func() bool {
		m := httpStartedRE.FindStringSubmatch(readFile(t, logFile))
		if m != nil {
			web = "http://" + strings.Split(m[1], ",")[0]
		}
		return m != nil
	})

	req, err := http.NewRequest(http.MethodPost, web+"/resize", strings.NewReader("cat.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Gearman-Background", "true")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Gearman-Job-Handle") != "H:bin:1" {
		t.Fatalf("background submit: %s %v", res.Status, res.Header)
	}
	res, err = client.Get(web + "/status/H:bin:1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"known":true`) {
		t.Fatalf("status: %s %s", res.Status, body)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := waitExit(t, cmd); err != nil {
		t.Fatalf("after SIGTERM: %v (stderr %q)", err, stderr.String())
	}
	if _, err := client.Get(web + "/status/H:bin:1"); err == nil {
		t.Fatal("the HTTP port still answers after the server stopped")
	}
}
