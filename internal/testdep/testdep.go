// Package testdep is how a test meets a missing outside dependency (a
// program, a server binary, a Perl module): locally it skips, naming the
// Debian package to install; under CI=true, where every dependency must be
// installed, it fails, so that a missing peer never passes unnoticed.
package testdep

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

// Need returns the path of program prog, looked up in PATH (or prog itself
// when it is a path), or ends the test as Missing does.
func Need(tb testing.TB, prog, debianPackage string) string {
	tb.Helper()
	path, err := exec.LookPath(prog)
	if err != nil {
		Missing(tb, prog, debianPackage)
	}
	return path
}

// Missing ends the test because what is not there: a skip that names the
// Debian package to install, or a failure under CI=true.
func Missing(tb testing.TB, what, debianPackage string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%s is missing (CI=true, so this fails): install Debian package %s", what, debianPackage)
	}
	tb.Skipf("%s is missing: install Debian package %s", what, debianPackage)
}
