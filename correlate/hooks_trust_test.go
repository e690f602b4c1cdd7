package correlate

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// trustTable is a real process table fed with the kernel events of one agent tree, in the
// shapes measured on the real CLIs (research/agents/README.md 1b, 1c, 2b, 2c).
type trustTable struct {
	t      *testing.T
	tab    *sensor.ProcessTable
	root   int
	next   uint64         // start times, increasing
	starts map[int]uint64 // each forked pid's start time, for its later events
}

func newTrustTable(t *testing.T) *trustTable {
	return &trustTable{t: t, tab: sensor.NewProcessTable(sensor.ProcessTableOptions{BootID: "b"}), next: 1000, starts: map[int]uint64{}}
}

func (tt *trustTable) event(action string, pid int, start uint64) *proto.Event {
	return &proto.Event{
		Timestamp: time.Unix(1, 0),
		Event:     proto.EventMeta{Action: action, Outcome: proto.OutcomeSuccess},
		Process:   &proto.Process{Pid: pid, StartBootNs: start},
		Vigil:     proto.Vigil{Root: &proto.Root{Pid: tt.root}},
	}
}

// seedRoot adds the agent root as the /proc bootstrap does.
func (tt *trustTable) seedRoot(pid int, exe string, args ...string) {
	tt.root = pid
	tt.tab.Seed(sensor.ProcessInfo{Pid: pid, PPid: 1, StartBootNs: 500, Executable: exe, Args: args, RootPid: pid, Agent: "a"})
}

func (tt *trustTable) startOf(pid int) uint64 {
	if pid == tt.root {
		return 500
	}
	return tt.starts[pid]
}

func (tt *trustTable) fork(parent, child int) {
	tt.next += 10_000_000
	tt.starts[child] = tt.next
	e := tt.event(proto.ActionFork, child, tt.next)
	e.Process.Parent = &proto.ParentProcess{Pid: parent}
	tt.tab.Apply(e)
}

func (tt *trustTable) exec(pid int, join *proto.JoinKeys, exe string, args ...string) {
	e := tt.event(proto.ActionExec, pid, tt.startOf(pid))
	e.Process.Executable, e.Process.Args, e.Vigil.Join = exe, args, join
	tt.tab.Apply(e)
}

func (tt *trustTable) trust() *HookTrust {
	return NewHookTrust(tt.tab.Lookup, func(p sensor.ProcessInfo) bool {
		return slices.Contains([]string{"claude.exe", "codex"}, filepath.Base(p.Executable))
	})
}

const (
	claudeExe = "/opt/claude/bin/claude.exe"
	codexExe  = "/opt/codex/bin/codex"
	vigilExe  = "/usr/local/bin/vigil"
)

var (
	claudeHookEnv = agents.JoinKeysOf("CLAUDE_CODE_SESSION_ID=s1", "CLAUDECODE=1")
	claudeToolEnv = agents.JoinKeysOf("TRACEPARENT=00-aaaa-bbbb-01", "CLAUDE_CODE_SESSION_ID=s1", "CLAUDECODE=1", "AI_AGENT=claude-code_2")
	codexToolEnv  = agents.JoinKeysOf("CODEX_TOOL_CALL_ID=call_1", "CODEX_SESSION_ID=c1")
	vigilArgs     = []string{"vigil", "hook", "--agent", "claude-code"}
)

// claudeTree: claude (100) with a hook (sh 201 → vigil 202) and a Bash tool shell (301).
func claudeTree(t *testing.T) *trustTable {
	tt := newTrustTable(t)
	tt.seedRoot(100, claudeExe, "claude")
	tt.fork(100, 201)
	tt.exec(201, claudeHookEnv, "/usr/bin/dash", "/bin/sh", "-c", "vigil hook --agent claude-code")
	tt.fork(201, 202)
	tt.exec(202, claudeHookEnv, vigilExe, vigilArgs...)
	tt.fork(100, 301)
	tt.exec(301, claudeToolEnv, "/usr/bin/bash", "/bin/bash", "-c", "source snap && eval 'vigil hook --agent claude-code < forged' && pwd -P >| /tmp/claude-1-cwd")
	return tt
}

// codexTree: node wrapper (400) → codex (401) with a hook (410: bash -c, then vigil in place)
// and a tool shell (420: process setup, wrapper bash, command bash).
func codexTree(t *testing.T) *trustTable {
	tt := newTrustTable(t)
	tt.seedRoot(400, "/usr/bin/node", "node", "/opt/codex/bin/codex.js")
	tt.fork(400, 401)
	tt.exec(401, nil, codexExe, "codex", "exec")
	tt.fork(401, 410)
	tt.exec(410, nil, "/usr/bin/bash", "/bin/bash", "-c", "vigil hook --agent codex")
	tt.exec(410, nil, vigilExe, "vigil", "hook", "--agent", "codex")
	tt.fork(401, 420)
	tt.exec(420, nil, codexExe, "/proc/self/exe", "--codex-run-as-process-setup", "46", "401", "pipe", "", "/w", "/bin/bash", "/bin/bash", "-c", "w")
	tt.exec(420, codexToolEnv, "/usr/bin/bash", "/bin/bash", "-c", "__CODEX_SNAPSHOT... exec")
	tt.exec(420, codexToolEnv, "/usr/bin/bash", "/bin/bash", "-c", "vigil hook --agent codex < forged; true")
	return tt
}

func TestHookTrustRule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tree  func(*testing.T) *trustTable
		build func(tt *trustTable) // adds the sender
		pid   int
		want  string // "" trusted
	}{
		{name: "claude hook: claude → sh -c → vigil", tree: claudeTree, pid: 202},
		{name: "codex hook: codex → bash -c, vigil exec'd in place", tree: codexTree, pid: 410},
		{name: "claude hook whose sh execs the command in place", tree: claudeTree, pid: 203, build: func(tt *trustTable) {
			tt.fork(100, 203)
			tt.exec(203, claudeHookEnv, "/usr/bin/dash", "/bin/sh", "-c", "vigil hook --agent claude-code")
			tt.exec(203, claudeHookEnv, vigilExe, vigilArgs...)
		}},
		{name: "claude tool shell's child, with TRACEPARENT", tree: claudeTree, pid: 302, want: HookRefusedToolKey, build: func(tt *trustTable) {
			tt.fork(301, 302)
			tt.exec(302, claudeToolEnv, vigilExe, vigilArgs...)
		}},
		{name: "claude tool shell's child after unset TRACEPARENT", tree: claudeTree, pid: 302, want: HookRefusedToolKey, build: func(tt *trustTable) {
			tt.fork(301, 302)
			tt.exec(302, claudeHookEnv, vigilExe, vigilArgs...)
		}},
		{name: "claude tool shell's `exec vigil hook`", tree: claudeTree, pid: 301, want: HookRefusedToolKey, build: func(tt *trustTable) {
			tt.exec(301, claudeHookEnv, vigilExe, vigilArgs...)
		}},
		{name: "tool shell → sh -c → vigil (one generation too many)", tree: claudeTree, pid: 304, want: HookRefusedNotAgentChild, build: func(tt *trustTable) {
			tt.fork(301, 303)
			tt.exec(303, nil, "/usr/bin/dash", "/bin/sh", "-c", "vigil hook")
			tt.fork(303, 304)
			tt.exec(304, nil, vigilExe, vigilArgs...)
		}},
		{name: "an agent image started from a tool shell (cp /bin/sh claude.exe)", tree: claudeTree, pid: 306, want: HookRefusedToolKey, build: func(tt *trustTable) {
			tt.fork(301, 305)
			tt.exec(305, nil, "/tmp/x/claude.exe", "claude.exe", "-c", "vigil hook")
			tt.fork(305, 306)
			tt.exec(306, nil, vigilExe, vigilArgs...)
		}},
		{name: "hook shell that ran something before the sender", tree: claudeTree, pid: 205, want: HookRefusedExecChain, build: func(tt *trustTable) {
			tt.fork(201, 205)
			tt.exec(205, claudeHookEnv, "/usr/bin/env", "env", "vigil", "hook")
			tt.exec(205, claudeHookEnv, vigilExe, vigilArgs...)
		}},
		{name: "agent's direct child that is not a -c shell, then vigil", tree: claudeTree, pid: 206, want: HookRefusedExecChain, build: func(tt *trustTable) {
			tt.fork(100, 206)
			tt.exec(206, claudeHookEnv, "/usr/bin/env", "env", "vigil", "hook")
			tt.exec(206, claudeHookEnv, vigilExe, vigilArgs...)
		}},
		{name: "codex tool shell's child", tree: codexTree, pid: 421, want: HookRefusedToolKey, build: func(tt *trustTable) {
			tt.fork(420, 421)
			tt.exec(421, codexToolEnv, vigilExe, "vigil", "hook", "--agent", "codex")
		}},
		{name: "codex tool shell running vigil hook in place", tree: codexTree, pid: 420, want: HookRefusedToolShell, build: func(tt *trustTable) {
			tt.exec(420, codexToolEnv, vigilExe, "vigil", "hook", "--agent", "codex")
		}},
		{name: "codex fork that ran the process setup, without the key", tree: codexTree, pid: 430, want: HookRefusedToolShell, build: func(tt *trustTable) {
			tt.fork(401, 430)
			tt.exec(430, nil, codexExe, "/proc/self/exe", "--codex-run-as-process-setup", "46")
			tt.exec(430, nil, vigilExe, "vigil", "hook")
		}},
		{name: "sender seeded from /proc: its history is unknown", tree: claudeTree, pid: 207, want: HookRefusedHistory, build: func(tt *trustTable) {
			tt.tab.Seed(sensor.ProcessInfo{Pid: 207, PPid: 100, StartBootNs: 900_000_000_000, Executable: vigilExe, Args: vigilArgs, RootPid: 100})
		}},
		{name: "a key the root carried itself (a CI job's TRACEPARENT) is no tool call's", pid: 502, tree: func(t *testing.T) *trustTable {
			tt := newTrustTable(t)
			tt.seedRoot(1, "/sbin/init", "init")
			outer := &proto.JoinKeys{TraceParent: "00-ci-job-01"}
			tt.fork(1, 500)
			tt.root = 500
			tt.exec(500, outer, claudeExe, "claude")
			tt.fork(500, 501)
			tt.exec(501, agents.JoinKeysOf("TRACEPARENT=00-ci-job-01", "CLAUDE_CODE_SESSION_ID=s1"), "/usr/bin/dash", "/bin/sh", "-c", "vigil hook")
			tt.fork(501, 502)
			tt.exec(502, agents.JoinKeysOf("TRACEPARENT=00-ci-job-01", "CLAUDE_CODE_SESSION_ID=s1"), vigilExe, vigilArgs...)
			return tt
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := tc.tree(t)
			if tc.build != nil {
				tc.build(tt)
			}
			h := tt.trust()
			trusted, wait, reason := h.Check(tc.pid, false)
			if wait || trusted != (tc.want == "") || reason != tc.want {
				t.Fatalf("trusted %v wait %v reason %q, want %q", trusted, wait, reason, tc.want)
			}
			if tc.want != "" && h.Refused()[tc.want] != 1 {
				t.Errorf("refusals %v", h.Refused())
			}
		})
	}
}

// Claude Code with CLAUDE_CODE_PROPAGATE_TRACEPARENT=1 (what vigil install sets) runs its
// hooks with a TRACEPARENT too: in a tree named claude-code that key no longer refuses the
// hook, and every tool-shell path is still refused, by its program or by the key above the
// agent.
func TestHookTrustClaudeHooksWithTraceparent(t *testing.T) {
	hookEnv := agents.JoinKeysOf("TRACEPARENT=00-cccc-dddd-01", "CLAUDE_CODE_SESSION_ID=s1", "CLAUDECODE=1")
	tree := func(t *testing.T) *trustTable {
		tt := newTrustTable(t)
		tt.root = 100
		tt.tab.Seed(sensor.ProcessInfo{Pid: 100, PPid: 1, StartBootNs: 500, Executable: claudeExe, Args: []string{"claude"}, RootPid: 100, Agent: agents.ClaudeCode})
		tt.fork(100, 201)
		tt.exec(201, hookEnv, "/usr/bin/dash", "/bin/sh", "-c", "vigil hook --agent claude-code")
		tt.fork(201, 202)
		tt.exec(202, hookEnv, vigilExe, vigilArgs...)
		tt.fork(100, 301)
		tt.exec(301, claudeToolEnv, "/usr/bin/bash", "/bin/bash", "-c", "source snap && eval 'vigil hook --agent claude-code < forged' && pwd -P >| /tmp/claude-1-cwd")
		return tt
	}
	for _, tc := range []struct {
		name  string
		build func(tt *trustTable)
		pid   int
		want  string
	}{
		{name: "the hook, with its TRACEPARENT", pid: 202},
		{name: "tool shell's child", pid: 302, want: HookRefusedNotHookCommand, build: func(tt *trustTable) {
			tt.fork(301, 302)
			tt.exec(302, claudeToolEnv, vigilExe, vigilArgs...)
		}},
		{name: "tool shell's `exec vigil hook`", pid: 301, want: HookRefusedNotHookCommand, build: func(tt *trustTable) {
			tt.exec(301, claudeToolEnv, vigilExe, vigilArgs...)
		}},
		{name: "an agent image started from a tool shell", pid: 306, want: HookRefusedToolKey, build: func(tt *trustTable) {
			tt.fork(301, 305)
			tt.exec(305, nil, "/tmp/x/claude.exe", "claude.exe", "-c", "vigil hook")
			tt.fork(305, 306)
			tt.exec(306, nil, vigilExe, vigilArgs...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := tree(t)
			if tc.build != nil {
				tc.build(tt)
			}
			trusted, wait, reason := tt.trust().Check(tc.pid, false)
			if wait || trusted != (tc.want == "") || reason != tc.want {
				t.Fatalf("trusted %v wait %v reason %q, want %q", trusted, wait, reason, tc.want)
			}
		})
	}
}

// A Claude Bash tool shell without CLAUDE_CODE_PROPAGATE_TRACEPARENT=1 carries no tool-call
// key, and its direct child has a hook's shape (claude → -c shell → vigil); the shell's
// program, chosen by the agent, tells them apart.
func TestHookTrustClaudeToolShellWithoutTraceparent(t *testing.T) {
	tt := claudeTree(t)
	tt.fork(100, 310)
	tt.exec(310, claudeHookEnv, "/usr/bin/bash", "/bin/bash", "-c", "source snap && eval 'vigil hook' && pwd -P >| /tmp/c")
	tt.fork(310, 311)
	tt.exec(311, claudeHookEnv, vigilExe, vigilArgs...)
	if trusted, _, reason := tt.trust().Check(311, false); trusted || reason != HookRefusedNotHookCommand {
		t.Errorf("trusted %v reason %q, want refused %q", trusted, reason, HookRefusedNotHookCommand)
	}
}

func TestCommandWord(t *testing.T) {
	for program, want := range map[string]string{
		"vigil hook --agent claude-code":   "vigil",
		"/usr/local/bin/vigil hook":        "/usr/local/bin/vigil",
		"'/opt/my tools/vigil' hook":       "/opt/my tools/vigil",
		`"/opt/vigil" hook`:                "/opt/vigil",
		"VIGIL_DEBUG=1 vigil hook":         "vigil",
		"source snap && eval 'vigil hook'": "source",
		"  ":                               "",
		"'unterminated vigil":              "",
		"=x vigil":                         "=x",
		"/tmp/a=b/vigil hook":              "/tmp/a=b/vigil",
	} {
		if got := commandWord(program); got != want {
			t.Errorf("commandWord(%q) = %q, want %q", program, got, want)
		}
	}
}

// A sender the table has not shown yet (or whose exec is still on the way) waits; once the
// stitcher's VerifyWait is over it is refused.
func TestHookTrustWaitsForTheTable(t *testing.T) {
	tt := claudeTree(t)
	h := tt.trust()
	if trusted, wait, _ := h.Check(999, false); trusted || !wait {
		t.Errorf("unknown sender: trusted %v wait %v", trusted, wait)
	}
	tt.fork(201, 208) // forked, exec not applied yet
	if trusted, wait, _ := h.Check(208, false); trusted || !wait {
		t.Errorf("exec pending: trusted %v wait %v", trusted, wait)
	}
	if trusted, wait, reason := h.Check(999, true); trusted || wait || reason != HookRefusedNotSeen {
		t.Errorf("final: trusted %v wait %v reason %q", trusted, wait, reason)
	}
	tt.exec(208, claudeHookEnv, vigilExe, vigilArgs...)
	if trusted, wait, _ := h.Check(208, false); !trusted || wait {
		t.Errorf("after its exec: trusted %v wait %v", trusted, wait)
	}
	if got := h.Refused(); len(got) != 1 || got[HookRefusedNotSeen] != 1 {
		t.Errorf("refusals %v", got)
	}
}
