package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/sensor/agents"
)

func TestAgentsCommand(t *testing.T) {
	// A host where only Claude Code's managed settings exist.
	present := map[string]bool{"/etc/claude-code/managed-settings.json": true,
		"/Library/Application Support/ClaudeCode/managed-settings.json": true}
	stat := func(p string) (os.FileInfo, error) {
		if present[p] {
			return nil, nil
		}
		return nil, fs.ErrNotExist
	}
	var out, errOut bytes.Buffer
	if err := runAgents([]string{"--format", "json"}, &out, &errOut, stat); err != nil {
		t.Fatal(err)
	}
	var inv []agentInventory
	if err := json.Unmarshal(out.Bytes(), &inv); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(inv) != len(agents.All()) {
		t.Fatalf("%d agents listed, the registry has %d", len(inv), len(agents.All()))
	}
	byName := map[string]agentInventory{}
	for _, a := range inv {
		byName[a.Name] = a
	}
	codex := byName[agents.Codex]
	if len(codex.Env) != 2 || codex.Env[0] != (agentEnvKey{Name: "CODEX_TOOL_CALL_ID", Role: "tool_call"}) {
		t.Errorf("codex env %+v", codex.Env)
	}
	claude := byName[agents.ClaudeCode].Managed
	if len(claude) != 2 || !claude[0].Present || claude[1].Present {
		t.Errorf("claude-code managed %+v", claude)
	}
	for _, m := range byName[agents.Codex].Managed {
		if m.Present {
			t.Errorf("codex managed %+v", m)
		}
	}
	out.Reset()
	if err := runAgents(nil, &out, &errOut, stat); err != nil || !strings.Contains(out.String(), "managed-settings.json (present)") {
		t.Errorf("text: %v\n%s", err, out.String())
	}
	if err := runAgents([]string{"--format", "yaml"}, &out, &errOut, stat); !errors.As(err, new(usageError)) {
		t.Errorf("--format yaml: %v", err)
	}
	if err := runAgents([]string{"--help"}, &out, &errOut, stat); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}
