package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// stateVersion is the state file's format.
const stateVersion = 1

// stateFile is the first-seen state: each item's stable key and the first scan that found it
// (RFC 3339). Items no longer found are dropped, so the file stays the size of the host's
// inventory and an item that comes back counts as new.
type stateFile struct {
	Version   int               `json:"version"`
	FirstSeen map[string]string `json:"first_seen"`
}

// Stable keys of the items: what names one install, config file or MCP server across scans.
func installKey(i proto.InventoryInstall) string { return joinKey("install", i.Agent, i.Path) }
func configKey(c proto.InventoryConfig) string   { return joinKey("config", c.Agent, c.Level, c.Path) }
func mcpKey(m proto.InventoryMCPServer) string {
	return joinKey("mcp", m.Agent, m.Level, m.User, m.Path, m.Project, m.Name)
}

// joinKey joins key parts with a byte no path or name holds.
func joinKey(parts ...string) string { return strings.Join(parts, "\x1f") }

// firstSeen sets every item's first-seen time from the state file at host path p (under the
// root) and writes the file back. A missing file starts empty. A corrupt one starts empty too,
// and is replaced: the error says so. A file that cannot be read for another reason is left
// alone (every item counts as seen now) and so is one that cannot be written: the error
// says which.
func (s *scanner) firstSeen(p string) error {
	now := s.r.Scanned.Format(time.RFC3339)
	old, loadErr := s.loadState(p)
	if loadErr != nil && old == nil {
		old = map[string]string{}
	}
	next := map[string]string{}
	seen := func(key string) string {
		t, ok := old[key]
		if _, err := time.Parse(time.RFC3339, t); !ok || err != nil {
			t = now
		}
		next[key] = t
		return t
	}
	for i := range s.r.Installs {
		s.r.Installs[i].FirstSeen = seen(installKey(s.r.Installs[i]))
	}
	for i := range s.r.Configs {
		s.r.Configs[i].FirstSeen = seen(configKey(s.r.Configs[i]))
	}
	for i := range s.r.MCPServers {
		s.r.MCPServers[i].FirstSeen = seen(mcpKey(s.r.MCPServers[i]))
	}
	var corrupt *corruptError
	if loadErr != nil && !errors.As(loadErr, &corrupt) {
		return loadErr
	}
	if err := s.saveState(p, next); err != nil {
		return errors.Join(loadErr, err)
	}
	return loadErr
}

// corruptError is a state file that was read but does not parse.
type corruptError struct{ err error }

func (e *corruptError) Error() string { return e.err.Error() }

// loadState reads the state file. It returns a non-nil empty map with a *corruptError for a
// file that does not parse (start afresh), nil with an error for one that cannot be read.
func (s *scanner) loadState(p string) (map[string]string, error) {
	b, err := s.read(p, anyOwner)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inventory state %s: %w (first-seen times not kept this scan)", p, err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != stateVersion {
		if err == nil {
			err = fmt.Errorf("version %d, want %d", f.Version, stateVersion)
		}
		return map[string]string{}, &corruptError{fmt.Errorf("inventory state %s is corrupt (%v): starting afresh, every item first seen now", p, err)}
	}
	if f.FirstSeen == nil {
		f.FirstSeen = map[string]string{}
	}
	return f.FirstSeen, nil
}

// saveState writes the state file atomically (a temporary file renamed over it), 0600 in a
// folder created 0700: it lists what each user has, for root only.
func (s *scanner) saveState(p string, firstSeen map[string]string) error {
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, FirstSeen: firstSeen}, "", " ")
	if err != nil {
		return fmt.Errorf("encode inventory state: %w", err)
	}
	dir := filepath.Dir(s.host(p))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create inventory state folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".inventory-*.json")
	if err != nil {
		return fmt.Errorf("write inventory state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing left to remove
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write inventory state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write inventory state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.host(p)); err != nil {
		return fmt.Errorf("replace inventory state %s: %w", p, err)
	}
	return nil
}
