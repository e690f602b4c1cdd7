package sensor

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDefaultCatalogValid(t *testing.T) {
	c := DefaultCatalog()
	if err := c.Validate(); err != nil {
		t.Fatalf("default catalog invalid: %v", err)
	}
	// Each call must return an independent copy.
	c.Agents[0].Binaries[0] = "changed"
	if DefaultCatalog().Agents[0].Binaries[0] == "changed" {
		t.Fatal("DefaultCatalog returns shared slices")
	}
}

func TestCatalogIDs(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name string
		id   uint32
	}{
		{"claude-code", 1},
		{"codex", 2},
		{"copilot-cli", uint32(len(c.Agents))},
		{"nope", 0},
	}
	for _, tt := range tests {
		if got := c.ID(tt.name); got != tt.id {
			t.Errorf("ID(%q) = %d, want %d", tt.name, got, tt.id)
		}
		if tt.id != 0 {
			if got := c.NameOf(tt.id); got != tt.name {
				t.Errorf("NameOf(%d) = %q, want %q", tt.id, got, tt.name)
			}
		}
	}
	for _, id := range []uint32{0, uint32(len(c.Agents) + 1), ^uint32(0)} {
		if got := c.NameOf(id); got != "" {
			t.Errorf("NameOf(%d) = %q, want empty", id, got)
		}
	}
}

func TestCatalogMerge(t *testing.T) {
	c := DefaultCatalog()
	n := len(c.Agents)
	codexID := c.ID("codex")
	extra := []Agent{
		{Name: "claude-code", Binaries: []string{"claude", "claude-dev"}, Paths: []string{"/opt/claude/bin/claude"}},
		{Name: "acme", Binaries: []string{"acme"}},
		{Name: "acme", Scripts: []string{"@acme/agent/cli.js"}},
	}
	c.Merge(extra, []string{"node", "pypy3"})

	claude := c.Agents[c.ID("claude-code")-1]
	if got := strings.Join(claude.Binaries, ","); got != "claude,claude.exe,claude-dev" {
		t.Errorf("claude binaries = %s", got)
	}
	if !slices.Contains(claude.Paths, "/opt/claude/bin/claude") {
		t.Errorf("claude paths missing the extension: %v", claude.Paths)
	}
	if len(c.Agents) != n+1 {
		t.Fatalf("agents = %d, want %d", len(c.Agents), n+1)
	}
	if c.ID("codex") != codexID || c.ID("acme") != uint32(n+1) {
		t.Errorf("IDs moved: codex %d (was %d), acme %d", c.ID("codex"), codexID, c.ID("acme"))
	}
	if acme := c.Agents[n]; len(acme.Binaries) != 1 || len(acme.Scripts) != 1 {
		t.Errorf("acme = %+v", acme)
	}
	if !c.IsInterpreter("pypy3") || strings.Count(strings.Join(c.Interpreters, " "), "node ") != 1 {
		t.Errorf("interpreters = %v", c.Interpreters)
	}
	// The merge must copy: changing the input afterwards leaves the catalog alone.
	extra[1].Binaries[0] = "changed"
	if c.Agents[n].Binaries[0] != "acme" {
		t.Error("Merge aliases the caller's slices")
	}
}

func TestCatalogValidate(t *testing.T) {
	tests := []struct {
		name    string
		agents  []Agent
		interp  []string
		wantErr string
	}{
		{"ok", []Agent{{Name: "a", Binaries: []string{"a"}}}, []string{"node"}, ""},
		{"empty name", []Agent{{Binaries: []string{"a"}}}, nil, "empty name"},
		{"duplicate", []Agent{{Name: "a", Binaries: []string{"a"}}, {Name: "a", Scripts: []string{"x"}}}, nil, "duplicate name"},
		{"nothing to match", []Agent{{Name: "a"}}, nil, "at least one"},
		{"slash in binary", []Agent{{Name: "a", Binaries: []string{"bin/a"}}}, nil, "without '/'"},
		{"long binary", []Agent{{Name: "a", Binaries: []string{strings.Repeat("x", 32)}}}, nil, "31 bytes"},
		{"31 bytes ok", []Agent{{Name: "a", Binaries: []string{strings.Repeat("x", 31)}}}, nil, ""},
		{"empty script", []Agent{{Name: "a", Scripts: []string{""}}}, nil, "empty script"},
		{"relative path", []Agent{{Name: "a", Paths: []string{"~/.local/bin/a"}}}, nil, "absolute"},
		{"bad glob", []Agent{{Name: "a", Paths: []string{"/opt/[a"}}}, nil, "syntax error"},
		{"bad interpreter", []Agent{{Name: "a", Binaries: []string{"a"}}}, []string{"/usr/bin/node"}, "interpreter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Catalog{Agents: tt.agents, Interpreters: tt.interp}).Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestAgentByBinaryAndInterpreter(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		base, agent string
		ok, interp  bool
	}{
		{"claude", "claude-code", true, false},
		{"claude.exe", "claude-code", true, false},
		{"codex", "codex", true, false},
		{"cursor-agent", "cursor", true, false},
		{"copilot", "copilot-cli", true, false},
		{"node", "", false, true},
		{"python3.12", "", false, true},
		{"bash", "", false, false},
		{"codex-linux-sandbox", "", false, false},
	}
	for _, tt := range tests {
		agent, ok := c.AgentByBinary(tt.base)
		if agent != tt.agent || ok != tt.ok {
			t.Errorf("AgentByBinary(%q) = %q, %v; want %q, %v", tt.base, agent, ok, tt.agent, tt.ok)
		}
		if got := c.IsInterpreter(tt.base); got != tt.interp {
			t.Errorf("IsInterpreter(%q) = %v", tt.base, got)
		}
	}
}

func TestAgentByScript(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name  string
		argv  []string
		agent string
	}{
		{"claude cli.js", []string{"node", "/usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js", "-p", "hi"}, "claude-code"},
		{"codex.js with options", []string{"node", "--max-old-space-size=4096", "--no-warnings", "/usr/lib/node_modules/@openai/codex/bin/codex.js", "exec"}, "codex"},
		{"npm bin symlink", []string{"node", "/usr/local/bin/codex", "exec", "hi"}, "codex"},
		{"require consumes value", []string{"node", "-r", "/opt/hook.js", "/usr/local/bin/gemini"}, "gemini-cli"},
		{"double dash", []string{"node", "--", "/usr/local/bin/opencode"}, "opencode"},
		{"gemini dist", []string{"node", "/usr/lib/node_modules/@google/gemini-cli/dist/index.js"}, "gemini-cli"},
		{"copilot", []string{"node", "/usr/local/lib/node_modules/@github/copilot/index.js"}, "copilot-cli"},
		{"opencode-ai", []string{"bun", "run", "/home/u/.bun/install/global/node_modules/opencode-ai/bin/opencode.js"}, "opencode"},
		{"python -m aider", []string{"python3", "-m", "aider", "--model", "x"}, "aider"},
		{"python -m aider.main", []string{"python3", "-u", "-m", "aider.main"}, "aider"},
		{"python -maider", []string{"python3", "-maider"}, "aider"},
		{"aider script", []string{"python3", "/home/u/.local/bin/aider"}, "aider"},
		{"aider site-packages", []string{"python3", "/usr/lib/python3/site-packages/aider/__main__.py"}, "aider"},
		{"python -W value", []string{"python3", "-W", "ignore", "/home/u/.local/bin/aider"}, "aider"},
		{"raider is not aider", []string{"python3", "/src/raider.py"}, ""},
		{"aider-notes is not aider", []string{"python3", "/tmp/aider-notes/x.py"}, ""},
		{"openclaw", []string{"node", "/usr/lib/node_modules/openclaw/dist/entry.js", "gateway"}, "openclaw"},
		{"unrelated script", []string{"node", "/home/u/app/server.js"}, ""},
		{"inline code", []string{"node", "-e", "require('/usr/local/bin/codex')"}, ""},
		{"python -c", []string{"python3", "-c", "import aider"}, ""},
		{"repl", []string{"node"}, ""},
		{"only options", []string{"node", "--inspect"}, ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent, ok := c.AgentByScript(tt.argv)
			if agent != tt.agent || ok != (tt.agent != "") {
				t.Errorf("AgentByScript(%q) = %q, %v; want %q", tt.argv, agent, ok, tt.agent)
			}
		})
	}
}

func TestCatalogMatch(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name  string
		exe   string
		argv  []string
		agent string
	}{
		{"claude via symlink", "/usr/local/lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe", []string{"claude", "-p", "hi"}, "claude-code"},
		{"native codex", "/usr/lib/node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex", []string{"codex", "exec"}, "codex"},
		// argv[0] is chosen by the caller (exec -a), so it never makes an agent.
		{"argv0 only", "/opt/x/bin/agent-real", []string{"/usr/local/bin/goose", "session"}, ""},
		{"exec -a claude python3", "/usr/bin/python3.12", []string{"claude", "-c", "print(1)"}, ""},
		{"python3 argv0 claude script", "/usr/bin/python3", []string{"claude", "/tmp/x.py"}, ""},
		{"argv0 claude.exe, node server", "/usr/bin/node", []string{"/usr/local/lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe", "server.js"}, ""},
		{"argv0 interpreter, image not", "/opt/tool/run", []string{"node", "/usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js"}, ""},
		{"empty exe", "", []string{"claude"}, ""},
		{"claude node cli.js", "/usr/bin/node", []string{"node", "/usr/local/lib/node_modules/@anthropic-ai/claude-code/cli.js", "-p", "hi"}, "claude-code"},
		{"claude native versioned", "/home/alice/.local/share/claude/versions/2.1.3", []string{"claude", "-p", "hi"}, "claude-code"},
		{"claude native versioned, any argv0", "/root/.local/share/claude/versions/2.1.3", []string{"x"}, "claude-code"},
		{"claude native versioned on macOS", "/Users/alice/.local/share/claude/versions/2.1.3", []string{"claude"}, "claude-code"},
		{"codex native bin", "/usr/local/lib/node_modules/@openai/codex/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/codex/codex", []string{"/usr/local/bin/codex"}, "codex"},
		{"node wrapper", "/usr/bin/node", []string{"node", "/usr/local/lib/node_modules/@openai/codex/bin/codex.js"}, "codex"},
		{"interpreter by argv0", "/usr/bin/python3.11", []string{"python3", "-m", "aider"}, "aider"},
		{"node non-agent", "/usr/bin/node", []string{"node", "server.js"}, ""},
		{"claude embedded rg", "/usr/local/lib/node_modules/@anthropic-ai/claude-code/bin/claude2.exe", []string{"rg", "--files"}, ""},
		{"shell", "/bin/bash", []string{"/bin/bash", "-c", "claude -p hi"}, ""},
		{"no argv", "/usr/local/bin/cursor-agent", nil, "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent, ok := c.Match(tt.exe, tt.argv)
			if agent != tt.agent || ok != (tt.agent != "") {
				t.Errorf("Match(%q, %q) = %q, %v; want %q", tt.exe, tt.argv, agent, ok, tt.agent)
			}
		})
	}
}

func TestResolvePaths(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe := write("lib/claude-code/bin/claude.exe")
	v1 := write("home/alice/versions/1.0.0")
	v2 := write("home/bob/versions/2.0.0")
	other := write("bin/goose")
	link := filepath.Join(dir, "bin/claude")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "home/carol/versions/dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	c := &Catalog{Agents: []Agent{
		{Name: "claude-code", Paths: []string{
			link, exe, // same inode twice: reported once
			filepath.Join(dir, "home/*/versions/*"), // two files and a directory
			filepath.Join(dir, "missing/claude"),
		}},
		{Name: "goose", Paths: []string{other, exe}},
	}}
	got := c.ResolvePaths()

	want := map[string]string{exe: "claude-code", v1: "claude-code", v2: "claude-code", other: "goose"}
	if len(got) != len(want) {
		t.Fatalf("ResolvePaths = %+v, want %d identities", got, len(want))
	}
	byIno := map[uint64]ExeIdentity{}
	for _, id := range got {
		byIno[id.Ino] = id
	}
	for p, agent := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		dev, ino, _, _, _ := statIdentity(fi)
		id, ok := byIno[ino]
		if !ok || id.Dev != dev || id.Agent != agent {
			t.Errorf("%s: got %+v, want dev %d ino %d agent %s", p, id, dev, ino, agent)
		}
	}
}
