package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gearmand/server"
)

// These tests run the real binary: exit statuses, stdio, --daemon and
// signals are properties of the process.

// buildGearmand builds the command into a temporary directory.
func buildGearmand(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build gearmand: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "gearmand")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// gearmandCmd is a command running bin with args, GEARMAND_PORT unset and
// a config file that does not exist, so that the machine's settings do not
// leak in. It runs in a temporary directory, where the default store file
// (gearmand.db) is created.
func gearmandCmd(t *testing.T, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{"--config-file", writeConfig(t, "")}, args...)...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GEARMAND_PORT=") && !strings.HasPrefix(kv, daemonEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

// runGearmand runs bin to completion and returns its stdout, stderr and
// exit status.
func runGearmand(t *testing.T, bin string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := gearmandCmd(t, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		status = exit.ExitCode()
	default:
		t.Fatalf("running gearmand %q: %v", args, err)
	}
	return o.String(), e.String(), status
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// processGone reports whether pid has exited. A daemon is not our child,
// so once it exits it may linger as a zombie until init reaps it.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// waitExit waits up to 10 seconds for cmd to exit and returns what Wait
// returned; then it kills cmd and fails.
func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gearmand %d did not exit", cmd.Process.Pid)
		return nil
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// adminVersion asks the server at addr for its version over the admin
// protocol.
func adminVersion(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("version\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the version from %s: %v", addr, err)
	}
	return line
}

var listenRE = regexp.MustCompile(`msg="gearmand started" .*listen=(\S+)`)

// startedAddr returns the listen address of the "gearmand started" line in
// log, or "".
func startedAddr(log string) string {
	m := listenRE.FindStringSubmatch(log)
	if m == nil {
		return ""
	}
	return strings.Split(m[1], ",")[0]
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildGearmand(t)

	t.Run("version", func(t *testing.T) {
		for _, arg := range []string{"-V", "--version"} {
			stdout, stderr, status := runGearmand(t, bin, arg)
			if status != 0 || stderr != "" || !strings.HasPrefix(stdout, "gearmand "+server.Version+" - ") {
				t.Errorf("gearmand %s: status %d, stdout %q, stderr %q", arg, status, stdout, stderr)
			}
		}
	})

	t.Run("help", func(t *testing.T) {
		for _, arg := range []string{"-h", "--help"} {
			stdout, stderr, status := runGearmand(t, bin, arg)
			if status != 0 || stderr != "" {
				t.Errorf("gearmand %s: status %d, stderr %q", arg, status, stderr)
			}
			for _, want := range []string{"Usage: gearmand", "--port", "--listen", "--daemon", "--pid-file", "--log-file", "--verbose", "--job-retries", "--queue-type", "--config-file"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("gearmand %s does not mention %s:\n%s", arg, want, stdout)
				}
			}
			if strings.Contains(stdout, "libtokyocabinet-file") {
				t.Errorf("gearmand %s shows hidden options:\n%s", arg, stdout)
			}
		}
	})

	t.Run("bad options", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--po", "1234"}, "gearmand: unknown flag: --po\n"},
			{[]string{"stray"}, "gearmand: unexpected argument \"stray\"\n"},
			{[]string{"--verbose", "LOUD"}, "gearmand: --verbose: unknown log level \"LOUD\""},
			{[]string{"-j", "256"}, "gearmand: --job-retries: 256 is out of range"},
			{[]string{"-q", "libmemcached"}, "gearmand: --queue-type: queue type libmemcached is not supported: "},
		} {
			stdout, stderr, status := runGearmand(t, bin, tc.args...)
			if status != 1 || stdout != "" || !strings.HasPrefix(stderr, tc.want) {
				t.Errorf("gearmand %q: status %d, stdout %q, stderr %q; want status 1 and stderr starting %q", tc.args, status, stdout, stderr, tc.want)
			}
		}
	})

	t.Run("check-args", func(t *testing.T) {
		dir := t.TempDir()
		pid := filepath.Join(dir, "gm.pid")
		stdout, stderr, status := runGearmand(t, bin, "--check-args", "-p", "1", "-j", "3", "-P", pid, "-d")
		if status != 0 || stdout != "" || stderr != "" {
			t.Errorf("--check-args: status %d, stdout %q, stderr %q", status, stdout, stderr)
		}
		if fileExists(pid) {
			t.Error("--check-args wrote the pid file")
		}
		if _, _, status := runGearmand(t, bin, "--check-args", "-j", "-5"); status != 1 {
			t.Errorf("--check-args with a bad -j: status %d, want 1", status)
		}
		// The store is looked at too: a missing directory, a port where
		// nothing listens. Nothing is created.
		missing := filepath.Join(dir, "no", "such", "gearmand.db")
		aFile := filepath.Join(dir, "a-file")
		if err := os.WriteFile(aFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--bolt-file", missing}, "gearmand: --queue-type=bolt: --bolt-file: directory " + filepath.Dir(missing)},
			{[]string{"-q", "libsqlite3", "--libsqlite3-db", missing}, "gearmand: --queue-type=libsqlite3: --libsqlite3-db: directory"},
			{[]string{"-q", "pebble", "--pebble-dir", aFile}, "gearmand: --queue-type=pebble: --pebble-dir: " + aFile + " is not a directory"},
			{[]string{"-q", "redis", "--redis-server", "127.0.0.1", "--redis-port", strconv.Itoa(closedPort(t))}, "gearmand: --queue-type=redis: --redis-addr (or --redis-server, --redis-port, --redis-password): redis 127.0.0.1:"},
			{[]string{"-q", "Postgres", "--dsn", "postgres://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/x"}, "gearmand: --queue-type=Postgres: --dsn (or --libpq-conninfo): cannot connect"},
			{[]string{"-q", "MySQL", "--mysql-host", "127.0.0.1", "--mysql-port", strconv.Itoa(closedPort(t)), "--mysql-db", "x"}, "gearmand: --queue-type=MySQL: mysql: cannot reach the server"},
		} {
			args := append([]string{"--check-args"}, tc.args...)
			_, stderr, status := runGearmand(t, bin, args...)
			if status != 1 || !strings.HasPrefix(stderr, tc.want) {
				t.Errorf("gearmand %q: status %d, stderr %q; want 1 and stderr starting %q", args, status, stderr, tc.want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "no")); err == nil {
			t.Error("--check-args created a directory")
		}
	})

	t.Run("foreground", func(t *testing.T) {
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "gm.pid")
		logFile := filepath.Join(dir, "log")
		cmd := gearmandCmd(t, bin, "-p", "0", "-L", "127.0.0.1", "-P", pidFile, "-l", logFile)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })

		waitFor(t, "the started line in the log", func() bool { return startedAddr(readFile(t, logFile)) != "" })
		addr := startedAddr(readFile(t, logFile))
		if got := readFile(t, pidFile); got != strconv.Itoa(cmd.Process.Pid)+"\n" {
			t.Errorf("pid file holds %q, want %d", got, cmd.Process.Pid)
		}
		if got := adminVersion(t, addr); got != "OK "+server.Version+"\n" {
			t.Errorf("version = %q", got)
		}

		// logrotate: move the log away and SIGHUP.
		if err := os.Rename(logFile, logFile+".1"); err != nil {
			t.Fatal(err)
		}
		cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, "the reopened log file", func() bool { return strings.Contains(readFile(t, logFile), "log file reopened") })

		cmd.Process.Signal(syscall.SIGTERM)
		if err := waitExit(t, cmd); err != nil {
			t.Errorf("after SIGTERM: %v (stderr %q)", err, stderr.String())
		}
		if fileExists(pidFile) {
			t.Error("the pid file is still there")
		}
		if log := readFile(t, logFile); !strings.Contains(log, "level=NOTICE msg=stopping signal=SIGTERM") || !strings.Contains(log, "gearmand stopped") {
			t.Errorf("log after SIGTERM:\n%s", log)
		}
		if stderr.Len() != 0 {
			t.Errorf("logged to a file, yet wrote to stderr: %q", stderr.String())
		}
	})

	t.Run("sigusr1 and stderr log", func(t *testing.T) {
		dir := t.TempDir()
		cmd := gearmandCmd(t, bin, "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(dir, "gm.pid"))
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		lines := make(chan string, 100)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// The replay's NOTICE line comes first, then the started line.
		var early []string
		for startedAddr(strings.Join(early, "\n")) == "" {
			select {
			case l := <-lines:
				if !strings.Contains(l, "level=NOTICE") {
					t.Fatalf("line on stderr before the started line: %q", l)
				}
				early = append(early, l)
			case <-time.After(10 * time.Second):
				t.Fatalf("no started line on stderr: %q", early)
			}
		}
		cmd.Process.Signal(syscall.SIGUSR1)
		var rest []string
		for l := range lines {
			rest = append(rest, l)
		}
		if err := waitExit(t, cmd); err != nil {
			t.Errorf("after SIGUSR1 with no jobs: %v", err)
		}
		if !strings.Contains(strings.Join(rest, "\n"), "signal=SIGUSR1") {
			t.Errorf("stderr after SIGUSR1:\n%s", strings.Join(rest, "\n"))
		}
	})

	t.Run("pid file", func(t *testing.T) {
		dir := t.TempDir()
		// An explicit pid file that cannot be written is fatal.
		bad := filepath.Join(dir, "missing", "gm.pid")
		_, stderr, status := runGearmand(t, bin, "-p", "0", "-L", "127.0.0.1", "-P", bad)
		if status != 1 || !strings.Contains(stderr, "--pid-file") {
			t.Errorf("unwritable -P: status %d, stderr %q", status, stderr)
		}
	})

	t.Run("file descriptors", func(t *testing.T) {
		dir := t.TempDir()
		logFile := filepath.Join(dir, "log")
		cmd := gearmandCmd(t, bin, "-f", "1000", "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(dir, "gm.pid"), "-l", logFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitFor(t, "the started line in the log", func() bool { return startedAddr(readFile(t, logFile)) != "" })
		limits := readFile(t, "/proc/"+strconv.Itoa(cmd.Process.Pid)+"/limits")
		if !regexp.MustCompile(`Max open files\s+1000\s`).MatchString(limits) {
			t.Errorf("-f 1000, limits:\n%s", limits)
		}
		cmd.Process.Signal(syscall.SIGINT)
		if err := waitExit(t, cmd); err != nil {
			t.Errorf("after SIGINT: %v", err)
		}
	})

	t.Run("user", func(t *testing.T) {
		dir := t.TempDir()
		if os.Geteuid() != 0 {
			_, stderr, status := runGearmand(t, bin, "-u", "nobody", "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(dir, "gm.pid"))
			if status != 1 || !strings.Contains(stderr, "--user nobody: only root") {
				t.Errorf("-u as a normal user: status %d, stderr %q", status, stderr)
			}
			return
		}
		account, err := user.Lookup("nobody")
		if err != nil {
			t.Skipf("no user nobody: %v", err)
		}
		if _, stderr, status := runGearmand(t, bin, "-u", "no-such-user-here", "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(dir, "gm.pid")); status != 1 || !strings.Contains(stderr, "--user: ") {
			t.Errorf("-u with an unknown user: status %d, stderr %q", status, stderr)
		}
		logFile := filepath.Join(dir, "log")
		// Memory only: nobody could not create the default store file in
		// the root-owned test directory.
		cmd := gearmandCmd(t, bin, "-u", "nobody", "-q", "builtin", "-p", "0", "-L", "127.0.0.1", "-P", filepath.Join(dir, "gm.pid"), "-l", logFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitFor(t, "the started line in the log", func() bool { return startedAddr(readFile(t, logFile)) != "" })
		status := readFile(t, "/proc/"+strconv.Itoa(cmd.Process.Pid)+"/status")
		if !regexp.MustCompile(`(?m)^Uid:\s+`+account.Uid+`\s+`+account.Uid+`\s`).MatchString(status) ||
			!regexp.MustCompile(`(?m)^Gid:\s+`+account.Gid+`\s+`+account.Gid+`\s`).MatchString(status) {
			t.Errorf("-u nobody (uid %s gid %s), status:\n%s", account.Uid, account.Gid, status)
		}
		if got := adminVersion(t, startedAddr(readFile(t, logFile))); got != "OK "+server.Version+"\n" {
			t.Errorf("version = %q", got)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := waitExit(t, cmd); err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	})

	t.Run("daemon", func(t *testing.T) {
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "gm.pid")
		logFile := filepath.Join(dir, "log")
		port := freePort(t)
		stdout, stderr, status := runGearmand(t, bin, "-d", "-P", pidFile, "-l", logFile, "-p", strconv.Itoa(port), "-L", "127.0.0.1")
		if status != 0 || stdout != "" || stderr != "" {
			t.Fatalf("gearmand -d: status %d, stdout %q, stderr %q\nlog:\n%s", status, stdout, stderr, readFile(t, logFile))
		}
		// The parent has exited: the pid file must be there already.
		text := readFile(t, pidFile)
		pid, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			t.Fatalf("pid file right after the parent exited: %q", text)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		if processGone(pid) {
			t.Fatalf("daemon %d is not running; log:\n%s", pid, readFile(t, logFile))
		}
		if !strings.Contains(readFile(t, logFile), "gearmand started") {
			t.Errorf("log:\n%s", readFile(t, logFile))
		}
		if got := adminVersion(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); got != "OK "+server.Version+"\n" {
			t.Errorf("version = %q", got)
		}

		syscall.Kill(pid, syscall.SIGTERM)
		waitFor(t, "the daemon to exit", func() bool { return processGone(pid) })
		waitFor(t, "the pid file to go", func() bool { return !fileExists(pidFile) })
		if log := readFile(t, logFile); !strings.Contains(log, "gearmand stopped") {
			t.Errorf("log after SIGTERM:\n%s", log)
		}
	})

	t.Run("daemon with relative paths", func(t *testing.T) {
		dir := t.TempDir()
		cmd := gearmandCmd(t, bin, "-d", "-P", "gm.pid", "-l", "log", "-p", strconv.Itoa(freePort(t)), "-L", "127.0.0.1")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gearmand -d: %v: %s", err, out)
		}
		pidFile := filepath.Join(dir, "gm.pid")
		pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
		if err != nil {
			t.Fatalf("pid file: %v", err)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err != nil || cwd != "/" {
			t.Errorf("the daemon's working directory is %q (%v), want /", cwd, err)
		}
		syscall.Kill(pid, syscall.SIGTERM)
		waitFor(t, "the pid file to go", func() bool { return !fileExists(pidFile) })
		waitFor(t, "the daemon to exit", func() bool { return processGone(pid) })
		if log := readFile(t, filepath.Join(dir, "log")); !strings.Contains(log, "gearmand started") || !strings.Contains(log, "gearmand stopped") {
			t.Errorf("log:\n%s", log)
		}
	})

	t.Run("daemon fails to start", func(t *testing.T) {
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "gm.pid")
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
		_, stderr, status := runGearmand(t, bin, "-d", "-P", pidFile, "-l", filepath.Join(dir, "log"), "-p", port, "-L", "127.0.0.1")
		if status != 1 || !strings.Contains(stderr, "address already in use") {
			t.Errorf("gearmand -d on a taken port: status %d, stderr %q", status, stderr)
		}
		if fileExists(pidFile) {
			t.Error("a daemon that failed left its pid file")
		}
		if log := readFile(t, filepath.Join(dir, "log")); !strings.Contains(log, "level=FATAL") {
			t.Errorf("the failure is not in the log:\n%s", log)
		}
	})

	t.Run("admin shutdown", func(t *testing.T) {
		dir := t.TempDir()
		logFile := filepath.Join(dir, "log")
		pidFile := filepath.Join(dir, "gm.pid")
		cmd := gearmandCmd(t, bin, "-p", "0", "-L", "127.0.0.1", "-P", pidFile, "-l", logFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		waitFor(t, "the started line in the log", func() bool { return startedAddr(readFile(t, logFile)) != "" })
		c, err := net.Dial("tcp", startedAddr(readFile(t, logFile)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("shutdown\n"))
		if err := waitExit(t, cmd); err != nil {
			t.Errorf("after admin shutdown: %v", err)
		}
		if fileExists(pidFile) {
			t.Error("the pid file is still there")
		}
	})
}

// closedPort is a loopback TCP port where nothing listened a moment ago.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
