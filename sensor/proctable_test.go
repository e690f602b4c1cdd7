package sensor

import (
	"fmt"
	"maps"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

const ptBoot = "3f1c9a52-7a0e-4b7e-9a57-2f6f1b0f0c11"

// ptClock is a settable clock for ExitedTTL tests.
type ptClock struct{ t time.Time }

func (c *ptClock) now() time.Time          { return c.t }
func (c *ptClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newPTTable(o ProcessTableOptions) (*ProcessTable, *ptClock) {
	c := &ptClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	o.BootID = ptBoot
	o.Now = c.now
	return NewProcessTable(o), c
}

// ptEvent builds an event with the fields every source fills.
func ptEvent(action string, pid int, startNs uint64) *proto.Event {
	return &proto.Event{
		Timestamp: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Event:     proto.EventMeta{Action: action, Outcome: proto.OutcomeSuccess, Kind: "event"},
		User:      &proto.User{ID: "1000", Group: &proto.Group{ID: "1000"}},
		Process:   &proto.Process{Pid: pid, StartBootNs: startNs, Name: "x"},
		Vigil:     proto.Vigil{Schema: proto.SchemaVersion, Root: &proto.Root{Pid: 100}, Source: "ebpf"},
		GenAI:     &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"}},
	}
}

func ptFork(parent, child int, childStart uint64) *proto.Event {
	e := ptEvent(proto.ActionFork, child, childStart)
	e.Process.Parent = &proto.ParentProcess{Pid: parent}
	return e
}

func ptExec(pid int, start uint64, exe, cwd string, join *proto.JoinKeys, args ...string) *proto.Event {
	e := ptEvent(proto.ActionExec, pid, start)
	e.Process.Executable = exe
	e.Process.WorkingDirectory = cwd
	e.Process.Args = args
	e.Process.ArgsCount = len(args)
	e.Vigil.Join = join
	return e
}

func ptOpen(pid int, start uint64, path string) *proto.Event {
	e := ptEvent(proto.ActionOpen, pid, start)
	e.Process.Thread = &proto.Thread{ID: pid}
	e.File = &proto.File{Path: path, Access: "read"}
	return e
}

func ptExit(pid int, start uint64, code int) *proto.Event {
	e := ptEvent(proto.ActionExit, pid, start)
	e.Process.ExitCode = &code
	return e
}

// ptSeedClaude seeds an agent root (pid 100) as the /proc bootstrap would, with tick resolution.
func ptSeedClaude(t *ProcessTable) {
	t.Seed(ProcessInfo{
		Pid: 100, PPid: 1, StartBootNs: 500 * clockTickNs, Name: "claude",
		Executable: "/usr/lib/node_modules/claude/cli.js", Args: []string{"claude"},
		Cwd: "/home/dev/proj", UID: 1000, GID: 1000, RootPid: 100, Agent: "claude-code",
	})
}

func TestProcessTableSeedForkExecOpenChain(t *testing.T) {
	tab, _ := newPTTable(ProcessTableOptions{})
	ptSeedClaude(tab)
	rootID := EntityID(ptBoot, 100, 500*clockTickNs)
	join := agents.JoinKeysOf("TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "CLAUDE_CODE_SESSION_ID=s1")

	fork := ptFork(100, 200, 6_000_000_123)
	tab.Apply(fork)
	exec := ptExec(200, 6_000_000_123, "/usr/bin/bash", "/home/dev/proj/sub", join, "bash", "-c", "cat go.mod")
	tab.Apply(exec)
	open := ptOpen(200, 6_000_000_123, "/home/dev/proj/sub/go.mod")
	tab.Apply(open)

	shellID := EntityID(ptBoot, 200, 6_000_000_123)
	tests := []struct {
		name   string
		e      *proto.Event
		exe    string
		cwd    string
		argc   int
		parent proto.ParentProcess
		join   *proto.JoinKeys
	}{
		{"fork runs the parent's image", fork, "/usr/lib/node_modules/claude/cli.js", "/home/dev/proj", 1,
			proto.ParentProcess{Pid: 100, EntityID: rootID, Executable: "/usr/lib/node_modules/claude/cli.js", Name: "claude"}, nil},
		{"exec keeps its own fields", exec, "/usr/bin/bash", "/home/dev/proj/sub", 3,
			proto.ParentProcess{Pid: 100, EntityID: rootID, Executable: "/usr/lib/node_modules/claude/cli.js", Name: "claude"}, join},
		{"open gets the shell's context", open, "/usr/bin/bash", "/home/dev/proj/sub", 3,
			proto.ParentProcess{Pid: 100, EntityID: rootID, Executable: "/usr/lib/node_modules/claude/cli.js", Name: "claude"}, join},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.e.Process
			if p.EntityID != shellID {
				t.Errorf("entity id = %q, want %q", p.EntityID, shellID)
			}
			if p.Executable != tc.exe || p.WorkingDirectory != tc.cwd || p.ArgsCount != tc.argc || len(p.Args) != tc.argc {
				t.Errorf("exe/cwd/args = %q %q %d %v, want %q %q %d", p.Executable, p.WorkingDirectory, p.ArgsCount, p.Args, tc.exe, tc.cwd, tc.argc)
			}
			if p.Parent == nil || *p.Parent != tc.parent {
				t.Errorf("parent = %+v, want %+v", p.Parent, tc.parent)
			}
			if r := tc.e.Vigil.Root; r == nil || r.Pid != 100 || r.EntityID != rootID {
				t.Errorf("root = %+v, want pid 100 entity %s", r, rootID)
			}
			if !reflect.DeepEqual(tc.e.Vigil.Join, tc.join) {
				t.Errorf("join = %+v, want %+v", tc.e.Vigil.Join, tc.join)
			}
			if tc.e.Host == nil || tc.e.Host.BootID != ptBoot {
				t.Errorf("host = %+v, want boot id %s", tc.e.Host, ptBoot)
			}
		})
	}
	if s := tab.Stats(); s.Misses != 0 || s.Live != 2 {
		t.Errorf("stats = %+v, want 2 live and no misses", s)
	}
	got, ok := tab.Lookup(200)
	if !ok || got.Executable != "/usr/bin/bash" || got.PPid != 100 || got.RootPid != 100 || got.UID != 1000 || got.Agent != "claude-code" ||
		got.EntityID == "" || got.EntityID != EntityID(ptBoot, 200, got.StartBootNs) {
		t.Errorf("Lookup(200) = %+v, %v", got, ok)
	}
}

func TestProcessTableExecReplacesJoinKeys(t *testing.T) {
	parentKeys := agents.JoinKeysOf("CODEX_TOOL_CALL_ID=call_parent", "CODEX_SESSION_ID=sess")
	tests := []struct {
		name      string
		execKeys  *proto.JoinKeys
		inherited bool // the source could not read the exec's environment
		want      *proto.JoinKeys
	}{
		{"new keys replace inherited ones", agents.JoinKeysOf("CODEX_TOOL_CALL_ID=call_child"), false, agents.JoinKeysOf("CODEX_TOOL_CALL_ID=call_child")},
		{"no keys at exec clear inherited ones", nil, false, nil},
		{"empty keys at exec clear inherited ones", &proto.JoinKeys{}, false, nil},
		{"an environment the source could not read keeps inherited ones", nil, true, parentKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, _ := newPTTable(ProcessTableOptions{})
			ptSeedClaude(tab)
			tab.Apply(ptExec(100, 500*clockTickNs, "/usr/bin/codex", "/w", parentKeys, "codex"))
			tab.Apply(ptFork(100, 300, 7*clockTickNs*100))
			inherited := ptOpen(300, 0, "/etc/hosts")
			tab.Apply(inherited)
			if !reflect.DeepEqual(inherited.Vigil.Join, parentKeys) {
				t.Fatalf("forked child's open join = %+v, want the parent's %+v", inherited.Vigil.Join, parentKeys)
			}
			exec := ptExec(300, 7*clockTickNs*100, "/usr/bin/sh", "/w", tc.execKeys, "sh")
			exec.Vigil.JoinInherited = tc.inherited
			tab.Apply(exec)
			if tc.inherited && !reflect.DeepEqual(exec.Vigil.Join, parentKeys) {
				t.Errorf("exec line join = %+v, want the inherited %+v", exec.Vigil.Join, parentKeys)
			}
			after := ptOpen(300, 0, "/etc/passwd")
			tab.Apply(after)
			if !reflect.DeepEqual(after.Vigil.Join, tc.want) {
				t.Errorf("open after exec join = %+v, want %+v", after.Vigil.Join, tc.want)
			}
		})
	}
}

func TestProcessTableFailedExecKeepsImage(t *testing.T) {
	tab, _ := newPTTable(ProcessTableOptions{Hasher: &fakeHashes{sums: map[FileID]string{{Ino: 1}: "aa"}, ready: true}})
	ptSeedClaude(tab)
	node := ptExec(100, 0, "/usr/bin/node", "/w", nil, "node")
	node.Vigil.Exe = &proto.Exe{Ino: 1}
	tab.Apply(node)
	if node.Process.Hash == nil {
		t.Fatal("exec of a known file got no hash")
	}
	failed := ptExec(100, 0, "/nonexistent", "", nil, "nonexistent")
	failed.Event.Outcome = proto.OutcomeFailure
	tab.Apply(failed)
	if failed.Process.Hash != nil {
		t.Errorf("failed exec got hash %+v of another image", failed.Process.Hash)
	}
	if got, _ := tab.Lookup(100); got.Executable != "/usr/bin/node" {
		t.Errorf("image after failed exec = %q, want /usr/bin/node", got.Executable)
	}
}

func TestProcessTableExitAndTTL(t *testing.T) {
	const ttl = 30 * time.Second
	tab, clock := newPTTable(ProcessTableOptions{ExitedTTL: ttl})
	ptSeedClaude(tab)
	tab.Apply(ptFork(100, 200, 6*clockTickNs*100))
	tab.Apply(ptExec(200, 0, "/usr/bin/bash", "/w", nil, "bash"))
	tab.Apply(ptFork(200, 201, 7*clockTickNs*100))
	tab.Apply(ptExit(200, 0, 0))

	if s := tab.Stats(); s.Live != 2 || s.Exited != 1 {
		t.Fatalf("after exit stats = %+v, want 2 live, 1 exited", s)
	}
	clock.advance(ttl - time.Second)
	if _, ok := tab.Lookup(200); !ok {
		t.Fatal("exited process gone before its TTL")
	}
	orphan := ptOpen(201, 0, "/tmp/x")
	tab.Apply(orphan)
	if p := orphan.Process.Parent; p == nil || p.Executable != "/usr/bin/bash" || p.EntityID != EntityID(ptBoot, 200, 6*clockTickNs*100) {
		t.Errorf("child of exited parent: parent = %+v", p)
	}

	clock.advance(time.Second)
	if _, ok := tab.Lookup(200); ok {
		t.Error("Lookup returned a process past its TTL")
	}
	tab.Apply(ptOpen(201, 0, "/tmp/y")) // collection happens on Apply
	if s := tab.Stats(); s.Live != 2 || s.Exited != 0 {
		t.Errorf("after TTL stats = %+v, want 2 live, 0 exited", s)
	}
	late := ptOpen(201, 0, "/tmp/z")
	tab.Apply(late)
	if p := late.Process.Parent; p == nil || p.Pid != 200 || p.Executable != "/usr/bin/bash" {
		t.Errorf("child's parent after parent expired = %+v, want the remembered bash", p)
	}
	if s := tab.Stats(); s.Misses != 0 {
		t.Errorf("misses = %d, want 0", s.Misses)
	}
}

func TestEntityIDProcTicksMatchKernelNs(t *testing.T) {
	const ticks = 123456 // /proc/<pid>/stat starttime
	procNs := uint64(ticks) * clockTickNs
	tests := []struct {
		name     string
		pid      int
		kernelNs uint64
		same     bool
	}{
		{"start of the tick", 4242, procNs, true},
		{"inside the tick", 4242, procNs + 9_999_999, true},
		{"next tick", 4242, procNs + clockTickNs, false},
		{"other pid", 4243, procNs + 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proc := EntityID(ptBoot, 4242, procNs)
			kern := EntityID(ptBoot, tc.pid, tc.kernelNs)
			if (proc == kern) != tc.same {
				t.Errorf("EntityID(/proc) = %s, EntityID(kernel) = %s, want equal %v", proc, kern, tc.same)
			}
			if len(kern) != 32 {
				t.Errorf("len(%q) = %d, want 32 hex chars", kern, len(kern))
			}
		})
	}
	if EntityID("boot-a", 1, procNs) == EntityID("boot-b", 1, procNs) {
		t.Error("entity id ignores the boot id")
	}

	// A seeded process keeps its identity when the kernel reports its start in ns.
	tab, _ := newPTTable(ProcessTableOptions{})
	tab.Seed(ProcessInfo{Pid: 4242, StartBootNs: procNs, Executable: "/bin/sh", RootPid: 4242})
	e := ptOpen(4242, procNs+4_321_000, "/etc/hosts")
	e.Vigil.Root.Pid = 4242
	tab.Apply(e)
	if want := EntityID(ptBoot, 4242, procNs); e.Process.EntityID != want || e.Vigil.Root.EntityID != want {
		t.Errorf("entity/root id = %s/%s, want %s", e.Process.EntityID, e.Vigil.Root.EntityID, want)
	}
	if s := tab.Stats(); s.Misses != 0 {
		t.Errorf("ns start of a seeded process counted as %d misses", s.Misses)
	}
}

func TestProcessTableEviction(t *testing.T) {
	tab, _ := newPTTable(ProcessTableOptions{MaxEntries: 3})
	for pid := 1; pid <= 3; pid++ {
		tab.Seed(ProcessInfo{Pid: pid, StartBootNs: uint64(pid) * clockTickNs})
	}
	tab.Apply(ptExit(2, 0, 0))
	tab.Apply(ptOpen(1, 0, "/a")) // pid 3 is now the least recently seen live entry

	tab.Apply(ptFork(1, 4, 40*clockTickNs))
	if _, ok := tab.Lookup(2); ok {
		t.Error("exited pid 2 survived; it should be evicted before live entries")
	}
	tab.Apply(ptFork(1, 5, 50*clockTickNs))
	if _, ok := tab.Lookup(3); ok {
		t.Error("least recently seen pid 3 survived eviction")
	}
	for _, pid := range []int{1, 4, 5} {
		if _, ok := tab.Lookup(pid); !ok {
			t.Errorf("pid %d evicted, want kept", pid)
		}
	}
	if s := tab.Stats(); s.Live+s.Exited != 3 || s.Evictions != 2 {
		t.Errorf("stats = %+v, want 3 entries and 2 evictions", s)
	}
}

func TestProcessTableUnknownPidIsMissAndEnriched(t *testing.T) {
	tab, _ := newPTTable(ProcessTableOptions{})
	ptSeedClaude(tab)
	e := ptOpen(777, 9*clockTickNs*100, "/home/dev/.ssh/id_ed25519")
	tab.Apply(e)
	if s := tab.Stats(); s.Misses != 1 {
		t.Fatalf("misses = %d, want 1", s.Misses)
	}
	if e.Process.EntityID != EntityID(ptBoot, 777, 9*clockTickNs*100) {
		t.Errorf("entity id = %q", e.Process.EntityID)
	}
	if e.Vigil.Root.EntityID != EntityID(ptBoot, 100, 500*clockTickNs) || e.Host.BootID != ptBoot {
		t.Errorf("root = %+v, host = %+v", e.Vigil.Root, e.Host)
	}
	tab.Apply(ptOpen(777, 0, "/etc/hosts"))
	if s := tab.Stats(); s.Misses != 1 {
		t.Errorf("second event of a now known pid: misses = %d, want 1", s.Misses)
	}
	// A reused pid (other start, no exit seen) is a new process, not the old one.
	reused := ptOpen(777, 90*clockTickNs*100, "/etc/hosts")
	tab.Apply(reused)
	if s := tab.Stats(); s.Misses != 2 || reused.Process.EntityID != EntityID(ptBoot, 777, 90*clockTickNs*100) {
		t.Errorf("reused pid: misses = %d, entity id %s", s.Misses, reused.Process.EntityID)
	}
}

// fakeHashes answers from sums; a file not in it is pending until ready is set.
type fakeHashes struct {
	sums     map[FileID]string
	ready    bool
	requests []HashJob
}

func (f *fakeHashes) Request(j HashJob) (string, string) {
	f.requests = append(f.requests, j)
	if sum, ok := f.sums[j.ID]; ok && f.ready {
		return sum, ""
	}
	return "", proto.HashPending
}

func (f *fakeHashes) Result(id FileID) (string, string) {
	if !f.ready {
		return "", proto.HashPending
	}
	if sum, ok := f.sums[id]; ok {
		return sum, ""
	}
	return "", proto.HashMismatch
}

func TestProcessTableHasher(t *testing.T) {
	const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	gitID := FileID{Dev: 2049, Ino: 77, Ctime: "2025-06-01T11:00:00.000000000Z"}
	tests := []struct {
		name      string
		ready     bool // the digest is known at the exec already
		sums      map[FileID]string
		wantExec  *proto.Hash
		execState string // vigil.exe.hash on the exec line when it is written
		wantLater *proto.Hash
	}{
		{"known at exec", true, map[FileID]string{gitID: sum}, &proto.Hash{SHA256: sum}, "", &proto.Hash{SHA256: sum}},
		{"ready by the time the line is written", false, map[FileID]string{gitID: sum}, &proto.Hash{SHA256: sum}, "", &proto.Hash{SHA256: sum}},
		{"file replaced before it was hashed", false, nil, nil, proto.HashMismatch, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHashes{sums: tc.sums, ready: tc.ready}
			tab, _ := newPTTable(ProcessTableOptions{Hasher: h})
			ptSeedClaude(tab)
			tab.Apply(ptFork(100, 200, 6*clockTickNs*100))
			exec := ptExec(200, 0, "/usr/bin/git", "/w", nil, "git", "status")
			exec.Vigil.Exe = &proto.Exe{Dev: gitID.Dev, Ino: gitID.Ino, Ctime: gitID.Ctime}
			tab.Apply(exec)
			if !tc.ready && (exec.Process.Hash != nil || exec.Vigil.Exe.Hash != proto.HashPending) {
				t.Errorf("exec before the digest: hash %+v state %q, want none and pending", exec.Process.Hash, exec.Vigil.Exe.Hash)
			}
			h.ready = true // the hasher's goroutine finished
			tab.Apply(ptFork(200, 201, 7*clockTickNs*100))
			opens := []*proto.Event{ptOpen(200, 0, "/w/.git/HEAD"), ptOpen(201, 0, "/w/.git/index")}
			for _, o := range opens {
				tab.Apply(o)
			}
			tab.Finish(exec) // the pipeline writes the held exec line
			if len(h.requests) != 1 || h.requests[0] != (HashJob{ID: gitID, Pid: 200, Path: "/usr/bin/git"}) {
				t.Errorf("requests = %+v, want one for the exec's identity", h.requests)
			}
			if !reflect.DeepEqual(exec.Process.Hash, tc.wantExec) || exec.Vigil.Exe.Hash != tc.execState {
				t.Errorf("exec line: hash %+v state %q, want %+v %q", exec.Process.Hash, exec.Vigil.Exe.Hash, tc.wantExec, tc.execState)
			}
			for _, e := range opens {
				if !reflect.DeepEqual(e.Process.Hash, tc.wantLater) {
					t.Errorf("open pid %d hash = %+v, want %+v", e.Process.Pid, e.Process.Hash, tc.wantLater)
				}
			}
		})
	}
	t.Run("exec without an identity is not hashed", func(t *testing.T) {
		h := &fakeHashes{ready: true}
		tab, _ := newPTTable(ProcessTableOptions{Hasher: h})
		exec := ptExec(300, 0, "/usr/bin/git", "/w", nil, "git")
		tab.Apply(exec)
		tab.Finish(exec)
		if len(h.requests) != 0 || exec.Process.Hash != nil {
			t.Errorf("requests %v hash %+v, want none", h.requests, exec.Process.Hash)
		}
	})
}

func TestProcessTableConcurrentLookup(t *testing.T) {
	tab := NewProcessTable(ProcessTableOptions{BootID: ptBoot, MaxEntries: 64, ExitedTTL: time.Millisecond})
	ptSeedClaude(tab)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					tab.Lookup(100)
					tab.Stats()
				}
			}
		})
	}
	for i := range 2000 {
		pid := 1000 + i%100
		tab.Apply(ptFork(100, pid, uint64(600+i)*clockTickNs))
		tab.Apply(ptOpen(pid, 0, fmt.Sprintf("/tmp/%d", i)))
		tab.Apply(ptExit(pid, 0, 0))
	}
	close(stop)
	wg.Wait()
	if s := tab.Stats(); s.Live+s.Exited > 64 {
		t.Errorf("table holds %d entries, bound is 64", s.Live+s.Exited)
	}
}

// BenchmarkApplyOpen measures open-event enrichment, the hot path: most kernel events are
// opens by processes the table already knows.
func BenchmarkApplyOpen(b *testing.B) {
	tab := NewProcessTable(ProcessTableOptions{BootID: ptBoot})
	ptSeedClaude(tab)
	tab.Apply(ptFork(100, 200, 6*clockTickNs*100))
	tab.Apply(ptExec(200, 6*clockTickNs*100, "/usr/bin/bash", "/home/dev/proj",
		&proto.JoinKeys{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "bash", "-c", "make"))
	tmpl := ptOpen(200, 6*clockTickNs*100, "/home/dev/proj/Makefile")
	var n int
	for b.Loop() {
		e := *tmpl
		p := *tmpl.Process
		e.Process = &p
		e.Vigil.Root = &proto.Root{Pid: 100}
		tab.Apply(&e)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func TestProcessTableAgentTrees(t *testing.T) {
	tab, _ := newPTTable(ProcessTableOptions{})
	if got := tab.AgentTrees(); len(got) != 0 {
		t.Fatalf("empty table: %v", got)
	}
	ptSeedClaude(tab) // root 100
	tab.Apply(ptFork(100, 200, 6*clockTickNs*100))
	tab.Apply(ptExec(200, 0, "/usr/bin/bash", "/w", nil, "bash")) // in the tree, not a root
	tab.Seed(ProcessInfo{Pid: 300, PPid: 1, StartBootNs: 510 * clockTickNs, Name: "claude", Executable: "/usr/bin/claude", RootPid: 300, Agent: "claude-code"})
	tab.Seed(ProcessInfo{Pid: 400, PPid: 1, StartBootNs: 520 * clockTickNs, Name: "codex", Executable: "/usr/bin/codex", RootPid: 400, Agent: "codex"})
	tab.Seed(ProcessInfo{Pid: 500, PPid: 1, StartBootNs: 530 * clockTickNs, Name: "make", Executable: "/usr/bin/make"}) // no tree
	if got, want := tab.AgentTrees(), map[string]int{"claude-code": 2, "codex": 1}; !maps.Equal(got, want) {
		t.Errorf("AgentTrees() = %v, want %v", got, want)
	}
	exit := ptExit(400, 520*clockTickNs, 0)
	exit.Vigil.Root.Pid = 400
	tab.Apply(exit)
	tab.Apply(ptExit(200, 0, 0)) // a tree's shell exiting ends no tree
	if got, want := tab.AgentTrees(), map[string]int{"claude-code": 2}; !maps.Equal(got, want) {
		t.Errorf("after codex's root exited: AgentTrees() = %v, want %v", got, want)
	}
}
