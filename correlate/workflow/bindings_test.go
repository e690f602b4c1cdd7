package workflow

import (
	"reflect"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// tbLine is a kernel line of a session, written unbound.
func tbLine(seq uint64, pid int, at time.Time) *proto.Event {
	return &proto.Event{
		Timestamp: at,
		Event:     proto.EventMeta{Action: proto.ActionExec, Kind: "event", Category: "process", Dataset: "vigil.kernel", Sequence: seq},
		Process:   &proto.Process{Pid: pid, EntityID: "ent-" + string(rune('a'+pid%26)), Name: "sh", Args: []string{"sh", "-c", "make"}},
		GenAI:     &proto.GenAI{Agent: &proto.GenAIAgent{Name: agents.ClaudeCode}, Conversation: &proto.GenAIConversation{ID: "sess-1"}},
		Vigil:     proto.Vigil{Root: &proto.Root{Pid: 100}, Correlation: proto.Correlation{Binding: proto.BindingNone}},
	}
}

func tbRecord(seq, binds uint64, pid int, call, how, conf string, at time.Time) *proto.Event {
	e := proto.BindingRecord{Time: at, Sequence: binds, Pid: pid, Agent: agents.ClaudeCode, SessionID: "sess-1",
		PromptID: "prompt-1", ToolName: "Bash", CallID: call, Binding: how, Confidence: conf, LateMs: 12000}.Event()
	e.Event.Sequence = seq
	return e
}

func TestApplyBindings(t *testing.T) {
	at := time.Date(2026, 11, 22, 11, 25, 41, 0, time.UTC)
	type want struct {
		pid              int
		call, how, conf  string
		promptID, sessID string
	}
	unbound := func(pid int) want { return want{pid, "", proto.BindingNone, "", "", "sess-1"} }
	tests := []struct {
		name   string
		events []*proto.Event
		want   []want // the kernel lines left, in order
	}{
		{"record re-attributes its line", []*proto.Event{
			tbLine(1, 11, at), tbLine(2, 12, at), tbRecord(3, 1, 11, "toolu_1", proto.BindingCommand, "medium", at.Add(12*time.Second)),
		}, []want{{11, "toolu_1", proto.BindingCommand, "medium", "prompt-1", "sess-1"}, unbound(12)}},
		{"a later, stronger record supersedes", []*proto.Event{
			tbLine(1, 11, at), tbRecord(2, 1, 11, "toolu_1", proto.BindingWindow, "low", at), tbRecord(3, 1, 11, "toolu_2", proto.BindingTraceParent, "high", at),
		}, []want{{11, "toolu_2", proto.BindingTraceParent, "high", "prompt-1", "sess-1"}}},
		{"record of a line not in the input is dropped", []*proto.Event{
			tbLine(5, 11, at), tbRecord(6, 4, 10, "toolu_1", proto.BindingCommand, "medium", at),
		}, []want{unbound(11)}},
		{"sequences restart with a new run", []*proto.Event{
			tbLine(1, 11, at), tbLine(2, 12, at), tbLine(1, 21, at), tbRecord(2, 1, 21, "toolu_9", proto.BindingEnvCallID, "high", at),
		}, []want{unbound(11), unbound(12), {21, "toolu_9", proto.BindingEnvCallID, "high", "prompt-1", "sess-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := make([]proto.Event, len(tt.events))
			for i, e := range tt.events {
				before[i] = *e
			}
			got := applyBindings(tt.events)
			if len(got) != len(tt.want) {
				t.Fatalf("%d events left, want %d", len(got), len(tt.want))
			}
			for i, e := range got {
				g := want{pid: e.Process.Pid, how: e.Vigil.Binding, conf: e.Vigil.Confidence, sessID: e.GenAI.Conversation.ID}
				if e.GenAI.Tool != nil && e.GenAI.Tool.Call != nil {
					g.call = e.GenAI.Tool.Call.ID
				}
				if e.Vigil.Prompt != nil {
					g.promptID = e.Vigil.Prompt.ID
				}
				if g != tt.want[i] {
					t.Errorf("line %d: got %+v, want %+v", i, g, tt.want[i])
				}
			}
			for i, e := range tt.events {
				if !reflect.DeepEqual(*e, before[i]) {
					t.Errorf("input event %d modified", i)
				}
			}
		})
	}
}
