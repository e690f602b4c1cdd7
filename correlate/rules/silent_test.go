package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// silentClock is the start of every silent-agent test's timeline.
var silentClock = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

// treeExec is an exec at second sec of an agent tree rooted at pid 1200 (entity root), by a
// process whose parent is ppid running parentExe, bound as binding says.
func treeExec(sec int, root string, ppid int, parentExe, binding string) *proto.Event {
	return &proto.Event{
		Timestamp: silentClock.Add(time.Duration(sec) * time.Second),
		Event:     proto.EventMeta{Action: proto.ActionExec, Outcome: proto.OutcomeSuccess, Kind: "event", Dataset: "vigil.kernel"},
		User:      &proto.User{ID: "1000", Name: "dev"},
		Process: &proto.Process{Pid: 5000 + sec, EntityID: "p" + itoa(uint64(sec)), Executable: "/usr/bin/bash", Args: []string{"bash", "-c", "git status"},
			WorkingDirectory: "/home/dev/app", Parent: &proto.ParentProcess{Pid: ppid, Executable: parentExe}},
		Vigil: proto.Vigil{Root: &proto.Root{Pid: 1200, EntityID: root}, Correlation: proto.Correlation{Binding: binding}},
	}
}

// rootExec is the agent's own exec line: its executable and working directory.
func rootExec(sec int, root string) *proto.Event {
	return &proto.Event{
		Timestamp: silentClock.Add(time.Duration(sec) * time.Second),
		Event:     proto.EventMeta{Action: proto.ActionExec, Outcome: proto.OutcomeSuccess, Kind: "event", Dataset: "vigil.kernel"},
		GenAI:     &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"}},
		Process: &proto.Process{Pid: 1200, EntityID: root, Executable: "/home/dev/.local/share/claude/versions/2.0.50",
			WorkingDirectory: "/home/dev/app", Parent: &proto.ParentProcess{Pid: 1100}},
		Vigil: proto.Vigil{Root: &proto.Root{Pid: 1200, EntityID: root}, Correlation: proto.Correlation{Binding: proto.BindingNone}},
	}
}

// telemetry is a trusted agent line from the tree's root at second sec.
func telemetry(sec int) *proto.Event {
	s := proto.Sender{Pid: 1200, Name: "claude", RootPid: 1200, Transport: "otlp_http"}
	return s.Line(proto.ActionAgentAPIRequest, "claude-code", "sess", "", silentClock.Add(time.Duration(sec)*time.Second))
}

const claudeExe = "/home/dev/.local/share/claude/versions/2.0.50"

func TestSilentAgent(t *testing.T) {
	none, bound := proto.BindingNone, proto.BindingTraceParent
	// work is an unexplained process start by the agent itself.
	work := func(sec int) *proto.Event { return treeExec(sec, "r1", 1200, claudeExe, none) }
	withTelemetry := func(upTo int) []*proto.Event {
		var out []*proto.Event
		for sec := 0; sec <= upTo; sec += 30 {
			out = append(out, telemetry(sec), work(sec+1))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		after time.Duration
		lines []*proto.Event
		// want is the second of the line that raises the alert and the start of its first
		// evidence item; -1: no alert.
		want    int
		wantWhy string
	}{
		{"no telemetry, working past the threshold", 120 * time.Second,
			[]*proto.Event{rootExec(0, "r1"), work(1), work(60), work(120), work(121), work(200)}, 121, "no trusted telemetry"},
		{"no telemetry, stops before the threshold", 120 * time.Second,
			[]*proto.Event{rootExec(0, "r1"), work(1), work(60), work(120)}, -1, ""},
		{"telemetry all along", 120 * time.Second, withTelemetry(300), -1, ""},
		{"telemetry stops mid-session", 120 * time.Second,
			append(withTelemetry(60), work(100), work(150), work(181), work(182)), 181, "the tree's telemetry stopped"},
		{"a long build bound to its tool call", 120 * time.Second,
			[]*proto.Event{telemetry(0), work(1), treeExec(10, "r1", 1200, claudeExe, bound), treeExec(300, "r1", 1200, claudeExe, bound)}, -1, ""},
		{"the build's own processes are not the agent's work", 120 * time.Second,
			[]*proto.Event{work(1), treeExec(130, "r1", 7000, "/usr/bin/make", none), treeExec(400, "r1", 7000, "/usr/bin/make", none)}, -1, ""},
		{"codex: its native binary under the node launcher starts the shells", 120 * time.Second,
			[]*proto.Event{treeExec(1, "r1", 1300, "/usr/lib/node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex", none),
				treeExec(125, "r1", 1300, "/usr/lib/node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex", none)}, 125, "no trusted telemetry"},
		{"a reused root pid is a new tree", 120 * time.Second,
			[]*proto.Event{work(1), treeExec(125, "r2", 1200, claudeExe, none)}, -1, ""},
		{"turned off", 0, []*proto.Event{work(1), work(500)}, -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDetector(loadPack(t), Options{SilentAfter: tc.after, AgentPrograms: []string{"claude", "codex"}})
			var got []*proto.Event
			for i, e := range tc.lines {
				e.Event.Sequence = uint64(i + 1)
				for _, a := range d.Observe(e) {
					if a.Rule.ID == SilentRule.ID {
						got = append(got, a)
					}
				}
			}
			if tc.want < 0 {
				if len(got) > 0 {
					t.Fatalf("raised %v", got[0].Vigil.Alert.Evidence)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("raised %d silent-agent alerts, want 1", len(got))
			}
			a := got[0]
			if at := int(a.Timestamp.Sub(silentClock) / time.Second); at != tc.want {
				t.Errorf("raised at second %d, want %d", at, tc.want)
			}
			if !strings.HasPrefix(a.Vigil.Alert.Evidence[0], tc.wantWhy) {
				t.Errorf("evidence %q, want it to start %q", a.Vigil.Alert.Evidence, tc.wantWhy)
			}
			if a.Vigil.Root == nil || a.Vigil.Root.Pid != 1200 || a.Vigil.Alert.Scope != "tree" || a.User == nil || a.User.Name != "dev" ||
				a.Process == nil || a.Process.WorkingDirectory != "/home/dev/app" || len(a.Vigil.Alert.Sequences) != 2 {
				t.Errorf("alert context: root %+v scope %q user %+v process %+v sequences %v", a.Vigil.Root, a.Vigil.Alert.Scope, a.User, a.Process, a.Vigil.Alert.Sequences)
			}
		})
	}
}

// TestSilentAgentNamesTheRoot: the alert names the root's executable from its own line, and
// from the parent of the work when the root's exec was not seen.
func TestSilentAgentNamesTheRoot(t *testing.T) {
	for name, lines := range map[string][]*proto.Event{
		"root seen":     {rootExec(0, "r1"), treeExec(1, "r1", 1200, claudeExe, proto.BindingNone), treeExec(121, "r1", 1200, claudeExe, proto.BindingNone)},
		"root not seen": {treeExec(1, "r1", 1200, claudeExe, proto.BindingNone), treeExec(121, "r1", 1200, claudeExe, proto.BindingNone)},
	} {
		d := NewDetector(loadPack(t), Options{SilentAfter: 120 * time.Second})
		var exes []string
		for _, e := range lines {
			for _, a := range d.Observe(e) {
				exes = append(exes, a.Process.Executable)
			}
		}
		if !slices.Equal(exes, []string{claudeExe}) {
			t.Errorf("%s: alerts name %q, want one naming %s", name, exes, claudeExe)
		}
	}
}

// TestSilentAgentHealth: Health counts a tree as silent from its alert until trusted
// telemetry names it again or its root exits, and only once Publish has copied it.
func TestSilentAgentHealth(t *testing.T) {
	work := func(sec int) *proto.Event { return treeExec(sec, "r1", 1200, claudeExe, proto.BindingNone) }
	rootExit := func(sec int) *proto.Event {
		e := rootExec(sec, "r1")
		e.Event.Action = proto.ActionExit
		return e
	}
	d := NewDetector(loadPack(t), Options{SilentAfter: 120 * time.Second, AgentPrograms: []string{"claude"}})
	seq := uint64(0)
	observe := func(lines ...*proto.Event) {
		for _, e := range lines {
			seq++
			e.Event.Sequence = seq
			d.Observe(e)
		}
	}
	silent := func() map[string]int {
		d.Publish()
		return d.Health().Silent
	}
	observe(rootExec(0, "r1"), work(1), work(60))
	if got := silent(); len(got) != 0 {
		t.Fatalf("silent before the threshold: %v", got)
	}
	observe(work(121))
	if h := d.Health(); len(h.Silent) != 0 {
		t.Errorf("Health before Publish = %v, want the last published (none)", h.Silent)
	}
	if got := silent(); got["claude-code"] != 1 || len(got) != 1 {
		t.Errorf("after the alert: silent %v, want claude-code: 1", got)
	}
	if h := d.Health(); h.Stats.Alerts == 0 {
		t.Errorf("published stats %+v, want the alert counted", h.Stats)
	}
	observe(telemetry(130))
	if got := silent(); len(got) != 0 {
		t.Errorf("after trusted telemetry: silent %v, want none", got)
	}

	// A second tree goes silent, then its root exits.
	d = NewDetector(loadPack(t), Options{SilentAfter: 120 * time.Second, AgentPrograms: []string{"claude"}})
	observe(rootExec(0, "r1"), work(1), work(125))
	if got := silent(); got["claude-code"] != 1 {
		t.Fatalf("silent %v, want claude-code: 1", got)
	}
	observe(rootExit(200))
	if got := silent(); len(got) != 0 {
		t.Errorf("after the root's exit: silent %v, want none", got)
	}
}
