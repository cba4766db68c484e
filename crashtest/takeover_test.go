package crashtest

import (
	"strings"
	"testing"

	"gearmand/client"
	"gearmand/store/postgres/pgtest"
)

// TestTakenOverServerExits starts a second server on the namespace of a
// running one, in a shared store. The second takes the namespace over;
// the first's next write is refused, and it must say why and exit
// non-zero rather than go on serving while refusing every background job.
// The second serves on.
func TestTakenOverServerExits(t *testing.T) {
	for _, st := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"redis", func(t *testing.T) []string {
			return []string{"-q", "redis", "--redis-addr", startRedis(t).addr, "--store-namespace", namespace(t)}
		}},
		{"postgres", func(t *testing.T) []string {
			return []string{"-q", "postgres", "--dsn", pgtest.Server(t).NewDatabase(t), "--store-namespace", namespace(t)}
		}},
	} {
		t.Run(st.name, func(t *testing.T) {
			g := newGearmand(t, st.args(t)...)
			first := g.start()
			second := g.start()

			ctx, c := dial(t, first.addr)
			if h, err := c.SubmitBackground(ctx, function, "to-the-fenced", payload("to-the-fenced"), client.Normal); err == nil {
				t.Fatalf("the server whose namespace was taken over acknowledged a job (%s)", h)
			}
			first.waitExit(t)
			if code := first.cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("the fenced server exited with status %d, want 1", code)
			}
			if log := first.log(); !strings.Contains(log, "level=FATAL") || !strings.Contains(log, "taken over") {
				t.Errorf("the fenced server's log does not say that its store was taken over:\n%s", tail(log, 20))
			}

			c2, err := client.Dial(ctx, second.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			if _, err := c2.SubmitBackground(ctx, function, "to-the-owner", payload("to-the-owner"), client.Normal); err != nil {
				t.Errorf("the new owner refused a job: %v", err)
			}
			second.stop(t)
		})
	}
}
