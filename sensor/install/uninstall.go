package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"syscall"

	"github.com/vigil-sensor/vigil/internal/atomicfile"
)

// Removal is what Uninstall did to each file and directory Install had touched.
type Removal struct {
	// Restored files are back to their content before the install, byte for byte.
	Restored []string
	// Removed files did not exist before the install.
	Removed []string
	// Edited files had changed since the install: only Vigil's entries were taken out.
	Edited []string
	// Left are files of Vigil's own that someone changed since the install (a customised
	// vigil.yaml, say): they are kept, with the reason.
	Left []string
	// Dirs are the directories Install had created and Uninstall removed.
	Dirs []string
}

// Uninstall undoes every Install under root. With nothing installed it does nothing, so
// running it twice is safe.
func Uninstall(root string) (Removal, error) {
	m, err := loadManifest(root)
	if err != nil {
		return Removal{}, err
	}
	var r Removal
	for _, rec := range slices.Backward(m.Files) {
		if err := rec.undo(root, &r); err != nil {
			return r, fmt.Errorf("uninstall %s: %w", rec.Path, err)
		}
	}
	// The state goes before the directories, so that its parent can go too when empty.
	if err := os.RemoveAll(hostPath(root, StateDir)); err != nil {
		return r, fmt.Errorf("remove install state: %w", err)
	}
	for _, d := range slices.Backward(m.Dirs) {
		err := os.Remove(hostPath(root, d))
		switch {
		case err == nil:
			r.Dirs = append(r.Dirs, d)
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
			// gone already, or someone keeps files in it: left as it is
		default:
			return r, fmt.Errorf("remove %s: %w", d, err)
		}
	}
	return r, nil
}

// undo puts one file back: whole when it is as Install left it (or gone), else by taking
// Vigil's entries out of it.
func (rec fileRecord) undo(root string, r *Removal) error {
	cur, mode, err := readExisting(root, rec.Path)
	if err != nil {
		return err
	}
	if cur == nil || sha256Hex(cur) == rec.Installed {
		if err := rec.restore(root); err != nil {
			return err
		}
		if rec.Existed {
			r.Restored = append(r.Restored, rec.Path)
		} else {
			r.Removed = append(r.Removed, rec.Path)
		}
		return nil
	}
	if rec.Undo == nil {
		r.Left = append(r.Left, rec.Path+": changed since the install")
		return nil
	}
	after, err := rec.Undo.remove(cur)
	if err != nil {
		r.Left = append(r.Left, fmt.Sprintf("%s: changed since the install, and Vigil's entries could not be taken out: %v", rec.Path, err))
		return nil
	}
	if err := atomicfile.Write(hostPath(root, rec.Path), after, mode); err != nil {
		return err
	}
	r.Edited = append(r.Edited, rec.Path)
	return nil
}

// restore writes the original back, or removes the file when there was none.
func (rec fileRecord) restore(root string) error {
	if !rec.Existed {
		if err := os.Remove(hostPath(root, rec.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove: %w", err)
		}
		return nil
	}
	orig, err := os.ReadFile(backupPath(root, rec.Backup))
	if err != nil {
		return fmt.Errorf("read the original kept at install: %w", err)
	}
	if sha256Hex(orig) != rec.Backup {
		return fmt.Errorf("the original kept at install (%s) does not match its checksum", backupPath(root, rec.Backup))
	}
	return atomicfile.Write(hostPath(root, rec.Path), orig, rec.Mode)
}
