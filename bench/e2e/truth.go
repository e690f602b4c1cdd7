package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Ground truth, by construction and from an independent recorder. Nothing here reads Vigil's
// output: which tool call each recorded event belongs to is decided from the strace record
// of the agent's process tree and from the markers the scenario placed in each call.
//
// Markers: every scripted tool call k of prompt p carries the token vmark_<p>_<k>_. A shell
// call runs the helper .e2e/vmark_<p>_<k>_ (an exec whose name carries the token), which
// reads its own marker file and leaves a background grandchild that reads another one after
// the call has ended; an in-process file tool (Read, Write, Edit, apply_patch) works on a
// file whose name carries the token.
//
// Rules, in order:
//   - The agent's own processes are the recorded root and the processes forked from them
//     that only ever executed, or tried to execute, agent images (the npm-installed CLI,
//     node, env).
//   - Every other process descends from a tool root: a process forked by an agent process.
//     All events of a tool root's subtree (forks, execs, opens, connects, exits, background
//     grandchildren included, however they were re-parented later) belong to the call whose
//     helper was executed in that subtree, the last one executed where there are several (a
//     scenario whose command holds another call's command puts its own helper last);
//     failing that, to the one call whose files in
//     .e2e/ the subtree opened; otherwise to no call (the agent's own shells: its snapshot,
//     its git status, which reads the scenario's marked files).
//   - Except a tool root that executed git and nothing else: that is the agent's own git,
//     never a call's, whatever it opens (opencode's snapshot `git --git-dir <its snapshot>
//     --work-tree <repo> add/write-tree/diff` around every step hashes every file of the
//     repository — the snapshot repository need not share the scenario's .git/info/exclude,
//     so .e2e's marker files of every call included — and its startup git finds the
//     project). By construction no scripted call can be such a process: every agent runs a
//     shell call's command through a shell (bash -c, Codex's setup exec), so a git of a call
//     is a shell's child, never a tool root. Its opens of marker files are not markers.
//   - An open by an agent process of a file carrying call C's token, made while the mock had
//     C out (from handing it out to receiving its result), belongs to C: the in-process tool
//     and the agent's own checks of the call's paths. Where the agent's output states when it
//     finished the call (opencode's tool part state.time.end), only opens until then count:
//     opencode's own file index (fff-scan) and watcher threads re-read what a call wrote after
//     the tool has ended, before the next request. Other agent-process events belong to no call.

// markerRe finds a call's token in a path or a file name.
var markerRe = regexp.MustCompile(`vmark_(\d+)_(\d+)_`)

// markerToken is the token of prompt p, turn t.
func markerToken(p, t int) string { return fmt.Sprintf("vmark_%d_%d_", p, t) }

// markerHelperDir is where, inside the scenario's repository, the marker helpers live.
const markerHelperDir = ".e2e"

// TruthEvent is one recorded event with the process it belongs to and its call.
type TruthEvent struct {
	SysEvent
	Pid   int    // the process (thread group) the event belongs to; fork: the new process
	Call  string // the tool call id it belongs to by construction; "" for none
	Agent bool   // made by one of the agent's own processes
	// Marker: the event itself carries its call's token (helper exec, marker file open).
	Marker bool
}

// Truth is the independent record of one scenario's agent trees.
type Truth struct {
	Events []TruthEvent
	Pids   map[int]bool // every process the recorder saw
	Roots  []int        // the processes the recorder started (the agent)
	// Ambiguous lists tool roots whose subtree ran no helper but opened the .e2e files of
	// more than one call.
	Ambiguous []string
	Bad       []error // strace lines that could not be read
}

// agentImage says whether an executed file is the agent itself: the npm-installed CLI (its
// script, its native binary) or the interpreter and env it is started through.
func agentImage(path, npmDir string) bool {
	if npmDir != "" && strings.HasPrefix(path, strings.TrimSuffix(npmDir, "/")+"/") {
		return true
	}
	switch filepath.Base(path) {
	case "node", "env":
		return true
	}
	return false
}

// callOfToken maps a token's (prompt, turn) to the mock's call id.
type callIndex map[[2]int]Call

func newCallIndex(calls []Call) callIndex {
	idx := callIndex{}
	for _, c := range calls {
		idx[[2]int{c.Prompt, c.Turn}] = c
	}
	return idx
}

// markers returns the calls whose tokens appear in s.
func (idx callIndex) markers(s string) []Call {
	var out []Call
	for _, m := range markerRe.FindAllStringSubmatch(s, -1) {
		p, _ := strconv.Atoi(m[1])
		t, _ := strconv.Atoi(m[2])
		if c, ok := idx[[2]int{p, t}]; ok {
			out = append(out, c)
		}
	}
	return out
}

// buildTruth decides, for every event strace recorded, the process and call it belongs to.
// Each log is one agent process the harness started under strace (a resumed session is a
// second one).
func buildTruth(logs []StraceLog, calls []Call, npmDir string) Truth {
	tr := Truth{Pids: map[int]bool{}}
	var log StraceLog
	var firstTids []int
	for _, l := range logs {
		tr.Bad = append(tr.Bad, l.Bad...)
		if len(l.Events) > 0 {
			firstTids = append(firstTids, l.Events[0].Tid)
		}
		log.Events = append(log.Events, l.Events...)
	}
	idx := newCallIndex(calls)
	// Threads and processes: a task created with CLONE_THREAD belongs to its creator's
	// thread group; any other new task is a process whose parent is its creator's group.
	threadOf := map[int]int{} // thread tid → creating tid
	parentTid := map[int]int{}
	for _, e := range log.Events {
		if e.Kind != sysFork {
			continue
		}
		if e.Thread {
			threadOf[e.Child] = e.Tid
		} else {
			parentTid[e.Child] = e.Tid
		}
	}
	tgid := func(tid int) int {
		for i := 0; i < 64; i++ {
			p, ok := threadOf[tid]
			if !ok {
				return tid
			}
			tid = p
		}
		return tid
	}
	parent := map[int]int{}
	for child, creator := range parentTid {
		parent[child] = tgid(creator)
	}
	roots := map[int]bool{}
	for _, t := range firstTids {
		tr.Roots = append(tr.Roots, tgid(t))
		roots[tgid(t)] = true
	}
	// Agent processes: the root, and processes forked from agent processes whose execs were
	// all agent images. A failed exec counts too: a child that tried to run anything else is
	// a helper of the agent, not the agent (Copilot's sandbox probes, a fork that tries
	// lxc-ls and bwrap, where neither is installed, and exits).
	execs := map[int][]string{}
	for _, e := range log.Events {
		if e.Kind == sysExec || e.Kind == sysExecFailed {
			execs[tgid(e.Tid)] = append(execs[tgid(e.Tid)], e.Path)
		}
	}
	agentMemo := map[int]bool{}
	var isAgent func(pid, depth int) bool
	isAgent = func(pid, depth int) bool {
		if v, ok := agentMemo[pid]; ok {
			return v
		}
		v := true
		for _, p := range execs[pid] {
			v = v && agentImage(p, npmDir)
		}
		if pp, ok := parent[pid]; ok {
			v = v && depth < 64 && isAgent(pp, depth+1)
		} else {
			v = v && roots[pid]
		}
		agentMemo[pid] = v
		return v
	}
	// toolRoot: the process's ancestor (or itself) whose parent is an agent process.
	toolRoot := func(pid int) int {
		for i := 0; i < 64; i++ {
			pp, ok := parent[pid]
			if !ok || isAgent(pp, 0) {
				return pid
			}
			pid = pp
		}
		return pid
	}
	// ownGit: a tool root every exec of which ran git.
	ownGit := func(r int) bool {
		ex := execs[r]
		for _, p := range ex {
			if filepath.Base(p) != "git" {
				return false
			}
		}
		return len(ex) > 0
	}
	type rootMarks struct {
		lastExec     string    // the call of the helper executed last in the subtree
		lastExecTime time.Time // when
		open         map[string]bool
	}
	marks := map[int]*rootMarks{}
	events := make([]TruthEvent, 0, len(log.Events))
	for _, e := range log.Events {
		te := TruthEvent{SysEvent: e, Pid: tgid(e.Tid)}
		if e.Kind == sysFork {
			if e.Thread {
				continue
			}
			te.Pid = e.Child
		}
		if e.Kind == sysExit && e.Tid != te.Pid {
			continue // a thread's end; the process ends with its leader
		}
		tr.Pids[te.Pid] = true
		te.Agent = isAgent(te.Pid, 0)
		var named []Call
		switch e.Kind {
		case sysExec, sysExecFailed:
			named = idx.markers(e.Path) // the file run, not its arguments (cat of another call's file)
		case sysOpen:
			if te.Agent || inMarkerDir(e.Path) || inMarkerDir(e.FDPath) {
				named = idx.markers(e.Path + " " + e.FDPath)
			}
		}
		if !te.Agent && len(named) > 0 && ownGit(toolRoot(te.Pid)) {
			named = nil
		}
		te.Marker = len(named) > 0
		if !te.Agent && len(named) > 0 {
			r := toolRoot(te.Pid)
			m := marks[r]
			if m == nil {
				m = &rootMarks{open: map[string]bool{}}
				marks[r] = m
			}
			for _, c := range named {
				if e.Kind == sysExec {
					if m.lastExec == "" || !e.Time.Before(m.lastExecTime) {
						m.lastExec, m.lastExecTime = c.ID, e.Time
					}
				} else {
					m.open[c.ID] = true
				}
			}
		}
		if te.Agent && e.Kind == sysOpen {
			for _, c := range named {
				if c.outAt(e.Time) {
					te.Call = c.ID
				}
			}
		}
		events = append(events, te)
	}
	rootCall := map[int]string{}
	for r, m := range marks {
		if m.lastExec != "" {
			rootCall[r] = m.lastExec
			continue
		}
		if len(m.open) == 1 {
			for id := range m.open {
				rootCall[r] = id
			}
			continue
		}
		ids := make([]string, 0, len(m.open))
		for id := range m.open {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		tr.Ambiguous = append(tr.Ambiguous, fmt.Sprintf("pid %d: %s", r, strings.Join(ids, ", ")))
	}
	for i := range events {
		if !events[i].Agent {
			events[i].Call = rootCall[toolRoot(events[i].Pid)]
		}
	}
	tr.Events = events
	return tr
}

// outAt says whether call c was out at t: from the mock handing it out to the request
// carrying its result or, when the agent states when it finished the call (RanTo: opencode's
// tool part end time), to that: the agent's own file index and watcher re-read a file the
// call wrote after the tool has finished but before the next request (opencode's fff-scan and
// notify threads), which is the agent's work, not the call's. The start stays the mock's:
// before its stated start the agent checks the call's paths (opencode's edit opens the file
// O_PATH from its main thread ~2 ms before its part's start time).
func (c Call) outAt(t time.Time) bool {
	if c.Issued.IsZero() || t.Before(c.Issued) || (!c.Answered.IsZero() && t.After(c.Answered)) {
		return false
	}
	return c.RanTo.IsZero() || !t.After(c.RanTo)
}

// inMarkerDir says whether a path is inside a scenario's .e2e folder: only there does a
// process other than the agent's own open marker files on purpose. The scenario's files
// carry tokens too (for the in-process tools), and the agents' own `git status` reads them.
func inMarkerDir(p string) bool {
	return strings.HasPrefix(p, markerHelperDir+"/") || strings.HasPrefix(p, "./"+markerHelperDir+"/") ||
		strings.Contains(p, "/"+markerHelperDir+"/")
}

// firstIssued is when the mock first handed out a tool call: nothing before it can belong to
// one.
func firstIssued(calls []Call) time.Time {
	var t time.Time
	for _, c := range calls {
		if !c.Issued.IsZero() && (t.IsZero() || c.Issued.Before(t)) {
			t = c.Issued
		}
	}
	return t
}
