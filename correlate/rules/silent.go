package rules

import (
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// The silent-agent detection: an agent tree the kernel sees at work with no trusted telemetry
// or hook for it, from the start or since its telemetry stopped. An agent whose telemetry was
// never configured, was turned off, or points elsewhere is invisible to everything that reads
// telemetry; the kernel still sees it start processes.
//
// Work is what a person would call the agent doing something: an agent process starting a
// process (a tool call's shell, a hook, a git status) that no tool call explains
// (vigil.binding none; a bound exec means the agent told us about it). A long build started
// by one tool call is one start: the processes the build starts are the build's, not the
// agent's. Telemetry is any trusted line naming the tree's root (agent.*, session lines,
// hooks). Kernel lines are held (correlate.hold_seconds, 10 s) before they are written, and
// the agents export their logs every 5 s, so telemetry about the same moment is written
// before the kernel lines it would explain.

// SilentRule describes the built-in silent-agent detection, as `vigil rules list` shows it.
var SilentRule = Rule{
	ID:   "agent.silent",
	Name: "Agent working without telemetry",
	Description: "An agent tree started processes that no tool call explains for " +
		"detections.silent_agent_after_seconds with no trusted telemetry or hook for it: " +
		"from its first activity, or since its telemetry stopped mid-session.",
	Severity: SeverityMedium,
	Tags:     []string{"defense_evasion", "T1562.006"},
	Scope:    ScopeTree,
	Source:   "built-in",
	Enabled:  true,
}

// silentCompiled is SilentRule as alert() takes it.
var silentCompiled = &compiled{Rule: SilentRule, techniques: SilentRule.Techniques()}

// treeState is what the detector knows of one agent tree, keyed by its root pid.
type treeState struct {
	entityID string
	agent    string
	// exe and cwd are the root's executable and working directory; user the user of the
	// tree's processes.
	exe, cwd string
	user     *proto.User
	// firstWork is the time of the tree's first unexplained process start, firstSeq its line.
	firstWork time.Time
	firstSeq  uint64
	// lastTelemetry is the agent time of the newest trusted line naming the tree (zero: none).
	lastTelemetry time.Time
	// firedAt is the time of the line that raised the tree's alert (zero: not raised).
	firedAt time.Time
	// exited: the root's exit line was seen; the tree no longer counts as silent.
	exited bool
}

// silent reports whether the tree's alert was raised, no trusted telemetry named it since,
// and its root has not exited: an agent at work right now with nothing telling what for.
func (t *treeState) silent() bool {
	return !t.firedAt.IsZero() && !t.exited && !t.lastTelemetry.After(t.firedAt)
}

// noteTelemetry remembers a trusted line naming a tree's root.
func (d *Detector) noteTelemetry(e *proto.Event) {
	if d.silentAfter <= 0 || e.Vigil.Telemetry == nil || !e.Vigil.Telemetry.Trusted || e.Vigil.Root == nil || e.Vigil.Root.Pid == 0 {
		return
	}
	t := d.tree(rootOf(e))
	if e.Timestamp.After(t.lastTelemetry) {
		t.lastTelemetry = e.Timestamp
	}
}

// tree returns the state of root's tree, starting afresh when the pid now roots another tree.
func (d *Detector) tree(root rootRef) *treeState {
	if d.treeKey == "" || d.treeKeyPid != root.pid {
		// Most lines come from the tree of the line before: its key is not formatted again
		// (an allocation per line).
		d.treeKeyPid, d.treeKey = root.pid, strconv.Itoa(root.pid)
	}
	t := d.trees.getOrAdd(d.treeKey, func() *treeState { return &treeState{} })
	if root.entityID != "" && t.entityID != root.entityID {
		if t.entityID != "" { // the pid was reused
			*t = treeState{}
		}
		t.entityID = root.entityID
	}
	return t
}

// watchTree follows a kernel line's tree and returns the silent-agent alert when the line is
// work at least silentAfter after the tree's first work or its last telemetry.
func (d *Detector) watchTree(e *proto.Event) *proto.Event {
	root := rootOf(e)
	if d.silentAfter <= 0 || root.pid == 0 {
		return nil
	}
	p := procOf(e)
	work := d.isAgentWork(e, root)
	if !work && p.Pid != root.pid {
		return nil // most lines: neither the root's nor its work
	}
	t := d.tree(root)
	if p.Pid == root.pid && e.Event.Action == proto.ActionExit {
		t.exited = true
		return nil
	}
	if t.agent == "" {
		t.agent, _, _, _, _ = names(e)
	}
	if p.Pid == root.pid && p.Executable != "" {
		t.exe = p.Executable
		if p.WorkingDirectory != "" {
			t.cwd = p.WorkingDirectory
		}
	}
	if !t.firedAt.IsZero() || !work {
		return nil
	}
	if t.exe == "" && p.Parent.Pid == root.pid {
		t.exe = p.Parent.Executable
	}
	if t.cwd == "" {
		t.cwd = p.WorkingDirectory
	}
	if e.User != nil {
		t.user = e.User
	}
	if t.firstWork.IsZero() {
		t.firstWork, t.firstSeq = e.Timestamp, e.Event.Sequence
	}
	since, why := t.firstWork, "no trusted telemetry or hook for the tree since its first activity"
	if t.lastTelemetry.After(since) {
		since, why = t.lastTelemetry, "the tree's telemetry stopped"
	}
	quiet := e.Timestamp.Sub(since)
	if quiet < d.silentAfter {
		return nil
	}
	t.firedAt = e.Timestamp
	evidence := []string{
		fmt.Sprintf("%s at %s; still starting processes %s later", why, since.UTC().Format(time.RFC3339), quiet.Round(time.Second)),
		describe(e),
	}
	a := d.alert(silentCompiled, e, noCall, noSession, "", []uint64{t.firstSeq, e.Event.Sequence}, evidence)
	if t.agent != "" {
		a.GenAI.Agent = &proto.GenAIAgent{Name: t.agent}
	}
	a.Vigil.Root = &proto.Root{Pid: root.pid, EntityID: root.entityID}
	a.Process = &proto.Process{Pid: root.pid, EntityID: root.entityID, Name: path.Base(t.exe), Executable: t.exe, WorkingDirectory: t.cwd}
	a.User = t.user
	return a
}

// isAgentWork reports whether a kernel line is an agent process starting a process that no
// tool call explains: a successful exec whose parent is the tree's root or runs an agent
// binary (Codex's native binary under its node launcher).
func (d *Detector) isAgentWork(e *proto.Event, root rootRef) bool {
	if e.Event.Action != proto.ActionExec || e.Event.Outcome == proto.OutcomeFailure || e.Vigil.Binding != proto.BindingNone {
		return false
	}
	par := procOf(e).Parent
	if par == nil {
		return false
	}
	return par.Pid == root.pid || (par.Executable != "" && d.agentPrograms[path.Base(par.Executable)])
}
