package gearhttp_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gearmand/client"
	"gearmand/server"
)

// rawReply is one response read off a raw connection, with its body.
type rawReply struct {
	*http.Response
	body string
}

// rawExchange writes raw on a new connection to the HTTP port and reads n
// responses.
func (g *gearman) rawExchange(raw string, n int) []rawReply {
	g.t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(g.web, "http://"))
	if err != nil {
		g.t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(replyTimeout))
	if _, err := io.WriteString(nc, raw); err != nil {
		g.t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	var out []rawReply
	for i := range n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			g.t.Fatalf("response %d to %q: %v", i+1, raw, err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			g.t.Fatalf("response %d body: %v", i+1, err)
		}
		out = append(out, rawReply{res, string(body)})
	}
	return out
}

// TestMalformedHeaderLinesAreIgnored: header lines net/http refuses (a
// name in quotes, as gearmand's own HTTP test sends with curl, a space
// before the colon, no colon, a control character in the value) are
// ignored as gearmand ignores them, and the job runs. Body bytes that look
// like such lines are the job's data, untouched, and the next request on
// the connection is filtered too.
func TestMalformedHeaderLinesAreIgnored(t *testing.T) {
	g := start(t, server.Config{})
	g.worker(map[string]client.Handler{"echo": func(_ context.Context, j *client.Job) ([]byte, error) {
		return j.Data, nil
	}})

	body := "line\r\n\"X-Gearman-Unique: in the body\"\r\nno colon\r\n"
	req := func(bad string) string {
		return "POST /echo HTTP/1.1\r\nHost: x\r\n" + bad + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	bads := []string{
		`"X-Gearman-Unique: curl_function_TEST"`,
		"X-Gearman-Unique : spaced",
		"no colon at all",
		"X-Note: a\x01b",
		": empty name",
	}
	raw := ""
	for _, bad := range bads {
		raw += req(bad)
	}
	for i, res := range g.rawExchange(raw, len(bads)) {
		if res.StatusCode != http.StatusOK || res.body != body {
			t.Errorf("request with %q: %s %q, want 200 and the body echoed", bads[i], res.Status, res.body)
		}
	}

	// The quoted unique is ignored, as in gearmand: two such background
	// jobs do not coalesce.
	bg := "POST /later HTTP/1.1\r\nHost: x\r\n\"X-Gearman-Unique: same\"\r\nX-Gearman-Background: true\r\nContent-Length: 1\r\n\r\nA"
	res := g.rawExchange(bg+bg, 2)
	if h1, h2 := res[0].Header.Get("X-Gearman-Job-Handle"), res[1].Header.Get("X-Gearman-Job-Handle"); res[0].StatusCode != 200 || res[1].StatusCode != 200 || h1 == h2 {
		t.Errorf("two background jobs with a quoted unique: %s %s and %s %s, want 200 and two jobs", res[0].Status, h1, res[1].Status, h2)
	}
	if s := g.status("later"); s != "later\t2\t0\t0" {
		t.Errorf("status %q, want two queued jobs", s)
	}
}

// TestMalformedFramingHeadersAreStillRefused: a malformed line that
// mentions Content-Length or Transfer-Encoding is never dropped, so
// net/http refuses the request as before and no front proxy can read a
// body length we did not.
func TestMalformedFramingHeadersAreStillRefused(t *testing.T) {
	g := start(t, server.Config{})
	for _, bad := range []string{
		"Content-Length : 1",
		`"Content-Length: 1"`,
		"Transfer-Encoding : chunked",
		"X-Transfer-Encoding\x01: chunked",
		"Content-Length: 1\x01",
	} {
		raw := "POST /f HTTP/1.1\r\nHost: x\r\nX-Gearman-Background: true\r\n" + bad + "\r\n\r\nA"
		if res := g.rawExchange(raw, 1)[0]; res.StatusCode != http.StatusBadRequest {
			t.Errorf("request with %q: %s, want 400", bad, res.Status)
		}
	}
	if s := g.status("f"); s != "" {
		t.Errorf("status %q: a refused request created a job", s)
	}
}
