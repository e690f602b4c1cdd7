package correlate

import (
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vigil-sensor/vigil/proto"
)

// opencode 1.18.33 (docs/agents/opencode.md) exports its own Effect spans (~180 names, every
// function) and, with experimental.openTelemetry, the AI SDK's; its log records are its app
// log (no event names, no ids). One trace per user prompt. A tool call is a Tool.execute span
// (tool.call_id = the model's call id, session.id); its arguments (the shell's command,
// verbatim in its argv, and the file tools' filePath) are on the AI SDK's ai.toolCall span of
// the same call. The spans of a run's last call are not exported at exit (observed): that
// call's processes stay unbound.

// adaptOpenCodeSpan turns Tool.execute into the call's window and result, ai.toolCall into
// the call's arguments and ai.streamText.doStream into a model request.
func adaptOpenCodeSpan(out []proto.AgentEvent, res resource, s *tracepb.Span) ([]proto.AgentEvent, string) {
	var kind string
	switch s.GetName() {
	case "Tool.execute", "ai.toolCall":
		kind = proto.KindToolSpan
	case "ai.streamText.doStream":
		kind = proto.KindAPIRequest
	default:
		return out, SkipIgnoredSpan
	}
	ev, ok := baseSpan(res, s, kind)
	if !ok {
		return out, SkipNoTime
	}
	attrs := s.GetAttributes()
	ev.SessionID = attrStr(attrs, "session.id")
	ev.PromptID = ev.TraceID
	if kind == proto.KindAPIRequest {
		ev.Model = attrStr(attrs, "ai.model.id")
		return append(out, ev), ""
	}
	if s.GetName() == "ai.toolCall" {
		ev.ToolUseID = attrStr(attrs, "ai.toolCall.id")
		ev.ToolName = attrStr(attrs, "ai.toolCall.name")
		toolArgs(&ev, attrStr(attrs, "ai.toolCall.args"), "filePath")
		return append(out, ev), ""
	}
	ev.ToolUseID = attrStr(attrs, "tool.call_id")
	ev.ToolName = attrStr(attrs, "tool.name")
	return append(out, ev, spanResult(ev)), ""
}

// adaptOpenCodeLog: opencode's log records are its application log, named by no event.
func adaptOpenCodeLog(out []proto.AgentEvent, _ resource, _ *logspb.LogRecord) ([]proto.AgentEvent, string) {
	return out, SkipNoEventName
}
