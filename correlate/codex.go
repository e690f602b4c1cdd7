package correlate

import (
	"strings"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vigil-sensor/vigil/proto"
)

// Codex 0.169 log events (scope codex_otel.log_only). Every record has event.name,
// event.timestamp, conversation.id and model; timeUnixNano is 0 and the body null.
var codexLogKinds = map[string]string{
	"codex.user_prompt":         proto.KindUserPrompt,
	"codex.tool_decision":       proto.KindToolDecision,
	"codex.tool_result":         proto.KindToolResult,
	"codex.api_request":         proto.KindAPIRequest,
	"codex.conversation_starts": proto.KindSessionStart,
}

// codexIgnoredLogs are known events the correlator has no use for.
var codexIgnoredLogs = map[string]bool{
	"codex.sse_event":     true, // one per SSE event of the model stream
	"codex.startup_phase": true,
	"codex.turn_ttft":     true,
}

func adaptCodexLog(res resource, r *logspb.LogRecord) (proto.AgentEvent, string) {
	attrs := r.GetAttributes()
	// The OTLP eventName field holds a source location ("event otel/src/...rs:703"), not the
	// event's name: only the attribute counts.
	name := attrStr(attrs, "event.name")
	if name == "" {
		return proto.AgentEvent{}, SkipNoEventName
	}
	ev, reason := baseLog(res, r, name, name, codexLogKinds, codexIgnoredLogs)
	if reason != "" {
		return ev, reason
	}
	ev.SessionID = attrStr(attrs, "conversation.id")
	// Codex records carry no prompt id: the turn's trace stands for it, and the stitcher
	// writes the turn id instead once a span has named the trace's turn.
	ev.PromptID = ev.TraceID
	ev.Model = attrStr(attrs, "model")
	switch ev.Kind {
	case proto.KindUserPrompt:
		ev.Prompt = attrStr(attrs, "prompt")
	case proto.KindToolDecision:
		ev.ToolName = attrStr(attrs, "tool_name")
		ev.ToolUseID = attrStr(attrs, "call_id")
		ev.Decision = attrStr(attrs, "decision")
		ev.DecisionSource = attrStr(attrs, "source")
	case proto.KindToolResult:
		ev.ToolName = attrStr(attrs, "tool_name")
		ev.ToolUseID = attrStr(attrs, "call_id")
		ev.Success = attrBool(attrs, "success")
		ev.DurationMs, _ = attrInt(attrs, "duration_ms")
		codexArguments(&ev, attrStr(attrs, "arguments"))
	case proto.KindAPIRequest:
		ev.DurationMs, _ = attrInt(attrs, "duration_ms")
	}
	return ev, ""
}

// codexArguments reads the command and the patched files from tool_result's arguments:
// exec_command sends JSON {"cmd": "<command>", ...} (the older shell tools an argv array in
// "command"); apply_patch, a freeform tool, sends the bare patch text (as a JSON function tool
// it would be {"input": "<patch>"}). A command that feeds a patch to apply_patch through the
// shell names its files too.
func codexArguments(ev *proto.AgentEvent, args string) {
	patch := args
	if obj := jsonObject(args); obj != nil {
		ev.Command = jsonString(obj["cmd"])
		if ev.Command == "" {
			ev.Command = jsonString(obj["command"])
		}
		patch = jsonString(obj["input"])
		if patch == "" {
			patch = jsonString(obj["patch"])
		}
		if patch == "" && strings.Contains(ev.Command, "*** Begin Patch") {
			patch = ev.Command
		}
	}
	ev.FilePaths = patchFiles(patch)
}

func adaptCodexSpan(res resource, s *tracepb.Span) (proto.AgentEvent, string) {
	attrs := s.GetAttributes()
	name := s.GetName()
	var kind string
	switch {
	case name == "run_turn":
		kind = proto.KindInteractionSpan
	// Tool dispatch spans are named after the tool (exec_command, apply_patch) and carry
	// codex.tool.phase; unified_exec.exec_command wraps the process of an exec_command.
	case name == "unified_exec.exec_command",
		attrValue(attrs, "codex.tool.phase") != nil && attrValue(attrs, "call_id") != nil:
		kind = proto.KindToolSpan
	default:
		// Codex exports about 150 internal tracing spans; none is an agent event.
		return proto.AgentEvent{}, SkipIgnoredSpan
	}
	ev, ok := baseSpan(res, s, kind)
	if !ok {
		return proto.AgentEvent{}, SkipNoTime
	}
	ev.SessionID = attrStr(attrs, "conversation.id")
	ev.PromptID = ev.TraceID // the turn's trace, as on the logs
	ev.TurnID = firstStr(attrs, "turn_id", "turn.id")
	if kind == proto.KindToolSpan {
		ev.ToolName = attrStr(attrs, "tool_name")
		ev.ToolUseID = attrStr(attrs, "call_id")
	}
	return ev, ""
}
