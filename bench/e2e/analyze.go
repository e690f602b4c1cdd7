package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
)

// Counts score kernel events against the independent ground truth (truth.go): the events
// the recorder saw that belong to a call by construction, and what Vigil made of them.
type Counts struct {
	Truth   int `json:"truth"`   // recorded events that belong to the call
	Missing int `json:"missing"` // of those, events Vigil did not capture at all
	Correct int `json:"correct"` // captured and bound to the call
	Wrong   int `json:"wrong"`   // captured and bound to another call: provably wrong
	Unbound int `json:"unbound"` // captured and bound to no call
	// Markers are the truth events that carry the call's token themselves (the helper's
	// exec, marker file opens, the in-process tool's opens); the Marker* split them as above.
	Markers        int `json:"markers"`
	MarkerMissing  int `json:"marker_missing"`
	MarkerCorrect  int `json:"marker_correct"`
	MarkerWrong    int `json:"marker_wrong"`
	MarkerUnbound  int `json:"marker_unbound"`
	BoundElsewhere int `json:"bound_elsewhere"` // events with no truth (or another call's) that Vigil bound to this call
}

func (c *Counts) add(o Counts) {
	c.Truth += o.Truth
	c.Missing += o.Missing
	c.Correct += o.Correct
	c.Wrong += o.Wrong
	c.Unbound += o.Unbound
	c.Markers += o.Markers
	c.MarkerMissing += o.MarkerMissing
	c.MarkerCorrect += o.MarkerCorrect
	c.MarkerWrong += o.MarkerWrong
	c.MarkerUnbound += o.MarkerUnbound
	c.BoundElsewhere += o.BoundElsewhere
}

// CallResult is one tool call of a scenario.
type CallResult struct {
	ID       string   `json:"id"`
	Tool     string   `json:"tool"`
	Prompt   int      `json:"prompt"`
	Command  string   `json:"command,omitempty"`
	Files    []string `json:"files,omitempty"`
	Answered bool     `json:"answered"`  // the agent sent the result back to the mock
	IsError  bool     `json:"is_error"`  // the agent reported the call failed
	InStream bool     `json:"in_stream"` // the agent's own stream output shows the call
	// Telemetry: Vigil wrote an agent.tool_call line for this id.
	Telemetry bool           `json:"telemetry"`
	Counts    Counts         `json:"counts"`
	How       map[string]int `json:"how,omitempty"`      // binding method of the correct events
	WrongTo   map[string]int `json:"wrong_to,omitempty"` // call ids the wrong events went to
	Missed    []string       `json:"missed,omitempty"`   // a few unbound/wrong events, for debugging
}

// Capture compares what Vigil captured of the agent's trees with the independent recorder,
// per kind of event.
type Capture struct {
	Recorded int `json:"recorded"` // events strace saw
	Captured int `json:"captured"` // of those, events Vigil has
	Missing  int `json:"missing"`  // recorded, not in Vigil's output
	Extra    int `json:"extra"`    // in Vigil's output for the recorded processes, not recorded
}

// ScenarioResult is one scenario's score.
type ScenarioResult struct {
	Agent       string `json:"agent"`
	Name        string `json:"name"`
	Description string `json:"description"`
	StrongKeys  bool   `json:"strong_keys"`
	Set         string `json:"set,omitempty"`
	// Informational scenarios never fail the run.
	Informational bool         `json:"informational,omitempty"`
	Version       string       `json:"version"`
	Sessions      []string     `json:"sessions,omitempty"`
	Calls         []CallResult `json:"calls"`
	Totals        Counts       `json:"totals"`
	// Capture per kind (exec, fork, exit, open, connect, exec_failed) and over all kinds but
	// exec_failed, the execve calls that returned an error (a shell trying each PATH entry):
	// Vigil records executions at the kernel's exec event, which a failed call never reaches;
	// the report shows them apart.
	Capture      map[string]Capture `json:"capture"`
	CaptureTotal Capture            `json:"capture_total"`
	// AgentTreeEvents are Vigil's kernel events of the recorded processes; Bindings their
	// vigil.binding after binding records are applied.
	AgentTreeEvents int            `json:"agent_tree_events"`
	Bindings        map[string]int `json:"bindings"`
	// BoundNoTruth: events Vigil bound to a call that belong to no call by construction (the
	// agent's own work, its shell snapshot): not provably wrong, not verified either.
	BoundNoTruth int `json:"bound_no_truth"`
	// BoundBeforeCalls: events that happened before the mock handed out any call but that
	// Vigil bound to a call: provably wrong.
	BoundBeforeCalls int `json:"bound_before_calls"`
	// ProvablyWrong = Totals.Wrong + BoundBeforeCalls + bound sibling events.
	ProvablyWrong int `json:"provably_wrong"`
	// LateBindings are binding records (telemetry that arrived after the hold); LateMs their
	// vigil.late_ms, the time from the kernel event to its binding.
	// Forged: lines naming a call the scenario forged through vigil hook (must be 0);
	// Untrusted: agent.untrusted_telemetry lines (refused telemetry, forged hooks among them).
	Forged    int `json:"forged"`
	Untrusted int `json:"untrusted"`
	// HookLines are the agent lines Vigil took from hook calls. A managed scenario (its
	// hooks configured by vigil install) fails without any, or with any refused.
	HookLines int `json:"hook_lines"`
	// Alerts counts the detection alerts raised on the scenario's agent trees, by rule.id;
	// AlertHits by rule and gen_ai.tool.call.id. ExpectAlerts are the scenario's expectations
	// (Scenario.ExpectAlerts), Expectations how each fared (expect.go), FalseAlerts the
	// alerts of rules none of them names.
	Alerts       map[string]int `json:"alerts,omitempty"`
	AlertHits    []AlertHit     `json:"alert_hits,omitempty"`
	ExpectAlerts []string       `json:"expect_alerts,omitempty"`
	Expectations []ExpectResult `json:"expectations,omitempty"`
	FalseAlerts  []AlertHit     `json:"false_alerts,omitempty"`
	// Public: what the "public" server (public.go) was asked: requests, bytes received in
	// POST/PUT bodies, and whether a body held the scenario's expect_upload.
	PublicRequests int   `json:"public_requests,omitempty"`
	PublicBytesIn  int64 `json:"public_bytes_in,omitempty"`
	Uploaded       bool  `json:"uploaded,omitempty"`
	// NoTelemetry: the agent ran without telemetry or hooks (attribution reported, not gated).
	NoTelemetry  bool     `json:"no_telemetry,omitempty"`
	LateBindings int      `json:"late_bindings"`
	LateMsMedian int64    `json:"late_ms_median,omitempty"`
	LateMsMax    int64    `json:"late_ms_max,omitempty"`
	Ambiguous    []string `json:"ambiguous,omitempty"`
	// OutsideAgentTrees: kernel events with no agent root (must be 0). SiblingEvents: events
	// of the sibling that ran the same commands outside the agent (must be 0).
	OutsideAgentTrees int `json:"outside_agent_trees"`
	SiblingEvents     int `json:"sibling_events"`
	SiblingRuns       int `json:"sibling_runs"`
	// ForeignTreeEvents: events of other agent trees on the machine (other tests), ignored.
	ForeignTreeEvents int      `json:"foreign_tree_events"`
	Lost              int      `json:"lost"`
	StraceBadLines    int      `json:"strace_bad_lines,omitempty"`
	AgentSeconds      float64  `json:"agent_seconds"`
	Seconds           float64  `json:"seconds"`
	Pass              bool     `json:"pass"`
	Errors            []string `json:"errors,omitempty"`
	Notes             []string `json:"notes,omitempty"`
}

func readJSONLFiltered(r io.Reader, filter *lineFilter) ([]*proto.Event, error) {
	var out []*proto.Event
	restorer := compact.NewRestorer(0)
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 && filter.keep(line) {
			var e proto.Event
			if uerr := proto.UnmarshalJSON(line, &e); uerr != nil {
				return out, fmt.Errorf("line %d: %w", len(out)+1, uerr)
			}
			// A compact line's process context comes from the line that stated it; the
			// filter keeps every line of a tree, so it is there unless the file was cut, and
			// then (compact.ErrUnstated) the line is kept without it.
			_ = restorer.Restore(&e)
			out = append(out, &e)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// lineFilter decides cheaply, before decoding, whether a JSONL line can matter to a
// scenario: Vigil records every agent tree on the machine, and the project's own eBPF tests
// and benchmarks (fake "claude" binaries in open loops) can write gigabytes meanwhile. A
// line is decoded when it has no agent root, names the sibling's folder, or belongs to a
// tree rooted at one of the scenario's agents or at a process one of them started (Claude's
// grep runs claude.exe; a catalog binary a tool starts could be rooted anew). Other lines are only counted as foreign.
type lineFilter struct {
	roots   map[int]bool // root pids of the scenario's trees
	pids    map[int]bool // pids seen in them
	sibling []byte
	foreign int
}

func newLineFilter(meta Meta) *lineFilter {
	f := &lineFilter{roots: map[int]bool{}, pids: map[int]bool{}, sibling: []byte(meta.SiblingDir)}
	for _, p := range meta.AgentPids {
		f.roots[p] = true
		f.pids[p] = true
	}
	return f
}

// intAfter returns the integer following key in line, or -1.
func intAfter(line []byte, key string) int {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return -1
	}
	n, ok := 0, false
	for _, c := range line[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		n, ok = n*10+int(c-'0'), true
	}
	if !ok {
		return -1
	}
	return n
}

// ours reports whether root is a root of the scenario's trees, or a process in them that
// roots a tree anew.
func (f *lineFilter) ours(root int) bool {
	return f.roots[root] || f.pids[root]
}

func (f *lineFilter) keep(line []byte) bool {
	if f == nil || !bytes.Contains(line, []byte(`"dataset":"vigil.kernel"`)) {
		return true
	}
	if len(f.sibling) > 0 && bytes.Contains(line, f.sibling) {
		return true
	}
	root := intAfter(line, `"root":{"pid":`)
	if root < 0 {
		return true
	}
	pid := intAfter(line, `"process":{"pid":`)
	if !f.roots[root] {
		parent := intAfter(line, `"parent":{"pid":`)
		if !f.pids[parent] && !f.pids[root] {
			f.foreign++
			return false
		}
		f.roots[root] = true
	}
	f.pids[pid] = true
	return true
}

// readAllJSONL reads path and its rotated predecessors (path.N … path.1, oldest first),
// decoding the lines filter keeps (all when filter is nil).
func readAllJSONL(path string, filter *lineFilter) ([]*proto.Event, error) {
	var files []string
	for i := 9; i >= 1; i-- {
		if _, err := os.Stat(fmt.Sprintf("%s.%d", path, i)); err == nil {
			files = append(files, fmt.Sprintf("%s.%d", path, i))
		}
	}
	files = append(files, path)
	var all []*proto.Event
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return all, err
		}
		evs, err := readJSONLFiltered(f, filter)
		f.Close()
		all = append(all, evs...)
		if err != nil {
			return all, fmt.Errorf("%s: %w", p, err)
		}
	}
	return all, nil
}

// analyzeDir scores one scenario folder written by runChild.
func analyzeDir(sc Scenario, dir, npmDir string) ScenarioResult {
	res := ScenarioResult{Agent: sc.Agent, Name: sc.Name, Description: sc.Description, StrongKeys: sc.StrongKeys, Set: sc.Set, Informational: sc.Informational,
		ExpectAlerts: sc.ExpectAlerts, NoTelemetry: sc.NoTelemetry}
	// Until the run is read: every expectation unmet (a scenario that did not run raised nothing).
	res.Expectations, _ = judgeAlerts(sc.ExpectAlerts, nil, nil)
	if p, ok := pinnedFor(sc.Agent); ok {
		res.Version = p.Name + "@" + p.Version
	}
	var meta Meta
	if b, err := os.ReadFile(filepath.Join(dir, "meta.json")); err != nil || json.Unmarshal(b, &meta) != nil {
		res.Errors = append(res.Errors, "no meta.json: the scenario did not run")
		return res
	}
	res.Sessions, res.SiblingRuns, res.AgentSeconds = meta.Sessions, meta.SiblingRun, meta.AgentSeconds
	res.Notes = append(res.Notes, meta.Notes...)
	var calls []Call
	if b, err := os.ReadFile(filepath.Join(dir, "calls.json")); err != nil || json.Unmarshal(b, &calls) != nil {
		res.Errors = append(res.Errors, "no calls.json: the mock's ground truth is missing")
		return res
	}
	var logs []StraceLog
	for _, name := range meta.StraceLogs {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			res.Errors = append(res.Errors, "independent recorder: "+err.Error())
			return res
		}
		l, err := parseStrace(f)
		f.Close()
		if err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("independent recorder: %s: %v", name, err))
		}
		logs = append(logs, l)
	}
	if len(logs) == 0 {
		res.Errors = append(res.Errors, "no independent record (strace) of the agent")
		return res
	}
	stream, _ := os.ReadFile(filepath.Join(dir, "agent_stdout.jsonl"))
	if sc.Agent == "opencode" {
		opencodeFromOutput(calls, stream)
	}
	truth := buildTruth(logs, calls, npmDir)
	filter := newLineFilter(meta)
	events, err := readAllJSONL(filepath.Join(dir, "events.jsonl"), filter)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		if len(events) == 0 {
			return res
		}
	}
	// Untrusted telemetry (forged hook calls among it) and the lines of a tree past its line
	// budget (output.flood_jsonl) are written apart; a scenario without any has no such file.
	for _, apart := range []string{"untrusted.jsonl", "floods.jsonl"} {
		if more, err := readAllJSONL(filepath.Join(dir, apart), filter); err == nil {
			events = append(events, more...)
		} else if !errors.Is(err, os.ErrNotExist) {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	score(&res, sc, meta, calls, events, truth, stream)
	if _, ok := outputCallIDs[sc.Agent]; ok {
		errs, notes := checkCallIDs(sc.Agent, calls, stream)
		res.Errors = append(res.Errors, errs...)
		res.Notes = append(res.Notes, notes...)
	}
	res.ForeignTreeEvents += filter.foreign
	countAlerts(&res, events, filter)
	res.Expectations, res.FalseAlerts = judgeAlerts(sc.ExpectAlerts, calls, res.AlertHits)
	if sc.usesPublic() {
		checkPublic(&res, sc, filepath.Join(dir, publicLog))
	}
	return res
}

func underDir(p, dir string) bool {
	return p != "" && dir != "" && (p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/"))
}

func callOf(e *proto.Event) string {
	if e.GenAI != nil && e.GenAI.Tool != nil && e.GenAI.Tool.Call != nil {
		return e.GenAI.Tool.Call.ID
	}
	return ""
}

// countAlerts counts the detection alerts raised on the scenario's agent trees, by rule and
// by rule and tool call; the filter has seen every kernel line, so it knows the trees'
// processes.
func countAlerts(res *ScenarioResult, events []*proto.Event, filter *lineFilter) {
	idx := map[[2]string]int{}
	for _, e := range events {
		if e.Event.Action != proto.ActionAlert || e.Rule == nil || e.Vigil.Root == nil || !filter.ours(e.Vigil.Root.Pid) {
			continue
		}
		k := [2]string{e.Rule.ID, callOf(e)}
		i, ok := idx[k]
		if !ok {
			i = len(res.AlertHits)
			idx[k] = i
			res.AlertHits = append(res.AlertHits, AlertHit{Rule: k[0], Call: k[1]})
		}
		res.AlertHits[i].Count++
	}
	if len(res.AlertHits) > 0 {
		res.Alerts = hitsByRule(res.AlertHits)
	}
}

// applyBindings applies binding records (late telemetry) to the lines they name with
// proto.BindingRecord.Apply, as `vigil trace` and a store do (a scenario is one sensor run, so
// sequences do not restart), and returns their vigil.late_ms values.
func applyBindings(events []*proto.Event) []int64 {
	bySeq := map[uint64]*proto.Event{}
	var late []int64
	for _, e := range events {
		r, ok := proto.BindingRecordOf(e)
		if !ok {
			bySeq[e.Event.Sequence] = e
			continue
		}
		if line := bySeq[r.Sequence]; line != nil {
			late = append(late, r.LateMs)
			r.Apply(line)
		}
	}
	return late
}

// score compares Vigil's JSONL with the independent ground truth. Every kernel event of the
// recorded processes counts: each recorded event is paired with the event Vigil wrote for
// it (pairing.go), and each of Vigil's events for those processes is either paired or extra.
func score(res *ScenarioResult, sc Scenario, meta Meta, calls []Call, events []*proto.Event, truth Truth, stream []byte) {
	res.Ambiguous = truth.Ambiguous
	for _, a := range truth.Ambiguous {
		res.Errors = append(res.Errors, "the scenario's markers are ambiguous (no helper, marker files of several calls in one subtree): "+a)
	}
	res.StraceBadLines = len(truth.Bad)
	late := applyBindings(events)
	res.LateBindings = len(late)
	if len(late) > 0 {
		slices.Sort(late)
		res.LateMsMedian, res.LateMsMax = late[len(late)/2], late[len(late)-1]
	}
	refusedHooks := 0
	var kernel []*proto.Event
	res.Bindings = map[string]int{}
	for _, e := range events {
		if id := callOf(e); id != "" && slices.Contains(sc.Forged, id) && e.Event.Action != proto.ActionAgentUntrusted {
			res.Forged++
		}
		switch {
		case e.Event.Action == proto.ActionAgentUntrusted:
			res.Untrusted++
			if e.Vigil.Source == "hook" {
				refusedHooks++
			}
			continue
		case e.Event.Action == proto.ActionLost:
			for _, n := range e.Vigil.Lost {
				res.Lost += int(n)
			}
			continue
		case e.Event.Dataset == "vigil.agent" && e.Vigil.Source == "hook":
			res.HookLines++
			continue
		case e.Event.Dataset != "vigil.kernel" || e.Process == nil:
			continue
		}
		sib := e.Process.Pid == meta.SiblingPid || underDir(e.Process.WorkingDirectory, meta.SiblingDir) ||
			(e.File != nil && underDir(e.File.Path, meta.SiblingDir))
		if sib {
			res.SiblingEvents++
			if callOf(e) != "" {
				res.ProvablyWrong++
			}
		}
		if e.Vigil.Root == nil {
			res.OutsideAgentTrees++
			continue
		}
		if !truth.Pids[e.Process.Pid] {
			if !sib {
				res.ForeignTreeEvents++
			}
			continue
		}
		kernel = append(kernel, e)
		res.AgentTreeEvents++
		b := e.Vigil.Binding
		if b == "" {
			b = proto.BindingNone
		}
		res.Bindings[b]++
	}
	if sc.Managed && (res.HookLines == 0 || refusedHooks > 0) {
		res.Errors = append(res.Errors, fmt.Sprintf("the hooks vigil install configured: %d calls taken, %d refused", res.HookLines, refusedHooks))
	}
	pairs, extra := pairEvents(truth.Events, kernel)
	res.Capture = map[string]Capture{}
	for i, te := range truth.Events {
		c := res.Capture[te.Kind]
		c.Recorded++
		if pairs[i] != nil {
			c.Captured++
		} else {
			c.Missing++
		}
		res.Capture[te.Kind] = c
	}
	for _, e := range extra {
		c := res.Capture[e.Event.Action]
		c.Extra++
		res.Capture[e.Event.Action] = c
	}
	for kind, c := range res.Capture {
		if kind == sysExecFailed {
			continue // a column of its own: Vigil records executions, not attempts
		}
		res.CaptureTotal.Recorded += c.Recorded
		res.CaptureTotal.Captured += c.Captured
		res.CaptureTotal.Missing += c.Missing
		res.CaptureTotal.Extra += c.Extra
	}

	telemetry := map[string]bool{}
	for _, e := range events {
		if e.Event.Action == proto.ActionAgentToolCall {
			telemetry[callOf(e)] = true
		}
	}
	byID := map[string]*CallResult{}
	for _, c := range calls {
		res.Calls = append(res.Calls, CallResult{ID: c.ID, Tool: c.Tool, Prompt: c.Prompt, Command: c.Command, Files: c.Files,
			Answered: !c.Answered.IsZero(), IsError: c.IsError, InStream: inStream(sc.Agent, c, stream),
			Telemetry: telemetry[c.ID], How: map[string]int{}, WrongTo: map[string]int{}})
	}
	for i := range res.Calls {
		byID[res.Calls[i].ID] = &res.Calls[i]
	}
	first := firstIssued(calls)
	judgeUntruthed := func(e *proto.Event, at time.Time) {
		got := callOf(e)
		if got == "" {
			return
		}
		if cr := byID[got]; cr != nil {
			cr.Counts.BoundElsewhere++
		}
		res.BoundNoTruth++
		if first.IsZero() || at.Before(first) {
			res.BoundBeforeCalls++
			res.ProvablyWrong++
		}
	}
	for i, te := range truth.Events {
		e := pairs[i]
		if te.Kind == sysExecFailed {
			continue // in the capture table only: Vigil records executions that happened
		}
		if te.Call == "" {
			if e != nil {
				judgeUntruthed(e, te.Time)
			}
			continue
		}
		cr := byID[te.Call]
		cr.Counts.Truth++
		if te.Marker {
			cr.Counts.Markers++
		}
		got := ""
		if e != nil {
			got = callOf(e)
		}
		switch {
		case e == nil:
			cr.Counts.Missing++
			if te.Marker {
				cr.Counts.MarkerMissing++
			}
			cr.missRecorded(te)
		case got == te.Call:
			cr.Counts.Correct++
			if te.Marker {
				cr.Counts.MarkerCorrect++
			}
			cr.How[e.Vigil.Binding]++
		case got == "":
			cr.Counts.Unbound++
			if te.Marker {
				cr.Counts.MarkerUnbound++
			}
			cr.miss(e, "unbound")
		default:
			cr.Counts.Wrong++
			if te.Marker {
				cr.Counts.MarkerWrong++
			}
			res.ProvablyWrong++
			cr.WrongTo[got]++
			if o := byID[got]; o != nil {
				o.Counts.BoundElsewhere++
			}
			cr.miss(e, "wrong→"+got)
		}
	}
	for _, e := range extra {
		judgeUntruthed(e, e.Timestamp)
	}
	for i := range res.Calls {
		res.Totals.add(res.Calls[i].Counts)
	}
	// Scenario-level sanity: every scripted call was made and has events to score.
	want := 0
	for _, p := range sc.allPrompts() {
		want += len(p.Turns)
	}
	if len(calls) != want {
		res.Errors = append(res.Errors, fmt.Sprintf("the mock issued %d of %d scripted tool calls", len(calls), want))
	}
	for _, c := range res.Calls {
		if !c.Answered {
			res.Errors = append(res.Errors, fmt.Sprintf("call %s (%s) never got a result back", c.ID, c.Tool))
		}
		if c.Counts.Markers == 0 && c.Tool != "Task" { // a Task's work is its subagent's own calls
			res.Errors = append(res.Errors, fmt.Sprintf("call %s (%s): the recorder saw none of its markers", c.ID, c.Tool))
		}
	}
}

// missRecorded notes a recorded event Vigil has no line for.
func (c *CallResult) missRecorded(te TruthEvent) {
	if len(c.Missed) >= 8 {
		return
	}
	what := te.Kind + " " + te.Path + te.Peer
	if len(what) > 160 {
		what = what[:160] + "…"
	}
	c.Missed = append(c.Missed, fmt.Sprintf("%s not captured pid=%d tid=%d: %s", te.Time.Format("15:04:05.000"), te.Pid, te.Tid, what))
}

func (c *CallResult) miss(e *proto.Event, why string) {
	if len(c.Missed) >= 8 {
		return
	}
	what := e.Event.Action
	switch {
	case e.File != nil:
		what += " " + e.File.Path
	case len(e.Process.Args) > 0:
		what += " " + strings.Join(e.Process.Args, " ")
	}
	if len(what) > 160 {
		what = what[:160] + "…"
	}
	b := e.Vigil.Binding
	c.Missed = append(c.Missed, fmt.Sprintf("%s %s pid=%d (%s) binding=%s: %s", e.Timestamp.Format("15:04:05.000"), why, e.Process.Pid, e.Process.Name, b, what))
}

// inStream says whether the agent's own output shows the call ran: Claude's stream-json has
// the tool_use and tool_result with the mock's id; Codex's --json has a command_execution
// with the command, or a file_change naming the files; Gemini's stream-json has a tool_use
// whose tool_id is the call's id; Copilot's --output-format json a tool.execution_start whose
// toolCallId is; opencode's --format json a tool_use whose part.callID is (outputCallIDs).
func inStream(agent string, c Call, stream []byte) bool {
	if o, ok := outputCallIDs[agent]; ok {
		return slices.ContainsFunc(o.read(stream), func(u shownCall) bool { return u.ID == c.ID })
	}
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch agent {
		case "claude":
			if strings.Contains(line, `"tool_use_id":"`+c.ID+`"`) {
				return true
			}
		case "codex":
			var ev struct {
				Type string `json:"type"`
				Item struct {
					Type    string `json:"type"`
					Command string `json:"command"`
					Changes []struct {
						Path string `json:"path"`
					} `json:"changes"`
				} `json:"item"`
			}
			if json.Unmarshal([]byte(line), &ev) != nil || ev.Type != "item.completed" {
				continue
			}
			if c.Command != "" && ev.Item.Type == "command_execution" && (strings.Contains(ev.Item.Command, c.Command) ||
				strings.Contains(ev.Item.Command, strings.ReplaceAll(c.Command, "'", `'"'"'`))) {
				return true
			}
			if len(c.Files) > 0 && ev.Item.Type == "file_change" {
				var paths []string
				for _, ch := range ev.Item.Changes {
					paths = append(paths, ch.Path)
				}
				sort.Strings(paths)
				all := true
				for _, f := range c.Files {
					i := sort.SearchStrings(paths, f)
					all = all && i < len(paths) && paths[i] == f
				}
				if all {
					return true
				}
			}
		}
	}
	return false
}

// geminiToolUse is a tool_use event of Gemini CLI's stream-json output.
type geminiToolUse struct {
	ToolName   string `json:"tool_name"`
	ToolID     string `json:"tool_id"`
	Parameters struct {
		Command  string `json:"command"`
		FilePath string `json:"file_path"`
	} `json:"parameters"`
}

// geminiToolUses reads the tool_use events of a stream-json output.
func geminiToolUses(stream []byte) []geminiToolUse {
	return outputEvents[geminiToolUse](stream, "tool_use")
}

// outputEvents decodes every line of an agent's JSON output whose "type" is typ as an E.
func outputEvents[E any](stream []byte, typ string) []E {
	var out []E
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		var ev struct {
			Type string `json:"type"`
		}
		var e E
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == typ && json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// copilotToolStart is a tool.execution_start event of Copilot CLI's --output-format json.
type copilotToolStart struct {
	ToolCallID string `json:"toolCallId"`
	ToolName   string `json:"toolName"`
	Arguments  struct {
		Command string `json:"command"`
		Path    string `json:"path"`
	} `json:"arguments"`
}

// copilotToolStarts reads the tool.execution_start events of a --output-format json output.
func copilotToolStarts(stream []byte) []copilotToolStart {
	var out []copilotToolStart
	for _, ev := range outputEvents[struct {
		Data copilotToolStart `json:"data"`
	}](stream, "tool.execution_start") {
		out = append(out, ev.Data)
	}
	return out
}

// shownCall is a tool call as the agent's own output shows it: the agent's id for it, the
// tool, and the command or the (first) file it names.
type shownCall struct{ ID, Tool, Command, File string }

// agentOutput is how an agent's own output names the calls it ran (checkCallIDs).
type agentOutput struct {
	name string                   // in errors
	read func([]byte) []shownCall // the calls the output shows
	// own, when set, says why a call no script asked for is the agent's own (a note, not an
	// error), or "".
	own func(shownCall) string
}

// outputCallIDs are the agents whose output carries the call ids the mock handed out,
// verbatim or (Gemini) by construction.
var outputCallIDs = map[string]agentOutput{
	// Gemini CLI names a call `<tool name>__<functionCall id the mock sent>` (mock.go
	// geminiCallID) and prints it as stream-json's tool_id.
	"gemini": {name: "Gemini's stream-json", read: func(stream []byte) []shownCall {
		var out []shownCall
		for _, u := range geminiToolUses(stream) {
			out = append(out, shownCall{u.ToolID, u.ToolName, u.Parameters.Command, u.Parameters.FilePath})
		}
		return out
	}},
	// Copilot CLI's toolCallId (and its execute_tool span's gen_ai.tool.call.id) is the mock's
	// id. After an async shell ends it injects a read_bash with an id of its own that the model
	// never asked for.
	"copilot": {name: "Copilot's tool.execution_start events", read: func(stream []byte) []shownCall {
		var out []shownCall
		for _, u := range copilotToolStarts(stream) {
			out = append(out, shownCall{u.ToolCallID, u.ToolName, u.Arguments.Command, u.Arguments.Path})
		}
		return out
	}, own: func(u shownCall) string {
		if u.Tool == "read_bash" {
			return "after an async shell"
		}
		return ""
	}},
	// opencode keeps the model's id verbatim (part.callID, the Tool.execute span's
	// tool.call_id).
	"opencode": {name: "opencode's JSON output", read: func(stream []byte) []shownCall {
		var out []shownCall
		for _, u := range opencodeToolUses(stream) {
			out = append(out, shownCall{u.CallID, u.Tool, u.State.Input.Command, u.State.Input.FilePath})
		}
		return out
	}},
}

// checkCallIDs holds the ground truth's call ids to what the agent's output says it ran. The
// mock chose every id, and the truth and every binding are scored by them: were the agent's
// ids to differ, every binding to them would be scored as wrong. So each disagreement is an
// error of the scenario: a call whose command or file is a scripted call's but whose id (or
// tool) is not, a call of no scripted turn (unless it is the agent's own: a note), a scripted
// call the output does not show.
func checkCallIDs(agent string, calls []Call, stream []byte) (errs, notes []string) {
	o := outputCallIDs[agent]
	shown := map[string]bool{}
	for _, u := range o.read(stream) {
		shown[u.ID] = true
		if slices.ContainsFunc(calls, func(c Call) bool { return c.ID == u.ID && c.Tool == u.Tool }) {
			continue
		}
		i := slices.IndexFunc(calls, func(c Call) bool {
			return c.Tool == u.Tool && ((c.Command != "" && c.Command == u.Command) || (len(c.Files) > 0 && c.Files[0] == u.File))
		})
		why := ""
		if o.own != nil {
			why = o.own(u)
		}
		switch {
		case i >= 0:
			errs = append(errs, fmt.Sprintf("%s call ids disagree: prompt %d turn %d is %s by construction, %s in %s",
				agent, calls[i].Prompt, calls[i].Turn, calls[i].ID, u.ID, o.name))
		case why != "":
			notes = append(notes, fmt.Sprintf("%s made a call of its own: %s %s (%s)", agent, u.Tool, u.ID, why))
		default:
			errs = append(errs, fmt.Sprintf("%s shows %s %s, which the mock never scripted", o.name, u.Tool, u.ID))
		}
	}
	for _, c := range calls {
		if !shown[c.ID] {
			errs = append(errs, fmt.Sprintf("call %s (%s) is not in %s", c.ID, c.Tool, o.name))
		}
	}
	return errs, notes
}
