package web

import (
	"net/http"
	"strconv"
	"time"

	"gearmand/queue"
	"gearmand/server"
	"gearmand/store"
)

// Paging bounds of the listings.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// page is a listing's ?offset= and ?limit=.
type page struct {
	Offset, Limit int
}

// parsePage reads ?offset= and ?limit=, or says what is wrong with them.
func parsePage(r *http.Request) (page, string) {
	p := page{Limit: DefaultLimit}
	q := r.URL.Query()
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return p, "offset must be a whole number from 0 up, not " + strconv.Quote(s)
		}
		p.Offset = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return p, "limit must be a whole number from 1 to " + strconv.Itoa(MaxLimit) + ", not " + strconv.Quote(s)
		}
		p.Limit = n
	}
	return p, ""
}

// window returns the part of all that p selects.
func window[T any](all []T, p page) []T {
	start := min(p.Offset, len(all))
	return all[start:min(start+p.Limit, len(all))]
}

// Status is the answer of /api/status.
type Status struct {
	Version     string     `json:"version"`
	Time        time.Time  `json:"time"`
	Connections int        `json:"connections"`
	Jobs        int        `json:"jobs"`
	Functions   int        `json:"functions"`
	Counters    Counters   `json:"counters"`
	Store       StoreJSON  `json:"store"`
	Replay      ReplayJSON `json:"replay"`
}

// Counters are the job totals since the server started.
type Counters struct {
	Submitted uint64 `json:"submitted"`
	Completed uint64 `json:"completed"`
	Failed    uint64 `json:"failed"`
	Requeued  uint64 `json:"requeued"`
}

// StoreJSON is the store part of Status. Durations are in milliseconds.
type StoreJSON struct {
	Kind          string     `json:"kind"`
	Durable       bool       `json:"durable"`
	Mode          string     `json:"mode,omitempty"`
	Healthy       bool       `json:"healthy"`
	Commits       uint64     `json:"commits"`
	Failures      uint64     `json:"failures"`
	MeanCommitMS  float64    `json:"mean_commit_ms"`
	LastCommitMS  float64    `json:"last_commit_ms"`
	LastBatch     int        `json:"last_batch"` // adds plus deletes of the latest commit
	LastCommitAt  *time.Time `json:"last_commit_at"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	PendingWrites int        `json:"pending_writes"`
	PendingBytes  int        `json:"pending_bytes"`
	TimeoutMS     float64    `json:"timeout_ms"` // --store-timeout, 0: none
	Space         *SpaceJSON `json:"space,omitempty"`
}

// SpaceJSON is the space guard's state (--store-min-free): while Low, new
// background jobs are refused.
type SpaceJSON struct {
	Path         string     `json:"path"`
	FreeBytes    uint64     `json:"free_bytes"`
	MinFreeBytes uint64     `json:"min_free_bytes"`
	Low          bool       `json:"low"`
	Since        *time.Time `json:"since,omitempty"`
	Error        string     `json:"error,omitempty"`
}

// ReplayJSON is the replay part of Status.
type ReplayJSON struct {
	State      server.ReplayState `json:"state"`
	Loaded     int64              `json:"loaded"`
	Started    *time.Time         `json:"started"`
	DurationMS float64            `json:"duration_ms"`
	Error      string             `json:"error,omitempty"`
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	st := h.srv.StoreStatus()
	rp := h.srv.ReplayStatus()
	h.reply(w, Status{
		Version:     server.Version,
		Time:        h.srv.Now(),
		Connections: h.srv.Connections(),
		Jobs:        h.srv.JobsPage(0, 0).Total,
		Functions:   len(h.srv.Functions()),
		Counters:    Counters(h.srv.Counters()),
		Store: StoreJSON{
			Kind:          st.Kind,
			Durable:       st.Durable,
			Mode:          st.Mode,
			Healthy:       st.Healthy,
			Commits:       st.Commits,
			Failures:      st.Failures,
			MeanCommitMS:  millis(st.MeanCommit()),
			LastCommitMS:  millis(st.Last.Duration),
			LastBatch:     st.Last.Adds + st.Last.Deletes,
			LastCommitAt:  timeOrNil(st.LastAt),
			LastError:     st.LastError,
			LastErrorAt:   timeOrNil(st.LastErrorAt),
			PendingWrites: st.PendingAdds,
			PendingBytes:  st.PendingBytes,
			TimeoutMS:     millis(st.Timeout),
			Space:         spaceJSON(st.Space),
		},
		Replay: ReplayJSON{
			State:      rp.State,
			Loaded:     rp.Loaded,
			Started:    timeOrNil(rp.Started),
			DurationMS: millis(rp.Duration),
			Error:      rp.Err,
		},
	})
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// FunctionJSON is one function of /api/functions.
type FunctionJSON struct {
	Name    string     `json:"name"`
	Queued  Priorities `json:"queued"` // delayed epoch jobs included
	Running int        `json:"running"`
	Workers int        `json:"workers"` // registrations
}

// Priorities is a count per priority.
type Priorities struct {
	High   int `json:"high"`
	Normal int `json:"normal"`
	Low    int `json:"low"`
}

// listing serves a paged listing: list returns the total and the items
// of the page asked for, which go into the answer under key.
func (h *Handler) listing(key string, list func(page) (total int, items any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, bad := parsePage(r)
		if bad != "" {
			h.fail(w, http.StatusBadRequest, bad)
			return
		}
		total, items := list(p)
		h.reply(w, map[string]any{"total": total, "offset": p.Offset, "limit": p.Limit, key: items})
	}
}

func (h *Handler) functions(p page) (int, any) {
	all := h.srv.Functions()
	out := make([]FunctionJSON, 0, min(p.Limit, len(all)))
	for _, f := range window(all, p) {
		out = append(out, FunctionJSON{
			Name:    f.Name,
			Queued:  Priorities{High: f.Queued[queue.High], Normal: f.Queued[queue.Normal], Low: f.Queued[queue.Low]},
			Running: f.Running,
			Workers: f.Workers,
		})
	}
	return len(all), out
}

// WorkerJSON is one worker of /api/workers.
type WorkerJSON struct {
	FD        int      `json:"fd"`
	Addr      string   `json:"addr"`
	ClientID  string   `json:"client_id"`
	Functions []string `json:"functions"` // newest registration first
}

func (h *Handler) workers(p page) (int, any) {
	var all []queue.WorkerInfo
	for _, c := range h.srv.Workers() {
		if len(c.Functions) > 0 {
			all = append(all, c)
		}
	}
	out := make([]WorkerJSON, 0, min(p.Limit, len(all)))
	for _, c := range window(all, p) {
		out = append(out, WorkerJSON{FD: c.FD, Addr: c.Addr, ClientID: c.ClientID, Functions: c.Functions})
	}
	return len(all), out
}

// JobJSON is one job of /api/jobs.
type JobJSON struct {
	Handle     string         `json:"handle"`
	Function   string         `json:"function"`
	Unique     string         `json:"unique"`
	Priority   string         `json:"priority"`
	State      queue.JobState `json:"state"`
	AgeSeconds float64        `json:"age_seconds"`
	Created    time.Time      `json:"created"`
	RunAt      *time.Time     `json:"run_at"`   // epoch jobs only
	Attempts   uint32         `json:"attempts"` // runs lost to a worker failure or timeout
	Background bool           `json:"background"`
}

func (h *Handler) jobs(p page) (int, any) {
	pg := h.srv.JobsPage(p.Offset, p.Limit)
	now := h.srv.Now()
	out := make([]JobJSON, 0, len(pg.Jobs))
	for _, j := range pg.Jobs {
		out = append(out, JobJSON{
			Handle:     j.Handle,
			Function:   j.Function,
			Unique:     j.Unique,
			Priority:   j.Priority.String(),
			State:      j.State,
			AgeSeconds: j.Age(now).Seconds(),
			Created:    j.Created,
			RunAt:      timeOrNil(j.RunAt),
			Attempts:   j.Retries,
			Background: j.Background,
		})
	}
	return pg.Total, out
}

func spaceJSON(sp *store.SpaceStatus) *SpaceJSON {
	if sp == nil {
		return nil
	}
	return &SpaceJSON{Path: sp.Path, FreeBytes: sp.Free, MinFreeBytes: sp.Min, Low: sp.Low, Since: timeOrNil(sp.Since), Error: sp.Err}
}
