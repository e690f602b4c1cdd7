package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// maxProjects bounds the projects read per user and agent: the agents' own lists grow with
// every directory the agent was ever run in.
const maxProjects = 64

// where is one configuration file being read: whose, at which level, and the uid the file
// must belong to (anyOwner for managed files).
type where struct {
	agent, level, user, path, project string
	owner                             int
}

// reader reads one kind of configuration file of one agent into the report and returns the
// projects the file lists (absolute host paths). An error means the file as a whole could not
// be read; a reader that can keep part of a file reports the rest itself.
type reader func(s *scanner, w where, b []byte) ([]string, error)

// readerKey names a reader: the agent and the kind of file (agents.HomeFile.What).
type readerKey struct{ agent, what string }

// readers are the file shapes this package knows. A registry file without a reader here is
// not read (Copilot's policy folder, for one).
var readers = map[readerKey]reader{
	{agents.ClaudeCode, "settings"}: readClaudeSettings,
	{agents.ClaudeCode, "state"}:    readClaudeState,
	{agents.ClaudeCode, "mcp"}:      readMCPFile,
	{agents.Codex, "config"}:        readCodexConfig,
	{agents.Codex, "hooks"}:         readHooksFile,
	{agents.GeminiCLI, "settings"}:  readGeminiSettings,
	{agents.Cursor, "hooks"}:        readHooksFile,
	{agents.Cursor, "mcp"}:          readMCPFile,
}

// Folder kinds: a drop-in folder whose *.json files are each read as what it names, and a
// plugin folder.
const (
	kindDropIns = "settings.d"
	kindPlugins = "plugins"
)

// findConfigs reads each agent's managed files, each user's files, and the files of the
// projects the user's files list.
func (s *scanner) findConfigs() {
	for _, a := range agents.All() {
		done := map[string]bool{} // a managed path listed for two systems is read once
		for _, c := range a.Managed {
			if !done[c.Path] {
				done[c.Path] = true
				s.readConfig(where{agent: a.Name, level: proto.LevelManaged, path: c.Path, owner: anyOwner}, c.What)
			}
		}
		for _, u := range s.users {
			var projects []string
			for _, h := range a.Home {
				w := where{agent: a.Name, level: proto.LevelUser, user: u.Name, path: path.Join(u.Home, h.Path), owner: u.UID}
				projects = append(projects, s.readConfig(w, h.What)...)
			}
			slices.Sort(projects)
			projects = slices.Compact(projects)
			if len(projects) > maxProjects {
				s.fail(u.Home, fmt.Errorf("%s lists %d projects: only the first %d were read", a.Name, len(projects), maxProjects))
				projects = projects[:maxProjects]
			}
			for _, p := range projects {
				for _, f := range a.Project {
					w := where{agent: a.Name, level: proto.LevelProject, user: u.Name, path: path.Join(p, f.Path), project: p, owner: u.UID}
					s.readConfig(w, f.What)
				}
			}
		}
	}
}

// readConfig reads the file or folder w names as a file of kind what, reports what cannot be
// read, and returns the projects it lists. A missing file is no error.
func (s *scanner) readConfig(w where, what string) []string {
	switch what {
	case kindDropIns:
		names, err := s.readDir(w.path)
		if err != nil {
			s.failUnlessMissing(w.path, err)
			return nil
		}
		var projects []string
		for _, name := range names {
			if strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".") {
				f := w
				f.path = path.Join(w.path, name)
				projects = append(projects, s.readConfig(f, "settings")...)
			}
		}
		return projects
	case kindPlugins:
		s.readPlugins(w)
		return nil
	}
	read, ok := readers[readerKey{w.agent, what}]
	if !ok {
		return nil
	}
	b, err := s.read(w.path, w.owner)
	if err != nil {
		s.failUnlessMissing(w.path, err)
		return nil
	}
	projects, err := read(s, w, b)
	if err != nil {
		s.fail(w.path, err)
	}
	return projects
}

// failUnlessMissing reports err unless it says the file does not exist (or a folder on its
// path is a file).
func (s *scanner) failUnlessMissing(p string, err error) {
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		s.fail(p, err)
	}
}

// config returns the report's row for the file w names.
func (w where) config() proto.InventoryConfig {
	return proto.InventoryConfig{Agent: w.agent, Level: w.level, User: w.user, Path: w.path, Project: w.project}
}

// projectPaths returns the absolute paths among a file's project keys.
func projectPaths(keys []string) []string {
	var out []string
	for _, k := range keys {
		if path.IsAbs(k) {
			out = append(out, path.Clean(k))
		}
	}
	return out
}
