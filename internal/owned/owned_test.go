package owned

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/internal/testenv"
)

func TestDir(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(base, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"own directory", base, ""},
		{"a file", file, "is not a directory"},
		{"a symlink to a directory", link, "is not a directory"},
		{"missing", filepath.Join(base, "missing"), "no such file"},
	} {
		err := Dir(tc.path)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Dir = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestDirOfAnotherUser(t *testing.T) {
	testenv.RequireRoot(t, "chown a directory to another user")
	dir := testenv.Dir(t, t.TempDir(), "theirs", 0o700, testenv.Nobody)
	if err := Dir(dir); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("Dir of a directory uid 65534 owns = %v, want it refused", err)
	}
}

// TestRemoveForeign: a file another user owns goes, with the files named with it; the
// sensor's own file and an absent one stay as they are.
func TestRemoveForeign(t *testing.T) {
	testenv.RequireRoot(t, "chown a file to another user")
	dir := t.TempDir()
	mine, theirs := filepath.Join(dir, "mine.db"), filepath.Join(dir, "theirs.db")
	for _, p := range []string{mine, theirs + "-wal"} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testenv.ForeignFile(t, theirs, "x")
	for _, tc := range []struct {
		path    string
		uid     int
		removed []string
	}{
		{mine, -1, nil},
		{filepath.Join(dir, "absent"), -1, nil},
		{theirs, 65534, []string{theirs, theirs + "-wal"}},
	} {
		uid, err := RemoveForeign(tc.path, tc.path+"-wal", tc.path+"-shm")
		if err != nil || uid != tc.uid {
			t.Errorf("RemoveForeign(%s) = %d, %v; want %d", tc.path, uid, err, tc.uid)
		}
		for _, p := range tc.removed {
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Errorf("%s is still there (%v)", p, err)
			}
		}
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the sensor's own file went: %v", err)
	}
}
