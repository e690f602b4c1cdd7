package linux

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
	"github.com/vigil-sensor/vigil/sensor/tree"
)

// handleGroup turns one reassembled audit event into Vigil's events for the followed trees.
func (s *Audit) handleGroup(msgs []*auparse.AuditMessage) {
	r, err := decodeAuditGroup(msgs, s.mayConcern)
	if errors.Is(err, errNoSyscall) || errors.Is(err, errOtherSyscall) || errors.Is(err, errNotKept) {
		return
	}
	if err != nil {
		s.count("decode", 1)
		s.opts.Log.Warn().Err(err).Msg("undecodable audit record")
		return
	}
	switch r.syscall {
	case "execve", "execveat":
		s.handleExec(r)
	case "clone", "clone3", "fork", "vfork":
		s.handleFork(r)
	case "exit_group":
		s.handleExit(r)
	case "open", "openat", "openat2", "creat":
		if m, p, ok := s.member(r); ok {
			s.emit(s.openEvent(r, m, p))
		}
	case "connect":
		if m, p, ok := s.member(r); ok {
			s.emit(s.connectEvent(r, m, p))
		}
	}
}

// mayConcern tells from a SYSCALL record alone whether its event can concern a followed
// tree: any exec (it may start one), or a syscall of a followed process or of the child of
// one. Under the user scope most records are of the user's other processes: they are
// dropped here, before the rest of their records is decoded.
func (s *Audit) mayConcern(r *auditRecord) bool {
	if r.syscall == "execve" || r.syscall == "execveat" {
		return true
	}
	if _, ok := s.tracker.Lookup(tree.Proc{Pid: r.pid}); ok {
		return true
	}
	_, ok := s.tracker.Lookup(tree.Proc{Pid: r.ppid})
	return ok
}

// member finds the tree of the process that made r. A process not followed yet whose
// parent is followed joins its parent's tree: audit reports a fork only once the parent's
// rules are in place, and a child can act first (its ppid rule saw it). The child's fork
// event is written then, from the record's kernel pid and ppid.
func (s *Audit) member(r *auditRecord) (tree.Member, tree.Proc, bool) {
	p := tree.Proc{Pid: r.pid}
	if m, ok := s.tracker.Lookup(p); ok {
		p.Start = s.tracker.StartOf(r.pid)
		return m, p, true
	}
	parent := tree.Proc{Pid: r.ppid}
	if _, ok := s.tracker.Lookup(parent); !ok {
		return tree.Member{}, p, false
	}
	parent.Start = s.tracker.StartOf(r.ppid)
	p.Start = s.startOf(r.pid)
	m, ok := s.tracker.Fork(parent, p)
	if !ok {
		return m, p, false
	}
	s.emit(s.forkEvent(r.time, r, m, p, r.ppid))
	s.scopeOrCount(r.pid)
	return m, p, true
}

func (s *Audit) handleExec(r *auditRecord) {
	m, p, ok := s.member(r)
	img := s.execImage(r)
	if !ok {
		p.Start = s.startOf(r.pid)
		if m, ok = s.tracker.Exec(p, img, r.argv); !ok {
			return
		}
		s.scopeOrCount(r.pid)
		if err := s.scopeUser(r.uid); err != nil {
			s.count("audit_rule", 1)
			s.opts.Log.Warn().Err(err).Uint32("uid", r.uid).Msg("cannot audit an agent's user")
		}
	}
	s.emit(s.execEvent(r, m, p, img))
}

func (s *Audit) handleFork(r *auditRecord) {
	if !r.success || r.exit <= 0 {
		return
	}
	child := int(r.exit)
	if r.syscall == "clone" && r.args[0]&unix.CLONE_THREAD != 0 {
		return // a thread, not a process
	}
	m, parent, ok := s.member(r)
	if !ok || !s.isProcess(r.pid, child) {
		return
	}
	c := tree.Proc{Pid: child, Start: s.startOf(child)}
	if _, known := s.tracker.Lookup(c); known {
		return // the child acted first and joined then (member)
	}
	if m, ok = s.tracker.Fork(parent, c); !ok {
		return
	}
	s.emit(s.forkEvent(r.time, r, m, c, r.pid))
	s.scopeOrCount(child)
}

// isProcess tells a new process from a new thread by /proc: a thread is listed under its
// process's task directory. A child already gone is not followed from here: its own
// records, if any, join it to the tree through member.
func (s *Audit) isProcess(parent, child int) bool {
	if _, err := os.Stat(filepath.Join(s.opts.ProcRoot, strconv.Itoa(parent), "task", strconv.Itoa(child))); err == nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.opts.ProcRoot, strconv.Itoa(child)))
	return err == nil
}

func (s *Audit) handleExit(r *auditRecord) {
	if _, swept := s.swept[r.pid]; swept {
		return // its exit was written already, from /proc (sweepExits)
	}
	m, p, ok := s.member(r)
	if !ok {
		return
	}
	code := int(r.args[0] & 0xff)
	s.tracker.Exit(p)
	s.unscope(r.pid)
	s.emit(s.exitEvent(r.time, p, m, r.comm, &code))
}

// scopeOrCount installs pid's rules; a rule the kernel refused means events of that
// process are lost, and is counted so.
func (s *Audit) scopeOrCount(pid int) {
	if err := s.scope(pid); err != nil {
		s.count("audit_rule", 1)
		s.opts.Log.Warn().Err(err).Int("pid", pid).Msg("cannot audit a followed process")
	}
}

// startOf reads a live process's start time; 0 (unknown) once it is gone.
func (s *Audit) startOf(pid int) uint64 {
	start, err := procStartBootNs(s.opts.ProcRoot, pid)
	if err != nil {
		return 0
	}
	return start
}

// execImage is the executed file: the name asked for (PATH item 0, against the cwd) and
// the file the process runs now (/proc/PID/exe while it lives, else the record's exe).
func (s *Audit) execImage(r *auditRecord) tree.Image {
	img := tree.Image{Path: r.exe, Size: -1}
	if len(r.paths) > 0 {
		img.Filename = absolute(r.cwd, r.paths[0].name)
		img.Dev, img.Ino = r.paths[0].dev, r.paths[0].inode
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(s.opts.ProcRoot, strconv.Itoa(r.pid), "exe"), &st); err == nil {
		img.Dev, img.Ino, img.Size = st.Dev, st.Ino, st.Size
	}
	return img
}

// copyOf hashes the file a pending exec ran and names the installed agent it copies.
func (s *Audit) copyOf(pid int, img tree.Image) string {
	return s.copies.agentOf(pid, &proto.Exe{Dev: img.Dev, Ino: img.Ino}, img.Path)
}

func absolute(cwd, name string) string {
	if name == "" || filepath.IsAbs(name) || cwd == "" {
		return name
	}
	return filepath.Join(cwd, name)
}

// base fills what every audit event carries.
func (s *Audit) base(at time.Time, p tree.Proc, m tree.Member, comm string, ppid int, uid, gid uint32) *proto.Event {
	e := &proto.Event{
		Timestamp: at.UTC(),
		Event:     proto.EventMeta{Kind: "event", Dataset: "vigil.kernel"},
		Process:   &proto.Process{Pid: p.Pid, Name: comm, StartBootNs: p.Start},
		Vigil:     proto.Vigil{Schema: proto.SchemaVersion, Root: &proto.Root{Pid: m.Root.Pid}, Source: "audit"},
		GenAI:     &proto.GenAI{Agent: &proto.GenAIAgent{Name: m.Agent}},
	}
	if ppid != 0 {
		e.Process.Parent = &proto.ParentProcess{Pid: ppid}
	}
	if p.Start != 0 {
		start := time.Unix(0, int64(p.Start)).Add(s.offset).UTC()
		e.Process.Start = &start
	}
	if uid != noID {
		e.User = &proto.User{ID: strconv.FormatUint(uint64(uid), 10), Group: &proto.Group{ID: strconv.FormatUint(uint64(gid), 10)}}
	}
	return e
}

// noID marks a uid the source does not know (an exit found by the sweep).
const noID = ^uint32(0)

func (s *Audit) execEvent(r *auditRecord, m tree.Member, p tree.Proc, img tree.Image) *proto.Event {
	e := s.base(r.time, p, m, r.comm, r.ppid, r.uid, r.gid)
	e.Event.Action, e.Event.Category, e.Event.Outcome = proto.ActionExec, "process", proto.OutcomeSuccess
	e.Process.Args = r.argv
	e.Process.ArgsCount = r.argc
	e.Process.Executable = r.exe
	e.Process.WorkingDirectory = r.cwd
	if img.Ino != 0 {
		e.Vigil.Exe = &proto.Exe{Dev: img.Dev, Ino: img.Ino}
	}
	keys, read := s.joinKeys(r.pid)
	switch {
	case !read:
		e.Vigil.JoinInherited = true
	case !keys.Empty():
		e.Vigil.Join = &keys
	}
	return e
}

// joinKeys reads the agents' join keys from the environment of a process that still runs
// the image the record is about. A process gone by the time its record is read took its
// environment with it: counted as lost kind join_env, and its exec is marked JoinInherited
// (the keys it had from its parent stand). Only the allowlisted variables are kept; the
// rest of the environment is dropped here.
func (s *Audit) joinKeys(pid int) (proto.JoinKeys, bool) {
	var keys proto.JoinKeys
	env, err := os.ReadFile(filepath.Join(s.opts.ProcRoot, strconv.Itoa(pid), "environ"))
	if err != nil {
		s.count("join_env", 1)
		return keys, false
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		name, value, ok := bytes.Cut(kv, []byte{'='})
		if ok {
			agents.Keep(&keys, string(name), string(value[:min(len(value), maxJoinValue)]))
		}
	}
	return keys, true
}

// maxJoinValue bounds a join key's value as the eBPF record's slot does.
const maxJoinValue = len(bpf.VigilExecEvent{}.Env[0]) - 1

func (s *Audit) forkEvent(at time.Time, r *auditRecord, m tree.Member, child tree.Proc, parent int) *proto.Event {
	e := s.base(at, child, m, r.comm, parent, r.uid, r.gid)
	e.Event.Action, e.Event.Category, e.Event.Outcome = proto.ActionFork, "process", proto.OutcomeSuccess
	return e
}

func (s *Audit) exitEvent(at time.Time, p tree.Proc, m tree.Member, comm string, code *int) *proto.Event {
	e := s.base(at, p, m, comm, 0, noID, 0)
	e.Event.Action, e.Event.Category, e.Event.Outcome = proto.ActionExit, "process", proto.OutcomeSuccess
	e.Process.ExitCode = code
	return e
}

// Open flags by syscall: where the flags argument is (openat2 passes a struct: its flags
// are not in the record).
var openFlagsArg = map[string]int{"open": 1, "openat": 2}

const creatFlags = unix.O_CREAT | unix.O_WRONLY | unix.O_TRUNC

func (s *Audit) openEvent(r *auditRecord, m tree.Member, p tree.Proc) *proto.Event {
	e := s.base(r.time, p, m, r.comm, r.ppid, r.uid, r.gid)
	e.Event.Action, e.Event.Category = proto.ActionOpen, "file"
	setOutcome(e, int32(r.exit), false)
	file := &proto.File{Path: s.openPath(r, e)}
	switch {
	case r.syscall == "creat":
		file.Flags, file.Access = openFlags(creatFlags), openAccess(creatFlags)
	case r.syscall != "openat2":
		flags := uint32(r.args[openFlagsArg[r.syscall]])
		file.Flags, file.Access = openFlags(flags), openAccess(flags)
	}
	e.File = file
	return e
}

// openPath is the opened file's path: for a successful open, the path of the descriptor it
// returned as the kernel names it (/proc/PID/fd/N), when that descriptor still holds the
// file audit saw (same device and inode); else the name the caller passed, which the kernel
// copied, made absolute against the cwd (openat with AT_FDCWD) or the directory descriptor.
func (s *Audit) openPath(r *auditRecord, e *proto.Event) string {
	target := openTarget(r.paths)
	fdDir := filepath.Join(s.opts.ProcRoot, strconv.Itoa(r.pid), "fd")
	if r.success && target.inode != 0 {
		fd := filepath.Join(fdDir, strconv.FormatInt(r.exit, 10))
		var st unix.Stat_t
		if err := unix.Stat(fd, &st); err == nil && st.Ino == target.inode && st.Dev == target.dev {
			if path, err := os.Readlink(fd); err == nil {
				e.Vigil.PathSource = proto.PathSourceKernel
				return path
			}
		}
	}
	e.Vigil.PathSource = proto.PathSourceCaller
	name := target.name
	if filepath.IsAbs(name) {
		return name
	}
	if (r.syscall == "openat" || r.syscall == "openat2") && int32(r.args[0]) != unix.AT_FDCWD {
		if dir, err := os.Readlink(filepath.Join(fdDir, strconv.Itoa(int(int32(r.args[0]))))); err == nil {
			return filepath.Join(dir, name)
		}
		return name
	}
	return absolute(r.cwd, name)
}

// openTarget is the PATH item of the file an open names: not the PARENT item a creating
// open adds for the directory.
func openTarget(paths []auditPath) auditPath {
	for _, p := range paths {
		if p.nametype != "PARENT" {
			return p
		}
	}
	if len(paths) > 0 {
		return paths[0]
	}
	return auditPath{}
}

func (s *Audit) connectEvent(r *auditRecord, m tree.Member, p tree.Proc) *proto.Event {
	e := s.base(r.time, p, m, r.comm, r.ppid, r.uid, r.gid)
	e.Event.Action, e.Event.Category = proto.ActionConnect, "network"
	setOutcome(e, int32(r.exit), true)
	e.Vigil.Syscall = "connect"
	// audit logs the sockaddr after move_addr_to_kernel: the kernel's copy.
	e.Vigil.AddressSource = proto.AddressSourceKernel
	var dest proto.Destination
	if typ := decodeSockaddr(r.sockaddr, &dest); typ != "" {
		e.Network = &proto.Network{Type: typ}
		e.Destination = &dest
	}
	return e
}
