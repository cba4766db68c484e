package crashtest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gearmand/client"
)

// TestBoltJournal: after kill -9, the bolt store's journal holds the jobs
// its file does not yet; the next start recovers it, says so in the log,
// and replays every job; a clean stop leaves the file alone, and the start
// after it recovers nothing.
func TestBoltJournal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gearmand.db")
	g := newGearmand(t, "-q", "bolt", "--bolt-file", file, "--verbose", "WARNING")
	l := g.start()
	ctx, c := dial(t, l.addr)
	const jobs = 100
	for i := range jobs {
		if _, err := c.SubmitBackground(ctx, "journaled", fmt.Sprintf("u%d", i), []byte("x"), client.Normal); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	journals, _ := filepath.Glob(file + ".journal.*")
	if len(journals) != 1 {
		t.Fatalf("journals while serving: %v, want one", journals)
	}
	l.kill(t)

	l = g.start()
	if n := l.replayed(); n != jobs {
		t.Errorf("after kill -9: replayed %d jobs, want %d", n, jobs)
	}
	if log := l.log(); !strings.Contains(log, "recovered the journal") || !strings.Contains(log, fmt.Sprintf("jobs_added_or_deleted=%d", jobs)) {
		t.Errorf("after kill -9, the log does not say the journal was recovered:\n%s", tail(log, 10))
	}
	l.stop(t)
	if journals, _ := filepath.Glob(file + ".journal.*"); len(journals) != 0 {
		t.Errorf("journals after a clean stop: %v, want none", journals)
	}

	l = g.start()
	if n := l.replayed(); n != jobs {
		t.Errorf("after a clean stop: replayed %d jobs, want %d", n, jobs)
	}
	if log := l.log(); strings.Contains(log, "recovered the journal") {
		t.Errorf("after a clean stop, a journal was recovered:\n%s", tail(log, 10))
	}
	l.stop(t)
}
