package proto

import "testing"

func TestJoinKeysSet(t *testing.T) {
	var k JoinKeys
	if !k.Empty() {
		t.Fatal("zero keys not empty")
	}
	for _, s := range []struct{ agent, role, value string }{
		{"", RoleTraceParent, "00-a-b-01"}, {"", RoleAgentName, "x"}, {"codex", RoleToolCall, "call_1"},
		{"claude-code", RoleSession, "s1"}, {"codex", RoleSession, "s2"}, {"claude-code", RoleMarker, "1"},
	} {
		if !k.Set(s.agent, s.role, s.value) {
			t.Errorf("%s refused", s.role)
		}
	}
	want := JoinKeys{TraceParent: "00-a-b-01", AgentName: "x", ToolCalls: map[string]string{"codex": "call_1"},
		Sessions: map[string]string{"claude-code": "s1", "codex": "s2"}, Markers: map[string]string{"claude-code": "1"}}
	if !k.Equal(&want) || k.Empty() {
		t.Errorf("got %+v", k)
	}
	if k.Set("codex", "password", "v") {
		t.Error("an unknown role was kept")
	}
	if got := k.SessionIDs(); len(got) != 2 || got[0] != "s1" || got[1] != "s2" {
		t.Errorf("sessions in agent order = %q", got)
	}
	if got := k.ToolCallIDs(); len(got) != 1 || got[0] != "call_1" {
		t.Errorf("tool calls = %q", got)
	}
	other := want
	other.Markers = map[string]string{"claude-code": "2"}
	if k.Equal(&other) {
		t.Error("different markers compare equal")
	}
	var none *JoinKeys
	if !none.Equal(&JoinKeys{}) || none.Equal(&want) {
		t.Error("nil keys equal only empty keys")
	}
}
