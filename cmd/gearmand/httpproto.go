package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/spf13/pflag"

	"gearmand/server"
)

// defaultHTTPPort is gearmand's --http-port default.
const defaultHTTPPort = 8080

// httpFlags are gearmand's -r/--protocol and --http-port, as parsed.
type httpFlags struct {
	protocol string
	port     int
}

func addHTTPFlags(fs *pflag.FlagSet, v *httpFlags) {
	fs.StringVarP(&v.protocol, "protocol", "r", "", `extra protocol to serve: "http", gearmand's HTTP protocol on --http-port (on the --listen addresses)`)
	fs.IntVar(&v.port, "http-port", defaultHTTPPort, "TCP port of the HTTP protocol (-r http); 0 picks a free port")
}

// httpOptions are the HTTP protocol's settings when -r http is given.
type httpOptions struct {
	port int // 0 picks a free port
}

// options validates the flags: nil when the HTTP protocol is off.
func (v *httpFlags) options(fs *pflag.FlagSet) (*httpOptions, error) {
	switch {
	case v.protocol == "":
		if fs.Changed("http-port") {
			return nil, errors.New("--http-port: needs -r http")
		}
		return nil, nil
	case !strings.EqualFold(v.protocol, "http"):
		return nil, fmt.Errorf(`--protocol: %q is not supported (the only protocol is "http")`, v.protocol)
	case v.port < 0 || v.port > 65535:
		return nil, fmt.Errorf("--http-port: %d is not a port number (0..65535)", v.port)
	}
	return &httpOptions{port: v.port}, nil
}

// listenHTTP binds the HTTP protocol's port on the --listen addresses, as
// gearmand does; nothing when -r http is not given.
func listenHTTP(o *options, log *slog.Logger) ([]net.Listener, error) {
	if o.http == nil {
		return nil, nil
	}
	ls, err := listen(context.Background(), o.listen, o.http.port, log)
	if err != nil {
		return nil, fmt.Errorf("--http-port %d: %w", o.http.port, err)
	}
	return ls, nil
}

// serveHTTP serves the HTTP protocol on ls; a listener that fails for good
// is reported on p.serveErr, which must have room for it.
func (p *process) serveHTTP(ls []net.Listener) {
	if len(ls) == 0 {
		return
	}
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.Addr().String()
		go func() {
			if err := p.srv.ServeHTTPProtocol(l); !errors.Is(err, server.ErrServerClosed) {
				p.serveErr <- fmt.Errorf("HTTP listener %s: %w", l.Addr(), err)
			}
		}()
	}
	p.log.notice.Log(context.Background(), server.LevelNotice, "HTTP protocol started", "listen", strings.Join(addrs, ","))
}
