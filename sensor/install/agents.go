package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/vigil-sensor/vigil/correlate"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Each agent's managed configuration, as far as its system-level files allow (research:
// ../shared/research/anchors-agents.md §3, agents/README.md, agents/gemini.md):
//   - Claude Code: a drop-in in managed-settings.d (merged over managed-settings.json in
//     name order), with the OTLP environment and the hooks. Telemetry variables an admin's
//     managed file already sets are left to it.
//   - Codex: an [otel] table appended to /etc/codex/config.toml (the system layer, below the
//     user's config) unless one is there, and the hooks in /etc/codex/hooks.json, which Codex
//     runs without asking for trust.
//   - Gemini CLI: telemetry and hooks in the system settings file (it wins over the user's).
//   - Cursor: the enterprise hooks.json (Cursor exports no OTLP).
// Copilot CLI's policy hooks, opencode's plugin and OpenClaw's exporter live in each user's
// home or need a plugin package, which a root installer does not write (docs/agents).

// dropInName is Claude Code's drop-in: after an admin's 00-49, before their 51-99.
const dropInName = "50-vigil.json"

// Hook events forwarded to Vigil, per agent: those correlate/hooks.go reads, plus the ends
// of sessions and turns.
var (
	claudeHookEvents = []string{"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure", "Stop", "SessionEnd"}
	codexHookEvents  = []string{"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"}
	geminiHookEvents = []string{"SessionStart", "BeforeAgent", "BeforeTool", "AfterTool", "AfterAgent", "SessionEnd"}
	cursorHookEvents = []string{"sessionStart", "beforeSubmitPrompt", "preToolUse", "postToolUse", "postToolUseFailure",
		"beforeShellExecution", "afterShellExecution", "beforeMCPExecution", "afterMCPExecution", "beforeReadFile", "afterFileEdit", "stop", "sessionEnd"}
	// toolHookEvents take a tool-name matcher; "*" is every tool.
	toolHookEvents = []string{"PreToolUse", "PostToolUse", "PostToolUseFailure", "BeforeTool", "AfterTool"}
)

// endpoints are where the agents are pointed: the sensor's OTLP/HTTP receiver and the hook
// command, either empty when the configuration turns that input off.
type endpoints struct {
	otlpHTTP string // http://host:port
	hook     func(agent string) string
}

func sensorEndpoints(o Options) endpoints {
	var e endpoints
	if addr := o.Config.Correlate.OTLPHTTP; addr != "" {
		e.otlpHTTP = "http://" + addr
	}
	if o.Config.Correlate.HookSocket != "" {
		e.hook = func(agent string) string {
			cmd := []string{o.Binary, "hook", "--agent", agent}
			if s := o.Config.Correlate.HookSocket; s != correlate.DefaultHookSocket {
				cmd = append(cmd, "--socket", s)
			}
			if d := o.Config.Correlate.UndeliveredDir; d != correlate.DefaultUndeliveredDir && d != "" {
				cmd = append(cmd, "--undelivered-dir", d)
			}
			return strings.Join(cmd, " ")
		}
	}
	return e
}

func planAgents(o Options, r *Result) error {
	e := sensorEndpoints(o)
	steps := []func(Options, endpoints, *Result) error{planClaude, planCodex, planGemini, planCursor}
	for _, step := range steps {
		if err := step(o, e, r); err != nil {
			return err
		}
	}
	return nil
}

// hookEntries builds one entry per event in the Claude Code shape, which Codex and Gemini
// CLI share: {"matcher": "*", "hooks": [{"type": "command", "command": ...}]}.
func hookEntries(events []string, command string) map[string]any {
	out := map[string]any{}
	for _, ev := range events {
		entry := map[string]any{"hooks": []any{map[string]any{"type": "command", "command": command}}}
		if slices.Contains(toolHookEvents, ev) {
			entry["matcher"] = "*"
		}
		out[ev] = entry
	}
	return out
}

// planJSON merges edit into the JSON file at path.
func planJSON(o Options, r *Result, path, why string, edit jsonEdit) error {
	before, mode, err := readExisting(o.Root, path)
	if err != nil {
		r.Skipped = append(r.Skipped, err.Error())
		return nil
	}
	after, undo, kept, err := edit.apply(path, before)
	r.Kept = append(r.Kept, kept...)
	if err != nil {
		r.Skipped = append(r.Skipped, err.Error())
		return nil
	}
	if !changed(before, after) {
		return nil
	}
	if before == nil {
		// Agents run as any user and must read their managed settings.
		mode = 0o644
	}
	r.Changes = append(r.Changes, Change{Path: path, Mode: mode, Before: before, After: after, Why: why, Undo: undo})
	return nil
}

func planClaude(o Options, e endpoints, r *Result) error {
	dir, ok := agents.ManagedPath(agents.ClaudeCode, o.GOOS, "settings.d")
	if !ok {
		return nil
	}
	var edit jsonEdit
	if e.otlpHTTP != "" {
		env := [][2]string{
			{"CLAUDE_CODE_ENABLE_TELEMETRY", "1"},
			{"OTEL_LOGS_EXPORTER", "otlp"},
			{"OTEL_TRACES_EXPORTER", "otlp"},
			{"CLAUDE_CODE_ENHANCED_TELEMETRY_BETA", "1"},
			{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
			{"OTEL_EXPORTER_OTLP_ENDPOINT", e.otlpHTTP},
			// The prompt and the tool's parameters (a shell call's command): what binds a
			// process to its call when no key does. Tool content (file bodies) stays off.
			{"OTEL_LOG_USER_PROMPTS", "1"},
			{"OTEL_LOG_TOOL_DETAILS", "1"},
			// TRACEPARENT in every tool's environment: the exact join key.
			{"CLAUDE_CODE_PROPAGATE_TRACEPARENT", "1"},
		}
		admin, err := claudeManagedEnv(o, dir)
		if err != nil {
			r.Skipped = append(r.Skipped, err.Error())
			return nil
		}
		for _, kv := range env {
			if v, set := admin[kv[0]]; set {
				if v != kv[1] {
					r.Kept = append(r.Kept, fmt.Sprintf("%s: kept the admin's %s = %q (Vigil would set %q)", dir, kv[0], v, kv[1]))
				}
				continue
			}
			edit.set = append(edit.set, Leaf{Path: []string{"env", kv[0]}, Value: kv[1]})
		}
	}
	if e.hook != nil {
		edit.hookCommand = e.hook(agents.HookName(agents.ClaudeCode))
		edit.hooks = hookEntries(claudeHookEvents, edit.hookCommand)
	}
	return planJSON(o, r, filepath.Join(dir, dropInName), "Claude Code's telemetry and hooks to Vigil", edit)
}

// claudeManagedEnv is the env block of the admin's other managed files (managed-settings.json
// and the other drop-ins), which Vigil's drop-in must not override.
func claudeManagedEnv(o Options, dir string) (map[string]string, error) {
	files := []string{}
	if p, ok := agents.ManagedPath(agents.ClaudeCode, o.GOOS, "settings"); ok {
		files = append(files, p)
	}
	entries, err := os.ReadDir(hostPath(o.Root, dir))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, d := range entries {
		if d.Name() != dropInName && strings.HasSuffix(d.Name(), ".json") {
			files = append(files, filepath.Join(dir, d.Name()))
		}
	}
	env := map[string]string{}
	for _, f := range files {
		b, _, err := readExisting(o.Root, f)
		if err != nil || b == nil {
			continue // unreadable files are not Vigil's to judge; Claude reports them
		}
		doc, err := parseJSONObject(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (Claude Code's managed settings are left as they are)", f, err)
		}
		if block, ok := doc["env"].(map[string]any); ok {
			for k, v := range block {
				env[k] = fmt.Sprint(v)
			}
		}
	}
	return env, nil
}

func planCodex(o Options, e endpoints, r *Result) error {
	if path, ok := agents.ManagedPath(agents.Codex, o.GOOS, "config"); ok && e.otlpHTTP != "" {
		if err := planCodexOTel(o, r, path, e.otlpHTTP); err != nil {
			return err
		}
	}
	if path, ok := agents.ManagedPath(agents.Codex, o.GOOS, "hooks"); ok && e.hook != nil {
		cmd := e.hook(agents.HookName(agents.Codex))
		return planJSON(o, r, path, "Codex's hooks to Vigil", jsonEdit{hookCommand: cmd, hooks: hookEntries(codexHookEvents, cmd)})
	}
	return nil
}

// planCodexOTel appends an [otel] table to Codex's system config unless it has one.
func planCodexOTel(o Options, r *Result, path, endpoint string) error {
	before, mode, err := readExisting(o.Root, path)
	if err != nil {
		r.Skipped = append(r.Skipped, err.Error())
		return nil
	}
	appended, err := appendCodexOTel(before, endpoint)
	switch {
	case errors.Is(err, errHasOTel):
		r.Kept = append(r.Kept, fmt.Sprintf("%s: kept the admin's [otel] table (Vigil would export to %s)", path, endpoint))
		return nil
	case err != nil:
		r.Skipped = append(r.Skipped, fmt.Sprintf("%s: %v", path, err))
		return nil
	case appended == "":
		return nil
	}
	if before == nil {
		mode = 0o644
	}
	r.Changes = append(r.Changes, Change{Path: path, Mode: mode, Before: before, After: append(slices.Clone(before), appended...),
		Why: "Codex's telemetry to Vigil", Undo: &Undo{Appended: appended}})
	return nil
}

// errHasOTel: the file has an [otel] table of someone else's.
var errHasOTel = errors.New("an [otel] table is there already")

// appendCodexOTel returns the text to append to a Codex config for its telemetry to go to
// endpoint: "" when Vigil's table is there already. TOML has no merge of a table, and
// rewriting an admin's TOML would lose its comments and layout, so the table is appended
// whole, and only where the file has none.
func appendCodexOTel(before []byte, endpoint string) (string, error) {
	var doc map[string]any
	if err := toml.Unmarshal(before, &doc); err != nil {
		return "", fmt.Errorf("not valid TOML: %w", err)
	}
	block := codexOTelBlock(endpoint)
	if _, has := doc["otel"]; has {
		if strings.Contains(string(before), block) {
			return "", nil
		}
		return "", errHasOTel
	}
	switch {
	case len(before) == 0:
		return block, nil
	case before[len(before)-1] != '\n':
		return "\n\n" + block, nil
	default:
		return "\n" + block, nil
	}
}

// codexOTelBlock is Codex's [otel] table exporting logs (with the user's prompt) and traces
// to the sensor as OTLP/HTTP JSON.
func codexOTelBlock(endpoint string) string {
	return `# Added by vigil install (vigil uninstall takes it out): Codex's telemetry to the Vigil sensor.
[otel]
log_user_prompt = true
exporter = { otlp-http = { endpoint = "` + endpoint + `/v1/logs", protocol = "json" } }
trace_exporter = { otlp-http = { endpoint = "` + endpoint + `/v1/traces", protocol = "json" } }
`
}

func planGemini(o Options, e endpoints, r *Result) error {
	path, ok := agents.ManagedPath(agents.GeminiCLI, o.GOOS, "settings")
	if !ok {
		return nil
	}
	var edit jsonEdit
	if e.otlpHTTP != "" {
		for _, kv := range []struct {
			key   string
			value any
		}{{"enabled", true}, {"target", "local"}, {"otlpEndpoint", e.otlpHTTP}, {"otlpProtocol", "http"}, {"logPrompts", true}} {
			edit.set = append(edit.set, Leaf{Path: []string{"telemetry", kv.key}, Value: kv.value})
		}
	}
	if e.hook != nil {
		edit.hookCommand = e.hook(agents.HookName(agents.GeminiCLI))
		edit.hooks = hookEntries(geminiHookEvents, edit.hookCommand)
	}
	return planJSON(o, r, path, "Gemini CLI's telemetry and hooks to Vigil", edit)
}

func planCursor(o Options, e endpoints, r *Result) error {
	path, ok := agents.ManagedPath(agents.Cursor, o.GOOS, "hooks")
	if !ok || e.hook == nil {
		return nil
	}
	cmd := e.hook(agents.HookName(agents.Cursor))
	hooks := map[string]any{}
	for _, ev := range cursorHookEvents {
		hooks[ev] = map[string]any{"command": cmd}
	}
	edit := jsonEdit{set: []Leaf{{Path: []string{"version"}, Value: 1}}, hookCommand: cmd, hooks: hooks}
	return planJSON(o, r, path, "Cursor's hooks to Vigil", edit)
}
