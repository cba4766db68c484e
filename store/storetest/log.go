package storetest

import (
	"log/slog"
	"strings"
	"testing"
)

// Logger is a logger whose lines go to tb's log, for the stores a test
// opens.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLog{tb}, nil))
}

type testLog struct{ tb testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
