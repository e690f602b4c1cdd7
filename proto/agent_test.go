package proto

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func sampleAgentEvent() AgentEvent {
	ok := true
	seq := int64(27)
	return AgentEvent{
		Agent:          "claude-code",
		AgentVersion:   "2.1.197",
		Kind:           KindToolDecision,
		EventName:      "tool_decision",
		Time:           time.Date(2026, 11, 22, 11, 25, 41, 71000000, time.UTC),
		Sequence:       &seq,
		SessionID:      "c3824f57-bc13-4bea-b943-0c0fb62875a9",
		PromptID:       "0c176207-8158-4be4-9a5e-4f8c6f49f211",
		TraceID:        "ff2fedba731dd2058f15667c1c0bbb3e",
		SpanID:         "8279c0b14dbbbfd0",
		ToolName:       "Bash",
		ToolUseID:      "toolu_mock_0_0001",
		Decision:       "accept",
		DecisionSource: "config",
		Success:        &ok,
		DurationMs:     536,
		Command:        "echo hi",
		FilePaths:      []string{"/repo/notes.txt"},
		ResourcePID:    31206,
	}
}

func TestAgentEventTags(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	typ := reflect.TypeFor[AgentEvent]()
	seen := map[string]bool{}
	for f := range typ.Fields() {
		js, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		mp, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
		if !snake.MatchString(js) {
			t.Errorf("%s: json name %q is not snake_case", f.Name, js)
		}
		if js != mp {
			t.Errorf("%s: json name %q != msgpack name %q", f.Name, js, mp)
		}
		if seen[js] {
			t.Errorf("%s: duplicate name %q", f.Name, js)
		}
		seen[js] = true
	}
}

func TestAgentEventJSONRoundTrip(t *testing.T) {
	in := sampleAgentEvent()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "end_time") {
		t.Errorf("zero end_time should be omitted: %s", b)
	}
	var out AgentEvent
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("json round trip:\n in  %+v\n out %+v", in, out)
	}
}

func TestAgentEventMsgpackRoundTrip(t *testing.T) {
	in := sampleAgentEvent()
	in.EndTime = in.Time.Add(537 * time.Millisecond)
	b, err := msgpack.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out AgentEvent
	if err := msgpack.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	// msgpack decodes times in the local zone; compare instants.
	if !out.Time.Equal(in.Time) || !out.EndTime.Equal(in.EndTime) {
		t.Errorf("times: got %v/%v want %v/%v", out.Time, out.EndTime, in.Time, in.EndTime)
	}
	out.Time, out.EndTime = in.Time, in.EndTime
	if !reflect.DeepEqual(in, out) {
		t.Errorf("msgpack round trip:\n in  %+v\n out %+v", in, out)
	}
	// Sequence 0 is a real value (Claude's first event) and must survive.
	zero := int64(0)
	in.Sequence = &zero
	b, _ = msgpack.Marshal(in)
	out = AgentEvent{}
	if err := msgpack.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Sequence == nil || *out.Sequence != 0 {
		t.Errorf("sequence 0 lost: %v", out.Sequence)
	}
}
