package correlate

import (
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

// A merged open line stands for repeats from its first to its last time: it is bound by time
// only when that whole span lies in one call's window and no call of the session starts or
// ends inside it. What holds for the process (its join key) holds for the whole span.
func TestStitchMergedSpan(t *testing.T) {
	// A parallel Grep call of the same prompt (synthetic), from 41.300 to 41.400, inside the
	// real Bash call, which ends between 41.605 and 41.650.
	parallel := TelemetryBatch{Transport: "otlp_http", SenderPid: stClaudePid, Events: []proto.AgentEvent{
		stSynth(proto.KindToolDecision, "11:25:41.300", func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Decision, ae.DecisionSource = "Grep", "toolu_par_1", "accept", "config"
		}),
		stSynth(proto.KindToolResult, "11:25:41.400", func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Success, ae.DurationMs = "Grep", "toolu_par_1", boolp(true), 100
		}),
	}}
	open := func(pid int, from, to string) kev {
		return kev{action: proto.ActionOpen, pid: pid, ppid: stClaudePid, root: stClaudePid, at: from, mergedTo: to,
			path: "/tmp/lock", cwd: stClaudeRepo}
	}
	bash := bound{proto.BindingWindow, "low", stClaudeBash, "Bash", claudeSession, claudePrompt}
	none := bound{proto.BindingNone, "", "", "", claudeSession, claudePrompt}
	keyed := open(80106, "11:25:41.200", "11:25:41.320")
	keyed.join = claudeJoin(stClaudeTraceParent)
	rows := []stRow{
		{"one open while only Bash runs", open(80101, "11:25:41.200", ""), bash},
		{"a span inside Bash's window, no boundary in it", open(80102, "11:25:41.460", "11:25:41.600"), bash},
		{"a span Grep's start falls in", open(80103, "11:25:41.200", "11:25:41.320"), none},
		{"a span inside two calls' windows", open(80104, "11:25:41.350", "11:25:41.380"), none},
		{"a span Bash's end falls in", open(80105, "11:25:41.460", "11:25:41.700"), none},
		{"a span Grep's start falls in, of a process keyed to Bash", keyed,
			bound{proto.BindingTraceParent, "high", stClaudeBash, "Bash", claudeSession, claudePrompt}},
	}
	stScenario(t, rows, append(stRun(t, "claude", stClaudePid, nil), parallel), false)
}

// Each batch that starts or ends a tool call ends the kernel's merge runs, as it arrives.
func TestStitchToolBoundaryEndsMergeRuns(t *testing.T) {
	bumps := 0
	s := NewStitcher(StitcherOptions{Lookup: stLookup, ToolBoundary: func() { bumps++ }})
	s.AddTelemetry(TelemetryBatch{Transport: "hook", SenderPid: 999999, Events: []proto.AgentEvent{
		stSynth(proto.KindToolDecision, "11:25:41.300", func(ae *proto.AgentEvent) { ae.ToolUseID = "toolu_1" }),
	}})
	s.AddTelemetry(TelemetryBatch{Transport: "hook", SenderPid: 999999, Events: []proto.AgentEvent{
		stSynth(proto.KindUserPrompt, "11:25:41.350", nil),
	}})
	s.AddTelemetry(TelemetryBatch{Transport: "hook", SenderPid: 999999, Events: []proto.AgentEvent{
		stSynth(proto.KindToolResult, "11:25:41.400", func(ae *proto.AgentEvent) { ae.ToolUseID = "toolu_1" }),
	}})
	if bumps != 2 {
		t.Errorf("%d merge-run ends for a call's decision, a prompt and the call's result; want 2", bumps)
	}
}
