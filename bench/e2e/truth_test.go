package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// straceTestdata parses a real strace record in testdata, which must parse without a bad line.
func straceTestdata(t *testing.T, name string) StraceLog {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log, err := parseStrace(f)
	if err != nil || len(log.Bad) != 0 {
		t.Fatalf("parse %s: %v %v", name, err, log.Bad)
	}
	return log
}

// rfc3339 is a time as calls.json and the records write it.
func rfc3339(s string) time.Time {
	tm, _ := time.Parse(time.RFC3339Nano, s)
	return tm
}

// callIDs are the ids of calls, in order.
func callIDs(calls []Call) []string {
	var ids []string
	for _, c := range calls {
		ids = append(ids, c.ID)
	}
	return ids
}

// A real record: Claude Code (pid 29004) runs Bash call vmark_0_1_ of the pipeline scenario
// (testdata/strace-claude-bash.txt: the agent's exec, then the call's whole subtree, while
// the background grandchild of the previous call, 0_0, forked before the excerpt, ends).
func TestBuildTruthRealBashCall(t *testing.T) {
	log := straceTestdata(t, "strace-claude-bash.txt")
	calls := []Call{{ID: "toolu_e2e_0_0", Prompt: 0, Turn: 0}, {ID: "toolu_e2e_0_1", Prompt: 0, Turn: 1}}
	tr := buildTruth([]StraceLog{log}, calls, "/var/cache/vigil-e2e/npm")
	if len(tr.Roots) != 1 || tr.Roots[0] != 29004 || len(tr.Ambiguous) != 0 {
		t.Fatalf("roots %v ambiguous %v", tr.Roots, tr.Ambiguous)
	}
	byCall, markers, kinds := map[string]int{}, 0, map[string]int{}
	for _, e := range tr.Events {
		switch {
		case e.Pid == 29004:
			if e.Call != "" || !e.Agent {
				t.Errorf("the agent's own event without a marker got a call: %+v", e)
			}
		case e.Pid == 29358: // 0_0's background cat, reading 0_0's .bg file
			if e.Call != "toolu_e2e_0_0" {
				t.Errorf("0_0's background grandchild: %+v", e)
			}
		case e.Pid == 29248 || e.Pid == 29250: // 0_1's tool shell and helper
			if e.Call != "toolu_e2e_0_1" {
				t.Errorf("an event of the call's subtree is not the call's: %+v", e)
			}
		}
		byCall[e.Call]++
		if e.Marker {
			markers++
		}
		if e.Call == "toolu_e2e_0_1" {
			kinds[e.Kind]++
		}
	}
	if len(byCall) != 3 {
		t.Errorf("calls: %v", byCall)
	}
	// The subtree: bash, the helper and its cat, setsid → sh → (sleep, cat of the .bg file),
	// the pipeline, subshells. Every process is forked and exits; the helper's files are opened.
	if byCall["toolu_e2e_0_1"] < 200 || kinds[sysFork] == 0 || kinds[sysFork] != kinds[sysExit] || kinds[sysExec] == 0 {
		t.Errorf("call's events %d, by kind %v", byCall["toolu_e2e_0_1"], kinds)
	}
	// Markers: the helper's exec, the kernel's open of the script it runs, its cat's
	// open of .txt, the background grandchild's exec args and open of .bg.
	if markers < 4 {
		t.Errorf("markers = %d", markers)
	}
}

// A real record, trimmed: Gemini CLI's parallel scenario (testdata/strace-gemini-parallel.txt:
// every fork, exec and exit, the opens of the tool shells' subtrees but their libraries', and
// of the agent's own processes only those of marked files). The supervisor R (18740, the
// .bin/gemini script, env, node) relaunches itself as the worker N (18882, node), which runs
// git rev-parse four times at startup, then two shells at once (setsid + bash -c '<wrapper>',
// 19156 for call 0_0 and 19164 for 0_1) and read_file 0_2 from its own threads.
func TestBuildTruthRealGeminiParallel(t *testing.T) {
	log := straceTestdata(t, "strace-gemini-parallel.txt")
	at := rfc3339
	issued, answered := at("2026-12-05T06:28:17.408757424Z"), at("2026-12-05T06:28:18.318867159Z")
	calls := []Call{
		{ID: "run_shell_command__gcall_e2e_0_0", Prompt: 0, Turn: 0, Issued: issued, Answered: answered},
		{ID: "run_shell_command__gcall_e2e_0_1", Prompt: 0, Turn: 1, Issued: issued, Answered: answered},
		{ID: "read_file__gcall_e2e_0_2", Prompt: 0, Turn: 2, Issued: issued, Answered: answered},
	}
	tr := buildTruth([]StraceLog{log}, calls, "/var/cache/vigil-e2e/npm")
	if len(tr.Roots) != 1 || tr.Roots[0] != 18740 || len(tr.Ambiguous) != 0 {
		t.Fatalf("roots %v ambiguous %v", tr.Roots, tr.Ambiguous)
	}
	git := map[int]bool{19064: true, 19077: true, 19090: true, 19093: true}
	byCall, markers := map[string]int{}, map[string]int{}
	for _, e := range tr.Events {
		switch {
		case e.Pid == 18740 || e.Pid == 18882:
			if !e.Agent {
				t.Errorf("R or N is not the agent's own: %+v", e)
			}
			if e.Call != "" && (e.Pid != 18882 || e.Kind != sysOpen || e.Call != "read_file__gcall_e2e_0_2") {
				t.Errorf("the agent's own event got a call: %+v", e)
			}
		case git[e.Pid]:
			if e.Agent || e.Call != "" {
				t.Errorf("N's startup git is a shell of no call: %+v", e)
			}
		case e.Pid == 19156 || e.Pid == 19164:
			if want := map[int]string{19156: calls[0].ID, 19164: calls[1].ID}[e.Pid]; e.Call != want {
				t.Errorf("shell %d: call %q, want %q", e.Pid, e.Call, want)
			}
		}
		byCall[e.Call]++
		if e.Marker {
			markers[e.Call]++
		}
	}
	// read_file: N's threads open the file twice, in-process (no process of the call's own).
	if byCall[calls[2].ID] != 2 || markers[calls[2].ID] != 2 {
		t.Errorf("read_file: %d events, %d markers", byCall[calls[2].ID], markers[calls[2].ID])
	}
	for _, c := range calls[:2] {
		if byCall[c.ID] < 30 || markers[c.ID] < 4 {
			t.Errorf("%s: %d events, %d markers", c.ID, byCall[c.ID], markers[c.ID])
		}
	}
}

// hand-made strace record for the scoring test: agent 100, whose tool shell 101 runs the
// helper of call 0_0 and a child 102; a later in-process open by the agent of call 0_1's
// file; an early agent open before any call.
const scoreStrace = `100 1000.000000 execve("/npm/node_modules/.bin/claude", ["claude"], 0x1 /* 1 vars */) = 0
100 1000.001000 openat(AT_FDCWD</repo>, "/etc/hostname", O_RDONLY) = 3</etc/hostname>
100 1000.010000 clone(child_stack=NULL, flags=SIGCHLD) = 101
101 1000.011000 execve("/bin/bash", ["bash", "-c", "./.e2e/vmark_0_0_; cat notes.txt"], 0x1 /* 1 vars */) = 0
101 1000.012000 clone(child_stack=NULL, flags=SIGCHLD) = 102
102 1000.013000 execve("./.e2e/vmark_0_0_", ["./.e2e/vmark_0_0_"], 0x1 /* 1 vars */) = 0
102 1000.014000 openat(AT_FDCWD</repo>, "notes.txt", O_RDONLY) = 3</repo/notes.txt>
102 1000.015000 openat(AT_FDCWD</repo>, "missing", O_RDONLY) = -1 ENOENT (No such file or directory)
102 1000.016000 +++ exited with 0 +++
101 1000.017000 +++ exited with 0 +++
100 1000.025000 openat(AT_FDCWD</repo>, "/repo/vmark_0_1_out.txt.tmp.100.abc", O_WRONLY|O_CREAT, 0644) = 4</repo/vmark_0_1_out.txt.tmp.100.abc>
100 1000.040000 openat(AT_FDCWD</repo>, "/repo/vmark_0_1_out.txt", O_RDONLY) = 4</repo/vmark_0_1_out.txt>
`

func TestScore(t *testing.T) {
	log, err := parseStrace(strings.NewReader(scoreStrace))
	if err != nil || len(log.Bad) != 0 {
		t.Fatal(err, log.Bad)
	}
	at := func(ms int) time.Time { return time.Unix(1000, int64(ms)*int64(time.Millisecond)) }
	calls := []Call{
		{ID: "c1", Tool: "Bash", Prompt: 0, Turn: 0, Command: "./.e2e/vmark_0_0_; cat notes.txt", Issued: at(5), Answered: at(20)},
		{ID: "c2", Tool: "Write", Prompt: 0, Turn: 1, Files: []string{"/repo/vmark_0_1_out.txt"}, Issued: at(21), Answered: at(30)},
	}
	truth := buildTruth([]StraceLog{log}, calls, "/npm")
	root := &proto.Root{Pid: 100}
	seq := uint64(0)
	ev := func(ms int, action string, pid int, file, call string) *proto.Event {
		seq++
		e := &proto.Event{Timestamp: at(ms), Event: proto.EventMeta{Action: action, Dataset: "vigil.kernel", Sequence: seq},
			Process: &proto.Process{Pid: pid, WorkingDirectory: "/repo"}, Vigil: proto.Vigil{Root: root}}
		if file != "" {
			e.File = &proto.File{Path: file}
			if file == "/repo/missing" {
				e.Event.Outcome = proto.OutcomeFailure
			}
		}
		if call != "" {
			e.GenAI = &proto.GenAI{Tool: &proto.GenAITool{Call: &proto.GenAIToolCall{ID: call}}}
			e.Vigil.Binding = "traceparent"
		}
		return e
	}
	events := []*proto.Event{
		ev(0, "exec", 100, "", ""),
		ev(1, "open", 100, "/etc/hostname", "c1"), // bound before any call: provably wrong
		ev(10, "fork", 101, "", "c1"),
		ev(11, "exec", 101, "", "c1"),
		ev(12, "fork", 102, "", "c1"),
		ev(13, "exec", 102, "", ""),                  // unbound marker
		ev(14, "open", 102, "/repo/notes.txt", "c2"), // wrong
		// the failed open of "missing" was not captured: missing
		ev(16, "exit", 102, "", "c1"),
		ev(17, "exit", 101, "", "c1"),
		ev(25, "open", 100, "/repo/vmark_0_1_out.txt.tmp.100.abc", "c2"), // in-process marker, right
		ev(40, "open", 100, "/repo/vmark_0_1_out.txt", ""),               // after the call: no truth
		ev(41, "open", 100, "/repo/never-recorded", ""),                  // extra
	}
	// A late binding record binds the unbound helper exec (sequence 6) to c1.
	late := &proto.Event{Event: proto.EventMeta{Action: proto.ActionBinding, Sequence: 100},
		GenAI: &proto.GenAI{Tool: &proto.GenAITool{Call: &proto.GenAIToolCall{ID: "c1"}}}, Vigil: proto.Vigil{Binds: &proto.Binds{Sequence: 6}, LateMs: 1500}}
	late.Vigil.Binding = "traceparent"
	sib := ev(5, "exec", 555, "", "c1")
	sib.Process.WorkingDirectory = "/sib"
	leak := ev(6, "exec", 556, "", "")
	leak.Vigil.Root = nil
	// A call forged through vigil hook that made it into the output, and a refused one.
	forged := &proto.Event{Event: proto.EventMeta{Action: proto.ActionAgentToolCall, Sequence: 101},
		GenAI: &proto.GenAI{Tool: &proto.GenAITool{Call: &proto.GenAIToolCall{ID: "forged"}}}}
	refused := &proto.Event{Event: proto.EventMeta{Action: proto.ActionAgentUntrusted, Sequence: 102},
		GenAI: &proto.GenAI{Tool: &proto.GenAITool{Call: &proto.GenAIToolCall{ID: "forged"}}}}
	events = append(events, late, sib, leak, forged, refused)

	res := ScenarioResult{StrongKeys: true}
	stream := []byte(`{"type":"user","message":{"content":[{"tool_use_id":"c1","type":"tool_result"}]}}` + "\n")
	sc := Scenario{Agent: "claude", Prompts: []Prompt{{Text: "x", Turns: []Turn{{}, {}}}}, Forged: []string{"forged"}}
	score(&res, sc, Meta{AgentPids: []int{100}, SiblingDir: "/sib", SiblingPid: 555}, calls, events, truth, stream)

	c1, c2 := res.Calls[0], res.Calls[1]
	// c1's truth: fork/exec/exit of 101 and 102, the helper exec, the two opens = 8 events.
	// The open bound before any call counts against c1 as bound elsewhere.
	if want := (Counts{Truth: 8, Missing: 1, Correct: 6, Wrong: 1, Markers: 1, MarkerCorrect: 1, BoundElsewhere: 1}); c1.Counts != want {
		t.Errorf("c1: %+v\nwant %+v", c1.Counts, want)
	}
	if c1.WrongTo["c2"] != 1 || !c1.InStream {
		t.Errorf("c1: wrong to %v, in stream %v", c1.WrongTo, c1.InStream)
	}
	if want := (Counts{Truth: 1, Correct: 1, Markers: 1, MarkerCorrect: 1, BoundElsewhere: 1}); c2.Counts != want {
		t.Errorf("c2: %+v\nwant %+v", c2.Counts, want)
	}
	if res.LateBindings != 1 || res.LateMsMax != 1500 {
		t.Errorf("late bindings %d max %d", res.LateBindings, res.LateMsMax)
	}
	// Provably wrong: the open before any call, the event bound to c2, the bound sibling.
	if res.ProvablyWrong != 3 || res.BoundBeforeCalls != 1 || res.BoundNoTruth != 1 {
		t.Errorf("provably wrong %d (before calls %d), bound without truth %d", res.ProvablyWrong, res.BoundBeforeCalls, res.BoundNoTruth)
	}
	if res.Forged != 1 || res.Untrusted != 1 {
		t.Errorf("forged %d untrusted %d, want 1 and 1", res.Forged, res.Untrusted)
	}
	if res.OutsideAgentTrees != 1 || res.SiblingEvents != 1 || res.AgentTreeEvents != 12 {
		t.Errorf("outside %d sibling %d tree %d", res.OutsideAgentTrees, res.SiblingEvents, res.AgentTreeEvents)
	}
	if c := res.Capture[sysOpen]; c != (Capture{Recorded: 5, Captured: 4, Missing: 1, Extra: 1}) {
		t.Errorf("open capture %+v", c)
	}
	res.gate()
	if res.Pass {
		t.Error("wrong bindings and a leak passed the gate")
	}
	md := (&Report{Scenarios: []ScenarioResult{res}}).markdown()
	if !strings.Contains(md, "| `c1` | Bash |") || !strings.Contains(md, "not captured pid=102") {
		t.Errorf("markdown lacks the call row or the missed event:\n%s", md)
	}
}

// A line no recorded event explains must not stop the pairing of the lines after it: 300
// recorded opens follow one the recorder did not see.
func TestPairEventsPastAnUnexplainedLine(t *testing.T) {
	var truth []TruthEvent
	kernel := []*proto.Event{{Event: proto.EventMeta{Action: "open", Sequence: 1},
		Process: &proto.Process{Pid: 7}, File: &proto.File{Path: "/unrecorded"}}}
	for i := range 300 {
		name := fmt.Sprintf("/f%d", i)
		truth = append(truth, TruthEvent{SysEvent: SysEvent{Kind: sysOpen, Path: name, FDPath: name, Time: time.Unix(1, int64(i))}, Pid: 7})
		kernel = append(kernel, &proto.Event{Event: proto.EventMeta{Action: "open", Sequence: uint64(i + 2)},
			Process: &proto.Process{Pid: 7}, File: &proto.File{Path: name}})
	}
	pairs, extra := pairEvents(truth, kernel)
	for i, p := range pairs {
		if p == nil || p.File.Path != truth[i].Path {
			t.Fatalf("recorded open %d paired with %+v", i, p)
		}
	}
	if len(extra) != 1 || extra[0].File.Path != "/unrecorded" {
		t.Fatalf("extra %v", extra)
	}
}

// A merged open line stands for its count of recorded opens: a thread that opened one file
// 5 times is written as the first open and a merged line of 4, and all 5 are paired.
func TestPairEventsMergedOpens(t *testing.T) {
	var truth []TruthEvent
	for i := range 5 {
		truth = append(truth, TruthEvent{SysEvent: SysEvent{Kind: sysOpen, Path: "/lock", FDPath: "/lock", Time: time.Unix(1, int64(i))}, Pid: 7})
	}
	kernel := []*proto.Event{
		{Event: proto.EventMeta{Action: "open", Sequence: 1}, Process: &proto.Process{Pid: 7}, File: &proto.File{Path: "/lock"}},
		{Event: proto.EventMeta{Action: "open", Sequence: 2}, Process: &proto.Process{Pid: 7}, File: &proto.File{Path: "/lock"},
			Vigil: proto.Vigil{Merged: &proto.Merged{Count: 4}}},
	}
	pairs, extra := pairEvents(truth, kernel)
	for i, p := range pairs {
		if p == nil {
			t.Errorf("recorded open %d not paired", i)
		}
	}
	if len(extra) != 0 {
		t.Errorf("%d extra lines", len(extra))
	}
}

// A merged line is written when its run ends, after the line of a later open of the same
// file by another thread: it pairs with the opens it stands for, by time, not by write order
// (Codex's threads reading their rollout file around the first tool call).
func TestPairEventsMergedLineWrittenLate(t *testing.T) {
	at := func(ns int64) time.Time { return time.Unix(1, ns) }
	var truth []TruthEvent
	for _, ns := range []int64{10, 20, 30} {
		truth = append(truth, TruthEvent{SysEvent: SysEvent{Kind: sysOpen, Path: "/rollout", FDPath: "/rollout", Time: at(ns)}, Pid: 7})
	}
	kernel := []*proto.Event{
		{Timestamp: at(10), Event: proto.EventMeta{Action: "open", Sequence: 1}, Process: &proto.Process{Pid: 7}, File: &proto.File{Path: "/rollout"}},
		{Timestamp: at(30), Event: proto.EventMeta{Action: "open", Sequence: 2}, Process: &proto.Process{Pid: 7}, File: &proto.File{Path: "/rollout"}},
		{Timestamp: at(20), Event: proto.EventMeta{Action: "open", Sequence: 3}, Process: &proto.Process{Pid: 7}, File: &proto.File{Path: "/rollout"},
			Vigil: proto.Vigil{Merged: &proto.Merged{Count: 1}}},
	}
	pairs, extra := pairEvents(truth, kernel)
	for i, p := range pairs {
		if p == nil || !p.Timestamp.Equal(truth[i].Time) {
			t.Errorf("recorded open at %d ns paired with %+v", truth[i].Time.Nanosecond(), p)
		}
	}
	if len(extra) != 0 {
		t.Errorf("%d extra lines", len(extra))
	}
}

// Alerts gate a scenario: one it does not call for is a false alert, one it calls for and
// does not get (on the expected tool call, when it names a turn) is a miss; both fail it, and
// the report says which.
func TestAlertsGateTheScenario(t *testing.T) {
	calls := []Call{{ID: "toolu_e2e_0_0", Prompt: 0, Turn: 0}, {ID: "toolu_e2e_0_1", Prompt: 0, Turn: 1}}
	for _, tc := range []struct {
		name    string
		hits    []AlertHit
		expect  []string
		pass    bool
		message string
	}{
		{"benign, none raised", nil, nil, true, ""},
		{"expected and raised", []AlertHit{{"cred.dotenv_read", "", 1}, {"cred.dotenv_read", "toolu_e2e_0_0", 1}}, []string{"cred.dotenv_read"}, true,
			"`cred.dotenv_read` ×1 on `toolu_e2e_0_0`"},
		{"false alert", []AlertHit{{"persistence.git_hook_written", "toolu_e2e_0_1", 11}}, nil, false,
			"false alert: persistence.git_hook_written raised 11 time(s) on call toolu_e2e_0_1"},
		{"missed alert", nil, []string{"cred.dotenv_read"}, false, "missed alert: cred.dotenv_read was not raised"},
		{"on the right call", []AlertHit{{"exfil.x", "toolu_e2e_0_1", 1}}, []string{"exfil.x@0.1"}, true, "`exfil.x@0.1` (`toolu_e2e_0_1`) met"},
		{"on the wrong call", []AlertHit{{"exfil.x", "toolu_e2e_0_0", 1}}, []string{"exfil.x@0.1"}, false,
			"missed alert: exfil.x@0.1 was raised 1 time(s), but not on the expected call toolu_e2e_0_1"},
		{"on no call", []AlertHit{{"exfil.x", "", 2}}, []string{"exfil.x@0.1"}, false, "but not on the expected call"},
		{"turn never issued", []AlertHit{{"exfil.x", "toolu_e2e_1_0", 1}}, []string{"exfil.x@1.0"}, false, "missed alert: exfil.x@1.0"},
		{"right and elsewhere", []AlertHit{{"exfil.x", "toolu_e2e_0_1", 1}, {"exfil.x", "toolu_e2e_0_0", 3}}, []string{"exfil.x@0.1"}, true, "met"},
	} {
		res := ScenarioResult{Agent: "claude", Name: "x", AlertHits: tc.hits, Alerts: hitsByRule(tc.hits), ExpectAlerts: tc.expect}
		res.Expectations, res.FalseAlerts = judgeAlerts(tc.expect, calls, tc.hits)
		res.gate()
		if res.Pass != tc.pass {
			t.Errorf("%s: pass %v, want %v (errors %v)", tc.name, res.Pass, tc.pass, res.Errors)
		}
		if md := (&Report{Scenarios: []ScenarioResult{res}}).markdown(); !strings.Contains(md, tc.message) {
			t.Errorf("%s: the report does not say %q:\n%s", tc.name, tc.message, md)
		}
	}
}

// The scoring of a Gemini run binds by Gemini's own call ids: on the real parallel record,
// lines bound to `<tool name>__<functionCall id>` are right, lines bound to the bare
// functionCall id are provably wrong, and lines of the startup git bound to a call are wrong
// for having happened before the mock handed out any call.
func TestScoreGeminiCallIDs(t *testing.T) {
	log := straceTestdata(t, "strace-gemini-parallel.txt")
	at := rfc3339
	issued, answered := at("2026-12-05T06:28:17.408757424Z"), at("2026-12-05T06:28:18.318867159Z")
	calls := []Call{
		{ID: "run_shell_command__gcall_e2e_0_0", Tool: "run_shell_command", Prompt: 0, Turn: 0, Issued: issued, Answered: answered},
		{ID: "run_shell_command__gcall_e2e_0_1", Tool: "run_shell_command", Prompt: 0, Turn: 1, Issued: issued, Answered: answered},
		{ID: "read_file__gcall_e2e_0_2", Tool: "read_file", Prompt: 0, Turn: 2, Issued: issued, Answered: answered},
	}
	truth := buildTruth([]StraceLog{log}, calls, "/var/cache/vigil-e2e/npm")
	git := map[int]bool{19064: true, 19077: true, 19090: true, 19093: true}
	// One Vigil line per recorded event, bound as a correlator might.
	var events []*proto.Event
	gitEvents := 0
	for i, te := range truth.Events {
		if te.Kind == sysExecFailed {
			continue
		}
		e := &proto.Event{Timestamp: te.Time, Event: proto.EventMeta{Action: te.Kind, Dataset: "vigil.kernel", Sequence: uint64(i + 1)},
			Process: &proto.Process{Pid: te.Pid}, Vigil: proto.Vigil{Root: &proto.Root{Pid: 18740}}}
		if te.Path != "" {
			e.File = &proto.File{Path: te.Path}
			if te.Failed {
				e.Event.Outcome = proto.OutcomeFailure
			}
		}
		if addr, ok := strings.CutPrefix(te.Peer, "unix:"); ok {
			e.Destination = &proto.Destination{Address: addr}
		}
		bind := ""
		switch {
		case git[te.Pid]:
			bind, gitEvents = calls[0].ID, gitEvents+1
		case te.Call == calls[1].ID:
			bind = "gcall_e2e_0_1" // the API's bare id, not Gemini's call id
		case te.Call != "":
			bind = te.Call
		}
		if bind != "" {
			e.GenAI = &proto.GenAI{Tool: &proto.GenAITool{Call: &proto.GenAIToolCall{ID: bind}}}
			e.Vigil.Binding = "span"
		}
		events = append(events, e)
	}
	res := ScenarioResult{StrongKeys: true}
	sc := Scenario{Agent: "gemini", Prompts: []Prompt{{Text: "x", Turns: []Turn{{}, {}, {}}}}}
	score(&res, sc, Meta{AgentPids: []int{18740}}, calls, events, truth, nil)
	c0, c1, c2 := res.Calls[0].Counts, res.Calls[1].Counts, res.Calls[2].Counts
	if c0.Truth == 0 || c0.Correct != c0.Truth || c2.Truth != 2 || c2.Correct != 2 || c2.MarkerCorrect != 2 {
		t.Errorf("right ids: 0_0 %+v, 0_2 %+v", c0, c2)
	}
	if c1.Truth == 0 || c1.Wrong != c1.Truth || c1.MarkerWrong != c1.Markers || res.Calls[1].WrongTo["gcall_e2e_0_1"] != c1.Truth {
		t.Errorf("bare id: %+v, wrong to %v", c1, res.Calls[1].WrongTo)
	}
	if gitEvents == 0 || res.BoundBeforeCalls != gitEvents || res.ProvablyWrong != c1.Truth+gitEvents {
		t.Errorf("provably wrong %d, before calls %d; want %d and %d", res.ProvablyWrong, res.BoundBeforeCalls, c1.Truth+gitEvents, gitEvents)
	}
	if cap := res.CaptureTotal; cap.Missing != 0 || cap.Extra != 0 {
		t.Errorf("capture: %+v", cap)
	}
}

// A real record, trimmed: Copilot CLI's parallel scenario (testdata/strace-copilot-parallel.txt:
// every fork, exec, exit and file mutation, the opens of the children but their libraries',
// and of the agent's own processes only those of marked files). The npm loader R (23976,
// .bin/copilot, node) spawns the native binary C (24003, comm MainThread), which does
// everything else: at startup git (24070, 24071, 24120), its sandbox probes (24074 tries
// lxc-ls, 24076 bwrap; neither is installed), pgrep -P C (24108) and the login-shell env
// snapshot (24169, bash -l with id and env); then the batch: two shells at once (setsid +
// /bin/bash --norc --noprofile -c '<command>', 24174 for call 0_0 and 24175 for 0_1), the view
// of 0_2 from its own threads, and its opens of each shell's helper (the command's paths) from
// its threads; git rev-parse after the calls (24190, 24254); the helpers' background cats
// (24302, 24303) after the calls.
func TestBuildTruthRealCopilotParallel(t *testing.T) {
	log := straceTestdata(t, "strace-copilot-parallel.txt")
	at := rfc3339
	answered := at("2026-12-05T06:45:12.120695754Z")
	calls := []Call{
		{ID: "call_copilot_e2e_0_0", Prompt: 0, Turn: 0, Issued: at("2026-12-05T06:45:11.937825603Z"), Answered: answered},
		{ID: "call_copilot_e2e_0_1", Prompt: 0, Turn: 1, Issued: at("2026-12-05T06:45:11.937829398Z"), Answered: answered},
		{ID: "call_copilot_e2e_0_2", Prompt: 0, Turn: 2, Issued: at("2026-12-05T06:45:11.937833644Z"), Answered: answered},
	}
	tr := buildTruth([]StraceLog{log}, calls, "/var/cache/vigil-e2e/npm")
	if len(tr.Roots) != 1 || tr.Roots[0] != 23976 || len(tr.Ambiguous) != 0 {
		t.Fatalf("roots %v ambiguous %v", tr.Roots, tr.Ambiguous)
	}
	noCall := map[int]string{24070: "git", 24071: "git", 24120: "git", 24190: "git", 24254: "git", 24074: "lxc-ls probe", 24076: "bwrap probe",
		24108: "pgrep", 24169: "env snapshot", 24172: "env snapshot", 24173: "env snapshot"}
	shell := map[int]string{24174: calls[0].ID, 24175: calls[1].ID, 24303: calls[0].ID, 24302: calls[1].ID}
	byCall, markers, agentCalls := map[string]int{}, map[string]int{}, map[string]int{}
	seen := map[int]bool{}
	for _, e := range tr.Events {
		seen[e.Pid] = true
		switch {
		case e.Pid == 23976 || e.Pid == 24003:
			if !e.Agent {
				t.Errorf("R or C is not the agent's own: %+v", e)
			}
			if e.Call != "" {
				if e.Pid != 24003 || e.Kind != sysOpen || !e.Marker {
					t.Errorf("the agent's own event got a call: %+v", e)
				}
				agentCalls[e.Call]++
			}
		case noCall[e.Pid] != "":
			if e.Agent || e.Call != "" {
				t.Errorf("%s (%d) is a helper of no call: agent %v call %q", noCall[e.Pid], e.Pid, e.Agent, e.Call)
			}
		case shell[e.Pid] != "":
			if e.Call != shell[e.Pid] {
				t.Errorf("shell %d: call %q, want %q", e.Pid, e.Call, shell[e.Pid])
			}
		}
		byCall[e.Call]++
		if e.Marker {
			markers[e.Call]++
		}
	}
	for p := range noCall {
		if !seen[p] {
			t.Errorf("pid %d (%s) not in the record", p, noCall[p])
		}
	}
	// view: one open by C's threads, in-process; each shell's helper opened twice by C (the
	// command's paths) while its call was out.
	if byCall[calls[2].ID] != 1 || markers[calls[2].ID] != 1 || agentCalls[calls[2].ID] != 1 {
		t.Errorf("view: %d events, %d markers", byCall[calls[2].ID], markers[calls[2].ID])
	}
	for _, c := range calls[:2] {
		if byCall[c.ID] < 30 || markers[c.ID] < 6 || agentCalls[c.ID] != 2 {
			t.Errorf("%s: %d events, %d markers, %d of C's", c.ID, byCall[c.ID], markers[c.ID], agentCalls[c.ID])
		}
	}
}

// The scoring of a Copilot run: on the real parallel record, lines bound to the mock's ids
// (Copilot's toolCallIds) are right; the startup git and the sandbox probes bound to a call
// are provably wrong (before any call); the git run after the calls bound to one is "bound,
// no truth", not provably wrong; the two shells bound to each other's ids are wrong.
func TestScoreCopilotCallIDs(t *testing.T) {
	log := straceTestdata(t, "strace-copilot-parallel.txt")
	at := rfc3339
	issued, answered := at("2026-12-05T06:45:11.937825603Z"), at("2026-12-05T06:45:12.120695754Z")
	calls := []Call{
		{ID: "call_copilot_e2e_0_0", Tool: "bash", Prompt: 0, Turn: 0, Issued: issued, Answered: answered},
		{ID: "call_copilot_e2e_0_1", Tool: "bash", Prompt: 0, Turn: 1, Issued: issued, Answered: answered},
		{ID: "call_copilot_e2e_0_2", Tool: "view", Prompt: 0, Turn: 2, Issued: issued, Answered: answered},
	}
	truth := buildTruth([]StraceLog{log}, calls, "/var/cache/vigil-e2e/npm")
	early := map[int]bool{24070: true, 24071: true, 24120: true, 24074: true, 24076: true}
	late := map[int]bool{24190: true, 24254: true}
	var events []*proto.Event
	earlyN, lateN := 0, 0
	for i, te := range truth.Events {
		if te.Kind == sysExecFailed {
			continue
		}
		e := &proto.Event{Timestamp: te.Time, Event: proto.EventMeta{Action: te.Kind, Dataset: "vigil.kernel", Sequence: uint64(i + 1)},
			Process: &proto.Process{Pid: te.Pid}, Vigil: proto.Vigil{Root: &proto.Root{Pid: 23976}}}
		if te.Path != "" {
			e.File = &proto.File{Path: te.Path}
			if te.Failed {
				e.Event.Outcome = proto.OutcomeFailure
			}
		}
		if addr, ok := strings.CutPrefix(te.Peer, "unix:"); ok {
			e.Destination = &proto.Destination{Address: addr}
		} else if host, port, ok := strings.Cut(te.Peer, ":"); ok { // the mock and the OTLP receiver
			p, _ := strconv.Atoi(port)
			e.Destination = &proto.Destination{IP: host, Port: p}
		}
		bind := ""
		switch {
		case early[te.Pid]:
			bind, earlyN = calls[0].ID, earlyN+1
		case late[te.Pid]:
			bind, lateN = calls[1].ID, lateN+1
		case te.Call == calls[0].ID:
			bind = calls[1].ID // the other shell's id
		case te.Call != "":
			bind = te.Call
		}
		if bind != "" {
			e.GenAI = &proto.GenAI{Tool: &proto.GenAITool{Call: &proto.GenAIToolCall{ID: bind}}}
			e.Vigil.Binding = "span"
		}
		events = append(events, e)
	}
	res := ScenarioResult{StrongKeys: true}
	sc := Scenario{Agent: "copilot", Prompts: []Prompt{{Text: "x", Turns: []Turn{{}, {}, {}}}}}
	score(&res, sc, Meta{AgentPids: []int{23976}}, calls, events, truth, nil)
	c0, c1, c2 := res.Calls[0].Counts, res.Calls[1].Counts, res.Calls[2].Counts
	if c1.Truth == 0 || c1.Correct != c1.Truth || c2.Truth != 1 || c2.Correct != 1 || c2.MarkerCorrect != 1 {
		t.Errorf("right ids: 0_1 %+v, 0_2 %+v", c1, c2)
	}
	if c0.Truth == 0 || c0.Wrong != c0.Truth || res.Calls[0].WrongTo[calls[1].ID] != c0.Truth {
		t.Errorf("other shell's id: %+v, wrong to %v", c0, res.Calls[0].WrongTo)
	}
	if earlyN == 0 || lateN == 0 || res.BoundBeforeCalls != earlyN || res.BoundNoTruth != earlyN+lateN || res.ProvablyWrong != c0.Truth+earlyN {
		t.Errorf("provably wrong %d, before calls %d, no truth %d; want %d, %d, %d", res.ProvablyWrong, res.BoundBeforeCalls, res.BoundNoTruth,
			c0.Truth+earlyN, earlyN, earlyN+lateN)
	}
	if cap := res.CaptureTotal; cap.Missing != 0 || cap.Extra != 0 {
		t.Errorf("capture: %+v", cap)
	}
}
