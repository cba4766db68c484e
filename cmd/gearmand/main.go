// Command gearmand is a Gearman job server that stands in for C gearmand
// 1.1.20: it takes the same command line and config file, logs, daemonizes
// and handles signals the same way, and hands everything else to package
// server.
//
// This package holds only that wiring: options (options.go, queuetypes.go),
// logging (logging.go), listening (listen.go), --daemon (daemon.go) and the
// process's life from start to exit (run.go).
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
