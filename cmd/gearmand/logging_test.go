package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gearmand/server"
)

func TestLogLevels(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log")
	lg, err := newLogging(&options{logFile: path, level: server.LevelError}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lg.logger.Log(ctx, server.LevelWarning, "hidden warning")
	lg.logger.Log(ctx, server.LevelInfo, "hidden info")
	lg.logger.With("conn", 1).Log(ctx, server.LevelNotice, "shown server notice")
	lg.logger.Log(ctx, server.LevelError, "shown error")
	lg.logger.Log(ctx, server.LevelCritical, "shown critical")
	lg.logger.Log(ctx, server.LevelAlert, "shown alert")
	lg.logger.Log(ctx, server.LevelFatal, "shown fatal")
	lg.notice.Log(ctx, server.LevelNotice, "shown notice")
	lg.notice.Log(ctx, server.LevelInfo, "hidden info")
	lg.close()

	log := readFile(t, path)
	for _, want := range []string{
		`level=ERROR msg="shown error"`,
		`level=CRITICAL msg="shown critical"`,
		`level=ALERT msg="shown alert"`,
		`level=FATAL msg="shown fatal"`,
		`level=NOTICE msg="shown notice"`,
		`level=NOTICE msg="shown server notice" conn=1`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "hidden") {
		t.Errorf("log has records below its level:\n%s", log)
	}
}

func TestLogStderrAndNone(t *testing.T) {
	var stderr bytes.Buffer
	lg, err := newLogging(&options{logFile: logStderr, level: server.LevelDebug}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	lg.logger.Debug("to stderr")
	if !strings.Contains(stderr.String(), `level=DEBUG msg="to stderr"`) {
		t.Errorf("stderr: %q", stderr.String())
	}

	lg, err = newLogging(&options{logFile: logNone, level: server.LevelDebug}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if lg.logger.Enabled(context.Background(), server.LevelFatal) || lg.notice.Enabled(context.Background(), server.LevelFatal) {
		t.Error("--log-file=none logs")
	}
}

func TestLogReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	lg, err := newLogging(&options{logFile: path, level: server.LevelError}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lg.close()
	lg.logger.Error("before")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	lg.logger.Error("still old")
	lg.reopen()
	lg.logger.Error("after")

	old, cur := readFile(t, path+".1"), readFile(t, path)
	if !strings.Contains(old, "before") || !strings.Contains(old, "still old") || strings.Contains(old, "after") {
		t.Errorf("rotated log:\n%s", old)
	}
	if !strings.Contains(cur, "log file reopened") || !strings.Contains(cur, "after") || strings.Contains(cur, "before") {
		t.Errorf("new log:\n%s", cur)
	}
}

func TestLogFileErrors(t *testing.T) {
	_, err := newLogging(&options{logFile: filepath.Join(t.TempDir(), "no", "log")}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "--log-file: ") {
		t.Errorf("unopenable log file: %v", err)
	}
}

// TestSyslogHandler sends through a syslog.Writer to a datagram socket
// standing in for /dev/log and checks priorities and text.
func TestSyslogHandler(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Skipf("no unix datagram sockets: %v", err)
	}
	defer conn.Close()
	w, err := syslog.Dial("unixgram", sock, syslog.LOG_DAEMON|syslog.LOG_NOTICE, "gearmand")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	log := slog.New(newSyslogHandler(w, server.LevelInfo)).With("conn", 7)
	ctx := context.Background()
	for _, tc := range []struct {
		level    slog.Level
		priority string // <facility*8 + severity>, LOG_DAEMON is 3
	}{
		{server.LevelFatal, "<24>"},
		{server.LevelAlert, "<25>"},
		{server.LevelCritical, "<26>"},
		{server.LevelError, "<27>"},
		{server.LevelWarning, "<28>"},
		{server.LevelNotice, "<29>"},
		{server.LevelInfo, "<30>"},
	} {
		log.Log(ctx, tc.level, "hello", "n", 1)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		msg := string(buf[:n])
		want := "level=" + server.LevelName(tc.level) + " msg=hello conn=7 n=1"
		if !strings.HasPrefix(msg, tc.priority) || !strings.HasSuffix(strings.TrimSpace(msg), want) || strings.Contains(msg, "time=") {
			t.Errorf("%s: syslog got %q, want priority %s and text %q", server.LevelName(tc.level), msg, tc.priority, want)
		}
	}
	if log.Enabled(ctx, server.LevelDebug) {
		t.Error("DEBUG passes a handler at INFO")
	}
}

// TestLogJSON: --log-format json writes one JSON object per line, with
// gearmand's level names, the notice logger included.
func TestLogJSON(t *testing.T) {
	var out bytes.Buffer
	lg, err := newLogging(&options{logFile: logStderr, logFormat: logJSON, level: server.LevelError}, &out)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lg.logger.Log(ctx, server.LevelCritical, "store failed", "err", "disk full")
	lg.logger.Log(ctx, server.LevelWarning, "hidden")
	lg.notice.Log(ctx, server.LevelNotice, "started", "listen", "127.0.0.1:4730")
	var got []map[string]any
	for line := range strings.Lines(out.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		got = append(got, rec)
	}
	if len(got) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(got), out.String())
	}
	if got[0]["level"] != "CRITICAL" || got[0]["msg"] != "store failed" || got[0]["err"] != "disk full" {
		t.Errorf("first record: %v", got[0])
	}
	if got[1]["level"] != "NOTICE" || got[1]["listen"] != "127.0.0.1:4730" || got[1]["time"] == nil {
		t.Errorf("second record: %v", got[1])
	}
}
