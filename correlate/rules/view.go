package rules

import (
	"reflect"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/vigil-sensor/vigil/proto"
)

// The object types rules read. event and its groups are the proto.Event of the line itself:
// file, process, destination and user are the same pointer under another Go type, so reading
// event.file.path allocates nothing but the string's CEL value. tool, prompt and session are
// the detector's state. An absent group reads as empty values ("" and 0), so a rule needs no
// has() before event.file.path; has() still tells absent from empty.

type (
	fileView    proto.Event
	processView proto.Event
	destView    proto.Event
	userView    proto.Event
)

// Empty values for a line without a tool call, session or prompt.
var (
	noCall    = &callState{}
	noSession = &sessionState{}
	noPrompt  = &promptState{}
)

func str(s string) any { return types.String(s) }

func strList(l []string) any { return types.NewStringList(types.DefaultTypeAdapter, l) }

func ev(obj any) *proto.Event {
	switch v := obj.(type) {
	case *proto.Event:
		return v
	case *fileView:
		return (*proto.Event)(v)
	case *processView:
		return (*proto.Event)(v)
	case *destView:
		return (*proto.Event)(v)
	case *userView:
		return (*proto.Event)(v)
	}
	return &proto.Event{}
}

// writeActions are the file mutations that change what is at file.path.
var writeActions = map[string]bool{
	proto.ActionRename: true, proto.ActionUnlink: true, proto.ActionRmdir: true, proto.ActionLink: true,
	proto.ActionSymlink: true, proto.ActionChmod: true, proto.ActionChown: true, proto.ActionTruncate: true,
}

// reads reports whether a line is an open that can read the file's content: access read or
// read_write. An O_PATH open (access path: a stat, a directory walk) reads nothing, and
// neither does a write-only one (echo >> ~/.ssh/authorized_keys).
func reads(e *proto.Event) bool {
	return e.Event.Action == proto.ActionOpen && e.File != nil && (e.File.Access == "read" || e.File.Access == "read_write")
}

// writes reports whether a line changed (or, failed, tried to change) the file at file.path:
// an open for writing or with O_CREAT/O_TRUNC, or a file mutation.
func writes(e *proto.Event) bool {
	if e.File == nil {
		return false
	}
	if e.Event.Action == proto.ActionOpen {
		return e.File.Access == "write" || e.File.Access == "read_write" ||
			strings.Contains(e.File.Flags, "O_CREAT") || strings.Contains(e.File.Flags, "O_TRUNC")
	}
	return writeActions[e.Event.Action]
}

// commandLine is argv joined by spaces, as evidence and rules read a command.
func commandLine(e *proto.Event) string {
	if e.Process == nil {
		return ""
	}
	return strings.Join(e.Process.Args, " ")
}

// callOf and sessionOf turn an activation value back into the state it stands for.
func callOf(obj any) *callState {
	if c, ok := obj.(*callState); ok && c != nil {
		return c
	}
	return noCall
}

func sessionOf(obj any) *sessionState {
	if s, ok := obj.(*sessionState); ok && s != nil {
		return s
	}
	return noSession
}

func promptOf(obj any) *promptState {
	if p, ok := obj.(*promptState); ok && p != nil {
		return p
	}
	return noPrompt
}

// objects are the declared types, field by field, with the doc `vigil rules list --reference`
// prints.
var objects = []*objectType{
	newObject("vigil.Event",
		fd("action", types.StringType, "event.action: exec, fork, exit, open, connect, send, rename, unlink, rmdir, link, symlink, chmod, chown, truncate",
			func(o any) any { return str(ev(o).Event.Action) }),
		fd("outcome", types.StringType, "event.outcome: success, failure, unknown",
			func(o any) any { return str(ev(o).Event.Outcome) }),
		fd("category", types.StringType, "event.category: process, file, network",
			func(o any) any { return str(ev(o).Event.Category) }),
		fd("sequence", types.IntType, "event.sequence of the line",
			func(o any) any { return types.Int(ev(o).Event.Sequence) }),
		fd("agent", types.StringType, "gen_ai.agent.name: claude-code, codex…",
			func(o any) any {
				if g := ev(o).GenAI; g != nil && g.Agent != nil {
					return str(g.Agent.Name)
				}
				return types.String("")
			}),
		fd("binding", types.StringType, "vigil.binding: traceparent, env_call_id, command, file_path, command_path, window, none",
			func(o any) any { return str(ev(o).Vigil.Binding) }),
		fd("confidence", types.StringType, "vigil.confidence: high, medium, low",
			func(o any) any { return str(ev(o).Vigil.Confidence) }),
		fd("errno", types.IntType, "vigil.errno of a failed call",
			func(o any) any { return types.Int(ev(o).Vigil.Errno) }),
		fd("setid", types.BoolType, "vigil.setid: a chmod set the setuid or setgid bit",
			func(o any) any { return types.Bool(ev(o).Vigil.Setid) }),
		fd("by_agent", types.BoolType, "the line's process is its agent tree's root (vigil.root.pid): the agent itself, not a process it started",
			func(o any) any { return types.Bool(byAgent(ev(o))) }),
		fd("reads", types.BoolType, "the line is an open that can read the file's content (access read or read_write; not an O_PATH or write-only open)",
			func(o any) any { return types.Bool(reads(ev(o))) }),
		fd("writes", types.BoolType, "the line changed, or tried to change, the file at file.path: an open for writing (or O_CREAT, O_TRUNC) or a file mutation",
			func(o any) any { return types.Bool(writes(ev(o))) }),
		fdSet("file", types.NewObjectType("vigil.File"), "file.*",
			func(o any) any { return (*fileView)(ev(o)) }, func(o any) bool { return ev(o).File != nil }),
		fdSet("process", types.NewObjectType("vigil.Process"), "process.*",
			func(o any) any { return (*processView)(ev(o)) }, func(o any) bool { return ev(o).Process != nil }),
		fdSet("destination", types.NewObjectType("vigil.Destination"), "destination.*",
			func(o any) any { return (*destView)(ev(o)) }, func(o any) bool { return ev(o).Destination != nil }),
		fdSet("user", types.NewObjectType("vigil.User"), "user.*",
			func(o any) any { return (*userView)(ev(o)) }, func(o any) bool { return ev(o).User != nil }),
	),
	newObject("vigil.File",
		fd("path", types.StringType, "file.path",
			func(o any) any { return str(fileOf(o).Path) }),
		fd("access", types.StringType, "file.access: read, write, read_write",
			func(o any) any { return str(fileOf(o).Access) }),
		fd("flags", types.StringType, "file.flags, e.g. O_WRONLY|O_CREAT|O_TRUNC",
			func(o any) any { return str(fileOf(o).Flags) }),
		fd("target_path", types.StringType, "file.target_path of a link or symlink",
			func(o any) any { return str(fileOf(o).TargetPath) }),
		fd("mode", types.StringType, "file.mode of a chmod, octal",
			func(o any) any { return str(fileOf(o).Mode) }),
		fd("rename_source", types.StringType, "vigil.rename.source: the path a rename moved away",
			func(o any) any {
				if r := ev(o).Vigil.Rename; r != nil {
					return str(r.Source)
				}
				return types.String("")
			}),
	),
	newObject("vigil.Process",
		fd("pid", types.IntType, "process.pid",
			func(o any) any { return types.Int(procOf(o).Pid) }),
		fd("name", types.StringType, "process.name (comm)",
			func(o any) any { return str(procOf(o).Name) }),
		fd("executable", types.StringType, "process.executable",
			func(o any) any { return str(procOf(o).Executable) }),
		fd("program", types.StringType, "the program by name: the executable's base name, or the script's for an interpreter (python3 /usr/bin/aws: aws)",
			func(o any) any { p := procOf(o); return str(Program(p.Executable, p.Args)) }),
		fd("args", types.NewListType(types.StringType), "process.args (redacted)",
			func(o any) any { return strList(procOf(o).Args) }),
		fd("command_line", types.StringType, "process.args joined by spaces",
			func(o any) any { return str(commandLine(ev(o))) }),
		fd("working_directory", types.StringType, "process.working_directory",
			func(o any) any { return str(procOf(o).WorkingDirectory) }),
		fd("parent_name", types.StringType, "process.parent.name",
			func(o any) any {
				if p := procOf(o).Parent; p != nil {
					return str(p.Name)
				}
				return types.String("")
			}),
		fd("parent_executable", types.StringType, "process.parent.executable",
			func(o any) any {
				if p := procOf(o).Parent; p != nil {
					return str(p.Executable)
				}
				return types.String("")
			}),
	),
	newObject("vigil.Destination",
		fd("ip", types.StringType, "destination.ip",
			func(o any) any { return str(destOf(o).IP) }),
		fd("port", types.IntType, "destination.port",
			func(o any) any { return types.Int(destOf(o).Port) }),
		fd("address", types.StringType, "destination.address: a unix socket path",
			func(o any) any { return str(destOf(o).Address) }),
		fd("endpoint", types.StringType, `"ip:port" ("[ip6]:port"), or the unix socket path`,
			func(o any) any { d := destOf(o); return str(Endpoint(d.IP, d.Port, d.Address)) }),
	),
	newObject("vigil.User",
		fd("id", types.StringType, "user.id (numeric, as a string)",
			func(o any) any { return str(userOf(o).ID) }),
		fd("name", types.StringType, "user.name",
			func(o any) any { return str(userOf(o).Name) }),
	),
	newObject("vigil.Tool", append([]*namedField{
		fd("id", types.StringType, `gen_ai.tool.call.id ("" when the line is bound to no tool call)`,
			func(o any) any { return str(callOf(o).id) }),
		fd("name", types.StringType, "gen_ai.tool.name: Bash, Read, Write, Edit, shell, apply_patch…",
			func(o any) any { return str(callOf(o).name) }),
		fd("command", types.StringType, "vigil.tool.command: the command as the agent reported it (redacted)",
			func(o any) any { return str(callOf(o).command) }),
		fd("file_paths", types.NewListType(types.StringType), "vigil.tool.file_paths: the files a file tool names",
			func(o any) any { return strList(callOf(o).filePaths) }),
		fd("decision", types.StringType, "vigil.tool.decision: accept, reject, approved, denied…",
			func(o any) any { return str(callOf(o).decision) }),
		fd("decision_source", types.StringType, "vigil.tool.decision_source: config, user_temporary, user_permanent, hook, Config, User…",
			func(o any) any { return str(callOf(o).decisionSource) }),
		fd("approved", types.BoolType, "a person approved the call: decision accept/approved and a decision source other than none or configuration",
			func(o any) any { return types.Bool(callOf(o).approved()) }),
		fd("reported", types.BoolType, "the call's agent.tool_call line was seen, so its decision is final",
			func(o any) any { return types.Bool(callOf(o).reported) }),
		fd("outcome", types.StringType, "event.outcome of the agent.tool_call line",
			func(o any) any { return str(callOf(o).outcome) }),
	}, aggFieldsOf(callAggs, func(o any) *[nAgg]aggList { return &callOf(o).agg })...)...),
	newObject("vigil.Prompt",
		fd("id", types.StringType, "vigil.prompt.id",
			func(o any) any { return str(promptOf(o).id) }),
		fd("text", types.StringType, "vigil.prompt.text (redacted; empty when the agent does not export it)",
			func(o any) any { return str(promptOf(o).text) }),
	),
	newObject("vigil.Session", append([]*namedField{
		fd("id", types.StringType, "gen_ai.conversation.id",
			func(o any) any { return str(sessionOf(o).id) }),
		fd("agent", types.StringType, "gen_ai.agent.name",
			func(o any) any { return str(sessionOf(o).agent) }),
		fd("cwd", types.StringType, `the agent's working directory, taken as the session's repository ("" until known)`,
			func(o any) any { return str(sessionOf(o).cwd) }),
		fd("root_pid", types.IntType, "vigil.root.pid of the session's agent tree",
			func(o any) any { return types.Int(sessionOf(o).root.pid) }),
	}, aggFieldsOf(sessionAggs, func(o any) *[nAgg]aggList { return &sessionOf(o).agg })...)...),
}

// aggDocs describe the aggregates.
var aggDocs = [nAgg]string{
	"files opened successfully, not write-only, that secret_path() calls secrets, by a program that is not their own client (own_client), in first-seen order (at most 256 distinct)",
	`endpoints ("ip:port") connected to or sent to, loopback excepted, not failed`,
	"paths written, created, renamed onto, removed, linked or chmod/chown/truncated, successfully",
	"process.executable of successful execs",
	"command lines (args joined by spaces) of successful execs",
	"secrets_read by the call's subtree that its declared input (command words, file paths) does not name, start-up reads of shells and the loader excepted; filled once the call is reported",
	"egress by the call's subtree to an address its command does not contain, by a program its command does not start by name; filled once the call is reported",
	"secrets_read by lines of the session that no tool call explains (vigil.binding none)",
	"egress by lines of the session that no tool call explains (vigil.binding none)",
}

// aggFieldsOf declares the aggregates in mask as list fields.
func aggFieldsOf(mask uint32, agg func(any) *[nAgg]aggList) []*namedField {
	var fs []*namedField
	for i := range nAgg {
		if mask&(1<<i) == 0 {
			continue
		}
		fs = append(fs, fd(aggFields[i], types.NewListType(types.StringType), aggDocs[i],
			func(o any) any { return strList(agg(o)[i].values) }))
	}
	return fs
}

var emptyFile, emptyProc, emptyDest, emptyUser = &proto.File{}, &proto.Process{}, &proto.Destination{}, &proto.User{}

func fileOf(o any) *proto.File {
	if f := ev(o).File; f != nil {
		return f
	}
	return emptyFile
}

func procOf(o any) *proto.Process {
	if p := ev(o).Process; p != nil {
		return p
	}
	return emptyProc
}

func destOf(o any) *proto.Destination {
	if d := ev(o).Destination; d != nil {
		return d
	}
	return emptyDest
}

func userOf(o any) *proto.User {
	if u := ev(o).User; u != nil {
		return u
	}
	return emptyUser
}

// namedField is a field with its name, for declaration.
type namedField struct {
	name string
	field
}

func fd(name string, t *types.Type, doc string, get func(any) any) *namedField {
	return &namedField{name: name, field: field{t: t, get: get, doc: doc}}
}

func fdSet(name string, t *types.Type, doc string, get func(any) any, set func(any) bool) *namedField {
	f := fd(name, t, doc, get)
	f.set = set
	return f
}

func newObject(name string, fields ...*namedField) *objectType {
	o := &objectType{name: name, fields: map[string]*field{}}
	for _, f := range fields {
		o.fields[f.name] = &f.field
		o.names = append(o.names, f.name)
	}
	return o
}

// celProvider is shared by every environment: the declarations never change.
var celProvider = func() *provider {
	reg, err := types.NewRegistry()
	if err != nil {
		panic(err) // the empty registry cannot fail; a failure is a cel-go defect
	}
	p := &provider{Registry: reg, objects: map[string]*objectType{}}
	for _, o := range objects {
		p.objects[o.name] = o
	}
	return p
}()

// ensure the provider is also the adapter of native values the getters return.
var _ ref.TypeAdapter = celProvider

// stringSliceType converts an evidence filter's result to Go.
var stringSliceType = reflect.TypeOf([]string(nil))
