package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"
	"sync"

	"gearmand/server"
)

// logging is where the process logs: a text or JSON handler
// (--log-format) on stderr or a log file, and syslog with --syslog, all
// printing gearmand's level names.
type logging struct {
	// logger filters at the chosen level, except that NOTICE records
	// always pass: the server's lines about its life (replay progress,
	// graceful stops, jobs left at the stop) are NOTICE, and an operator
	// must see them at the default ERROR level too. The server logs
	// through it.
	logger *slog.Logger
	// notice always passes NOTICE and above, whatever the level: the few
	// lines an operator must see even at the default ERROR level (where it
	// listens, why it stops).
	notice *slog.Logger

	file   *logFile       // nil unless logging to a file
	sys    *syslog.Writer // nil without --syslog
	stderr bool           // the log is stderr
}

// newLogging opens the log that o asks for.
func newLogging(o *options, stderr io.Writer) (*logging, error) {
	lg := &logging{}
	var outputs []io.Writer
	switch o.logFile {
	case logNone:
	case logStderr:
		lg.stderr = true
		outputs = append(outputs, stderr)
	default:
		f, err := openLogFile(o.logFile)
		if err != nil {
			return nil, fmt.Errorf("--log-file: %w", err)
		}
		lg.file = f
		outputs = append(outputs, f)
	}
	if o.syslog {
		w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_NOTICE, "gearmand")
		if err != nil {
			lg.close()
			return nil, fmt.Errorf("--syslog: %w", err)
		}
		lg.sys = w
	}

	handlers := func(level slog.Level) slog.Handler {
		var hs []slog.Handler
		for _, w := range outputs {
			hs = append(hs, newFormatHandler(o.logFormat, w, level))
		}
		if lg.sys != nil {
			hs = append(hs, newSyslogHandler(lg.sys, level))
		}
		switch len(hs) {
		case 0:
			return slog.DiscardHandler
		case 1:
			return hs[0]
		}
		return slog.NewMultiHandler(hs...)
	}
	atNotice := handlers(min(o.level, server.LevelNotice))
	lg.logger = slog.New(noticeAlways{Handler: atNotice, level: o.level})
	lg.notice = slog.New(atNotice)
	return lg, nil
}

// noticeAlways passes records at level and above, and NOTICE records
// whatever the level, to a Handler that passes both.
type noticeAlways struct {
	slog.Handler
	level slog.Level
}

func (h noticeAlways) Enabled(ctx context.Context, l slog.Level) bool {
	return (l >= h.level || l == server.LevelNotice) && h.Handler.Enabled(ctx, l)
}

func (h noticeAlways) WithAttrs(as []slog.Attr) slog.Handler {
	return noticeAlways{Handler: h.Handler.WithAttrs(as), level: h.level}
}

func (h noticeAlways) WithGroup(name string) slog.Handler {
	return noticeAlways{Handler: h.Handler.WithGroup(name), level: h.level}
}

// newFormatHandler writes records to w in format (logJSON, else text),
// with gearmand's level names.
func newFormatHandler(format string, w io.Writer, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: server.ReplaceLevelAttr}
	if format == logJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// reopen reopens the log file after logrotate moved it away (SIGHUP). On
// failure the old file stays in use and the failure is logged to it.
func (lg *logging) reopen() {
	if lg.file == nil {
		return
	}
	if err := lg.file.reopen(); err != nil {
		lg.logger.Error("reopening the log file failed; still writing to the old one", "err", err)
		return
	}
	lg.notice.Log(context.Background(), server.LevelNotice, "log file reopened", "file", lg.file.path)
}

// fatal logs why the process cannot go on, unless the log is stderr, where
// the caller prints it anyway.
func (lg *logging) fatal(err error) {
	if !lg.stderr {
		lg.logger.Log(context.Background(), server.LevelFatal, err.Error())
	}
}

func (lg *logging) close() {
	if lg.file != nil {
		lg.file.close()
	}
	if lg.sys != nil {
		lg.sys.Close()
	}
}

// logFile is an appending log file that can be reopened under its name.
// Each slog record arrives in one Write, so records never interleave.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func (l *logFile) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

func (l *logFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// syslogHandler formats records as the text handler does, without the time
// (syslog stamps its own), and sends each at the syslog priority of its
// level, as gearmand does.
type syslogHandler struct {
	w    *syslog.Writer
	mu   *sync.Mutex   // guards buf, shared with the handlers derived by With*
	buf  *bytes.Buffer // where text writes one record
	text slog.Handler
}

func newSyslogHandler(w *syslog.Writer, level slog.Leveler) *syslogHandler {
	buf := new(bytes.Buffer)
	return &syslogHandler{
		w:   w,
		mu:  new(sync.Mutex),
		buf: buf,
		text: slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return server.ReplaceLevelAttr(groups, a)
		}}),
	}
}

func (h *syslogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.text.Enabled(ctx, l)
}

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.buf.Reset()
	err := h.text.Handle(ctx, r)
	msg := strings.TrimSuffix(h.buf.String(), "\n")
	h.mu.Unlock()
	if err != nil {
		return err
	}
	switch {
	case r.Level >= server.LevelFatal:
		return h.w.Emerg(msg)
	case r.Level >= server.LevelAlert:
		return h.w.Alert(msg)
	case r.Level >= server.LevelCritical:
		return h.w.Crit(msg)
	case r.Level >= server.LevelError:
		return h.w.Err(msg)
	case r.Level >= server.LevelWarning:
		return h.w.Warning(msg)
	case r.Level >= server.LevelNotice:
		return h.w.Notice(msg)
	case r.Level >= server.LevelInfo:
		return h.w.Info(msg)
	}
	return h.w.Debug(msg)
}

func (h *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(as)
	return &c
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}
