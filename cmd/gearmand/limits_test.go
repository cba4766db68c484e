package main

import (
	"strings"
	"testing"
	"time"

	"gearmand/server"
)

// defaultLimits are the limits when no option sets them.
var defaultLimits = limitFlags{
	packetTimeout:  server.DefaultPacketTimeout,
	maxUnsentBytes: server.DefaultMaxUnsentBytes,
	writeTimeout:   server.DefaultWriteTimeout,
}

func TestLimitOptions(t *testing.T) {
	o, err := parseOptions([]string{"--max-connections", "100", "--max-queued-bytes", "1048576",
		"--packet-timeout", "5s", "--max-unsent-bytes", "4096", "--write-timeout", "0"}, env())
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.serverConfig(nil)
	if cfg.MaxConnections != 100 || cfg.MaxQueuedBytes != 1<<20 || cfg.PacketTimeout != 5*time.Second ||
		cfg.MaxUnsentBytes != 4096 || cfg.WriteTimeout >= 0 {
		t.Fatalf("server limits: connections %d, queued bytes %d, packet timeout %v, unsent bytes %d, write timeout %v (want negative: off)",
			cfg.MaxConnections, cfg.MaxQueuedBytes, cfg.PacketTimeout, cfg.MaxUnsentBytes, cfg.WriteTimeout)
	}
	o, err = parseOptions([]string{"--packet-timeout", "0"}, env())
	if err != nil {
		t.Fatal(err)
	}
	if got := o.serverConfig(nil).PacketTimeout; got >= 0 {
		t.Fatalf("--packet-timeout 0 gave the server %v, want negative: off", got)
	}
}

func TestLimitOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-connections", "-1"}, "--max-connections: -1 is negative"},
		{[]string{"--max-queued-bytes", "-5"}, "--max-queued-bytes: -5 is negative"},
		{[]string{"--packet-timeout", "-1s"}, "--packet-timeout: -1s is negative"},
		{[]string{"--max-unsent-bytes", "0"}, "--max-unsent-bytes: 0 is not a positive number of bytes"},
		{[]string{"--write-timeout", "-2s"}, "--write-timeout: -2s is negative"},
		{[]string{"--packet-timeout", "soon"}, "--packet-timeout"},
	} {
		_, err := parseOptions(tc.args, env())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseOptions(%q): error %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}
