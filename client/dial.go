package client

import (
	"context"
	"crypto/tls"
	"net"
)

// A DialOption changes how Dial and NewWorker connect.
type DialOption func(*dialer)

// dialer is what the options configure.
type dialer struct {
	tls *tls.Config
}

// WithTLS makes Dial and NewWorker speak TLS with cfg (a server started with
// --ssl). When cfg.ServerName is empty the host part of the address is
// verified. Put a client certificate in cfg.Certificates when the server
// asks for one (--ssl-verify-client); a verified certificate also lets the
// connection run the admin commands that change state.
func WithTLS(cfg *tls.Config) DialOption {
	return func(d *dialer) { d.tls = cfg }
}

// connect opens a TCP connection to addr, completing the TLS handshake first
// when an option asks for TLS; ctx bounds both.
func connect(ctx context.Context, addr string, opts []DialOption) (net.Conn, error) {
	var d dialer
	for _, opt := range opts {
		opt(&d)
	}
	if d.tls != nil {
		td := tls.Dialer{Config: d.tls}
		return td.DialContext(ctx, "tcp", addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}
