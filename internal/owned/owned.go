// Package owned checks that a directory the sensor keeps files in is its own. The sensor runs
// as root next to every user's processes: a directory another user owns lets that user
// replace, read or plant the files in it.
package owned

import (
	"fmt"
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
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by uid %d", dir, st.Uid, os.Geteuid())
	}
	return nil
}
