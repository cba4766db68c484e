// Package interop holds no code of its own: its tests run real Gearman peers
// against our server to prove it is a drop-in replacement for C gearmand.
//
// Each test starts a server.Server in-process on 127.0.0.1:0 and drives it
// with programs installed from Debian packages:
//
//   - gearman and gearadmin, the libgearman command-line client, worker and
//     admin tool (package gearman-tools);
//   - Gearman::Client and Gearman::Worker, the Perl library (package
//     libgearman-client-perl), through the scripts in testdata/.
//
// When a program is missing the tests skip with the package to install, except
// under CI=true, where they fail: CI must never pass by skipping them.
// scripts/test installs the packages when it runs as root.
//
// State is checked through the admin protocol (status, prioritystatus, show
// jobs) and GET_STATUS_UNIQUE, polled until it matches or a deadline passes;
// no test sleeps to wait for something to happen.
package interop
