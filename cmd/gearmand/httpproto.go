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

// httpPort validates the options: the port to serve the HTTP protocol on,
// or -1 when it is off.
func (v *httpFlags) httpPort(fs *pflag.FlagSet) (int, error) {
	switch {
	case v.protocol == "":
		if fs.Changed("http-port") {
			return 0, errors.New("--http-port: needs -r http")
		}
		return -1, nil
	case !strings.EqualFold(v.protocol, "http"):
		return 0, fmt.Errorf(`--protocol: %q is not supported (the only protocol is "http")`, v.protocol)
	case v.port < 0 || v.port > 65535:
		return 0, fmt.Errorf("--http-port: %d is not a port number (0..65535)", v.port)
	}
	return v.port, nil
}

// listenHTTP binds the HTTP protocol's port on the --listen addresses, as
// gearmand does; nothing when -r http is not given.
func listenHTTP(o *options, log *slog.Logger) ([]net.Listener, error) {
	if o.httpPort < 0 {
		return nil, nil
	}
	ls, err := listen(context.Background(), o.listen, o.httpPort, log)
	if err != nil {
		return nil, fmt.Errorf("--http-port %d: %w", o.httpPort, err)
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
