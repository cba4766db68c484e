package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"gearmand/server"
)

// limitFlags are the resource limits a server on an open network needs
// and gearmand lacks, as parsed. Zero turns each off, except
// --max-unsent-bytes, which must be positive.
type limitFlags struct {
	maxConnections int
	maxQueuedBytes int64
	packetTimeout  time.Duration
	maxUnsentBytes int
	writeTimeout   time.Duration
}

func addLimitFlags(fs *pflag.FlagSet, v *limitFlags) {
	fs.IntVar(&v.maxConnections, "max-connections", 0, "most open Gearman connections; one more gets ERROR TOO_MANY_CONNECTIONS and is closed (0: no limit, as in gearmand)")
	fs.Int64Var(&v.maxQueuedBytes, "max-queued-bytes", 0, "most payload bytes of all queued and running jobs; submits beyond it get ERROR QUEUE_ERROR (0: no limit)")
	fs.DurationVar(&v.packetTimeout, "packet-timeout", server.DefaultPacketTimeout, "time a peer has to finish a packet or admin line once it has begun one; idle connections are never cut (0: no limit)")
	fs.IntVar(&v.maxUnsentBytes, "max-unsent-bytes", server.DefaultMaxUnsentBytes, "most reply bytes waiting for a peer that does not read them before it is disconnected")
	fs.DurationVar(&v.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "time a peer may take no reply bytes at all before it is disconnected (0: no limit)")
}

// check validates the limits; every error names its option.
func (v *limitFlags) check() error {
	switch {
	case v.maxConnections < 0:
		return fmt.Errorf("--max-connections: %d is negative", v.maxConnections)
	case v.maxQueuedBytes < 0:
		return fmt.Errorf("--max-queued-bytes: %d is negative", v.maxQueuedBytes)
	case v.packetTimeout < 0:
		return fmt.Errorf("--packet-timeout: %v is negative", v.packetTimeout)
	case v.maxUnsentBytes <= 0:
		return fmt.Errorf("--max-unsent-bytes: %d is not a positive number of bytes", v.maxUnsentBytes)
	case v.writeTimeout < 0:
		return fmt.Errorf("--write-timeout: %v is negative", v.writeTimeout)
	}
	return nil
}

// apply sets the server's limits; a zero timeout, which turns the limit
// off here, is the server's negative.
func (v *limitFlags) apply(cfg *server.Config) {
	off := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	cfg.MaxConnections = v.maxConnections
	cfg.MaxQueuedBytes = v.maxQueuedBytes
	cfg.PacketTimeout = off(v.packetTimeout)
	cfg.MaxUnsentBytes = v.maxUnsentBytes
	cfg.WriteTimeout = off(v.writeTimeout)
}
