package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"gearmand/server"
	"gearmand/server/web"
)

// webFlags is --web-listen, as parsed.
type webFlags struct {
	listen string
}

func addWebFlags(fs *pflag.FlagSet, v *webFlags) {
	fs.StringVar(&v.listen, "web-listen", "", "host:port for the web dashboard, its JSON API (/api/...) and Prometheus /metrics, e.g. 127.0.0.1:8081; off unless given. It serves during the start-up replay too")
}

// address validates --web-listen: "" when off, else a host:port whose port
// is none of the Gearman ones (gearmanPort, and httpPort when not nil).
func (v *webFlags) address(gearmanPort int, http *httpOptions) (string, error) {
	if v.listen == "" {
		return "", nil
	}
	_, p, err := net.SplitHostPort(v.listen)
	if err != nil {
		return "", fmt.Errorf("--web-listen: %q is not host:port (%v)", v.listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", fmt.Errorf("--web-listen: %q is not a port number (0..65535)", p)
	}
	if port != 0 && port == gearmanPort {
		return "", fmt.Errorf("--web-listen: port %d is the Gearman port (--port); the web listener needs its own", port)
	}
	if port != 0 && http != nil && port == http.port {
		return "", fmt.Errorf("--web-listen: port %d is the HTTP protocol's port (--http-port); the web listener needs its own", port)
	}
	return v.listen, nil
}

// listenWeb binds --web-listen; nil when it is off.
func listenWeb(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--web-listen: %w", err)
	}
	return l, nil
}

// serveWeb serves the dashboard, JSON API and metrics of p.srv on l (when
// not nil) until stopWeb. A web listener that fails is logged; it does not
// stop the job server.
func (p *process) serveWeb(l net.Listener) {
	if l == nil {
		return
	}
	p.web = &http.Server{
		Handler:           web.New(p.srv, p.log.logger),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := p.web.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			p.log.logger.Error("the web listener failed; the dashboard and /metrics are down", "listen", l.Addr().String(), "err", err)
		}
	}()
	p.log.notice.Log(context.Background(), server.LevelNotice, "web dashboard started",
		"url", "http://"+l.Addr().String()+"/", "metrics", "http://"+l.Addr().String()+"/metrics")
}

// stopWeb stops the web listener, giving requests in flight a moment.
func (p *process) stopWeb() {
	if p.web == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.web.Shutdown(ctx); err != nil {
		p.web.Close()
	}
	p.web = nil
}
