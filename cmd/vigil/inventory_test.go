package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/sensor/inventory"
)

func TestInventoryCommand(t *testing.T) {
	root := t.TempDir()
	uid := strconv.Itoa(os.Getuid())
	for p, content := range map[string]string{
		"etc/passwd": "dev:x:" + uid + ":" + uid + "::/home/dev:/bin/bash\n",
		"home/dev/.claude/settings.json": `{"env":{"CLAUDE_CODE_ENABLE_TELEMETRY":"1","OTEL_LOGS_EXPORTER":"otlp","OTEL_EXPORTER_OTLP_PROTOCOL":"http/json",
			"OTEL_EXPORTER_OTLP_ENDPOINT":"http://127.0.0.1:4318"},"hooks":{"PreToolUse":[{"hooks":[{"type":"command","command":"vigil hook"}]}]}}`,
		"home/dev/.cursor/mcp.json":   `{"mcpServers":{"gh":{"command":"npx","env":{"GITHUB_TOKEN":"ghp_abcdefghijklmnopqrstuvwxyz0123456789"}}}}`,
		"home/dev/.codex/config.toml": "[otel\n",
		// The sensor's own configuration under the root moves the HTTP receiver.
		"etc/vigil/vigil.yaml": "correlate:\n  otlp_http: 127.0.0.1:9318\n",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if err := runInventory([]string{"--root", root, "--format", "json"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var r inventory.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(r.Configs) != 1 || r.Configs[0].Telemetry == nil || r.Configs[0].Telemetry.PointsAtVigil || len(r.Configs[0].Hooks.VigilEvents) != 1 {
		t.Errorf("configs %+v: want Claude's user settings, hooked but not pointing at the receiver moved to :9318", r.Configs)
	}
	if len(r.MCPServers) != 1 || len(r.Errors) != 1 || r.Errors[0].Path != "/home/dev/.codex/config.toml" {
		t.Errorf("servers %+v, errors %+v", r.MCPServers, r.Errors)
	}
	if strings.Contains(out.String(), "ghp_") {
		t.Errorf("a secret is printed:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(root, inventory.DefaultStatePath)); err != nil {
		t.Errorf("first-seen state not written under the root: %v", err)
	}

	out.Reset()
	if err := runInventory([]string{"--root", root}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AGENT", "on, elsewhere: http://127.0.0.1:4318", "Vigil's on 1 of 1 events", "GITHUB_TOKEN", "/home/dev/.codex/config.toml"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "ghp_") {
		t.Errorf("a secret is printed:\n%s", out.String())
	}

	errOut.Reset()
	if err := runInventory([]string{"--help"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) || strings.Count(errOut.String(), "Usage: vigil inventory") != 1 {
		t.Errorf("--help: %v, usage printed %d times", err, strings.Count(errOut.String(), "Usage: vigil inventory"))
	}
	for _, args := range [][]string{{"--format", "yaml"}, {"extra"}, {"--nope"}} {
		if err := runInventory(args, &out, &errOut); !errors.As(err, new(usageError)) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
