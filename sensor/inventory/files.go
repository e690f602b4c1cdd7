package inventory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/vigil-sensor/vigil/internal/owned"
)

// maxFileBytes bounds a file the scan reads. Agents' settings are kilobytes; Claude Code's
// ~/.claude.json, the largest, grows with its per-project state but stays far below this.
const maxFileBytes = 4 << 20

// maxDirEntries bounds the entries read of a folder (drop-ins, plugins).
const maxDirEntries = 256

// anyOwner is the owner argument of read for system files, which root's tools put in place.
const anyOwner = -1

// read returns the file at host path p. A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist), which callers skip silently; any other error is worth
// reporting.
//
// The open is non-blocking, so a FIFO planted where a config file should be cannot hang the
// root daemon in open(2), and fstat of the opened file (not of the path, which could be
// swapped in between) must say it is a regular file before anything is read: a device or
// FIFO is refused unread. With owner >= 0 the file must belong to that uid: a file in a home
// is read only when the home's user owns it, so a symlink there to root's or another user's
// file is not read on their behalf.
func (s *scanner) read(p string, owner int) ([]byte, error) {
	f, err := os.OpenFile(s.host(p), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s): not read", fi.Mode().Type())
	}
	if fi.Size() > maxFileBytes {
		return nil, fmt.Errorf("%d bytes, more than the %d read: skipped", fi.Size(), maxFileBytes)
	}
	if owner >= 0 {
		if uid := owned.Owner(fi); uid != owner {
			return nil, fmt.Errorf("owned by uid %d, not by the user (%d) whose file it is: not read", uid, owner)
		}
	}
	// The size can grow after the fstat: read one byte past the bound to notice.
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("more than the %d bytes read: skipped", maxFileBytes)
	}
	return b, nil
}

// readDir returns the names of the entries of the folder at host path p, at most
// maxDirEntries, sorted.
func (s *scanner) readDir(p string) ([]string, error) {
	f, err := os.Open(s.host(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(maxDirEntries)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("list: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// maxLinks bounds the symlinks resolve follows (the kernel's own bound is 40).
const maxLinks = 16

// resolve follows the symlinks of the last component of host path p within the scan's root
// (an absolute target is taken under the root, as it would be on the scanned host) and
// returns the host path it ends at. It reads links only: nothing is opened.
func (s *scanner) resolve(p string) string {
	for range maxLinks {
		fi, err := os.Lstat(s.host(p))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return p
		}
		target, err := os.Readlink(s.host(p))
		if err != nil {
			return p
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = filepath.Clean(target)
	}
	return p
}

// within reports whether host path p is dir or inside it.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
