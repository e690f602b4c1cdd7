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
		{"binding", BindingRecord{Time: at, Sequence: 1544, Pid: 52460, EntityID: "6c0e2b9d4a7f1358", Agent: AgentClaudeCode,
			SessionID: "s", PromptID: "p", ToolName: "Bash", CallID: "toolu_1", Binding: BindingCommand, Confidence: "medium", LateMs: 12341}},
		{"binding without prompt or session", BindingRecord{Time: at, Sequence: 7, Pid: 1, Agent: AgentCodex, CallID: "call_1",
			Binding: BindingEnvCallID, Confidence: "high", LateMs: 1}},
	}
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
	}
	panic("unknown record")
}

// recordOf reads a record of the same type as like back from e.
func recordOf(like any, e *Event) (any, bool) {
	switch like.(type) {
	case BindingRecord:
		return BindingRecordOf(e)
	}
	panic("unknown record")
}

func TestRecordOfOtherLines(t *testing.T) {
	for name, e := range fixtures() {
		if _, ok := BindingRecordOf(e); ok != (name == "binding") {
			t.Errorf("%s: BindingRecordOf ok = %v", name, ok)
		}
	}
}

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
