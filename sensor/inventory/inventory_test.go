package inventory

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/correlate/plugins/opencode"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Secrets planted in the fixture's MCP servers and endpoints: none may appear in any output.
var secrets = []string{
	"ghp_" + strings.Repeat("A1b2C3d4E5", 3) + "f6G7h8",
	"sk-ant-api03-" + strings.Repeat("xY9_kL2mN4pQ", 8) + "-AAAA",
	"AKIAIOSFODNN7EXAMPLQ",
	"s3cr3tQueryTok3nValue",
	"hunter2-env-value",
	"Bearer-header-value-9f8e7d",
}

// fixture writes a host under a temporary root: two users in /etc/passwd (and a nologin
// system account), each agent's managed, user and project files, an npm-installed Claude
// Code with its package.json and a native one, and malformed files. It returns the root.
func fixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	uid := strconv.Itoa(os.Getuid())
	write := func(p, content string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"+
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"+
		"dev:x:"+uid+":"+uid+":Dev:/home/dev:/bin/bash\n"+
		"# a comment\nbroken line\n")
	if err := os.MkdirAll(filepath.Join(root, "root"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Claude Code: npm-installed (its bin link and package.json) and the native installer.
	write("/usr/local/lib/node_modules/@anthropic-ai/claude-code/package.json", `{"name":"@anthropic-ai/claude-code","version":"2.1.197"}`)
	write("/usr/local/lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe", "\x7fELF")
	if err := os.Symlink("../lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe", filepath.Join(root, "usr/local/bin/claude")); err != nil {
		if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe", filepath.Join(root, "usr/local/bin/claude")); err != nil {
			t.Fatal(err)
		}
	}
	write("/home/dev/.local/share/claude/versions/2.1.190", "\x7fELF")
	if err := os.MkdirAll(filepath.Join(root, "home/dev/.local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/home/dev/.local/share/claude/versions/2.1.190", filepath.Join(root, "home/dev/.local/bin/claude")); err != nil {
		t.Fatal(err)
	}
	// Gemini CLI: a package with no command linked.
	write("/usr/lib/node_modules/@google/gemini-cli/package.json", `{"name":"@google/gemini-cli","version":"0.61.0"}`)

	// Claude Code settings: managed (Vigil's receiver, hooks through vigil), a drop-in, user
	// (somewhere else), project.
	write("/etc/claude-code/managed-settings.json", `{"env":{"CLAUDE_CODE_ENABLE_TELEMETRY":"1","OTEL_LOGS_EXPORTER":"otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL":"http/json","OTEL_EXPORTER_OTLP_ENDPOINT":"http://127.0.0.1:4318"},
		"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"/usr/local/bin/vigil hook --agent claude-code"}]}],
		"Stop":[{"hooks":[{"type":"command","command":"logger stop"}]}]}}`)
	write("/etc/claude-code/managed-settings.d/10-extra.json", `{"env":{"OTEL_EXPORTER_OTLP_HEADERS":"x-api-key=`+secrets[4]+`"}}`)
	write("/home/dev/.claude/settings.json", `{"env":{"CLAUDE_CODE_ENABLE_TELEMETRY":"1","OTEL_LOGS_EXPORTER":"otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL":"grpc","OTEL_EXPORTER_OTLP_ENDPOINT":"https://collector.example.com:4317/?token=`+secrets[3]+`"},
		"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"VIGIL_HOOK_SOCKET=/run/vigil/hook.sock vigil hook"}]}]}}`)
	write("/home/dev/.claude.json", `{"mcpServers":{"github":{"type":"stdio","command":"npx","args":["-y","@modelcontextprotocol/server-github","--token","`+secrets[0]+`"],
		"env":{"GITHUB_PERSONAL_ACCESS_TOKEN":"`+secrets[0]+`","OTHER":"`+secrets[4]+`"}},
		"remote":{"type":"http","url":"https://mcp.example.com/mcp?token=`+secrets[3]+`","headers":{"Authorization":"Bearer `+secrets[5]+`"}},
		"bad":{"args":"not a list"}},
		"projects":{"/srv/app":{"mcpServers":{"aws":{"command":"aws-mcp","args":["AWS_ACCESS_KEY_ID=`+secrets[2]+`"]}}},"relative/skip":{}}}`)
	write("/srv/app/.mcp.json", `{"mcpServers":{"anthropic":{"command":"node","args":["server.js","--api-key=`+secrets[1]+`"],"env":{"ANTHROPIC_API_KEY":"`+secrets[1]+`"}}}}`)
	write("/srv/app/.claude/settings.json", `{"hooks":{"PostToolUse":[{"hooks":[{"type":"command","command":"echo vigil hook"}]}]}}`)
	// Codex: the system config (Vigil's receiver, the real shape) and a user config with an
	// MCP server; hooks.json with vigil.
	write("/etc/codex/config.toml", `[otel]
environment = "prod"
exporter = { otlp-http = { endpoint = "http://127.0.0.1:4318/v1/logs", protocol = "json" } }
`)
	write("/etc/codex/hooks.json", `{"hooks":{"PreToolUse":[{"hooks":[{"type":"command","command":"vigil hook --agent codex"}]}]}}`)
	write("/home/dev/.codex/config.toml", `[otel]
exporter = { otlp-grpc = { endpoint = "http://127.0.0.1:4317" } }

[mcp_servers.docs]
url = "https://docs.example.com/mcp"
http_headers = { "X-Api-Key" = "`+secrets[5]+`" }

[mcp_servers.files]
command = "files-mcp"
args = ["--password", "`+secrets[4]+`"]
env = { AWS_SECRET_ACCESS_KEY = "`+secrets[2]+`" }

[projects."/srv/app"]
trust_level = "trusted"
`)
	// Gemini CLI: the research's real user settings (telemetry to 127.0.0.1:4318 over http).
	sample, err := os.ReadFile(sampleDir + "/gemini/user_settings.json")
	if err != nil {
		t.Fatal(err)
	}
	write("/home/dev/.gemini/settings.json", string(sample))
	write("/etc/gemini-cli/settings.json", `{"telemetry":{"enabled":true},"mcpServers":{"sse":{"url":"http://localhost:9000/sse"}}}`)
	// Cursor: mcp.json and a malformed hooks.json.
	write("/home/dev/.cursor/mcp.json", `{"mcpServers":{"linear":{"url":"https://mcp.linear.app/sse","headers":{"Authorization":"`+secrets[5]+`"}}}}`)
	write("/home/dev/.cursor/hooks.json", `{"version":1,"hooks":{"beforeShellExecution":[{"command":"vigil hook --agent cursor"}]`)
	// opencode: Vigil's plugin, current.
	write("/home/dev/.config/opencode/plugin/"+opencode.FileName, string(opencode.Source))
	return root
}

// sampleDir holds real files of the agents research (research/agents/samples: the settings,
// hooks and config the real CLIs ran with).
const sampleDir = "testdata/samples"

func scanFixture(t *testing.T, root string, now time.Time) (*Report, error) {
	t.Helper()
	return Scan(Options{Root: root, Config: sensor.DefaultConfig(), Now: func() time.Time { return now }})
}

func TestScanFixture(t *testing.T) {
	root := fixture(t)
	r, err := scanFixture(t, root, time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	if got := names(r.Users); !slices.Equal(got, []string{"root", "dev"}) {
		t.Errorf("users %v, want root and dev (daemon is a nologin system account, /usr/sbin)", got)
	}
	installs := map[string]proto.InventoryInstall{}
	for _, in := range r.Installs {
		installs[in.Path] = in
	}
	for p, want := range map[string]struct{ version, installPath, user string }{
		"/usr/local/bin/claude": {"2.1.197", "/usr/local/lib/node_modules/@anthropic-ai/claude-code", ""},
		"/usr/local/lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe": {"2.1.197", "/usr/local/lib/node_modules/@anthropic-ai/claude-code", ""},
		"/home/dev/.local/bin/claude":                                          {"2.1.190", "/home/dev/.local/share/claude/versions/2.1.190", "dev"},
		"/home/dev/.local/share/claude/versions/2.1.190":                       {"2.1.190", "/home/dev/.local/share/claude/versions/2.1.190", "dev"},
		"/usr/lib/node_modules/@google/gemini-cli":                             {"0.61.0", "/usr/lib/node_modules/@google/gemini-cli", ""},
	} {
		in, ok := installs[p]
		if !ok {
			t.Errorf("install %s not found in %+v", p, r.Installs)
			continue
		}
		if in.Version != want.version || in.InstallPath != want.installPath || want.user != "" && in.User != want.user {
			t.Errorf("install %s = %+v, want %+v", p, in, want)
		}
	}
	configs := map[string]proto.InventoryConfig{}
	for _, c := range r.Configs {
		configs[c.Path] = c
	}
	type tel struct {
		configured, vigil bool
		endpoint          string
	}
	for p, want := range map[string]struct {
		level       string
		tel         *tel
		events      []string
		vigilEvents []string
	}{
		"/etc/claude-code/managed-settings.json":            {"managed", &tel{true, true, "http://127.0.0.1:4318"}, []string{"PreToolUse", "Stop"}, []string{"PreToolUse"}},
		"/etc/claude-code/managed-settings.d/10-extra.json": {"managed", &tel{false, false, ""}, nil, nil},
		"/home/dev/.claude/settings.json":                   {"user", &tel{true, false, "https://collector.example.com:4317/?token=[REDACTED]"}, []string{"SessionStart"}, []string{"SessionStart"}},
		"/srv/app/.claude/settings.json":                    {"project", &tel{false, false, ""}, []string{"PostToolUse"}, nil},
		"/etc/codex/config.toml":                            {"managed", &tel{true, true, "http://127.0.0.1:4318/v1/logs"}, nil, nil},
		"/etc/codex/hooks.json":                             {"managed", nil, []string{"PreToolUse"}, []string{"PreToolUse"}},
		"/home/dev/.codex/config.toml":                      {"user", &tel{true, true, "http://127.0.0.1:4317"}, nil, nil},
		"/home/dev/.gemini/settings.json":                   {"user", &tel{true, true, "http://127.0.0.1:4318"}, nil, nil},
		// Gemini's defaults (localhost:4317, gRPC) reach Vigil's default gRPC receiver.
		"/etc/gemini-cli/settings.json": {"managed", &tel{true, true, "http://localhost:4317"}, nil, nil},
	} {
		c, ok := configs[p]
		if !ok {
			t.Errorf("config %s not found", p)
			continue
		}
		if c.Level != want.level {
			t.Errorf("%s: level %q, want %q", p, c.Level, want.level)
		}
		if want.tel != nil && (c.Telemetry == nil || c.Telemetry.Configured != want.tel.configured ||
			c.Telemetry.PointsAtVigil != want.tel.vigil || c.Telemetry.Endpoint != want.tel.endpoint) {
			t.Errorf("%s: telemetry %+v, want %+v", p, c.Telemetry, *want.tel)
		}
		if want.events != nil && (c.Hooks == nil || !slices.Equal(c.Hooks.Events, want.events) || !slices.Equal(c.Hooks.VigilEvents, want.vigilEvents)) {
			t.Errorf("%s: hooks %+v, want %v / %v", p, c.Hooks, want.events, want.vigilEvents)
		}
	}
	if g := configs["/home/dev/.gemini/settings.json"]; g.Hooks == nil || len(g.Hooks.Events) != 11 || len(g.Hooks.VigilEvents) != 0 {
		t.Errorf("gemini sample hooks %+v, want its 11 events and no vigil hook", g.Hooks)
	}
	if p := configs["/home/dev/.config/opencode/plugin"].Plugin; p == nil || !p.Current {
		t.Errorf("opencode plugin %+v, want Vigil's, current", p)
	}
	servers := map[string]proto.InventoryMCPServer{}
	for _, m := range r.MCPServers {
		servers[m.Agent+"/"+m.Level+"/"+m.Name] = m
	}
	for key, want := range map[string]struct{ transport, command, url string }{
		"claude-code/user/github":       {"stdio", "npx", ""},
		"claude-code/user/remote":       {"http", "", "https://mcp.example.com/mcp?token=[REDACTED]"},
		"claude-code/project/aws":       {"stdio", "aws-mcp", ""},
		"claude-code/project/anthropic": {"stdio", "node", ""},
		"codex/user/docs":               {"http", "", "https://docs.example.com/mcp"},
		"codex/user/files":              {"stdio", "files-mcp", ""},
		"gemini-cli/managed/sse":        {"sse", "", "http://localhost:9000/sse"},
		"cursor/user/linear":            {"http", "", "https://mcp.linear.app/sse"},
	} {
		m, ok := servers[key]
		if !ok {
			t.Errorf("MCP server %s not found in %v", key, keys(servers))
			continue
		}
		if m.Transport != want.transport || m.Command != want.command || m.URL != want.url {
			t.Errorf("MCP server %s = %+v, want %+v", key, m, want)
		}
	}
	if m := servers["claude-code/user/github"]; !slices.Equal(m.EnvKeys, []string{"GITHUB_PERSONAL_ACCESS_TOKEN", "OTHER"}) ||
		!slices.Equal(m.Args, []string{"-y", "@modelcontextprotocol/server-github", "--token", "[REDACTED]"}) {
		t.Errorf("github server %+v", m)
	}
	if m := servers["codex/user/docs"]; !slices.Equal(m.HeaderKeys, []string{"X-Api-Key"}) {
		t.Errorf("codex docs header keys %v", m.HeaderKeys)
	}
	if m := servers["claude-code/project/aws"]; m.Project != "/srv/app" || m.Path != "/home/dev/.claude.json" {
		t.Errorf("project server %+v", m)
	}
	errs := map[string]string{}
	for _, e := range r.Errors {
		errs[e.Path] = e.Error
	}
	if !strings.Contains(errs["/home/dev/.cursor/hooks.json"], "unexpected end") {
		t.Errorf("malformed cursor hooks.json: errors %v", errs)
	}
	if !strings.Contains(errs["/home/dev/.claude.json"], `"bad"`) {
		t.Errorf("the bad MCP entry is not reported alone: errors %v", errs)
	}
	if len(errs) != 2 {
		t.Errorf("errors %v, want the two malformed inputs only", errs)
	}
}

func names(users []User) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.Name)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSecretsNeverPrinted: the planted secrets appear in no output, JSON or records.
func TestSecretsNeverPrinted(t *testing.T) {
	r, err := scanFixture(t, fixture(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	report, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{string(report)}
	for _, e := range Records(r) {
		line, err := proto.MarshalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(line))
	}
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q printed in %s", s, out)
			}
		}
	}
	if len(r.MCPServers) < 8 {
		t.Errorf("only %d MCP servers read: the test proves nothing", len(r.MCPServers))
	}
}

func TestFirstSeenKept(t *testing.T) {
	root := fixture(t)
	first := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	if _, err := scanFixture(t, root, first); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, DefaultStatePath))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v, want 0600", fi, err)
	}
	if di, err := os.Stat(filepath.Dir(filepath.Join(root, DefaultStatePath))); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("state folder: %v %v, want 0700", di, err)
	}
	// A new MCP server appears before the second scan.
	if err := os.WriteFile(filepath.Join(root, "home/dev/.cursor/mcp.json"), []byte(`{"mcpServers":{"linear":{"url":"https://mcp.linear.app/sse"},"new":{"command":"n"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	second := first.Add(time.Hour)
	r, err := scanFixture(t, root, second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range r.MCPServers {
		want := first.Format(time.RFC3339)
		if m.Name == "new" {
			want = second.Format(time.RFC3339)
		}
		if m.FirstSeen != want {
			t.Errorf("%s/%s first seen %s, want %s", m.Agent, m.Name, m.FirstSeen, want)
		}
	}
	for _, in := range r.Installs {
		if in.FirstSeen != first.Format(time.RFC3339) {
			t.Errorf("install %s first seen %s", in.Path, in.FirstSeen)
		}
	}
}

func TestCorruptStateStartsAfresh(t *testing.T) {
	root := fixture(t)
	state := filepath.Join(root, DefaultStatePath)
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte(`{"version":1,"first_seen":{`), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	r, err := scanFixture(t, root, now)
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "starting afresh") {
		t.Errorf("error %v, want one saying the state is corrupt and starts afresh", err)
	}
	if len(r.Installs) == 0 || r.Installs[0].FirstSeen != now.Format(time.RFC3339) {
		t.Errorf("installs %+v", r.Installs)
	}
	// The file was replaced: the next scan reads it.
	if _, err := scanFixture(t, root, now.Add(time.Hour)); err != nil {
		t.Errorf("second scan: %v", err)
	}
}

// TestRefusesFIFOsAndLargeFiles: a FIFO where a config file should be is refused unread (the
// scan does not hang), and a file past maxFileBytes is skipped; both are reported.
func TestRefusesFIFOsAndLargeFiles(t *testing.T) {
	root := fixture(t)
	fifo := filepath.Join(root, "home/dev/.gemini/settings.json")
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(fifo); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	big := filepath.Join(root, "home/dev/.cursor/mcp.json")
	if err := os.WriteFile(big, make([]byte, maxFileBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan *Report, 1)
	go func() {
		r, _ := scanFixture(t, root, time.Now())
		done <- r
	}()
	select {
	case r := <-done:
		errs := map[string]string{}
		for _, e := range r.Errors {
			errs[e.Path] = e.Error
		}
		if !strings.Contains(errs["/home/dev/.gemini/settings.json"], "not a regular file") {
			t.Errorf("FIFO: errors %v", errs)
		}
		if !strings.Contains(errs["/home/dev/.cursor/mcp.json"], "skipped") {
			t.Errorf("large file: errors %v", errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scan hangs on a FIFO")
	}
}
