package store

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vigil-sensor/vigil/internal/owned"
)

// fileMode is the permission of the database and of the files SQLite keeps beside it: the
// store holds what the agents touched, and nobody but the sensor's user needs to read it
// (`vigil query` runs as root).
const fileMode os.FileMode = 0o600

// dirMode is used when the directory has to be created.
const dirMode os.FileMode = 0o700

// sideSuffixes name the files SQLite keeps beside the database: the write-ahead log, its
// shared-memory index, and a rollback journal (not used in WAL mode, but recovered if found).
var sideSuffixes = []string{"-wal", "-shm", "-journal"}

// prepareFile makes the database file safe to hand to SQLite, which opens it and its side
// files by name. The directory must be the sensor's and writable by nobody else, with no
// exception for a sticky directory (unlike the JSONL sink): SQLite creates the side files by
// name, and in /tmp another user could create them first. The database is refused when it is
// not a regular file (a planted symlink or device). A database another user owns is never
// written into: that user could read it or keep it open; it is removed with its side files and
// created anew, and onForeign is told. A side file that is not a regular file of the sensor's
// user is removed. Existing files get mode 0600.
func prepareFile(path string, onForeign func(string, int)) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return err
	}
	flags := os.O_RDWR | os.O_CREATE | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	uid, err := owned.RemoveForeign(path, sidePaths(path)...)
	if err != nil {
		return err
	}
	if uid >= 0 {
		if onForeign != nil {
			onForeign(path, uid)
		}
		flags |= os.O_EXCL
	} else if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	for _, p := range sidePaths(path) {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() || owned.Owner(fi) != os.Geteuid() {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove %s (%s, owned by uid %d): %w", p, fi.Mode().Type(), owned.Owner(fi), err)
			}
		}
	}
	// O_NOFOLLOW and O_NONBLOCK: nothing planted between the checks and here (only the
	// sensor's user can write the directory) is followed or blocks the open.
	f, err := os.OpenFile(path, flags, fileMode)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	_, err = owned.RegularFile(f, path, fileMode)
	return err
}

// tightenSideFiles gives the side files SQLite created mode 0600. SQLite creates them with the
// database's mode already; this makes sure whatever the umask or an earlier run left.
func tightenSideFiles(path string) error {
	for _, p := range sidePaths(path) {
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		_, err = owned.RegularFile(f, p, fileMode)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", p, cerr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkDir refuses a directory another user could create, replace or read files in: one that
// is not the sensor's (its euid's), or that its group or others may write to.
func checkDir(dir string) error {
	if err := owned.Dir(dir); err != nil {
		return fmt.Errorf("store directory: %w: its owner could replace the database", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("store directory: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("store directory %s is writable by others (%v): another user could plant the files SQLite keeps beside the database", dir, fi.Mode().Perm())
	}
	return nil
}

func sidePaths(path string) []string {
	out := make([]string, len(sideSuffixes))
	for i, s := range sideSuffixes {
		out[i] = path + s
	}
	return out
}

// fileURI is the SQLite URI of the database at path with the query parameters query (already
// encoded). The path is escaped, so a '?' or '#' in it stays part of the name.
func fileURI(path, query string) string {
	return (&url.URL{Scheme: "file", Path: path, RawQuery: query}).String()
}
