package linux

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// Record kinds and flags: short names for bpf2go's Go twins of bpf/vigil.h's enums (-type in
// bpf/gen.go), so that a value changed in C reaches the decoder with make generate.
const (
	kindExec    = uint32(bpf.VigilEventKindEVENT_EXEC)
	kindFork    = uint32(bpf.VigilEventKindEVENT_FORK)
	kindExit    = uint32(bpf.VigilEventKindEVENT_EXIT)
	kindOpen    = uint32(bpf.VigilEventKindEVENT_OPEN)
	kindConnect = uint32(bpf.VigilEventKindEVENT_CONNECT)
	kindMutate  = uint32(bpf.VigilEventKindEVENT_MUTATE)
	kindSend    = uint32(bpf.VigilEventKindEVENT_SEND)
	kindMerged  = uint32(bpf.VigilEventKindEVENT_OPEN_MERGED)

	// An open record that starts a merge run (open_event.merge).
	mergeRunStart = uint32(bpf.VigilMergeFlagMERGE_RUN_START)

	trackPending  = uint32(bpf.VigilTrackFlagTRACK_PENDING)
	trackRejected = uint32(bpf.VigilTrackFlagTRACK_REJECTED)

	truncArgv = uint32(bpf.VigilTruncFlagTRUNC_ARGV)
	truncExe  = uint32(bpf.VigilTruncFlagTRUNC_EXE)
	truncCwd  = uint32(bpf.VigilTruncFlagTRUNC_CWD)
	truncPath = uint32(bpf.VigilTruncFlagTRUNC_PATH)
	truncWalk = uint32(bpf.VigilTruncFlagTRUNC_WALK)
	// Mutate records' second path (rename source, link target).
	truncPath2 = uint32(bpf.VigilTruncFlagTRUNC_PATH2)
	truncWalk2 = uint32(bpf.VigilTruncFlagTRUNC_WALK2)

	exeUnlinked = uint32(bpf.VigilExeFlagEXE_UNLINKED)
	exeInternal = uint32(bpf.VigilExeFlagEXE_INTERNAL)

	walkNone  = uint32(bpf.VigilWalkKindWALK_NONE)
	walkFile  = uint32(bpf.VigilWalkKindWALK_FILE)
	walkCwd   = uint32(bpf.VigilWalkKindWALK_CWD)
	walkDirfd = uint32(bpf.VigilWalkKindWALK_DIRFD)
	// walkPseudo: a file of a kernel-internal mount, named by the kernel without a path.
	walkPseudo = uint32(bpf.VigilWalkKindWALK_PSEUDO)

	// Network records (connect_event.net_flags).
	netKernelAddr = uint32(bpf.VigilNetFlagNET_KERNEL_ADDR)
	netResult     = uint32(bpf.VigilNetFlagNET_RESULT)
	netIOUring    = uint32(bpf.VigilNetFlagNET_IO_URING)

	einprogress = 115
)

// syscallNames names the system calls a network record can be made in, by this
// architecture's numbers: the kernel records the number the process was in.
var syscallNames = map[int32]string{unix.SYS_CONNECT: "connect", unix.SYS_SENDTO: "sendto", unix.SYS_SENDMSG: "sendmsg",
	unix.SYS_SENDMMSG: "sendmmsg"}

var (
	headerSize  = int(unsafe.Sizeof(bpf.VigilEventHeader{}))
	execSize    = int(unsafe.Sizeof(bpf.VigilExecEvent{}))
	exitSize    = int(unsafe.Sizeof(bpf.VigilExitEvent{}))
	connectSize = int(unsafe.Sizeof(bpf.VigilConnectEvent{}))
	openSize    = int(unsafe.Sizeof(bpf.VigilOpenEvent{}))
	mutateSize  = int(unsafe.Sizeof(bpf.VigilMutateEvent{}))
	mergedSize  = int(unsafe.Sizeof(bpf.VigilMergedEvent{}))
	// A successful open's record ends right after its walked path.
	openMinSize = int(unsafe.Offsetof(bpf.VigilOpenEvent{}.Walk))
)

// envKeySlots are the environment join keys by the exec record's value slot they fill: the
// loader gives slot i to the registry's i-th key (fillEnvKeys).
var envKeySlots = agents.EnvKeys()

// errShortRecord marks a ring-buffer record too short for its kind.
var errShortRecord = errors.New("short record")

// record is a decoded ring-buffer record before it becomes a proto.Event: the tracking flags
// decide what the reader does with it.
type record struct {
	event      *proto.Event
	agentID    uint32
	trackFlags uint32
	// run names the merge run an open record starts, or a merged record reports (with the
	// thread, event.process.thread.id): the first record's kernel timestamp; 0 for others.
	run uint64
}

// decoder turns raw ring-buffer records into events. It is pure (no kernel access), so the
// fuzz target exercises exactly what the reader runs.
type decoder struct {
	// bootOffset converts CLOCK_BOOTTIME ns into wall-clock time.
	bootOffset time.Duration
	// agentName maps a catalog id to gen_ai.agent.name ("" when unknown).
	agentName func(uint32) string
}

// copyRecord copies raw into the fixed-size struct dst, which must be at least min bytes
// long; shorter records (open records are cut after their path) leave the tail zeroed.
func copyRecord[T any](dst *T, raw []byte, min int) error {
	size := int(unsafe.Sizeof(*dst))
	if len(raw) < min {
		return fmt.Errorf("%w: %d bytes, need %d", errShortRecord, len(raw), min)
	}
	// The kernel writes these structs in host byte order with natural alignment, which is
	// exactly the Go layout bpf2go generated (structs.HostLayout).
	copy(unsafe.Slice((*byte)(unsafe.Pointer(dst)), size), raw)
	return nil
}

func (d *decoder) decode(raw []byte) (record, error) {
	var h bpf.VigilEventHeader
	if err := copyRecord(&h, raw, headerSize); err != nil {
		return record{}, fmt.Errorf("decode header: %w", err)
	}
	var e *proto.Event
	var run uint64
	switch h.Kind {
	case kindOpen:
		blk := new(openBlock)
		e = d.base(&blk.base, &h)
		var x bpf.VigilOpenEvent
		if err := copyRecord(&x, raw, openMinSize); err != nil {
			return record{}, fmt.Errorf("decode open: %w", err)
		}
		if err := d.open(e, &x, len(raw), &blk.file); err != nil {
			return record{}, err
		}
		if x.Merge&mergeRunStart != 0 {
			run = h.Ts
		}
	case kindMerged:
		blk := new(mergedBlock)
		e = d.base(&blk.base, &h)
		var x bpf.VigilMergedEvent
		if err := copyRecord(&x, raw, mergedSize); err != nil {
			return record{}, fmt.Errorf("decode merged open: %w", err)
		}
		d.merged(e, &x, blk)
		run = x.Run
	case kindExec:
		blk := new(execBlock)
		e = d.base(&blk.base, &h)
		var x bpf.VigilExecEvent
		if err := copyRecord(&x, raw, execSize); err != nil {
			return record{}, fmt.Errorf("decode exec: %w", err)
		}
		d.exec(e, &x, &blk.exe)
	case kindFork:
		e = d.base(new(baseBlock), &h)
		e.Event.Action = proto.ActionFork
		e.Event.Category = "process"
		e.Event.Outcome = proto.OutcomeSuccess
		e.Process.Thread = nil
	case kindExit:
		blk := new(exitBlock)
		e = d.base(&blk.base, &h)
		var x bpf.VigilExitEvent
		if err := copyRecord(&x, raw, exitSize); err != nil {
			return record{}, fmt.Errorf("decode exit: %w", err)
		}
		e.Event.Action = proto.ActionExit
		e.Event.Category = "process"
		e.Event.Outcome = proto.OutcomeSuccess
		e.Process.Thread = nil
		blk.code = exitCode(x.ExitCode)
		e.Process.ExitCode = &blk.code
	case kindConnect, kindSend:
		blk := new(connectBlock)
		e = d.base(&blk.base, &h)
		var x bpf.VigilConnectEvent
		if err := copyRecord(&x, raw, connectSize); err != nil {
			return record{}, fmt.Errorf("decode %s: %w", networkAction(h.Kind), err)
		}
		d.connect(e, &x, h.Kind, blk)
	case kindMutate:
		blk := new(mutateBlock)
		e = d.base(&blk.base, &h)
		var x bpf.VigilMutateEvent
		if err := copyRecord(&x, raw, mutateSize); err != nil {
			return record{}, fmt.Errorf("decode mutate: %w", err)
		}
		if err := d.mutate(e, &x, blk); err != nil {
			return record{}, err
		}
	default:
		return record{}, fmt.Errorf("decode: unknown record kind %d", h.Kind)
	}
	return record{event: e, agentID: h.Agent, trackFlags: h.TrackFlags, run: run}, nil
}

// baseBlock holds an event and the groups every record fills, so that decoding a record
// allocates one object instead of one per group. The event's pointers point into the block;
// they are never shared with other events, so the consumers may modify them as before.
type baseBlock struct {
	event  proto.Event
	proc   proto.Process
	user   proto.User
	group  proto.Group
	thread proto.Thread
	parent proto.ParentProcess
	root   proto.Root
	start  time.Time
	genAI  proto.GenAI
}

// openBlock, exitBlock and connectBlock add what their kind fills.
type (
	openBlock struct {
		base baseBlock
		file proto.File
	}
	exitBlock struct {
		base baseBlock
		code int
	}
	execBlock struct {
		base baseBlock
		exe  proto.Exe
	}
	mutateBlock struct {
		base   baseBlock
		file   proto.File
		rename proto.Rename
		size   int64
	}
	connectBlock struct {
		base baseBlock
		dest proto.Destination
		net  proto.Network
	}
	mergedBlock struct {
		base   baseBlock
		file   proto.File
		merged proto.Merged
	}
)

// base fills what every record carries into b and returns b's event. b is new (zero), so
// the fields are set one by one: assigning whole composite literals copied every group,
// empty fields and all, through the GC's bulk write barrier (a tenth of a decode).
func (d *decoder) base(b *baseBlock, h *bpf.VigilEventHeader) *proto.Event {
	b.start = d.wall(h.StartNs)
	b.group.ID = idString(h.Gid)
	b.user.ID, b.user.Group = idString(h.Uid), &b.group
	b.thread.ID = int(h.Tid)
	b.parent.Pid = int(h.Ppid)
	p := &b.proc
	p.Pid, p.Thread, p.Name, p.Start, p.Parent, p.StartBootNs = int(h.Pid), &b.thread, internComm(h.Comm[:]), &b.start, &b.parent, h.StartNs
	b.root.Pid = int(h.Root)
	e := &b.event
	e.Timestamp = d.wall(h.Ts)
	e.Event.Kind, e.Event.Dataset = "event", "vigil.kernel"
	e.User, e.Process = &b.user, p
	e.Vigil.Schema, e.Vigil.Root, e.Vigil.Source = proto.SchemaVersion, &b.root, "ebpf"
	if name := d.agentName(h.Agent); name != "" {
		b.genAI.Agent = agentOf(h.Agent, name)
		e.GenAI = &b.genAI
	}
	return e
}

// The caches below give records the same immutable values (strings, the agent struct)
// without an allocation per record. They are direct-mapped, bounded, and safe for concurrent
// decoders: a slot holds one value and a miss replaces it.

// agentCache holds one shared gen_ai.agent value per catalog id. The value is read-only:
// whoever sets another agent on an event replaces the pointer (setAgent, the process table).
var agentCache [64]atomic.Pointer[proto.GenAIAgent]

func agentOf(id uint32, name string) *proto.GenAIAgent {
	slot := &agentCache[id%uint32(len(agentCache))]
	if a := slot.Load(); a != nil && a.Name == name {
		return a
	}
	a := &proto.GenAIAgent{Name: name}
	slot.Store(a)
	return a
}

type idEntry struct {
	id uint32
	s  string
}

var idCache [64]atomic.Pointer[idEntry]

// idString is strconv.FormatUint for a uid or gid.
func idString(id uint32) string {
	slot := &idCache[id%uint32(len(idCache))]
	if c := slot.Load(); c != nil && c.id == id {
		return c.s
	}
	c := &idEntry{id: id, s: strconv.FormatUint(uint64(id), 10)}
	slot.Store(c)
	return c.s
}

var (
	commSeed  = maphash.MakeSeed()
	commCache [256]atomic.Pointer[string]
)

// internComm is cString for the task's comm, which few processes share.
func internComm(comm []byte) string {
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	slot := &commCache[maphash.Bytes(commSeed, comm)%uint64(len(commCache))]
	if s := slot.Load(); s != nil && *s == string(comm) {
		return *s
	}
	s := string(comm)
	slot.Store(&s)
	return s
}

func (d *decoder) wall(bootNs uint64) time.Time {
	return time.Unix(0, int64(bootNs)).Add(d.bootOffset).UTC()
}

func (d *decoder) exec(e *proto.Event, x *bpf.VigilExecEvent, exe *proto.Exe) {
	e.Event.Action = proto.ActionExec
	e.Event.Category = "process"
	e.Event.Outcome = proto.OutcomeSuccess
	e.Process.Thread = nil
	e.Process.Args = splitArgs(x.Argv[:clamp(x.ArgvLen, len(x.Argv))])
	e.Process.ArgsCount = int(x.Argc)
	exeBytes := x.Exe[:clamp(x.ExeLen, len(x.Exe))]
	*exe = proto.Exe{
		Dev:   userDev(x.ExeDev),
		Ino:   x.ExeIno,
		Ctime: time.Unix(x.ExeCtimeSec, int64(x.ExeCtimeNsec)).UTC().Format(proto.TimeLayout),
	}
	e.Vigil.Exe = exe
	if x.ExeFlags&exeInternal != 0 {
		// A file of a kernel-internal mount has no path, only its name: "memfd:<name>" for
		// memfd_create, whatever /proc/self/fd/N the caller executed it by.
		e.Process.Executable = cString(exeBytes)
		exe.Memfd = strings.HasPrefix(e.Process.Executable, "memfd:")
		exe.Deleted = !exe.Memfd && x.ExeFlags&exeUnlinked != 0
	} else {
		e.Process.Executable = joinWalk(exeBytes, x.Truncated&truncExe != 0)
		exe.Deleted = x.ExeFlags&exeUnlinked != 0
	}
	if e.Process.Executable == "/" || e.Process.Executable == "" {
		// The walk failed: fall back to the path as passed.
		e.Process.Executable = cString(x.Filename[:clamp(x.FilenameLen, len(x.Filename))])
	}
	e.Process.WorkingDirectory = joinWalk(x.Cwd[:clamp(x.CwdLen, len(x.Cwd))], x.Truncated&truncCwd != 0)
	e.Vigil.Truncated = truncatedNames(x.Truncated)
	var keys proto.JoinKeys
	for i := range min(len(x.Env), len(envKeySlots)) {
		if x.EnvFound&(1<<i) == 0 {
			continue
		}
		k := envKeySlots[i]
		keys.Set(k.Agent, string(k.Role), cString(x.Env[i][:]))
	}
	if !keys.Empty() {
		join := keys // only records with keys pay for the allocation
		e.Vigil.Join = &join
	}
}

func (d *decoder) open(e *proto.Event, x *bpf.VigilOpenEvent, rawLen int, file *proto.File) error {
	e.Event.Action = proto.ActionOpen
	e.Event.Category = "file"
	setOutcome(e, x.Ret, false)
	if x.IoUring != 0 {
		e.Vigil.Syscall = proto.SyscallIOUring
	}
	var path string
	if x.IoUring != 0 && x.WalkKind == walkNone {
		// An io_uring open that failed, or filled a fixed-file slot: the kernel's copy of the
		// caller's string is gone by its completion and no descriptor names the file.
		if rawLen < openSize {
			return fmt.Errorf("decode open: %w: %d bytes, need %d", errShortRecord, rawLen, openSize)
		}
	} else if x.WalkKind == walkFile || x.WalkKind == walkPseudo {
		// A successful open: the path the kernel walked from the opened file, or for a pipe,
		// socket, anon inode or memfd opened through /dev/fd/N or /proc/PID/fd/N, which has no
		// path, the name the kernel gave it, written as /proc writes it ("pipe:[1234]").
		walkLen := clamp(x.WalkLen, len(x.Walk))
		if openMinSize+walkLen > rawLen {
			return fmt.Errorf("decode open: %w: walk of %d bytes in a %d-byte record", errShortRecord, walkLen, rawLen)
		}
		if x.WalkKind == walkPseudo {
			path = pseudoName(cString(x.Walk[:walkLen]))
		} else {
			path = joinWalk(x.Walk[:walkLen], x.Truncated&truncWalk != 0)
		}
		e.Vigil.PathSource = proto.PathSourceKernel
	} else {
		// A failed open (or one whose descriptor was gone at exit): the caller's string,
		// made absolute against the walked cwd or dirfd when it was relative.
		if rawLen < openSize {
			return fmt.Errorf("decode open: %w: %d bytes, need %d for the caller's path", errShortRecord, rawLen, openSize)
		}
		path = cString(x.Path[:clamp(x.PathLen, len(x.Path))])
		if (x.WalkKind == walkCwd || x.WalkKind == walkDirfd) && path != "" && path[0] != '/' {
			path = joinPath(joinWalk(x.Walk[:clamp(x.WalkLen, len(x.Walk))], x.Truncated&truncWalk != 0), path)
		}
		e.Vigil.PathSource = proto.PathSourceCaller
	}
	file.Path, file.Flags, file.Access = path, openFlags(x.Flags), openAccess(x.Flags) // file is new: see base
	e.File = file
	e.Vigil.Truncated = truncatedNames(x.Truncated)
	return nil
}

// merged decodes a merge run's repeats: an open line whose @timestamp is the first repeat's.
// Its file.path is the run's first record's, which the reader fills in (merges.name); the
// decoder knows the file only by its identity.
func (d *decoder) merged(e *proto.Event, x *bpf.VigilMergedEvent, blk *mergedBlock) {
	e.Event.Action = proto.ActionOpen
	e.Event.Category = "file"
	e.Event.Outcome = proto.OutcomeSuccess
	e.Timestamp = d.wall(x.FirstTs)
	if x.IoUring != 0 {
		e.Vigil.Syscall = proto.SyscallIOUring
	}
	e.Vigil.PathSource = proto.PathSourceKernel
	blk.file = proto.File{Flags: openFlags(x.Flags), Access: openAccess(x.Flags)}
	e.File = &blk.file
	blk.merged = proto.Merged{
		Count: uint64(x.Count),
		First: e.Timestamp.Format(proto.TimeLayout),
		Last:  d.wall(x.LastTs).Format(proto.TimeLayout),
		Dev:   userDev(x.Dev),
		Ino:   x.Ino,
	}
	e.Vigil.Merged = &blk.merged
}

// pseudoName writes the kernel's "<filesystem>:[<inode>]" of a pipe or socket the way /proc
// and strace do ("pipe:[1234]", "socket:[1234]"); other names are kept as they are.
func pseudoName(name string) string {
	for fs, shown := range map[string]string{"pipefs:": "pipe:", "sockfs:": "socket:"} {
		if rest, ok := strings.CutPrefix(name, fs); ok {
			return shown + rest
		}
	}
	return name
}

// What a mutate record did (enum mutate_op).
const (
	mutateRename   = uint32(bpf.VigilMutateOpMUTATE_RENAME)
	mutateUnlink   = uint32(bpf.VigilMutateOpMUTATE_UNLINK)
	mutateRmdir    = uint32(bpf.VigilMutateOpMUTATE_RMDIR)
	mutateLink     = uint32(bpf.VigilMutateOpMUTATE_LINK)
	mutateSymlink  = uint32(bpf.VigilMutateOpMUTATE_SYMLINK)
	mutateChmod    = uint32(bpf.VigilMutateOpMUTATE_CHMOD)
	mutateChown    = uint32(bpf.VigilMutateOpMUTATE_CHOWN)
	mutateTruncate = uint32(bpf.VigilMutateOpMUTATE_TRUNCATE)

	unchangedID = ^uint32(0) // chown's -1: leave the owner or group as it is
)

// mutateOps describes each enum mutate_op: its action, ECS event.type, and the name of its
// second path (for vigil.truncated).
var mutateOps = map[uint32]struct {
	action, second string
	typ            []string
}{
	mutateRename:   {proto.ActionRename, "vigil.rename.source", []string{"change"}},
	mutateUnlink:   {proto.ActionUnlink, "", []string{"deletion"}},
	mutateRmdir:    {proto.ActionRmdir, "", []string{"deletion"}},
	mutateLink:     {proto.ActionLink, "file.target_path", []string{"creation"}},
	mutateSymlink:  {proto.ActionSymlink, "file.target_path", []string{"creation"}},
	mutateChmod:    {proto.ActionChmod, "", []string{"change"}},
	mutateChown:    {proto.ActionChown, "", []string{"change"}},
	mutateTruncate: {proto.ActionTruncate, "", []string{"change"}},
}

func (d *decoder) mutate(e *proto.Event, x *bpf.VigilMutateEvent, blk *mutateBlock) error {
	op, ok := mutateOps[x.Op]
	if !ok {
		return fmt.Errorf("decode mutate: unknown operation %d", x.Op)
	}
	e.Event.Action = op.action
	e.Event.Category = "file"
	e.Event.Type = op.typ
	setOutcome(e, x.Ret, false)
	file := &blk.file
	var kernel bool
	file.Path, kernel = mutatePath(x.Walk[:clamp(x.WalkLen, len(x.Walk))], x.WalkKind, x.Truncated&truncWalk != 0,
		x.Path[:clamp(x.PathLen, len(x.Path))])
	e.Vigil.PathSource = proto.PathSourceCaller
	if kernel {
		e.Vigil.PathSource = proto.PathSourceKernel
	}
	var second string
	if x.Op == mutateSymlink {
		second = cString(x.Path2[:clamp(x.Path2Len, len(x.Path2))]) // the target as given
	} else {
		second, _ = mutatePath(x.Walk2[:clamp(x.Walk2Len, len(x.Walk2))], x.Walk2Kind, x.Truncated&truncWalk2 != 0,
			x.Path2[:clamp(x.Path2Len, len(x.Path2))])
	}
	switch x.Op {
	case mutateRename:
		blk.rename.Source = second
		e.Vigil.Rename = &blk.rename
		file.Flags = flagNames(x.Flags, renameFlagNames)
	case mutateLink, mutateSymlink:
		file.TargetPath = second
		file.Flags = flagNames(x.Flags, atFlagNames)
	case mutateChmod:
		file.Mode = fmt.Sprintf("%04o", x.Mode&0o7777)
		e.Vigil.Setid = x.Mode&0o6000 != 0
		file.Flags = flagNames(x.Flags, atFlagNames)
	case mutateChown:
		if x.Uid != unchangedID {
			file.UID = idString(x.Uid)
		}
		if x.Gid != unchangedID {
			file.GID = idString(x.Gid)
		}
		file.Flags = flagNames(x.Flags, atFlagNames)
	case mutateTruncate:
		blk.size = x.Length
		file.Size = &blk.size
	default: // unlink, rmdir
		file.Flags = flagNames(x.Flags&^0x200, atFlagNames) // AT_REMOVEDIR is the action
	}
	e.File = file
	e.Vigil.Truncated = truncatedNames(x.Truncated &^ (truncPath2 | truncWalk2))
	if x.Truncated&(truncPath2|truncWalk2) != 0 && op.second != "" {
		e.Vigil.Truncated = append(e.Vigil.Truncated, op.second)
	}
	return nil
}

// mutatePath is one path of a mutate record: the walked file when the call named it by
// descriptor (kernel), else the caller's string, made absolute against the walked working
// directory or dirfd when it was relative.
func mutatePath(walk []byte, kind uint32, walkTruncated bool, path []byte) (string, bool) {
	if kind == walkFile {
		return joinWalk(walk, walkTruncated), true
	}
	p := cString(path)
	if (kind == walkCwd || kind == walkDirfd) && p != "" && p[0] != '/' {
		p = joinPath(joinWalk(walk, walkTruncated), p)
	}
	return p, false
}

type flagName struct {
	bit  uint32
	name string
}

var (
	renameFlagNames = []flagName{{1, "RENAME_NOREPLACE"}, {2, "RENAME_EXCHANGE"}, {4, "RENAME_WHITEOUT"}}
	atFlagNames     = []flagName{{0x100, "AT_SYMLINK_NOFOLLOW"}, {0x200, "AT_REMOVEDIR"}, {0x400, "AT_SYMLINK_FOLLOW"},
		{0x800, "AT_NO_AUTOMOUNT"}, {0x1000, "AT_EMPTY_PATH"}}
)

// flagNames names the set bits of flags, "|"-separated; unknown bits are written in hex.
func flagNames(flags uint32, names []flagName) string {
	if flags == 0 {
		return ""
	}
	var parts []string
	for _, f := range names {
		if flags&f.bit != 0 {
			parts = append(parts, f.name)
			flags &^= f.bit
		}
	}
	if flags != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", flags))
	}
	return strings.Join(parts, "|")
}

func networkAction(kind uint32) string {
	if kind == kindSend {
		return proto.ActionSend
	}
	return proto.ActionConnect
}

// connect decodes a connect or send record: the destination, where its address came from,
// and the call that made it. A record taken by a cgroup hook, as the kernel began the call,
// has no result: its outcome is unknown.
func (d *decoder) connect(e *proto.Event, x *bpf.VigilConnectEvent, kind uint32, blk *connectBlock) {
	e.Event.Action = networkAction(kind)
	e.Event.Category = "network"
	if x.NetFlags&netResult != 0 {
		setOutcome(e, x.Ret, true)
	} else {
		e.Event.Outcome = proto.OutcomeUnknown
	}
	e.Vigil.AddressSource = proto.AddressSourceCaller
	if x.NetFlags&netKernelAddr != 0 {
		e.Vigil.AddressSource = proto.AddressSourceKernel
	}
	if x.NetFlags&netIOUring != 0 {
		e.Vigil.Syscall = proto.SyscallIOUring
	} else {
		e.Vigil.Syscall = syscallNames[x.Syscall]
	}
	if typ := decodeSockaddr(x.Addr[:clamp(x.Addrlen, len(x.Addr))], &blk.dest); typ != "" {
		blk.net = proto.Network{Type: typ}
		e.Network = &blk.net
		e.Destination = &blk.dest
	}
}

// decodeSockaddr reads a struct sockaddr as the kernel copied it into dest and returns
// network.type ("ipv4", "ipv6", "unix"), or "" for a family Vigil does not read.
func decodeSockaddr(addr []byte, dest *proto.Destination) string {
	if len(addr) < 2 {
		return ""
	}
	switch family := uint16(addr[0]) | uint16(addr[1])<<8; family {
	case unix.AF_INET:
		if len(addr) >= 8 {
			dest.Port = int(addr[2])<<8 | int(addr[3])
			dest.IP = netip.AddrFrom4([4]byte(addr[4:8])).String()
		}
		return "ipv4"
	case unix.AF_INET6:
		if len(addr) >= 24 {
			dest.Port = int(addr[2])<<8 | int(addr[3])
			dest.IP = netip.AddrFrom16([16]byte(addr[8:24])).Unmap().String()
		}
		return "ipv6"
	case unix.AF_UNIX:
		path := addr[2:]
		if len(path) > 0 && path[0] == 0 { // abstract socket: name follows a NUL
			dest.Address = "@" + string(bytes.TrimRight(path[1:], "\x00"))
		} else {
			dest.Address = cString(path)
		}
		return "unix"
	}
	return ""
}

// setOutcome maps a syscall return to event.outcome and vigil.errno. A non-blocking connect
// that returns EINPROGRESS has not failed yet: its outcome is unknown.
func setOutcome(e *proto.Event, ret int32, isConnect bool) {
	switch {
	case ret >= 0:
		e.Event.Outcome = proto.OutcomeSuccess
	case isConnect && ret == -einprogress:
		e.Event.Outcome = proto.OutcomeUnknown
		e.Vigil.Errno = einprogress
	default:
		e.Event.Outcome = proto.OutcomeFailure
		e.Vigil.Errno = int(-ret)
	}
}

// exitCode turns a wait status into the shell's convention: the exit status, or 128+signal.
func exitCode(status uint32) int {
	if sig := status & 0x7f; sig != 0 {
		return 128 + int(sig)
	}
	return int(status>>8) & 0xff
}

func clamp(n uint32, max int) int {
	if int64(n) > int64(max) {
		return max
	}
	return int(n)
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// splitArgs splits the NUL-terminated argv block the kernel copied from the process at exec
// (exactly argc strings; a truncated block ends mid-argument). Only the last terminator is
// trimmed: empty arguments, the last one included ("a\0\0"), are arguments.
func splitArgs(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	// Split by hand: bytes.Split would put subslices of b in a heap slice, and b points into
	// the record decode keeps on its stack.
	b = bytes.TrimSuffix(b, []byte{0})
	args := make([]string, 0, bytes.Count(b, []byte{0})+1)
	for {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return append(args, string(b))
		}
		args = append(args, string(b[:i]))
		b = b[i+1:]
	}
}

// truncatedRoot starts a walked path whose root side did not fit the kernel's bound: it
// must never read as an absolute path.
const truncatedRoot = "…"

// joinWalk turns the kernel's leaf-first, NUL-separated path components into an absolute
// path. An empty walk is the root directory. A truncated walk holds the leaf side only, so it
// is returned as "…/leaf-side/components", never as an absolute path.
func joinWalk(b []byte, truncated bool) string {
	b = bytes.TrimRight(b, "\x00")
	var sb strings.Builder
	sb.Grow(len(b) + 1 + len(truncatedRoot))
	if truncated {
		sb.WriteString(truncatedRoot)
	}
	// Components from the last (the root's child) to the first (the leaf).
	for end := len(b); end >= 0 && len(b) > 0; {
		i := bytes.LastIndexByte(b[:end], 0)
		part := b[i+1 : end]
		end = i
		if len(part) == 0 || (len(part) == 1 && part[0] == '/') {
			continue
		}
		sb.WriteByte('/')
		sb.Write(part)
	}
	if sb.Len() == len(truncatedRoot) && truncated {
		sb.WriteByte('/')
	}
	if sb.Len() == 0 {
		return "/"
	}
	return sb.String()
}

// joinPath resolves a relative path against dir, lexically: the kernel already failed the
// open, so there is no file to ask.
func joinPath(dir, rel string) string {
	if dir == "/" {
		return "/" + strings.TrimPrefix(rel, "./")
	}
	return dir + "/" + strings.TrimPrefix(rel, "./")
}

var truncBits = []struct {
	bit  uint32
	name string
}{
	{truncArgv, "process.args"},
	{truncExe, "process.executable"},
	{truncCwd, "process.working_directory"},
	{truncPath, "file.path"},
	{truncWalk, "file.path"},
}

func truncatedNames(bits uint32) []string {
	var names []string
	for _, t := range truncBits {
		if bits&t.bit != 0 && (len(names) == 0 || names[len(names)-1] != t.name) {
			names = append(names, t.name)
		}
	}
	return names
}

// openFlagNames are this architecture's values: O_DIRECT, O_DIRECTORY and O_NOFOLLOW differ
// between x86-64 and arm64.
var openFlagNames = []struct {
	bit  uint32
	name string
}{
	{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_NOCTTY, "O_NOCTTY"}, {unix.O_TRUNC, "O_TRUNC"},
	{unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"}, {unix.O_DSYNC, "O_DSYNC"}, {unix.O_DIRECT, "O_DIRECT"},
	{unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"}, {unix.O_NOATIME, "O_NOATIME"},
	{unix.O_CLOEXEC, "O_CLOEXEC"}, {unix.O_PATH, "O_PATH"},
	{unix.O_TMPFILE &^ unix.O_DIRECTORY, "O_TMPFILE"}, // the kernel's __O_TMPFILE bit; O_TMPFILE includes O_DIRECTORY
}

type flagsEntry struct {
	flags uint32
	names string
}

// flagsCache keeps the names of recently seen flag values: a program opens with few.
var flagsCache [64]atomic.Pointer[flagsEntry]

// openFlags names the open(2) flags, access mode first.
func openFlags(flags uint32) string {
	slot := &flagsCache[(flags*0x9e3779b1)>>26]
	if c := slot.Load(); c != nil && c.flags == flags {
		return c.names
	}
	c := &flagsEntry{flags: flags, names: formatOpenFlags(flags)}
	slot.Store(c)
	return c.names
}

func formatOpenFlags(flags uint32) string {
	names := []string{[]string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}[flags&3]}
	for _, f := range openFlagNames {
		if flags&f.bit == f.bit {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, "|")
}

func openAccess(flags uint32) string {
	if flags&unix.O_PATH != 0 { // O_PATH opens no data
		return "path"
	}
	switch flags & 3 {
	case 1:
		return "write"
	case 2:
		return "read_write"
	}
	return "read"
}
