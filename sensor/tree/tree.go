// Package tree follows agent process trees in user space: which exec starts a tree (the
// catalog's verdict on an executable and its argv), how forks inherit membership, and when
// an exit ends it. Every source uses the same verdict (Judge); the sources whose kernel
// cannot follow a tree (the audit subsystem, EndpointSecurity through eslogger) use the whole
// Tracker, while the eBPF source keeps its in-kernel map and asks Judge about the roots the
// kernel holds pending.
package tree

import (
	"maps"
	"path/filepath"
	"slices"

	"github.com/vigil-sensor/vigil/sensor"
)

// Proc names one process: its pid and its start time. The start's unit is the source's
// (ns since boot on Linux, ns since the epoch on macOS), the same for every call of one
// Tracker; 0 means unknown and matches any start (sensor.SameStart).
type Proc struct {
	Pid   int
	Start uint64
}

// Image is an executed file as the kernel reported it at exec.
type Image struct {
	// Filename is the path the exec was asked for (execve's first argument as the kernel
	// resolved it against the cwd, symlinks not followed); Path is the file the kernel
	// actually ran (symlinks followed). They differ for launchers: claude → claude.exe.
	Filename string
	Path     string
	// Dev and Ino identify the file (0 and 0 when the source does not know them); Size is
	// its size in bytes, -1 when unknown.
	Dev, Ino uint64
	Size     int64
}

// Member is a process's place in an agent tree.
type Member struct {
	Root  Proc
	Agent string // catalog name, never empty for a member
}

// Verdict is Judge's answer about an exec outside any tree.
type Verdict int

const (
	// NotAgent: the exec starts no tree.
	NotAgent Verdict = iota
	// Agent: the exec is an agent; Judge names it.
	Agent
	// MaybeCopy: the file has an installed agent's size but none of its names; only its
	// SHA-256 can tell whether it is a copy of that agent (cp claude /tmp/x).
	MaybeCopy
)

// Judge decides whether an exec outside any tree starts an agent tree, in the kernel
// program's order: the requested file's name, the file's identity (an installed agent
// executable, whatever its name), the run file's own name (symlinked launchers, scripts run
// through a shebang), then an interpreter's script argument, then an installed agent's size.
// installed maps the identities of installed agent executables (Catalog.ResolvePaths) to
// their agent; sizes holds their sizes.
func Judge(cat *sensor.Catalog, installed map[[2]uint64]string, sizes map[int64]bool, img Image, argv []string) (Verdict, string) {
	requested, run := filepath.Base(img.Filename), filepath.Base(img.Path)
	if img.Filename != "" {
		if name, ok := cat.AgentByBinary(requested); ok {
			return Agent, name
		}
	}
	if img.Ino != 0 {
		if name, ok := installed[[2]uint64{img.Dev, img.Ino}]; ok {
			return Agent, name
		}
	}
	if img.Path != "" {
		if name, ok := cat.AgentByBinary(run); ok {
			return Agent, name
		}
		if name, ok := cat.AgentByPath(img.Path); ok {
			return Agent, name
		}
	}
	if (img.Path != "" && cat.IsInterpreter(run)) || (img.Filename != "" && cat.IsInterpreter(requested)) {
		if name, ok := cat.AgentByScript(argv); ok {
			return Agent, name
		}
		return NotAgent, ""
	}
	if img.Size > 0 && sizes[img.Size] {
		return MaybeCopy, ""
	}
	return NotAgent, ""
}

// MaxProcs bounds the processes followed at once, as the kernel's tracked map does; a fork
// or root exec past it is not followed and counted (Full).
const MaxProcs = 65536

// Options configure a Tracker.
type Options struct {
	Catalog *sensor.Catalog
	// Installed are the installed agent executables (Catalog.ResolvePaths): matched by
	// identity, and by size and hash for copies.
	Installed []sensor.ExeIdentity
	// CopyOf hashes the executable pid runs and returns the installed agent it is a
	// byte-for-byte copy of, or "". Called for MaybeCopy verdicts only; nil treats every
	// such exec as no agent.
	CopyOf func(pid int, img Image) string
}

// Tracker follows agent trees from exec, fork and exit reports, in the order the kernel
// made them. It is not safe for concurrent use: one source goroutine owns it.
type Tracker struct {
	opts      Options
	installed map[[2]uint64]string
	sizes     map[int64]bool
	procs     map[int]entry
	full      uint64
}

type entry struct {
	start  uint64
	member Member
}

// New returns a Tracker following the catalog's agents.
func New(opts Options) *Tracker {
	t := &Tracker{opts: opts, installed: map[[2]uint64]string{}, sizes: map[int64]bool{}, procs: map[int]entry{}}
	for _, x := range opts.Installed {
		t.installed[[2]uint64{x.Dev, x.Ino}] = x.Agent
		if x.Size > 0 {
			t.sizes[x.Size] = true
		}
	}
	return t
}

// Seed follows the processes found running at start (a bootstrap walk); each one's root
// and agent are the walk's.
func (t *Tracker) Seed(procs []sensor.ProcessInfo) {
	starts := make(map[int]uint64, len(procs))
	for _, p := range procs {
		starts[p.Pid] = p.StartBootNs
	}
	for _, p := range procs {
		t.put(Proc{Pid: p.Pid, Start: p.StartBootNs}, Member{Root: Proc{Pid: p.RootPid, Start: starts[p.RootPid]}, Agent: p.Agent})
	}
}

// Exec reports that p ran img with argv. A process already in a tree stays in it (an agent
// running another agent is one tree); any other becomes a root when Judge says so.
func (t *Tracker) Exec(p Proc, img Image, argv []string) (Member, bool) {
	if m, ok := t.lookup(p); ok {
		return m, true
	}
	verdict, agent := Judge(t.opts.Catalog, t.installed, t.sizes, img, argv)
	if verdict == MaybeCopy && t.opts.CopyOf != nil {
		if agent = t.opts.CopyOf(p.Pid, img); agent != "" {
			verdict = Agent
		}
	}
	if verdict != Agent {
		return Member{}, false
	}
	m := Member{Root: p, Agent: agent}
	return m, t.put(p, m)
}

// Fork reports that parent forked child (a new process, not a thread). The child joins the
// parent's tree.
func (t *Tracker) Fork(parent, child Proc) (Member, bool) {
	m, ok := t.lookup(parent)
	if !ok {
		delete(t.procs, child.Pid) // a stale entry of an earlier process with this pid
		return Member{}, false
	}
	return m, t.put(child, m)
}

// Exit reports that p ended; it leaves its tree. Its children stay in it.
func (t *Tracker) Exit(p Proc) (Member, bool) {
	m, ok := t.lookup(p)
	delete(t.procs, p.Pid)
	return m, ok
}

// Lookup returns the tree of the process running as pid with start (0: unknown).
func (t *Tracker) Lookup(p Proc) (Member, bool) { return t.lookup(p) }

// StartOf is the start recorded for the process followed as pid (0: unknown).
func (t *Tracker) StartOf(pid int) uint64 { return t.procs[pid].start }

// Pids lists the processes followed, for a source that checks on them.
func (t *Tracker) Pids() []int { return slices.Collect(maps.Keys(t.procs)) }

// Len is the number of processes followed.
func (t *Tracker) Len() int { return len(t.procs) }

// Full counts the processes not followed because MaxProcs were followed already.
func (t *Tracker) Full() uint64 { return t.full }

// lookup finds p's entry; an entry of an earlier process with p's pid (its exit was never
// reported) is forgotten.
func (t *Tracker) lookup(p Proc) (Member, bool) {
	e, ok := t.procs[p.Pid]
	if !ok {
		return Member{}, false
	}
	if !sensor.SameStart(e.start, p.Start) {
		delete(t.procs, p.Pid)
		return Member{}, false
	}
	return e.member, true
}

func (t *Tracker) put(p Proc, m Member) bool {
	if _, ok := t.procs[p.Pid]; !ok && len(t.procs) >= MaxProcs {
		t.full++
		return false
	}
	t.procs[p.Pid] = entry{start: p.Start, member: m}
	return true
}
