package sensor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vigil-sensor/vigil/sensor/agents"
)

// MaxBinaryName is the longest executable basename the kernel catalog map can hold: its key
// is a 32-byte, NUL-terminated string, so a longer name could never match there and would
// silently miss every exec of that agent.
const MaxBinaryName = 31

// Agent describes one AI coding agent and the ways its process tree can start. The kernel
// matches Binaries and the identities of Paths at exec; Scripts are confirmed in user space
// from argv because an interpreter (node, bun, python) hides the agent behind its own image.
type Agent struct {
	Name     string   `yaml:"name"`     // gen_ai.agent.name, e.g. "claude-code"
	Binaries []string `yaml:"binaries"` // executable basenames that root a tree
	Scripts  []string `yaml:"scripts"`  // path fragments of a script an interpreter runs, e.g. "@anthropic-ai/claude-code/cli.js"
	Paths    []string `yaml:"paths"`    // install paths (filepath.Glob patterns allowed, ~ not expanded; use /home/*/...), matched by device+inode in the kernel
}

// Catalog is the set of agents whose process trees Vigil tracks, plus the interpreters that
// may run an agent's script. Everything outside these trees is ignored in the kernel, so the
// catalog is what decides the sensor's scope. It is small (tens of entries), so lookups scan
// it linearly instead of keeping indexes that would go stale when the exported fields change.
type Catalog struct {
	Agents       []Agent
	Interpreters []string
}

// ExeIdentity is an agent executable resolved to the file it is on disk. The kernel matches
// exec by (Dev, Ino) because a basename can be renamed or shadowed and a path can be reached
// through symlinks; the inode is what actually runs. Dev is st_dev as stat(2) reports it
// (user-space encoding); a platform loader converts it to its kernel's encoding.
type ExeIdentity struct {
	Dev, Ino uint64
	Agent    string
	// Path and Size are the installed file's: a copy of it elsewhere (a new inode) is
	// recognised by its size in the kernel and then by its hash.
	Path string
	Size int64
}

// DefaultCatalog returns the agents Vigil knows out of the box: the agents registry's
// binaries, scripts and install paths (sensor/agents), with the interpreters that may run an
// agent's script. Every call returns a fresh copy that the caller may extend with Merge.
func DefaultCatalog() *Catalog {
	c := &Catalog{
		Interpreters: []string{
			"node", "nodejs", "bun", "deno", "python", "python3",
			"python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14",
		},
	}
	for _, a := range agents.All() {
		c.Agents = append(c.Agents, Agent{Name: a.Name, Binaries: a.Binaries, Scripts: a.Scripts, Paths: a.Paths})
	}
	return c
}

// Merge adds site-specific agents and interpreters from the configuration. An agent whose
// name already exists extends that entry, so an admin can add an install path to
// claude-code without restating its defaults; other agents are appended, which keeps the
// IDs of existing agents stable. Duplicates are dropped and inputs are copied, never aliased.
func (c *Catalog) Merge(extra []Agent, interpreters []string) {
	for _, a := range extra {
		i := c.index(a.Name)
		if i < 0 {
			c.Agents = append(c.Agents, Agent{Name: a.Name})
			i = len(c.Agents) - 1
		}
		dst := &c.Agents[i]
		dst.Binaries = appendUnique(dst.Binaries, a.Binaries...)
		dst.Scripts = appendUnique(dst.Scripts, a.Scripts...)
		dst.Paths = appendUnique(dst.Paths, a.Paths...)
	}
	c.Interpreters = appendUnique(c.Interpreters, interpreters...)
}

// appendUnique appends the values of add that are not yet in dst.
func appendUnique(dst []string, add ...string) []string {
	for _, v := range add {
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// Validate reports every problem that would make the catalog unusable or ambiguous in the
// kernel: missing or duplicate names (IDs and gen_ai.agent.name must be unambiguous), agents
// that can never match, basenames that do not fit the kernel key or contain a '/', and
// malformed glob patterns (which ResolvePaths would otherwise skip silently).
func (c *Catalog) Validate() error {
	var errs []error
	seen := make(map[string]bool, len(c.Agents))
	for i, a := range c.Agents {
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("agent #%d: empty name", i+1))
		} else if seen[a.Name] {
			errs = append(errs, fmt.Errorf("agent %q: duplicate name", a.Name))
		}
		seen[a.Name] = true
		if len(a.Binaries)+len(a.Scripts)+len(a.Paths) == 0 {
			errs = append(errs, fmt.Errorf("agent %q: needs at least one binary, script or path", a.Name))
		}
		for _, b := range a.Binaries {
			if err := checkBasename(b); err != nil {
				errs = append(errs, fmt.Errorf("agent %q: binary %q: %w", a.Name, b, err))
			}
		}
		for _, s := range a.Scripts {
			if s == "" {
				errs = append(errs, fmt.Errorf("agent %q: empty script fragment", a.Name))
			}
		}
		for _, p := range a.Paths {
			if !filepath.IsAbs(p) {
				errs = append(errs, fmt.Errorf("agent %q: path %q: must be absolute (~ is not expanded)", a.Name, p))
			} else if _, err := filepath.Match(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("agent %q: path %q: %w", a.Name, p, err))
			}
		}
	}
	for _, in := range c.Interpreters {
		if err := checkBasename(in); err != nil {
			errs = append(errs, fmt.Errorf("interpreter %q: %w", in, err))
		}
	}
	return errors.Join(errs...)
}

func checkBasename(b string) error {
	switch {
	case b == "":
		return errors.New("empty")
	case strings.Contains(b, "/"):
		return errors.New("must be a basename without '/'")
	case len(b) > MaxBinaryName:
		return fmt.Errorf("longer than %d bytes, the kernel key size", MaxBinaryName)
	}
	return nil
}

func (c *Catalog) index(name string) int {
	for i, a := range c.Agents {
		if a.Name == name {
			return i
		}
	}
	return -1
}

// ID is the agent's 1-based position in the catalog, the compact value stored in kernel
// maps (a name would not fit a map value cheaply). 0 means unknown, which is also what a
// zeroed map value reads as. IDs are stable because Merge only appends.
func (c *Catalog) ID(name string) uint32 {
	return uint32(c.index(name) + 1)
}

// NameOf is the inverse of ID: it turns a kernel map value back into gen_ai.agent.name,
// "" for 0 or an ID outside the catalog.
func (c *Catalog) NameOf(id uint32) string {
	if id == 0 || int64(id) > int64(len(c.Agents)) {
		return ""
	}
	return c.Agents[id-1].Name
}

// AgentByBinary returns the agent whose Binaries contain basename.
func (c *Catalog) AgentByBinary(basename string) (string, bool) {
	for _, a := range c.Agents {
		if slices.Contains(a.Binaries, basename) {
			return a.Name, true
		}
	}
	return "", false
}

// IsInterpreter reports whether basename is an interpreter that may run an agent's script;
// the kernel marks such execs pending until user space confirms them with AgentByScript.
func (c *Catalog) IsInterpreter(basename string) bool {
	return slices.Contains(c.Interpreters, basename)
}

// Interpreter options that consume the next argument. Without them `node -r ./x.js cli.js`
// would take ./x.js for the script and miss the agent.
var optionsWithValue = map[string]bool{
	// node
	"-r": true, "--require": true, "--import": true, "--loader": true, "--experimental-loader": true,
	"-C": true, "--conditions": true, "--title": true, "--env-file": true,
	// python
	"-W": true, "-X": true, "--check-hash-based-pycs": true,
	// bun / deno
	"--config": true, "--cwd": true, "--preload": true,
}

// Options after which there is no script: the program is inline code, not an agent file.
var inlineCodeOptions = map[string]bool{
	"-e": true, "--eval": true, "-p": true, "--print": true, "-c": true,
}

// AgentByScript identifies the agent an interpreter runs from the interpreter's argv. It
// skips argv[0] and the interpreter's options, takes `python -m module` as the script
// (module name, dots as path separators), skips bun/deno's `run` subcommand, and then
// matches the first non-option argument: its basename against Binaries (npm installs a
// bin symlink, so node may run /usr/local/bin/codex) or its path against Scripts fragments.
func (c *Catalog) AgentByScript(argv []string) (string, bool) {
	script := scriptArg(argv)
	if script == "" {
		return "", false
	}
	base := filepath.Base(script)
	for _, a := range c.Agents {
		if slices.Contains(a.Binaries, base) {
			return a.Name, true
		}
		for _, frag := range a.Scripts {
			if containsPathFragment(script, frag) {
				return a.Name, true
			}
		}
	}
	return "", false
}

// scriptArg returns the script an interpreter argv runs, or "" when it runs none.
func scriptArg(argv []string) string {
	subcommandAllowed := true
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			if i+1 < len(argv) {
				return argv[i+1]
			}
			return ""
		case a == "-m":
			if i+1 < len(argv) {
				return strings.ReplaceAll(argv[i+1], ".", "/")
			}
			return ""
		case strings.HasPrefix(a, "-m") && !strings.HasPrefix(a, "--"):
			return strings.ReplaceAll(a[2:], ".", "/") // python -mmodule
		case inlineCodeOptions[a]:
			return ""
		case optionsWithValue[a]:
			i++
		case strings.HasPrefix(a, "-") && a != "-":
			// -x, --flag or --flag=value: no separate value
		case subcommandAllowed && a == "run":
			subcommandAllowed = false // bun run x.js, deno run -A x.ts
		default:
			return a
		}
	}
	return ""
}

// containsPathFragment reports whether frag occurs in path on path-component boundaries:
// preceded by the start or '/', followed by the end or '/'. This keeps short fragments
// like "aider" from matching /src/raider.py or /tmp/aider-notes.txt.
func containsPathFragment(path, frag string) bool {
	frag = strings.Trim(frag, "/")
	if frag == "" {
		return false
	}
	for off := 0; ; {
		i := strings.Index(path[off:], frag)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(frag)
		if (start == 0 || path[start-1] == '/') && (end == len(path) || path[end] == '/') {
			return true
		}
		off = start + 1
	}
}

// Match is the full user-space check used where no kernel verdict exists (the /proc
// bootstrap) and where trust is decided from the process table (telemetry senders). It
// looks only at what the kernel confirms: exePath is the executed file as the kernel walked
// it (process.executable, /proc/<pid>/exe), so symlinks are already resolved. The process
// is an agent when that file's basename is an agent binary, when its path matches an
// agent's install Paths (a native install named by version, e.g.
// ~/.local/share/claude/versions/2.1.3), or when it is an interpreter whose script argument
// is an agent's script. argv[0] and comm never count: any process can set them (exec -a
// claude python3 ...), so they are not identity.
func (c *Catalog) Match(exePath string, argv []string) (string, bool) {
	if exePath == "" {
		return "", false
	}
	base := filepath.Base(exePath)
	if name, ok := c.AgentByBinary(base); ok {
		return name, true
	}
	if name, ok := c.AgentByPath(exePath); ok {
		return name, true
	}
	if c.IsInterpreter(base) {
		return c.AgentByScript(argv)
	}
	return "", false
}

// AgentByPath returns the agent whose install Paths (glob patterns) match exePath, the
// kernel's path of an executed file.
func (c *Catalog) AgentByPath(exePath string) (string, bool) {
	for _, a := range c.Agents {
		for _, pattern := range a.Paths {
			if ok, err := filepath.Match(pattern, exePath); err == nil && ok {
				return a.Name, true
			}
		}
	}
	return "", false
}

// ResolvePaths expands each agent's Paths and returns the on-disk identities the kernel
// matches at exec. Patterns are globbed and each hit is stat'ed through symlinks, so
// /usr/local/bin/claude yields the claude.exe it points to. Missing files and directories
// are skipped silently: the defaults list every common install location and any given
// machine has few of them. Each identity is reported once, for the first agent that names it.
func (c *Catalog) ResolvePaths() []ExeIdentity {
	var out []ExeIdentity
	seen := make(map[[2]uint64]bool)
	for _, a := range c.Agents {
		for _, pattern := range a.Paths {
			matches, err := filepath.Glob(pattern)
			if err != nil {
				continue // malformed pattern: Validate reports it
			}
			for _, m := range matches {
				fi, err := os.Stat(m)
				if err != nil || !fi.Mode().IsRegular() {
					continue
				}
				dev, ino, _, _, ok := statIdentity(fi)
				if !ok || seen[[2]uint64{dev, ino}] {
					continue
				}
				seen[[2]uint64{dev, ino}] = true
				out = append(out, ExeIdentity{Dev: dev, Ino: ino, Agent: a.Name, Path: m, Size: fi.Size()})
			}
		}
	}
	return out
}
