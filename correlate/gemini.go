package correlate

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vigil-sensor/vigil/proto"
)

// Gemini CLI 0.61 (../shared/research/agents/gemini.md). Every record carries session.id;
// log events are named gemini_cli.* in event.name. The call id (<tool>__<functionCall id>)
// is only on the tool_call span (gen_ai.tool.call_id, with an underscore). The tool_call
// log names no call: it is emitted inside the schedule_tool_calls span, the tool_call
// spans' parent, which the stitcher uses to find its call. The shell a call starts gets no
// key in its environment; its pid is named in the call's output ("Process Group PGID: N"),
// which Gemini re-sends in the next api_request's request_text with the call's id and
// arguments (logPrompts, the default).
var geminiLogKinds = map[string]string{
	"gemini_cli.user_prompt":  proto.KindUserPrompt,
	"gemini_cli.tool_call":    proto.KindToolResult,
	"gemini_cli.api_response": proto.KindAPIRequest, // it has the tokens; the request has the history
	"gemini_cli.api_request":  proto.KindToolHistory,
}

// geminiIgnoredLogs are known events the correlator has no use for.
var geminiIgnoredLogs = map[string]bool{
	"gemini_cli.config":                         true,
	"gemini_cli.startup_stats":                  true,
	"gemini_cli.model_routing":                  true,
	"gemini_cli.ripgrep_fallback":               true,
	"gemini_cli.file_operation":                 true, // no path; its span is the call's
	"gemini_cli.edit_strategy":                  true,
	"gemini_cli.hook_call":                      true,
	"gemini_cli.plan.approval_mode_duration":    true,
	"gemini_cli.api_error":                      true,
	"gen_ai.client.inference.operation.details": true,
}

// geminiIgnoredSpans: one llm_call per model call, one schedule_tool_calls per batch of
// calls (the tool_call spans' parent, which the tool_call log names).
var geminiIgnoredSpans = map[string]bool{"llm_call": true, "schedule_tool_calls": true}

// SkipUnreadableHistory: a Gemini api_request whose request_text is not the JSON history (cut
// short, or logPrompts off): the calls it would recall are not adapted.
const SkipUnreadableHistory = "unreadable_history"

func adaptGeminiLog(out []proto.AgentEvent, res resource, r *logspb.LogRecord) ([]proto.AgentEvent, string) {
	attrs := r.GetAttributes()
	name := attrStr(attrs, "event.name")
	if name == "" {
		return out, SkipNoEventName
	}
	ev, reason := baseLog(res, r, name, name, geminiLogKinds, geminiIgnoredLogs)
	if reason != "" {
		return out, reason
	}
	ev.SessionID = attrStr(attrs, "session.id")
	ev.PromptID = attrStr(attrs, "prompt_id")
	ev.Model = attrStr(attrs, "model")
	switch ev.Kind {
	case proto.KindUserPrompt:
		ev.Prompt = attrStr(attrs, "prompt")
	case proto.KindToolResult:
		ev.ToolName = attrStr(attrs, "function_name")
		ev.Success = attrBool(attrs, "success")
		ev.Decision = attrStr(attrs, "decision")
		ev.DurationMs, _ = attrInt(attrs, "duration_ms")
		toolArgs(&ev, attrStr(attrs, "function_args"), "file_path") // pretty JSON
		// A background shell's pid (is_background); a foreground one's is in its output.
		if pid, ok := rawInt(jsonObject(attrStr(attrs, "metadata"))["pid"]); ok && pid > 0 && pid <= math.MaxInt32 {
			ev.ToolPID = int(pid)
		}
	case proto.KindAPIRequest:
		ev.DurationMs, _ = attrInt(attrs, "duration_ms")
		ev.InputTokens, _ = attrInt(attrs, "input_token_count")
		ev.OutputTokens, _ = attrInt(attrs, "output_token_count")
	case proto.KindToolHistory:
		calls, ok := geminiHistory(attrStr(attrs, "request_text"))
		if !ok {
			return out, SkipUnreadableHistory
		}
		for _, c := range calls {
			h := ev
			h.ToolUseID, h.ToolName, h.Command, h.FilePaths, h.ToolPID = c.id, c.name, c.command, c.files, c.pid
			out = append(out, h)
		}
		return out, ""
	}
	return append(out, ev), ""
}

func adaptGeminiSpan(res resource, s *tracepb.Span) (proto.AgentEvent, string) {
	if s.GetName() != "tool_call" {
		if geminiIgnoredSpans[s.GetName()] {
			return proto.AgentEvent{}, SkipIgnoredSpan
		}
		return proto.AgentEvent{}, SkipUnknownEvent
	}
	ev, ok := baseSpan(res, s, proto.KindToolSpan)
	if !ok {
		return proto.AgentEvent{}, SkipNoTime
	}
	attrs := s.GetAttributes()
	ev.SessionID = attrStr(attrs, "gen_ai.conversation.id")
	ev.ToolName = attrStr(attrs, "gen_ai.tool.name")
	ev.ToolUseID = firstStr(attrs, "gen_ai.tool.call_id", "gen_ai.tool.call.id")
	return ev, ""
}

// geminiCall is one call the history recalls.
type geminiCall struct {
	id, name, command string
	files             []string
	pid               int
}

// geminiPGID finds the pid Gemini appends to a shell call's output. The last one counts: the
// command's own output comes before Gemini's line and could print a look-alike.
var geminiPGID = regexp.MustCompile(`Process Group PGID: (\d+)`)

// geminiHistory reads request_text, the conversation Gemini sends the model: the model's
// functionCall parts (name, args, id) and the user's functionResponse parts (id, output).
// The call id is Gemini's own, <name>__<id>, as its tool_call span and stream-json name it.
func geminiHistory(text string) ([]geminiCall, bool) {
	type part struct {
		FunctionCall *struct {
			Name string          `json:"name"`
			ID   string          `json:"id"`
			Args json.RawMessage `json:"args"`
		} `json:"functionCall"`
		FunctionResponse *struct {
			Name     string `json:"name"`
			ID       string `json:"id"`
			Response struct {
				Output string `json:"output"`
			} `json:"response"`
		} `json:"functionResponse"`
	}
	var turns []struct {
		Parts []part `json:"parts"`
	}
	if err := json.Unmarshal([]byte(text), &turns); err != nil {
		return nil, false
	}
	var calls []geminiCall
	index := map[string]int{}
	for _, t := range turns {
		for _, p := range t.Parts {
			switch {
			case p.FunctionCall != nil && p.FunctionCall.ID != "" && p.FunctionCall.Name != "":
				var ev proto.AgentEvent
				toolArgs(&ev, string(p.FunctionCall.Args), "file_path")
				id := p.FunctionCall.Name + "__" + p.FunctionCall.ID
				index[id] = len(calls)
				calls = append(calls, geminiCall{id: id, name: p.FunctionCall.Name, command: ev.Command, files: ev.FilePaths})
			case p.FunctionResponse != nil:
				i, ok := index[p.FunctionResponse.Name+"__"+p.FunctionResponse.ID]
				if !ok {
					continue
				}
				if m := geminiPGID.FindAllStringSubmatch(p.FunctionResponse.Response.Output, -1); len(m) > 0 {
					if pid, err := strconv.Atoi(m[len(m)-1][1]); err == nil && pid > 0 {
						calls[i].pid = pid
					}
				}
			}
		}
	}
	return calls, true
}
