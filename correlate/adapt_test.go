package correlate

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	pb "google.golang.org/protobuf/proto"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Values read in the real payloads (correlate/testdata, copied from
// research/agents/samples/{claude,codex}/otlp).
const (
	claudeSession = "c3824f57-bc13-4bea-b943-0c0fb62875a9"
	claudePrompt  = "0c176207-8158-4be4-9a5e-4f8c6f49f211"
	claudeTrace   = "ff2fedba731dd2058f15667c1c0bbb3e"
	claudeBashCmd = `echo MARKER_BASH pid=$$ ppid=$PPID; readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2; ` +
		`grep -E '^(Seccomp|NoNewPrivs)' /proc/$$/status; ` +
		`env | grep -E '^(CLAUDE|OTEL_|CODEX|ANTHROPIC|OPENAI|SHELL|PWD|TRACEPARENT|TRACESTATE|AI_AGENT|GIT_EDITOR|TMPDIR)' | sort; ` +
		`cat /etc/hostname && ls /tmp | head -3`
	claudeNotes = "$WORK/runs/claude-final/repo/notes.txt"
	claudeOut   = "$WORK/runs/claude-final/repo/out.txt"

	codexSession = "01a20300-c9da-71f3-85f1-138894c6f6aa"
	codexTurn    = "01a20300-ca5e-7ed2-8304-afd52a6f2dce"
	codexTrace   = "06db4ee5ad4296f4ce9f49617d741774"
	codexExecCmd = `echo MARKER_BASH pid=$$ ppid=$PPID; readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2; ` +
		`grep -E '^(Seccomp|NoNewPrivs)' /proc/$$/status; ` +
		`env | grep -E '^(CLAUDE|OTEL_|CODEX|ANTHROPIC|OPENAI|SHELL|PWD|TRACEPARENT|TRACESTATE|AI_AGENT|GIT_EDITOR|TMPDIR)' | sort; ` +
		`cat notes.txt; cat /etc/hostname && ls /tmp | head -3`
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func i64(i int64) *int64 { return &i }
func boolp(b bool) *bool { return &b }

// adaptFile decodes and adapts one sample by its name (logs or traces).
func adaptFile(t testing.TB, path, contentType string, body []byte) ([]proto.AgentEvent, AdaptStats) {
	t.Helper()
	if strings.Contains(filepath.Base(path), "logs") {
		req, err := DecodeLogs(body, contentType)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return AdaptLogs(req)
	}
	req, err := DecodeTraces(body, contentType)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return AdaptTraces(req)
}

func readSample(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kinds(evs []proto.AgentEvent) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		m[e.Kind]++
	}
	return m
}

// find returns the only event matching pred, failing otherwise.
func find(t *testing.T, evs []proto.AgentEvent, what string, pred func(proto.AgentEvent) bool) proto.AgentEvent {
	t.Helper()
	var got []proto.AgentEvent
	for _, e := range evs {
		if pred(e) {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%s: %d matches, want 1", what, len(got))
	}
	return got[0]
}

// wantEvent compares the whole event, so that every field the adapter fills is checked.
func wantEvent(t *testing.T, got, want proto.AgentEvent) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event mismatch\n got  %+v\n want %+v", got, want)
	}
}

func byKind(kind string) func(proto.AgentEvent) bool {
	return func(e proto.AgentEvent) bool { return e.Kind == kind }
}

func bySpan(name string) func(proto.AgentEvent) bool {
	return func(e proto.AgentEvent) bool { return e.SpanName == name }
}

func claudeBase(kind, name string) proto.AgentEvent {
	return proto.AgentEvent{
		Agent: agents.ClaudeCode, AgentVersion: "2.1.197", Kind: kind, EventName: name,
		SessionID: claudeSession, ResourcePID: 31206,
	}
}

func codexBase(kind, name string) proto.AgentEvent {
	return proto.AgentEvent{
		Agent: agents.Codex, AgentVersion: "0.169.0", Kind: kind, EventName: name,
		SessionID: codexSession,
	}
}

func TestSamples(t *testing.T) {
	tests := []struct {
		file    string
		records int
		kinds   map[string]int
		skipped map[string]int
		check   func(t *testing.T, evs []proto.AgentEvent)
	}{
		{
			file: "claude/0001_logs.json", records: 20,
			kinds:   map[string]int{proto.KindHook: 2},
			skipped: map[string]int{SkipIgnoredEvent: 18}, // hook_registered
			check: func(t *testing.T, evs []proto.AgentEvent) {
				// Before the first prompt: no prompt.id, no trace, event.sequence 0.
				want := claudeBase(proto.KindHook, "hook_execution_start")
				want.Time = ts("2026-11-22T11:25:39.206Z")
				want.Sequence = i64(0)
				want.HookEvent, want.HookName = "SessionStart", "SessionStart:startup"
				wantEvent(t, evs[0], want)
				// event.timestamp (…39.924Z) wins over timeUnixNano (…39.925).
				if got := evs[1].Time; !got.Equal(ts("2026-11-22T11:25:39.924Z")) {
					t.Errorf("hook complete time %v", got)
				}
				if evs[1].DurationMs != 620 || *evs[1].Sequence != 19 {
					t.Errorf("hook complete %+v", evs[1])
				}
			},
		},
		{
			file: "claude/0003_logs.json", records: 3,
			kinds: map[string]int{proto.KindUserPrompt: 1, proto.KindHook: 2},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				want := claudeBase(proto.KindUserPrompt, "user_prompt")
				want.Time = ts("2026-11-22T11:25:40.112Z")
				want.Sequence = i64(20)
				want.PromptID = claudePrompt
				want.TraceID, want.SpanID = claudeTrace, "3b7a535e0b6f92ff"
				want.Prompt = "Run a shell command, read notes.txt, write out.txt and edit notes.txt. SECRET_PROMPT_MARKER_42"
				wantEvent(t, find(t, evs, "user_prompt", byKind(proto.KindUserPrompt)), want)
			},
		},
		{
			file: "claude/0004_traces.json", records: 2,
			kinds:   map[string]int{},
			skipped: map[string]int{SkipIgnoredSpan: 2}, // llm_request, tool.blocked_on_user
		},
		{
			file: "claude/0006_logs.json", records: 5,
			kinds: map[string]int{proto.KindHook: 2, proto.KindAPIRequest: 1, proto.KindAssistantResponse: 1, proto.KindToolDecision: 1},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				want := claudeBase(proto.KindToolDecision, "tool_decision")
				want.Time = ts("2026-11-22T11:25:41.071Z")
				want.Sequence = i64(27)
				want.PromptID = claudePrompt
				// The decision's span is the tool's claude_code.tool.blocked_on_user span.
				want.TraceID, want.SpanID = claudeTrace, "8279c0b14dbbbfd0"
				want.ToolName, want.ToolUseID = "Bash", "toolu_mock_0_0001"
				want.Decision, want.DecisionSource = "accept", "config"
				want.Command = claudeBashCmd
				wantEvent(t, find(t, evs, "tool_decision", byKind(proto.KindToolDecision)), want)

				api := find(t, evs, "api_request", byKind(proto.KindAPIRequest))
				if api.Model != "claude-opus-4-8" || api.InputTokens != 120 || api.OutputTokens != 30 || api.DurationMs != 66 {
					t.Errorf("api_request %+v", api)
				}
				hook := find(t, evs, "PreToolUse start", func(e proto.AgentEvent) bool { return e.EventName == "hook_execution_start" })
				if hook.HookEvent != "PreToolUse" || hook.HookName != "PreToolUse:Bash" {
					t.Errorf("hook %+v", hook)
				}
			},
		},
		{
			file: "claude/0007_traces.json", records: 2,
			kinds: map[string]int{proto.KindToolSpan: 2},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				// TRACEPARENT in the Bash shell names this span id.
				want := claudeBase(proto.KindToolSpan, "")
				want.SpanName = "claude_code.tool.execution"
				want.Time = ts("2026-11-22T11:25:41.072Z")
				want.EndTime = ts("2026-11-22T11:25:41.609228419Z")
				want.TraceID, want.SpanID, want.ParentSpanID = claudeTrace, "f5073e731e969e92", "1cac4adff27c067e"
				want.ToolUseID = "toolu_mock_0_0001"
				want.Success = boolp(true)
				want.DurationMs = 537
				wantEvent(t, find(t, evs, "execution", bySpan("claude_code.tool.execution")), want)

				want = claudeBase(proto.KindToolSpan, "")
				want.SpanName = "claude_code.tool"
				want.Time = ts("2026-11-22T11:25:41.018Z")
				want.EndTime = ts("2026-11-22T11:25:41.608334559Z")
				want.TraceID, want.SpanID, want.ParentSpanID = claudeTrace, "1cac4adff27c067e", "3b7a535e0b6f92ff"
				want.ToolName, want.ToolUseID = "Bash", "toolu_mock_0_0001"
				want.Command = claudeBashCmd
				want.DurationMs = 590
				wantEvent(t, find(t, evs, "tool", bySpan("claude_code.tool")), want)
			},
		},
		{
			file: "claude/0008_logs.json", records: 3,
			kinds: map[string]int{proto.KindToolResult: 1, proto.KindHook: 2},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				want := claudeBase(proto.KindToolResult, "tool_result")
				want.Time = ts("2026-11-22T11:25:41.609Z")
				want.Sequence = i64(28)
				want.PromptID = claudePrompt
				want.TraceID, want.SpanID = claudeTrace, "3b7a535e0b6f92ff"
				want.ToolName, want.ToolUseID = "Bash", "toolu_mock_0_0001"
				want.Success = boolp(true) // sent as the string "true"
				want.DurationMs = 536      // sent as the string "536"
				want.Command = claudeBashCmd
				wantEvent(t, find(t, evs, "tool_result", byKind(proto.KindToolResult)), want)
			},
		},
		{
			file: "claude/0010_traces.json", records: 4,
			kinds:   map[string]int{proto.KindToolSpan: 2},
			skipped: map[string]int{SkipIgnoredSpan: 2},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				tool := find(t, evs, "Read span", bySpan("claude_code.tool"))
				if tool.ToolName != "Read" || tool.ToolUseID != "toolu_mock_1_0004" || !slices.Equal(tool.FilePaths, []string{claudeNotes}) || tool.Command != "" {
					t.Errorf("Read span %+v", tool)
				}
				exe := find(t, evs, "Read execution", bySpan("claude_code.tool.execution"))
				if exe.SpanID != "a8887464a15321ad" || exe.ParentSpanID != tool.SpanID || exe.ToolUseID != tool.ToolUseID {
					t.Errorf("Read execution %+v", exe)
				}
			},
		},
		{
			file: "claude/0011_logs.json", records: 7,
			kinds: map[string]int{proto.KindHook: 3, proto.KindAPIRequest: 1, proto.KindAssistantResponse: 1, proto.KindToolDecision: 1, proto.KindToolResult: 1},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				// Read's decision has no tool_parameters; the path is only in tool_result's tool_input.
				dec := find(t, evs, "decision", byKind(proto.KindToolDecision))
				if dec.ToolName != "Read" || dec.ToolUseID != "toolu_mock_1_0004" || len(dec.FilePaths) != 0 || dec.Command != "" {
					t.Errorf("Read decision %+v", dec)
				}
				res := find(t, evs, "result", byKind(proto.KindToolResult))
				if res.ToolUseID != "toolu_mock_1_0004" || !slices.Equal(res.FilePaths, []string{claudeNotes}) || res.DurationMs != 120 || res.Command != "" {
					t.Errorf("Read result %+v", res)
				}
			},
		},
		{
			file: "claude/0013_logs.json", records: 4,
			kinds: map[string]int{proto.KindHook: 2, proto.KindAPIRequest: 1, proto.KindAssistantResponse: 1},
		},
		{
			file: "claude/0014_traces.json", records: 1,
			kinds:   map[string]int{},
			skipped: map[string]int{SkipIgnoredSpan: 1},
		},
		{
			file: "claude/0015_logs.json", records: 8,
			kinds: map[string]int{proto.KindHook: 4, proto.KindToolDecision: 1, proto.KindToolResult: 1, proto.KindAPIRequest: 1, proto.KindAssistantResponse: 1},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				res := find(t, evs, "Write result", byKind(proto.KindToolResult))
				if res.ToolName != "Write" || res.ToolUseID != "toolu_mock_2_0007" || !slices.Equal(res.FilePaths, []string{claudeOut}) {
					t.Errorf("Write result %+v", res)
				}
			},
		},
		{
			file: "claude/0017_traces.json", records: 4,
			kinds:   map[string]int{proto.KindToolSpan: 2},
			skipped: map[string]int{SkipIgnoredSpan: 2},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				tool := find(t, evs, "Write span", bySpan("claude_code.tool"))
				if tool.ToolName != "Write" || !slices.Equal(tool.FilePaths, []string{claudeOut}) {
					t.Errorf("Write span %+v", tool)
				}
			},
		},
		{
			file: "claude/0018_logs.json", records: 4,
			kinds: map[string]int{proto.KindHook: 2, proto.KindToolDecision: 1, proto.KindToolResult: 1},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				res := find(t, evs, "Edit result", byKind(proto.KindToolResult))
				if res.ToolName != "Edit" || res.ToolUseID != "toolu_mock_3_0010" || !slices.Equal(res.FilePaths, []string{claudeNotes}) || res.DurationMs != 38 {
					t.Errorf("Edit result %+v", res)
				}
			},
		},
		{
			file: "claude/0019_traces.json", records: 3,
			kinds:   map[string]int{proto.KindToolSpan: 2},
			skipped: map[string]int{SkipIgnoredSpan: 1},
		},
		{
			file: "claude/0021_logs.json", records: 5,
			kinds: map[string]int{proto.KindHook: 3, proto.KindAPIRequest: 1, proto.KindAssistantResponse: 1},
		},
		{
			file: "claude/0022_traces.json", records: 2,
			kinds:   map[string]int{proto.KindInteractionSpan: 1},
			skipped: map[string]int{SkipIgnoredSpan: 1},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				want := claudeBase(proto.KindInteractionSpan, "")
				want.SpanName = "claude_code.interaction"
				want.Time = ts("2026-11-22T11:25:39.953Z")
				want.EndTime = ts("2026-11-22T11:25:45.598984385Z")
				// The root span: the trace id every log record of the prompt carries.
				want.TraceID, want.SpanID = claudeTrace, "3b7a535e0b6f92ff"
				want.Prompt = "Run a shell command, read notes.txt, write out.txt and edit notes.txt. SECRET_PROMPT_MARKER_42"
				want.DurationMs = 5646
				wantEvent(t, evs[0], want)
			},
		},
		{
			file: "codex/0001_logs.json", records: 3,
			kinds:   map[string]int{proto.KindSessionStart: 1},
			skipped: map[string]int{SkipIgnoredEvent: 2}, // codex.startup_phase
			check: func(t *testing.T, evs []proto.AgentEvent) {
				want := codexBase(proto.KindSessionStart, "codex.conversation_starts")
				// timeUnixNano is 0: the time is event.timestamp.
				want.Time = ts("2026-11-22T11:25:13.096Z")
				want.TraceID, want.SpanID = "f15983d2a8f24031d2c744caa6fb0d6a", "38e02a1850e01c12"
				want.Model = "gpt-5.5"
				want.PromptID = want.TraceID // Codex: the turn's trace
				wantEvent(t, evs[0], want)
			},
		},
		{
			file: "codex/0002_traces.json", records: 11,
			kinds:   map[string]int{proto.KindToolSpan: 2},
			skipped: map[string]int{SkipIgnoredSpan: 9},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				want := codexBase(proto.KindToolSpan, "")
				want.SpanName = "exec_command"
				want.Time = ts("2026-11-22T11:25:13.805736332Z")
				want.EndTime = ts("2026-11-22T11:25:14.326672448Z")
				want.TurnID = codexTurn
				want.TraceID, want.SpanID, want.ParentSpanID = codexTrace, "9fb3f0f66314482b", "64a0879e6b40bee5"
				want.ToolName, want.ToolUseID = "exec_command", "call_exec_command_1"
				want.PromptID = want.TraceID // Codex: the turn's trace
				wantEvent(t, find(t, evs, "exec_command", bySpan("exec_command")), want)

				want = codexBase(proto.KindToolSpan, "")
				want.SpanName = "unified_exec.exec_command"
				want.Time = ts("2026-11-22T11:25:14.016655172Z")
				want.EndTime = ts("2026-11-22T11:25:14.159345401Z")
				want.TurnID = codexTurn
				want.TraceID, want.SpanID, want.ParentSpanID = codexTrace, "b99109d9e9196bbb", "1a076a8fd52b1b87"
				want.ToolUseID = "call_exec_command_1"
				want.PromptID = want.TraceID // Codex: the turn's trace
				wantEvent(t, find(t, evs, "unified_exec", bySpan("unified_exec.exec_command")), want)
			},
		},
		{
			file: "codex/0003_logs.json", records: 6,
			kinds:   map[string]int{proto.KindUserPrompt: 1, proto.KindAPIRequest: 2, proto.KindToolDecision: 1, proto.KindToolResult: 1},
			skipped: map[string]int{SkipIgnoredEvent: 1}, // codex.turn_ttft
			check: func(t *testing.T, evs []proto.AgentEvent) {
				p := find(t, evs, "prompt", byKind(proto.KindUserPrompt))
				if p.Prompt != "Run a shell command, then add out.txt and edit notes.txt with apply_patch. SECRET_PROMPT_MARKER_43" ||
					p.TraceID != codexTrace || p.TurnID != "" || !p.Time.Equal(ts("2026-11-22T11:25:13.737Z")) {
					t.Errorf("prompt %+v", p)
				}
				dec := find(t, evs, "decision", byKind(proto.KindToolDecision))
				if dec.ToolName != "exec_command" || dec.ToolUseID != "call_exec_command_1" || dec.Decision != "approved" || dec.DecisionSource != "Config" {
					t.Errorf("decision %+v", dec)
				}
				want := codexBase(proto.KindToolResult, "codex.tool_result")
				want.Time = ts("2026-11-22T11:25:14.159Z")
				want.TraceID, want.SpanID = codexTrace, "1a076a8fd52b1b87"
				want.ToolName, want.ToolUseID = "exec_command", "call_exec_command_1"
				want.Success = boolp(true) // "true"
				want.DurationMs = 159      // "159"
				want.Command = codexExecCmd
				want.Model = "gpt-5.5"
				want.PromptID = want.TraceID // Codex: the turn's trace
				wantEvent(t, find(t, evs, "result", byKind(proto.KindToolResult)), want)
			},
		},
		{
			file: "codex/0004_traces.json", records: 17,
			kinds:   map[string]int{proto.KindToolSpan: 1, proto.KindInteractionSpan: 1},
			skipped: map[string]int{SkipIgnoredSpan: 15},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				ap := find(t, evs, "apply_patch", bySpan("apply_patch"))
				if ap.ToolName != "apply_patch" || ap.ToolUseID != "call_patch_3" || ap.TurnID != codexTurn || ap.SpanID != "1cc412b9e3e7800c" {
					t.Errorf("apply_patch span %+v", ap)
				}
				want := codexBase(proto.KindInteractionSpan, "")
				want.SpanName = "run_turn"
				want.Time = ts("2026-11-22T11:25:13.355736704Z")
				want.EndTime = ts("2026-11-22T11:25:15.089980731Z")
				want.TurnID = codexTurn
				want.TraceID, want.SpanID, want.ParentSpanID = codexTrace, "bb7ea187ec31dd3f", "99c11a67b6fa55d9"
				want.PromptID = want.TraceID // Codex: the turn's trace
				wantEvent(t, find(t, evs, "run_turn", bySpan("run_turn")), want)
			},
		},
		{
			file: "codex/0006_logs.json", records: 4,
			kinds:   map[string]int{proto.KindToolDecision: 1, proto.KindToolResult: 1, proto.KindAPIRequest: 1},
			skipped: map[string]int{SkipNoEventName: 1}, // "flushing OTEL metrics"
			check: func(t *testing.T, evs []proto.AgentEvent) {
				want := codexBase(proto.KindToolResult, "codex.tool_result")
				want.Time = ts("2026-11-22T11:25:14.635Z")
				want.TraceID, want.SpanID = codexTrace, "8715ddd78d2c25f0"
				want.ToolName, want.ToolUseID = "apply_patch", "call_patch_3"
				want.Success = boolp(true)
				want.DurationMs = 8
				want.FilePaths = []string{"out.txt", "notes.txt"}
				want.Model = "gpt-5.5"
				want.PromptID = want.TraceID // Codex: the turn's trace
				wantEvent(t, find(t, evs, "apply_patch result", byKind(proto.KindToolResult)), want)
			},
		},
		{
			file: "gemini/0001_logs.json", records: 25,
			kinds: map[string]int{proto.KindUserPrompt: 1, proto.KindToolResult: 4, proto.KindAPIRequest: 1},
			// The research trimmed three request_text values: they no longer parse.
			skipped: map[string]int{SkipIgnoredEvent: 15, SkipUnreadableHistory: 3},
		},
		{
			file: "gemini/0003_traces.json", records: 13,
			kinds:   map[string]int{proto.KindToolSpan: 4},
			skipped: map[string]int{SkipIgnoredSpan: 9}, // llm_call, schedule_tool_calls
		},
		{
			file: "copilot/0001_capture_traces.json", records: 6,
			kinds: map[string]int{proto.KindToolSpan: 4, proto.KindToolResult: 4, proto.KindAPIRequest: 2},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				span := find(t, evs, "first bash span", func(e proto.AgentEvent) bool {
					return e.Kind == proto.KindToolSpan && e.ToolUseID == "call_mock_0_0"
				})
				if span.Command != "echo PAR_A pid=$$; sleep 1; echo A done" || span.ToolName != "bash" ||
					span.SessionID != "70fc51c7-10a5-474b-bce6-ca618bf36b11" || span.PromptID != span.TraceID {
					t.Errorf("span %+v", span)
				}
			},
		},
		{
			file: "copilot/0002_traces.json", records: 10,
			kinds: map[string]int{proto.KindToolSpan: 4, proto.KindToolResult: 4, proto.KindAPIRequest: 5, proto.KindUserPrompt: 1},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				// Without content capture the span says which call, not which command.
				res := find(t, evs, "bash result", func(e proto.AgentEvent) bool {
					return e.Kind == proto.KindToolResult && e.ToolName == "bash"
				})
				if res.ToolUseID != "call_mock_0_0" || res.Command != "" || res.Success == nil || !*res.Success ||
					!res.Time.After(res.EndTime.Add(-1)) || res.DurationMs <= 0 {
					t.Errorf("result %+v", res)
				}
			},
		},
		{
			file: "opencode/0001_logs.json", records: 11,
			skipped: map[string]int{SkipNoEventName: 11}, // its application log
		},
		{
			file: "opencode/0007_traces.json", records: 12,
			kinds:   map[string]int{proto.KindToolSpan: 2, proto.KindToolResult: 1, proto.KindAPIRequest: 1},
			skipped: map[string]int{SkipIgnoredSpan: 9},
			check: func(t *testing.T, evs []proto.AgentEvent) {
				args := find(t, evs, "ai.toolCall", bySpan("ai.toolCall"))
				exec := find(t, evs, "Tool.execute", func(e proto.AgentEvent) bool {
					return e.SpanName == "Tool.execute" && e.Kind == proto.KindToolSpan
				})
				// The research cut the sample's ai.toolCall.args short: it no longer parses, and no
				// command is guessed from it.
				if args.ToolUseID != "call_mock_0" || exec.ToolUseID != args.ToolUseID || exec.ToolName != "bash" ||
					args.Command != "" || exec.SessionID != "ses_dbb1d216dffexzz1HA778XBVH6" ||
					exec.PromptID != exec.TraceID {
					t.Errorf("ai.toolCall %+v\nTool.execute %+v", args, exec)
				}
			},
		},
	}

	files, _ := filepath.Glob("testdata/*/*.json")
	if len(files) != len(tests) {
		t.Errorf("%d sample files, %d table rows: every sample needs a row", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			evs, st := adaptFile(t, tt.file, ContentTypeJSON, readSample(t, tt.file))
			if st.Records != tt.records {
				t.Errorf("records %d, want %d", st.Records, tt.records)
			}
			if st.Events != len(evs) {
				t.Errorf("stats.Events %d, len %d", st.Events, len(evs))
			}
			skipped := 0
			for _, n := range st.Skipped {
				skipped += n
			}
			if st.Adapted+skipped != st.Records || st.Events != len(evs) {
				t.Errorf("adapted %d + skipped %d != records %d, or %d events counted for %d", st.Adapted, skipped, st.Records, st.Events, len(evs))
			}
			if got := kinds(evs); !maps.Equal(got, tt.kinds) {
				t.Errorf("kinds %v, want %v", got, tt.kinds)
			}
			if !maps.Equal(st.Skipped, tt.skipped) {
				t.Errorf("skipped %v, want %v", st.Skipped, tt.skipped)
			}
			for _, e := range evs {
				// Every span, and every Claude and Codex log but Claude's hook events, is in a
				// trace; Gemini logs only what it does inside a span there.
				inTrace := e.SpanName != "" || e.Agent != agents.GeminiCLI &&
					e.EventName != "hook_execution_start" && e.EventName != "hook_execution_complete"
				if e.Time.IsZero() || e.SessionID == "" || e.Agent == "" || inTrace && e.TraceID == "" {
					t.Errorf("incomplete event %+v", e)
				}
			}
			if tt.check != nil {
				tt.check(t, evs)
			}
		})
	}
}

// allEvents adapts every sample of one agent.
func allEvents(t *testing.T, agent string) []proto.AgentEvent {
	files, _ := filepath.Glob(filepath.Join("testdata", agent, "*.json"))
	var all []proto.AgentEvent
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := adaptFile(t, f, ContentTypeJSON, b)
		all = append(all, evs...)
	}
	return all
}

// TestSampleRunTotals checks one whole run against research/agents/samples/claude/otlp_schema.txt
// (x1 user_prompt, x5 api_request, x5 assistant_response, x4 tool_decision, x4 tool_result,
// x11 hook starts and x11 completes).
func TestSampleRunTotals(t *testing.T) {
	got := kinds(allEvents(t, "claude"))
	want := map[string]int{
		proto.KindUserPrompt: 1, proto.KindAPIRequest: 5, proto.KindAssistantResponse: 5,
		proto.KindToolDecision: 4, proto.KindToolResult: 4, proto.KindHook: 22,
		proto.KindToolSpan: 8, proto.KindInteractionSpan: 1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("claude run: %v, want %v", got, want)
	}
	got = kinds(allEvents(t, "codex"))
	want = map[string]int{
		proto.KindSessionStart: 1, proto.KindUserPrompt: 1, proto.KindAPIRequest: 3,
		proto.KindToolDecision: 2, proto.KindToolResult: 2, proto.KindToolSpan: 3, proto.KindInteractionSpan: 1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("codex run: %v, want %v", got, want)
	}
}

// TestSampleJoinKeys checks the joins the stitcher will rely on hold in the real payloads:
// every tool decision and result has a tool span with the same id, in the same session and
// trace, and the Bash command agrees between logs and span.
func TestSampleJoinKeys(t *testing.T) {
	// Claude: Bash, Read, Write, Edit; Codex: exec_command, apply_patch.
	for agent, calls := range map[string]int{"claude": 4, "codex": 2} {
		evs := allEvents(t, agent)
		spans := map[string][]proto.AgentEvent{}
		for _, e := range evs {
			if e.Kind == proto.KindToolSpan {
				spans[e.ToolUseID] = append(spans[e.ToolUseID], e)
			}
		}
		n := 0
		for _, e := range evs {
			if e.Kind != proto.KindToolDecision && e.Kind != proto.KindToolResult {
				continue
			}
			n++
			ss := spans[e.ToolUseID]
			if len(ss) == 0 {
				t.Errorf("%s %s %s: no tool span", agent, e.Kind, e.ToolUseID)
			}
			for _, s := range ss {
				if s.SessionID != e.SessionID || s.TraceID != e.TraceID {
					t.Errorf("%s %s: span session/trace %s/%s, log %s/%s", agent, e.ToolUseID, s.SessionID, s.TraceID, e.SessionID, e.TraceID)
				}
				if s.Command != "" && e.Command != "" && s.Command != e.Command {
					t.Errorf("%s %s: span command %q, log %q", agent, e.ToolUseID, s.Command, e.Command)
				}
				// Spans are sent when they end, but the tool ran inside them.
				if e.Kind == proto.KindToolDecision && s.SpanName == "claude_code.tool" && e.Time.Before(s.Time) {
					t.Errorf("%s %s: decision at %v before its span %v", agent, e.ToolUseID, e.Time, s.Time)
				}
			}
		}
		if n != 2*calls {
			t.Errorf("%s: %d tool decisions+results, want %d", agent, n, 2*calls)
		}
	}
}

// TestProtobufSameEvents: the same payloads as protobuf (what OTEL_EXPORTER_OTLP_PROTOCOL=
// http/protobuf and Codex protocol = "binary" send) decode and adapt to identical events.
// This also proves the JSON hex-id repair: protobuf carries the raw id bytes.
func TestProtobufSameEvents(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*.json")
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var msg pb.Message
			if strings.Contains(f, "logs") {
				msg, err = DecodeLogs(body, ContentTypeJSON)
			} else {
				msg, err = DecodeTraces(body, ContentTypeJSON)
			}
			if err != nil {
				t.Fatal(err)
			}
			wire, err := pb.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			jsonEvs, jsonSt := adaptFile(t, f, ContentTypeJSON, body)
			pbEvs, pbSt := adaptFile(t, f, "application/x-protobuf", wire)
			if !reflect.DeepEqual(jsonEvs, pbEvs) {
				t.Errorf("events differ\n json %+v\n pb   %+v", jsonEvs, pbEvs)
			}
			if !reflect.DeepEqual(jsonSt, pbSt) {
				t.Errorf("stats differ: json %+v pb %+v", jsonSt, pbSt)
			}
		})
	}
}

func TestUnknownServiceCounted(t *testing.T) {
	claude, err := DecodeLogs(readSample(t, "claude/0006_logs.json"), ContentTypeJSON)
	if err != nil {
		t.Fatal(err)
	}
	codex, err := DecodeLogs(readSample(t, "codex/0006_logs.json"), ContentTypeJSON)
	if err != nil {
		t.Fatal(err)
	}
	// A batch of three resources: Claude, an agent we don't know, and Codex.
	unknown := clone(t, claude)
	for _, kv := range unknown.ResourceLogs[0].Resource.Attributes {
		if kv.Key == "service.name" {
			kv.Value.Value = strValue("aider")
		}
	}
	noResource := clone(t, codex)
	noResource.ResourceLogs[0].Resource = nil
	claude.ResourceLogs = append(claude.ResourceLogs, unknown.ResourceLogs[0], codex.ResourceLogs[0], noResource.ResourceLogs[0])

	evs, st := AdaptLogs(claude)
	if st.Records != 5+5+4+4 {
		t.Errorf("records %d", st.Records)
	}
	if st.Skipped[SkipUnknownService] != 5+4 {
		t.Errorf("unknown_service %d, want 9 (%v)", st.Skipped[SkipUnknownService], st.Skipped)
	}
	if st.Skipped[SkipNoEventName] != 1 || len(evs) != 5+3 || st.Events != 8 {
		t.Errorf("stats %+v, %d events", st, len(evs))
	}
	for _, e := range evs {
		if e.Agent != agents.ClaudeCode && e.Agent != agents.Codex {
			t.Errorf("event from %q", e.Agent)
		}
	}
}

// TestAdaptersFollowTheRegistry: an agent whose service names the registry lists has an OTLP
// adapter, and every adapter is a registry agent's; adding an agent is its descriptor and its
// adapters.
func TestAdaptersFollowTheRegistry(t *testing.T) {
	registered := map[string]bool{}
	for _, a := range agents.All() {
		registered[a.Name] = true
		_, adapted := otlpAdapters[a.Name]
		if exports := len(a.ServiceNames)+len(a.ServicePrefixes) > 0; exports != adapted {
			t.Errorf("%s: service names %v, adapter %v", a.Name, a.ServiceNames, adapted)
		}
	}
	for name, ad := range otlpAdapters {
		if !registered[name] || ad.span == nil {
			t.Errorf("adapter %q: not a registry agent, or no span adapter", name)
		}
	}
}
