package server

import (
	"errors"
	"net"
	"net/http"

	"gearmand/server/gearhttp"
)

// ServeHTTPProtocol serves gearmand's HTTP protocol (-r http) on l, over
// this server's queue, until Shutdown or Close, and then returns
// ErrServerClosed; see package gearhttp for the protocol. Submissions
// follow the same rules as on the binary protocol: background jobs are
// acknowledged only once the store has them, the body is bounded by
// MaxPacketSize. Call it after Replay, on any number of listeners. l is
// closed when it returns.
//
// Shutdown stops accepting HTTP connections at once and lets requests in
// flight finish; Close ends them.
func (s *Server) ServeHTTPProtocol(l net.Listener) error {
	s.mu.Lock()
	if s.mu.closed || s.mu.draining {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.mu.http == nil {
		cfg := gearhttp.Config{
			Queue:       s.queue,
			MaxBodySize: s.cfg.MaxPacketSize,
			ServerName:  "Gearman/" + Version,
			Logger:      s.log,
		}
		if s.committer != nil {
			cfg.Room = s.committer
		}
		s.mu.http = gearhttp.New(cfg)
	}
	h := s.mu.http
	s.mu.Unlock()
	if err := h.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ErrServerClosed
}

// shutdownHTTPLocked starts the graceful stop of the HTTP protocol: its
// listeners close now, its requests finish on their own or at Close. After
// Close it does nothing (Close stopped it, and wg may be being waited on).
func (s *Server) shutdownHTTPLocked() {
	h := s.mu.http
	if h == nil || s.mu.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		h.Shutdown(s.ctx) // returns early with ctx's error at Close
	}()
}
