package main

import (
	"testing"

	"github.com/vigil-sensor/vigil/sensor"
)

// TestAgentProcessIgnoresArgv0AndComm: the trust test for telemetry senders and hook
// parents looks at the executed image (and an interpreter's script), never at argv[0] or
// comm, which any process can choose.
func TestAgentProcessIgnoresArgv0AndComm(t *testing.T) {
	isAgent := agentProcess(sensor.DefaultCatalog())
	const nm = "/usr/local/lib/node_modules"
	tests := []struct {
		name string
		p    sensor.ProcessInfo
		want bool
	}{
		{"exec -a claude python3", sensor.ProcessInfo{Name: "claude", Executable: "/usr/bin/python3.12", Args: []string{"claude", "-c", "import requests"}}, false},
		{"python3 argv0 claude with a script", sensor.ProcessInfo{Name: "python3", Executable: "/usr/bin/python3", Args: []string{"claude", "/tmp/send_otlp.py"}}, false},
		{"comm claude.exe only", sensor.ProcessInfo{Name: "claude.exe", Executable: "/usr/bin/curl", Args: []string{"curl", "http://127.0.0.1:4318"}}, false},
		{"argv0 codex native path", sensor.ProcessInfo{Name: "codex", Executable: "/tmp/evil", Args: []string{nm + "/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex"}}, false},
		{"claude.exe", sensor.ProcessInfo{Name: "claude", Executable: nm + "/@anthropic-ai/claude-code/bin/claude.exe", Args: []string{"claude", "-p", "hi"}}, true},
		{"node cli.js", sensor.ProcessInfo{Name: "node", Executable: "/usr/bin/node", Args: []string{"node", nm + "/@anthropic-ai/claude-code/cli.js"}}, true},
		{"claude native install", sensor.ProcessInfo{Name: "claude", Executable: "/home/dev/.local/share/claude/versions/2.1.3", Args: []string{"claude"}}, true},
		{"codex native", sensor.ProcessInfo{Name: "codex", Executable: nm + "/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex", Args: []string{"codex", "exec"}}, true},
		{"node codex.js", sensor.ProcessInfo{Name: "node", Executable: "/usr/bin/node", Args: []string{"node", nm + "/@openai/codex/bin/codex.js"}}, true},
		// The kernel rooted a tree at a copy of an agent binary (matched by its hash).
		{"a copied agent binary, the tree's root", sensor.ProcessInfo{Pid: 700, RootPid: 700, Agent: "claude-code", Name: "x", Executable: "/tmp/x", Args: []string{"/tmp/x"}}, true},
		{"a process of that tree, not its root", sensor.ProcessInfo{Pid: 701, RootPid: 700, Agent: "claude-code", Name: "python3", Executable: "/usr/bin/python3", Args: []string{"claude", "x.py"}}, false},
		{"a root with no agent (not from the kernel)", sensor.ProcessInfo{Pid: 702, RootPid: 702, Name: "x", Executable: "/tmp/x"}, false},
	}
	for _, tt := range tests {
		if got := isAgent(tt.p); got != tt.want {
			t.Errorf("%s: isAgent = %v, want %v", tt.name, got, tt.want)
		}
	}
}
