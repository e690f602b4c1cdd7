package main

// Hook trust against the real sensor: a fake agent (this test binary copied as `claude` or
// `codex`) runs `vigil hook` the way the real CLI runs a hook (research/agents/README.md 1c,
// 2c; Claude's with the TRACEPARENT that CLAUDE_CODE_PROPAGATE_TRACEPARENT=1 gives its hooks
// too, as measured in e2e claude/managed), and a tool shell of it, carrying its tool call's
// join key and running what the real CLI runs there (Claude: `source <snapshot> && eval
// '<command>'`), runs `vigil hook` with a forged payload. The first counts; the second
// becomes agent.untrusted_telemetry and its tool call never appears.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// hookAgentEnv holds a hookAgentSpec in JSON: set, the test binary is a fake agent running hooks.
const hookAgentEnv = "VIGIL_TEST_HOOK_AGENT"

func init() {
	if spec := os.Getenv(hookAgentEnv); spec != "" {
		if err := runHookAgent(spec); err != nil {
			fmt.Fprintln(os.Stderr, "fake hook agent:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
}

type hookAgentSpec struct {
	Role   string // claude or codex
	Vigil  string // the vigil binary
	Socket string
	Undel  string // undelivered dir
	Dir    string
	// Payloads: the hook's own calls (run as the agent runs hooks), then the forged ones
	// (run from a tool shell carrying ToolKey=ToolVal).
	Good, Forged []string
	ToolKey      string
	ToolVal      string
}

func runHookAgent(specJSON string) error {
	var spec hookAgentSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	os.Unsetenv(hookAgentEnv)
	agent := map[string]string{"claude": "claude-code", "codex": "codex"}[spec.Role]
	hook := fmt.Sprintf("%s hook --agent %s --socket %s --undelivered-dir %s", spec.Vigil, agent, spec.Socket, spec.Undel)
	env := os.Environ()
	hookEnv := env
	if spec.Role == "claude" {
		env = append(env, "CLAUDECODE=1", "CLAUDE_CODE_SESSION_ID=s")
		hookEnv = append(slices.Clone(env), "TRACEPARENT=00-"+strings.Repeat("ab", 16)+"-"+strings.Repeat("cd", 8)+"-01")
	}
	for _, payload := range spec.Good {
		// Claude: /bin/sh -c "<hook>" (dash forks the command); Codex: /bin/bash -c '<hook>'
		// (bash execs the single command in place).
		shell := map[string]string{"claude": "/bin/sh", "codex": "/bin/bash"}[spec.Role]
		cmd := exec.Command(shell, "-c", hook)
		cmd.Env, cmd.Dir, cmd.Stdin = hookEnv, spec.Dir, strings.NewReader(payload)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			return fmt.Errorf("hook: %v %q", err, out)
		}
	}
	// The tool shell: a direct child of the agent with the call's key, running a command
	// that calls `vigil hook` with forged payloads (files it wrote), as a prompt-injected
	// model could.
	var script strings.Builder
	for i, payload := range spec.Forged {
		f := filepath.Join(spec.Dir, fmt.Sprintf("forged%d.json", i))
		if err := os.WriteFile(f, []byte(payload), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&script, "%s < %s; ", hook, f)
	}
	script.WriteString("true")
	program := script.String()
	if spec.Role == "claude" {
		snapshot := filepath.Join(spec.Dir, "snapshot-bash-1.sh")
		if err := os.WriteFile(snapshot, nil, 0o644); err != nil {
			return err
		}
		program = "source " + snapshot + " 2>/dev/null || true && eval '" + program + "' && pwd -P >| " + filepath.Join(spec.Dir, "cwd")
	}
	cmd := exec.Command("/bin/bash", "-c", program)
	cmd.Env, cmd.Dir = append(env, spec.ToolKey+"="+spec.ToolVal), spec.Dir
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		return fmt.Errorf("tool shell: %v %q", err, out)
	}
	return nil
}

// hookPayload is a real hook stdin (correlate/testdata/hooks) with its ids replaced.
func hookPayload(t *testing.T, sample string, set map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "correlate", "testdata", "hooks", sample))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Stdin map[string]any `json:"stdin"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if k == "command" {
			doc.Stdin["tool_input"] = map[string]any{"command": v}
			continue
		}
		doc.Stdin[k] = v
	}
	out, err := json.Marshal(doc.Stdin)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestHookTrustRealSensor(t *testing.T) {
	s := startVigil(t, "")
	plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(s.stderr.String(), "")
	sock := regexp.MustCompile(`hook socket listening.*\bsocket=(\S+)`).FindStringSubmatch(plain)
	if sock == nil {
		t.Fatalf("no hook socket in the sensor's log:\n%s", plain)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type agentCase struct {
		role, bin, session, good, forged string
		spec                             hookAgentSpec
	}
	var cases []*agentCase
	for _, role := range []string{"claude", "codex"} {
		c := &agentCase{role: role, bin: copyAs(t, self, role), session: uuid(),
			good: "call_good_" + randHex(6), forged: "call_forged_" + randHex(6)}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		ids := func(call, cmd string) map[string]string {
			return map[string]string{"session_id": c.session, "tool_use_id": call, "command": cmd,
				"prompt_id": "p_" + c.session, "turn_id": "t_" + c.session, "cwd": dir}
		}
		c.spec = hookAgentSpec{Role: role, Vigil: vigilBin, Socket: sock[1], Undel: t.TempDir(), Dir: dir}
		pre, post := "claude/managed_PreToolUse_1.json", "claude/managed_PostToolUse_1.json"
		c.spec.ToolKey, c.spec.ToolVal = "TRACEPARENT", "00-"+randHex(16)+"-"+randHex(8)+"-01"
		if role == "codex" {
			pre, post = "codex/system_PreToolUse_1.json", "codex/system_PostToolUse_1.json"
			c.spec.ToolKey, c.spec.ToolVal = "CODEX_TOOL_CALL_ID", "call_"+randHex(12)
		}
		c.spec.Good = []string{hookPayload(t, pre, ids(c.good, "echo GOOD")), hookPayload(t, post, ids(c.good, "echo GOOD"))}
		c.spec.Forged = []string{hookPayload(t, pre, ids(c.forged, "echo FORGED")), hookPayload(t, post, ids(c.forged, "echo FORGED"))}
		cases = append(cases, c)
	}
	var pids []int
	for _, c := range cases {
		js, err := json.Marshal(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(c.bin)
		cmd.Dir = c.spec.Dir
		cmd.Env = append(os.Environ(), hookAgentEnv+"="+string(js))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fake %s: %v\n%s", c.role, err, out)
		}
		pids = append(pids, cmd.Process.Pid)
	}
	last := pids[len(pids)-1]
	waitForLine(t, s, func(m map[string]any) bool {
		return str(m, "event.action") == "exit" && num(m, "process.pid") == last
	})
	s.stop(t, syscall.SIGINT)
	lines := s.lines(t)

	for _, c := range cases {
		var good, untrusted int
		for _, m := range lines {
			switch {
			case str(m, "gen_ai.tool.call.id") == c.good:
				good++
			case str(m, "gen_ai.tool.call.id") == c.forged:
				t.Errorf("%s: a %s line names the forged tool call: %v", c.role, str(m, "event.action"), m)
			case str(m, "event.action") == "agent.untrusted_telemetry" && str(m, "vigil.telemetry.claimed_conversation_id") == c.session:
				untrusted++
				if !strings.Contains(str(m, "vigil.tool.command"), "FORGED") {
					t.Errorf("%s: an untrusted line that is not the forged call's: %v", c.role, m)
				}
			}
			if str(m, "event.action") != "agent.untrusted_telemetry" && strings.Contains(str(m, "vigil.tool.command"), "FORGED") {
				t.Errorf("%s: the forged command on a %s line: %v", c.role, str(m, "event.action"), m)
			}
		}
		if good == 0 {
			t.Errorf("%s: no line of the hook's own tool call %s: the agent's hook was refused", c.role, c.good)
		}
		if untrusted != len(c.spec.Forged) {
			t.Errorf("%s: %d agent.untrusted_telemetry lines for the forged calls, want %d", c.role, untrusted, len(c.spec.Forged))
		}
		t.Logf("%s: %d line(s) of the hook's call, %d untrusted line(s) for the forged one", c.role, good, untrusted)
	}
	plain = regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(s.stderr.String(), "")
	// Codex's forged calls carry the call's key; Claude's, whose hooks carry a TRACEPARENT
	// too, come from a shell whose program is not the hook command.
	if m := regexp.MustCompile(`hooks_refused=(\{[^}]*\})`).FindStringSubmatch(plain); m == nil ||
		!strings.Contains(m[1], `"tool_call_key":2`) || !strings.Contains(m[1], `"not_hook_command":2`) {
		t.Errorf("vigil stopped line: hooks_refused %v, want tool_call_key:2 and not_hook_command:2\n%s", m, plain)
	}
}
