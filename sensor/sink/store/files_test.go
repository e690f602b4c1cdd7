package store

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-sensor/vigil/internal/owned"
	"github.com/vigil-sensor/vigil/internal/testenv"
)

// The database and the files SQLite keeps beside it are the sensor user's alone (0600), even
// under a permissive umask or when an earlier file was wider.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "vigil")
	path := filepath.Join(dir, "vigil.db")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", nil, 0o666); err != nil { // left by an earlier run
		t.Fatal(err)
	}
	s := openTemp(t, Options{Path: path})
	writeAll(t, s, readFixture(t)) // a write creates the -wal and -shm files
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != fileMode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), fileMode)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("directory mode %v", fi.Mode().Perm())
	}
}

// A database another user created is never written into: it is removed with its side files
// and created anew, and the caller told.
func TestForeignDatabaseIsReplaced(t *testing.T) {
	testenv.RequireRoot(t, "creating a file owned by another uid")
	path := filepath.Join(t.TempDir(), "vigil.db")
	for _, p := range []string{path, path + "-wal"} {
		testenv.ForeignFile(t, p, "planted")
	}
	planted, err := os.Open(path) // the other user's descriptor, opened beforehand
	if err != nil {
		t.Fatal(err)
	}
	defer planted.Close()
	var told []int
	s := openTemp(t, Options{Path: path, OnForeign: func(p string, uid int) {
		if p == path {
			told = append(told, uid)
		}
	}})
	writeAll(t, s, readFixture(t))
	if len(told) != 1 || told[0] != 65534 {
		t.Errorf("OnForeign told %v, want [65534]", told)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := owned.Owner(fi); uid != os.Geteuid() {
			t.Errorf("%s owned by %d", p, uid)
		}
	}
	if leaked, _ := io.ReadAll(planted); string(leaked) != "planted" {
		t.Errorf("the other user's descriptor read %q: want only its own old content", leaked)
	}
}

// A side file another user planted (or a symlink) is removed before SQLite opens it by name.
func TestForeignSideFileIsRemoved(t *testing.T) {
	testenv.RequireRoot(t, "creating a file owned by another uid")
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path+"-shm"); err != nil {
		t.Fatal(err)
	}
	testenv.ForeignFile(t, path+"-wal", "planted")
	s := openTemp(t, Options{Path: path})
	writeAll(t, s, readFixture(t))
	if data, _ := os.ReadFile(target); string(data) != "keep" {
		t.Errorf("the symlink's target was written: %q", data)
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || owned.Owner(fi) != os.Geteuid() {
			t.Errorf("%s: %v owned by %d", p, fi.Mode(), owned.Owner(fi))
		}
	}
}

func TestRefusedPaths(t *testing.T) {
	testenv.RequireRoot(t, "creating a directory owned by another uid")
	base := t.TempDir()
	mk := func(name string, mode os.FileMode, uid int) string { return testenv.Dir(t, base, name, mode, uid) }
	link := filepath.Join(mk("link", 0o700, 0), "vigil.db")
	if err := os.Symlink(filepath.Join(base, "target.db"), link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(mk("fifo", 0o700, 0), "vigil.db")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"the sensor's directory", filepath.Join(mk("own", 0o750, 0), "vigil.db"), ""},
		// Unlike the JSONL sink, no exception for /tmp: SQLite creates its side files by name.
		{"sticky and world-writable", filepath.Join(mk("tmp", 0o777|os.ModeSticky, 0), "vigil.db"), "writable by others"},
		{"group-writable", filepath.Join(mk("group", 0o770, 0), "vigil.db"), "writable by others"},
		{"another user's directory", filepath.Join(mk("theirs", 0o755, 65534), "vigil.db"), "owned by uid 65534"},
		{"a symlink", link, "not a regular file"},
		{"a FIFO", fifo, "not a regular file"},
	} {
		s, err := Open(Options{Path: tc.path})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if s != nil {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(base, "target.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the symlink's target was created: %v", err)
	}
}

func TestFileURI(t *testing.T) {
	for path, want := range map[string]string{
		"/var/lib/vigil/vigil.db": "file:///var/lib/vigil/vigil.db",
		"/tmp/a b?c#d%e.db":       "file:///tmp/a%20b%3Fc%23d%25e.db",
	} {
		if got := fileURI(path, ""); got != want {
			t.Errorf("fileURI(%q) = %q, want %q", path, got, want)
		}
	}
	// The name round-trips through SQLite: the file created is the one named.
	dir := filepath.Join(t.TempDir(), "a b?c#d%e")
	s := openTemp(t, Options{Path: filepath.Join(dir, "x?y.db")})
	writeAll(t, s, readFixture(t)[:1])
	if _, err := os.Stat(filepath.Join(dir, "x?y.db-wal")); err != nil {
		t.Errorf("SQLite did not write beside the file named: %v", err)
	}
}
