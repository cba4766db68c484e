package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine running: every
// Server must stop its connection, writer and timer goroutines on Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
