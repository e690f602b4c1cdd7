package correlate

import (
	"strings"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vigil-sensor/vigil/proto"
)

// GitHub Copilot CLI 1.0.102 (docs/agents/copilot.md) exports spans and metrics, no logs.
// One trace per user prompt, rooted at invoke_agent; every span carries
// gen_ai.conversation.id (the session, = the tool shell's COPILOT_AGENT_SESSION_ID). Each
// tool call is an `execute_tool <tool>` span with gen_ai.tool.call.id; with content capture
// (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true) it also has the shell's command
// (github.copilot.tool.parameters.command, the shell's argv verbatim) and the call's
// arguments. The trace id stands for the prompt: no span names it otherwise.

// adaptCopilotSpan turns an execute_tool span into the call's window and its result (the span
// ends when the call does: there is no result log), chat spans into api requests and the
// invoke_agent root into the prompt.
func adaptCopilotSpan(out []proto.AgentEvent, res resource, s *tracepb.Span) ([]proto.AgentEvent, string) {
	name := s.GetName()
	var kind string
	switch {
	case strings.HasPrefix(name, "execute_tool"):
		kind = proto.KindToolSpan
	case strings.HasPrefix(name, "chat"):
		kind = proto.KindAPIRequest
	case name == "invoke_agent":
		kind = proto.KindUserPrompt
	default:
		return out, SkipUnknownEvent
	}
	ev, ok := baseSpan(res, s, kind)
	if !ok {
		return out, SkipNoTime
	}
	attrs := s.GetAttributes()
	ev.SessionID = attrStr(attrs, "gen_ai.conversation.id")
	ev.PromptID = ev.TraceID
	switch kind {
	case proto.KindAPIRequest:
		ev.Model = attrStr(attrs, "gen_ai.request.model")
		ev.InputTokens, _ = attrInt(attrs, "gen_ai.usage.input_tokens")
		ev.OutputTokens, _ = attrInt(attrs, "gen_ai.usage.output_tokens")
		ev.DurationMs = ev.EndTime.Sub(ev.Time).Milliseconds()
	case proto.KindToolSpan:
		ev.ToolName = attrStr(attrs, "gen_ai.tool.name")
		ev.ToolUseID = attrStr(attrs, "gen_ai.tool.call.id")
		toolArgs(&ev, attrStr(attrs, "gen_ai.tool.call.arguments"), "path")
		ev.Command = attrStr(attrs, "github.copilot.tool.parameters.command") // the shell's argv, verbatim
		return append(out, ev, spanResult(ev)), ""
	}
	return append(out, ev), ""
}
