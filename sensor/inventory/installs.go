package inventory

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vigil-sensor/vigil/internal/owned"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// binDirs are where a package manager or installer puts an agent's command when the registry
// has no install path of its own for it: the system's, then each home's (relative).
var (
	systemBinDirs = []string{"/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"}
	homeBinDirs   = []string{".local/bin", ".npm-global/bin", ".bun/bin", "bin"}
)

// maxPackageDepth bounds how far up from an executable the scan looks for its package.json
// (codex's native binary sits six levels under its package).
const maxPackageDepth = 8

// findInstalls finds each registry agent's executables: the registry's install paths (which
// cover homes with /home/*, /root, /Users/*), its binaries in the usual bin folders, and its
// npm packages under npm's roots. A package whose executable was found already is not listed
// twice.
func (s *scanner) findInstalls() {
	for _, a := range agents.All() {
		found := map[string]bool{}     // executable paths
		installed := map[string]bool{} // install paths
		add := func(p string) {
			if found[p] {
				return
			}
			fi, err := os.Lstat(s.host(p))
			if err != nil || fi.IsDir() {
				return
			}
			found[p] = true
			in := s.install(a.Name, p, fi)
			installed[in.InstallPath] = true
			s.r.Installs = append(s.r.Installs, in)
		}
		for _, pattern := range a.Paths {
			s.glob(pattern, add)
		}
		for _, bin := range a.Binaries {
			for _, dir := range systemBinDirs {
				add(path.Join(dir, bin))
			}
			for _, u := range s.users {
				for _, dir := range homeBinDirs {
					add(path.Join(u.Home, dir, bin))
				}
			}
		}
		for _, pkg := range npmPackages(a.Scripts) {
			for _, root := range agents.NPMRoots() {
				s.glob(path.Join(root, pkg), func(dir string) {
					if installed[dir] {
						return
					}
					fi, err := os.Lstat(s.host(dir))
					if err != nil {
						return
					}
					if version, ok := s.packageVersion(dir); ok {
						installed[dir] = true
						s.r.Installs = append(s.r.Installs, proto.InventoryInstall{Agent: a.Name, User: s.userOf(dir, fi), Path: dir,
							InstallPath: dir, Version: version})
					}
				})
			}
		}
	}
}

// glob calls fn with the host path of every match of pattern under the root.
func (s *scanner) glob(pattern string, fn func(string)) {
	matches, err := filepath.Glob(s.host(pattern))
	if err != nil {
		return // the registry's patterns are checked by its tests
	}
	for _, m := range matches {
		rel, err := filepath.Rel(s.root, m)
		if err != nil {
			continue
		}
		fn(path.Join("/", filepath.ToSlash(rel)))
	}
}

// install describes the executable (or link) at host path p. Its version comes from files,
// never from running it: the native installer names each version's file after it
// (.../claude/versions/2.1.197, which ~/.local/bin/claude links to), npm has the package.json
// of the package the executable is in.
func (s *scanner) install(agent, p string, fi os.FileInfo) proto.InventoryInstall {
	in := proto.InventoryInstall{Agent: agent, Path: p, User: s.userOf(p, fi)}
	target := s.resolve(p)
	if path.Base(path.Dir(target)) == "versions" {
		in.InstallPath, in.Version = target, path.Base(target)
		return in
	}
	for i, dir := 0, path.Dir(target); i < maxPackageDepth && dir != "/" && dir != "."; i, dir = i+1, path.Dir(dir) {
		if version, ok := s.packageVersion(dir); ok {
			in.InstallPath, in.Version = dir, version
			return in
		}
	}
	return in
}

// userOf names the user an install at host path p belongs to: the home it is in, else the
// owner of the file (fi, from Lstat).
func (s *scanner) userOf(p string, fi os.FileInfo) string {
	if u, ok := s.homeOf(p); ok {
		return u.Name
	}
	return s.nameOf(owned.Owner(fi))
}

// packageVersion reads the version of the npm package in host folder dir: ok when dir holds
// a package.json with a name (a version may be absent).
func (s *scanner) packageVersion(dir string) (string, bool) {
	b, err := s.read(path.Join(dir, "package.json"), s.ownerFor(dir))
	if err != nil {
		return "", false
	}
	var pkg struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &pkg) != nil || pkg.Name == "" {
		return "", false
	}
	return pkg.Version, true
}

// npmPackages returns the npm package names among an agent's script fragments
// ("@scope/name/bin/x.js" → "@scope/name", "name" → "name").
func npmPackages(scripts []string) []string {
	var out []string
	for _, sc := range scripts {
		parts := strings.Split(sc, "/")
		n := 1
		if strings.HasPrefix(sc, "@") {
			n = 2
		}
		if len(parts) < n || strings.ContainsAny(sc, "*?[") {
			continue
		}
		out = append(out, strings.Join(parts[:n], "/"))
	}
	return out
}
