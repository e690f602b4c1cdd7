package ocsf

import (
	"path"
	"strings"

	"github.com/vigil-sensor/vigil/proto"
)

// Process Activity (1007) activities and launch types.
const (
	activityLaunch    = 1
	activityTerminate = 2
	launchTypeFork    = 2 // the "fork" step of Unix process creation
	launchTypeExec    = 3 // the "exec" step
)

// process is the OCSF process object.
type process struct {
	PID  int
	UID  string
	Name string
	// Path is the executable, File the same file with its hash.
	Path string
	// CmdLine is the argv, each argument shell-quoted when it needs it, so it splits back
	// into exactly the arguments.
	CmdLine          string
	CreatedTime      *int64
	WorkingDirectory string
	PTID             int
	File             *file
	ParentProcess    *process
}

// isProcess: exec, fork and exit lines of a process.
func isProcess(e *proto.Event) bool {
	switch e.Event.Action {
	case proto.ActionExec, proto.ActionFork, proto.ActionExit:
		return e.Process != nil
	}
	return false
}

// processActivity maps exec and fork to Launch (launch_type_id Exec or Fork: Unix creates a
// process in two steps, each its own line) and exit to Terminate. The actor of a fork is the
// parent; of an exec and an exit the process itself (an exec replaces the caller's own image;
// an exit is reflexive), as the schema's activity descriptions have it.
func (m *mapping) processActivity() {
	e, o := m.e, &m.out
	o.Process = m.processOf()
	// The actor's process is the short form: the full one is process (or its parent).
	self := &m.parts.self
	*self = process{PID: o.Process.PID, UID: o.Process.UID}
	activity := activityLaunch
	switch e.Event.Action {
	case proto.ActionFork:
		m.parts.launchTypeID = launchTypeFork
		o.LaunchTypeID = &m.parts.launchTypeID
		o.Actor = m.actorOf(o.Process.ParentProcess)
	case proto.ActionExec:
		m.parts.launchTypeID = launchTypeExec
		o.LaunchTypeID = &m.parts.launchTypeID
		o.Actor = m.actorOf(self)
	case proto.ActionExit:
		activity = activityTerminate
		o.Actor = m.actorOf(self)
		if e.Process.ExitCode != nil {
			o.ExitCode = e.Process.ExitCode
			m.use(exitCodePath)
		}
	}
	o.MessageContext = m.messageContext()
	m.use(categoryPath)
	m.classify(classProcessActivity, activity, activityNames1007[activity])
}

var activityNames1007 = map[int]string{activityLaunch: "Launch", activityTerminate: "Terminate"}

var (
	exitCodePath  = pathsOf("process.exit_code")
	processPaths  = pathsOf("process.pid", "process.entity_id", "process.name", "process.executable", "process.working_directory")
	argsPath      = pathsOf("process.args")
	argsCountPath = pathsOf("process.args_count")
	startPath     = pathsOf("process.start")
	threadPath    = pathsOf("process.thread.id")
	hashPath      = pathsOf("process.hash.sha256")
	parentPaths   = pathsOf("process.parent.pid", "process.parent.entity_id", "process.parent.name", "process.parent.executable")
)

// processOf is process.*: the process, its executable with its hash, and its parent; nil
// without one.
func (m *mapping) processOf() *process {
	p := m.e.Process
	if p == nil {
		return nil
	}
	out := &m.parts.process
	*out = process{
		PID: p.Pid, UID: p.EntityID, Name: p.Name, Path: p.Executable,
		WorkingDirectory: p.WorkingDirectory,
	}
	m.use(processPaths)
	if len(p.Args) > 0 {
		out.CmdLine = cmdLine(p.Args)
		m.use(argsPath)
		if p.ArgsCount == len(p.Args) {
			// Only a count that differs from the args (trailing ones dropped to fit) says
			// more than cmd_line: that one stays in unmapped.
			m.use(argsCountPath)
		}
	}
	if p.Start != nil {
		m.parts.createdTime = p.Start.UnixMilli()
		out.CreatedTime = &m.parts.createdTime
		m.use(startPath)
	}
	if p.Thread != nil {
		out.PTID = p.Thread.ID
		m.use(threadPath)
	}
	if p.Executable != "" {
		m.parts.exe = file{Name: path.Base(p.Executable), Path: p.Executable, TypeID: fileTypeExecutable, Type: "Executable File"}
		out.File = &m.parts.exe
		if p.Hash != nil && p.Hash.SHA256 != "" {
			m.parts.hash[0] = fingerprint{AlgorithmID: 3, Algorithm: "SHA-256", Value: p.Hash.SHA256}
			out.File.Hashes = m.parts.hash[:]
			m.use(hashPath)
		}
	}
	if pp := p.Parent; pp != nil {
		m.parts.parent = process{PID: pp.Pid, UID: pp.EntityID, Name: pp.Name, Path: pp.Executable}
		out.ParentProcess = &m.parts.parent
		m.use(parentPaths)
	}
	return out
}

// cmdLine joins args with spaces, single-quoting (POSIX shell) each argument that holds
// anything but plain characters, so the line splits back into exactly args. It sizes the line
// once and tests characters against a table: strings.Trim and ReplaceAll, which built their
// character set and a string per argument, were a fifth of an exec line's time.
func cmdLine(args []string) string {
	n := 0
	for _, a := range args {
		n += len(a) + 3 // a space, and quotes if needed
	}
	var b strings.Builder
	b.Grow(n)
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if isPlain(a) {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		for {
			j := strings.IndexByte(a, '\'')
			if j < 0 {
				break
			}
			b.WriteString(a[:j])
			b.WriteString(`'\''`)
			a = a[j+1:]
		}
		b.WriteString(a)
		b.WriteByte('\'')
	}
	return b.String()
}

// isPlain: a is a word the shell reads as it is, not empty and of plainChars only.
func isPlain(a string) bool {
	for i := range len(a) {
		if !plainSet[a[i]] {
			return false
		}
	}
	return a != ""
}

// plainChars need no quoting in a POSIX shell word.
const plainChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-"

// plainSet has plainChars by byte.
var plainSet = func() (set [256]bool) {
	for i := range len(plainChars) {
		set[plainChars[i]] = true
	}
	return set
}()
