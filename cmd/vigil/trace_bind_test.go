package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/correlate/workflow"
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

// TestTraceAppliesBindingRecords: vigil trace shows a line bound late under its tool call,
// not as unexplained activity.
func TestTraceAppliesBindingRecords(t *testing.T) {
	at := time.Date(2026, 11, 22, 11, 25, 41, 0, time.UTC)
	var in bytes.Buffer
	for _, e := range []*proto.Event{tbLine(1, 11, at), tbLine(2, 12, at.Add(time.Second)),
		tbRecord(3, 1, 11, "toolu_1", proto.BindingCommand, "medium", at.Add(12*time.Second))} {
		b, err := proto.MarshalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(append(b, '\n'))
	}
	var out, errOut bytes.Buffer
	if err := runTrace([]string{"--jsonl", "-", "--format", "json"}, &in, &out, &errOut, func(string) string { return "" }); err != nil {
		t.Fatalf("trace: %v (%s)", err, errOut.String())
	}
	var wfs []workflow.Workflow
	if err := json.Unmarshal(out.Bytes(), &wfs); err != nil {
		t.Fatal(err)
	}
	if len(wfs) != 1 || len(wfs[0].Prompts) != 1 || len(wfs[0].Prompts[0].ToolCalls) != 1 {
		t.Fatalf("workflows: %s", out.String())
	}
	call := wfs[0].Prompts[0].ToolCalls[0]
	if call.CallID != "toolu_1" || len(call.Processes) != 1 || call.Processes[0].Pid != 11 || strings.Join(call.Evidence, ",") != "command/medium" {
		t.Errorf("call %+v", call)
	}
	if un := wfs[0].Unexplained.Processes; len(un) != 1 || un[0].Pid != 12 {
		t.Errorf("unexplained %+v", un)
	}
	if !wfs[0].End.Equal(at.Add(time.Second)) {
		t.Errorf("workflow ends %v: the binding record's own time must not extend it", wfs[0].End)
	}
}
