package install

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/inventory"
)

// adminFiles are what a fleet admin and a user already have before Vigil comes: managed
// settings with their own collector and hooks, a Codex system config with comments, a
// Gemini system file pointing elsewhere, Cursor enterprise hooks, and a user's own files,
// which Install must never touch.
var adminFiles = map[string]string{
	"/etc/claude-code/managed-settings.json": `{"env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.corp.example:4318"},
 "permissions": {"deny": ["Read(./.env)"]},
 "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/opt/corp/audit-bash"}]}]}}
`,
	"/etc/claude-code/managed-settings.d/10-corp.json": `{"env": {"OTEL_LOG_USER_PROMPTS": "0"}}`,
	"/etc/codex/config.toml":                           "# Corp defaults, managed by Ansible\nmodel = \"o3\"   # keep\n\n[sandbox_workspace_write]\nnetwork_access = false",
	"/etc/codex/hooks.json":                            `{"hooks": {"PreToolUse": [{"hooks": [{"type": "command", "command": "/opt/corp/codex-guard", "timeout": 30}]}]}}`,
	"/etc/gemini-cli/settings.json": `{
  "telemetry": {"enabled": true, "otlpEndpoint": "http://collector.corp:4317"},
  "hooks": {"BeforeTool": [{"matcher": "run_shell_command", "hooks": [{"type": "command", "command": "/opt/corp/g", "timeout": 60000}]}]},
  "ratio": 0.30000000000000004
}
`,
	"/etc/cursor/hooks.json":            `{"version": 1, "hooks": {"beforeShellExecution": [{"command": "/opt/corp/cursor-guard"}]}}`,
	"/home/alice/.claude/settings.json": `{"env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://alice:4318"}}`,
	"/home/alice/.codex/config.toml":    "[otel]\nenvironment = \"alice\"\n",
}

// writeTree lays files under root, each 0644 except where the name says otherwise.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// One admin file with an unusual mode, which a restore must bring back too.
	if err := os.Chmod(filepath.Join(root, "/etc/codex/config.toml"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every file and directory under root: content and mode.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		entry := info.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entry += " " + string(b)
		}
		out[rel] = entry
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			d = append(d, "gone: "+k)
		} else if v != w {
			d = append(d, "changed: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "new: "+k)
		}
	}
	slices.Sort(d)
	return d
}

func testOptions(t *testing.T, root string) Options {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "vigil")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n# stands for the vigil executable\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Options{Root: root, GOOS: "linux", Binary: "/usr/bin/vigil", Executable: exe, Config: sensor.DefaultConfig(), ConfigPath: DefaultConfigPath}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseJSONObject(b)
	if err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return doc
}

// hookCommands lists the commands of an event's entries, in any agent's shape.
func hookCommands(doc map[string]any, event string) []string {
	hooks, _ := doc["hooks"].(map[string]any)
	entries, _ := hooks[event].([]any)
	var out []string
	for _, e := range entries {
		m, _ := e.(map[string]any)
		if c, ok := m["command"].(string); ok {
			out = append(out, c)
		}
		inner, _ := m["hooks"].([]any)
		for _, h := range inner {
			hm, _ := h.(map[string]any)
			if c, ok := hm["command"].(string); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

// Install merges into an admin's files without losing or overriding anything of theirs, a
// second install changes nothing, and uninstall brings back every byte and mode.
func TestInstallMergesAndUninstallRestoresByteForByte(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, adminFiles)
	before := snapshot(t, root)
	o := testOptions(t, root)

	r, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	const hook = "/usr/bin/vigil hook --agent "

	// Claude Code: the drop-in has the hooks and the telemetry the admin left unset; the
	// admin's endpoint and prompt setting stay theirs, reported as kept.
	claude := readJSON(t, filepath.Join(root, "/etc/claude-code/managed-settings.d", dropInName))
	env, _ := claude["env"].(map[string]any)
	if _, set := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; set {
		t.Errorf("the drop-in overrides the admin's managed OTLP endpoint: %v", env)
	}
	if _, set := env["OTEL_LOG_USER_PROMPTS"]; set {
		t.Errorf("the drop-in overrides the admin's drop-in: %v", env)
	}
	if env["CLAUDE_CODE_ENABLE_TELEMETRY"] != "1" || env["OTEL_LOG_TOOL_DETAILS"] != "1" {
		t.Errorf("telemetry not enabled in the drop-in: %v", env)
	}
	for _, ev := range claudeHookEvents {
		if got := hookCommands(claude, ev); !slices.Equal(got, []string{hook + "claude-code"}) {
			t.Errorf("claude %s hooks = %q", ev, got)
		}
	}
	wantKept := []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_LOG_USER_PROMPTS", "telemetry.otlpEndpoint"}
	for _, k := range wantKept {
		if !slices.ContainsFunc(r.Kept, func(s string) bool { return strings.Contains(s, k) }) {
			t.Errorf("kept settings %q do not report %s", r.Kept, k)
		}
	}

	// Codex: the admin's text is untouched and the whole file parses with Vigil's [otel].
	codex, err := os.ReadFile(filepath.Join(root, "/etc/codex/config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(codex, []byte(adminFiles["/etc/codex/config.toml"])) {
		t.Errorf("the admin's Codex config was rewritten:\n%s", codex)
	}
	var codexDoc struct {
		Model string `toml:"model"`
		OTel  struct {
			LogUserPrompt bool `toml:"log_user_prompt"`
			Exporter      map[string]struct {
				Endpoint string `toml:"endpoint"`
			} `toml:"exporter"`
		} `toml:"otel"`
		Sandbox map[string]any `toml:"sandbox_workspace_write"`
	}
	if err := toml.Unmarshal(codex, &codexDoc); err != nil {
		t.Fatalf("merged Codex config does not parse: %v\n%s", err, codex)
	}
	if codexDoc.Model != "o3" || codexDoc.Sandbox["network_access"] != false || !codexDoc.OTel.LogUserPrompt ||
		codexDoc.OTel.Exporter["otlp-http"].Endpoint != "http://127.0.0.1:4318/v1/logs" {
		t.Errorf("merged Codex config = %+v", codexDoc)
	}
	codexHooks := readJSON(t, filepath.Join(root, "/etc/codex/hooks.json"))
	if got := hookCommands(codexHooks, "PreToolUse"); !slices.Equal(got, []string{"/opt/corp/codex-guard", hook + "codex"}) {
		t.Errorf("codex PreToolUse = %q", got)
	}

	// Gemini: the admin's hooks and numbers as written; telemetry keys they left unset.
	gemini := readJSON(t, filepath.Join(root, "/etc/gemini-cli/settings.json"))
	tel := gemini["telemetry"].(map[string]any)
	if tel["otlpEndpoint"] != "http://collector.corp:4317" || tel["logPrompts"] != true || tel["otlpProtocol"] != "http" {
		t.Errorf("gemini telemetry = %v", tel)
	}
	if got := hookCommands(gemini, "BeforeTool"); !slices.Equal(got, []string{"/opt/corp/g", hook + "gemini-cli"}) {
		t.Errorf("gemini BeforeTool = %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "/etc/gemini-cli/settings.json")); !bytes.Contains(b, []byte("0.30000000000000004")) ||
		!bytes.Contains(b, []byte(`"timeout": 60000`)) {
		t.Errorf("gemini numbers changed:\n%s", b)
	}
	cursor := readJSON(t, filepath.Join(root, "/etc/cursor/hooks.json"))
	if got := hookCommands(cursor, "beforeShellExecution"); !slices.Equal(got, []string{"/opt/corp/cursor-guard", hook + "cursor"}) {
		t.Errorf("cursor beforeShellExecution = %q", got)
	}

	// The user's own files, the executable, the unit and the defaults.
	for _, p := range []string{"/home/alice/.claude/settings.json", "/home/alice/.codex/config.toml"} {
		if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != adminFiles[p] {
			t.Errorf("install touched the user's %s", p)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "/usr/bin/vigil")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("executable: %v %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, SystemdUnitPath)); !bytes.Contains(b, []byte("ExecStart=/usr/bin/vigil run\n")) {
		t.Errorf("unit:\n%s", b)
	}
	if st, err := os.Stat(filepath.Join(root, DefaultConfigPath)); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("config: %v %v", st, err)
	}
	if st, err := os.Stat(filepath.Join(root, StateDir)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("install state: %v %v", st, err)
	}

	installed := snapshot(t, root)
	again, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Changes) != 0 {
		t.Errorf("a second install changed %d files: %v", len(again.Changes), again.Changes[0].Path)
	}
	if d := diffSnapshots(installed, snapshot(t, root)); len(d) > 0 {
		t.Errorf("a second install changed the tree: %v", d)
	}

	if _, err := Uninstall(root); err != nil {
		t.Fatal(err)
	}
	if d := diffSnapshots(before, snapshot(t, root)); len(d) > 0 {
		t.Errorf("uninstall left the tree different from before the install: %v", d)
	}
	if rm, err := Uninstall(root); err != nil || len(rm.Restored)+len(rm.Removed)+len(rm.Edited) > 0 {
		t.Errorf("a second uninstall did something: %+v %v", rm, err)
	}
}

// A file someone changed after the install loses only Vigil's entries; Vigil's own file
// changed since is kept.
func TestUninstallAfterAdminEditsTakesOutOnlyVigils(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, adminFiles)
	o := testOptions(t, root)
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	geminiPath := filepath.Join(root, "/etc/gemini-cli/settings.json")
	gemini := readJSON(t, geminiPath)
	gemini["general"] = map[string]any{"vimMode": true}
	b, _ := encodeJSON(gemini)
	if err := os.WriteFile(geminiPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	codexPath := filepath.Join(root, "/etc/codex/config.toml")
	codex, _ := os.ReadFile(codexPath)
	if err := os.WriteFile(codexPath, append(codex, "\n[tui]\nnotifications = true\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(root, DefaultConfigPath)
	if err := os.WriteFile(cfgPath, []byte("source: audit\n"), 0o640); err != nil {
		t.Fatal(err)
	}

	r, err := Uninstall(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(r.Edited, "/etc/gemini-cli/settings.json") || !slices.Contains(r.Edited, "/etc/codex/config.toml") {
		t.Errorf("edited = %q", r.Edited)
	}
	if !slices.ContainsFunc(r.Left, func(s string) bool { return strings.HasPrefix(s, DefaultConfigPath) }) {
		t.Errorf("left = %q", r.Left)
	}
	got := readJSON(t, geminiPath)
	want, _ := parseJSONObject([]byte(adminFiles["/etc/gemini-cli/settings.json"]))
	want["general"] = map[string]any{"vimMode": true}
	if !sameJSON(got, want) {
		t.Errorf("gemini after uninstall:\n%s\nwant\n%s", compactJSON(got), compactJSON(want))
	}
	codex, _ = os.ReadFile(codexPath)
	if wantCodex := adminFiles["/etc/codex/config.toml"] + "\n[tui]\nnotifications = true\n"; string(codex) != wantCodex {
		t.Errorf("codex after uninstall:\n%s\nwant\n%s", codex, wantCodex)
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != "source: audit\n" {
		t.Errorf("the admin's customised config was not kept: %q", b)
	}
}

// A file Vigil cannot read as its format is reported and left alone; the rest installs.
func TestInstallSkipsMalformedFiles(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"/etc/codex/config.toml":        "model = \n",
		"/etc/gemini-cli/settings.json": `{"telemetry": `,
		"/etc/cursor/hooks.json":        `["not", "an", "object"]`,
	})
	before := snapshot(t, root)
	r, err := Install(testOptions(t, root))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/codex/config.toml", "/etc/gemini-cli/settings.json", "/etc/cursor/hooks.json"} {
		if !slices.ContainsFunc(r.Skipped, func(s string) bool { return strings.HasPrefix(s, p+":") }) {
			t.Errorf("%s not reported as skipped: %q", p, r.Skipped)
		}
		if snapshot(t, root)[strings.TrimPrefix(p, "/")] != before[strings.TrimPrefix(p, "/")] {
			t.Errorf("%s was changed", p)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "/etc/codex/hooks.json")); err != nil {
		t.Errorf("the other files were not installed: %v", err)
	}
}

// A dry run writes nothing and shows each file's diff.
func TestDryRunWritesNothing(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, adminFiles)
	before := snapshot(t, root)
	r, err := Plan(testOptions(t, root))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Render(&out); err != nil {
		t.Fatal(err)
	}
	if d := diffSnapshots(before, snapshot(t, root)); len(d) > 0 {
		t.Errorf("the dry run changed %v", d)
	}
	for _, want := range []string{"+++ b/etc/codex/config.toml", "+[otel]", `"command": "/usr/bin/vigil hook --agent codex"`,
		"# create /usr/bin/vigil", "kept: /etc/gemini-cli/settings.json: kept telemetry.otlpEndpoint"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
}

// The macOS layout: a LaunchDaemon and the agents' /Library paths.
func TestInstallDarwinLayout(t *testing.T) {
	o := testOptions(t, t.TempDir())
	o.GOOS = "darwin"
	r, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, c := range r.Changes {
		paths = append(paths, c.Path)
	}
	for _, want := range []string{LaunchDaemonPath, "/Library/Application Support/ClaudeCode/managed-settings.d/50-vigil.json",
		"/Library/Application Support/GeminiCli/settings.json", "/Library/Application Support/Cursor/hooks.json", "/etc/codex/hooks.json"} {
		if !slices.Contains(paths, want) {
			t.Errorf("darwin plan lacks %s: %q", want, paths)
		}
	}
}

// A configuration that moves the hook socket or turns an input off is what the agents get.
func TestInstallFollowsTheSensorConfig(t *testing.T) {
	o := testOptions(t, t.TempDir())
	o.Config.Correlate.HookSocket = "/run/acme/vigil.sock"
	o.Config.Correlate.OTLPHTTP = ""
	r, err := Plan(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Changes {
		if bytes.Contains(c.After, []byte("4318")) && c.Path != DefaultConfigPath {
			t.Errorf("%s points at the OTLP receiver the config turned off", c.Path)
		}
		if strings.HasSuffix(c.Path, ".json") && !bytes.Contains(c.After, []byte("--socket /run/acme/vigil.sock")) {
			t.Errorf("%s does not name the configured socket:\n%s", c.Path, c.After)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(r.Changes[len(r.Changes)-1].After, &doc); err != nil {
		t.Fatal(err)
	}
}

// What install writes, inventory (a separate reader of the same files) sees as pointing at
// the sensor: each agent's telemetry and every hook event; and nothing once uninstalled.
func TestInventorySeesWhatInstallWrote(t *testing.T) {
	root := t.TempDir()
	o := testOptions(t, root)
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	scan := func() map[string]proto.InventoryConfig {
		rep, err := inventory.Scan(inventory.Options{Root: root, Config: o.Config})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]proto.InventoryConfig{}
		for _, c := range rep.Configs {
			out[c.Path] = c
		}
		return out
	}
	configs := scan()
	for _, path := range []string{"/etc/claude-code/managed-settings.d/50-vigil.json", "/etc/codex/config.toml", "/etc/gemini-cli/settings.json"} {
		if c := configs[path]; c.Telemetry == nil || !c.Telemetry.PointsAtVigil || c.Level != proto.LevelManaged {
			t.Errorf("%s: telemetry %+v (level %q), want pointing at Vigil", path, c.Telemetry, c.Level)
		}
	}
	for path, n := range map[string]int{"/etc/claude-code/managed-settings.d/50-vigil.json": len(claudeHookEvents),
		"/etc/codex/hooks.json": len(codexHookEvents), "/etc/gemini-cli/settings.json": len(geminiHookEvents), "/etc/cursor/hooks.json": len(cursorHookEvents)} {
		if c := configs[path]; c.Hooks == nil || len(c.Hooks.VigilEvents) != n {
			t.Errorf("%s: hooks %+v, want Vigil's on %d events", path, c.Hooks, n)
		}
	}
	if _, err := Uninstall(root); err != nil {
		t.Fatal(err)
	}
	for path, c := range scan() {
		if c.Telemetry != nil && c.Telemetry.PointsAtVigil || c.Hooks != nil && len(c.Hooks.VigilEvents) > 0 {
			t.Errorf("%s still points at Vigil after uninstall: %+v", path, c)
		}
	}
}
