package main

import (
	"slices"
	"strings"
	"testing"
)

// Every stdout line reaches agent_stdout.jsonl; only the named event's id is a session, and
// a session repeated by later events (or a resumed process) is recorded once.
func TestScanSessionEvents(t *testing.T) {
	out := `{"type":"thread.started","thread_id":"t1"}
not json
{"type":"turn.started","thread_id":"other"}
{"type":"thread.started","thread_id":"t1"}
{"type":"thread.started","thread_id":"t2"}
`
	var w strings.Builder
	meta := &Meta{}
	scanSessionEvents(strings.NewReader(out), &w, sessionEvent{typ: "thread.started", field: "thread_id"}, meta)
	if w.String() != out {
		t.Fatalf("copied %q", w.String())
	}
	if !slices.Equal(meta.Sessions, []string{"t1", "t2"}) {
		t.Fatalf("sessions %v", meta.Sessions)
	}
	// Without a type, any event with the field (opencode's sessionID).
	meta = &Meta{}
	scanSessionEvents(strings.NewReader(`{"type":"step_start","sessionID":"ses_1"}`+"\n"+`{"type":"tool_use","sessionID":"ses_1"}`+"\n"),
		&w, sessionEvent{field: "sessionID"}, meta)
	if !slices.Equal(meta.Sessions, []string{"ses_1"}) {
		t.Fatalf("sessions %v", meta.Sessions)
	}
}
