package crashtest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"gearmand/store/mysql/mariadbtest"
	"gearmand/store/postgres/pgtest"
)

// runFunc is a function with testing.M's Run method, to nest the TestMain
// helpers of two packages.
type runFunc func() int

func (f runFunc) Run() int { return f() }

// gearmandBin is the binary under test, built once by TestMain.
var gearmandBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "crashtest-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "crashtest: %v\n", err)
		os.Exit(1)
	}
	gearmandBin, err = buildGearmand(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crashtest: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// pgtest and mariadbtest start one throwaway PostgreSQL and one
	// MariaDB for the networked-store tests, stop them after them, and
	// leave them alone when the binaries are missing (the tests that need
	// them then skip, or fail under CI=true).
	code := pgtest.Run(runFunc(func() int { return mariadbtest.Run(m) }))
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "crashtest: leaked goroutines: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// buildGearmand builds ./cmd/gearmand of this module into dir, without the
// race detector whatever the tests run with: the server is a black box
// here, and a slower one would only make the tests slower.
func buildGearmand(dir string) (string, error) {
	// go test puts its own go tool first in PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go tool is needed to build gearmand: %w", err)
	}
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the module")
	}
	bin := filepath.Join(dir, "gearmand")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/gearmand")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gearmand: %w\n%s", err, out)
	}
	return bin, nil
}
