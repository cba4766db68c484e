package sqlite

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// openEnv makes the test binary a child that opens the file it names and
// prints the outcome (see openAsOther).
const openEnv = "GEARMAND_SQLITE_OPEN"

// openOutcome opens path, closes it again, and says how that went: "ok",
// or the error, prefixed with "permission " when it wraps
// fs.ErrPermission.
func openOutcome(path string) string {
	s, err := Open(context.Background(), path)
	switch {
	case err == nil:
		s.Close()
		return "ok"
	case errors.Is(err, fs.ErrPermission):
		return "permission " + err.Error()
	}
	return err.Error()
}

// openAsOther is openOutcome as a user the file's permissions apply to:
// the test itself, or, when the test runs as root (whom no permission
// stops), a copy of the test binary run as nobody.
func openAsOther(t *testing.T, path string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return openOutcome(path)
	}
	// nobody must reach the binary and the file: copy the binary into
	// the test's directory and let anyone through the directories above.
	bin := filepath.Join(filepath.Dir(filepath.Dir(path)), "sqlite.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(bin); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), openEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("cannot run the test binary as nobody to test permissions as root: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// TestReadOnly: a file or directory the server cannot write is refused at
// Open with an error naming it, and left unchanged.
func TestReadOnly(t *testing.T) {
	for _, c := range []struct {
		name              string
		fileMode, dirMode os.FileMode
		newFile           bool
		says              string
	}{
		{"read-only file", 0o444, 0o777, false, "is read-only"},
		{"read-only directory", 0o666, 0o555, false, "cannot write in directory"},
		{"new file in a read-only directory", 0, 0o555, true, "cannot write in directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "queue.db")
			var before []byte
			if !c.newFile {
				s := openAt(t, path)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, c.fileMode); err != nil {
					t.Fatal(err)
				}
				before, _ = os.ReadFile(path)
			}
			if err := os.Chmod(dir, c.dirMode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
			got := openAsOther(t, path)
			t.Logf("Open: %s", got)
			if !strings.HasPrefix(got, "permission ") || !strings.Contains(got, c.says) {
				t.Errorf("Open: %q, want an error wrapping fs.ErrPermission that says %q", got, c.says)
			}
			want := path
			if c.dirMode == 0o555 {
				want = dir
			}
			for _, want := range []string{want, "--libsqlite3-db"} {
				if !strings.Contains(got, want) {
					t.Errorf("Open: %q does not name %s", got, want)
				}
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(before) {
				t.Errorf("Open changed %s", path)
			}
			if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open left %s-wal (stat: %v)", path, err)
			}
		})
	}
}
