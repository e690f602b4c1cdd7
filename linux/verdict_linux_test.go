package linux

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/internal/testenv"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// TestPendingVerdictFollowsTheProcess: user space's verdict on a pending interpreter root is
// about one process, (pid, start). The ring lags the kernel, so the verdict on an interpreter
// that already exited can arrive after an agent root took its pid: it must neither reject
// the agent root (which lost all its events) nor spare the exited interpreter's children;
// and a confirmed verdict whose root's exit was never seen must not carry over to a later
// process with that pid.
func TestPendingVerdictFollowsTheProcess(t *testing.T) {
	testenv.RequireRoot(t, "creating a BPF map")
	tracked, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4,
		ValueSize: uint32(unsafe.Sizeof(bpf.VigilTrackEntry{})), MaxEntries: 64})
	if err != nil {
		testenv.Skipf(t, "cannot create a BPF map: %v", err)
	}
	defer tracked.Close()
	cat := sensor.DefaultCatalog()
	s := &EBPF{opts: Options{Catalog: cat}, confirmed: map[uint32]verdict{}}
	s.objs.Tracked = tracked

	const (
		pid     = 100
		oldRoot = 5_000_000_000 // the interpreter that exited (ns since boot)
		newRoot = 5_600_000_000 // the agent root that took its pid
		later   = 9_000_000_000 // a third process with that pid
	)
	put := func(pid uint32, rootStart uint64) {
		t.Helper()
		e := bpf.VigilTrackEntry{Root: 100, Flags: trackPending, RootStart: rootStart}
		if err := tracked.Put(pid, e); err != nil {
			t.Fatal(err)
		}
	}
	get := func(pid uint32) (bpf.VigilTrackEntry, bool) {
		var e bpf.VigilTrackEntry
		return e, tracked.Lookup(pid, &e) == nil
	}
	// The kernel is ahead: the interpreter exited (its entry is gone) but left a child (101),
	// and the agent root now holds pid 100 and has forked 102.
	put(pid, newRoot)
	put(101, oldRoot)
	put(102, newRoot)

	rec := func(action string, p int, start uint64, args ...string) record {
		exe := ""
		if len(args) > 0 {
			exe = "/usr/bin/" + args[0]
		}
		return record{trackFlags: trackPending, event: &proto.Event{
			Event:   proto.EventMeta{Action: action},
			Process: &proto.Process{Pid: p, StartBootNs: start, Args: args, Executable: exe},
			Vigil:   proto.Vigil{Root: &proto.Root{Pid: pid}},
		}}
	}
	// The interpreter's exec, judged now: not an agent.
	if s.settlePending(rec(proto.ActionExec, pid, oldRoot, "python3", "/tmp/x.py")) {
		t.Error("interpreter's exec kept")
	}
	if e, ok := get(pid); !ok || e.Flags&trackRejected != 0 {
		t.Errorf("the agent root that took the pid was rejected: %+v %v", e, ok)
	}
	if _, ok := get(101); ok {
		t.Error("the rejected interpreter's child is still tracked")
	}
	if _, ok := get(102); !ok {
		t.Error("the agent root's child was forgotten with the interpreter's tree")
	}
	if s.settlePending(rec(proto.ActionExit, pid, oldRoot)) {
		t.Error("interpreter's exit kept")
	}
	// The agent root's exec: confirmed, with its child.
	r := rec(proto.ActionExec, pid, newRoot, "node", "/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js")
	if !s.settlePending(r) || r.event.GenAI == nil || r.event.GenAI.Agent.Name != "claude-code" {
		t.Fatalf("agent root's exec: %+v", r.event.GenAI)
	}
	for _, p := range []uint32{pid, 102} {
		if e, ok := get(p); !ok || e.Flags != 0 || e.Agent != cat.ID("claude-code") {
			t.Errorf("pid %d after confirm: %+v %v", p, e, ok)
		}
	}
	if !s.settlePending(rec(proto.ActionExec, 102, newRoot+1, "/bin/sh", "-c", "ls")) {
		t.Error("a record of the confirmed tree queued before the verdict was dropped")
	}

	// The agent root's exit record was lost; a python with its pid and another start is
	// judged afresh, not taken for the agent.
	put(pid, later)
	if s.settlePending(rec(proto.ActionExec, pid, later, "python3", "/tmp/y.py")) {
		t.Error("a later process with the agent root's pid inherited its verdict")
	}
	if e, ok := get(pid); !ok || e.Flags&trackRejected == 0 {
		t.Errorf("the later interpreter was not rejected: %+v %v", e, ok)
	}
	if _, ok := s.confirmed[pid]; ok {
		t.Error("stale verdict kept")
	}
}
