package agents

import (
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/proto"
)

func TestRegistryIsConsistent(t *testing.T) {
	names := map[string]bool{}
	env := map[string]bool{}
	hooks := map[string]bool{}
	for _, k := range Shared {
		env[k.Name] = true
	}
	for _, a := range All() {
		if a.Name == "" || names[a.Name] {
			t.Errorf("agent %q: empty or duplicate name", a.Name)
		}
		names[a.Name] = true
		if len(a.Binaries)+len(a.Scripts)+len(a.Paths) == 0 {
			t.Errorf("%s: nothing roots its tree", a.Name)
		}
		for _, k := range a.Env {
			if env[k.Name] {
				t.Errorf("%s: environment key %s is registered twice", a.Name, k.Name)
			}
			env[k.Name] = true
			if k.Role == RoleTraceParent || k.Role == RoleAgentName {
				t.Errorf("%s: %s has the shared role %s", a.Name, k.Name, k.Role)
			}
		}
		for _, h := range a.HookNames {
			if h != strings.ToLower(h) || hooks[h] {
				t.Errorf("%s: hook name %q not lower case or taken", a.Name, h)
			}
			hooks[h] = true
		}
		for _, c := range a.Managed {
			if c.GOOS != "linux" && c.GOOS != "darwin" || !filepath.IsAbs(c.Path) || c.What == "" {
				t.Errorf("%s: managed config %+v", a.Name, c)
			}
		}
		for _, c := range slices.Concat(a.Home, a.Project) {
			if c.Path == "" || filepath.IsAbs(c.Path) || c.Path != filepath.Clean(c.Path) || strings.HasPrefix(c.Path, "..") || c.What == "" {
				t.Errorf("%s: home or project file %+v is not a clean relative path with a kind", a.Name, c)
			}
		}
	}
	// The kernel's allowlist: every key fits its name key and has a value slot.
	var key bpf.VigilEnvName
	for _, k := range EnvKeys() {
		if len(k.Name) >= len(key.Name) || strings.ContainsAny(k.Name, "=\x00") {
			t.Errorf("environment key %q does not fit the kernel's %d-byte name key", k.Name, len(key.Name))
		}
		var keys proto.JoinKeys
		if !keys.Set(k.Agent, string(k.Role), "v") {
			t.Errorf("%s: role %q is not one vigil.join holds", k.Name, k.Role)
		}
	}
	if n, slots := len(EnvKeys()), len(bpf.VigilExecEvent{}.Env); n > slots {
		t.Errorf("%d environment keys, the kernel record has %d slots", n, slots)
	}
}

func TestLookups(t *testing.T) {
	for service, want := range map[string]string{
		"claude-code": ClaudeCode, "codex_exec": Codex, "codex": Codex, "codex-tui": Codex, "gemini-cli": GeminiCLI,
		"github-copilot": CopilotCLI, "opencode": OpenCode, "openclaw": "", "codex_cli_rs": Codex, "gemini": "", "codexfoo": "", "claude": "", "": "",
		"unknown_service:node": "",
	} {
		if got := ForService(service); got != want {
			t.Errorf("ForService(%q) = %q, want %q", service, got, want)
		}
	}
	for value, want := range map[string]string{"claude": ClaudeCode, " Claude_Code ": ClaudeCode, "codex": Codex,
		"cursor": Cursor, "gemini": GeminiCLI, "": ""} {
		if got, err := ForHook(value); err != nil || got != want {
			t.Errorf("ForHook(%q) = %q, %v; want %q", value, got, err, want)
		}
	}
	if _, err := ForHook("vim"); err == nil || !strings.Contains(err.Error(), "claude-code") {
		t.Errorf("unknown hook agent: %v", err)
	}
	keys := JoinKeysOf("CODEX_TOOL_CALL_ID=call_1", "CODEX_SESSION_ID=s", "GEMINI_CLI=1", "AWS_SECRET_ACCESS_KEY=x",
		"traceparent=lower", "TRACEPARENT=00-a-b-01", "NOEQUALS")
	want := proto.JoinKeys{TraceParent: "00-a-b-01", ToolCalls: map[string]string{Codex: "call_1"},
		Sessions: map[string]string{Codex: "s"}, Markers: map[string]string{GeminiCLI: "1"}}
	if !keys.Equal(&want) {
		t.Errorf("JoinKeysOf = %+v", keys)
	}
	if JoinKeysOf("PATH=/bin", "HOME=/root") != nil {
		t.Error("an environment without join keys gave keys")
	}
}

// TestNamesLiveInTheRegistry: adding an agent touches its descriptor and its adapters only.
// No product source outside this package spells an agent's name, binary, script, join-key
// variable, service name or hook name as a literal; they use the registry instead. Tests, the
// benchmarks and the e2e harness (which drive the real CLIs) may.
func TestNamesLiveInTheRegistry(t *testing.T) {
	var idents []string
	for _, a := range All() {
		idents = append(idents, a.Name)
		idents = append(idents, a.Binaries...)
		idents = append(idents, a.Scripts...)
		idents = append(idents, a.ServiceNames...)
		idents = append(idents, a.HookNames...)
		for _, k := range a.Env {
			idents = append(idents, k.Name)
		}
	}
	for _, k := range Shared {
		idents = append(idents, k.Name)
	}
	slices.Sort(idents)
	idents = slices.Compact(idents)
	root := filepath.Join("..", "..")
	found := 0
	for _, dir := range []string{"bpf", "sensor", "linux", "darwin", "correlate", "proto", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || path == filepath.Join(root, "sensor", "agents") {
					return filepath.SkipDir
				}
				return nil
			}
			name := d.Name()
			goSource := strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") && !strings.HasSuffix(name, "_bpfel.go")
			cSource := strings.HasSuffix(name, ".c") || strings.HasSuffix(name, ".h") && name != "vmlinux.h"
			if !goSource && !cSource {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			found++
			for _, lit := range literals(path, b) {
				if slices.Contains(idents, lit) {
					t.Errorf("%s spells %q: take it from the agents registry", path, lit)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if found < 100 {
		t.Fatalf("scanned %d source files: the walk did not find the sources", found)
	}
}

// literals returns the string literals of a Go source (comments do not count), or for C the
// quoted strings of its lines.
func literals(path string, src []byte) []string {
	var out []string
	if !strings.HasSuffix(path, ".go") {
		for _, part := range strings.Split(string(src), `"`)[1:] {
			out = append(out, part)
		}
		return out
	}
	var sc scanner.Scanner
	fset := token.NewFileSet()
	sc.Init(fset.AddFile(path, -1, len(src)), src, nil, 0)
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			return out
		}
		if tok == token.STRING {
			if v, err := strconv.Unquote(lit); err == nil {
				out = append(out, v)
			}
		}
	}
}
