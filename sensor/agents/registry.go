// Package agents is the registry of the AI coding agents Vigil knows: for each one, how its
// process tree starts (binaries, scripts, install paths), which environment variables join
// its processes to its telemetry and what each says (its role), the OTLP service names its
// telemetry arrives under, the names its hook calls go by, and where a fleet puts its managed
// configuration. It is the only place an agent is named: the kernel's environment allowlist,
// the catalog, the telemetry and hook dispatch and `vigil.join` are all built from it, so
// adding an agent is one descriptor here plus its adapters in package correlate.
//
// What each descriptor says was measured on the real CLI where the research could run it
// (../shared/research/agents, docs/agents); the comments say where a value is only documented.
package agents

import (
	"slices"

	"github.com/vigil-sensor/vigil/proto"
)

// Names of the agents the correlator has adapters for: gen_ai.agent.name, and the key of
// their adapters in package correlate.
const (
	ClaudeCode = "claude-code"
	Codex      = "codex"
	GeminiCLI  = "gemini-cli"
	Cursor     = "cursor"
	OpenClaw   = "openclaw"
	OpenCode   = "opencode"
	CopilotCLI = "copilot-cli"
)

// Role is what an environment join key says about the process that carries it.
type Role string

// The roles, spelled as vigil.join spells them (proto.JoinKeys).
const (
	// RoleTraceParent: a W3C traceparent naming the span of the tool call that started the
	// process (TRACEPARENT; shared by every agent that propagates its trace context).
	RoleTraceParent Role = proto.RoleTraceParent
	// RoleSession: the agent's session id, equal to its telemetry's session id.
	RoleSession Role = proto.RoleSession
	// RoleToolCall: the id of the tool call that started the process, equal to the call id
	// in the agent's telemetry and hooks.
	RoleToolCall Role = proto.RoleToolCall
	// RoleMarker: set only in the agent's children, it says which agent started the process
	// without naming a session or a call (CLAUDECODE=1, GEMINI_CLI=1).
	RoleMarker Role = proto.RoleMarker
	// RoleAgentName: a value naming the agent and its version (AI_AGENT, a cross-agent
	// convention).
	RoleAgentName Role = proto.RoleAgentName
)

// EnvKey is one environment variable the kernel keeps from an exec of a tracked process. No
// other variable of the environment is ever read past its name.
type EnvKey struct {
	Name string
	Role Role
}

// ConfigFile is where a fleet's managed configuration for the agent lives on one OS
// (`vigil install` writes telemetry and hook settings there; inventory reads it).
type ConfigFile struct {
	GOOS string // linux, darwin
	Path string
	// What the file configures: "settings" (telemetry, hooks, permissions), "settings.d" (a
	// directory of settings drop-ins, merged in name order), "hooks", "config".
	What string
}

// HomeFile is a configuration file or folder of the agent's own, at a path relative to a
// directory: a user's home (Agent.Home) or a project the agent's files list (Agent.Project).
// Inventory reads it to tell whether the agent's telemetry and hooks point at Vigil and
// which MCP servers it runs.
type HomeFile struct {
	Path string
	// What the file holds: "settings" (telemetry, hooks, MCP servers), "config" (TOML: the
	// same), "hooks", "mcp" (MCP servers only), "state" (the agent's own state file, which
	// lists MCP servers and projects), "plugins" (a plugin folder).
	What string
}

// Agent describes one agent.
type Agent struct {
	Name string // gen_ai.agent.name
	// Binaries are executable basenames that root a tree, Scripts path fragments of a script
	// an interpreter runs (confirmed from argv), Paths install paths matched by inode
	// (filepath.Glob patterns). They seed sensor.DefaultCatalog.
	Binaries []string
	Scripts  []string
	Paths    []string
	// Env are the join keys the agent puts in its children's environment.
	Env []EnvKey
	// ServiceNames are the OTLP resource service.name values its telemetry carries;
	// ServicePrefixes match the families an agent names after its front end (codex_exec).
	ServiceNames    []string
	ServicePrefixes []string
	// HookNames are the `vigil hook --agent` values naming it, the first one canonical.
	HookNames []string
	// HooksCarryTraceParent: the agent puts a TRACEPARENT in its hooks' environment too, not
	// only in its tool shells', so that key does not mark a hook shell as a tool's
	// (correlate.HookTrust then tells them apart by the shell's program).
	HooksCarryTraceParent bool
	// Managed is where its managed configuration lives.
	Managed []ConfigFile
	// Home are its configuration files in each user's home, Project those in a project
	// directory (relative paths).
	Home    []HomeFile
	Project []HomeFile
}

// Shared are the join keys no single agent owns.
var Shared = []EnvKey{
	{Name: "TRACEPARENT", Role: RoleTraceParent},
	{Name: "AI_AGENT", Role: RoleAgentName},
}

// npmRoots are npm's global roots: the usual prefixes, Homebrew's on Apple silicon Macs, and
// the per-user prefixes npm's own docs recommend against EACCES (~/.npm-global) and nvm's,
// in every home (Linux, root's, macOS).
var npmRoots = append([]string{"/usr/local/lib/node_modules", "/usr/lib/node_modules", "/opt/homebrew/lib/node_modules"},
	inHomes(".npm-global/lib/node_modules", ".nvm/versions/node/*/lib/node_modules")...)

// inHomes returns each home-relative path under every home: /home/*, /root and /Users/*.
func inHomes(paths ...string) []string {
	var out []string
	for _, home := range []string{"/home/*", "/root", "/Users/*"} {
		for _, p := range paths {
			out = append(out, home+"/"+p)
		}
	}
	return out
}

// underNPM returns the pattern under every npm root.
func underNPM(patterns ...string) []string {
	var out []string
	for _, r := range npmRoots {
		for _, p := range patterns {
			out = append(out, r+"/"+p)
		}
	}
	return out
}

// registry is every agent, in catalog order (a catalog id is a position: append only).
var registry = []Agent{
	{
		Name: ClaudeCode,
		// The npm bin symlink is named claude but resolves to claude.exe (a Bun single-file
		// binary), so the kernel may see either basename.
		Binaries: []string{"claude", "claude.exe"},
		Scripts:  []string{"@anthropic-ai/claude-code/cli.js"},
		// The native installer puts each version at ~/.local/share/claude/versions/<version>
		// and links ~/.local/bin/claude to the current one; the older local installer used
		// its own npm prefix, ~/.claude/local.
		Paths: slices.Concat([]string{"/usr/local/bin/claude", "/usr/bin/claude"},
			inHomes(".local/bin/claude", ".local/share/claude/versions/*",
				".claude/local/node_modules/@anthropic-ai/claude-code/bin/claude.exe"),
			underNPM("@anthropic-ai/claude-code/bin/claude.exe")),
		Env: []EnvKey{
			{Name: "CLAUDE_CODE_SESSION_ID", Role: RoleSession},
			{Name: "CLAUDECODE", Role: RoleMarker},
		},
		ServiceNames: []string{"claude-code"},
		HookNames:    []string{"claude-code", "claude", "claude_code", "claudecode"},
		// With CLAUDE_CODE_PROPAGATE_TRACEPARENT=1 (which vigil install sets), 2.1.197 runs
		// each hook with its turn's TRACEPARENT (measured: e2e claude/managed).
		HooksCarryTraceParent: true,
		Managed: []ConfigFile{
			{GOOS: "linux", Path: "/etc/claude-code/managed-settings.json", What: "settings"},
			// Drop-ins beside it, merged in name order (read by the binary at start).
			{GOOS: "linux", Path: "/etc/claude-code/managed-settings.d", What: "settings.d"},
			{GOOS: "darwin", Path: "/Library/Application Support/ClaudeCode/managed-settings.json", What: "settings"},
			{GOOS: "darwin", Path: "/Library/Application Support/ClaudeCode/managed-settings.d", What: "settings.d"},
		},
		// ~/.claude.json holds user-scope MCP servers and, per project it was run in, the
		// project's local ones; its projects keys are the projects inventory looks into.
		Home: []HomeFile{{Path: ".claude/settings.json", What: "settings"}, {Path: ".claude.json", What: "state"}},
		Project: []HomeFile{{Path: ".claude/settings.json", What: "settings"}, {Path: ".claude/settings.local.json", What: "settings"},
			{Path: ".mcp.json", What: "mcp"}},
	},
	{
		Name:     Codex,
		Binaries: []string{"codex"},
		Scripts:  []string{"@openai/codex/bin/codex.js"},
		// codex.js spawns a static Rust binary from a platform package: newer releases ship it
		// as a nested optional dependency (bin/codex), older ones inside vendor/ (codex/codex).
		Paths: append([]string{"/usr/local/bin/codex", "/usr/bin/codex"}, underNPM(
			"@openai/codex*/vendor/*/codex/codex",
			"@openai/codex*/vendor/*/bin/codex",
			"@openai/codex/node_modules/@openai/codex-*/vendor/*/codex/codex",
			"@openai/codex/node_modules/@openai/codex-*/vendor/*/bin/codex",
		)...),
		Env: []EnvKey{
			{Name: "CODEX_TOOL_CALL_ID", Role: RoleToolCall},
			{Name: "CODEX_SESSION_ID", Role: RoleSession},
		},
		// Codex names the service after its originator: codex_exec for `codex exec` (0.169);
		// the TUI and the IDE app server send other codex* names (untested).
		ServiceNames:    []string{"codex"},
		ServicePrefixes: []string{"codex_", "codex-"},
		HookNames:       []string{"codex"},
		Managed: []ConfigFile{
			// The system config layer, below the user's ~/.codex/config.toml, first: it is
			// where vigil install writes (ManagedPath takes the first). Its legacy form,
			// managed_config.toml, is read by inventory too.
			{GOOS: "linux", Path: "/etc/codex/config.toml", What: "config"},
			{GOOS: "linux", Path: "/etc/codex/managed_config.toml", What: "config"},
			{GOOS: "linux", Path: "/etc/codex/hooks.json", What: "hooks"},
			{GOOS: "darwin", Path: "/etc/codex/config.toml", What: "config"},
			{GOOS: "darwin", Path: "/etc/codex/managed_config.toml", What: "config"},
			{GOOS: "darwin", Path: "/etc/codex/hooks.json", What: "hooks"},
		},
		// $CODEX_HOME, ~/.codex unless the user's environment says otherwise (which a root
		// daemon cannot see). Project hooks run only in a trusted project ([projects."path"]).
		Home:    []HomeFile{{Path: ".codex/config.toml", What: "config"}, {Path: ".codex/hooks.json", What: "hooks"}},
		Project: []HomeFile{{Path: ".codex/config.toml", What: "config"}, {Path: ".codex/hooks.json", What: "hooks"}},
	},
	{
		Name: Cursor,
		// Cursor's agent CLI; Cursor exports no OTLP, so it is known from its hooks only
		// (documented; nothing of Cursor could be run here: docs/agents/cursor.md).
		Binaries: []string{"cursor-agent", "cursor"},
		// Set in the agent's shell, as Cursor's staff describe it (unverified).
		Env:       []EnvKey{{Name: "CURSOR_AGENT", Role: RoleMarker}},
		HookNames: []string{"cursor"},
		Managed: []ConfigFile{
			{GOOS: "linux", Path: "/etc/cursor/hooks.json", What: "hooks"},
			{GOOS: "darwin", Path: "/Library/Application Support/Cursor/hooks.json", What: "hooks"},
		},
		Home: []HomeFile{{Path: ".cursor/hooks.json", What: "hooks"}, {Path: ".cursor/mcp.json", What: "mcp"}},
	},
	{
		Name:     GeminiCLI,
		Binaries: []string{"gemini"},
		// A node script (bundle/gemini.js) that relaunches itself as a second node process.
		Scripts: []string{"@google/gemini-cli"},
		// Gemini's tool shells get GEMINI_CLI=1 and nothing else of the session; its hooks
		// get GEMINI_SESSION_ID (0.61).
		Env: []EnvKey{
			{Name: "GEMINI_CLI", Role: RoleMarker},
			{Name: "GEMINI_SESSION_ID", Role: RoleSession},
		},
		ServiceNames: []string{"gemini-cli"},
		HookNames:    []string{"gemini-cli", "gemini"},
		Managed: []ConfigFile{
			// The system settings file, read from the bundle's code (0.61).
			{GOOS: "linux", Path: "/etc/gemini-cli/settings.json", What: "settings"},
			{GOOS: "darwin", Path: "/Library/Application Support/GeminiCli/settings.json", What: "settings"},
		},
		Home: []HomeFile{{Path: ".gemini/settings.json", What: "settings"}},
	},
	{
		Name: OpenClaw,
		// A node script that relaunches itself (2026.9.6). Its OTLP exporter is a separate
		// plugin (@openclaw/diagnostics-otel) that could not be installed here, so no service
		// name is adapted yet (docs/agents/openclaw.md). Its shells get OPENCLAW_CLI=1.
		Binaries: []string{"openclaw"},
		Scripts:  []string{"openclaw"},
		Env:      []EnvKey{{Name: "OPENCLAW_CLI", Role: RoleMarker}},
	},
	{
		Name: OpenCode,
		// A Bun single-file binary, one process (1.18.33): node_modules/.bin/opencode links to
		// opencode-ai/bin/opencode.exe.
		Binaries: []string{"opencode", "opencode.exe"},
		Scripts:  []string{"opencode-ai"},
		// Its shells get OPENCODE=1 (and OPENCODE_PID, AGENT=1), no session or call id;
		// Vigil's plugin (correlate/plugins/opencode) adds the call's id and session.
		Env: []EnvKey{
			{Name: "OPENCODE", Role: RoleMarker},
			{Name: "VIGIL_TOOL_CALL_ID", Role: RoleToolCall},
			{Name: "VIGIL_SESSION_ID", Role: RoleSession},
		},
		ServiceNames: []string{"opencode"},
		HookNames:    []string{"opencode"},
		// Plugins load from either folder (docs/agents/opencode.md), Vigil's is vigil.js.
		Home: []HomeFile{{Path: ".config/opencode/plugin", What: "plugins"}, {Path: ".config/opencode/plugins", What: "plugins"}},
	},
	// Script fragments match whole path components, so "aider" matches
	// .../site-packages/aider/... and python -m aider but not /src/raider.py.
	{Name: "aider", Binaries: []string{"aider"}, Scripts: []string{"aider"}},
	{Name: "goose", Binaries: []string{"goose"}},
	{
		Name: CopilotCLI,
		// The npm loader (node …/.bin/copilot) spawns a native executable named copilot (a
		// Node SEA; its comm is MainThread) that does everything (1.0.102).
		Binaries: []string{"copilot"},
		Scripts:  []string{"@github/copilot"},
		Env: []EnvKey{
			{Name: "COPILOT_AGENT_SESSION_ID", Role: RoleSession},
			{Name: "COPILOT_CLI", Role: RoleMarker},
		},
		ServiceNames: []string{"github-copilot"},
		Managed: []ConfigFile{
			// Policy hooks, root-owned; they run whatever the folder's trust (1.0.102).
			{GOOS: "linux", Path: "/etc/github-copilot/policy.d", What: "hooks"},
			{GOOS: "darwin", Path: "/etc/github-copilot/policy.d", What: "hooks"},
		},
	},
}
