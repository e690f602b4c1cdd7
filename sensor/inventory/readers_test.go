package inventory

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

func TestPointsAtVigil(t *testing.T) {
	vigil := endpoints{http: "127.0.0.1:4318", grpc: "127.0.0.1:4317"}
	for _, c := range []struct {
		endpoint, transport string
		want                bool
	}{
		{"http://127.0.0.1:4318", transportHTTP, true},
		{"http://127.0.0.1:4318/v1/logs", transportHTTP, true},
		{"http://localhost:4318", transportHTTP, true},
		{"127.0.0.1:4317", transportGRPC, true},
		{"http://[::ffff:127.0.0.1]:4318", transportHTTP, true},
		{"http://127.0.0.1:4318", transportGRPC, false}, // the HTTP port over gRPC
		{"http://127.0.0.1:4317", transportHTTP, false},
		{"http://[::1]:4318", transportHTTP, false}, // Vigil listens on 127.0.0.1 only
		{"http://10.0.0.5:4318", transportHTTP, false},
		{"https://collector.example.com", transportHTTP, false},
		{"http://127.0.0.1", transportHTTP, false},
		{"not a url", transportHTTP, false},
		{"", transportHTTP, false},
	} {
		if got, note := vigil.check(c.endpoint, c.transport); got != c.want || !got && note == "" {
			t.Errorf("check(%q, %s) = %v %q, want %v (and a note when false)", c.endpoint, c.transport, got, note, c.want)
		}
	}
	any := endpoints{http: "0.0.0.0:4318"}
	if ok, _ := any.check("http://localhost:4318", transportHTTP); !ok {
		t.Error("a receiver on every address is not reached by localhost")
	}
	if ok, note := (endpoints{}).check("http://127.0.0.1:4318", transportHTTP); ok || note == "" {
		t.Errorf("a receiver that is off: %v %q", ok, note)
	}
}

func TestIsVigilHook(t *testing.T) {
	for command, want := range map[string]bool{
		"vigil hook": true,
		"/usr/local/bin/vigil hook --agent claude-code": true,
		"VIGIL_HOOK_SOCKET=/run/x.sock vigil hook":      true,
		"env A=1 exec '/opt/vigil/bin/vigil' hook":      true,
		`"/opt/my tools/vigil" hook --agent codex`:      true,
		"vigil hook; rm -rf /tmp/x":                     true,
		"echo vigil hook":                               false,
		"vigil run":                                     false,
		"vigil":                                         false,
		"/usr/bin/vigilant hook":                        false,
		"python3 hook_dump.py user":                     false,
		"":                                              false,
	} {
		if got := isVigilHook(command); got != want {
			t.Errorf("isVigilHook(%q) = %v, want %v", command, got, want)
		}
	}
}

// TestReadersOnSamples reads the research's real files (samples/) with each reader.
func TestReadersOnSamples(t *testing.T) {
	for _, c := range []struct {
		file   string
		read   reader
		events int
	}{
		{"claude/project_settings.json", readClaudeSettings, 6},
		{"codex/hooks.json", readHooksFile, 7},
		{"gemini/user_settings.json", readGeminiSettings, 11},
		{"gemini/project_settings.json", readGeminiSettings, 11},
		{"gemini/toolsandbox/user_settings.json", readGeminiSettings, 0},
	} {
		b, err := os.ReadFile(sampleDir + "/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		s := newTestScanner()
		if _, err := c.read(s, where{path: c.file}, b); err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if len(s.r.Configs) != 1 || s.r.Configs[0].Hooks == nil || len(s.r.Configs[0].Hooks.Events) != c.events {
			t.Errorf("%s: configs %+v, want %d hook events", c.file, s.r.Configs, c.events)
		}
	}
	b, err := os.ReadFile(sampleDir + "/codex/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestScanner()
	projects, err := readCodexConfig(s, where{}, b)
	if err != nil || len(projects) != 0 { // its one project key is "$WORK/…", not absolute
		t.Errorf("codex sample: %v %v", projects, err)
	}
	if tel := s.r.Configs[0].Telemetry; tel == nil || !tel.Configured || !tel.PointsAtVigil {
		t.Errorf("codex sample telemetry %+v", tel)
	}
}

func newTestScanner() *scanner {
	return &scanner{root: "/nonexistent", vigil: endpoints{http: "127.0.0.1:4318", grpc: "127.0.0.1:4317"}, r: &Report{}}
}

// fuzzReader checks that a reader of outside input never panics, and that what it reports
// encodes as an inventory line within the line bound.
func fuzzReader(f *testing.F, read reader, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newTestScanner()
		if _, err := read(s, where{agent: "a", level: proto.LevelUser, path: "/p"}, b); err != nil {
			return
		}
		s.sort()
		for _, e := range Records(s.r) {
			line, err := proto.MarshalJSON(e)
			if err != nil || len(line) > proto.MaxLineBytes {
				t.Fatalf("line of %d bytes: %v", len(line), err)
			}
		}
		if _, err := json.Marshal(s.r); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzClaudeSettings(f *testing.F) {
	fuzzReader(f, readClaudeSettings, `{"env":{"CLAUDE_CODE_ENABLE_TELEMETRY":"1","OTEL_LOGS_EXPORTER":"otlp","OTEL_EXPORTER_OTLP_PROTOCOL":"grpc","OTEL_EXPORTER_OTLP_ENDPOINT":"http://127.0.0.1:4317"},"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"vigil hook"}]}]}}`,
		`{"env":{"OTEL_LOGS_EXPORTER":1}}`, `{"hooks":{"disabled":["x"]}}`, `[]`, `{`)
}

func FuzzClaudeState(f *testing.F) {
	fuzzReader(f, readClaudeState, `{"mcpServers":{"g":{"command":"npx","args":["--token","x"],"env":{"K":"v"}}},"projects":{"/srv/a":{"mcpServers":{"h":{"type":"http","url":"https://h/?token=x","headers":{"A":"b"}}}}}}`,
		`{"mcpServers":{"bad":{"args":"x"}}}`, `{"projects":{"rel":{}}}`)
}

func FuzzMCPFile(f *testing.F) {
	fuzzReader(f, readMCPFile, `{"mcpServers":{"linear":{"url":"https://mcp.linear.app/sse","headers":{"Authorization":"x"}}}}`, `{"mcpServers":null}`)
}

func FuzzCodexConfig(f *testing.F) {
	fuzzReader(f, readCodexConfig, "[otel]\nexporter = { otlp-http = { endpoint = \"http://127.0.0.1:4318/v1/logs\", protocol = \"json\" } }\n",
		"[otel]\nexporter = \"none\"\n", "[mcp_servers.f]\ncommand = \"f\"\nargs = [\"--password\", \"x\"]\nenv = { A = \"b\" }\n[projects.\"/srv/a\"]\ntrust_level = \"trusted\"\n",
		"[mcp_servers.bad]\nargs = 3\n", "[[")
}

func FuzzGeminiSettings(f *testing.F) {
	fuzzReader(f, readGeminiSettings, `{"telemetry":{"enabled":true,"otlpEndpoint":"http://127.0.0.1:4318","otlpProtocol":"http"},"mcpServers":{"s":{"url":"http://x/sse"}},"hooks":{"BeforeTool":[{"matcher":"*","hooks":[{"type":"command","command":"vigil hook --agent gemini-cli"}]}]}}`,
		`{"telemetry":{"enabled":"yes"}}`)
}

func FuzzHooksFile(f *testing.F) {
	fuzzReader(f, readHooksFile, `{"version":1,"hooks":{"beforeShellExecution":[{"command":"vigil hook --agent cursor"}]}}`,
		`{"hooks":{"PreToolUse":[{"hooks":[{"type":"command","command":"vigil hook"}]}]}}`, `{"hooks":[]}`)
}
