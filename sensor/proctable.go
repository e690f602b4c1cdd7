package sensor

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// clockTickNs is one USER_HZ clock tick (1/100 s) in nanoseconds. /proc reports process start
// times in these ticks while the kernel probes report nanoseconds, so entity ids are built from
// the start time rounded down to a tick: both views of one process then yield the same id.
const clockTickNs = 10_000_000

// Defaults used when ProcessTableOptions leaves a bound at zero.

// ProcessTableOptions configures a ProcessTable.
type ProcessTableOptions struct {
	// BootID scopes entity ids to one boot (pids and boot times restart at every boot) and is
	// written to host.boot_id.
	BootID string
	// MaxEntries bounds memory. When the table is full, the oldest exited entry is evicted
	// first, else the least recently seen one; evictions are counted. Zero means
	// DefaultProcessTableMaxEntries.
	MaxEntries int
	// ExitedTTL is how long an exited process stays: its children's events and late lookups
	// still need it. Zero means process_table.exited_ttl_seconds of the embedded defaults.
	ExitedTTL time.Duration
	// Hasher gives the SHA-256 of the file each exec ran, by the kernel's identity of it
	// (vigil.exe), or is nil for no hashing. It must never block: a digest not known yet is
	// filled in when the exec line is written (Finish) or on the process's later lines.
	Hasher ExeHashes
	// Now is the clock for exit times and their expiry; nil means time.Now. Tests replace it.
	Now func() time.Time
}

// ProcessTableStats is a snapshot of the table's size and counters.
type ProcessTableStats struct {
	Live int
	// Exited counts exited entries not yet collected; collection is lazy, so it may include
	// entries already past ExitedTTL.
	Exited int
	// Evictions counts entries dropped because the table was full.
	Evictions uint64
	// Misses counts events for a process the table did not know: no seed and no fork seen
	// (the tree was picked up mid-flight, an event was lost, or the pid was reused unseen).
	Misses uint64
}

// ProcessTable maps pids of tracked processes to what is known about them (image, argv, cwd,
// hash, parent, agent root, join keys) and uses it to fill kernel events, most of which carry
// only a pid: the output needs executable, working directory and parent on every line, and the
// correlator needs the tool call's join keys on every open and connect.
//
// Apply must be called from one goroutine; Lookup and Stats may be called from any.
type ProcessTable struct {
	bootID string
	// bootHost is the host.boot_id value given to events without a host: shared, read-only.
	bootHost *proto.Host
	max      int
	ttl      time.Duration
	hasher   ExeHashes
	now      func() time.Time

	mu    sync.RWMutex
	byPid map[int]*procEntry
	// lru orders all entries by the last event seen for them, most recent first.
	lru list.List
	// exited holds exited entries in exit order from exitedHead on, so expiry and "evict the
	// oldest exited first" only look at the head. Entries removed otherwise (evicted, replaced
	// by a reused pid) stay in it until they reach the head and are skipped there.
	exited     []*procEntry
	exitedHead int

	live, exitedCount int
	evictions, misses uint64
}

// procEntry is one process. Slices and pointers it holds (args, hash, join) are replaced,
// never modified, because enriched events share them.
type procEntry struct {
	pid         int
	startBootNs uint64
	entityID    string
	name        string
	exe         string
	args        []string
	argsCount   int
	cwd         string
	hash        *proto.Hash
	// exeID is the identity of the image the last exec ran; hashPending says its digest
	// was not known then and is asked for again by the process's next events.
	exeID       FileID
	hashPending bool
	uid, gid    string
	agent       string
	join        *proto.JoinKeys

	ppid int
	// parent is the parent's identity as last seen, so a child's events still name their
	// parent after the parent's entry has expired or been evicted.
	parent parentRef

	rootPid      int
	rootEntityID string

	// forkSeen: the fork from a known parent was seen, so execs is the whole history.
	forkSeen bool
	// execs are the execs since the fork, oldest first, at most MaxExecHistory; execsDropped
	// says older ones were dropped. Replaced, never modified in place (Lookup shares it).
	execs        []ExecRecord
	execsDropped bool

	exited   bool
	exitedAt time.Time
	// elem is the entry's place in the LRU list; nil once the entry left the table.
	elem *list.Element
}

type parentRef struct {
	entityID, exe, name string
}

// NewProcessTable returns an empty table; zero bounds in o take their defaults.
func NewProcessTable(o ProcessTableOptions) *ProcessTable {
	t := &ProcessTable{
		bootID: o.BootID,
		max:    o.MaxEntries,
		ttl:    o.ExitedTTL,
		hasher: o.Hasher,
		now:    o.Now,
		byPid:  make(map[int]*procEntry),
	}
	if o.BootID != "" {
		t.bootHost = &proto.Host{BootID: o.BootID}
	}
	if t.max <= 0 || t.ttl <= 0 {
		// One source of truth: the embedded default.yaml says why these values.
		d := DefaultConfig().ProcessTable
		if t.max <= 0 {
			t.max = d.MaxEntries
		}
		if t.ttl <= 0 {
			t.ttl = time.Duration(d.ExitedTTLSeconds) * time.Second
		}
	}
	if t.now == nil {
		t.now = time.Now
	}
	return t
}

// EntityID returns the stable identity of a process: the hex of the first 16 bytes of
// SHA-256 over "bootID|pid|ticks", where ticks is startBootNs rounded down to 10 ms clock
// ticks. Rounding makes the id from a /proc start time (tick resolution) equal the id from a
// kernel start time (ns) of the same process; pid reuse within one tick of the same pid is not
// a practical risk. The boot id keeps ids unique across reboots.
func EntityID(bootID string, pid int, startBootNs uint64) string {
	var buf [96]byte
	b := append(buf[:0], bootID...)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, '|')
	b = strconv.AppendUint(b, startBootNs/clockTickNs, 10)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Seed adds a process found by the /proc bootstrap, before events flow. It replaces any entry
// with the same pid. Its parent and root are resolved when its first event is enriched, so
// seeds may come in any order.
func (t *ProcessTable) Seed(p ProcessInfo) {
	ent := &procEntry{
		pid:         p.Pid,
		startBootNs: p.StartBootNs,
		name:        p.Name,
		exe:         p.Executable,
		args:        p.Args,
		argsCount:   len(p.Args),
		cwd:         p.Cwd,
		uid:         strconv.Itoa(p.UID),
		gid:         strconv.Itoa(p.GID),
		agent:       p.Agent,
		ppid:        p.PPid,
		rootPid:     p.RootPid,
	}
	ent.entityID = EntityID(t.bootID, ent.pid, ent.startBootNs)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.insert(ent)
}

// Apply updates the table from a kernel event and enriches the event in place with what the
// table knows: entity ids, executable, argv, cwd, hash, parent, root entity, agent, join keys
// and boot id. Fields the event already carries are kept. Values filled in (args, hash, join
// keys, and the host when the event had none) are shared with the table and other events and
// must be treated as read-only; the args of an exec event become the table's.
func (t *ProcessTable) Apply(e *proto.Event) {
	p := e.Process
	if p == nil {
		return
	}
	exec := e.Event.Action == proto.ActionExec && e.Event.Outcome != proto.OutcomeFailure
	var hash string
	if exec && t.hasher != nil && e.Vigil.Exe != nil && (p.Hash == nil || p.Hash.SHA256 == "") {
		// Only a digest already known by this identity comes back; anything else is hashed
		// on the hasher's goroutine, and the line says so (vigil.exe.hash) until Finish.
		hash, e.Vigil.Exe.Hash = t.hasher.Request(HashJob{ID: FileIDOf(e.Vigil.Exe), Pid: p.Pid, Path: p.Executable})
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.expire(now)

	var ent *procEntry
	if e.Event.Action == proto.ActionFork && e.Event.Outcome != proto.OutcomeFailure {
		ent = t.fork(p)
	} else {
		ent = t.entryFor(p)
	}
	t.absorb(ent, e)
	if ent.hashPending && !exec {
		t.resolveHash(ent)
	}
	switch {
	case exec:
		t.exec(ent, e, hash)
	case e.Event.Action == proto.ActionExit:
		t.markExited(ent, now)
	}
	t.lru.MoveToFront(ent.elem)
	t.enrich(ent, e)
}

// Finish completes an event about to be written: an exec line whose digest was pending gets
// it now if the hasher has it (kernel lines are held for the correlator, so it usually has),
// else the reason it has none. Called on the pipeline's goroutine, before the sinks see e.
func (t *ProcessTable) Finish(e *proto.Event) {
	x := e.Vigil.Exe
	if x == nil || x.Hash != proto.HashPending || t.hasher == nil || e.Process == nil {
		return
	}
	sum, status := t.hasher.Result(FileIDOf(x))
	if sum != "" {
		e.Process.Hash = &proto.Hash{SHA256: sum}
	}
	x.Hash = status
}

// resolveHash asks the hasher again for the digest of ent's image; t.mu is held.
func (t *ProcessTable) resolveHash(ent *procEntry) {
	sum, status := t.hasher.Result(ent.exeID)
	if status == proto.HashPending {
		return
	}
	ent.hashPending = false
	if sum != "" {
		ent.hash = &proto.Hash{SHA256: sum}
	}
}

// Lookup returns the process with this pid if it is live or exited less than ExitedTTL ago.
// The returned Args are shared with the table and must not be modified.
func (t *ProcessTable) Lookup(pid int) (ProcessInfo, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ent := t.byPid[pid]
	if ent == nil || ent.exited && t.now().Sub(ent.exitedAt) >= t.ttl {
		return ProcessInfo{}, false
	}
	// uid and gid come from event strings; an unparsable one reads as 0 rather than failing
	// the lookup, since callers use the process, not its ids.
	uid, _ := strconv.Atoi(ent.uid)
	gid, _ := strconv.Atoi(ent.gid)
	return ProcessInfo{
		Pid:         ent.pid,
		PPid:        ent.ppid,
		StartBootNs: ent.startBootNs,
		Name:        ent.name,
		Executable:  ent.exe,
		Args:        ent.args,
		Cwd:         ent.cwd,
		UID:         uid,
		GID:         gid,
		RootPid:     ent.rootPid,
		Agent:       ent.agent,
		Exited:      ent.exited,
		EntityID:    ent.entityID,

		Join:           ent.join,
		ForkSeen:       ent.forkSeen,
		Execs:          ent.execs,
		ExecsTruncated: ent.execsDropped,
	}, true
}

// Stats returns the table's size and counters.
func (t *ProcessTable) Stats() ProcessTableStats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return ProcessTableStats{
		Live:      t.live,
		Exited:    t.exitedCount,
		Evictions: t.evictions,
		Misses:    t.misses,
	}
}

// AgentTrees counts the agent trees running now, per agent: the live entries that root a tree
// (the tree's own pid) and name their agent. It walks the whole table under the read lock, so
// it is for a scrape every few seconds, not for the event path.
func (t *ProcessTable) AgentTrees() map[string]int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	trees := map[string]int{}
	for pid, ent := range t.byPid {
		if !ent.exited && ent.rootPid == pid && ent.agent != "" {
			trees[ent.agent]++
		}
	}
	return trees
}

// fork creates the child of a fork event. The child runs its parent's image until it execs,
// so it starts as a copy of the parent. A fork whose parent is unknown counts as a miss.
func (t *ProcessTable) fork(p *proto.Process) *procEntry {
	var parent *procEntry
	if p.Parent != nil {
		parent = t.byPid[p.Parent.Pid]
	}
	if parent == nil {
		t.misses++
	}
	if ent := t.byPid[p.Pid]; ent != nil && SameStart(ent.startBootNs, p.StartBootNs) {
		// Seeded by the /proc walk while the fork event was still queued; the seed is newer.
		return ent
	}
	child := &procEntry{pid: p.Pid, startBootNs: p.StartBootNs}
	if parent != nil {
		child.name, child.exe, child.cwd = parent.name, parent.exe, parent.cwd
		child.args, child.argsCount, child.hash = parent.args, parent.argsCount, parent.hash
		child.exeID, child.hashPending = parent.exeID, parent.hashPending
		child.uid, child.gid, child.agent, child.join = parent.uid, parent.gid, parent.agent, parent.join
		child.rootPid, child.rootEntityID = parent.rootPid, parent.rootEntityID
		child.ppid = parent.pid
		child.parent = parentRef{entityID: parent.entityID, exe: parent.exe, name: parent.name}
		child.forkSeen = true // its exec history starts empty: it runs the parent's image
	} else {
		child.fillFrom(p)
	}
	child.entityID = EntityID(t.bootID, child.pid, child.startBootNs)
	t.insert(child)
	return child
}

// entryFor returns the entry of the event's process. A pid the table does not know, or one
// whose entry started at another time (the pid was reused without an exit or fork seen), gets
// a new entry built from the event, and counts as a miss.
func (t *ProcessTable) entryFor(p *proto.Process) *procEntry {
	if ent := t.byPid[p.Pid]; ent != nil && SameStart(ent.startBootNs, p.StartBootNs) {
		return ent
	}
	t.misses++
	ent := &procEntry{pid: p.Pid, startBootNs: p.StartBootNs}
	ent.fillFrom(p)
	ent.entityID = EntityID(t.bootID, ent.pid, ent.startBootNs)
	t.insert(ent)
	return ent
}

// fillFrom sets what an event says about a process the table had no entry for.
func (ent *procEntry) fillFrom(p *proto.Process) {
	ent.name, ent.exe, ent.cwd = p.Name, p.Executable, p.WorkingDirectory
	ent.args, ent.argsCount = p.Args, argsCount(p)
}

// absorb takes what every event may correct about its process: a more precise or first start
// time, the parent, the agent root and agent, and the credentials (setuid can change them at
// any time).
func (t *ProcessTable) absorb(ent *procEntry, e *proto.Event) {
	p := e.Process
	if p.StartBootNs != 0 && p.StartBootNs != ent.startBootNs {
		// SameStart already matched the tick, so the id only changes if it was unknown.
		if ent.startBootNs == 0 {
			ent.entityID = EntityID(t.bootID, ent.pid, p.StartBootNs)
		}
		ent.startBootNs = p.StartBootNs
	}
	if p.Parent != nil && p.Parent.Pid != 0 && p.Parent.Pid != ent.ppid {
		ent.ppid = p.Parent.Pid
		ent.parent = parentRef{}
	}
	if r := e.Vigil.Root; r != nil && r.Pid != 0 && r.Pid != ent.rootPid {
		ent.rootPid = r.Pid
		ent.rootEntityID = ""
	}
	if e.GenAI != nil && e.GenAI.Agent != nil && e.GenAI.Agent.Name != "" {
		ent.agent = e.GenAI.Agent.Name
	}
	if u := e.User; u != nil {
		if u.ID != "" {
			ent.uid = u.ID
		}
		if u.Group != nil && u.Group.ID != "" {
			ent.gid = u.Group.ID
		}
	}
}

// exec replaces the process image. The join keys are replaced even when the event has none:
// the kernel read the new environment at exec, so inherited keys would bind the process to a
// tool call it no longer belongs to. Only an exec marked JoinInherited (its environment was
// gone before the source could read it) keeps them.
func (t *ProcessTable) exec(ent *procEntry, e *proto.Event, hash string) {
	p := e.Process
	if p.Executable != "" {
		ent.exe = p.Executable
	}
	if p.Name != "" {
		ent.name = p.Name
	}
	if p.WorkingDirectory != "" { // exec keeps the cwd, so an event without one changes nothing
		ent.cwd = p.WorkingDirectory
	}
	ent.args, ent.argsCount = p.Args, argsCount(p)
	switch {
	case p.Hash != nil && p.Hash.SHA256 != "":
		ent.hash = &proto.Hash{SHA256: p.Hash.SHA256}
	case hash != "":
		ent.hash = &proto.Hash{SHA256: hash}
	default:
		ent.hash = nil
	}
	ent.exeID, ent.hashPending = FileID{}, false
	if x := e.Vigil.Exe; x != nil {
		ent.exeID, ent.hashPending = FileIDOf(x), x.Hash == proto.HashPending
	}
	// An exec whose environment the source could not read keeps what the process had.
	if !e.Vigil.JoinInherited {
		ent.join = nil
		if !e.Vigil.Join.Empty() {
			j := *e.Vigil.Join
			ent.join = &j
		}
	}
	// The history is copied, not appended to: Lookup callers may hold the previous slice.
	rec := ExecRecord{Executable: ent.exe, Args: ent.args, Join: ent.join}
	keep := ent.execs
	if len(keep) >= MaxExecHistory {
		keep, ent.execsDropped = keep[len(keep)-MaxExecHistory+1:], true
	}
	ent.execs = append(append(make([]ExecRecord, 0, len(keep)+1), keep...), rec)
}

// enrich fills what the event lacks from the entry, its parent and its root.
func (t *ProcessTable) enrich(ent *procEntry, e *proto.Event) {
	p := e.Process
	if p.EntityID == "" {
		p.EntityID = ent.entityID
	}
	if p.Name == "" {
		p.Name = ent.name
	}
	if p.Executable == "" {
		p.Executable = ent.exe
	}
	if len(p.Args) == 0 {
		p.Args = ent.args
	}
	if p.ArgsCount == 0 {
		p.ArgsCount = ent.argsCount
	}
	if p.WorkingDirectory == "" {
		p.WorkingDirectory = ent.cwd
	}
	// A failed exec names the file it tried; the current image's hash is not that file's.
	if p.Hash == nil && ent.hash != nil && p.Executable == ent.exe {
		p.Hash = ent.hash
	}

	if ent.ppid != 0 {
		if par := t.byPid[ent.ppid]; par != nil && startedBefore(par, ent) {
			ent.parent = parentRef{entityID: par.entityID, exe: par.exe, name: par.name}
		}
		// absorb made ent.ppid the event's parent pid whenever the event names one.
		if p.Parent == nil {
			p.Parent = &proto.ParentProcess{}
		}
		pp := p.Parent
		pp.Pid = ent.ppid
		if pp.EntityID == "" {
			pp.EntityID = ent.parent.entityID
		}
		if pp.Executable == "" {
			pp.Executable = ent.parent.exe
		}
		if pp.Name == "" {
			pp.Name = ent.parent.name
		}
	}

	if ent.rootPid != 0 {
		if ent.rootEntityID == "" {
			if r := t.byPid[ent.rootPid]; r != nil && startedBefore(r, ent) {
				ent.rootEntityID = r.entityID
			}
		}
		if e.Vigil.Root == nil {
			e.Vigil.Root = &proto.Root{}
		}
		r := e.Vigil.Root
		r.Pid = ent.rootPid // equal already when the event names a root (absorb)
		if r.EntityID == "" {
			r.EntityID = ent.rootEntityID
		}
	}

	if ent.agent != "" {
		if e.GenAI == nil {
			e.GenAI = &proto.GenAI{}
		}
		if e.GenAI.Agent == nil {
			e.GenAI.Agent = &proto.GenAIAgent{Name: ent.agent}
		}
	}

	// After a successful exec the entry holds the event's own keys, so this only fills events
	// that did not read the environment: opens, connects, forks, exits.
	if e.Vigil.Join.Empty() && ent.join != nil {
		e.Vigil.Join = ent.join
	}

	if t.bootID != "" {
		switch {
		case e.Host == nil:
			e.Host = t.bootHost
		case e.Host.BootID == "":
			e.Host.BootID = t.bootID
		}
	}
}

// markExited keeps an exited process for ExitedTTL; a repeated exit event changes nothing.
func (t *ProcessTable) markExited(ent *procEntry, now time.Time) {
	if ent.exited {
		return
	}
	ent.exited = true
	ent.exitedAt = now
	t.live--
	t.exitedCount++
	t.exited = append(t.exited, ent)
}

// insert adds ent, replacing the entry with the same pid or, when the table is full,
// evicting one.
func (t *ProcessTable) insert(ent *procEntry) {
	if old := t.byPid[ent.pid]; old != nil {
		t.remove(old)
	} else if len(t.byPid) >= t.max {
		t.evict()
	}
	t.byPid[ent.pid] = ent
	ent.elem = t.lru.PushFront(ent)
	t.live++
}

// evict drops the oldest exited entry, whose useful life is nearly over, else the least
// recently seen live one.
func (t *ProcessTable) evict() {
	if ent := t.popExited(); ent != nil {
		t.remove(ent)
	} else if back := t.lru.Back(); back != nil {
		t.remove(back.Value.(*procEntry))
	} else {
		return
	}
	t.evictions++
}

// expire drops exited entries older than ExitedTTL. It only looks at the head of the
// exit-ordered queue, so it costs O(1) amortised per event.
func (t *ProcessTable) expire(now time.Time) {
	for {
		ent := t.peekExited()
		if ent == nil || now.Sub(ent.exitedAt) < t.ttl {
			return
		}
		t.popExited()
		t.remove(ent)
	}
}

// peekExited returns the oldest exited entry still in the table, discarding queue slots of
// entries that left it otherwise.
func (t *ProcessTable) peekExited() *procEntry {
	for t.exitedHead < len(t.exited) {
		if ent := t.exited[t.exitedHead]; ent.elem != nil {
			return ent
		}
		t.exited[t.exitedHead] = nil
		t.exitedHead++
	}
	return nil
}

// popExited removes and returns the oldest exited entry still in the table, compacting the
// queue once most of it is consumed so its memory stays proportional to its content.
func (t *ProcessTable) popExited() *procEntry {
	ent := t.peekExited()
	if ent == nil {
		return nil
	}
	t.exited[t.exitedHead] = nil
	t.exitedHead++
	if t.exitedHead > 64 && t.exitedHead*2 > len(t.exited) {
		n := copy(t.exited, t.exited[t.exitedHead:])
		clear(t.exited[n:])
		t.exited = t.exited[:n]
		t.exitedHead = 0
	}
	return ent
}

// remove takes ent out of the table. Its exit-queue slot, if any, is skipped later.
func (t *ProcessTable) remove(ent *procEntry) {
	delete(t.byPid, ent.pid)
	t.lru.Remove(ent.elem)
	ent.elem = nil
	if ent.exited {
		t.exitedCount--
	} else {
		t.live--
	}
}

// SameStart reports whether two start times (ns since boot, either possibly from /proc at
// clock-tick resolution) can belong to one process; zero means unknown and matches anything.
// With the pid, a start time is a process's identity (see EntityID).
func SameStart(a, b uint64) bool {
	return a == 0 || b == 0 || a/clockTickNs == b/clockTickNs
}

// startedBefore reports whether anc can be an ancestor of ent. A process whose pid was reused
// after the real ancestor exited started later than ent, and must not be named as its parent
// or root. Ticks are compared because either start may come from /proc.
func startedBefore(anc, ent *procEntry) bool {
	return anc.startBootNs == 0 || ent.startBootNs == 0 ||
		anc.startBootNs/clockTickNs <= ent.startBootNs/clockTickNs
}

// argsCount is the event's argument count, which exceeds len(Args) when the kernel truncated
// argv.
func argsCount(p *proto.Process) int {
	if p.ArgsCount > 0 {
		return p.ArgsCount
	}
	return len(p.Args)
}
