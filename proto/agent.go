package proto

import "time"

// Kinds of AgentEvent: what an agent said about itself in its own telemetry. The comments
// name Claude Code's and Codex's records; each adapter in package correlate says which
// records of its agent give which kind (correlate/gemini.go, copilot.go, opencode.go).
const (
	// KindUserPrompt is the user's prompt (Claude user_prompt, Codex codex.user_prompt).
	KindUserPrompt = "prompt"
	// KindToolDecision is the approval of a tool call, before it runs (Claude tool_decision,
	// Codex codex.tool_decision).
	KindToolDecision = "tool_decision"
	// KindToolResult is the end of a tool call (Claude tool_result, Codex codex.tool_result).
	KindToolResult = "tool_result"
	// KindAPIRequest is one model API call (Claude api_request, Codex codex.api_request).
	KindAPIRequest = "api_request"
	// KindAssistantResponse is the model's text answer (Claude assistant_response).
	KindAssistantResponse = "assistant_response"
	// KindHook is the start or completion of a hook event's commands (Claude
	// hook_execution_start and hook_execution_complete; EventName tells which).
	KindHook = "hook"
	// KindSessionStart is the start of a session (Codex codex.conversation_starts).
	KindSessionStart = "session_start"
	// KindToolSpan is a span around one tool call: Claude claude_code.tool and
	// claude_code.tool.execution, Codex exec_command, apply_patch (any span with
	// codex.tool.phase) and unified_exec.exec_command. SpanName tells which.
	KindToolSpan = "tool_span"
	// KindInteractionSpan is the span around one prompt: Claude claude_code.interaction,
	// Codex run_turn.
	KindInteractionSpan = "interaction_span"
	// KindToolHistory is a call as the agent's conversation history recalls it after it
	// ended: its id, name, arguments and what its output says about it (Gemini re-sends the
	// whole history in each api_request's request_text). It carries no time of the call.
	KindToolHistory = "tool_history"
)

// AgentEvent is one normalised record of an agent's own telemetry (an OTLP log record or
// span), the correlator's input. The adapters in package correlate fill it; every field
// below names the attribute it comes from for each agent. A field an agent does not send is
// left empty. Strings are copied as sent, without redaction: the correlator redacts what it
// writes out.
type AgentEvent struct {
	// Agent is the agents registry's name of the agent (sensor/agents), from the resource's
	// service.name (claude-code; codex_exec for `codex exec`; gemini-cli; github-copilot) or
	// the hook's --agent.
	Agent string `json:"agent" msgpack:"agent"`
	// AgentVersion is the resource's service.version (2.1.197, 0.169.0).
	AgentVersion string `json:"agent_version,omitempty" msgpack:"agent_version,omitempty"`
	// Kind is one of the Kind* constants.
	Kind string `json:"kind" msgpack:"kind"`
	// EventName is the agent's own name for the record: the log attribute event.name as sent
	// (Claude: user_prompt, hook_execution_start, ...; Codex: codex.tool_result, ...).
	// Empty for spans, which have SpanName.
	EventName string `json:"event_name,omitempty" msgpack:"event_name,omitempty"`
	// SpanName is the span's name for KindToolSpan and KindInteractionSpan
	// (claude_code.tool, claude_code.tool.execution, claude_code.interaction; exec_command,
	// apply_patch, unified_exec.exec_command, run_turn).
	SpanName string `json:"span_name,omitempty" msgpack:"span_name,omitempty"`

	// Time is when the agent says it happened, never when Vigil received it.
	//   Logs:  event.timestamp (ISO 8601, ms; both agents), else the record's timeUnixNano,
	//          else observedTimeUnixNano (Codex sends timeUnixNano = 0).
	//   Spans: startTimeUnixNano.
	Time time.Time `json:"time" msgpack:"time"`
	// EndTime is a span's endTimeUnixNano; zero for log records.
	EndTime time.Time `json:"end_time,omitzero" msgpack:"end_time,omitempty"`
	// Sequence is Claude's event.sequence, a per-session counter starting at 0 that orders
	// log events emitted in the same millisecond. Nil when absent (Codex, spans).
	Sequence *int64 `json:"sequence,omitempty" msgpack:"sequence,omitempty"`

	// SessionID is Claude session.id (every log record and span) or Codex conversation.id
	// (every log record; exec_command, apply_patch, unified_exec.exec_command and run_turn
	// spans). It equals the tool shells' CLAUDE_CODE_SESSION_ID / CODEX_SESSION_ID. Gemini
	// session.id, Copilot and opencode the spans' gen_ai.conversation.id / session.id.
	SessionID string `json:"session_id,omitempty" msgpack:"session_id,omitempty"`
	// PromptID is Claude prompt.id, on every log record after the first prompt (never on
	// spans, never on the SessionStart hook), or Gemini prompt_id. Codex, Copilot and
	// opencode name no prompt: the trace id of the turn stands for it (one trace per turn).
	PromptID string `json:"prompt_id,omitempty" msgpack:"prompt_id,omitempty"`
	// TurnID is Codex turn_id (tool spans) or turn.id (run_turn). Codex log records carry no
	// turn id: their TraceID is the turn's trace, which run_turn maps to TurnID.
	TurnID string `json:"turn_id,omitempty" msgpack:"turn_id,omitempty"`

	// TraceID, SpanID and ParentSpanID are lowercase hex. Log records carry the active span
	// (Claude: the claude_code.interaction trace; tool_decision's span is the tool's
	// claude_code.tool.blocked_on_user span. Codex: the turn's trace and the dispatching span).
	// A Claude Bash shell's TRACEPARENT names the SpanID of its claude_code.tool.execution
	// KindToolSpan, which also carries ToolUseID.
	TraceID      string `json:"trace_id,omitempty" msgpack:"trace_id,omitempty"`
	SpanID       string `json:"span_id,omitempty" msgpack:"span_id,omitempty"`
	ParentSpanID string `json:"parent_span_id,omitempty" msgpack:"parent_span_id,omitempty"`

	// ToolName is Claude tool_name (Bash, Read, Write, Edit, ...; not on
	// claude_code.tool.execution spans) or Codex tool_name (exec_command, apply_patch).
	ToolName string `json:"tool_name,omitempty" msgpack:"tool_name,omitempty"`
	// ToolUseID is Claude tool_use_id (logs and tool spans; = hook tool_use_id) or Codex
	// call_id (logs and tool spans; = hook tool_use_id = the shell's CODEX_TOOL_CALL_ID);
	// Gemini's <tool>__<functionCall id> (tool_call span gen_ai.tool.call_id, the history),
	// Copilot gen_ai.tool.call.id, opencode tool.call_id / ai.toolCall.id.
	ToolUseID string `json:"tool_use_id,omitempty" msgpack:"tool_use_id,omitempty"`
	// Decision is tool_decision's decision (Claude accept|reject, Codex approved|denied|...).
	Decision string `json:"decision,omitempty" msgpack:"decision,omitempty"`
	// DecisionSource is tool_decision's source (Claude config|user|hook, Codex Config|User).
	DecisionSource string `json:"decision_source,omitempty" msgpack:"decision_source,omitempty"`
	// Success is tool_result's success (Claude and Codex send the string "true"/"false"),
	// claude_code.tool.execution's success, or false for a span with status ERROR. Nil
	// when not reported.
	Success *bool `json:"success,omitempty" msgpack:"success,omitempty"`
	// DurationMs is duration_ms (tool_result, api_request), Claude hook_execution_complete
	// total_duration_ms, Claude span duration_ms / interaction.duration_ms.
	DurationMs int64 `json:"duration_ms,omitempty" msgpack:"duration_ms,omitempty"`
	// Command is the shell command of a tool call: Claude full_command (Bash: inside the
	// tool_parameters JSON of tool_decision/tool_result, else tool_input.command; the
	// full_command attribute of the claude_code.tool span). Codex: the cmd (or command) field
	// of tool_result's arguments JSON, an argv array joined with spaces. As the agent shows it:
	// the real argv differs (Claude wraps it in eval '...', Codex's "bash -lc" becomes
	// "bash -c").
	Command string `json:"command,omitempty" msgpack:"command,omitempty"`
	// FilePaths are the files an in-process tool touches. Claude: tool_input.file_path
	// (or notebook_path) of tool_result for Read/Write/Edit, the file_path attribute of the
	// claude_code.tool span. Codex apply_patch: the files named in the patch text of
	// tool_result's arguments (*** Add File, *** Update File, *** Delete File, *** Move to),
	// relative to the session's cwd as written.
	FilePaths []string `json:"file_paths,omitempty" msgpack:"file_paths,omitempty"`

	// Model is model (Claude api_request and assistant_response; every Codex log record).
	Model string `json:"model,omitempty" msgpack:"model,omitempty"`
	// InputTokens and OutputTokens are Claude api_request input_tokens / output_tokens.
	InputTokens  int64 `json:"input_tokens,omitempty" msgpack:"input_tokens,omitempty"`
	OutputTokens int64 `json:"output_tokens,omitempty" msgpack:"output_tokens,omitempty"`
	// Prompt is the user's prompt text: Claude user_prompt's prompt (only with
	// OTEL_LOG_USER_PROMPTS=1) or claude_code.interaction's user_prompt; Codex
	// codex.user_prompt's prompt (only with log_user_prompt = true).
	Prompt string `json:"prompt,omitempty" msgpack:"prompt,omitempty"`

	// HookEvent and HookName are Claude hook_event (PreToolUse) and hook_name
	// (PreToolUse:Bash) on KindHook.
	HookEvent string `json:"hook_event,omitempty" msgpack:"hook_event,omitempty"`
	HookName  string `json:"hook_name,omitempty" msgpack:"hook_name,omitempty"`

	// ResourcePID is the resource attribute process.pid, present only when the operator
	// injects it with OTEL_RESOURCE_ATTRIBUTES. It is the sender's claim: the correlator
	// trusts the pid it resolves from the connection, never this one alone.
	ResourcePID int `json:"resource_pid,omitempty" msgpack:"resource_pid,omitempty"`

	// ToolPID is the process the agent says it started for the call: Gemini's shell, whose
	// pid the call's output names as its "Process Group PGID" (KindToolHistory), or a
	// background call's metadata.pid (tool_result). The stitcher believes it only for a child
	// of the agent's own process started while the call ran.
	ToolPID int `json:"tool_pid,omitempty" msgpack:"tool_pid,omitempty"`
}
