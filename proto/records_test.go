package proto

import (
	"reflect"
	"testing"
	"time"
)

// TestRecordsRoundTrip: every record reads back from its line, after the line went through
// JSON and through msgpack.
func TestRecordsRoundTrip(t *testing.T) {
	at := time.Date(2025, 11, 24, 8, 31, 28, 461400000, time.UTC)
	tests := []struct {
		name   string
		record any
	}{
		{"binding", BindingRecord{Time: at, Sequence: 1544, Pid: 52460, EntityID: "6c0e2b9d4a7f1358", Agent: "claude-code",
			SessionID: "s", PromptID: "p", ToolName: "Bash", CallID: "toolu_1", Binding: BindingCommand, Confidence: "medium", LateMs: 12341}},
		{"binding without prompt or session", BindingRecord{Time: at, Sequence: 7, Pid: 1, Agent: "codex", CallID: "call_1",
			Binding: BindingEnvCallID, Confidence: "high", LateMs: 1}},
	}
	claude := Sender{Pid: 41822, Name: "claude", Executable: "/opt/claude", Cwd: "/home/a/src", RootPid: 41822, Transport: "otlp_http"}
	codex := Sender{Pid: 24688, Name: "codex", Cwd: "/home/a/src", RootPid: 24622, Transport: "otlp_grpc"}
	hook := Sender{Pid: 777, Name: "vigil", RootPid: 41822, Transport: "hook"}
	yes, no := true, false
	tests = append(tests, []struct {
		name   string
		record any
	}{
		{"session", SessionRecord{Time: at, Agent: "claude-code", SessionID: "s", Sender: claude, RootEntityID: "b3c1"}},
		{"session from a child sender without root entity", SessionRecord{Time: at, Agent: "codex", SessionID: "s", Sender: codex}},
		{"prompt with text", PromptRecord{Time: at, Agent: "claude-code", SessionID: "s", PromptID: "p", Text: "fix it", Sender: claude}},
		{"prompt without text", PromptRecord{Time: at, Agent: "codex", SessionID: "s", PromptID: "p", Sender: codex}},
		{"prompt without id", PromptRecord{Time: at, Agent: "claude-code", SessionID: "s", Text: "fix it", Sender: hook}},
		{"tool call succeeded", ToolCallRecord{Time: at, Agent: "claude-code", SessionID: "s", PromptID: "p", CallID: "toolu_1", ToolName: "Bash",
			Decision: "accept", DecisionSource: "config", Success: &yes, DurationMs: 3536, Command: "go test ./...", Sender: claude}},
		{"tool call failed, files", ToolCallRecord{Time: at, Agent: "codex", SessionID: "s", PromptID: "p", CallID: "call_1", ToolName: "apply_patch",
			Decision: "approved", DecisionSource: "User", Success: &no, FilePaths: []string{"a.go", "b.go"}, Sender: codex}},
		{"tool call without result", ToolCallRecord{Time: at, Agent: "claude-code", CallID: "toolu_2", ToolName: "Read", Sender: hook}},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := recordLine(tt.record)
			j, err := MarshalJSON(line)
			if err != nil {
				t.Fatal(err)
			}
			m, err := MarshalMsgpack(line)
			if err != nil {
				t.Fatal(err)
			}
			var fromJSON, fromMsgpack Event
			if err := UnmarshalJSON(j, &fromJSON); err != nil {
				t.Fatal(err)
			}
			if err := UnmarshalMsgpack(m, &fromMsgpack); err != nil {
				t.Fatal(err)
			}
			for enc, e := range map[string]*Event{"json": &fromJSON, "msgpack": &fromMsgpack} {
				got, ok := recordOf(tt.record, e)
				if !ok || !reflect.DeepEqual(got, tt.record) {
					t.Errorf("%s: read back %+v (%v), want %+v", enc, got, ok, tt.record)
				}
			}
		})
	}
}

// recordLine is the line of any record type.
func recordLine(r any) *Event {
	switch r := r.(type) {
	case BindingRecord:
		return r.Event()
	case SessionRecord:
		return r.Event()
	case PromptRecord:
		return r.Event()
	case ToolCallRecord:
		return r.Event()
	}
	panic("unknown record")
}

// recordOf reads a record of the same type as like back from e.
func recordOf(like any, e *Event) (any, bool) {
	switch like.(type) {
	case BindingRecord:
		return BindingRecordOf(e)
	case SessionRecord:
		return SessionRecordOf(e)
	case PromptRecord:
		return PromptRecordOf(e)
	case ToolCallRecord:
		return ToolCallRecordOf(e)
	}
	panic("unknown record")
}

// TestRecordOfOtherLines: each ...Of accepts its own line and no other.
func TestRecordOfOtherLines(t *testing.T) {
	for name, e := range fixtures() {
		for rec, ok := range map[string]bool{
			"binding":         second(BindingRecordOf(e)),
			"session":         second(SessionRecordOf(e)),
			"agent_prompt":    second(PromptRecordOf(e)),
			"agent_tool_call": second(ToolCallRecordOf(e)),
		} {
			if ok != (name == rec) {
				t.Errorf("%s read as a %s record: %v", name, rec, ok)
			}
		}
	}
}

func second[T any](_ T, ok bool) bool { return ok }

func TestBindingRecordApply(t *testing.T) {
	line := fixtures()["exec_unbound"]
	r := BindingRecord{Sequence: line.Event.Sequence, SessionID: "s2", PromptID: "p2", ToolName: "Bash", CallID: "toolu_9",
		Binding: BindingTraceParent, Confidence: "high"}
	r.Apply(line)
	if line.GenAI.Conversation.ID != "s2" || line.GenAI.Tool.Call.ID != "toolu_9" || line.GenAI.Tool.Name != "Bash" ||
		line.Vigil.Prompt.ID != "p2" || line.Vigil.Binding != BindingTraceParent || line.Vigil.Confidence != "high" ||
		line.GenAI.Agent.Name != "claude-code" {
		t.Errorf("applied: %+v %+v", line.GenAI, line.Vigil)
	}
}
