package mariadbtest

import "syscall"

// sysProcAttr makes the server die with the test binary, so that a test
// binary killed by go test's timeout leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
