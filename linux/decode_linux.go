package linux

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/proto"
)

// Record kinds and flags, mirrored from bpf/vigil.h.
const (
	kindExec    = 1
	kindFork    = 2
	kindExit    = 3
	kindOpen    = 4
	kindConnect = 5

	trackPending  = 1
	trackRejected = 2

	truncArgv = 1
	truncExe  = 2
	truncCwd  = 4
	truncPath = 8
	truncWalk = 16

	walkFile = 1
	walkCwd  = 2

	afUnix  = 1
	afInet  = 2
	afInet6 = 10

	einprogress = 115
)

var (
	headerSize  = int(unsafe.Sizeof(bpf.VigilEventHeader{}))
	execSize    = int(unsafe.Sizeof(bpf.VigilExecEvent{}))
	exitSize    = int(unsafe.Sizeof(bpf.VigilExitEvent{}))
	connectSize = int(unsafe.Sizeof(bpf.VigilConnectEvent{}))
	openSize    = int(unsafe.Sizeof(bpf.VigilOpenEvent{}))
	// An open record of an absolute path ends right after the path string.
	openMinSize = int(unsafe.Offsetof(bpf.VigilOpenEvent{}.Path))
)

// envKeyNames is the order of enum env_key in bpf/vigil.h.
var envKeyNames = [...]string{"TRACEPARENT", "CODEX_TOOL_CALL_ID", "CLAUDE_CODE_SESSION_ID", "CODEX_SESSION_ID", "AI_AGENT", "CLAUDECODE"}

// errShortRecord marks a ring-buffer record too short for its kind.
var errShortRecord = errors.New("short record")

// record is a decoded ring-buffer record before it becomes a proto.Event: the tracking flags
// decide what the reader does with it.
type record struct {
	event      *proto.Event
	agentID    uint32
	trackFlags uint32
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
	e := d.base(&h)
	rec := record{event: e, agentID: h.Agent, trackFlags: h.TrackFlags}
	switch h.Kind {
	case kindExec:
		var x bpf.VigilExecEvent
		if err := copyRecord(&x, raw, execSize); err != nil {
			return record{}, fmt.Errorf("decode exec: %w", err)
		}
		d.exec(e, &x)
	case kindFork:
		e.Event.Action = proto.ActionFork
		e.Event.Category = "process"
		e.Event.Outcome = proto.OutcomeSuccess
		e.Process.Thread = nil
	case kindExit:
		var x bpf.VigilExitEvent
		if err := copyRecord(&x, raw, exitSize); err != nil {
			return record{}, fmt.Errorf("decode exit: %w", err)
		}
		e.Event.Action = proto.ActionExit
		e.Event.Category = "process"
		e.Event.Outcome = proto.OutcomeSuccess
		e.Process.Thread = nil
		code := exitCode(x.ExitCode)
		e.Process.ExitCode = &code
	case kindOpen:
		var x bpf.VigilOpenEvent
		if err := copyRecord(&x, raw, openMinSize); err != nil {
			return record{}, fmt.Errorf("decode open: %w", err)
		}
		if err := d.open(e, &x, len(raw)); err != nil {
			return record{}, err
		}
	case kindConnect:
		var x bpf.VigilConnectEvent
		if err := copyRecord(&x, raw, connectSize); err != nil {
			return record{}, fmt.Errorf("decode connect: %w", err)
		}
		d.connect(e, &x)
	default:
		return record{}, fmt.Errorf("decode: unknown record kind %d", h.Kind)
	}
	return rec, nil
}

// base fills what every record carries.
func (d *decoder) base(h *bpf.VigilEventHeader) *proto.Event {
	start := d.wall(h.StartNs)
	e := &proto.Event{
		Timestamp: d.wall(h.Ts),
		Event:     proto.EventMeta{Kind: "event", Dataset: "vigil.kernel"},
		User:      &proto.User{ID: strconv.FormatUint(uint64(h.Uid), 10), Group: &proto.Group{ID: strconv.FormatUint(uint64(h.Gid), 10)}},
		Process: &proto.Process{
			Pid:         int(h.Pid),
			Thread:      &proto.Thread{ID: int(h.Tid)},
			Name:        cString(h.Comm[:]),
			Start:       &start,
			Parent:      &proto.ParentProcess{Pid: int(h.Ppid)},
			StartBootNs: h.StartNs,
		},
		Vigil: proto.Vigil{Schema: proto.SchemaVersion, Root: &proto.Root{Pid: int(h.Root)}, Source: "ebpf"},
	}
	if name := d.agentName(h.Agent); name != "" {
		e.GenAI = &proto.GenAI{Agent: &proto.GenAIAgent{Name: name}}
	}
	return e
}

func (d *decoder) wall(bootNs uint64) time.Time {
	return time.Unix(0, int64(bootNs)).Add(d.bootOffset).UTC()
}

func (d *decoder) exec(e *proto.Event, x *bpf.VigilExecEvent) {
	e.Event.Action = proto.ActionExec
	e.Event.Category = "process"
	e.Event.Outcome = proto.OutcomeSuccess
	e.Process.Thread = nil
	e.Process.Args = splitArgs(x.Argv[:clamp(x.ArgvLen, len(x.Argv))])
	e.Process.ArgsCount = int(x.Argc)
	e.Process.Executable = joinWalk(x.Exe[:clamp(x.ExeLen, len(x.Exe))])
	if e.Process.Executable == "/" || e.Process.Executable == "" {
		// The walk failed (an anonymous or deleted image): fall back to the path as passed.
		e.Process.Executable = cString(x.Filename[:clamp(x.FilenameLen, len(x.Filename))])
	}
	e.Process.WorkingDirectory = joinWalk(x.Cwd[:clamp(x.CwdLen, len(x.Cwd))])
	e.Vigil.Truncated = truncatedNames(x.Truncated)
	var keys proto.JoinKeys
	for i := range envKeyNames {
		if x.EnvFound&(1<<i) == 0 {
			continue
		}
		v := cString(x.Env[i][:])
		switch i {
		case 0:
			keys.TraceParent = v
		case 1:
			keys.CodexToolCallID = v
		case 2:
			keys.ClaudeCodeSession = v
		case 3:
			keys.CodexSession = v
		case 4:
			keys.AIAgent = v
		case 5:
			keys.ClaudeCode = v
		}
	}
	if !keys.Empty() {
		e.Vigil.Join = &keys
	}
}

func (d *decoder) open(e *proto.Event, x *bpf.VigilOpenEvent, rawLen int) error {
	e.Event.Action = proto.ActionOpen
	e.Event.Category = "file"
	setOutcome(e, x.Ret, false)
	pathLen := clamp(x.PathLen, len(x.Path))
	if openMinSize+pathLen > rawLen && rawLen < openSize {
		return fmt.Errorf("decode open: %w: path of %d bytes in a %d-byte record", errShortRecord, pathLen, rawLen)
	}
	given := cString(x.Path[:pathLen])
	walked := ""
	if rawLen >= openSize && x.WalkKind != 0 {
		walked = joinWalk(x.Walk[:clamp(x.WalkLen, len(x.Walk))])
	}
	path := given
	switch {
	case x.WalkKind == walkFile && walked != "":
		path = walked
	case x.WalkKind == walkCwd && walked != "":
		path = joinPath(walked, given)
	}
	e.File = &proto.File{Path: path, Flags: openFlags(x.Flags), Access: openAccess(x.Flags)}
	e.Vigil.Truncated = truncatedNames(x.Truncated)
	return nil
}

func (d *decoder) connect(e *proto.Event, x *bpf.VigilConnectEvent) {
	e.Event.Action = proto.ActionConnect
	e.Event.Category = "network"
	setOutcome(e, x.Ret, true)
	addr := x.Addr[:clamp(x.Addrlen, len(x.Addr))]
	if len(addr) < 2 {
		return
	}
	family := uint16(addr[0]) | uint16(addr[1])<<8
	dest := &proto.Destination{}
	switch family {
	case afInet:
		if len(addr) >= 8 {
			dest.Port = int(addr[2])<<8 | int(addr[3])
			dest.IP = netip.AddrFrom4([4]byte(addr[4:8])).String()
		}
		e.Network = &proto.Network{Type: "ipv4"}
	case afInet6:
		if len(addr) >= 24 {
			dest.Port = int(addr[2])<<8 | int(addr[3])
			dest.IP = netip.AddrFrom16([16]byte(addr[8:24])).Unmap().String()
		}
		e.Network = &proto.Network{Type: "ipv6"}
	case afUnix:
		path := addr[2:]
		if len(path) > 0 && path[0] == 0 { // abstract socket: name follows a NUL
			dest.Address = "@" + string(bytes.TrimRight(path[1:], "\x00"))
		} else {
			dest.Address = cString(path)
		}
		e.Network = &proto.Network{Type: "unix"}
	}
	e.Destination = dest
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
	parts := bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
	args := make([]string, len(parts))
	for i, p := range parts {
		args[i] = string(p)
	}
	return args
}

// joinWalk turns the kernel's leaf-first, NUL-separated path components into an absolute
// path. An empty walk is the root directory.
func joinWalk(b []byte) string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return "/"
	}
	parts := bytes.Split(b, []byte{0})
	var sb strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		if len(parts[i]) == 0 || (len(parts[i]) == 1 && parts[i][0] == '/') {
			continue
		}
		sb.WriteByte('/')
		sb.Write(parts[i])
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

var openFlagNames = []struct {
	bit  uint32
	name string
}{
	{0o100, "O_CREAT"}, {0o200, "O_EXCL"}, {0o400, "O_NOCTTY"}, {0o1000, "O_TRUNC"}, {0o2000, "O_APPEND"},
	{0o4000, "O_NONBLOCK"}, {0o10000, "O_DSYNC"}, {0o40000, "O_DIRECT"}, {0o200000, "O_DIRECTORY"},
	{0o400000, "O_NOFOLLOW"}, {0o1000000, "O_NOATIME"}, {0o2000000, "O_CLOEXEC"}, {0o10000000, "O_PATH"},
	{0o20000000, "O_TMPFILE"},
}

// openFlags names the open(2) flags, access mode first.
func openFlags(flags uint32) string {
	names := []string{[]string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}[flags&3]}
	for _, f := range openFlagNames {
		if flags&f.bit == f.bit {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, "|")
}

func openAccess(flags uint32) string {
	if flags&0o10000000 != 0 { // O_PATH opens no data
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
