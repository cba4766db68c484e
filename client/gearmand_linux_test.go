package client

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill a child server if the test binary dies
// first (a -timeout panic skips t.Cleanup).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
