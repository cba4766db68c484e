package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// --daemon re-executes the binary with the same arguments in a new session,
// its stdio on /dev/null. The parent waits on a pipe: the child writes
// readyMessage once it listens and has written the pid file (systemd's
// Type=forking reads PIDFile as soon as the parent exits), or its startup
// error, and the parent exits 0 or prints the error and exits 1.
//
// A Go process cannot fork without exec, hence the re-exec.

// daemonEnv tells the child, by naming the pipe's descriptor, that it is
// the daemon.
const daemonEnv = "GEARMAND_DAEMON_READY_FD"

const readyMessage = "ready\n"

// daemonize starts the daemon and waits until it is ready. It returns the
// parent's exit status.
func daemonize(args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "gearmand: --daemon: %v\n", err)
		return 1
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "gearmand: --daemon: %v\n", err)
		return 1
	}
	defer devNull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "gearmand: --daemon: %v\n", err)
		return 1
	}
	defer r.Close()

	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3") // ExtraFiles[0] is fd 3
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devNull, devNull, devNull
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close() // only the child holds the write end now, so EOF means it is done
	if err != nil {
		fmt.Fprintf(stderr, "gearmand: --daemon: %v\n", err)
		return 1
	}

	msg, _ := io.ReadAll(r)
	if string(msg) == readyMessage {
		cmd.Process.Release()
		return 0
	}
	werr := cmd.Wait()
	switch {
	case len(msg) > 0:
		fmt.Fprintf(stderr, "gearmand: %s\n", strings.TrimSpace(string(msg)))
	case werr != nil:
		fmt.Fprintf(stderr, "gearmand: the daemon failed before it was ready: %v\n", werr)
	default:
		fmt.Fprintln(stderr, "gearmand: the daemon exited before it was ready")
	}
	return 1
}

// readiness is the daemon child's end of the pipe to its parent; a nil
// *readiness (in the foreground) ignores everything.
type readiness struct{ f *os.File }

// daemonChild reports whether this process is the daemon child and, if so,
// returns its pipe to the parent. It removes the marker from the
// environment.
func daemonChild() (*readiness, bool, error) {
	v, ok := os.LookupEnv(daemonEnv)
	if !ok {
		return nil, false, nil
	}
	os.Unsetenv(daemonEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, true, fmt.Errorf("%s=%q: not a file descriptor", daemonEnv, v)
	}
	return &readiness{f: os.NewFile(uintptr(fd), "daemon-ready")}, true, nil
}

// ready tells the parent to exit 0.
func (r *readiness) ready() {
	if r == nil {
		return
	}
	io.WriteString(r.f, readyMessage)
	r.f.Close()
}

// fail gives the parent the reason to exit 1.
func (r *readiness) fail(err error) {
	if r == nil {
		return
	}
	io.WriteString(r.f, err.Error())
	r.f.Close()
}

// detach makes the daemon's file names absolute and leaves the working
// directory, so that it does not hold a mount busy, as daemon(3) does.
func detach(o *options) error {
	pid, err := filepath.Abs(o.pidFile)
	if err != nil {
		return err
	}
	o.pidFile = pid
	if o.store.Path != "" {
		if o.store.Path, err = filepath.Abs(o.store.Path); err != nil {
			return err
		}
	}
	if o.logFile != logStderr && o.logFile != logNone {
		log, err := filepath.Abs(o.logFile)
		if err != nil {
			return err
		}
		o.logFile = log
	}
	return os.Chdir("/")
}
