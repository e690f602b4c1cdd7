// Package sourcetest is the conformance suite every kernel event source passes: the same
// agent tree, run for real (eBPF, audit) or replayed from a capture (eslogger), must come
// out as the same events. A source's test builds the tree as Tree describes, collects what
// the source emitted, and calls Check.
package sourcetest

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
)

// Tree is the canary agent tree: an agent root that connects to Connect and forks a child,
// which executes ChildExe and opens Marker; then both exit. Outsider is a process outside
// every agent tree that did the same things: none of its events may appear.
type Tree struct {
	Agent    string // the catalog name the root matched
	RootPid  int
	RootExe  string // process.executable of the root's exec
	ChildExe string
	Marker   string // an absolute path the child opened
	// Connect is where the root connected; the zero value for a source that sees no TCP or
	// UDP connects (EndpointSecurity has no events for inet sockets).
	Connect netip.AddrPort
	// Outsider is the pid of the look-alike outside every tree (0: none).
	Outsider int
}

// Check asserts that events hold the tree's whole story and nothing of the outsider:
//   - the root's exec of RootExe, and its exit;
//   - a fork of a child with the root as parent, the child's exec of ChildExe, its open of
//     Marker (successful), and its exit;
//   - the root's connect to Connect, when the source sees them;
//   - every event of the tree naming RootPid as vigil.root.pid and Agent as gen_ai.agent.name.
func Check(t testing.TB, source string, events []*proto.Event, tr Tree) {
	t.Helper()
	var tree []*proto.Event
	for _, e := range events {
		if e.Process == nil || e.Vigil.Root == nil {
			continue // the source's own records (lost counts)
		}
		if e.Process.Pid == tr.Outsider && tr.Outsider != 0 {
			t.Errorf("%s: an event of the outsider (pid %d): %s", source, tr.Outsider, describe(e))
		}
		if e.Vigil.Root.Pid != tr.RootPid {
			continue
		}
		tree = append(tree, e)
		if e.GenAI == nil || e.GenAI.Agent == nil || e.GenAI.Agent.Name != tr.Agent {
			t.Errorf("%s: event without agent %q: %s", source, tr.Agent, describe(e))
		}
		if e.Vigil.Source != source {
			t.Errorf("%s: vigil.source %q: %s", source, e.Vigil.Source, describe(e))
		}
	}
	find := func(what string, match func(*proto.Event) bool) *proto.Event {
		t.Helper()
		for _, e := range tree {
			if match(e) {
				return e
			}
		}
		t.Errorf("%s: no %s among the tree's %d events:\n%s", source, what, len(tree), dump(tree))
		return nil
	}
	is := func(e *proto.Event, action string, pid int) bool {
		return e.Event.Action == action && e.Process.Pid == pid
	}
	find("exec of the root", func(e *proto.Event) bool {
		return is(e, proto.ActionExec, tr.RootPid) && e.Process.Executable == tr.RootExe
	})
	fork := find("fork of a child by the root", func(e *proto.Event) bool {
		return e.Event.Action == proto.ActionFork && e.Process.Parent != nil && e.Process.Parent.Pid == tr.RootPid &&
			hasExec(tree, e.Process.Pid, tr.ChildExe)
	})
	if tr.Connect.IsValid() {
		find("connect of the root to "+tr.Connect.String(), func(e *proto.Event) bool {
			return is(e, proto.ActionConnect, tr.RootPid) && e.Destination != nil &&
				e.Destination.IP == tr.Connect.Addr().String() && e.Destination.Port == int(tr.Connect.Port())
		})
	}
	find("exit of the root", func(e *proto.Event) bool { return is(e, proto.ActionExit, tr.RootPid) })
	if fork == nil {
		return
	}
	child := fork.Process.Pid
	find("exec of "+tr.ChildExe+" by the child", func(e *proto.Event) bool {
		return is(e, proto.ActionExec, child) && e.Process.Executable == tr.ChildExe
	})
	find("open of "+tr.Marker+" by the child", func(e *proto.Event) bool {
		return is(e, proto.ActionOpen, child) && e.File != nil && e.File.Path == tr.Marker && e.Event.Outcome == proto.OutcomeSuccess
	})
	find("exit of the child", func(e *proto.Event) bool { return is(e, proto.ActionExit, child) })
}

func hasExec(events []*proto.Event, pid int, exe string) bool {
	for _, e := range events {
		if e.Event.Action == proto.ActionExec && e.Process.Pid == pid && e.Process.Executable == exe {
			return true
		}
	}
	return false
}

func describe(e *proto.Event) string {
	var what string
	switch {
	case e.File != nil:
		what = e.File.Path
	case e.Destination != nil:
		what = fmt.Sprintf("%s:%d%s", e.Destination.IP, e.Destination.Port, e.Destination.Address)
	default:
		what = e.Process.Executable
	}
	return fmt.Sprintf("%s pid=%d root=%d %s", e.Event.Action, e.Process.Pid, e.Vigil.Root.Pid, what)
}

func dump(events []*proto.Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(describe(e) + "\n")
	}
	return b.String()
}
