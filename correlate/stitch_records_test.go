package correlate

import (
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// TestStitchSessionRecords: a session record is written when a session is first seen from
// trusted telemetry, and again only when the session moves to another agent tree (resumed
// after its first tree exited); never for untrusted telemetry.
func TestStitchSessionRecords(t *testing.T) {
	const first, second, child = 50000, 51000, 51007
	type step struct {
		sender  int
		session string
		exitOld bool // the first tree has exited before this step
		want    []proto.SessionRecord
	}
	at := stAt("10:00:00")
	sender := func(pid, root int, cwd string) proto.Sender {
		return proto.Sender{Pid: pid, Name: "claude", Executable: "/opt/claude", Cwd: cwd, RootPid: root, Transport: "otlp_http"}
	}
	rec := func(session string, s proto.Sender) proto.SessionRecord {
		return proto.SessionRecord{Time: at, Agent: agents.ClaudeCode, SessionID: session, Sender: s, RootEntityID: stEntity(s.RootPid)}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first sight only", []step{
			{first, "s1", false, []proto.SessionRecord{rec("s1", sender(first, first, "/src/a"))}},
			{first, "s1", false, nil},
		}},
		{"two sessions of one tree", []step{
			{first, "s1", false, []proto.SessionRecord{rec("s1", sender(first, first, "/src/a"))}},
			{first, "s2", false, []proto.SessionRecord{rec("s2", sender(first, first, "/src/a"))}},
		}},
		{"a child sender names its tree's root", []step{
			{child, "s1", false, []proto.SessionRecord{rec("s1", sender(child, second, "/src/b"))}},
		}},
		{"another tree's claim while the owner lives is untrusted", []step{
			{first, "s1", false, []proto.SessionRecord{rec("s1", sender(first, first, "/src/a"))}},
			{second, "s1", false, nil},
		}},
		{"resumed in a new tree after the first exited", []step{
			{first, "s1", false, []proto.SessionRecord{rec("s1", sender(first, first, "/src/a"))}},
			{second, "s1", true, []proto.SessionRecord{rec("s1", sender(second, second, "/src/b"))}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			procs := map[int]sensor.ProcessInfo{
				first:  {Pid: first, Name: "claude", Executable: "/opt/claude", Cwd: "/src/a", RootPid: first, EntityID: stEntity(first)},
				second: {Pid: second, Name: "claude", Executable: "/opt/claude", Cwd: "/src/b", RootPid: second, EntityID: stEntity(second)},
				child:  {Pid: child, PPid: second, Name: "claude", Executable: "/opt/claude", Cwd: "/src/b", RootPid: second, EntityID: stEntity(child)},
			}
			s := NewStitcher(StitcherOptions{Lookup: func(pid int) (sensor.ProcessInfo, bool) { p, ok := procs[pid]; return p, ok }})
			for i, st := range tt.steps {
				if st.exitOld {
					p := procs[first]
					p.Exited = true
					procs[first] = p
				}
				s.AddTelemetry(TelemetryBatch{Transport: "otlp_http", SenderPid: st.sender, Events: []proto.AgentEvent{{
					Agent: agents.ClaudeCode, Kind: proto.KindUserPrompt, Time: at, SessionID: st.session, PromptID: "p",
				}}})
				var got []proto.SessionRecord
				for _, e := range s.Release(time.Now(), false) {
					if r, ok := proto.SessionRecordOf(e); ok {
						if e.Event.Dataset != proto.DatasetCorrelate {
							t.Errorf("session line in dataset %q", e.Event.Dataset)
						}
						got = append(got, r)
					}
				}
				if len(got) != len(st.want) {
					t.Fatalf("step %d: %d session records %+v, want %+v", i, len(got), got, st.want)
				}
				for j := range got {
					if got[j] != st.want[j] {
						t.Errorf("step %d:\n got  %+v\n want %+v", i, got[j], st.want[j])
					}
				}
			}
		})
	}
}

// TestStitchRecordLines: the prompt and tool-call lines the stitcher writes read back as the
// records the agent's telemetry describes.
func TestStitchRecordLines(t *testing.T) {
	s := NewStitcher(StitcherOptions{Lookup: stLookup})
	stAdd(s, stRun(t, "claude", stClaudePid, nil))
	var prompts []proto.PromptRecord
	calls := map[string]proto.ToolCallRecord{}
	for _, e := range s.Release(time.Now(), true) {
		if r, ok := proto.PromptRecordOf(e); ok {
			prompts = append(prompts, r)
		}
		if r, ok := proto.ToolCallRecordOf(e); ok {
			calls[r.CallID] = r
		}
	}
	sender := proto.Sender{Pid: stClaudePid, Name: "claude", Executable: stProcs[stClaudePid].Executable, Cwd: stClaudeRepo,
		RootPid: stClaudePid, Transport: "otlp_http"}
	if len(prompts) != 1 || prompts[0].PromptID != claudePrompt || prompts[0].SessionID != claudeSession || prompts[0].Sender != sender {
		t.Errorf("prompts %+v", prompts)
	}
	tests := []struct {
		call, tool, command, file string
	}{
		{stClaudeBash, "Bash", claudeBashCmd, ""},
		{stClaudeRead, "Read", "", stNotes},
		{stClaudeWrite, "Write", "", stOut},
		{stClaudeEdit, "Edit", "", stNotes},
	}
	for _, tt := range tests {
		c, ok := calls[tt.call]
		if !ok {
			t.Errorf("%s: no tool-call record", tt.call)
			continue
		}
		file := ""
		if len(c.FilePaths) > 0 {
			file = c.FilePaths[0]
		}
		if c.ToolName != tt.tool || c.Command != tt.command || file != tt.file || c.SessionID != claudeSession ||
			c.PromptID != claudePrompt || c.Decision == "" || c.DecisionSource == "" || c.Success == nil || c.Sender != sender {
			t.Errorf("%s: %+v", tt.call, c)
		}
	}
}
