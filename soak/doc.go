// Package soak holds the soak test of the server (it has no code of its
// own): thousands of concurrent connections push jobs through a server
// whose background jobs are written through to a bolt store, while workers
// drop their connections in the middle of jobs at random. It checks that
// every job the server acknowledged with JOB_CREATED ran to completion
// exactly once (no crash happens, so at-least-once must be exactly once),
// that the queue and the store are empty at the end, and that memory stays
// under a ceiling that does not depend on how many jobs went through.
//
// A short version runs with every `go test` (500 connections, 20,000
// jobs). The long one runs with GEARMAND_SOAK=1 (5,000 connections,
// 1,000,000 jobs); run it without -race, whose detector allows at most
// 8,128 live goroutines:
//
//	GEARMAND_SOAK=1 go test -run TestSoak -v -timeout 30m ./soak/
//
// The server runs in the test process, so the memory measured is the
// whole process's (server, clients, workers and the test's ledger) and the
// ceilings are generous. Clients keep at most a window of acknowledged
// but unfinished jobs outstanding, so a leak proportional to the jobs
// processed would show against the ceiling.
package soak
