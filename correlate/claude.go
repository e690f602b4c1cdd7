package correlate

import (
	"strings"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vigil-sensor/vigil/proto"
)

// Claude Code 2.1.197 log events (scope com.anthropic.claude_code.events). event.name has no
// prefix; the body is "claude_code.<event.name>".
var claudeLogKinds = map[string]string{
	"user_prompt":             proto.KindUserPrompt,
	"tool_decision":           proto.KindToolDecision,
	"tool_result":             proto.KindToolResult,
	"api_request":             proto.KindAPIRequest,
	"assistant_response":      proto.KindAssistantResponse,
	"hook_execution_start":    proto.KindHook,
	"hook_execution_complete": proto.KindHook,
}

// claudeIgnoredLogs are known events the correlator has no use for.
var claudeIgnoredLogs = map[string]bool{
	"hook_registered": true, // one per configured hook at startup
	"api_error":       true,
}

// claudeIgnoredSpans are known spans (scope com.anthropic.claude_code.tracing) that carry no
// join key the correlator needs: llm_request's request_id/model are in api_request, and
// blocked_on_user reported decision "unknown".
var claudeIgnoredSpans = map[string]bool{
	"claude_code.llm_request":          true,
	"claude_code.tool.blocked_on_user": true,
}

func adaptClaudeLog(res resource, r *logspb.LogRecord) (proto.AgentEvent, string) {
	attrs := r.GetAttributes()
	name := attrStr(attrs, "event.name")
	if name == "" {
		// The body names the event too: "claude_code.tool_result".
		if b := valueString(r.GetBody()); strings.HasPrefix(b, "claude_code.") {
			name = b
		}
	}
	if name == "" {
		return proto.AgentEvent{}, SkipNoEventName
	}
	ev, reason := baseLog(res, r, name, strings.TrimPrefix(name, "claude_code."), claudeLogKinds, claudeIgnoredLogs)
	if reason != "" {
		return ev, reason
	}
	ev.SessionID = attrStr(attrs, "session.id")
	ev.PromptID = attrStr(attrs, "prompt.id")
	if seq, ok := attrInt(attrs, "event.sequence"); ok {
		ev.Sequence = new(seq)
	}
	switch ev.Kind {
	case proto.KindUserPrompt:
		ev.Prompt = attrStr(attrs, "prompt")
	case proto.KindToolDecision:
		ev.ToolName = attrStr(attrs, "tool_name")
		ev.ToolUseID = attrStr(attrs, "tool_use_id")
		ev.Decision = attrStr(attrs, "decision")
		ev.DecisionSource = attrStr(attrs, "source")
		claudeToolDetails(&ev, attrStr(attrs, "tool_parameters"), attrStr(attrs, "tool_input"))
	case proto.KindToolResult:
		ev.ToolName = attrStr(attrs, "tool_name")
		ev.ToolUseID = attrStr(attrs, "tool_use_id")
		ev.Success = attrBool(attrs, "success")
		ev.DurationMs, _ = attrInt(attrs, "duration_ms")
		claudeToolDetails(&ev, attrStr(attrs, "tool_parameters"), attrStr(attrs, "tool_input"))
	case proto.KindAPIRequest:
		ev.Model = attrStr(attrs, "model")
		ev.InputTokens, _ = attrInt(attrs, "input_tokens")
		ev.OutputTokens, _ = attrInt(attrs, "output_tokens")
		ev.DurationMs, _ = attrInt(attrs, "duration_ms")
	case proto.KindAssistantResponse:
		ev.Model = attrStr(attrs, "model")
	case proto.KindHook:
		ev.HookEvent = attrStr(attrs, "hook_event")
		ev.HookName = attrStr(attrs, "hook_name")
		ev.DurationMs, _ = attrInt(attrs, "total_duration_ms")
	}
	return ev, ""
}

// claudeToolDetails reads the command and the file paths of a tool call from the JSON strings
// tool_parameters (Bash: {"bash_command","full_command","description"}; only with
// OTEL_LOG_TOOL_DETAILS=1) and tool_input (tool_result only: the tool's input, e.g.
// {"file_path"} for Read, {"command"} for Bash).
func claudeToolDetails(ev *proto.AgentEvent, toolParameters, toolInput string) {
	params := jsonObject(toolParameters)
	input := jsonObject(toolInput)
	ev.Command = jsonString(params["full_command"])
	if ev.Command == "" && ev.ToolName == "Bash" {
		ev.Command = jsonString(input["command"])
	}
	for _, k := range []string{"file_path", "notebook_path"} {
		if p := jsonString(input[k]); p != "" {
			ev.FilePaths = append(ev.FilePaths, p)
			break
		}
	}
}

func adaptClaudeSpan(res resource, s *tracepb.Span) (proto.AgentEvent, string) {
	name := s.GetName()
	var kind string
	switch name {
	case "claude_code.tool", "claude_code.tool.execution":
		kind = proto.KindToolSpan
	case "claude_code.interaction":
		kind = proto.KindInteractionSpan
	default:
		if claudeIgnoredSpans[name] {
			return proto.AgentEvent{}, SkipIgnoredSpan
		}
		return proto.AgentEvent{}, SkipUnknownEvent
	}
	ev, ok := baseSpan(res, s, kind)
	if !ok {
		return proto.AgentEvent{}, SkipNoTime
	}
	attrs := s.GetAttributes()
	ev.SessionID = attrStr(attrs, "session.id")
	switch name {
	case "claude_code.tool":
		ev.ToolName = attrStr(attrs, "tool_name")
		ev.ToolUseID = firstStr(attrs, "tool_use_id", "gen_ai.tool.call.id")
		ev.Command = attrStr(attrs, "full_command")
		if p := attrStr(attrs, "file_path"); p != "" {
			ev.FilePaths = []string{p}
		}
		ev.DurationMs, _ = attrInt(attrs, "duration_ms")
	case "claude_code.tool.execution":
		ev.ToolUseID = firstStr(attrs, "tool_use_id", "gen_ai.tool.call.id")
		if b := attrBool(attrs, "success"); b != nil {
			ev.Success = b
		}
		ev.DurationMs, _ = attrInt(attrs, "duration_ms")
	case "claude_code.interaction":
		ev.Prompt = attrStr(attrs, "user_prompt")
		ev.DurationMs, _ = attrInt(attrs, "interaction.duration_ms")
	}
	return ev, ""
}
