package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func TestWebListenOption(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the address, or a part of the error
		bad  bool
	}{
		{nil, "", false},
		{[]string{"--web-listen", "127.0.0.1:8081"}, "127.0.0.1:8081", false},
		{[]string{"--web-listen", ":0"}, ":0", false},
		{[]string{"--web-listen", "[::1]:9000"}, "[::1]:9000", false},
		{[]string{"--web-listen", "127.0.0.1"}, `--web-listen: "127.0.0.1" is not host:port`, true},
		{[]string{"--web-listen", "localhost:http"}, `--web-listen: "http" is not a port number`, true},
		{[]string{"--web-listen", "localhost:70000"}, `--web-listen: "70000" is not a port number`, true},
		{[]string{"--web-listen", "127.0.0.1:4730"}, "--web-listen: port 4730 is the Gearman port", true},
		{[]string{"-p", "5000", "--web-listen", ":5000"}, "--web-listen: port 5000 is the Gearman port", true},
		{[]string{"-r", "http", "--web-listen", ":8080"}, "--web-listen: port 8080 is the HTTP protocol's port", true},
	} {
		o, err := parseOptions(tc.args, env())
		switch {
		case tc.bad && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.want)
		case !tc.bad && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case !tc.bad && o.web != tc.want:
			t.Errorf("%q: web address %q, want %q", tc.args, o.web, tc.want)
		}
	}
}

// webURL finds the dashboard's address in a text log.
var webURL = regexp.MustCompile(`"web dashboard started" url=(http://[^ ]+/) `)

func TestWebListenServesTheDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	l := &lifecycle{t: t, bin: buildGearmand(t), dir: t.TempDir()}
	in := l.start("--web-listen", "127.0.0.1:0")
	m := webURL.FindStringSubmatch(readFile(t, in.log))
	if m == nil {
		t.Fatalf("the log does not say where the dashboard is:\n%s", readFile(t, in.log))
	}
	base := m[1]
	submitBackground(t, dialClient(t, in.addr), "resize", "one")

	var status struct {
		Jobs  int
		Store struct {
			Kind    string
			Healthy bool
		}
		Replay struct{ State string }
	}
	if err := json.Unmarshal(fetch(t, base+"api/status"), &status); err != nil {
		t.Fatal(err)
	}
	if status.Jobs != 1 || status.Store.Kind != "bolt" || !status.Store.Healthy || status.Replay.State != "done" {
		t.Errorf("/api/status says %+v, want 1 job in a healthy bolt store, replay done", status)
	}
	if metrics := string(fetch(t, base+"metrics")); !strings.Contains(metrics, `gearmand_jobs_queued{function="resize",priority="normal"} 1`) {
		t.Errorf("/metrics does not count the queued job:\n%s", metrics)
	}
	if page := string(fetch(t, base)); !strings.Contains(page, "<title>gearmand</title>") {
		t.Errorf("/ is not the dashboard:\n%s", page)
	}

	in.signal(t, syscall.SIGTERM)
	if code := in.waitStatus(t); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
	if res, err := http.Get(base); err == nil {
		res.Body.Close()
		t.Error("the dashboard still answers after the server stopped")
	}
}

// fetch GETs url and requires 200.
func fetch(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, res.Status, body)
	}
	return body
}
