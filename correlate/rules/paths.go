package rules

import (
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// HomeRel returns p relative to the home directory that holds it (/home/<user>/, /root/,
// /Users/<user>/ on macOS, /var/root/), or "" when p is in no home directory. The sensor runs
// as root and sees every user's files, so rules name home files by this relative path
// (".ssh/id_rsa") instead of one user's absolute path.
func HomeRel(p string) string {
	for _, prefix := range []string{"/home/", "/Users/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			if i := strings.IndexByte(rest, '/'); i > 0 {
				return rest[i+1:]
			}
			return ""
		}
	}
	for _, prefix := range []string{"/root/", "/var/root/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			return rest
		}
	}
	return ""
}

// Under reports whether p is dir or inside it, by whole path components (/a/bc is not under
// /a/b). An empty dir contains nothing.
func Under(p, dir string) bool {
	if dir == "" {
		return false
	}
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" { // "/"
		return strings.HasPrefix(p, "/")
	}
	return p == dir || (strings.HasPrefix(p, dir) && len(p) > len(dir) && p[len(dir)] == '/')
}

// Glob reports whether name matches pattern: "*" matches any run of characters but "/", "**"
// any run including "/" (so "**/.git/hooks/*" matches a hook of any repository), "?" one
// character but "/". Everything else matches itself.
func Glob(pattern, name string) bool {
	for len(pattern) > 0 {
		switch {
		case strings.HasPrefix(pattern, "**"):
			rest, slash := strings.CutPrefix(pattern[2:], "/")
			// "**/" matches any run of whole directories, none included: what follows it
			// starts a path component.
			for i := 0; i <= len(name); i++ {
				if (!slash || i == 0 || name[i-1] == '/') && Glob(rest, name[i:]) {
					return true
				}
			}
			return false
		case pattern[0] == '*':
			rest := pattern[1:]
			for i := 0; i <= len(name); i++ {
				if Glob(rest, name[i:]) {
					return true
				}
				if i < len(name) && name[i] == '/' {
					return false
				}
			}
			return false
		case len(name) == 0:
			return false
		case pattern[0] == '?':
			if name[0] == '/' {
				return false
			}
		case pattern[0] != name[0]:
			return false
		}
		pattern, name = pattern[1:], name[1:]
	}
	return name == ""
}

// scratchDirs are where programs write as a matter of course: temporary files, devices,
// per-user runtime directories.
var scratchDirs = []string{"/tmp", "/var/tmp", "/dev", "/proc", "/run/user", "/private/tmp",
	"/private/var/folders", "/var/folders"}

// homeScratch are home directories (and files) that tool chains write to on every build or
// install: caches, package stores, shell histories, the agents' own state (their settings and hooks files are not
// scratch: AgentConfigPath).
var homeScratch = []string{".cache", ".npm", ".cargo/registry", ".cargo/git", "go/pkg", ".rustup",
	".gradle", ".m2/repository", ".yarn", ".pnpm-store", ".bun/install", ".local/share/pnpm",
	".local/state", "Library/Caches", ".claude", ".codex", ".gemini/tmp", ".cursor/extensions",
	// Histories every shell and REPL appends to.
	".bash_history", ".zsh_history", ".python_history", ".node_repl_history", ".lesshst", ".viminfo"}

// ScratchPath reports whether writing p is routine for any program: temporary and runtime
// directories, devices, build and package caches, the agents' own state directories.
func ScratchPath(p string) bool {
	for _, d := range scratchDirs {
		if Under(p, d) {
			return true
		}
	}
	rel := HomeRel(p)
	if rel == "" {
		return false
	}
	if AgentConfigPath(p) {
		return false
	}
	for _, d := range homeScratch {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// agentConfigGlobs are the agents' settings, hooks and MCP server files, in a home directory
// (relative to it) or in any project: whoever writes them decides what the agent runs next
// time and what it reports.
var agentConfigGlobs = []string{
	"**/.claude/settings.json", "**/.claude/settings.local.json", "**/.claude/hooks/**",
	"**/.claude/agents/**", "**/.claude/commands/**", "**/.mcp.json", "**/.claude.json",
	"**/.codex/config.toml", "**/.codex/hooks.json", "**/.codex/hooks/**", "**/.codex/rules/**",
	"**/.cursor/mcp.json", "**/.cursor/hooks.json", "**/.cursor/hooks/**",
	"**/.gemini/settings.json",
	// Managed (administrator) settings, which override every user's.
	"/etc/claude-code/**", "/Library/Application Support/ClaudeCode/**", "/etc/codex/**",
}

// AgentConfigPath reports whether p is an agent's settings, hooks or MCP configuration file.
func AgentConfigPath(p string) bool {
	for _, g := range agentConfigGlobs {
		if Glob(g, p) {
			return true
		}
	}
	return false
}

// interpreters run a script named by their first non-option argument.
var interpreters = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true,
	"fish": true, "node": true, "bun": true, "deno": true, "ruby": true, "perl": true, "php": true}

// isInterpreter reports whether base names an interpreter (python, python3, python3.12 too).
func isInterpreter(base string) bool {
	return interpreters[base] || strings.HasPrefix(base, "python")
}

// Program is the program a process runs, by name: the executable's base name or, for an
// interpreter running a script (python3 /usr/bin/aws, node …/bin/firebase), the script's base
// name, so that a rule can say "aws" whether the CLI is native or a Python script.
func Program(executable string, args []string) string {
	base := path.Base(executable)
	if executable == "" {
		if len(args) == 0 {
			return ""
		}
		base = path.Base(args[0])
	}
	if !isInterpreter(base) {
		return base
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c" || a == "-e" || a == "-" || a == "-m" || a == "-s":
			return base // inline code or stdin: the interpreter itself runs it
		case strings.HasPrefix(a, "-"):
			continue
		default:
			return path.Base(a)
		}
	}
	return base
}

// StdinShell reports whether a command line (arguments joined by spaces) runs a shell or an
// interpreter on its standard input: "sh", "bash -s -- x", "python3 -", "sudo bash". That is
// the receiving end of `curl … | sh`.
func StdinShell(cmdline string) bool {
	f := strings.Fields(cmdline)
	if len(f) > 0 && path.Base(f[0]) == "sudo" {
		f = f[1:]
		for len(f) > 0 && strings.HasPrefix(f[0], "-") {
			f = f[1:]
		}
	}
	if len(f) == 0 || !isInterpreter(path.Base(f[0])) {
		return false
	}
	for _, a := range f[1:] {
		switch {
		case a == "-s" || a == "-" || a == "--":
			return true
		case a == "-c" || a == "-e" || a == "-m":
			return false
		case strings.HasPrefix(a, "-"):
			continue
		default:
			return false // a script file
		}
	}
	return true
}

// SecretArg reports whether a command-line argument names a secret file: the argument itself,
// or the part after "@" (curl -d @.env) or "=" (--upload-file=~/.aws/credentials).
func SecretArg(a string) bool {
	if i := strings.LastIndexAny(a, "@="); i >= 0 {
		a = a[i+1:]
	}
	if a == "" || strings.HasPrefix(a, "-") {
		return false
	}
	return SecretLooking(a)
}

// PublicEndpoint reports whether an endpoint ("ip:port", "[ip6]:port" or a bare ip) is an
// address on the internet: not loopback, private (RFC 1918, ULA), link-local, CGNAT or
// unspecified. A unix socket path is not.
func PublicEndpoint(endpoint string) bool {
	ip, err := netip.ParseAddr(endpoint)
	if err != nil {
		ap, perr := netip.ParseAddrPort(endpoint)
		if perr != nil {
			return false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	return !cgnat.Contains(ip)
}

// cgnat is the shared address space of RFC 6598 (carrier-grade NAT, Tailscale).
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Endpoint formats an address the way the aggregates and evidence name destinations.
func Endpoint(ip string, port int, address string) string {
	switch {
	case ip == "":
		return address
	case strings.Contains(ip, ":"):
		return "[" + ip + "]:" + strconv.Itoa(port)
	default:
		return ip + ":" + strconv.Itoa(port)
	}
}
