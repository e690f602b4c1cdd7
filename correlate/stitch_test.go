package correlate

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Processes and ids of the sample runs (correlate/testdata; the pids and times of the kernel
// side come from the same runs' research/agents/samples/{claude,codex}/process_tree.txt and
// strace_key_lines.txt).
const (
	stClaudePid      = 31206              // claude: root of its tree and OTLP sender
	stClaudeExecSpan = "f5073e731e969e92" // claude_code.tool.execution span of the Bash call
	stClaudeBash     = "toolu_mock_0_0001"
	stClaudeRead     = "toolu_mock_1_0004"
	stClaudeWrite    = "toolu_mock_2_0007"
	stClaudeEdit     = "toolu_mock_3_0010"
	stClaudeRepo     = stWork + "/runs/claude-final/repo"
	stClaudeSnapshot = stWork + "/runs/claude-final/home/.claude/shell-snapshots/snapshot-bash-1795346741091-9mvwjd.sh"

	stCodexRoot  = 24622 // codex (the node wrapper): root of its tree
	stCodexPid   = 24688 // the native codex: OTLP sender, apply_patch opens
	stCodexExec  = "call_exec_command_1"
	stCodexPatch = "call_patch_3"
	stCodexRepo  = stWork + "/runs/codex-final/repo"

	// stWork replaces the $WORK placeholder the research scripts wrote into the samples: the
	// real paths were absolute.
	stWork = "/srv/work"

	stUnknownPid  = 6666 // no process the kernel knows
	stOutsidePid  = 4242 // a process the kernel knows, outside every agent tree
	stGitHubToken = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
)

var (
	stClaudeTraceParent = "00-" + claudeTrace + "-" + stClaudeExecSpan + "-01"
	stNotes             = stPath(claudeNotes)
	stOut               = stPath(claudeOut)
)

func stPath(p string) string { return strings.ReplaceAll(p, "$WORK", stWork) }

// stProcs is the fake process table behind Lookup.
var stProcs = map[int]sensor.ProcessInfo{
	stClaudePid: {Pid: stClaudePid, Name: "claude", Executable: "$AGENTS/node_modules/@anthropic-ai/claude-code/bin/claude.exe",
		Cwd: stClaudeRepo, RootPid: stClaudePid, Agent: agents.ClaudeCode},
	stCodexRoot: {Pid: stCodexRoot, Name: "node", Cwd: stCodexRepo, RootPid: stCodexRoot, Agent: agents.Codex},
	stCodexPid: {Pid: stCodexPid, PPid: stCodexRoot, Name: "codex", Cwd: stCodexRepo, RootPid: stCodexRoot,
		Executable: "$AGENTS/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex", Agent: agents.Codex},
	stOutsidePid: {Pid: stOutsidePid, Name: "python3", RootPid: 0},
}

func stLookup(pid int) (sensor.ProcessInfo, bool) {
	p, ok := stProcs[pid]
	return p, ok
}

// stAt is a wall-clock time of the sample runs' day (both ran on 2026-11-22, UTC).
func stAt(clock string) time.Time { return ts("2026-11-22T" + clock + "Z") }

// stRun decodes and adapts every payload of a sample run in file order, one batch per payload
// as the OTLP receiver would hand them over, all from sender pid.
func stRun(t testing.TB, agent string, pid int, keep func(file string) bool) []TelemetryBatch {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", agent, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no %s samples", agent)
	}
	var out []TelemetryBatch
	for _, f := range files {
		name := filepath.Base(f)
		if keep != nil && !keep(name) {
			continue
		}
		evs, _ := adaptFile(t, name, ContentTypeJSON, readSample(t, filepath.Join(agent, name)))
		for i := range evs {
			if evs[i].FilePaths != nil {
				evs[i].FilePaths = slices.Clone(evs[i].FilePaths)
				for j, f := range evs[i].FilePaths {
					evs[i].FilePaths[j] = stPath(f)
				}
			}
		}
		out = append(out, TelemetryBatch{Events: evs, Transport: "otlp_http", SenderPid: pid})
	}
	return out
}

func stAdd(s *Stitcher, batches []TelemetryBatch) {
	for _, b := range batches {
		s.AddTelemetry(b)
	}
}

// kev is a kernel event as the eBPF source and the process table hand it to the stage: the
// process with its entity id, parent entity id, redacted argv, cwd, root and inherited join
// keys.
type kev struct {
	action    string
	pid, ppid int
	root      int // 0: not in an agent tree
	at        string
	args      []string
	cwd       string
	path      string // open
	join      *proto.JoinKeys
	mergedTo  string // open: a merged line (vigil.merged) whose repeats run from at to this
}

func stEntity(pid int) string { return fmt.Sprintf("ent-%d", pid) }

func (k kev) event() *proto.Event {
	e := &proto.Event{
		Event: proto.EventMeta{Action: k.action, Kind: "event", Category: "process", Dataset: "vigil.kernel"},
		Process: &proto.Process{
			Pid: k.pid, EntityID: stEntity(k.pid), Args: sensor.RedactArgs(k.args), WorkingDirectory: k.cwd,
		},
		Vigil: proto.Vigil{Schema: proto.SchemaVersion, Source: "ebpf", Join: k.join},
	}
	if k.at != "" {
		e.Timestamp = stAt(k.at)
	}
	if len(k.args) > 0 {
		e.Process.Name = filepath.Base(k.args[0])
	}
	if k.ppid != 0 {
		e.Process.Parent = &proto.ParentProcess{Pid: k.ppid, EntityID: stEntity(k.ppid)}
	}
	if k.root != 0 {
		e.Vigil.Root = &proto.Root{Pid: k.root, EntityID: stEntity(k.root)}
	}
	if k.action == proto.ActionOpen {
		e.Event.Category = "file"
		e.File = &proto.File{Path: k.path, Access: "write", Flags: "O_WRONLY|O_CREAT|O_EXCL"}
	}
	if k.mergedTo != "" {
		e.Vigil.Merged = &proto.Merged{Count: 10, First: e.Timestamp.Format(proto.TimeLayout), Last: stAt(k.mergedTo).Format(proto.TimeLayout)}
	}
	return e
}

// stRelease splits what Release returned into kernel events and agent lines; the
// correlator's own records (vigil.correlate) are left out.
func stRelease(s *Stitcher, now time.Time, all bool) (kernel, agent []*proto.Event) {
	for _, e := range s.Release(now, all) {
		switch e.Event.Dataset {
		case "vigil.agent":
			agent = append(agent, e)
		case proto.DatasetCorrelate:
		default:
			kernel = append(kernel, e)
		}
	}
	return kernel, agent
}

// bound is what the stitcher wrote on a kernel event.
type bound struct {
	binding, confidence, call, tool, conversation, prompt string
}

func boundOf(e *proto.Event) bound {
	b := bound{binding: e.Vigil.Binding, confidence: e.Vigil.Confidence}
	if g := e.GenAI; g != nil {
		if g.Tool != nil {
			b.tool = g.Tool.Name
			if g.Tool.Call != nil {
				b.call = g.Tool.Call.ID
			}
		}
		if g.Conversation != nil {
			b.conversation = g.Conversation.ID
		}
	}
	if e.Vigil.Prompt != nil {
		b.prompt = e.Vigil.Prompt.ID
	}
	return b
}

// stRow is one kernel event of a scenario and what it must be bound to.
type stRow struct {
	name string
	ev   kev
	want bound
}

// stScenario pushes the rows' events and the telemetry (before or after the events: the
// hold exists for telemetry that lands late), releases everything and checks each event.
func stScenario(t *testing.T, rows []stRow, telemetry []TelemetryBatch, late bool) *Stitcher {
	t.Helper()
	return stScenarioWith(t, StitcherOptions{Lookup: stLookup}, rows, telemetry, late)
}

// stScenarioWith is stScenario with a stitcher of options o.
func stScenarioWith(t *testing.T, o StitcherOptions, rows []stRow, telemetry []TelemetryBatch, late bool) *Stitcher {
	t.Helper()
	s := NewStitcher(o)
	if !late {
		stAdd(s, telemetry)
	}
	pushed := make([]*proto.Event, len(rows))
	for i, r := range rows {
		pushed[i] = r.ev.event()
		s.Push(pushed[i])
	}
	if late {
		stAdd(s, telemetry)
	}
	kernel, _ := stRelease(s, time.Now(), true)
	if len(kernel) != len(rows) {
		t.Fatalf("released %d kernel events, pushed %d", len(kernel), len(rows))
	}
	wantBindings := map[string]uint64{}
	for i, r := range rows {
		if kernel[i] != pushed[i] {
			t.Errorf("%s: released out of push order", r.name)
			continue
		}
		if got := boundOf(kernel[i]); got != r.want {
			t.Errorf("%s:\n got  %+v\n want %+v", r.name, got, r.want)
		}
		if r.want.binding != "" {
			wantBindings[r.want.binding]++
		}
	}
	if got := s.Stats().Bindings; !maps.Equal(got, wantBindings) {
		t.Errorf("Stats().Bindings %v, want %v", got, wantBindings)
	}
	return s
}

func claudeJoin(traceParent string) *proto.JoinKeys {
	return agents.JoinKeysOf("TRACEPARENT="+traceParent, "CLAUDE_CODE_SESSION_ID="+claudeSession,
		"AI_AGENT=claude-code_2-1-197_agent", "CLAUDECODE=1")
}

// stClaudeShellArgv is the Bash tool's shell as Claude runs it: the command inside eval '...'
// with ' written as '"'"'.
func stClaudeShellArgv(cmd string) []string {
	return []string{"/bin/bash", "-c", "source " + stClaudeSnapshot + " 2>/dev/null || true && shopt -u extglob 2>/dev/null || true && eval '" +
		strings.ReplaceAll(cmd, "'", `'"'"'`) + "' < /dev/null && pwd -P >| /tmp/claude-5c1a-cwd"}
}

// stClaudeRows are kernel events of the Claude sample run and what each must be bound to
// once all of the run's telemetry is known.
func stClaudeRows() []stRow {
	inBash := func(how, conf string) bound {
		return bound{how, conf, stClaudeBash, "Bash", claudeSession, claudePrompt}
	}
	byFile := func(id, tool string) bound {
		return bound{proto.BindingFilePath, "medium", id, tool, claudeSession, claudePrompt}
	}
	session := func(prompt string) bound { return bound{proto.BindingNone, "", "", "", claudeSession, prompt} }
	rows := []stRow{
		{"pre-prompt open by claude: session only", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:39.900",
			cwd: stClaudeRepo, path: stClaudeRepo + "/.claude/settings.local.json"}, session("")},
		{"snapshot shell, no keys, only the Bash call running", kev{action: proto.ActionExec, pid: 31283, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.084924",
			args: []string{"/bin/bash", "-c", "env"}, cwd: stClaudeRepo}, inBash(proto.BindingWindow, "low")},
		{"Bash shell with TRACEPARENT", kev{action: proto.ActionExec, pid: 31292, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.323068",
			args: stClaudeShellArgv(claudeBashCmd), cwd: stClaudeRepo, join: claudeJoin(stClaudeTraceParent)}, inBash(proto.BindingTraceParent, "high")},
		{"shell child fork, no keys", kev{action: proto.ActionFork, pid: 31293, ppid: 31292, root: stClaudePid, at: "11:25:41.361703", cwd: stClaudeRepo},
			inBash(proto.BindingTraceParent, "high")},
		{"shell child exec readlink, no keys", kev{action: proto.ActionExec, pid: 31294, ppid: 31292, root: stClaudePid, at: "11:25:41.367902",
			args: []string{"readlink", "/proc/31292/fd/0", "/proc/31292/fd/1", "/proc/31292/fd/2"}, cwd: stClaudeRepo}, inBash(proto.BindingTraceParent, "high")},
		{"subshell fork", kev{action: proto.ActionFork, pid: 31297, ppid: 31292, root: stClaudePid, at: "11:25:41.456479", cwd: stClaudeRepo},
			inBash(proto.BindingTraceParent, "high")},
		{"grandchild exec ugrep, no keys", kev{action: proto.ActionExec, pid: 31299, ppid: 31297, root: stClaudePid, at: "11:25:41.468570",
			args: []string{"ugrep", "-G", "-E", "^(CLAUDE|OTEL_)"}, cwd: stClaudeRepo}, inBash(proto.BindingTraceParent, "high")},
		{"shell without TRACEPARENT, eval-quoted command in argv", kev{action: proto.ActionExec, pid: 50001, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.400",
			args: stClaudeShellArgv(claudeBashCmd), cwd: stClaudeRepo, join: claudeJoin("")}, inBash(proto.BindingCommand, "medium")},
		{"cat with the full command verbatim in argv", kev{action: proto.ActionExec, pid: 50002, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.500",
			args: []string{"/bin/sh", "-c", claudeBashCmd}, cwd: stClaudeRepo}, inBash(proto.BindingCommand, "medium")},
		{"process outside every agent tree", kev{action: proto.ActionExec, pid: 60000, ppid: 1, at: "11:25:41.400", args: []string{"/bin/bash", "-c", claudeBashCmd}},
			bound{binding: proto.BindingNone}},
		{"Read: claude opens notes.txt", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:42.600",
			cwd: stClaudeRepo, path: stNotes}, byFile(stClaudeRead, "Read")},
		{"Write: claude opens out.txt.tmp.<pid>.<hex>", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:43.743645",
			cwd: stClaudeRepo, path: stOut + ".tmp.31206.09bd5289bf29"}, byFile(stClaudeWrite, "Write")},
		{"Write: claude opens out.txt", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:43.750915",
			cwd: stClaudeRepo, path: stOut}, byFile(stClaudeWrite, "Write")},
		{"Edit: claude opens notes.txt.tmp.<pid>.<hex>", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:44.661442",
			cwd: stClaudeRepo, path: stNotes + ".tmp.31206.eaf26c242b19"}, byFile(stClaudeEdit, "Edit")},
		{"claude opens out.txt outside every window", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:45.300",
			cwd: stClaudeRepo, path: stOut}, session(claudePrompt)},
		{"claude's child after every window, no keys", kev{action: proto.ActionExec, pid: 50003, ppid: stClaudePid, root: stClaudePid, at: "11:25:45.500",
			args: []string{"/usr/bin/git", "--no-optional-locks", "status", "--short"}, cwd: stClaudeRepo}, session(claudePrompt)},
		{"TRACEPARENT of no tool span, after every window", kev{action: proto.ActionExec, pid: 50004, ppid: stClaudePid, root: stClaudePid, at: "11:25:45.600",
			args: []string{"true"}, join: claudeJoin("00-" + claudeTrace + "-3b7a535e0b6f92ff-01")}, session(claudePrompt)},
	}
	return rows
}

func TestStitchClaudeSample(t *testing.T) {
	rows := stClaudeRows()
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late=%v", late), func(t *testing.T) {
			stScenario(t, rows, stRun(t, "claude", stClaudePid, nil), late)
		})
	}
}

func codexJoin(call string) *proto.JoinKeys {
	return agents.JoinKeysOf("CODEX_TOOL_CALL_ID="+call, "CODEX_SESSION_ID="+codexSession)
}

// stCodexRows are kernel events of the Codex sample run and what each must be bound to once
// the telemetry is known; prompt is the id its lines carry.
func stCodexRows(prompt string) []stRow {
	inExec := bound{proto.BindingEnvCallID, "high", stCodexExec, "exec_command", codexSession, prompt}
	inPatch := func(how, conf string) bound {
		return bound{how, conf, stCodexPatch, "apply_patch", codexSession, prompt}
	}
	return []stRow{
		{"process setup exec with CODEX_TOOL_CALL_ID", kev{action: proto.ActionExec, pid: 24917, ppid: stCodexPid, root: stCodexRoot, at: "11:25:14.023",
			args: []string{"/proc/self/exe", "--codex-run-as-process-setup", "3", "24688"}, cwd: stCodexRepo, join: codexJoin(stCodexExec)}, inExec},
		{"its shell exec", kev{action: proto.ActionExec, pid: 24917, ppid: stCodexPid, root: stCodexRoot, at: "11:25:14.046019",
			args: []string{"/bin/bash", "-c", codexExecCmd}, cwd: stCodexRepo, join: codexJoin(stCodexExec)}, inExec},
		{"shell child with the inherited key", kev{action: proto.ActionExec, pid: 24925, ppid: 24917, root: stCodexRoot, at: "11:25:14.090",
			args: []string{"cat", "notes.txt"}, cwd: stCodexRepo, join: codexJoin(stCodexExec)}, inExec},
		{"shell child fork without keys", kev{action: proto.ActionFork, pid: 24926, ppid: 24917, root: stCodexRoot, at: "11:25:14.100", cwd: stCodexRepo}, inExec},
		{"apply_patch: codex opens out.txt", kev{action: proto.ActionOpen, pid: stCodexPid, ppid: stCodexRoot, root: stCodexRoot, at: "11:25:14.627581",
			cwd: stCodexRepo, path: stCodexRepo + "/out.txt"}, inPatch(proto.BindingFilePath, "medium")},
		{"apply_patch: codex opens notes.txt", kev{action: proto.ActionOpen, pid: stCodexPid, ppid: stCodexRoot, root: stCodexRoot, at: "11:25:14.628827",
			cwd: stCodexRepo, path: stCodexRepo + "/notes.txt"}, inPatch(proto.BindingFilePath, "medium")},
		{"a tree process without keys, only apply_patch running", kev{action: proto.ActionExec, pid: 24999, ppid: stCodexPid, root: stCodexRoot, at: "11:25:14.650",
			args: []string{"/usr/bin/git", "status"}, cwd: stCodexRepo}, inPatch(proto.BindingWindow, "low")},
		{"codex opens out.txt after the turn", kev{action: proto.ActionOpen, pid: stCodexPid, ppid: stCodexRoot, root: stCodexRoot, at: "11:25:15.500",
			cwd: stCodexRepo, path: stCodexRepo + "/out.txt"}, bound{proto.BindingNone, "", "", "", codexSession, prompt}},
	}
}

func TestStitchCodexSample(t *testing.T) {
	rows := stCodexRows
	isLogs := func(f string) bool { return strings.Contains(f, "logs") }
	tests := []struct {
		name   string
		keep   func(string) bool
		prompt string
	}{
		// run_turn (0004_traces) maps the turn's trace id to the turn id.
		{"all payloads", nil, codexTurn},
		// Tool spans (0002_traces) carry turn_id too.
		{"before run_turn", func(f string) bool { return f != "0004_traces.json" }, codexTurn},
		// Without spans the logs' trace id is all there is.
		{"logs only", isLogs, codexTrace},
	}
	for _, tt := range tests {
		for _, late := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/late=%v", tt.name, late), func(t *testing.T) {
				stScenario(t, rows(tt.prompt), stRun(t, "codex", stCodexPid, tt.keep), late)
			})
		}
	}
}

// TestStitchTelemetryOrder: the same telemetry in any batch order gives the same bindings
// (a call's window is the union of what its decision, result and spans say).
func TestStitchTelemetryOrder(t *testing.T) {
	for _, agent := range []string{"claude", "codex"} {
		pid := map[string]int{"claude": stClaudePid, "codex": stCodexPid}[agent]
		root := map[string]int{"claude": stClaudePid, "codex": stCodexRoot}[agent]
		var results [][]bound
		for _, reverse := range []bool{false, true} {
			batches := stRun(t, agent, pid, nil)
			if reverse {
				slices.Reverse(batches)
			}
			s := NewStitcher(StitcherOptions{Lookup: stLookup})
			stAdd(s, batches)
			// A tree process without keys every 10 ms across the run.
			start := map[string]string{"claude": "11:25:39.900", "codex": "11:25:13.600"}[agent]
			var got []bound
			for i := range 600 {
				e := kev{action: proto.ActionExec, pid: 70000 + i, ppid: pid, root: root, args: []string{"true"}}.event()
				e.Timestamp = stAt(start).Add(time.Duration(i) * 10 * time.Millisecond)
				s.Push(e)
			}
			kernel, _ := stRelease(s, time.Now(), true)
			for _, e := range kernel {
				got = append(got, boundOf(e))
			}
			results = append(results, got)
		}
		for i := range results[0] {
			if results[0][i] != results[1][i] {
				t.Errorf("%s: event %d bound %+v in file order, %+v in reverse order", agent, i, results[0][i], results[1][i])
			}
		}
	}
}

// stSynth builds a synthetic agent event of the Claude sample session.
func stSynth(kind, at string, f func(*proto.AgentEvent)) proto.AgentEvent {
	ae := proto.AgentEvent{Agent: agents.ClaudeCode, Kind: kind, Time: stAt(at), SessionID: claudeSession,
		PromptID: claudePrompt, TraceID: claudeTrace}
	if f != nil {
		f(&ae)
	}
	return ae
}

func TestStitchWindow(t *testing.T) {
	// A parallel Grep call of the same prompt (synthetic), overlapping the real Bash call.
	parallel := TelemetryBatch{Transport: "otlp_http", SenderPid: stClaudePid, Events: []proto.AgentEvent{
		stSynth(proto.KindToolDecision, "11:25:41.300", func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Decision, ae.DecisionSource = "Grep", "toolu_par_1", "accept", "config"
		}),
		stSynth(proto.KindToolResult, "11:25:41.400", func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Success, ae.DurationMs = "Grep", "toolu_par_1", boolp(true), 100
		}),
	}}
	tree := func(pid int, at string) kev {
		return kev{action: proto.ActionExec, pid: pid, ppid: stClaudePid, root: stClaudePid, at: at, args: []string{"/usr/bin/id", "-u"}, cwd: stClaudeRepo}
	}
	bash := bound{proto.BindingWindow, "low", stClaudeBash, "Bash", claudeSession, claudePrompt}
	none := bound{proto.BindingNone, "", "", "", claudeSession, claudePrompt}
	rows := []stRow{
		{"only Bash running", tree(80001, "11:25:41.200"), bash},
		{"Bash and Grep running", tree(80002, "11:25:41.350"), none},
		{"Grep window start (slack)", tree(80003, "11:25:41.251"), none},
		{"after Grep ended (slack)", tree(80004, "11:25:41.451"), bash},
		{"Bash window end (slack)", tree(80005, "11:25:41.655"), bash},
		{"after Bash ended", tree(80006, "11:25:41.700"), none},
		{"the agent's own process is never window-bound", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid,
			at: "11:25:41.200", path: "/etc/hosts", cwd: stClaudeRepo}, none},
		{"nor the root", kev{action: proto.ActionExec, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:41.200",
			args: []string{"claude"}, cwd: stClaudeRepo}, none},
		{"the command still binds inside overlapping windows", kev{action: proto.ActionExec, pid: 80007, ppid: stClaudePid, root: stClaudePid,
			at: "11:25:41.350", args: stClaudeShellArgv(claudeBashCmd), cwd: stClaudeRepo},
			bound{proto.BindingCommand, "medium", stClaudeBash, "Bash", claudeSession, claudePrompt}},
		// A tool shell is forked before it execs with TRACEPARENT: the fork takes what the
		// same process's exec says, even where windows overlap.
		{"a fork in overlapping windows, bound by its own exec's key", kev{action: proto.ActionFork, pid: 80008, ppid: stClaudePid, root: stClaudePid,
			at: "11:25:41.350", cwd: stClaudeRepo},
			bound{proto.BindingTraceParent, "high", stClaudeBash, "Bash", claudeSession, claudePrompt}},
		{"that exec", kev{action: proto.ActionExec, pid: 80008, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.351",
			args: stClaudeShellArgv(claudeBashCmd), cwd: stClaudeRepo, join: claudeJoin(stClaudeTraceParent)},
			bound{proto.BindingTraceParent, "high", stClaudeBash, "Bash", claudeSession, claudePrompt}},
	}
	stScenario(t, rows, append(stRun(t, "claude", stClaudePid, nil), parallel), false)
}

// TestStitchFilePathAmbiguous: two calls naming the same file at the same time bind nothing.
func TestStitchFilePathAmbiguous(t *testing.T) {
	second := TelemetryBatch{Transport: "otlp_http", SenderPid: stClaudePid, Events: []proto.AgentEvent{
		stSynth(proto.KindToolDecision, "11:25:43.735", func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.Decision = "Read", "toolu_par_2", "accept"
		}),
		stSynth(proto.KindToolResult, "11:25:43.760", func(ae *proto.AgentEvent) {
			ae.ToolName, ae.ToolUseID, ae.FilePaths = "Read", "toolu_par_2", []string{stOut}
		}),
	}}
	rows := []stRow{
		{"out.txt named by Write and a parallel Read", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid,
			at: "11:25:43.750915", cwd: stClaudeRepo, path: stOut}, bound{proto.BindingNone, "", "", "", claudeSession, claudePrompt}},
		{"the temp file of a path both calls name", kev{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid,
			at: "11:25:43.743645", cwd: stClaudeRepo, path: stOut + ".tmp.31206.09bd5289bf29"}, bound{proto.BindingNone, "", "", "", claudeSession, claudePrompt}},
		{"a tool shell's open of the file is not an in-process tool", kev{action: proto.ActionOpen, pid: 31292, ppid: stClaudePid, root: stClaudePid,
			at: "11:25:42.600", cwd: stClaudeRepo, path: stNotes}, bound{proto.BindingWindow, "low", stClaudeRead, "Read", claudeSession, claudePrompt}},
	}
	stScenario(t, rows, append(stRun(t, "claude", stClaudePid, nil), second), false)
}

func TestStitchUntrustedSender(t *testing.T) {
	const spoofSession = "5b0f0000-0000-4000-8000-000000000bad"
	const spoofSpan = "5b0f5b0f5b0f5b0f"
	spoof := func(session string) []proto.AgentEvent {
		base := func(kind, at string) proto.AgentEvent {
			return proto.AgentEvent{Agent: agents.ClaudeCode, Kind: kind, Time: stAt(at), SessionID: session,
				PromptID: "prompt-spoof", TraceID: claudeTrace}
		}
		p := base(proto.KindUserPrompt, "11:25:41.100")
		p.Prompt = "harmless request " + stGitHubToken
		d := base(proto.KindToolDecision, "11:25:41.200")
		d.ToolName, d.ToolUseID, d.Decision, d.DecisionSource, d.Command = "Bash", "toolu_spoof_1", "accept", "user", "make test"
		sp := base(proto.KindToolSpan, "11:25:41.200")
		sp.SpanName, sp.SpanID, sp.ToolUseID, sp.EndTime, sp.PromptID = "claude_code.tool.execution", spoofSpan, "toolu_spoof_1", stAt("11:25:41.900"), ""
		r := base(proto.KindToolResult, "11:25:41.900")
		r.ToolName, r.ToolUseID, r.Success = "Bash", "toolu_spoof_1", boolp(true)
		return []proto.AgentEvent{p, d, sp, r}
	}
	for _, sender := range []struct {
		name string
		pid  int
	}{{"unknown pid", stUnknownPid}, {"pid outside every agent tree", stOutsidePid}, {"no pid", 0}} {
		for _, claimed := range []string{claudeSession, spoofSession} {
			t.Run(sender.name+"/claims "+claimed[:8], func(t *testing.T) {
				s := NewStitcher(StitcherOptions{Lookup: stLookup})
				stAdd(s, stRun(t, "claude", stClaudePid, nil))
				_, _ = stRelease(s, time.Now(), false)
				before := s.Stats()
				s.AddTelemetry(TelemetryBatch{Events: spoof(claimed), Transport: "otlp_http", SenderPid: sender.pid})
				// A process of the claude tree carrying the spoofed session's keys.
				e := kev{action: proto.ActionExec, pid: 90001, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.350",
					args: []string{"/bin/sh", "-c", "make test"}, join: &proto.JoinKeys{
						TraceParent: "00-" + claudeTrace + "-" + spoofSpan + "-01", Sessions: map[string]string{"claude-code": claimed}}}.event()
				s.Push(e)
				kernel, agent := stRelease(s, time.Now(), true)

				after := s.Stats()
				if after.Untrusted-before.Untrusted != 4 || after.Telemetry != before.Telemetry {
					t.Errorf("untrusted %d→%d telemetry %d→%d, want +4 untrusted and no telemetry",
						before.Untrusted, after.Untrusted, before.Telemetry, after.Telemetry)
				}
				if !maps.Equal(after.TelemetrySeen, before.TelemetrySeen) {
					t.Errorf("TelemetrySeen %v→%v: an untrusted sender must not count as the agent's telemetry", before.TelemetrySeen, after.TelemetrySeen)
				}
				if len(agent) != 3 { // spans repeat the logs: no line
					t.Errorf("%d agent lines, want 3 (prompt, decision, result)", len(agent))
				}
				for _, l := range agent {
					if l.Event.Action != proto.ActionAgentUntrusted {
						t.Errorf("line %s from an untrusted sender", l.Event.Action)
						continue
					}
					tel := l.Vigil.Telemetry
					if tel == nil || tel.Trusted || tel.SenderPid != sender.pid || tel.ClaimedConversationID != claimed {
						t.Errorf("telemetry %+v", tel)
					}
					if l.GenAI != nil && l.GenAI.Conversation != nil {
						t.Errorf("untrusted line carries gen_ai.conversation.id %q", l.GenAI.Conversation.ID)
					}
					if l.GenAI != nil && l.GenAI.Tool != nil && l.GenAI.Tool.Call != nil {
						t.Errorf("untrusted line carries a tool call id %q", l.GenAI.Tool.Call.ID)
					}
					if l.Vigil.Prompt != nil && (l.Vigil.Prompt.ID != "" || strings.Contains(l.Vigil.Prompt.Text, stGitHubToken)) {
						t.Errorf("untrusted prompt %+v: an id, or the token unredacted", l.Vigil.Prompt)
					}
					if (sender.pid == 0) != (l.Process == nil) {
						t.Errorf("process %+v for sender pid %d", l.Process, sender.pid)
					}
				}
				if len(kernel) != 1 {
					t.Fatalf("%d kernel events", len(kernel))
				}
				got := boundOf(kernel[0])
				if got.call == "toolu_spoof_1" || got.binding == proto.BindingTraceParent || got.prompt == "prompt-spoof" {
					t.Errorf("kernel event bound to the spoofed call: %+v", got)
				}
				if claimed == spoofSession && got.binding != proto.BindingNone {
					t.Errorf("kernel event of an unknown session bound: %+v", got)
				}
				if claimed == claudeSession && got.call != stClaudeBash {
					// The real session still explains it: the only call running then.
					t.Errorf("real session lost its binding: %+v", got)
				}
			})
		}
	}
}

// TestStitchAgentLines checks the agent.* lines a whole run produces.
func TestStitchAgentLines(t *testing.T) {
	type callLine struct {
		tool, decision, source string
		success                bool
		duration               int64
		command                string
		files                  []string
		prompt                 string
	}
	tests := []struct {
		agent    string
		pid      int
		root     int
		session  string
		prompt   string // on the agent.prompt line
		actions  map[string]int
		calls    map[string]callLine
		promptTx string
	}{
		{"claude", stClaudePid, stClaudePid, claudeSession, claudePrompt,
			map[string]int{proto.ActionAgentPrompt: 1, proto.ActionAgentToolCall: 4, proto.ActionAgentAPIRequest: 5},
			map[string]callLine{
				stClaudeBash:  {"Bash", "accept", "config", true, 536, claudeBashCmd, nil, claudePrompt},
				stClaudeRead:  {"Read", "accept", "config", true, 120, "", []string{stNotes}, claudePrompt},
				stClaudeWrite: {"Write", "accept", "config", true, 14, "", []string{stOut}, claudePrompt},
				stClaudeEdit:  {"Edit", "accept", "config", true, 38, "", []string{stNotes}, claudePrompt},
			},
			"Run a shell command, read notes.txt, write out.txt and edit notes.txt. SECRET_PROMPT_MARKER_42"},
		{"codex", stCodexPid, stCodexRoot, codexSession, codexTurn,
			map[string]int{proto.ActionAgentPrompt: 1, proto.ActionAgentToolCall: 2, proto.ActionAgentAPIRequest: 3},
			map[string]callLine{
				stCodexExec:  {"exec_command", "approved", "Config", true, 159, codexExecCmd, nil, codexTurn},
				stCodexPatch: {"apply_patch", "approved", "Config", true, 8, "", []string{"out.txt", "notes.txt"}, codexTurn},
			},
			"Run a shell command, then add out.txt and edit notes.txt with apply_patch. SECRET_PROMPT_MARKER_43"},
	}
	for _, tt := range tests {
		t.Run(tt.agent, func(t *testing.T) {
			s := NewStitcher(StitcherOptions{Lookup: stLookup})
			stAdd(s, stRun(t, tt.agent, tt.pid, nil))
			_, agent := stRelease(s, time.Now(), false)
			got := map[string]int{}
			seen := map[string]int{}
			for _, l := range agent {
				got[l.Event.Action]++
				if l.Event.Kind != "event" || l.Event.Dataset != "vigil.agent" || l.GenAI == nil || l.GenAI.Agent == nil ||
					l.GenAI.Agent.Name != map[string]string{"claude": agents.ClaudeCode, "codex": agents.Codex}[tt.agent] {
					t.Errorf("%s: event %+v genai %+v", l.Event.Action, l.Event, l.GenAI)
				}
				if l.GenAI.Conversation == nil || l.GenAI.Conversation.ID != tt.session {
					t.Errorf("%s: conversation %+v", l.Event.Action, l.GenAI.Conversation)
				}
				if tel := l.Vigil.Telemetry; tel == nil || !tel.Trusted || tel.SenderPid != tt.pid || tel.Transport != "otlp_http" {
					t.Errorf("%s: telemetry %+v", l.Event.Action, tel)
				}
				if l.Process == nil || l.Process.Pid != tt.pid || l.Vigil.Root == nil || l.Vigil.Root.Pid != tt.root {
					t.Errorf("%s: process %+v root %+v", l.Event.Action, l.Process, l.Vigil.Root)
				}
				switch l.Event.Action {
				case proto.ActionAgentPrompt:
					if l.Vigil.Prompt == nil || l.Vigil.Prompt.ID != tt.prompt || l.Vigil.Prompt.Text != tt.promptTx {
						t.Errorf("prompt line %+v", l.Vigil.Prompt)
					}
				case proto.ActionAgentToolCall:
					id := l.GenAI.Tool.Call.ID
					seen[id]++
					w, ok := tt.calls[id]
					if !ok {
						t.Errorf("tool_call line for unknown call %q", id)
						continue
					}
					tc := l.Vigil.Tool
					if l.GenAI.Tool.Name != w.tool || tc.Decision != w.decision || tc.DecisionSource != w.source ||
						tc.Success == nil || *tc.Success != w.success || tc.DurationMs != w.duration || tc.Command != w.command ||
						!slices.Equal(tc.FilePaths, w.files) || l.Vigil.Prompt == nil || l.Vigil.Prompt.ID != w.prompt ||
						l.Event.Outcome != proto.OutcomeSuccess {
						t.Errorf("tool_call %s: tool %q %+v prompt %+v outcome %s, want %+v", id, l.GenAI.Tool.Name, tc, l.Vigil.Prompt, l.Event.Outcome, w)
					}
				case proto.ActionAgentAPIRequest:
					if l.GenAI.Request == nil || l.GenAI.Request.Model == "" {
						t.Errorf("api_request without model: %+v", l.GenAI.Request)
					}
				}
			}
			if !maps.Equal(got, tt.actions) {
				t.Errorf("agent lines %v, want %v", got, tt.actions)
			}
			for id := range tt.calls {
				if seen[id] != 1 {
					t.Errorf("call %s: %d tool_call lines, want 1", id, seen[id])
				}
			}
			// Every call had its result: shutdown reports nothing more.
			if _, agent := stRelease(s, time.Now(), true); len(agent) != 0 {
				t.Errorf("Release(all) wrote %d more agent lines", len(agent))
			}
		})
	}
}

func TestStitchPromptRedacted(t *testing.T) {
	s := NewStitcher(StitcherOptions{Lookup: stLookup})
	s.AddTelemetry(TelemetryBatch{Transport: "otlp_http", SenderPid: stClaudePid, Events: []proto.AgentEvent{
		stSynth(proto.KindUserPrompt, "11:26:00.000", func(ae *proto.AgentEvent) {
			ae.PromptID, ae.Prompt = "prompt-2", "push with GH_TOKEN="+stGitHubToken+" please"
		}),
		stSynth(proto.KindToolDecision, "11:26:01.000", func(ae *proto.AgentEvent) {
			ae.PromptID, ae.ToolName, ae.ToolUseID, ae.Decision, ae.Command = "prompt-2", "Bash", "toolu_tok", "accept", "echo "+stGitHubToken+" | gh auth login --with-token"
		}),
	}})
	// The call's shell: its argv was redacted by the pipeline, the command by the stitcher,
	// and they still match.
	shell := kev{action: proto.ActionExec, pid: 91000, ppid: stClaudePid, root: stClaudePid, at: "11:26:01.100",
		args: stClaudeShellArgv("echo " + stGitHubToken + " | gh auth login --with-token")}.event()
	s.Push(shell)
	kernel, agent := stRelease(s, time.Now(), true)
	if len(kernel) != 1 || strings.Contains(strings.Join(kernel[0].Process.Args, " "), stGitHubToken) {
		t.Fatalf("kernel events %v", kernel)
	}
	if got := boundOf(kernel[0]); got != (bound{proto.BindingCommand, "medium", "toolu_tok", "Bash", claudeSession, "prompt-2"}) {
		t.Errorf("shell of a command with a secret bound %+v", got)
	}
	if len(agent) != 2 {
		t.Fatalf("%d agent lines, want the prompt and the unfinished call", len(agent))
	}
	for _, l := range agent {
		var text string
		switch l.Event.Action {
		case proto.ActionAgentPrompt:
			text = l.Vigil.Prompt.Text
			if l.Vigil.Prompt.ID != "prompt-2" {
				t.Errorf("prompt id %q", l.Vigil.Prompt.ID)
			}
		case proto.ActionAgentToolCall:
			text = l.Vigil.Tool.Command
		}
		if strings.Contains(text, stGitHubToken) || !strings.Contains(text, sensor.Redacted) {
			t.Errorf("%s: %q not redacted", l.Event.Action, text)
		}
	}
}

// TestStitchUnfinishedCalls: a call with a decision and no result is reported once, at
// shutdown.
func TestStitchUnfinishedCalls(t *testing.T) {
	s := NewStitcher(StitcherOptions{Lookup: stLookup})
	// 0003: the prompt; 0006: the Bash decision. Its span and result never arrive.
	stAdd(s, stRun(t, "claude", stClaudePid, func(f string) bool { return f == "0003_logs.json" || f == "0006_logs.json" }))
	count := func(agent []*proto.Event) []*proto.Event {
		var calls []*proto.Event
		for _, l := range agent {
			if l.Event.Action == proto.ActionAgentToolCall {
				calls = append(calls, l)
			}
		}
		return calls
	}
	if _, agent := stRelease(s, time.Now(), false); len(count(agent)) != 0 {
		t.Fatalf("unfinished call reported before shutdown")
	}
	_, agent := stRelease(s, time.Now(), true)
	calls := count(agent)
	if len(calls) != 1 {
		t.Fatalf("%d tool_call lines at shutdown, want 1", len(calls))
	}
	l := calls[0]
	if l.GenAI.Tool.Call.ID != stClaudeBash || l.GenAI.Tool.Name != "Bash" || l.Vigil.Tool.Decision != "accept" ||
		l.Vigil.Tool.DecisionSource != "config" || l.Vigil.Tool.Success != nil || l.Event.Outcome != proto.OutcomeUnknown ||
		l.Vigil.Tool.Command != claudeBashCmd || l.GenAI.Conversation == nil || l.GenAI.Conversation.ID != claudeSession ||
		l.Vigil.Prompt == nil || l.Vigil.Prompt.ID != claudePrompt || !l.Timestamp.Equal(stAt("11:25:41.071")) {
		t.Errorf("unfinished call line %+v tool %+v prompt %+v", l, l.Vigil.Tool, l.Vigil.Prompt)
	}
	if _, agent := stRelease(s, time.Now(), true); len(count(agent)) != 0 {
		t.Errorf("unfinished call reported twice")
	}
}

func TestStitchHold(t *testing.T) {
	const hold = 50 * time.Millisecond
	tests := []struct {
		name      string
		maxHeld   int
		pushed    int
		afterHold bool // release at a now past the hold; else at a now before every push
		all       bool
		released  int // the oldest ones, in push order
		early     uint64
	}{
		{"before the hold", 100, 5, false, false, 0, 0},
		{"after the hold", 100, 5, true, false, 5, 0},
		{"all at shutdown", 100, 5, false, true, 5, 0},
		{"MaxHeld overflow releases the oldest early", 2, 5, false, false, 3, 3},
		{"MaxHeld overflow after the hold is not early", 2, 5, true, false, 5, 0},
		{"exactly MaxHeld", 5, 5, false, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStitcher(StitcherOptions{Lookup: stLookup, Hold: hold, MaxHeld: tt.maxHeld})
			stAdd(s, stRun(t, "claude", stClaudePid, nil))
			_, _ = stRelease(s, time.Now(), false) // the agent lines
			before := time.Now()
			var pushed []*proto.Event
			for i := range tt.pushed {
				e := kev{action: proto.ActionExec, pid: 31294 + i, ppid: 31292, root: stClaudePid, at: "11:25:41.367902",
					args: []string{"true"}, join: claudeJoin(stClaudeTraceParent)}.event()
				pushed = append(pushed, e)
				s.Push(e)
			}
			now := before
			if tt.afterHold {
				now = time.Now().Add(hold)
			}
			if st := s.Stats(); st.Held != tt.pushed || st.Released != 0 {
				t.Fatalf("before Release: held %d released %d", st.Held, st.Released)
			}
			kernel, agent := stRelease(s, now, tt.all)
			if len(agent) != 0 {
				t.Errorf("%d agent lines", len(agent))
			}
			if !slices.Equal(kernel, pushed[:tt.released]) {
				t.Fatalf("released %d events, want the first %d in push order", len(kernel), tt.released)
			}
			for _, e := range kernel {
				if e.Vigil.Binding != proto.BindingTraceParent {
					t.Errorf("released event bound %q", e.Vigil.Binding)
				}
			}
			for _, e := range pushed[tt.released:] {
				if e.Vigil.Binding != "" || e.GenAI != nil {
					t.Errorf("held event already bound")
				}
			}
			st := s.Stats()
			if st.Held != tt.pushed-tt.released || st.Released != uint64(tt.released) || st.EarlyReleased != tt.early {
				t.Errorf("stats held %d released %d early %d, want %d %d %d",
					st.Held, st.Released, st.EarlyReleased, tt.pushed-tt.released, tt.released, tt.early)
			}
			if st.Bindings[proto.BindingTraceParent] != uint64(tt.released) {
				t.Errorf("bindings %v", st.Bindings)
			}
			// The rest comes out at shutdown, still in order.
			rest, _ := stRelease(s, before, true)
			if !slices.Equal(rest, pushed[tt.released:]) {
				t.Errorf("shutdown released %d, want the remaining %d in order", len(rest), tt.pushed-tt.released)
			}
		})
	}
}

// stSizes is everything the stitcher remembers, counted.
func stSizes(s *Stitcher) (remembered, perSession int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	remembered = len(s.sessions.cur) + len(s.sessions.prev) + len(s.rootSession.cur) + len(s.rootSession.prev) +
		len(s.calls.cur) + len(s.calls.prev) + len(s.spans.cur) + len(s.spans.prev) +
		len(s.turns.cur) + len(s.turns.prev) + len(s.procs.cur) + len(s.procs.prev) + len(s.held) + len(s.out)
	for _, ss := range s.sessions.all() {
		perSession = max(perSession, len(ss.calls)+len(ss.prompts)+len(ss.agentPids))
	}
	return remembered, perSession
}

// TestStitchPushReportsFull: Push asks for a release once MaxHeld is exceeded by an eighth
// (at least one), and that release brings the held events back to MaxHeld.
func TestStitchPushReportsFull(t *testing.T) {
	for _, tt := range []struct{ maxHeld, firstFull int }{{1, 3}, {8, 10}, {16, 19}, {100, 113}} {
		t.Run(fmt.Sprint(tt.maxHeld), func(t *testing.T) {
			s := NewStitcher(StitcherOptions{Lookup: stLookup, Hold: time.Hour, MaxHeld: tt.maxHeld})
			before := time.Now()
			push := func(i int) bool {
				return s.Push(kev{action: proto.ActionOpen, pid: 31294, ppid: 31292, root: stClaudePid, at: "11:25:41.367902",
					path: fmt.Sprintf("/tmp/f%d", i)}.event())
			}
			for i := 1; i < tt.firstFull; i++ {
				if push(i) {
					t.Fatalf("push %d reported full, want the first at %d", i, tt.firstFull)
				}
			}
			if !push(tt.firstFull) {
				t.Fatalf("push %d did not report full", tt.firstFull)
			}
			released, _ := stRelease(s, before, false)
			if st := s.Stats(); len(released) != tt.firstFull-tt.maxHeld || st.Held != tt.maxHeld || st.EarlyReleased != uint64(len(released)) {
				t.Errorf("release: %d out, %d held, %d early; want %d out, %d held", len(released), st.Held, st.EarlyReleased,
					tt.firstFull-tt.maxHeld, tt.maxHeld)
			}
			if push(0) {
				t.Error("full again right after the release")
			}
		})
	}
}

func TestStitchBounds(t *testing.T) {
	const (
		calls         = 100_000
		maxRemembered = 1000
	)
	tests := []struct {
		name     string
		sessions int // calls are spread over this many sessions, each its own agent tree
	}{
		{"one long session", 1},
		{"many sessions", calls / 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(pid int) (sensor.ProcessInfo, bool) {
				return sensor.ProcessInfo{Pid: pid, RootPid: pid, Agent: agents.Codex}, true
			}
			s := NewStitcher(StitcherOptions{Lookup: lookup, MaxRemembered: maxRemembered, Hold: time.Second,
				Redact: func(s string) string { return s }})
			start := stAt("12:00:00")
			far := time.Now().Add(time.Hour)
			// Peaks over the first and the second half of the run: the second must not be larger.
			var peak, peakSession [2]int
			for i := range calls {
				sess := i % tt.sessions
				sid := fmt.Sprintf("sess-%d", sess)
				pid := 100_000 + sess
				at := start.Add(time.Duration(i) * 10 * time.Millisecond)
				id := fmt.Sprintf("call-%d", i)
				trace := fmt.Sprintf("trace-%d", i/10)
				evs := []proto.AgentEvent{
					{Agent: agents.Codex, Kind: proto.KindToolDecision, Time: at, SessionID: sid, TraceID: trace, PromptID: trace,
						ToolName: "exec_command", ToolUseID: id, Decision: "approved"},
					{Agent: agents.Codex, Kind: proto.KindToolResult, Time: at.Add(5 * time.Millisecond), SessionID: sid,
						TraceID: trace, PromptID: trace, ToolName: "exec_command", ToolUseID: id, Success: boolp(true), Command: "true"},
					{Agent: agents.Codex, Kind: proto.KindToolSpan, SpanName: "exec_command", Time: at, EndTime: at.Add(5 * time.Millisecond),
						SessionID: sid, TraceID: trace, PromptID: trace, TurnID: fmt.Sprintf("turn-%d", i/10), ToolUseID: id},
				}
				if i%10 == 0 {
					evs = append(evs, proto.AgentEvent{Agent: agents.Codex, Kind: proto.KindUserPrompt, Time: at.Add(-time.Millisecond),
						SessionID: sid, TraceID: trace, PromptID: trace, Prompt: "again"},
						proto.AgentEvent{Agent: agents.Codex, Kind: proto.KindInteractionSpan, SpanName: "run_turn", Time: at,
							SessionID: sid, TraceID: trace, PromptID: trace, TurnID: fmt.Sprintf("turn-%d", i/10)})
				}
				s.AddTelemetry(TelemetryBatch{Events: evs, Transport: "otlp_http", SenderPid: pid})
				s.Push(&proto.Event{Timestamp: at.Add(time.Millisecond), Event: proto.EventMeta{Action: proto.ActionExec, Dataset: "vigil.kernel"},
					Process: &proto.Process{Pid: 1_000_000 + i, EntityID: "e" + id, Args: []string{"true"}, Parent: &proto.ParentProcess{Pid: pid}},
					Vigil:   proto.Vigil{Root: &proto.Root{Pid: pid}, Join: agents.JoinKeysOf("CODEX_TOOL_CALL_ID="+id, "CODEX_SESSION_ID="+sid)}})
				if i%100 == 99 {
					kernel, _ := stRelease(s, far, false)
					if len(kernel) != 100 {
						t.Fatalf("released %d", len(kernel))
					}
					for j, e := range kernel {
						n := i - 99 + j
						if b := boundOf(e); b.call != fmt.Sprintf("call-%d", n) || b.binding != proto.BindingEnvCallID || b.prompt != fmt.Sprintf("turn-%d", n/10) {
							t.Fatalf("call %d bound %+v", n, b)
						}
					}
				}
				if i%1000 == 999 {
					r, ps := stSizes(s)
					half := i * 2 / calls
					peak[half], peakSession[half] = max(peak[half], r), max(peakSession[half], ps)
				}
			}
			if peak[1] > peak[0]*11/10 || peakSession[1] > peakSession[0]*11/10 {
				t.Errorf("memory grows: remembered %d entries in the first 50k calls, %d in the next; per session %d, %d",
					peak[0], peak[1], peakSession[0], peakSession[1])
			}
			// Each of the six maps holds at most two generations of MaxRemembered/2+1.
			if limit := 6 * (maxRemembered + 2); peak[1] > limit {
				t.Errorf("remembered %d entries, bound %d", peak[1], limit)
			}
			if limit := maxCallsPerSession + maxPromptsPerSession + 1; peakSession[1] > limit {
				t.Errorf("a session holds %d calls, prompts and pids, bound %d", peakSession[1], limit)
			}
			st := s.Stats()
			if st.Forgotten == 0 {
				t.Errorf("nothing forgotten")
			}
			// The first call is forgotten: its key binds nothing any more.
			e := kev{action: proto.ActionExec, pid: 999, ppid: 100_000, root: 100_000, args: []string{"true"}, join: codexJoin("call-0")}.event()
			e.Timestamp = start.Add(time.Millisecond)
			s.Push(e)
			kernel, _ := stRelease(s, far, true)
			if b := boundOf(kernel[0]); b.call != "" || b.binding != proto.BindingNone {
				t.Errorf("forgotten call still binds: %+v", b)
			}
		})
	}
}

func TestStitchConcurrent(t *testing.T) {
	s := NewStitcher(StitcherOptions{Lookup: stLookup, Hold: time.Millisecond, MaxHeld: 64, MaxRemembered: 500})
	claude := stRun(t, "claude", stClaudePid, nil)
	codex := stRun(t, "codex", stCodexPid, nil)
	const (
		senders = 4
		rounds  = 50
		pushes  = 2000
	)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for r := range rounds {
				stAdd(s, claude)
				stAdd(s, codex)
				s.AddTelemetry(TelemetryBatch{Transport: "hook", SenderPid: stClaudePid, Events: []proto.AgentEvent{
					stSynth(proto.KindToolDecision, "11:25:41.300", func(ae *proto.AgentEvent) {
						ae.ToolName, ae.ToolUseID = "Grep", fmt.Sprintf("toolu_%d_%d", g, r)
					}),
				}})
				s.AddTelemetry(TelemetryBatch{Transport: "otlp_http", SenderPid: stUnknownPid, Events: claude[1].Events})
				_ = s.Stats()
			}
		})
	}
	var released int
	var lines int
	wg.Go(func() {
		consume := func(evs []*proto.Event) {
			for _, e := range evs {
				if e.Event.Dataset == "vigil.kernel" {
					released++
				} else {
					lines++
				}
				_ = boundOf(e) // read what the stitcher wrote while it goes on
				if e.Vigil.Tool != nil {
					_ = len(e.Vigil.Tool.FilePaths)
				}
			}
		}
		for i := range pushes {
			s.Push(kev{action: proto.ActionExec, pid: 40000 + i, ppid: 31292, root: stClaudePid, at: "11:25:41.400",
				args: []string{"true"}}.event())
			if i%16 == 0 {
				consume(s.Release(time.Now().Add(time.Second), false))
			}
		}
		consume(s.Release(time.Now(), true))
	})
	wg.Wait()
	kernel, agent := stRelease(s, time.Now(), true)
	released += len(kernel)
	lines += len(agent)
	if released != pushes {
		t.Errorf("released %d of %d", released, pushes)
	}
	if st := s.Stats(); st.Released != pushes || st.Held != 0 || st.Untrusted == 0 || st.Telemetry == 0 {
		t.Errorf("stats %+v", st)
	}
	if lines == 0 {
		t.Errorf("no agent lines")
	}
}

// BenchmarkStitch measures kernel events per second through Push and Release with both
// sample sessions loaded: a tool shell with TRACEPARENT and its children, command and
// window matches, in-process file opens and events outside every call.
func BenchmarkStitch(b *testing.B) {
	s := NewStitcher(StitcherOptions{Lookup: stLookup})
	stAdd(s, stRun(b, "claude", stClaudePid, nil))
	stAdd(s, stRun(b, "codex", stCodexPid, nil))
	// Twenty more finished calls in the Claude session, as a longer session would have.
	for i := range 20 {
		at := stAt("11:25:46.000").Add(time.Duration(i) * time.Second)
		s.AddTelemetry(TelemetryBatch{Transport: "otlp_http", SenderPid: stClaudePid, Events: []proto.AgentEvent{
			{Agent: agents.ClaudeCode, Kind: proto.KindToolDecision, Time: at, SessionID: claudeSession, PromptID: claudePrompt,
				ToolName: "Bash", ToolUseID: fmt.Sprintf("toolu_bench_%d", i), Command: fmt.Sprintf("go test ./pkg%d/...", i)},
			{Agent: agents.ClaudeCode, Kind: proto.KindToolResult, Time: at.Add(500 * time.Millisecond), SessionID: claudeSession,
				PromptID: claudePrompt, ToolName: "Bash", ToolUseID: fmt.Sprintf("toolu_bench_%d", i), Success: boolp(true)},
		}})
	}
	s.Release(time.Now(), false)
	templates := []kev{
		{action: proto.ActionExec, pid: 31292, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.323068",
			args: stClaudeShellArgv(claudeBashCmd), cwd: stClaudeRepo, join: claudeJoin(stClaudeTraceParent)},
		{action: proto.ActionFork, pid: 31293, ppid: 31292, root: stClaudePid, at: "11:25:41.361703"},
		{action: proto.ActionExec, pid: 31293, ppid: 31292, root: stClaudePid, at: "11:25:41.367902", args: []string{"readlink", "/proc/self/fd/0"}},
		{action: proto.ActionOpen, pid: 31293, ppid: 31292, root: stClaudePid, at: "11:25:41.368", path: "/proc/31292/fd/0"},
		{action: proto.ActionExec, pid: 50001, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.400", args: stClaudeShellArgv(claudeBashCmd)},
		{action: proto.ActionExec, pid: 50002, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.084924", args: []string{"/bin/bash", "-c", "env"}},
		{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:43.743645", cwd: stClaudeRepo, path: stOut + ".tmp.31206.09bd5289bf29"},
		{action: proto.ActionOpen, pid: stClaudePid, ppid: 31205, root: stClaudePid, at: "11:25:45.300", cwd: stClaudeRepo, path: stOut},
		{action: proto.ActionExec, pid: 24917, ppid: stCodexPid, root: stCodexRoot, at: "11:25:14.046019",
			args: []string{"/bin/bash", "-c", codexExecCmd}, cwd: stCodexRepo, join: codexJoin(stCodexExec)},
		{action: proto.ActionOpen, pid: stCodexPid, ppid: stCodexRoot, root: stCodexRoot, at: "11:25:14.627581", cwd: stCodexRepo, path: stCodexRepo + "/out.txt"},
	}
	base := make([]*proto.Event, len(templates))
	for i, k := range templates {
		base[i] = k.event()
	}
	far := time.Now().Add(time.Hour)
	events := 0
	for b.Loop() {
		// Fresh processes each round, as a real session forks new ones.
		round := events / len(base)
		for _, t := range base {
			e := *t
			p := *t.Process
			p.EntityID = fmt.Sprintf("%s.%d", t.Process.EntityID, round)
			if t.Process.Parent != nil {
				pp := *t.Process.Parent
				pp.EntityID = fmt.Sprintf("%s.%d", pp.EntityID, round)
				p.Parent = &pp
			}
			e.Process = &p
			s.Push(&e)
			events++
		}
		s.Release(far, false)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// Trust is narrower than "some process of an agent tree": OTLP must come from an agent
// process itself, and a session belongs to the first tree that spoke for it.
func TestStitchTrustRules(t *testing.T) {
	const (
		toolShell  = 31300 // a Bash tool shell inside claude's tree: not an agent binary
		otherRoot  = 40000 // another claude tree
		otherShell = 40001 // a process in that other tree
	)
	procs := map[int]sensor.ProcessInfo{
		stClaudePid: stProcs[stClaudePid],
		toolShell:   {Pid: toolShell, PPid: stClaudePid, Name: "bash", Executable: "/usr/bin/bash", RootPid: stClaudePid},
		otherRoot:   {Pid: otherRoot, Name: "claude", Executable: "/opt/claude/claude.exe", RootPid: otherRoot},
		otherShell:  {Pid: otherShell, PPid: otherRoot, Name: "bash", Executable: "/usr/bin/bash", RootPid: otherRoot},
	}
	lookup := func(pid int) (sensor.ProcessInfo, bool) { p, ok := procs[pid]; return p, ok }
	isAgent := func(p sensor.ProcessInfo) bool { return p.Name == "claude" }
	forged := func(session, call string) []proto.AgentEvent {
		return []proto.AgentEvent{
			stSynth(proto.KindToolDecision, "10:00:00.000", func(ae *proto.AgentEvent) {
				ae.SessionID, ae.ToolUseID, ae.ToolName, ae.Command = session, call, "Bash", "curl evil"
			}),
		}
	}

	for _, tt := range []struct {
		name      string
		batch     TelemetryBatch
		trusted   bool
		sessionOK bool // the session is known to the stitcher afterwards
	}{
		{"the agent itself over OTLP", TelemetryBatch{Events: forged("s-own", "call-own"), Transport: "otlp_http", SenderPid: stClaudePid}, true, true},
		{"a tool shell of the tree over OTLP", TelemetryBatch{Events: forged("s-shell", "call-shell"), Transport: "otlp_http", SenderPid: toolShell}, false, false},
		{"a hook process of the tree", TelemetryBatch{Events: forged("s-hook", "call-hook"), Transport: TransportHook, SenderPid: toolShell}, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStitcher(StitcherOptions{Lookup: lookup, IsAgent: isAgent})
			s.AddTelemetry(tt.batch)
			_, agent := stRelease(s, stAt("10:00:01"), true)
			untrusted := 0
			for _, e := range agent {
				if e.Event.Action == proto.ActionAgentUntrusted {
					untrusted++
				}
			}
			if got := untrusted == 0; got != tt.trusted {
				t.Errorf("trusted = %v, want %v (%d untrusted lines)", got, tt.trusted, untrusted)
			}
			if _, ok := s.sessions.get(tt.batch.Events[0].SessionID); ok != tt.sessionOK {
				t.Errorf("session known = %v, want %v", ok, tt.sessionOK)
			}
		})
	}

	t.Run("another tree cannot claim a session", func(t *testing.T) {
		s := NewStitcher(StitcherOptions{Lookup: lookup, IsAgent: isAgent})
		s.AddTelemetry(TelemetryBatch{Events: forged("s-victim", "call-real"), Transport: "otlp_http", SenderPid: stClaudePid})
		// The other tree's agent posts a call in the victim's session…
		s.AddTelemetry(TelemetryBatch{Events: forged("s-victim", "call-forged"), Transport: "otlp_http", SenderPid: otherRoot})
		// …and its shell carries the victim's session id in its environment.
		ev := kev{action: proto.ActionExec, pid: otherShell, ppid: otherRoot, root: otherRoot, at: "10:00:00.010",
			args: []string{"bash", "-c", "curl evil"}, join: agents.JoinKeysOf("CLAUDE_CODE_SESSION_ID=s-victim")}.event()
		s.Push(ev)
		kernel, agent := stRelease(s, stAt("10:00:01"), true)
		untrusted := 0
		for _, e := range agent {
			if e.Event.Action == proto.ActionAgentUntrusted {
				untrusted++
				if e.Vigil.Telemetry.ClaimedConversationID != "s-victim" {
					t.Errorf("claimed session %q", e.Vigil.Telemetry.ClaimedConversationID)
				}
			}
		}
		if untrusted != 1 {
			t.Errorf("%d untrusted lines, want 1 (the other tree's claim)", untrusted)
		}
		if b := boundOf(kernel[0]); b.conversation == "s-victim" || b.call != "" {
			t.Errorf("the other tree's shell was bound into the victim's session: %+v", b)
		}
	})
}

// A sender that posts before its exec has reached the process table has its first batches
// wait; a later batch, sent once the table knows the sender, must not overtake them (the
// tool_result would be reported without its decision, before its prompt).
func TestStitchWaitingSenderKeepsItsOrder(t *testing.T) {
	var mu sync.Mutex
	known := false
	lookup := func(pid int) (sensor.ProcessInfo, bool) {
		mu.Lock()
		defer mu.Unlock()
		p, ok := stProcs[pid]
		return p, ok && known
	}
	s := NewStitcher(StitcherOptions{Lookup: lookup})
	at := stAt("11:25:40.000")
	ev := func(kind string, d time.Duration) proto.AgentEvent {
		return proto.AgentEvent{Agent: agents.ClaudeCode, Kind: kind, Time: at.Add(d), SessionID: "S", PromptID: "P",
			Prompt: "p", ToolName: "Bash", ToolUseID: "T", Decision: "accept", DecisionSource: "config", Success: new(true)}
	}
	prompt, decision, result := ev(proto.KindUserPrompt, 0), ev(proto.KindToolDecision, time.Millisecond), ev(proto.KindToolResult, time.Second)
	prompt.ToolName, prompt.ToolUseID = "", ""
	batch := func(evs ...proto.AgentEvent) TelemetryBatch {
		return TelemetryBatch{Events: evs, Transport: TransportOTLPHTTP, SenderPid: stClaudePid}
	}
	s.AddTelemetry(batch(prompt))
	s.AddTelemetry(batch(decision))
	if got := s.Release(time.Now(), false); len(got) != 0 {
		t.Fatalf("lines before the sender is known: %d", len(got))
	}
	mu.Lock()
	known = true
	mu.Unlock()
	s.AddTelemetry(batch(result))
	var actions []string
	for _, e := range s.Release(time.Now(), false) {
		actions = append(actions, e.Event.Action)
		if e.Event.Action == proto.ActionAgentToolCall && (e.Vigil.Tool == nil || e.Vigil.Tool.Decision != "accept") {
			t.Errorf("tool_call line without its decision: %+v", e.Vigil.Tool)
		}
	}
	if want := []string{proto.ActionSession, proto.ActionAgentPrompt, proto.ActionAgentToolCall}; !slices.Equal(actions, want) {
		t.Errorf("agent lines %v, want %v", actions, want)
	}
}

// A session continued in a new process tree (`claude --resume`, `codex exec resume`) moves
// to that tree once the tree that owned it has exited; not while it lives.
func TestStitchResumedSessionMovesToTheNewTree(t *testing.T) {
	const first, second = 50000, 51000
	procs := map[int]sensor.ProcessInfo{
		first:  {Pid: first, Name: "claude", RootPid: first},
		second: {Pid: second, Name: "claude", RootPid: second},
	}
	lookup := func(pid int) (sensor.ProcessInfo, bool) { p, ok := procs[pid]; return p, ok }
	decision := func(call string) []proto.AgentEvent {
		return []proto.AgentEvent{stSynth(proto.KindToolDecision, "10:00:00.000", func(ae *proto.AgentEvent) {
			ae.SessionID, ae.ToolUseID, ae.ToolName = "s-resumed", call, "Bash"
		})}
	}
	untrusted := func(s *Stitcher) int {
		n := 0
		_, agent := stRelease(s, stAt("10:00:01"), false)
		for _, e := range agent {
			if e.Event.Action == proto.ActionAgentUntrusted {
				n++
			}
		}
		return n
	}
	s := NewStitcher(StitcherOptions{Lookup: lookup})
	s.AddTelemetry(TelemetryBatch{Events: decision("call-1"), Transport: "otlp_http", SenderPid: first})
	s.AddTelemetry(TelemetryBatch{Events: decision("call-2"), Transport: "otlp_http", SenderPid: second})
	if n := untrusted(s); n != 1 {
		t.Fatalf("while the first tree lives, the second one's claim gave %d untrusted lines, want 1", n)
	}
	p := procs[first]
	p.Exited = true
	procs[first] = p
	s.AddTelemetry(TelemetryBatch{Events: decision("call-3"), Transport: "otlp_http", SenderPid: second})
	if n := untrusted(s); n != 0 {
		t.Fatalf("after the first tree exited, the resumed session gave %d untrusted lines, want 0", n)
	}
	if _, ok := s.calls.get("call-3"); !ok {
		t.Fatal("the resumed tree's tool call is unknown")
	}
}

// TestStitchSenderPidReused: a telemetry sender is identified by pid and start time. When the
// process table's entry for the sender's pid is another process (an exited agent whose pid
// an outsider took), the batch waits for the table and is then untrusted and counted; the
// same process (same start tick, whether the start came from the kernel in ns or from /proc
// in ticks) is trusted, and so is a sender whose start is unknown.
func TestStitchSenderPidReused(t *testing.T) {
	const (
		agentPid   = 52000
		agentStart = 7_000_000_000_123 // ns since boot, as the kernel reports it
	)
	procs := map[int]sensor.ProcessInfo{
		agentPid: {Pid: agentPid, Name: "claude", Executable: "/opt/claude/claude.exe", RootPid: agentPid,
			StartBootNs: agentStart, Exited: true}, // exited, still remembered for its late telemetry
	}
	lookup := func(pid int) (sensor.ProcessInfo, bool) { p, ok := procs[pid]; return p, ok }
	isAgent := func(p sensor.ProcessInfo) bool { return p.Name == "claude" }
	forged := func(session string) []proto.AgentEvent {
		return []proto.AgentEvent{stSynth(proto.KindToolDecision, "10:00:00.000", func(ae *proto.AgentEvent) {
			ae.SessionID, ae.ToolUseID, ae.ToolName, ae.Command = session, "call-"+session, "Bash", "curl evil"
		})}
	}
	for _, tt := range []struct {
		name    string
		start   uint64
		trusted bool
	}{
		{"reused pid, later start", agentStart + 5_000_000_000, false},
		{"reused pid, start one tick later", (agentStart/10_000_000 + 1) * 10_000_000, false},
		{"same process, start in /proc ticks", agentStart / 10_000_000 * 10_000_000, true},
		{"same process, kernel ns", agentStart, true},
		{"start unknown", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStitcher(StitcherOptions{Lookup: lookup, IsAgent: isAgent})
			session := fmt.Sprintf("s-%d", tt.start)
			s.AddTelemetry(TelemetryBatch{Events: forged(session), Transport: "otlp_http", SenderPid: agentPid, SenderStartBootNs: tt.start})
			if !tt.trusted {
				// Not final yet: the sender's own table entry may still be on its way.
				if _, agent := stRelease(s, stAt("10:00:00.500"), false); len(agent) != 0 {
					t.Errorf("%d agent lines before the sender was judged, want 0", len(agent))
				}
			}
			_, agent := stRelease(s, stAt("10:00:01"), true)
			untrusted := 0
			for _, e := range agent {
				if e.Event.Action == proto.ActionAgentUntrusted {
					untrusted++
				}
			}
			if got := untrusted == 0 && len(agent) > 0; got != tt.trusted {
				t.Errorf("trusted = %v, want %v (%d lines, %d untrusted)", got, tt.trusted, len(agent), untrusted)
			}
			if _, ok := s.sessions.get(session); ok != tt.trusted {
				t.Errorf("session known = %v, want %v", ok, tt.trusted)
			}
			st := s.Stats()
			if want := map[bool]uint64{true: 0, false: 1}[tt.trusted]; st.SenderReused != want {
				t.Errorf("SenderReused = %d, want %d", st.SenderReused, want)
			}
		})
	}
}

func TestStitchTelemetrySeenPerAgent(t *testing.T) {
	s := NewStitcher(StitcherOptions{Lookup: stLookup})
	if seen := s.Stats().TelemetrySeen; len(seen) != 0 {
		t.Fatalf("TelemetrySeen before any telemetry = %v", seen)
	}
	before := time.Now()
	stAdd(s, stRun(t, "claude", stClaudePid, nil))
	_, _ = stRelease(s, time.Now(), true)
	after := time.Now()
	seen := s.Stats().TelemetrySeen
	if len(seen) != 1 || seen[agents.ClaudeCode].Before(before) || seen[agents.ClaudeCode].After(after) {
		t.Errorf("TelemetrySeen = %v, want only %s, at a time between %v and %v", seen, agents.ClaudeCode, before, after)
	}
	// Stats hands out a copy: the caller's map is not the stitcher's.
	seen[agents.Codex] = after
	if _, ok := s.Stats().TelemetrySeen[agents.Codex]; ok {
		t.Error("a change to Stats().TelemetrySeen reached the stitcher")
	}
}
