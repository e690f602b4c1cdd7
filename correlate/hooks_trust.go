package correlate

import (
	"slices"
	"strings"
	"sync"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Why a hook call was refused: the reasons HookTrust counts.
const (
	// HookRefusedNotSeen: within the stitcher's VerifyWait the process table never showed
	// the sender's exec or its parent.
	HookRefusedNotSeen = "sender_not_seen"
	// HookRefusedNotAgentChild: no agent image within two generations above the sender
	// (the agent → [shell -c] → sender shape of a hook).
	HookRefusedNotAgentChild = "not_agent_child"
	// HookRefusedHistory: a process between the agent and the sender was not seen from its
	// fork (seeded from /proc, or its parent unknown), so its exec history is incomplete.
	HookRefusedHistory = "history_unknown"
	// HookRefusedToolKey: an exec on the sender's chain, or between the tree's root and the
	// agent, carried a tool call's join key (TRACEPARENT, CODEX_TOOL_CALL_ID) that the
	// root's own environment did not: a tool shell or something it started.
	HookRefusedToolKey = "tool_call_key"
	// HookRefusedToolShell: an exec on that path was Codex's tool-shell setup
	// (`codex --codex-run-as-process-setup`).
	HookRefusedToolShell = "tool_shell"
	// HookRefusedExecChain: the chain made more execs than a hook does (only the shell's
	// first exec after its fork from the agent, then the sender's) — e.g. an `exec` from a
	// shell that already ran something.
	HookRefusedExecChain = "exec_chain"
	// HookRefusedNotHookCommand: the `-c` shell the agent started runs a program whose
	// command word is not the sender (a tool shell's program: Claude's `source <snapshot>
	// && eval '…'`, from which the sender was started).
	HookRefusedNotHookCommand = "not_hook_command"
)

// codexProcessSetup is the flag of the exec that turns a Codex fork into a tool shell.
const codexProcessSetup = "--codex-run-as-process-setup"

// maxAgentDepth bounds the walk from the agent up to its tree's root.
const maxAgentDepth = 16

// HookTrust decides whether a hook call's sender is the agent's own hook invocation, from
// what the kernel saw (the process table: ancestry, each process's exec history since its
// fork with the join keys read at each exec, whether a process is an agent image) and never
// from what the sender says. The rule, measured on the real CLIs:
//
//   - Claude Code runs a hook as /bin/sh -c "<command>", a direct child of claude, and the
//     shell forks the command: agent → sh → sender.
//   - Codex runs it as /bin/bash -c '<command>', which execs the single command in place:
//     agent → sender, whose history is [bash -c, sender].
//
// So a sender is trusted when the nearest agent image above it is its parent or
// grandparent; every process between them was seen from its fork and made only the execs
// a hook makes (an intermediate shell: one `-c` exec; the sender: its own exec, after at
// most one `-c` shell exec in the same pid when its parent is the agent); the `-c` program
// the agent gave that shell starts with the sender's own argv[0] (the hook command as
// configured, leading NAME=value words aside); and no exec on the chain, in the agent, or
// between the tree's root and the agent carried a tool-call key the root did not carry
// itself (on the chain, a TRACEPARENT aside where the agent runs its hooks with one:
// Claude Code with CLAUDE_CODE_PROPAGATE_TRACEPARENT=1), or was Codex's tool-shell setup. A tool shell (which carries its call's key, or,
// for a Claude Bash shell without CLAUDE_CODE_PROPAGATE_TRACEPARENT=1, runs `source
// <snapshot> && eval '…'`), anything it starts, an `exec` from it, and an agent image started
// from one all fail. The argv judged is the one the kernel recorded at the shell's exec, the
// first exec after its fork from the agent: what the agent chose, not what a tool wrote.
type HookTrust struct {
	lookup  func(pid int) (sensor.ProcessInfo, bool)
	isAgent func(sensor.ProcessInfo) bool

	mu      sync.Mutex
	refused map[string]uint64
}

// NewHookTrust judges senders with the process table's lookup and the catalog's agent test.
func NewHookTrust(lookup func(pid int) (sensor.ProcessInfo, bool), isAgent func(sensor.ProcessInfo) bool) *HookTrust {
	return &HookTrust{lookup: lookup, isAgent: isAgent, refused: map[string]uint64{}}
}

// Check judges the sender of a hook call: trusted, or refused with a reason (counted), or,
// unless final, wait (the process table has not caught up with the sender yet). Once final,
// a sender still not seen is refused.
func (h *HookTrust) Check(pid int, final bool) (trusted, wait bool, reason string) {
	reason, wait = h.judge(pid)
	if wait {
		if !final {
			return false, true, ""
		}
		reason = HookRefusedNotSeen
	}
	if reason == "" {
		return true, false, ""
	}
	h.mu.Lock()
	h.refused[reason]++
	h.mu.Unlock()
	return false, false, reason
}

// Refused returns the refusals so far per reason (a copy).
func (h *HookTrust) Refused() map[string]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]uint64, len(h.refused))
	for k, v := range h.refused {
		out[k] = v
	}
	return out
}

// judge applies the rule; wait means the table does not show enough yet.
func (h *HookTrust) judge(pid int) (reason string, wait bool) {
	sender, ok := h.lookup(pid)
	if !ok || sender.ForkSeen && len(sender.Execs) == 0 {
		return "", true // not in the table yet, or its exec still on the way
	}
	// chain: the sender, then at most one process (the hook shell) below the agent.
	chain := []sensor.ProcessInfo{sender}
	var agent sensor.ProcessInfo
	for {
		cur := chain[len(chain)-1]
		parent, ok := h.parentOf(cur)
		if !ok {
			if cur.PPid > 0 && cur.ForkSeen {
				return "", true
			}
			return HookRefusedNotAgentChild, false
		}
		if h.isAgent(parent) {
			agent = parent
			break
		}
		if len(chain) == 2 {
			return HookRefusedNotAgentChild, false
		}
		chain = append(chain, parent)
	}
	for _, p := range chain {
		if !p.ForkSeen || p.ExecsTruncated {
			return HookRefusedHistory, false
		}
	}
	// Keys the tree's root carried itself came from outside the tree (a CI job's
	// TRACEPARENT), not from a tool call.
	var rootJoin *proto.JoinKeys
	if root, ok := h.lookup(sender.RootPid); ok && sender.RootPid > 0 {
		rootJoin = root.Join
	}
	path := append(slices.Clone(chain), agent)
	for p, n := agent, 0; p.Pid != sender.RootPid && n < maxAgentDepth; n++ {
		parent, ok := h.parentOf(p)
		if !ok {
			break
		}
		if parent.Pid != sender.RootPid {
			path = append(path, parent)
		}
		p = parent
	}
	// An agent that runs its hooks with a TRACEPARENT of its own: on the hook's chain that
	// key is no tool's (a tool shell there still fails on its program, runsSender); above
	// the agent it still is.
	hookTraceParent := agents.HooksCarryTraceParent(agent.Agent)
	for i, p := range path {
		if r := taint(p, rootJoin, hookTraceParent && i < len(chain)); r != "" {
			return r, false
		}
	}
	if !hookExecShape(chain) {
		return HookRefusedExecChain, false
	}
	if !runsSender(chain) {
		return HookRefusedNotHookCommand, false
	}
	return "", false
}

// parentOf is the process's parent, if the table knows it and it started first (a reused
// pid is not the parent).
func (h *HookTrust) parentOf(p sensor.ProcessInfo) (sensor.ProcessInfo, bool) {
	if p.PPid <= 0 || p.PPid == p.Pid {
		return sensor.ProcessInfo{}, false
	}
	parent, ok := h.lookup(p.PPid)
	if !ok || p.StartBootNs != 0 && parent.StartBootNs > p.StartBootNs {
		return sensor.ProcessInfo{}, false
	}
	return parent, true
}

// taint reports whether any exec of p (its history, or its current keys when the history
// is unknown) carried a tool call's key the root did not (a TRACEPARENT aside when
// ignoreTraceParent), or was Codex's tool-shell setup.
func taint(p sensor.ProcessInfo, root *proto.JoinKeys, ignoreTraceParent bool) string {
	execs := p.Execs
	if len(execs) == 0 {
		execs = []sensor.ExecRecord{{Executable: p.Executable, Args: p.Args, Join: p.Join}}
	}
	for _, x := range execs {
		if slices.Contains(x.Args, codexProcessSetup) {
			return HookRefusedToolShell
		}
		if toolCallKey(x.Join, root, ignoreTraceParent) {
			return HookRefusedToolKey
		}
	}
	return ""
}

// toolCallKey: j carries a tool-call join key with a value other than the root's.
func toolCallKey(j, root *proto.JoinKeys, ignoreTraceParent bool) bool {
	if j == nil {
		return false
	}
	var r proto.JoinKeys
	if root != nil {
		r = *root
	}
	if !ignoreTraceParent && j.TraceParent != "" && j.TraceParent != r.TraceParent {
		return true
	}
	for agent, id := range j.ToolCalls {
		if id != "" && id != r.ToolCalls[agent] {
			return true
		}
	}
	return false
}

// hookExecShape: chain[0] is the sender, chain[1] (if any) the shell between it and the
// agent. The shell made exactly one exec, a `-c` shell; the sender then made exactly one.
// A sender whose parent is the agent made one exec, or a `-c` shell exec followed by its own
// (bash running a single command in place).
func hookExecShape(chain []sensor.ProcessInfo) bool {
	sender := chain[0].Execs
	if len(chain) == 2 {
		shell := chain[1].Execs
		return len(shell) == 1 && dashC(shell[0].Args) && len(sender) == 1
	}
	return len(sender) == 1 || len(sender) == 2 && dashC(sender[0].Args)
}

// runsSender: the `-c` shell of a chain that hookExecShape accepted (the hook shell, or the
// sender's own first exec) runs a program whose command word is what the sender was
// executed as.
func runsSender(chain []sensor.ProcessInfo) bool {
	sender := chain[0].Execs
	shell := sender[0].Args
	if len(chain) == 2 {
		shell = chain[1].Execs[0].Args
	} else if len(sender) == 1 {
		return true // the agent executed the sender itself: no shell program to judge
	}
	self := sender[len(sender)-1].Args
	return len(self) > 0 && commandWord(shell[2]) == self[0]
}

// commandWord is the first word of a shell program after any leading NAME=value
// assignments, with a quoted word unquoted ('/opt/my tools/vigil' hook); "" when there is
// none.
func commandWord(program string) string {
	for rest := strings.TrimSpace(program); rest != ""; rest = strings.TrimSpace(rest) {
		var w string
		if q := rest[0]; q == '\'' || q == '"' {
			end := strings.IndexByte(rest[1:], q)
			if end < 0 {
				return ""
			}
			w, rest = rest[1:1+end], rest[2+end:]
		} else {
			w, rest, _ = strings.Cut(rest, " ")
		}
		if name, _, ok := strings.Cut(w, "="); ok && name != "" && !strings.ContainsAny(name, "/ ") {
			continue
		}
		return w
	}
	return ""
}

// dashC: argv of a shell running a command string (`sh -c '<command>'`).
func dashC(args []string) bool {
	return len(args) >= 3 && args[1] == "-c"
}
