package proto

import "testing"

func TestJoinKeysSetEnv(t *testing.T) {
	var k JoinKeys
	for name, value := range map[string]string{
		"TRACEPARENT": "00-a-b-01", "CODEX_TOOL_CALL_ID": "call_1", "CLAUDE_CODE_SESSION_ID": "s1",
		"CODEX_SESSION_ID": "s2", "AI_AGENT": "x", "CLAUDECODE": "1",
	} {
		if !k.SetEnv(name, value) {
			t.Errorf("%s refused", name)
		}
	}
	want := JoinKeys{TraceParent: "00-a-b-01", CodexToolCallID: "call_1", ClaudeCodeSession: "s1", CodexSession: "s2", AIAgent: "x", ClaudeCode: "1"}
	if k != want {
		t.Errorf("got %+v", k)
	}
	for _, name := range []string{"PATH", "traceparent", "AWS_SECRET_ACCESS_KEY", "TRACEPARENT2", ""} {
		if k.SetEnv(name, "v") {
			t.Errorf("%s kept", name)
		}
	}
	if k != want {
		t.Errorf("a refused variable changed the keys: %+v", k)
	}
}
