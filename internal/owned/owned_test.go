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
	dir := filepath.Join(t.TempDir(), "theirs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := Dir(dir); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("Dir of a directory uid 65534 owns = %v, want it refused", err)
	}
}
