package gearhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gearmand/protocol"
	"gearmand/queue"
	"gearmand/store"
)

// The request and response headers of the protocol.
const (
	headerUnique     = "X-Gearman-Unique"
	headerBackground = "X-Gearman-Background"
	headerPriority   = "X-Gearman-Priority"
	headerHandle     = "X-Gearman-Job-Handle"
	headerCommand    = "X-Gearman-Command"
	headerStatus     = "X-Gearman-Status"
)

// statusPrefix starts the path of a status query: GET /status/<handle>.
const statusPrefix = "/status/"

// maxHandle is gearmand's handle buffer: a handle is shorter.
const maxHandle = 64

// allowed is the Allow header of a 405.
const allowed = "GET, HEAD, POST, PUT"

// ServeHTTP implements http.Handler: status queries under /status/, job
// submissions elsewhere (see the package documentation).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter(&s.active) {
		shuttingDown(w)
		return
	}
	defer s.active.Done()
	if s.cfg.ServerName != "" {
		w.Header().Set("Server", s.cfg.ServerName)
	}
	status := strings.HasPrefix(r.URL.Path, statusPrefix)
	switch {
	case status && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.status(w, strings.TrimPrefix(r.URL.Path, statusPrefix))
	case !status && (r.Method == http.MethodGet || r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.submit(w, r)
	default:
		w.Header().Set("Allow", allowed)
		http.Error(w, fmt.Sprintf("method %s is not allowed here: POST, PUT or GET /<function> submits a job, GET or HEAD %s<handle> reads its status", r.Method, statusPrefix), http.StatusMethodNotAllowed)
	}
}

// jobStatus is the JSON body of a status query.
type jobStatus struct {
	Handle      string `json:"handle"`
	Known       bool   `json:"known"`
	Running     bool   `json:"running"`
	Numerator   uint32 `json:"numerator"`
	Denominator uint32 `json:"denominator"`
}

// status answers GET /status/<handle> from the queue, as GET_STATUS does.
func (s *Server) status(w http.ResponseWriter, handle string) {
	switch {
	case handle == "":
		http.Error(w, "no job handle: use GET "+statusPrefix+"<handle>", http.StatusBadRequest)
		return
	case len(handle) >= maxHandle:
		http.Error(w, fmt.Sprintf("job handle of %d bytes is too long (at most %d)", len(handle), maxHandle-1), http.StatusBadRequest)
		return
	}
	st := s.cfg.Queue.Status([]byte(handle))
	body, err := json.Marshal(jobStatus{Handle: handle, Known: st.Known, Running: st.Running, Numerator: st.Numerator, Denominator: st.Denominator})
	if err != nil {
		http.Error(w, "encoding the status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	code := http.StatusOK
	if !st.Known {
		code = http.StatusNotFound
	}
	w.WriteHeader(code)
	w.Write(body)
}

// requestError is a request the protocol rejects, with its HTTP status.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// parseSubmission reads a submission's function, headers and body.
func (s *Server) parseSubmission(w http.ResponseWriter, r *http.Request) (queue.Submission, error) {
	var sub queue.Submission
	fn := strings.TrimLeft(r.URL.Path, "/")
	switch {
	case fn == "":
		return sub, badRequest("no function name: submit with POST /<function>")
	case strings.IndexByte(fn, 0) >= 0:
		return sub, badRequest("the function name holds a NUL byte")
	}
	sub.Function = []byte(fn)

	unique, _, err := singleHeader(r, headerUnique)
	if err != nil {
		return sub, err
	}
	if len(unique) > queue.MaxUnique {
		return sub, badRequest("%s of %d bytes is too long (at most %d)", headerUnique, len(unique), queue.MaxUnique)
	}
	sub.Unique = []byte(unique)
	if sub.Background, err = parseBackground(r); err != nil {
		return sub, err
	}
	if sub.Priority, err = parsePriority(r); err != nil {
		return sub, err
	}

	// The SUBMIT_JOB payload: function NUL unique NUL data.
	limit := int64(s.cfg.MaxBodySize - len(fn) - len(unique) - 2)
	if limit < 0 || r.ContentLength > limit {
		return sub, tooLarge(limit, s.cfg.MaxBodySize)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return sub, tooLarge(limit, s.cfg.MaxBodySize)
		}
		return sub, badRequest("reading the request body: %v", err)
	}
	sub.Data = data
	return sub, nil
}

func tooLarge(limit int64, packetLimit int) *requestError {
	return &requestError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("the job is too large: its data may hold %d bytes, so that function, unique and data fit the server's %d-byte packet limit", max(limit, 0), packetLimit)}
}

// singleHeader returns the value of header name, and whether it was given;
// a header given more than once is an error.
func singleHeader(r *http.Request, name string) (string, bool, error) {
	vs := r.Header.Values(name)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", true, badRequest("%s is given %d times; give it once", name, len(vs))
}

func parseBackground(r *http.Request) (bool, error) {
	v, given, err := singleHeader(r, headerBackground)
	if err != nil || !given {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0":
		return false, nil
	}
	return false, badRequest("%s: %q is not true or false", headerBackground, v)
}

func parsePriority(r *http.Request) (queue.Priority, error) {
	v, given, err := singleHeader(r, headerPriority)
	if err != nil || !given {
		return queue.Normal, err
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "high":
		return queue.High, nil
	case "normal", "":
		return queue.Normal, nil
	case "low":
		return queue.Low, nil
	}
	return queue.Normal, badRequest("%s: %q is not high, normal or low", headerPriority, v)
}

// submit runs one submission as its own queue session: submit, wait for
// the acknowledgement (and, for a foreground job, its end), answer.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	sub, err := s.parseSubmission(w, r)
	if err != nil {
		re, ok := errors.AsType[*requestError](err)
		if !ok {
			re = &requestError{http.StatusBadRequest, err.Error()}
		}
		http.Error(w, re.msg, re.code)
		return
	}
	if !s.enter(&s.waiting) {
		shuttingDown(w)
		return
	}
	defer s.waiting.Done()
	// The request ends when its client goes or the server closes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()

	if sub.Background && s.cfg.Room != nil && !s.cfg.Room.HasRoom() {
		sub.Since = time.Now() // the store's timeout counts this wait too
		if err := s.cfg.Room.WaitRoom(ctx); err != nil {
			if errors.Is(err, store.ErrTimeout) {
				http.Error(w, "QUEUE_ERROR: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			s.ended(w, r, "waiting for the store to catch up")
			return
		}
	}
	rep := newReplies(s.cfg.MaxResponseSize)
	q := s.cfg.Queue
	session := q.Connect(rep, queue.SessionInfo{FD: -1, Addr: remoteHost(r.RemoteAddr), Exceptions: true})
	defer q.Disconnect(session)
	if err := q.Submit(session, sub); err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, queue.ErrUniqueTooLarge) || errors.Is(err, queue.ErrReducerTooLarge) {
			code = http.StatusBadRequest
		}
		http.Error(w, "QUEUE_ERROR: "+err.Error(), code)
		return
	}
	s.await(ctx, w, r, rep, sub.Background)
}

// await reads the session's packets until one decides the answer.
func (s *Server) await(ctx context.Context, w http.ResponseWriter, r *http.Request, rep *replies, background bool) {
	var res result
	for {
		stop := false
		select {
		case <-rep.ready:
		case <-ctx.Done():
			stop = true // after what has arrived: it may be the answer
		}
		frames, overflow := rep.take()
		if overflow {
			res.fail(w, http.StatusBadGateway, "", fmt.Sprintf("the job's output exceeds the server's %d-byte limit for an HTTP answer", s.cfg.MaxResponseSize))
			return
		}
		for _, f := range frames {
			p, ok := decode(f)
			if !ok {
				res.fail(w, http.StatusInternalServerError, "", "the queue sent a malformed packet")
				return
			}
			if res.handle == "" && p.typ == protocol.JobCreated {
				res.handle = string(p.arg(0))
				if background {
					res.reply(w, http.StatusOK, protocol.JobCreated.String(), nil)
					return
				}
				continue
			}
			if res.add(w, p, s.cfg.MaxResponseSize) {
				return
			}
		}
		if stop {
			s.ended(w, r, "waiting for job "+res.handle)
			return
		}
	}
}

// ended answers a request whose context ended: nothing when its client
// left (there is nobody to answer), 503 when the server is closing.
func (s *Server) ended(w http.ResponseWriter, r *http.Request, doing string) {
	if r.Context().Err() != nil {
		s.log.Info("HTTP client left", "remote", r.RemoteAddr, "while", doing)
		return
	}
	shuttingDown(w)
}

func shuttingDown(w http.ResponseWriter) {
	http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
	http.NewResponseController(w).Flush() // before Close closes the connection
}

// result gathers a foreground job's answer.
type result struct {
	handle   string
	body     []byte
	progress string // the last WORK_STATUS, "numerator/denominator"
}

// add takes one packet of the job; it reports whether the request has been
// answered.
func (res *result) add(w http.ResponseWriter, p packet, limit int) bool {
	switch p.typ {
	case protocol.Error:
		code := http.StatusInternalServerError
		if string(p.arg(0)) == "QUEUE_ERROR" {
			code = http.StatusServiceUnavailable
		}
		res.fail(w, code, "", string(p.arg(0))+": "+string(p.arg(1)))
	case protocol.WorkData, protocol.WorkComplete:
		if len(res.body)+len(p.arg(1)) > limit {
			res.fail(w, http.StatusBadGateway, "", fmt.Sprintf("the job's output exceeds the server's %d-byte limit for an HTTP answer", limit))
			return true
		}
		res.body = append(res.body, p.arg(1)...)
		if p.typ == protocol.WorkData {
			return false
		}
		res.reply(w, http.StatusOK, p.typ.String(), res.body)
	case protocol.WorkStatus:
		// Only numbers go into the header; a worker may send any bytes.
		num, nerr := strconv.ParseUint(string(p.arg(1)), 10, 32)
		den, derr := strconv.ParseUint(string(p.arg(2)), 10, 32)
		if nerr == nil && derr == nil {
			res.progress = strconv.FormatUint(num, 10) + "/" + strconv.FormatUint(den, 10)
		}
		return false
	case protocol.WorkFail:
		res.fail(w, http.StatusInternalServerError, p.typ.String(), "job "+res.handle+" failed")
	case protocol.WorkException:
		res.reply(w, http.StatusInternalServerError, p.typ.String(), p.arg(1))
	default: // WORK_WARNING, and anything else a session could be sent
		return false
	}
	return true
}

// reply answers with the job's headers and body.
func (res *result) reply(w http.ResponseWriter, code int, command string, body []byte) {
	res.write(w, code, command, "application/octet-stream", body)
}

func (res *result) write(w http.ResponseWriter, code int, command, contentType string, body []byte) {
	h := w.Header()
	if res.handle != "" {
		h.Set(headerHandle, res.handle)
	}
	if command != "" {
		h.Set(headerCommand, command)
	}
	if res.progress != "" {
		h.Set(headerStatus, res.progress)
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
	// Out now: Close may close the connection as soon as this returns.
	http.NewResponseController(w).Flush()
}

// fail answers with an error message as a plain-text body.
func (res *result) fail(w http.ResponseWriter, code int, command, msg string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	res.write(w, code, command, "text/plain; charset=utf-8", []byte(msg+"\n"))
}

// remoteHost is the IP of a request's peer, for the `workers` listing.
func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
