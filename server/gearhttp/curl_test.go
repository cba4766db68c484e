package gearhttp_test

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"gearmand/client"
	"gearmand/internal/testdep"
	"gearmand/server"
)

// curlPath finds the curl program: missing, the test fails under CI=true
// and is skipped otherwise.
func curlPath(t *testing.T) string {
	t.Helper()
	return testdep.Need(t, "curl", "curl")
}

// TestCurl drives the server with the real curl: the README's examples, and
// two jobs on one kept-alive connection.
func TestCurl(t *testing.T) {
	curl := curlPath(t)
	g := start(t, server.Config{})
	g.worker(map[string]client.Handler{"reverse": reverse})
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, append([]string{"-sS"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %q: %v\n%s", args, err, out)
		}
		return strings.ReplaceAll(string(out), "\r\n", "\n")
	}

	out := run("-i", "--data-binary", "hello", g.web+"/reverse")
	for _, want := range []string{"HTTP/1.1 200 OK\n", "\nX-Gearman-Job-Handle: H:test:1\n", "\nX-Gearman-Command: WORK_COMPLETE\n", "\n\nolleh"} {
		if !strings.Contains(out, want) {
			t.Fatalf("foreground job: no %q in\n%s", want, out)
		}
	}

	out = run("-i", "-H", "X-Gearman-Background: true", "-H", "X-Gearman-Priority: high", "--data-binary", "later", g.web+"/reverse")
	for _, want := range []string{"HTTP/1.1 200 OK\n", "\nX-Gearman-Job-Handle: H:test:2\n", "\nX-Gearman-Command: JOB_CREATED\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("background job: no %q in\n%s", want, out)
		}
	}

	// One curl, two URLs: the second reuses the connection (no new connect).
	out = run("--data-binary", "ab", "-w", " connects=%{num_connects}\n", g.web+"/reverse", g.web+"/reverse")
	if out != "ba connects=1\nba connects=0\n" {
		t.Fatalf("two jobs on one connection: %q, want both answers and one connect", out)
	}
}

// TestCurlQuotedHeader runs gearmand's own HTTP test (tests/httpd_test.cc,
// curl_function_TEST): curl given --header with literal quotes sends the
// line "\"X-Gearman-Unique: ...\"", which gearmand ignores. The job runs.
func TestCurlQuotedHeader(t *testing.T) {
	curl := curlPath(t)
	g := start(t, server.Config{})
	g.worker(map[string]client.Handler{"reverse": reverse})
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, curl, "--header", `"X-Gearman-Unique: curl_function_TEST"`, "--data", "fubar",
		"--silent", "--show-error", "--fail", g.web+"/reverse").CombinedOutput()
	if err != nil || string(out) != "rabuf" {
		t.Fatalf("curl with a quoted header: %v, output %q; want \"rabuf\"", err, out)
	}
}

// reverse is a job handler answering with its data reversed.
func reverse(_ context.Context, j *client.Job) ([]byte, error) {
	out := slices.Clone(j.Data)
	slices.Reverse(out)
	return out, nil
}
