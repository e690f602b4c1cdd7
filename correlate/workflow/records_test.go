package workflow

import (
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// TestBuildFromSessionRecords: a session record places its root's tree in the session from
// its time on, ahead of what the tree's kernel lines claim, and names the working directory.
func TestBuildFromSessionRecords(t *testing.T) {
	at := func(ms int) time.Time {
		return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
	}
	session := func(ms, root int, id, cwd string) *proto.Event {
		return proto.SessionRecord{Time: at(ms), Agent: agents.ClaudeCode, SessionID: id,
			Sender: proto.Sender{Pid: root, Name: "claude", Cwd: cwd, RootPid: root, Transport: "otlp_http"}}.Event()
	}
	kernel := func(ms, pid, root int, conversation string) *proto.Event {
		e := &proto.Event{Timestamp: at(ms), Event: proto.EventMeta{Action: proto.ActionExec, Kind: "event", Dataset: "vigil.kernel"},
			Process: &proto.Process{Pid: pid, EntityID: "e" + string(rune('0'+pid%10)), Name: "sh", Executable: "/bin/sh"},
			Vigil:   proto.Vigil{Root: &proto.Root{Pid: root}, Correlation: proto.Correlation{Binding: proto.BindingNone}}}
		if conversation != "" {
			e.GenAI = &proto.GenAI{Conversation: &proto.GenAIConversation{ID: conversation}}
		}
		return e
	}
	tests := []struct {
		name    string
		events  []*proto.Event
		want    map[string][]int // session → pids of its unexplained processes
		wantCwd map[string]string
	}{
		{"a tree without a session line of its own joins the record's session",
			[]*proto.Event{session(0, 10, "S", "/src/a"), kernel(100, 11, 10, "")},
			map[string][]int{"S": {11}}, map[string]string{"S": "/src/a"}},
		{"the record wins over a session a kernel line claims for the root",
			[]*proto.Event{kernel(0, 21, 20, "X"), session(10, 20, "Y", "/src/b"), kernel(100, 22, 20, "")},
			map[string][]int{"X": {21}, "Y": {22}}, map[string]string{"X": "", "Y": "/src/b"}},
		{"a resumed session: the later record takes the root's later lines",
			[]*proto.Event{session(0, 30, "S1", "/a"), kernel(50, 31, 30, ""), session(100, 30, "S2", "/a"), kernel(150, 32, 30, "")},
			map[string][]int{"S1": {31}, "S2": {32}}, map[string]string{"S1": "/a", "S2": "/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wfs := Build(tt.events, Options{})
			got := map[string][]int{}
			for _, w := range wfs {
				if w.Kind != KindSession {
					t.Errorf("workflow %s %q", w.Kind, w.Title)
					continue
				}
				for _, p := range w.Unexplained.Processes {
					got[w.SessionID] = append(got[w.SessionID], p.Pid)
				}
				if want, ok := tt.wantCwd[w.SessionID]; ok && w.WorkingDirectory != want {
					t.Errorf("%s: cwd %q, want %q", w.SessionID, w.WorkingDirectory, want)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("sessions %v, want %v", got, tt.want)
			}
			for id, pids := range tt.want {
				if len(got[id]) != len(pids) || got[id][0] != pids[0] {
					t.Errorf("%s: processes %v, want %v", id, got[id], pids)
				}
			}
		})
	}
}
