// Package owned checks that a directory the sensor keeps files in, and the files in it, are
// its own. The sensor runs as root next to every user's processes: a directory or file
// another user owns lets that user replace, read or plant what the sensor writes.
package owned

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Dir refuses anything at dir but a real directory (not a symlink to one) owned by the
// effective uid.
func Dir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (%s)", dir, fi.Mode().Type())
	}
	if uid := Owner(fi); uid != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by uid %d", dir, uid, os.Geteuid())
	}
	return nil
}

// Owner is the uid that owns the file fi describes (the effective uid where the system does
// not say).
func Owner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return os.Geteuid()
}

// RemoveForeign removes whatever is at path when another user owns it, with the files that
// go with it (SQLite's -wal and -shm), and returns that user's uid; -1 when path is absent or
// the effective uid's. A file another user owns is never written into: that user could read
// it, or keep it open and read what follows. The caller creates it anew with O_EXCL, so a
// file planted between the removal and the open fails the open instead of being written.
func RemoveForeign(path string, with ...string) (int, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("stat %s: %w", path, err)
	}
	uid := Owner(fi)
	if uid == os.Geteuid() {
		return -1, nil
	}
	for _, p := range append([]string{path}, with...) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return -1, fmt.Errorf("remove %s, owned by uid %d: %w", p, uid, err)
		}
	}
	return uid, nil
}

// RegularFile refuses an opened file that is not a regular file (a planted device or FIFO)
// and sets its permissions to exactly mode: the create mode only applies to new files and is
// reduced by the umask, and an existing file may be wider. It returns the file's stat.
func RegularFile(f *os.File, path string, mode os.FileMode) (os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Mode().Perm() != mode {
		if err := f.Chmod(mode); err != nil {
			return nil, fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	return fi, nil
}
