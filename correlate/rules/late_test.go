package rules

import (
	"slices"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

// writtenUnbound turns a fixture into what the sensor writes when a call's telemetry arrives
// after the hold: its kernel lines unbound (binding none, no tool call), the call's
// agent.tool_call line, then, when records is set, one binding record per kernel line naming
// the fixture's call (sequences renumbered in write order).
func writtenUnbound(t *testing.T, fixture string, records bool) []*proto.Event {
	t.Helper()
	var out, kernel []*proto.Event
	for _, e := range readJSONL(t, fixture) {
		if e.Event.Dataset == "vigil.kernel" {
			e.GenAI.Tool, e.Vigil.Binding, e.Vigil.Confidence = nil, proto.BindingNone, ""
			kernel = append(kernel, e)
		}
		out = append(out, e)
	}
	for i, e := range out {
		e.Event.Sequence = uint64(i + 1)
	}
	if !records {
		return out
	}
	for _, k := range kernel {
		rec := &proto.Event{
			Timestamp: k.Timestamp,
			Event:     proto.EventMeta{Action: proto.ActionBinding, Kind: "event", Dataset: proto.DatasetCorrelate, Sequence: uint64(len(out) + 1)},
			GenAI: &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"}, Conversation: k.GenAI.Conversation,
				Tool: &proto.GenAITool{Name: "Bash", Call: &proto.GenAIToolCall{ID: fixtureCall}}},
			Process: &proto.Process{Pid: k.Process.Pid, EntityID: k.Process.EntityID},
			Vigil: proto.Vigil{Binds: &proto.Binds{Sequence: k.Event.Sequence}, Prompt: k.Vigil.Prompt,
				Correlation: proto.Correlation{Binding: proto.BindingCommand, Confidence: "medium"}},
		}
		out = append(out, rec)
	}
	return out
}

// TestLateBindingsAreJudgedAgain: a tool call whose kernel lines were written unbound raises
// its tool_call rule once the binding records arrive, on the call; an event rule that raised
// on a line as written does not raise again when the line is bound.
func TestLateBindingsAreJudgedAgain(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		// without and with are the alerts (rule id, and call id when on a call) without the
		// binding records and with them.
		without, with []string
	}{
		{"testdata/exfil.secret_read_and_egress_in_tool_call/positive.jsonl",
			[]string{"exfil.unexplained_secret_read_and_egress"},
			[]string{"exfil.unexplained_secret_read_and_egress", "exfil.secret_read_and_egress_in_tool_call " + fixtureCall}},
		{"testdata/deploy.kubectl_change_unapproved/positive.jsonl",
			nil, []string{"deploy.kubectl_change_unapproved " + fixtureCall}},
		{"testdata/cred.dotenv_read/positive.jsonl",
			[]string{"cred.dotenv_read"}, []string{"cred.dotenv_read"}},
	} {
		for _, records := range []bool{false, true} {
			d := NewDetector(loadPack(t), Options{})
			var got []string
			for _, a := range runAll(d, writtenUnbound(t, tc.fixture, records)) {
				id := a.Rule.ID
				if a.GenAI.Tool != nil {
					id += " " + a.GenAI.Tool.Call.ID
				}
				got = append(got, id)
			}
			want := tc.without
			if records {
				want = tc.with
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s, binding records %v: alerts %q, want %q", tc.fixture, records, got, want)
			}
			if st := d.Stats(); records != (st.Rejudged > 0) {
				t.Errorf("%s, binding records %v: %d lines judged again", tc.fixture, records, st.Rejudged)
			}
		}
	}
}
