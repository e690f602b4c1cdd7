package darwin

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/tree"
)

// SourceName is written to vigil.source on the lines of this source.
const SourceName = "endpointsecurity"

// errUnsupported marks an event kind Vigil does not map (eslogger was asked for another event,
// or a capture holds more than Vigil subscribes to).
var errUnsupported = errors.New("event kind not mapped")

// decode decodes the message's event body into its typed struct.
func (m *message) decode() (any, error) {
	var body any
	switch m.kind {
	case "exec":
		body = new(execBody)
	case "fork":
		body = new(forkBody)
	case "exit":
		body = new(exitBody)
	case "open":
		body = new(openBody)
	case "close":
		body = new(closeBody)
	case "write", "truncate":
		body = new(targetBody)
	case "create":
		body = new(createBody)
	case "rename":
		body = new(renameBody)
	case "unlink":
		body = new(unlinkBody)
	case "link":
		body = new(linkBody)
	case "setmode":
		body = new(setmodeBody)
	case "setowner":
		body = new(setownerBody)
	case "uipc_connect":
		body = new(uipcConnectBody)
	default:
		return nil, errUnsupported
	}
	if err := m.decodeBody(body); err != nil {
		return nil, err
	}
	return body, nil
}

// lineOf maps a decoded message of a process in the agent tree member onto the line the Linux
// sources write for the same action; nil for a close that modified nothing (the open's line
// already says the file was opened). Paths and pids are the kernel's, from the message, never
// from argv.
func lineOf(m *message, body any, member tree.Member) (*proto.Event, error) {
	switch b := body.(type) {
	case *execBody:
		e := newLine(m, proto.ActionExec, "process", &b.Target, member)
		execLine(e, b)
		return e, nil
	case *forkBody:
		e := newLine(m, proto.ActionFork, "process", &b.Child, member)
		if e.Process.Parent.Pid == 0 {
			e.Process.Parent.Pid = m.Process.AuditToken.Pid
		}
		return e, nil
	case *exitBody:
		e := newLine(m, proto.ActionExit, "process", m.Process, member)
		code := exitCode(b.Stat)
		e.Process.ExitCode = &code
		return e, nil
	case *uipcConnectBody:
		e := newLine(m, proto.ActionConnect, "network", m.Process, member)
		setThread(e, m)
		e.Destination = &proto.Destination{Address: pathOf(e, b.File, "destination.address")}
		e.Network = &proto.Network{Type: "unix"}
		e.Vigil.AddressSource = proto.AddressSourceKernel
		return e, nil
	case *closeBody:
		if !b.Modified {
			return nil, nil
		}
	}
	return fileLine(m, body, member)
}

// fileLine maps the file events: open, and the changes to the file system.
func fileLine(m *message, body any, member tree.Member) (*proto.Event, error) {
	f := &proto.File{}
	var action string
	var typ []string
	e := newLine(m, "", "file", m.Process, member)
	switch b := body.(type) {
	case *openBody:
		action = proto.ActionOpen
		f.Path = pathOf(e, b.File, "file.path")
		f.Access, f.Flags = openAccess(b.Fflag), openFlags(b.Fflag)
	case *closeBody:
		action, typ = proto.ActionClose, []string{"change"}
		f.Path = pathOf(e, b.Target, "file.path")
	case *targetBody:
		action, typ = proto.ActionWrite, []string{"change"}
		if m.kind == "truncate" {
			action = proto.ActionTruncate // ES does not say the new length: no file.size
		}
		f.Path = pathOf(e, b.Target, "file.path")
	case *createBody:
		action, typ = proto.ActionCreate, []string{"creation"}
		var mode uint32
		var err error
		if f.Path, mode, err = destinationOf(e, b.Destination); err != nil {
			return nil, err
		}
		if mode != 0 {
			f.Mode = fmt.Sprintf("%04o", mode&0o7777)
		}
	case *renameBody:
		action, typ = proto.ActionRename, []string{"change"}
		var err error
		if f.Path, _, err = destinationOf(e, b.Destination); err != nil {
			return nil, err
		}
		e.Vigil.Rename = &proto.Rename{Source: pathOf(e, b.Source, "vigil.rename.source")}
	case *unlinkBody:
		action, typ = proto.ActionUnlink, []string{"deletion"}
		if b.Target.Stat != nil && b.Target.Stat.Mode&sIFMT == sIFDIR {
			action = proto.ActionRmdir // ES reports rmdir as unlink of a directory
		}
		f.Path = pathOf(e, b.Target, "file.path")
	case *linkBody:
		action, typ = proto.ActionLink, []string{"creation"}
		f.Path = joinName(pathOf(e, b.TargetDir, "file.path"), b.TargetFilename)
		f.TargetPath = pathOf(e, b.Source, "file.target_path")
	case *setmodeBody:
		action, typ = proto.ActionChmod, []string{"change"}
		f.Path = pathOf(e, b.Target, "file.path")
		f.Mode = fmt.Sprintf("%04o", b.Mode&0o7777)
		e.Vigil.Setid = b.Mode&0o6000 != 0
	case *setownerBody:
		action, typ = proto.ActionChown, []string{"change"}
		f.Path = pathOf(e, b.Target, "file.path")
		if b.UID != unchangedID {
			f.UID = strconv.FormatUint(uint64(b.UID), 10)
		}
		if b.GID != unchangedID {
			f.GID = strconv.FormatUint(uint64(b.GID), 10)
		}
	default:
		return nil, fmt.Errorf("map eslogger %s event: %w", m.kind, errUnsupported)
	}
	e.Event.Action, e.Event.Type, e.File = action, typ, f
	// ES names every file by its vnode: the object the kernel actually opened or changed.
	e.Vigil.PathSource = proto.PathSourceKernel
	setThread(e, m)
	return e, nil
}

const (
	sIFMT  = 0o170000
	sIFDIR = 0o040000
	// unchangedID is chown's -1: the owner or group is left as it is.
	unchangedID = ^uint32(0)
)

// newLine fills what every line carries about p, a process of the tree member.
func newLine(m *message, action, category string, p *process, member tree.Member) *proto.Event {
	e := &proto.Event{
		Timestamp: m.Time.UTC(),
		Event: proto.EventMeta{Action: action, Category: category, Kind: "event", Dataset: "vigil.kernel",
			// NOTIFY messages report what the kernel did: the operation succeeded.
			Outcome: proto.OutcomeSuccess},
		// The real ids, as the Linux probes report cred->uid and cred->gid.
		User: &proto.User{ID: strconv.FormatUint(uint64(p.AuditToken.RUID), 10),
			Group: &proto.Group{ID: strconv.FormatUint(uint64(p.AuditToken.RGID), 10)}},
		GenAI: &proto.GenAI{Agent: &proto.GenAIAgent{Name: member.Agent}},
		Vigil: proto.Vigil{Schema: proto.SchemaVersion, Root: &proto.Root{Pid: member.Root.Pid}, Source: SourceName},
	}
	proc := &proto.Process{Pid: p.AuditToken.Pid, Parent: &proto.ParentProcess{Pid: p.PPid}, StartBootNs: startNs(p)}
	if startNs(p) != 0 {
		start := p.StartTime.UTC()
		proc.Start = &start
	}
	e.Process = proc
	proc.Executable = pathOf(e, p.Executable, "process.executable")
	if !p.Executable.PathTruncated && proc.Executable != "" {
		proc.Name = filepath.Base(proc.Executable)
	}
	return e
}

// execLine adds what an exec reports: argv, the working directory, the executed file's
// identity and the allowlisted join keys.
func execLine(e *proto.Event, b *execBody) {
	e.Process.Args = b.Args
	e.Process.ArgsCount = len(b.Args)
	if b.Cwd != nil {
		e.Process.WorkingDirectory = pathOf(e, *b.Cwd, "process.working_directory")
	}
	if st := b.Target.Executable.Stat; st != nil {
		e.Vigil.Exe = &proto.Exe{Dev: devOf(st), Ino: st.Ino}
		if writable(st.Ctime) {
			e.Vigil.Exe.Ctime = st.Ctime.UTC().Format(proto.TimeLayout)
		}
	}
	e.Vigil.Join = b.Env.keys
}

// devOf is st_dev as Go's os.Stat reports it on macOS (sensor.FileIDOfInfo, the installed
// agents' identities): the int32 dev_t widened with its sign.
func devOf(st *fileStat) uint64 {
	return uint64(st.Dev)
}

// setThread names the thread that made a file or socket call, as the Linux lines do.
func setThread(e *proto.Event, m *message) {
	if m.Thread != nil {
		e.Process.Thread = &proto.Thread{ID: int(m.Thread.ID)}
	}
}

// pathOf is f's path. A path ES had to cut keeps its head and ends in "…", the way the
// sensor shortens a line's fields, and is named (as field) in vigil.truncated.
func pathOf(e *proto.Event, f file, field string) string {
	if !f.PathTruncated {
		return f.Path
	}
	e.Vigil.Truncated = append(e.Vigil.Truncated, field)
	return f.Path + "…"
}

// destinationOf is the path a create or rename made, and a create's mode when ES gives one.
func destinationOf(e *proto.Event, d destination) (string, uint32, error) {
	switch {
	case d.ExistingFile != nil:
		var mode uint32
		if d.ExistingFile.Stat != nil {
			mode = d.ExistingFile.Stat.Mode
		}
		return pathOf(e, *d.ExistingFile, "file.path"), mode, nil
	case d.NewPath != nil:
		return joinName(pathOf(e, d.NewPath.Dir, "file.path"), d.NewPath.Filename), d.NewPath.Mode, nil
	}
	return "", 0, errors.New("map eslogger destination: neither existing_file nor new_path")
}

// joinName is a directory's path and a name in it.
func joinName(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// startNs is the process's start in ns since the epoch: the unit of process identity on macOS
// (tree.Proc.Start, proto.Process.StartBootNs). 0 (unknown) when the message version has no
// start_time, or it is not a time a Mac's clock gives.
func startNs(p *process) uint64 {
	if !writable(p.StartTime) || p.StartTime.Year() >= 2262 { // UnixNano's range ends in 2262
		return 0
	}
	return uint64(p.StartTime.UnixNano())
}

// procOf is p's identity for the tree filter.
func procOf(p *process) tree.Proc {
	return tree.Proc{Pid: p.AuditToken.Pid, Start: startNs(p)}
}

// exitCode turns a wait status into the shell's convention, as the Linux source does: the
// exit status, or 128+signal.
func exitCode(status int32) int {
	if sig := status & 0x7f; sig != 0 {
		return 128 + int(sig)
	}
	return int(status>>8) & 0xff
}
