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
	"sort"
	"strings"

	"github.com/vigil-sensor/vigil/proto"
)

// Counts are kernel events scored against the ground truth.
type Counts struct {
	GroundTruth int `json:"ground_truth"` // events of the call (its shell's subtree, or its file opens)
	Correct     int `json:"correct"`      // bound to that call
	Wrong       int `json:"wrong"`        // bound to another call
	Unbound     int `json:"unbound"`      // bound to no call
	// Extra are events outside every call's ground truth that Vigil bound to this call (e.g.
	// the shell snapshot Claude takes before its first Bash command): reported, not scored.
	Extra int `json:"extra"`
}

func (c *Counts) add(o Counts) {
	c.GroundTruth += o.GroundTruth
	c.Correct += o.Correct
	c.Wrong += o.Wrong
	c.Unbound += o.Unbound
	c.Extra += o.Extra
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
	Shells    int            `json:"shells,omitempty"` // processes whose argv holds the command
	Counts    Counts         `json:"counts"`
	How       map[string]int `json:"how,omitempty"`      // binding method of the correct events
	WrongTo   map[string]int `json:"wrong_to,omitempty"` // call ids the wrong events went to
	Missed    []string       `json:"missed,omitempty"`   // a few unbound/wrong events, for debugging
}

// ScenarioResult is one scenario's score.
type ScenarioResult struct {
	Agent       string `json:"agent"`
	Name        string `json:"name"`
	Description string `json:"description"`
	StrongKeys  bool   `json:"strong_keys"`
	// Informational scenarios never fail the run.
	Informational bool         `json:"informational,omitempty"`
	Version       string       `json:"version"`
	Sessions      []string     `json:"sessions,omitempty"`
	Calls         []CallResult `json:"calls"`
	Totals        Counts       `json:"totals"`
	// AgentTreeEvents are the kernel events of the scenario's agent trees; UnboundInTree
	// those bound to no call (startup, git, IDE probe, the agent's own file activity).
	AgentTreeEvents int            `json:"agent_tree_events"`
	UnboundInTree   int            `json:"unbound_in_tree"`
	Bindings        map[string]int `json:"bindings"` // vigil.binding over the agent-tree events
	// OutsideAgentTrees: kernel events with no agent root (must be 0). SiblingEvents: events
	// of the sibling that ran the same commands outside the agent (must be 0).
	OutsideAgentTrees int `json:"outside_agent_trees"`
	SiblingEvents     int `json:"sibling_events"`
	SiblingRuns       int `json:"sibling_runs"`
	// ForeignTreeEvents: events of other agent trees on the machine (other tests), ignored.
	ForeignTreeEvents int      `json:"foreign_tree_events"`
	Lost              int      `json:"lost"`
	Seconds           float64  `json:"seconds"`
	Pass              bool     `json:"pass"`
	Errors            []string `json:"errors,omitempty"`
	Notes             []string `json:"notes,omitempty"`
}

// readJSONL decodes Vigil's JSONL output.
func readJSONL(r io.Reader) ([]*proto.Event, error) { return readJSONLFiltered(r, nil) }

func readJSONLFiltered(r io.Reader, filter *lineFilter) ([]*proto.Event, error) {
	var out []*proto.Event
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 && filter.keep(line) {
			var e proto.Event
			if uerr := proto.UnmarshalJSON(line, &e); uerr != nil {
				return out, fmt.Errorf("line %d: %w", len(out)+1, uerr)
			}
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
func analyzeDir(sc Scenario, dir string) ScenarioResult {
	res := ScenarioResult{Agent: sc.Agent, Name: sc.Name, Description: sc.Description, StrongKeys: sc.StrongKeys, Informational: sc.Informational}
	for _, p := range pinned {
		if (sc.Agent == "claude") == strings.Contains(p.Name, "claude") {
			res.Version = p.Name + "@" + p.Version
		}
	}
	var meta Meta
	if b, err := os.ReadFile(filepath.Join(dir, "meta.json")); err != nil || json.Unmarshal(b, &meta) != nil {
		res.Errors = append(res.Errors, "no meta.json: the scenario did not run")
		return res
	}
	res.Sessions, res.SiblingRuns = meta.Sessions, meta.SiblingRun
	res.Notes = append(res.Notes, meta.Notes...)
	var calls []Call
	if b, err := os.ReadFile(filepath.Join(dir, "calls.json")); err != nil || json.Unmarshal(b, &calls) != nil {
		res.Errors = append(res.Errors, "no calls.json: the mock's ground truth is missing")
		return res
	}
	filter := newLineFilter(meta)
	events, err := readAllJSONL(filepath.Join(dir, "events.jsonl"), filter)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		if len(events) == 0 {
			return res
		}
	}
	stream, _ := os.ReadFile(filepath.Join(dir, "agent_stdout.jsonl"))
	score(&res, sc, meta, calls, events, stream)
	res.ForeignTreeEvents += filter.foreign
	return res
}

func argvHas(args []string, cmd string) bool {
	if cmd == "" || len(args) == 0 {
		return false
	}
	argv := strings.Join(args, " ")
	return strings.Contains(argv, cmd) || strings.Contains(argv, strings.ReplaceAll(cmd, "'", `'"'"'`))
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

// score compares the JSONL with the ground truth.
//
// A shell tool call's events are every kernel event of the processes whose argv holds the
// call's command (the tool's shell; the mock makes each command unique), and of all their
// descendants, found through process.parent.entity_id in the JSONL itself. An in-process
// file tool's events are the opens of its files by the agent's own process between the
// moment the mock handed the call out and the moment the result came back.
func score(res *ScenarioResult, sc Scenario, meta Meta, calls []Call, events []*proto.Event, stream []byte) {
	roots := map[int]bool{}
	for _, p := range meta.AgentPids {
		roots[p] = true
	}
	parentOf := map[string]string{}
	rootOf := map[string]int{}
	for _, e := range events {
		if e.Process == nil || e.Process.EntityID == "" {
			continue
		}
		if e.Process.Parent != nil && e.Process.Parent.EntityID != "" {
			parentOf[e.Process.EntityID] = e.Process.Parent.EntityID
		}
		if e.Vigil.Root != nil {
			rootOf[e.Process.EntityID] = e.Vigil.Root.Pid
		}
	}
	pidOf := map[string]int{}
	for _, e := range events {
		if e.Process != nil && e.Process.EntityID != "" {
			pidOf[e.Process.EntityID] = e.Process.Pid
		}
	}
	// ours: the process is, or descends from, one of the agent processes the harness started
	// (a tool may start another agent binary, which Vigil could root anew; Claude's grep is
	// claude.exe with argv0 ugrep, kept in the same tree today).
	oursMemo := map[string]bool{}
	var ours func(ent string, depth int) bool
	ours = func(ent string, depth int) bool {
		if v, ok := oursMemo[ent]; ok {
			return v
		}
		v := roots[pidOf[ent]] || roots[rootOf[ent]]
		if !v && depth < 64 {
			if p, ok := parentOf[ent]; ok {
				v = ours(p, depth+1)
			}
		}
		oursMemo[ent] = v
		return v
	}
	var kernel []*proto.Event
	res.Bindings = map[string]int{}
	for _, e := range events {
		switch {
		case e.Event.Action == proto.ActionLost:
			for _, n := range e.Vigil.Lost {
				res.Lost += int(n)
			}
			continue
		case e.Event.Dataset != "vigil.kernel" || e.Process == nil:
			continue
		}
		sib := e.Process.Pid == meta.SiblingPid || underDir(e.Process.WorkingDirectory, meta.SiblingDir) ||
			(e.File != nil && underDir(e.File.Path, meta.SiblingDir))
		if sib {
			res.SiblingEvents++
		}
		if e.Vigil.Root == nil {
			res.OutsideAgentTrees++
			continue
		}
		if !ours(e.Process.EntityID, 0) {
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
		if callOf(e) == "" {
			res.UnboundInTree++
		}
	}

	// The agent's own processes: what the harness started and, for Codex, the native binary
	// the node wrapper spawns.
	agentPids := map[int]bool{}
	for p := range roots {
		agentPids[p] = true
	}
	for _, e := range kernel {
		if e.Event.Action == proto.ActionExec && e.Process.Parent != nil && roots[e.Process.Parent.Pid] &&
			filepath.Base(e.Process.Executable) == "codex" {
			agentPids[e.Process.Pid] = true
		}
	}

	// Ground truth per call.
	gt := map[*proto.Event]string{}
	shells := map[string]int{}
	for _, c := range calls {
		if c.Command == "" {
			continue
		}
		set := map[string]bool{}
		for _, e := range kernel {
			if e.Event.Action == proto.ActionExec && !agentPids[e.Process.Pid] && argvHas(e.Process.Args, c.Command) {
				set[e.Process.EntityID] = true
			}
		}
		shells[c.ID] = len(set)
		for changed := true; changed; {
			changed = false
			for _, e := range kernel {
				if set[e.Process.EntityID] || e.Process.Parent == nil {
					continue
				}
				if set[e.Process.Parent.EntityID] {
					set[e.Process.EntityID] = true
					changed = true
				}
			}
		}
		for _, e := range kernel {
			if set[e.Process.EntityID] {
				gt[e] = c.ID
			}
		}
	}
	for _, c := range calls {
		if len(c.Files) == 0 || c.Issued.IsZero() || c.Answered.IsZero() {
			continue
		}
		for _, e := range kernel {
			if e.Event.Action != proto.ActionOpen || e.File == nil || !agentPids[e.Process.Pid] {
				continue
			}
			if e.Timestamp.Before(c.Issued) || e.Timestamp.After(c.Answered) {
				continue
			}
			for _, f := range c.Files {
				if e.File.Path == f || strings.HasPrefix(e.File.Path, f+".tmp.") {
					gt[e] = c.ID
				}
			}
		}
	}

	// Telemetry lines and the agent's stream.
	telemetry := map[string]bool{}
	for _, e := range events {
		if e.Event.Action == proto.ActionAgentToolCall {
			telemetry[callOf(e)] = true
		}
	}
	known := map[string]bool{}
	for _, c := range calls {
		known[c.ID] = true
	}
	byID := map[string]*CallResult{}
	for _, c := range calls {
		res.Calls = append(res.Calls, CallResult{ID: c.ID, Tool: c.Tool, Prompt: c.Prompt, Command: c.Command, Files: c.Files,
			Answered: !c.Answered.IsZero(), IsError: c.IsError, InStream: inStream(sc.Agent, c, stream),
			Telemetry: telemetry[c.ID], Shells: shells[c.ID], How: map[string]int{}, WrongTo: map[string]int{}})
	}
	for i := range res.Calls {
		byID[res.Calls[i].ID] = &res.Calls[i]
	}
	for _, e := range kernel {
		want, inGT := gt[e]
		got := callOf(e)
		if !inGT {
			if cr := byID[got]; cr != nil {
				cr.Counts.Extra++
			}
			continue
		}
		cr := byID[want]
		cr.Counts.GroundTruth++
		switch {
		case got == want:
			cr.Counts.Correct++
			cr.How[e.Vigil.Binding]++
		case got == "":
			cr.Counts.Unbound++
			cr.miss(e, "unbound")
		default:
			cr.Counts.Wrong++
			cr.WrongTo[got]++
			cr.miss(e, "wrong→"+got)
		}
	}
	for i := range res.Calls {
		res.Totals.add(res.Calls[i].Counts)
	}
	// Scenario-level sanity: every scripted call was made and has events to score.
	want := 0
	for _, p := range sc.Prompts {
		want += len(p.Turns)
	}
	if len(calls) != want {
		res.Errors = append(res.Errors, fmt.Sprintf("the mock issued %d of %d scripted tool calls", len(calls), want))
	}
	for _, c := range res.Calls {
		if !c.Answered {
			res.Errors = append(res.Errors, fmt.Sprintf("call %s (%s) never got a result back", c.ID, c.Tool))
		}
		if c.Counts.GroundTruth == 0 {
			res.Errors = append(res.Errors, fmt.Sprintf("call %s (%s): no kernel events found for it in the JSONL", c.ID, c.Tool))
		}
	}
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
// with the command, or a file_change naming the files.
func inStream(agent string, c Call, stream []byte) bool {
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
