package correlate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

const (
	claudeHookSession = "c3824f57-bc13-4bea-b943-0c0fb62875a9"
	claudeHookPrompt  = "0c176207-8158-4be4-9a5e-4f8c6f49f211"
	codexHookSession  = "01a20300-c9da-71f3-85f1-138894c6f6aa"
	codexHookTurn     = "01a20300-ca5e-7ed2-8304-afd52a6f2dce"
	claudeBashPrefix  = "echo MARKER_BASH pid=$$ ppid=$PPID; readlink /proc/$$/fd/0"
	claudeBashSuffix  = "| sort; cat /etc/hostname && ls /tmp | head -3"
	codexBashSuffix   = "| sort; cat notes.txt; cat /etc/hostname && ls /tmp | head -3"
	claudeRepo        = "$WORK/runs/claude-final/repo/"
)

// hookSample returns the stdin JSON of one recorded hook call in testdata/hooks.
func hookSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hooks", name))
	if err != nil {
		t.Fatal(err)
	}
	var call struct {
		Stdin json.RawMessage `json:"stdin"`
	}
	if err := json.Unmarshal(b, &call); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return call.Stdin
}

// hookWant is what a test expects of the one event AdaptHook returns. Command is matched
// by prefix and suffix when CommandSuffix is set, else exactly.
type hookWant struct {
	agent, kind, event, session, prompt, turn, tool, toolUse, model string
	command, commandSuffix                                          string
	files                                                           []string
	success                                                         *bool
	durationMs                                                      int64
	promptText                                                      string
}

func checkHookEvent(t *testing.T, ev proto.AgentEvent, w hookWant) {
	t.Helper()
	eq := func(field, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	eq("Agent", ev.Agent, w.agent)
	eq("Kind", ev.Kind, w.kind)
	eq("EventName", ev.EventName, w.event)
	eq("SessionID", ev.SessionID, w.session)
	eq("PromptID", ev.PromptID, w.prompt)
	eq("TurnID", ev.TurnID, w.turn)
	eq("ToolName", ev.ToolName, w.tool)
	eq("ToolUseID", ev.ToolUseID, w.toolUse)
	eq("Model", ev.Model, w.model)
	eq("Prompt", ev.Prompt, w.promptText)
	if w.commandSuffix != "" {
		if !strings.HasPrefix(ev.Command, w.command) || !strings.HasSuffix(ev.Command, w.commandSuffix) {
			t.Errorf("Command = %q, want %q ... %q", ev.Command, w.command, w.commandSuffix)
		}
	} else {
		eq("Command", ev.Command, w.command)
	}
	if !slices.Equal(ev.FilePaths, w.files) {
		t.Errorf("FilePaths = %q, want %q", ev.FilePaths, w.files)
	}
	switch {
	case (ev.Success == nil) != (w.success == nil):
		t.Errorf("Success = %v, want %v", fmtBool(ev.Success), fmtBool(w.success))
	case ev.Success != nil && *ev.Success != *w.success:
		t.Errorf("Success = %v, want %v", *ev.Success, *w.success)
	}
	if ev.DurationMs != w.durationMs {
		t.Errorf("DurationMs = %d, want %d", ev.DurationMs, w.durationMs)
	}
	if ev.Kind == proto.KindHook && ev.HookEvent != w.event {
		t.Errorf("HookEvent = %q, want %q", ev.HookEvent, w.event)
	}
	if ev.Kind != proto.KindHook && ev.HookEvent != "" {
		t.Errorf("HookEvent = %q on %s", ev.HookEvent, ev.Kind)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	return strconv.FormatBool(*b)
}

func TestAdaptHookSamples(t *testing.T) {
	claude := func(w hookWant) hookWant {
		w.agent, w.session = agents.ClaudeCode, claudeHookSession
		if w.kind != proto.KindSessionStart {
			w.prompt = claudeHookPrompt
		}
		return w
	}
	codex := func(w hookWant) hookWant {
		w.agent, w.session = agents.Codex, codexHookSession
		if w.event != "SessionStart" && w.event != "SessionEnd" {
			w.turn = codexHookTurn
		}
		if w.event != "SessionEnd" {
			w.model = "gpt-5.5"
		}
		return w
	}
	gemini := func(w hookWant) hookWant {
		w.agent, w.session = agents.GeminiCLI, "752400e7-bf3c-41ff-9f52-f0d0a24edbff"
		return w
	}
	opencode := func(w hookWant) hookWant {
		w.agent, w.session = agents.OpenCode, "ses_dbb03f908ffeFpwIvI0oTk0X6K"
		return w
	}
	bash := func(w hookWant) hookWant {
		w.tool, w.command, w.commandSuffix = "Bash", claudeBashPrefix, claudeBashSuffix
		return w
	}
	tests := []struct {
		file string
		want hookWant
	}{
		{"claude/managed_SessionStart_1.json", claude(hookWant{kind: proto.KindSessionStart, event: "SessionStart"})},
		{"claude/managed_UserPromptSubmit_1.json", claude(hookWant{kind: proto.KindUserPrompt, event: "UserPromptSubmit",
			promptText: "Run a shell command, read notes.txt, write out.txt and edit notes.txt. SECRET_PROMPT_MARKER_42"})},
		{"claude/managed_PreToolUse_1.json", claude(bash(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", toolUse: "toolu_mock_0_0001"}))},
		{"claude/from_user_settings_PreToolUse.json", claude(bash(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", toolUse: "toolu_mock_0_0001"}))},
		{"claude/from_project_settings_PreToolUse.json", claude(bash(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", toolUse: "toolu_mock_0_0001"}))},
		{"claude/managed_PreToolUse_2.json", claude(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "Read",
			toolUse: "toolu_mock_1_0004", files: []string{claudeRepo + "notes.txt"}})},
		{"claude/managed_PreToolUse_3.json", claude(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "Write",
			toolUse: "toolu_mock_2_0007", files: []string{claudeRepo + "out.txt"}})},
		{"claude/managed_PreToolUse_4.json", claude(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "Edit",
			toolUse: "toolu_mock_3_0010", files: []string{claudeRepo + "notes.txt"}})},
		{"claude/managed_PostToolUse_1.json", claude(bash(hookWant{kind: proto.KindToolResult, event: "PostToolUse", toolUse: "toolu_mock_0_0001",
			success: new(true), durationMs: 536}))},
		{"claude/managed_PostToolUse_2.json", claude(hookWant{kind: proto.KindToolResult, event: "PostToolUse", tool: "Read",
			toolUse: "toolu_mock_1_0004", files: []string{claudeRepo + "notes.txt"}, success: new(true), durationMs: 120})},
		{"claude/managed_PostToolUse_3.json", claude(hookWant{kind: proto.KindToolResult, event: "PostToolUse", tool: "Write",
			toolUse: "toolu_mock_2_0007", files: []string{claudeRepo + "out.txt"}, success: new(true), durationMs: 14})},
		{"claude/managed_PostToolUse_4.json", claude(hookWant{kind: proto.KindToolResult, event: "PostToolUse", tool: "Edit",
			toolUse: "toolu_mock_3_0010", files: []string{claudeRepo + "notes.txt"}, success: new(true), durationMs: 38})},
		{"claude/managed_Stop_1.json", claude(hookWant{kind: proto.KindHook, event: "Stop"})},
		{"claude/managed_SessionEnd_1.json", claude(hookWant{kind: proto.KindHook, event: "SessionEnd"})},

		{"codex/system_SessionStart_1.json", codex(hookWant{kind: proto.KindSessionStart, event: "SessionStart"})},
		{"codex/system_UserPromptSubmit_1.json", codex(hookWant{kind: proto.KindUserPrompt, event: "UserPromptSubmit",
			promptText: "Run a shell command, then add out.txt and edit notes.txt with apply_patch. SECRET_PROMPT_MARKER_43"})},
		{"codex/system_PreToolUse_1.json", codex(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "Bash",
			toolUse: "call_exec_command_1", command: claudeBashPrefix, commandSuffix: codexBashSuffix})},
		{"codex/from_user_hooks_json_PreToolUse.json", codex(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "Bash",
			toolUse: "call_exec_command_1", command: claudeBashPrefix, commandSuffix: codexBashSuffix})},
		{"codex/system_PreToolUse_2.json", codex(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "apply_patch",
			toolUse: "call_patch_3", files: []string{"out.txt", "notes.txt"}})},
		// exec_command's tool_response is the bare output: no exit code, success unknown.
		{"codex/system_PostToolUse_1.json", codex(hookWant{kind: proto.KindToolResult, event: "PostToolUse", tool: "Bash",
			toolUse: "call_exec_command_1", command: claudeBashPrefix, commandSuffix: codexBashSuffix})},
		// apply_patch's tool_response starts "Exit code: 0".
		{"codex/system_PostToolUse_2.json", codex(hookWant{kind: proto.KindToolResult, event: "PostToolUse", tool: "apply_patch",
			toolUse: "call_patch_3", files: []string{"out.txt", "notes.txt"}, success: new(true)})},
		{"codex/system_Stop_1.json", codex(hookWant{kind: proto.KindHook, event: "Stop"})},
		{"codex/system_SessionEnd_1.json", codex(hookWant{kind: proto.KindHook, event: "SessionEnd"})},

		{"gemini/user_SessionStart.json", gemini(hookWant{kind: proto.KindSessionStart, event: "SessionStart"})},
		{"gemini/user_BeforeAgent.json", gemini(hookWant{kind: proto.KindUserPrompt, event: "BeforeAgent",
			promptText: "Run a shell command, read notes.txt, write out.txt and edit notes.txt. SECRET_PROMPT_MARKER_42"})},
		// Gemini's tool hooks name no call: hook lines, not decisions.
		{"gemini/user_BeforeTool.json", gemini(hookWant{kind: proto.KindHook, event: "BeforeTool", tool: "run_shell_command"})},
		{"gemini/user_AfterTool.json", gemini(hookWant{kind: proto.KindHook, event: "AfterTool", tool: "run_shell_command"})},
		{"gemini/user_SessionEnd.json", gemini(hookWant{kind: proto.KindHook, event: "SessionEnd"})},

		// Vigil's opencode plugin (correlate/plugins/opencode), run in opencode 1.18.33.
		{"opencode/1_PreToolUse_bash.json", opencode(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "bash",
			toolUse: "call_mock_0", command: "echo MARKER_BASH pid=$$", commandSuffix: "cat notes.txt"})},
		{"opencode/2_PostToolUse_bash.json", opencode(hookWant{kind: proto.KindToolResult, event: "PostToolUse", tool: "bash",
			toolUse: "call_mock_0", command: "echo MARKER_BASH pid=$$", commandSuffix: "cat notes.txt", success: new(true)})},
		{"opencode/3_PreToolUse_read.json", opencode(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "read",
			toolUse: "call_mock_1", files: []string{"$WORK/repo/notes.txt"}})},
		{"opencode/8_PostToolUse_edit.json", opencode(hookWant{kind: proto.KindToolResult, event: "PostToolUse", tool: "edit",
			toolUse: "call_mock_3", files: []string{"$WORK/repo/notes.txt"}, success: new(true)})},
	}
	now := time.Date(2026, 11, 22, 11, 25, 13, 0, time.UTC)
	for _, tt := range tests {
		stdin := hookSample(t, tt.file)
		// The caller's --agent, and detection from the payload alone, must agree. Vigil's
		// opencode plugin always names its agent: its payloads are not detected.
		callers := []string{tt.want.agent, ""}
		if strings.HasPrefix(tt.file, "opencode/") {
			callers = callers[:1]
		}
		for _, agent := range callers {
			t.Run(tt.file+"/agent="+agent, func(t *testing.T) {
				evs, err := adaptHookAt(agent, stdin, now)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != 1 {
					t.Fatalf("%d events, want 1", len(evs))
				}
				if !evs[0].Time.Equal(now) {
					t.Errorf("Time = %v, want %v (hooks carry no timestamp)", evs[0].Time, now)
				}
				checkHookEvent(t, evs[0], tt.want)
			})
		}
	}
}

// TestAdaptHookNow: the public entry point stamps the arrival time.
func TestAdaptHookNow(t *testing.T) {
	before := time.Now()
	evs, err := AdaptHook("claude", hookSample(t, "claude/managed_SessionStart_1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := evs[0].Time; got.Before(before.Add(-time.Millisecond)) || got.After(time.Now()) || got.Location() != time.UTC {
		t.Errorf("Time = %v, want now in UTC", got)
	}
}

// Cursor payloads built from the documented schema (cursor.com/docs/agent/hooks).
func TestAdaptHookCursor(t *testing.T) {
	const conv, gen = "conv-7f1c", "gen-0042"
	base := `"conversation_id":"` + conv + `","generation_id":"` + gen + `","workspace_roots":["/home/dev/repo"]`
	cursor := func(w hookWant) hookWant {
		w.agent, w.session, w.turn = agents.Cursor, conv, gen
		return w
	}
	tests := []struct {
		name, agent, stdin string
		want               hookWant
	}{
		{"beforeShellExecution", "cursor",
			`{` + base + `,"hook_event_name":"beforeShellExecution","command":"go test ./...","cwd":"/home/dev/repo"}`,
			cursor(hookWant{kind: proto.KindToolDecision, event: "beforeShellExecution", tool: "Shell", command: "go test ./..."})},
		{"afterShellExecution", "cursor",
			`{` + base + `,"hook_event_name":"afterShellExecution","command":"go test ./...","exit_code":1}`,
			cursor(hookWant{kind: proto.KindToolResult, event: "afterShellExecution", tool: "Shell", command: "go test ./..."})},
		{"beforeReadFile", "cursor",
			`{` + base + `,"hook_event_name":"beforeReadFile","file_path":"/home/dev/repo/.env","content":"SECRET=1","attachments":[]}`,
			cursor(hookWant{kind: proto.KindToolDecision, event: "beforeReadFile", tool: "Read", files: []string{"/home/dev/repo/.env"}})},
		{"afterFileEdit", "cursor",
			`{` + base + `,"hook_event_name":"afterFileEdit","file_path":"/home/dev/repo/main.go","edits":[{"old_string":"a","new_string":"b"}]}`,
			cursor(hookWant{kind: proto.KindToolResult, event: "afterFileEdit", tool: "Edit", files: []string{"/home/dev/repo/main.go"}, success: new(true)})},
		{"beforeSubmitPrompt", "cursor",
			`{` + base + `,"hook_event_name":"beforeSubmitPrompt","prompt":"fix the tests","attachments":[{"type":"file","file_path":"/home/dev/repo/a.go"}]}`,
			cursor(hookWant{kind: proto.KindUserPrompt, event: "beforeSubmitPrompt", promptText: "fix the tests"})},
		// The MCP server's command is not the tool call's shell command.
		{"beforeMCPExecution", "cursor",
			`{` + base + `,"hook_event_name":"beforeMCPExecution","tool_name":"search_issues","tool_input":{"q":"x"},"command":"npx mcp-server"}`,
			cursor(hookWant{kind: proto.KindToolDecision, event: "beforeMCPExecution", tool: "search_issues"})},
		{"stop", "cursor",
			`{` + base + `,"hook_event_name":"stop","status":"completed"}`,
			cursor(hookWant{kind: proto.KindHook, event: "stop"})},
		{"sessionStart", "cursor",
			`{` + base + `,"hook_event_name":"sessionStart"}`,
			cursor(hookWant{kind: proto.KindSessionStart, event: "sessionStart"})},
		{"postToolUseFailure", "cursor",
			`{` + base + `,"hook_event_name":"postToolUseFailure","tool_name":"Shell","tool_input":{"command":"make"}}`,
			cursor(hookWant{kind: proto.KindToolResult, event: "postToolUseFailure", tool: "Shell", command: "make", success: new(false)})},
		{"afterAgentThought is a hook", "cursor",
			`{` + base + `,"hook_event_name":"afterAgentThought","text":"hmm"}`,
			cursor(hookWant{kind: proto.KindHook, event: "afterAgentThought"})},
		{"detected without --agent", "",
			`{` + base + `,"hook_event_name":"beforeShellExecution","command":"ls"}`,
			cursor(hookWant{kind: proto.KindToolDecision, event: "beforeShellExecution", tool: "Shell", command: "ls"})},
		// Cursor runs Claude Code's hooks: a claude-code hook receiving Cursor's payload.
		{"Cursor payload in a Claude hook", "claude-code",
			`{` + base + `,"hook_event_name":"beforeShellExecution","command":"ls"}`,
			cursor(hookWant{kind: proto.KindToolDecision, event: "beforeShellExecution", tool: "Shell", command: "ls"})},
		{"Cursor payload with a Claude event name", "claude-code",
			`{` + base + `,"hook_event_name":"PreToolUse","tool_name":"Shell","tool_input":{"command":"ls"}}`,
			cursor(hookWant{kind: proto.KindToolDecision, event: "PreToolUse", tool: "Shell", command: "ls"})},
		{"cursor_version", "cursor",
			`{` + base + `,"cursor_version":"1.7.2","hook_event_name":"sessionEnd"}`,
			cursor(hookWant{kind: proto.KindHook, event: "sessionEnd"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := AdaptHook(tt.agent, []byte(tt.stdin))
			if err != nil {
				t.Fatal(err)
			}
			checkHookEvent(t, evs[0], tt.want)
			if strings.Contains(tt.stdin, "cursor_version") && evs[0].AgentVersion != "1.7.2" {
				t.Errorf("AgentVersion = %q", evs[0].AgentVersion)
			}
		})
	}
}

func TestAdaptHookEdgeCases(t *testing.T) {
	tests := []struct {
		name, agent, stdin string
		want               hookWant
	}{
		{"unknown event is a hook, not an error", "claude-code",
			`{"session_id":"s1","hook_event_name":"BrandNewEvent","tool_name":"Bash","tool_input":{"command":"id"}}`,
			hookWant{agent: agents.ClaudeCode, kind: proto.KindHook, event: "BrandNewEvent", session: "s1", tool: "Bash", command: "id"}},
		{"PostToolUseFailure", "claude-code",
			`{"session_id":"s1","hook_event_name":"PostToolUseFailure","tool_name":"Bash","tool_use_id":"t1","tool_input":{"command":"false"},"error":"exit 1"}`,
			hookWant{agent: agents.ClaudeCode, kind: proto.KindToolResult, event: "PostToolUseFailure", session: "s1", tool: "Bash",
				toolUse: "t1", command: "false", success: new(false)}},
		{"interrupted Bash", "claude-code",
			`{"session_id":"s1","hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"sleep 9"},"tool_response":{"stdout":"","interrupted":true}}`,
			hookWant{agent: agents.ClaudeCode, kind: proto.KindToolResult, event: "PostToolUse", session: "s1", tool: "Bash",
				command: "sleep 9", success: new(false)}},
		{"Codex failing apply_patch", "codex",
			`{"session_id":"s2","turn_id":"u","hook_event_name":"PostToolUse","tool_name":"apply_patch","tool_input":{"command":"*** Begin Patch\n*** Delete File: gone.txt\n*** End Patch\n"},"tool_response":"Exit code: 1\nWall time: 0 seconds\n"}`,
			hookWant{agent: agents.Codex, kind: proto.KindToolResult, event: "PostToolUse", session: "s2", turn: "u", tool: "apply_patch",
				files: []string{"gone.txt"}, success: new(false)}},
		{"shell command feeding a patch", "codex",
			`{"session_id":"s2","turn_id":"u","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: a.go\n*** Move to: b.go\n*** End Patch\nEOF"}}`,
			hookWant{agent: agents.Codex, kind: proto.KindToolDecision, event: "PreToolUse", session: "s2", turn: "u", tool: "Bash",
				command: "apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: a.go\n*** Move to: b.go\n*** End Patch\nEOF", files: []string{"a.go", "b.go"}}},
		{"MCP tool arguments are not file claims", "claude-code",
			`{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"mcp__fs__read","tool_input":{"file_path":"/etc/shadow","command":"x"}}`,
			hookWant{agent: agents.ClaudeCode, kind: proto.KindToolDecision, event: "PreToolUse", session: "s1", tool: "mcp__fs__read"}},
		{"NotebookEdit", "claude",
			`{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"NotebookEdit","tool_input":{"notebook_path":"/r/a.ipynb"}}`,
			hookWant{agent: agents.ClaudeCode, kind: proto.KindToolDecision, event: "PreToolUse", session: "s1", tool: "NotebookEdit",
				files: []string{"/r/a.ipynb"}}},
		{"fields of the wrong type are ignored", "claude-code",
			`{"session_id":5,"hook_event_name":"PreToolUse","tool_name":["Bash"],"tool_input":"rm -rf /","duration_ms":"x"}`,
			hookWant{agent: agents.ClaudeCode, kind: proto.KindToolDecision, event: "PreToolUse"}},
		{"Codex argv command", "codex",
			`{"session_id":"s2","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":["bash","-lc","ls"]}}`,
			hookWant{agent: agents.Codex, kind: proto.KindToolDecision, event: "PreToolUse", session: "s2", tool: "Bash", command: "bash -lc ls"}},
		{"leading whitespace", "codex",
			"\n  {\"session_id\":\"s2\",\"hook_event_name\":\"Stop\"}\n",
			hookWant{agent: agents.Codex, kind: proto.KindHook, event: "Stop", session: "s2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := AdaptHook(tt.agent, []byte(tt.stdin))
			if err != nil {
				t.Fatal(err)
			}
			checkHookEvent(t, evs[0], tt.want)
		})
	}
}

func TestAdaptHookErrors(t *testing.T) {
	big := func(n int) []byte {
		head := []byte(`{"session_id":"s","hook_event_name":"Stop","pad":"`)
		b := append(head, bytes.Repeat([]byte("a"), n-len(head)-2)...)
		return append(b, '"', '}')
	}
	tests := []struct {
		name, agent string
		stdin       []byte
		wantErr     string
		tooLarge    bool
	}{
		{"empty", "claude-code", nil, "empty stdin", false},
		{"blank", "claude-code", []byte(" \n"), "empty stdin", false},
		{"array", "claude-code", []byte(`[{"hook_event_name":"Stop"}]`), "not a JSON object", false},
		{"truncated", "claude-code", []byte(`{"session_id":"s","hook_event_name":"St`), "decode stdin json", false},
		{"trailing garbage", "codex", []byte(`{"hook_event_name":"Stop"} x`), "decode stdin json", false},
		{"no event name", "codex", []byte(`{"session_id":"s"}`), "no hook_event_name", false},
		{"event name not a string", "codex", []byte(`{"hook_event_name":7}`), "no hook_event_name", false},
		{"empty event name", "codex", []byte(`{"hook_event_name":""}`), "no hook_event_name", false},
		{"unknown agent", "vim", []byte(`{"hook_event_name":"Stop"}`), `unknown hook agent "vim"`, false},
		{"one byte over the limit", "codex", big(MaxHookStdinBytes + 1), "limit 1048576", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := AdaptHook(tt.agent, tt.stdin)
			if err == nil {
				t.Fatalf("no error, events %+v", evs)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "adapt hook: ") {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrHookTooLarge) != tt.tooLarge {
				t.Errorf("errors.Is(ErrHookTooLarge) = %v", !tt.tooLarge)
			}
		})
	}
	// Exactly at the limit is accepted.
	if _, err := AdaptHook("codex", big(MaxHookStdinBytes)); err != nil {
		t.Errorf("stdin of exactly MaxHookStdinBytes: %v", err)
	}
}

func TestHookFrameRoundTrip(t *testing.T) {
	in := HookMessage{
		Agent:  "claude-code",
		Stdin:  hookSample(t, "claude/managed_PostToolUse_1.json"),
		Argv:   []string{"/usr/local/bin/vigil", "hook", "--agent", "claude-code"},
		Cwd:    "/home/dev/repo",
		SentAt: time.Date(2026, 11, 22, 11, 25, 13, 123456789, time.UTC),
	}
	frame, err := AppendHookFrame([]byte("prefix"), &in)
	if err != nil {
		t.Fatal(err)
	}
	if string(frame[:6]) != "prefix" {
		t.Fatal("AppendHookFrame overwrote dst")
	}
	frame = frame[6:]
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("header %d, body %d", n, len(frame)-4)
	}
	// Two frames back to back: the reader takes exactly one.
	r := bytes.NewReader(append(slices.Clone(frame), frame...))
	for range 2 {
		out, err := ReadHookFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if out.Agent != in.Agent || !bytes.Equal(out.Stdin, in.Stdin) || !slices.Equal(out.Argv, in.Argv) ||
			out.Cwd != in.Cwd || !out.SentAt.Equal(in.SentAt) || out.SentAt.Location() != time.UTC {
			t.Fatalf("round trip: got %+v", out)
		}
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes left", r.Len())
	}
}

func TestHookFrameErrors(t *testing.T) {
	good, err := AppendHookFrame(nil, &HookMessage{Agent: "codex", Stdin: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	header := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	withTrailing := append(header(uint32(len(good)-4+1)), append(slices.Clone(good[4:]), 0xc0)...)
	tests := []struct {
		name     string
		in       []byte
		want     string
		tooLarge bool
	}{
		{"nothing", nil, "read hook frame header", false},
		{"short header", []byte{0, 0}, "read hook frame header", false},
		{"zero length", header(0), "empty body", false},
		{"over the limit", header(MaxHookFrameBytes + 1), "limit", true},
		{"max uint32", header(^uint32(0)), "limit", true},
		{"short body", append(header(100), 0x80), "read hook frame body", false},
		{"not msgpack", append(header(3), 0xc1, 0xc1, 0xc1), "decode hook frame", false},
		{"msgpack of the wrong type", append(header(1), 0x05), "decode hook frame", false},
		{"trailing bytes", withTrailing, "trailing", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadHookFrame(bytes.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if errors.Is(err, ErrHookFrameTooLarge) != tt.tooLarge {
				t.Errorf("errors.Is(ErrHookFrameTooLarge) = %v", !tt.tooLarge)
			}
		})
	}
	// The encoder refuses what the decoder would.
	huge := HookMessage{Stdin: make([]byte, MaxHookFrameBytes)}
	if _, err := AppendHookFrame(nil, &huge); !errors.Is(err, ErrHookFrameTooLarge) {
		t.Errorf("AppendHookFrame of an oversized message: %v", err)
	}
	// The biggest stdin a client sends (limit + 1, to mark it too large) still fits a frame.
	maxMsg := HookMessage{Agent: "claude-code", Stdin: make([]byte, MaxHookStdinBytes+1), Argv: []string{strings.Repeat("a", 16<<10)},
		Cwd: strings.Repeat("d", 4<<10), SentAt: time.Now()}
	if _, err := AppendHookFrame(nil, &maxMsg); err != nil {
		t.Errorf("largest client message: %v", err)
	}
}

func TestUndeliveredFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lib", "hook-undelivered")
	if err := PrepareUndeliveredDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != UndeliveredDirMode {
		t.Errorf("mode %v, want %v", fi.Mode(), UndeliveredDirMode)
	}
	if err := PrepareUndeliveredDir(dir); err != nil {
		t.Errorf("second prepare: %v", err)
	}
	uid := os.Getuid()
	for range 3 {
		if err := RecordUndelivered(dir, uid, 100); err != nil {
			t.Fatal(err)
		}
	}
	fi, err = os.Stat(filepath.Join(dir, strconv.Itoa(uid)))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("count file: %v %v, want mode 0600", fi.Mode(), err)
	}
	counts, err := ConsumeUndelivered(dir)
	if err != nil {
		t.Fatal(err)
	}
	if counts[uid] != 3 || len(counts) != 1 {
		t.Errorf("counts %v, want {%d: 3}", counts, uid)
	}
	// Counted once: taken away, and a later record starts afresh.
	if again, err := ConsumeUndelivered(dir); err != nil || len(again) != 0 {
		t.Errorf("second count %v %v, want nothing", again, err)
	}
	if err := RecordUndelivered(dir, uid, 100); err != nil {
		t.Fatal(err)
	}
	if later, err := ConsumeUndelivered(dir); err != nil || later[uid] != 1 {
		t.Errorf("after one more record: %v %v, want {%d: 1}", later, err, uid)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files left after counting", len(entries))
	}
	if m, err := ConsumeUndelivered(filepath.Join(dir, "missing")); err != nil || len(m) != 0 {
		t.Errorf("missing dir: %v %v", m, err)
	}
}

// A sparse file claims its size but holds almost nothing: it counts what it holds. A file
// taken but not removed (a crash in between) is counted next time.
func TestConsumeUndeliveredCountsWrittenBytes(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "65534"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1_000_000_000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, consumedPrefix+"0-123"), []byte{1, 1}, 0o600); err != nil {
		t.Fatal(err)
	}
	counts, err := ConsumeUndelivered(dir)
	if err != nil {
		t.Fatal(err)
	}
	uid := os.Getuid()
	if counts[uid] != 2 {
		t.Errorf("counts %v: want the 2 bytes of the file left taken, and nothing of the sparse one", counts)
	}
}

// A planted <uid> entry (a symlink to someone's file, or anything that cannot be appended
// to) makes the client fall back to <uid>.<pid>; the symlink's target is never written.
func TestRecordUndeliveredFallback(t *testing.T) {
	dir := t.TempDir()
	uid := os.Getuid()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, strconv.Itoa(uid))); err != nil {
		t.Fatal(err)
	}
	if err := RecordUndelivered(dir, uid, 4242); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("symlink target written: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dir, strconv.Itoa(uid)+".4242")); err != nil || fi.Size() != 1 {
		t.Errorf("fallback file: %v", err)
	}
	counts, err := ConsumeUndelivered(dir)
	if err != nil || counts[uid] != 1 {
		t.Errorf("counts %v %v, want 1 for uid %d (the symlink is not counted)", counts, err, uid)
	}
}

func TestPrepareUndeliveredDirRefuses(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := PrepareUndeliveredDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file: %v", err)
	}
	testenv.RequireRoot(t, "chown to another uid")
	other := filepath.Join(base, "other")
	if err := os.Mkdir(other, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := PrepareUndeliveredDir(other); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("dir owned by another user: %v", err)
	}
	// Files are counted per owner, whatever their names.
	dir := filepath.Join(base, "counts")
	if err := PrepareUndeliveredDir(dir); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "0")
	if err := os.WriteFile(f, []byte("xx"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(f, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if counts, err := ConsumeUndelivered(dir); err != nil || counts[65534] != 2 || counts[0] != 0 {
		t.Errorf("counts %v %v, want 2 for uid 65534", counts, err)
	}
}

func FuzzAdaptHook(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "hooks", "*", "*.json"))
	for _, p := range files {
		rel, _ := filepath.Rel(filepath.Join("testdata", "hooks"), p)
		f.Add("", hookSample(f, rel))
	}
	f.Add("cursor", []byte(`{"conversation_id":"c","hook_event_name":"afterFileEdit","file_path":"/a","edits":[]}`))
	f.Add("codex", []byte(`{"hook_event_name":"PostToolUse","tool_name":"apply_patch","tool_input":{"command":"*** Add File: x"},"tool_response":"Exit code: 99999999999999999999"}`))
	f.Add("claude-code", []byte(`{"hook_event_name":"PostToolUse","tool_response":{"exit_code":1e400,"success":"no"},"duration_ms":-5}`))
	f.Add("x", []byte(`[]`))
	f.Fuzz(func(t *testing.T, agent string, stdin []byte) {
		evs, err := AdaptHook(agent, stdin)
		if err != nil {
			if evs != nil {
				t.Fatal("events with an error")
			}
			return
		}
		if len(evs) != 1 || evs[0].Kind == "" || evs[0].EventName == "" || evs[0].Agent == "" || evs[0].DurationMs < 0 {
			t.Fatalf("bad events %+v", evs)
		}
	})
}

func FuzzReadHookFrame(f *testing.F) {
	good, _ := AppendHookFrame(nil, &HookMessage{Agent: "codex", Stdin: []byte(`{"hook_event_name":"Stop"}`), Argv: []string{"vigil", "hook"},
		Cwd: "/r", SentAt: time.Unix(1795346713, 0)})
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{0, 0, 0, 1, 0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	// A body that claims a huge bin32 and a huge array.
	f.Add([]byte{0, 0, 0, 16, 0x85, 0xa5, 's', 't', 'd', 'i', 'n', 0xc6, 0xff, 0xff, 0xff, 0xff, 0xdd, 0xff, 0xff, 0xff})
	var raw []byte
	raw, _ = msgpack.Marshal(map[string]any{"agent": 1, "argv": "x", "sent_at": "yesterday"})
	f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(raw))), raw...))
	f.Add(depthBomb(1000, 0x91))
	f.Add(depthBomb(1000, 0x81))
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := ReadHookFrame(bytes.NewReader(frame))
		if err != nil {
			return
		}
		// Whatever decoded re-encodes and decodes to the same message.
		again, err := AppendHookFrame(nil, &m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := ReadHookFrame(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if m2.Agent != m.Agent || !bytes.Equal(m2.Stdin, m.Stdin) || !slices.Equal(m2.Argv, m.Argv) || m2.Cwd != m.Cwd || !m2.SentAt.Equal(m.SentAt) {
			t.Fatalf("re-decode differs: %+v vs %+v", m2, m)
		}
	})
}

// depthBomb is a hook frame whose unknown field "x" holds levels nested containers of the
// one-element container code (0x91 fixarray, 0x81 fixmap, whose key is then a nil).
func depthBomb(levels int, code byte) []byte {
	body := []byte{0x81, 0xa1, 'x'}
	for range levels {
		body = append(body, code)
		if code == 0x81 {
			body = append(body, 0xc0) // the map's key
		}
	}
	body = append(body, 0xc0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// An unknown field nested without end is refused at maxSkipDepth, without recursion: four
// frames of ~1.1 M nested arrays took the sensor from 67 to 825 MiB when the skip recursed.
func TestReadHookFrameDepthBomb(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frame  []byte
		refuse bool
	}{
		{"arrays at the limit", depthBomb(maxSkipDepth, 0x91), false},
		{"maps at the limit", depthBomb(maxSkipDepth, 0x81), false},
		{"arrays one past", depthBomb(maxSkipDepth+1, 0x91), true},
		{"a million nested arrays", depthBomb(MaxHookFrameBytes-16, 0x91), true},
		{"a million nested maps", depthBomb((MaxHookFrameBytes-16)/2, 0x81), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := ReadHookFrame(bytes.NewReader(tc.frame))
			runtime.ReadMemStats(&after)
			if (err != nil) != tc.refuse {
				t.Fatalf("err %v, refuse %v", err, tc.refuse)
			}
			if tc.refuse && !strings.Contains(err.Error(), "nested deeper than") {
				t.Errorf("err %v, want the depth named", err)
			}
			// The frame itself is read into memory; nothing beyond a few times its size.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*uint64(len(tc.frame))+1<<20 {
				t.Errorf("decoding a %d-byte frame allocated %d bytes", len(tc.frame), grew)
			}
			if after.StackInuse > 64<<20 {
				t.Errorf("stack in use %d bytes after the decode", after.StackInuse)
			}
		})
	}
}

// A frame body may not make the decoder allocate more than it holds: msgpack's own []byte
// decoding allocated the 4 GiB a bin32 header claimed (found by FuzzReadHookFrame).
func TestReadHookFrameBoundedAllocation(t *testing.T) {
	for _, in := range [][]byte{
		[]byte("\x00\x00\x00\x10\x85\xa5stdin\xc6\xff\x17\x00\xff\x00\x10\x9c\xa8\xd5K\xc3\xdd\xff\xff\xff"),
		[]byte("\x00\x00\x00\x0c\x81\xa4argv\xdd\x00\x0f\xff\xff\xa1a"),
		[]byte("\x00\x00\x00\x0b\x81\xa3cwd\xdb\x7f\xff\xff\xff\xa1"),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadHookFrame(bytes.NewReader(in))
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%q decoded", in)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
			t.Errorf("%q: allocated %d bytes for a %d-byte frame", in, got, len(in))
		}
	}
}
