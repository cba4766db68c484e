package web_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gearmand/server"
	"gearmand/server/web"
)

func TestAPIStatus(t *testing.T) {
	f := startWorkload(t)
	var st web.Status
	f.getJSON("/api/status", &st)
	if st.Version != server.Version || st.Jobs != 3 || st.Functions != 2 || st.Connections != 3 {
		t.Errorf("status: version %q, %d jobs, %d functions, %d connections; want %q, 3, 2, 3",
			st.Version, st.Jobs, st.Functions, st.Connections, server.Version)
	}
	if want := (web.Counters{Submitted: 5, Completed: 1, Failed: 1, Requeued: 1}); st.Counters != want {
		t.Errorf("counters %+v, want %+v", st.Counters, want)
	}
	s := st.Store
	if s.Kind != "memory" || !s.Durable || s.Mode != "write-through" || !s.Healthy || s.Commits == 0 ||
		s.Failures != 0 || s.LastCommitAt == nil || s.PendingWrites != 0 || s.LastError != "" {
		t.Errorf("store %+v, want memory write-through, healthy, some commits, nothing pending", s)
	}
	if r := st.Replay; r.State != server.ReplayDone || r.Loaded != 0 || r.Started == nil {
		t.Errorf("replay %+v, want done with nothing loaded", r)
	}
}

// listing is the envelope of the paged API answers.
type listing[T any] struct {
	Total     int `json:"total"`
	Offset    int `json:"offset"`
	Limit     int `json:"limit"`
	Functions []T `json:"functions"`
	Workers   []T `json:"workers"`
	Jobs      []T `json:"jobs"`
}

func TestAPIFunctions(t *testing.T) {
	f := startWorkload(t)
	var got listing[web.FunctionJSON]
	f.getJSON("/api/functions", &got)
	want := []web.FunctionJSON{
		{Name: "resize", Running: 1, Workers: 1},
		{Name: "mail", Queued: web.Priorities{Low: 1}, Running: 1, Workers: 1},
	}
	if got.Total != 2 || got.Offset != 0 || got.Limit != web.DefaultLimit || !slices.Equal(got.Functions, want) {
		t.Errorf("functions: %+v, want total 2 offset 0 limit %d %+v", got, web.DefaultLimit, want)
	}
	f.getJSON("/api/functions?offset=1&limit=5", &got)
	if got.Total != 2 || len(got.Functions) != 1 || got.Functions[0].Name != "mail" {
		t.Errorf("second page of functions: %+v, want only mail", got)
	}
}

func TestAPIWorkers(t *testing.T) {
	f := startWorkload(t)
	var got listing[web.WorkerJSON]
	f.getJSON("/api/workers", &got)
	var ids []string
	for _, w := range got.Workers {
		ids = append(ids, w.ClientID+":"+strings.Join(w.Functions, ","))
		if w.Addr != "127.0.0.1" || w.FD == 0 {
			t.Errorf("worker %+v: want address 127.0.0.1 and a descriptor", w)
		}
	}
	// The client's connection registered nothing, so it is not a worker.
	if want := []string{"resizer:resize", "mailer:mail"}; got.Total != 2 || !slices.Equal(ids, want) {
		t.Errorf("workers: total %d, %q; want 2, %q", got.Total, ids, want)
	}
}

func TestAPIJobsPages(t *testing.T) {
	f := startWorkload(t)
	var all listing[web.JobJSON]
	f.getJSON("/api/jobs", &all)
	type row struct{ fn, pri, state string }
	var rows []row
	for _, j := range all.Jobs {
		rows = append(rows, row{j.Function, j.Priority, string(j.State)})
		if !j.Background || j.AgeSeconds < 0 || j.Created.IsZero() || j.RunAt != nil {
			t.Errorf("job %+v: want a background job with an age and no run-at time", j)
		}
	}
	want := []row{{"resize", "normal", "running"}, {"mail", "low", "running"}, {"mail", "low", "queued"}}
	if all.Total != 3 || !slices.Equal(rows, want) {
		t.Fatalf("jobs: total %d, %+v; want 3, %+v", all.Total, rows, want)
	}
	if all.Jobs[2].Attempts != 1 || all.Jobs[0].Attempts != 0 {
		t.Errorf("attempts %d and %d, want 0 for a job never lost and 1 for the requeued one", all.Jobs[0].Attempts, all.Jobs[2].Attempts)
	}

	var page listing[web.JobJSON]
	f.getJSON("/api/jobs?offset=1&limit=1", &page)
	if page.Total != 3 || page.Offset != 1 || page.Limit != 1 || len(page.Jobs) != 1 || page.Jobs[0].Handle != all.Jobs[1].Handle {
		t.Errorf("jobs?offset=1&limit=1: %+v, want just %s", page, all.Jobs[1].Handle)
	}
	f.getJSON("/api/jobs?offset=3", &page)
	if page.Total != 3 || len(page.Jobs) != 0 || page.Jobs == nil {
		t.Errorf("jobs past the end: %+v, want total 3 and an empty list", page)
	}
}

func TestAPIRefusesBadRequests(t *testing.T) {
	f := startFixture(t)
	for _, tc := range []struct {
		method, path string
		code         int
		says         string
	}{
		{"GET", "/api/jobs?limit=0", 400, "limit must be"},
		{"GET", "/api/jobs?limit=1001", 400, "limit must be"},
		{"GET", "/api/functions?limit=ten", 400, "limit must be"},
		{"GET", "/api/workers?offset=-1", 400, "offset must be"},
		{"GET", "/api/jobs?offset=1e3", 400, "offset must be"},
		{"GET", "/api/nothing", 404, "no such API path"},
		{"POST", "/api/jobs", 405, ""},
		{"DELETE", "/", 405, ""},
	} {
		code, body := f.do(tc.method, tc.path)
		if code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.code)
			continue
		}
		if tc.says == "" {
			continue
		}
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tc.says) {
			t.Errorf("%s %s: body %s, want a JSON error saying %q", tc.method, tc.path, body, tc.says)
		}
	}
}

func TestDashboardFilesAreServed(t *testing.T) {
	f := startFixture(t)
	for path, want := range map[string]string{
		"/":          `<table id="functions">`,
		"/app.js":    "api/jobs?offset=",
		"/style.css": ".cards",
	} {
		code, body := f.get(path)
		if code != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body without %q", path, code, want)
		}
	}
}
