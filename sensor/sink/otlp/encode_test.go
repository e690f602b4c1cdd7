package otlp

import (
	"strings"
	"testing"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/sink/otlp/otlptest"
)

// TestRecord: each kind of record becomes a LogRecord whose body is the line it was handed
// (whatever its format), with the routing attributes the record has and its severity.
func TestRecord(t *testing.T) {
	ts := time.Date(2026, 12, 5, 10, 0, 0, 123, time.UTC)
	ok := true
	for _, tc := range []struct {
		name     string
		ev       *proto.Event
		line     string
		attrs    map[string]any
		severity logspb.SeverityNumber
		text     string
	}{
		{
			name: "kernel exec",
			ev: &proto.Event{Timestamp: ts, Event: proto.EventMeta{Action: "exec", Kind: "event", Category: "process", Dataset: "vigil.kernel", Sequence: 7},
				Process: &proto.Process{Pid: 99}},
			line: `{"kernel":1}` + "\n",
			attrs: map[string]any{"event.action": "exec", "event.kind": "event", "event.category": "process", "event.dataset": "vigil.kernel",
				"event.sequence": int64(7), "process.pid": int64(99), "vigil.schema": proto.SchemaVersion, AttrRecordID: "i-1", AttrAttempt: int64(0)},
		},
		{
			name: "agent tool call, an OCSF line passed through",
			ev: &proto.Event{Timestamp: ts, Event: proto.EventMeta{Action: proto.ActionAgentToolCall, Kind: "event", Dataset: proto.DatasetAgent, Sequence: 8},
				GenAI: &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"}, Conversation: &proto.GenAIConversation{ID: "sess-1"},
					Tool: &proto.GenAITool{Name: "Bash", Call: &proto.GenAIToolCall{ID: "toolu_1"}}},
				Vigil: proto.Vigil{Schema: "2", Tool: &proto.ToolCall{Success: &ok}}},
			line: `{"class_uid":6003,"metadata":{"version":"1.3.0"}}`,
			attrs: map[string]any{"event.action": proto.ActionAgentToolCall, "event.kind": "event", "event.dataset": proto.DatasetAgent,
				"event.sequence": int64(8), "gen_ai.agent.name": "claude-code", "gen_ai.conversation.id": "sess-1", "gen_ai.tool.call.id": "toolu_1",
				"vigil.schema": "2", AttrRecordID: "i-1", AttrAttempt: int64(0)},
		},
		{
			name: "high alert",
			ev: &proto.Event{Timestamp: ts, Event: proto.EventMeta{Action: proto.ActionAlert, Kind: proto.KindAlert, Dataset: proto.DatasetDetection, Sequence: 9, Severity: 73},
				Vigil: proto.Vigil{Alert: &proto.Alert{Severity: "high"}}},
			line: `{"alert":1}` + "\n",
			attrs: map[string]any{"event.action": proto.ActionAlert, "event.kind": proto.KindAlert, "event.dataset": proto.DatasetDetection,
				"event.sequence": int64(9), "vigil.schema": proto.SchemaVersion, AttrRecordID: "i-1", AttrAttempt: int64(0)},
			severity: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, text: "high",
		},
	} {
		lr := record(tc.ev, []byte(tc.line), "i-1", 42)
		got := otlptest.AttrMap(lr.GetAttributes())
		if len(got) != len(tc.attrs) {
			t.Errorf("%s: attributes %v, want %v", tc.name, got, tc.attrs)
		}
		for k, v := range tc.attrs {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", tc.name, k, got[k], v)
			}
		}
		if want := strings.TrimSuffix(tc.line, "\n"); lr.GetBody().GetStringValue() != want {
			t.Errorf("%s: body %q, want the line without its newline %q", tc.name, lr.GetBody().GetStringValue(), want)
		}
		if lr.TimeUnixNano != uint64(ts.UnixNano()) || lr.ObservedTimeUnixNano != 42 {
			t.Errorf("%s: times %d, %d", tc.name, lr.TimeUnixNano, lr.ObservedTimeUnixNano)
		}
		if lr.SeverityNumber != tc.severity || lr.SeverityText != tc.text {
			t.Errorf("%s: severity %v %q, want %v %q", tc.name, lr.SeverityNumber, lr.SeverityText, tc.severity, tc.text)
		}
		setAttempt(lr, 3)
		if a := otlptest.AttrMap(lr.GetAttributes())[AttrAttempt]; a != int64(3) {
			t.Errorf("%s: after setAttempt(3) the attempt is %v", tc.name, a)
		}
	}
}
