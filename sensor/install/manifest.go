package install

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/vigil-sensor/vigil/internal/atomicfile"
)

// StateDir is where Install keeps what Uninstall needs: manifest.json, the list of files and
// directories it created or changed, and backup/, the originals of the files it changed
// (named by their SHA-256). Root's alone: the originals may hold an admin's secrets.
const StateDir = "/var/lib/vigil/install"

// manifest is what Install changed, oldest first.
type manifest struct {
	Files []fileRecord `json:"files"`
	// Dirs are the directories Install created, removed by Uninstall when empty.
	Dirs []string `json:"dirs,omitempty"`
}

// fileRecord is one file Install wrote.
type fileRecord struct {
	Path string `json:"path"`
	// Existed: the file was there before the first install; Backup names its copy in
	// backup/ and Mode its permissions.
	Existed bool        `json:"existed"`
	Backup  string      `json:"backup,omitempty"`
	Mode    fs.FileMode `json:"mode,omitempty"`
	// Installed is the SHA-256 of what Install last wrote: a file that still has it is
	// restored whole, one that does not had its Undo taken out instead.
	Installed string `json:"installed"`
	Undo      *Undo  `json:"undo,omitempty"`
}

func manifestPath(root string) string {
	return hostPath(root, filepath.Join(StateDir, "manifest.json"))
}
func backupPath(root, name string) string {
	return hostPath(root, filepath.Join(StateDir, "backup", name))
}

// loadManifest reads the install state, empty when nothing is installed.
func loadManifest(root string) (*manifest, error) {
	b, err := os.ReadFile(manifestPath(root))
	if errors.Is(err, fs.ErrNotExist) {
		return &manifest{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read install state: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse install state %s: %w", manifestPath(root), err)
	}
	return &m, nil
}

func (m *manifest) save(root string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode install state: %w", err)
	}
	// The state's parent (/var/lib/vigil) is the sensor's too, and stays 0755 so that any
	// user's `vigil hook` reaches its undelivered directory; the state itself is root's.
	if err := m.makeParents(root, filepath.Dir(StateDir)); err != nil {
		return err
	}
	if err := os.Mkdir(hostPath(root, StateDir), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create install state directory: %w", err)
	}
	return atomicfile.Write(manifestPath(root), append(b, '\n'), 0o600)
}

func (m *manifest) record(path string) *fileRecord {
	for i := range m.Files {
		if m.Files[i].Path == path {
			return &m.Files[i]
		}
	}
	return nil
}

// apply writes one change, first keeping the original and saving the manifest, so that an
// install interrupted at any point can still be undone.
func (m *manifest) apply(root string, c Change) error {
	rec := m.record(c.Path)
	if rec == nil {
		m.Files = append(m.Files, fileRecord{Path: c.Path, Existed: c.Before != nil})
		rec = &m.Files[len(m.Files)-1]
		if c.Before != nil {
			rec.Backup, rec.Mode = sha256Hex(c.Before), c.Mode
			if err := m.save(root); err != nil { // creates the state directory
				return err
			}
			if err := os.MkdirAll(filepath.Dir(backupPath(root, rec.Backup)), 0o700); err != nil {
				return fmt.Errorf("create backup directory: %w", err)
			}
			if err := atomicfile.Write(backupPath(root, rec.Backup), c.Before, 0o600); err != nil {
				return fmt.Errorf("keep the original: %w", err)
			}
		}
		if err := m.save(root); err != nil {
			return err
		}
	}
	if err := m.makeParents(root, filepath.Dir(c.Path)); err != nil {
		return err
	}
	if err := m.save(root); err != nil {
		return err
	}
	if err := atomicfile.Write(hostPath(root, c.Path), c.After, c.Mode); err != nil {
		return err
	}
	rec.Installed = sha256Hex(c.After)
	rec.Undo = rec.Undo.merge(c.Undo)
	return m.save(root)
}

// makeParents creates dir and its missing parents (0755: agents running as any user read
// their managed files through them), recording each one created; the caller saves.
func (m *manifest) makeParents(root, dir string) error {
	var missing []string
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Lstat(hostPath(root, d)); err == nil {
			break
		}
		missing = append(missing, d)
	}
	slices.Reverse(missing)
	for _, d := range missing {
		if err := os.Mkdir(hostPath(root, d), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		m.Dirs = append(m.Dirs, d)
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
