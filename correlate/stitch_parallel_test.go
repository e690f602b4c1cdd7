package correlate

import (
	"testing"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Parallel tool calls: two calls of one prompt running at once, so no window is unique and
// every binding has to come from a key, the command text or a path.

// stCodexSynth builds a synthetic agent event of the Codex sample session.
func stCodexSynth(kind, at string, f func(*proto.AgentEvent)) proto.AgentEvent {
	ae := proto.AgentEvent{Agent: agents.Codex, Kind: kind, Time: stAt(at), SessionID: codexSession, TraceID: codexTrace, PromptID: codexTrace}
	if f != nil {
		f(&ae)
	}
	return ae
}

// stCodexCalls is the telemetry of exec_command calls decided at from and finished at to,
// one decision and one result each, as Codex's logs report them.
func stCodexCalls(from, to string, ids ...string) []TelemetryBatch {
	var evs []proto.AgentEvent
	for _, id := range ids {
		evs = append(evs, stCodexSynth(proto.KindToolDecision, from, func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Decision, ae.DecisionSource = "exec_command", id, "approved", "Config"
		}))
	}
	for _, id := range ids {
		evs = append(evs, stCodexSynth(proto.KindToolResult, to, func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Success = "exec_command", id, boolp(true)
		}))
	}
	return []TelemetryBatch{{Events: evs, Transport: "otlp_http", SenderPid: stCodexPid}}
}

// stCodexSetupArgv is the argv of Codex's process-setup exec (from the e2e run codex/parallel:
// Codex 0.169.0 re-executes itself, then execs the shell).
func stCodexSetupArgv(cmd string) []string {
	return []string{"/proc/self/exe", "--codex-run-as-process-setup", "52", "24688", "pipe", "", stCodexRepo,
		"/bin/bash", "/bin/bash", "-c", cmd}
}

// stCodexParallel are kernel events of two exec_command calls Codex runs at once, in the
// kernel's order (e2e codex/parallel, sequences 1789-1806), and what each must be bound to:
// each call runs in a process Codex forks, which first execs `--codex-run-as-process-setup`
// without CODEX_TOOL_CALL_ID and opens a few files, then execs the shell with the key ~5 ms
// later. With two calls running, the fork, the setup exec and its opens are bound by the same
// process's keyed exec.
func stCodexParallel() (rows []stRow, telemetry []TelemetryBatch) {
	const a, b = "call_e2e_0_0", "call_e2e_0_1"
	const pa, pb = 26769, 26770
	in := func(id string) bound {
		return bound{proto.BindingEnvCallID, "high", id, "exec_command", codexSession, codexTrace}
	}
	none := bound{proto.BindingNone, "", "", "", codexSession, ""} // no prompt event in this telemetry
	rows = []stRow{
		{"A's fork", stCodexFork(pa, "11:25:14.110"), in(a)},
		{"A's setup exec, no key", stCodexSetup(pa, "11:25:14.110"), in(a)},
		{"B's fork", stCodexFork(pb, "11:25:14.112"), in(b)},
		{"B's setup exec, no key", stCodexSetup(pb, "11:25:14.113"), in(b)},
		{"A's setup opens", stCodexOpen(pa, "11:25:14.114", "/proc/sys/vm/overcommit_memory"), in(a)},
		{"B's setup opens", stCodexOpen(pb, "11:25:14.117", "/proc/sys/vm/overcommit_memory"), in(b)},
		{"A's setup opens /etc/passwd", stCodexOpen(pa, "11:25:14.117", "/etc/passwd"), in(a)},
		{"B's setup opens /etc/passwd", stCodexOpen(pb, "11:25:14.117", "/etc/passwd"), in(b)},
		{"B's keyed shell exec", stCodexShell(pb, "11:25:14.118", b), in(b)},
		{"B's shell opens", stCodexOpen(pb, "11:25:14.119", "/etc/ld.so.cache"), in(b)},
		{"A's keyed shell exec", stCodexShell(pa, "11:25:14.119", a), in(a)},
		// A keyed exec naming no known call binds nothing ahead of it.
		{"a fork whose exec names an unknown call", stCodexFork(26772, "11:25:14.124"), none},
		{"that exec", stCodexShell(26772, "11:25:14.125", "call_unknown"), none},
	}
	return rows, stCodexCalls("11:25:14.085", "11:25:14.236", a, b)
}

func stCodexFork(pid int, at string) kev {
	return kev{action: proto.ActionFork, pid: pid, ppid: stCodexPid, root: stCodexRoot, at: at, cwd: stCodexRepo,
		args: []string{"codex", "exec", "--json"}}
}

func stCodexSetup(pid int, at string) kev {
	return kev{action: proto.ActionExec, pid: pid, ppid: stCodexPid, root: stCodexRoot, at: at, cwd: stCodexRepo,
		args: stCodexSetupArgv("cat notes.txt | wc -l")}
}

func stCodexOpen(pid int, at, path string) kev {
	return kev{action: proto.ActionOpen, pid: pid, ppid: stCodexPid, root: stCodexRoot, at: at, cwd: stCodexRepo, path: path}
}

func stCodexShell(pid int, at, id string) kev {
	return kev{action: proto.ActionExec, pid: pid, ppid: stCodexPid, root: stCodexRoot, at: at, cwd: stCodexRepo,
		args: []string{"/bin/bash", "-c", "cat notes.txt | wc -l"}, join: codexJoin(id)}
}

func TestStitchCodexParallelSetup(t *testing.T) {
	rows, telemetry := stCodexParallel()
	// A process that exits before any keyed exec stays unexplained: its exit ends the
	// look-ahead (entity ids are never reused; this only bounds the scan).
	none := bound{proto.BindingNone, "", "", "", codexSession, ""}
	rows = append(rows,
		stRow{"a fork that exits unkeyed", stCodexFork(26771, "11:25:14.120"), none},
		stRow{"its unkeyed exec", stCodexSetup(26771, "11:25:14.121"), none},
		stRow{"its exit", kev{action: proto.ActionExit, pid: 26771, ppid: stCodexPid, root: stCodexRoot, at: "11:25:14.122"}, none},
		stRow{"a keyed exec of the same entity after the exit", stCodexShell(26771, "11:25:14.123", "call_e2e_0_0"),
			bound{proto.BindingEnvCallID, "high", "call_e2e_0_0", "exec_command", codexSession, codexTrace}},
	)
	stScenario(t, rows, telemetry, false)
}
