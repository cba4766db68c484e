// Package web serves a Server's dashboard, JSON API and Prometheus metrics
// over HTTP, on a listener of its own (gearmand --web-listen), never on a
// Gearman port.
//
// # Routes
//
//	GET /                 the dashboard: static HTML, CSS and JS embedded in
//	                      the binary, which polls the JSON API every 1.5s
//	GET /api/status       version, counters, connections, store and replay
//	GET /api/functions    functions with queued (per priority), running and
//	                      worker counts; paged
//	GET /api/workers      connections that registered functions; paged
//	GET /api/jobs         jobs in creation order; paged
//	GET /metrics          Prometheus exposition (see package metrics)
//
// The listings take ?offset= (default 0) and ?limit= (default 100, at
// most 1000) and answer {"total": N, "offset": O, "limit": L, "<items>":
// [...]}, so that a queue of a million jobs never makes a million-row
// answer: /api/jobs copies only the page out of the queue. A bad parameter
// is answered 400 with {"error": "..."}; any other method than GET or HEAD
// with 405.
//
// Nothing here changes the queue: the API is read-only.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"

	"gearmand/server"
	"gearmand/server/metrics"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard, the JSON API and /metrics of one Server.
type Handler struct {
	srv *server.Server
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the Handler for srv. It registers srv's Prometheus metrics,
// which takes over srv's commit observer (see metrics.New). A nil log
// means slog.Default().
func New(srv *server.Server, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{srv: srv, log: log, mux: http.NewServeMux()}
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic("web: the embedded static folder is missing: " + err.Error())
	}
	h.mux.Handle("GET /", http.FileServerFS(files))
	h.mux.Handle("GET /metrics", metrics.New(srv).Handler())
	h.mux.HandleFunc("GET /api/status", h.status)
	h.mux.HandleFunc("GET /api/functions", h.listing("functions", h.functions))
	h.mux.HandleFunc("GET /api/workers", h.listing("workers", h.workers))
	h.mux.HandleFunc("GET /api/jobs", h.listing("jobs", h.jobs))
	h.mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, http.StatusNotFound, "no such API path: "+r.URL.Path)
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

// reply writes v as JSON with status 200.
func (h *Handler) reply(w http.ResponseWriter, v any) {
	h.write(w, http.StatusOK, v)
}

// fail writes {"error": msg} with status code.
func (h *Handler) fail(w http.ResponseWriter, code int, msg string) {
	h.write(w, code, struct {
		Error string `json:"error"`
	}{msg})
}

func (h *Handler) write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Debug("web: writing a JSON answer failed", "err", err)
	}
}
