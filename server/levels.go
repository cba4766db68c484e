package server

import (
	"fmt"
	"log/slog"
	"strings"

	"gearmand/store"
)

// gearmand's log levels as slog levels. ERROR, WARNING, INFO and DEBUG are
// slog's own; the others sit between and above them.
const (
	LevelDebug    = slog.LevelDebug
	LevelInfo     = slog.LevelInfo
	LevelNotice   = store.LevelNotice // slog.Level(2), also for the store drivers
	LevelWarning  = slog.LevelWarn
	LevelError    = slog.LevelError
	LevelCritical = slog.Level(12)
	LevelAlert    = slog.Level(16)
	LevelFatal    = slog.Level(20)
)

var levelNames = []struct {
	name  string
	level slog.Level
}{
	{"FATAL", LevelFatal},
	{"ALERT", LevelAlert},
	{"CRITICAL", LevelCritical},
	{"ERROR", LevelError},
	{"WARNING", LevelWarning},
	{"NOTICE", LevelNotice},
	{"INFO", LevelInfo},
	{"DEBUG", LevelDebug},
}

// ParseLevel maps a gearmand level name (case-insensitive) to its slog
// level.
func ParseLevel(name string) (slog.Level, error) {
	for _, l := range levelNames {
		if strings.EqualFold(name, l.name) {
			return l.level, nil
		}
	}
	return 0, fmt.Errorf("unknown log level %q (want FATAL, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO or DEBUG)", name)
}

// LevelName returns the gearmand name of the highest gearmand level at or
// below l.
func LevelName(l slog.Level) string {
	for _, n := range levelNames {
		if l >= n.level {
			return n.name
		}
	}
	return "DEBUG"
}

// ReplaceLevelAttr is a slog.HandlerOptions.ReplaceAttr that prints levels
// with gearmand's names.
func ReplaceLevelAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			a.Value = slog.StringValue(LevelName(l))
		}
	}
	return a
}
