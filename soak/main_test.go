package soak

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if the soak leaves a goroutine behind: every
// client, worker and the server must stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
