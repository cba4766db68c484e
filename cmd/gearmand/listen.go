package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
)

// listen binds port on every address host resolves to, or on every
// address of the machine (IPv4 and IPv6) when host is empty. Like gearmand
// it goes on when only some of a host's addresses can be bound (typically
// ::1 on a machine without IPv6), logging the others, and fails only when
// none can.
func listen(ctx context.Context, host string, port int, log *slog.Logger) ([]net.Listener, error) {
	var lc net.ListenConfig
	p := strconv.Itoa(port)
	if host == "" {
		l, err := lc.Listen(ctx, "tcp", ":"+p)
		if err != nil {
			return nil, err
		}
		return []net.Listener{l}, nil
	}

	var addrs []string
	if ip := net.ParseIP(host); ip != nil {
		addrs = []string{ip.String()}
	} else {
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("--listen: %w", err)
		}
		seen := make(map[string]bool)
		for _, ip := range ips {
			if a := ip.String(); !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}

	var ls []net.Listener
	var errs []error
	for _, a := range addrs {
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(a, p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil, errors.Join(errs...)
	}
	for _, err := range errs {
		log.Error("could not listen on one of the addresses; serving on the others", "err", err)
	}
	return ls, nil
}

// serveTLS wraps each listener so that its connections speak TLS with cfg.
// The handshake happens on each connection's own goroutine in the server,
// never in the accept loop.
func serveTLS(ls []net.Listener, cfg *tls.Config) []net.Listener {
	out := make([]net.Listener, len(ls))
	for i, l := range ls {
		out[i] = tls.NewListener(l, cfg)
	}
	return out
}
