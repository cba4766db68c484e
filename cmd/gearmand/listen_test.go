package main

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
)

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func TestListen(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	ls, err := listen(ctx, "127.0.0.1", 0, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || !strings.HasPrefix(ls[0].Addr().String(), "127.0.0.1:") {
		t.Errorf("-L 127.0.0.1 bound %v", ls)
	}
	closeAll(ls)

	// Every address of a name is bound.
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	ls, err = listen(ctx, "localhost", 0, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) == 0 || len(ls) > len(ips) {
		t.Errorf("localhost resolves to %v, bound %d listeners", ips, len(ls))
	}
	for _, l := range ls {
		if !l.Addr().(*net.TCPAddr).IP.IsLoopback() {
			t.Errorf("localhost bound %s", l.Addr())
		}
	}
	closeAll(ls)

	// No host: every address.
	ls, err = listen(ctx, "", 0, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || !ls[0].Addr().(*net.TCPAddr).IP.IsUnspecified() {
		t.Errorf("no -L bound %v", ls[0].Addr())
	}
	closeAll(ls)
}

func TestListenErrors(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	if ls, err := listen(ctx, "127.0.0.1", port, log); err == nil || !strings.Contains(err.Error(), "address already in use") {
		closeAll(ls)
		t.Errorf("taken port: %v", err)
	}
	if ls, err := listen(ctx, "no-such-host.invalid", 0, log); err == nil || !strings.HasPrefix(err.Error(), "--listen: ") {
		closeAll(ls)
		t.Errorf("unresolvable host: %v", err)
	}
}
