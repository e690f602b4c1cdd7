package store

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// workload generates synthetic lines shaped like the real ones: the fixture's records
// (testdata/agents.jsonl, correlate/workflow/testdata/sessions.jsonl) and the mix of
// bench/e2e's 35 scenarios against the real Claude Code and Codex CLIs (87k lines: 89% open,
// 2-3% each exec, fork and exit, ~2% file mutations, the rest connects and agent records).
// Every kernel line carries its process's full description (args, hash, parent, root), as
// the pipeline writes it, and file paths repeat as they do there: shared libraries and
// configuration read by every process, a project's files read again and again, and a stream
// of paths read once (a dependency tree walked). 10% of the paths in those scenarios were
// distinct; this generator makes 13%.
type workload struct {
	rng     *rand.Rand
	t       time.Time
	seq     uint64
	host    *proto.Host
	user    *proto.User
	session string
	prompt  string
	call    string
	callN   int
	root    *proto.Process
	shell   *proto.Process
	proc    *proto.Process
	nextPid int
	project []string
	fresh   int
	queue   []*proto.Event
}

// hotPaths are opened by nearly every process (the dynamic loader's, locale, terminal).
var hotPaths = []string{
	"/etc/ld.so.cache", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/locale/locale-archive",
	"/etc/locale.alias", "/dev/null", "/usr/lib/x86_64-linux-gnu/libtinfo.so.6", "/etc/nsswitch.conf",
	"/usr/lib/x86_64-linux-gnu/libselinux.so.1", "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
	"/etc/passwd", "/proc/self/maps", "/usr/share/zoneinfo/UTC", "/etc/ssl/certs/ca-certificates.crt",
	"/usr/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "/dev/urandom",
}

// tools are the commands a tool shell runs.
var tools = []struct{ exe, name string }{
	{"/usr/bin/git", "git"}, {"/usr/bin/cat", "cat"}, {"/usr/local/go/bin/go", "go"}, {"/usr/bin/grep", "grep"},
	{"/usr/bin/node", "node"}, {"/usr/bin/sed", "sed"}, {"/usr/bin/ls", "ls"}, {"/usr/bin/python3", "python3"},
}

func newWorkload(seed uint64) *workload {
	w := &workload{
		rng:     rand.New(rand.NewPCG(seed, 1)),
		t:       time.Date(2026, 12, 4, 19, 54, 49, 0, time.UTC),
		host:    &proto.Host{Name: "vm", BootID: "f4836d50-3eee-468e-bc77-24e54f1555a5"},
		user:    &proto.User{ID: "1000", Name: "dev", Group: &proto.Group{ID: "1000"}},
		nextPid: 7450,
	}
	for i := range 2000 {
		w.project = append(w.project, fmt.Sprintf("/home/dev/src/payments/internal/pkg%02d/file%03d.go", i%40, i))
	}
	w.newSession()
	return w
}

// id is a random hex id of n bytes.
func (w *workload) id(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(w.rng.Uint32())
	}
	return fmt.Sprintf("%x", b)
}

func (w *workload) uuid() string {
	s := w.id(16)
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func (w *workload) newProcess(exe, name string, args []string, parent *proto.Process) *proto.Process {
	w.nextPid++
	start := w.t
	p := &proto.Process{
		Pid: w.nextPid, EntityID: w.id(16), Name: name, Executable: exe, Args: args, ArgsCount: len(args),
		WorkingDirectory: "/home/dev/src/payments", Start: &start, Hash: &proto.Hash{SHA256: w.id(32)},
	}
	if parent != nil {
		p.Parent = &proto.ParentProcess{Pid: parent.Pid, EntityID: parent.EntityID, Executable: parent.Executable, Name: parent.Name}
	}
	return p
}

// newSession starts an agent root with a session and a prompt.
func (w *workload) newSession() {
	w.session, w.prompt = w.uuid(), w.uuid()
	w.root = w.newProcess("/var/cache/vigil-e2e/npm/node_modules/@anthropic-ai/claude-code/bin/claude.exe", "claude",
		[]string{"/var/cache/vigil-e2e/npm/node_modules/.bin/claude", "-p", "--dangerously-skip-permissions",
			"--output-format", "stream-json", "--verbose", "Count the lines of notes.txt and fix the failing refund test."}, nil)
	w.proc = w.root
	w.agentLine(proto.ActionSession)
	w.agentLine(proto.ActionAgentPrompt)
}

func (w *workload) next() *proto.Event {
	if len(w.queue) == 0 {
		w.step()
	}
	e := w.queue[0]
	w.queue = w.queue[1:]
	w.seq++
	e.Event.Sequence = w.seq
	return e
}

// step adds the lines of one thing an agent does: mostly opens by the current process, now
// and then a new tool call, a child process, a connect, a file change.
func (w *workload) step() {
	w.t = w.t.Add(time.Duration(50+w.rng.IntN(400)) * time.Microsecond)
	switch r := w.rng.IntN(1000); {
	case r < 8:
		w.toolCall()
	case r < 36:
		w.child()
	case r < 40:
		w.kernel(proto.ActionConnect, func(e *proto.Event) {
			e.Event.Category = "network"
			e.Destination = &proto.Destination{IP: fmt.Sprintf("10.%d.%d.%d", w.rng.IntN(4), w.rng.IntN(256), w.rng.IntN(256)), Port: 443}
			e.Network = &proto.Network{Type: "ipv4"}
			e.Vigil.AddressSource, e.Vigil.Syscall = proto.AddressSourceKernel, "connect"
		})
	case r < 58:
		w.kernel(proto.ActionRename, func(e *proto.Event) {
			e.Event.Category, e.Event.Type = "file", []string{"change"}
			path := w.project[w.rng.IntN(len(w.project))]
			e.File = &proto.File{Path: path}
			e.Vigil.Rename = &proto.Rename{Source: path + ".tmp." + w.id(6)}
			e.Vigil.PathSource = proto.PathSourceCaller
		})
	default:
		w.open()
	}
	if w.rng.IntN(20000) == 0 {
		w.newSession()
	}
}

func (w *workload) open() {
	var path string
	switch r := w.rng.IntN(100); {
	case w.rng.IntN(50000) == 0:
		path = "/home/dev/.ssh/id_rsa" // what the README's first query looks for
	case r < 40:
		path = hotPaths[w.rng.IntN(len(hotPaths))]
	case r < 87:
		// Zipf-like: a few files of the project are read most.
		i := int(float64(len(w.project)) * w.rng.Float64() * w.rng.Float64() * w.rng.Float64())
		path = w.project[i]
	default:
		w.fresh++
		path = fmt.Sprintf("/home/dev/src/payments/node_modules/dep%04d/lib/module%02d.js", w.fresh/20, w.fresh%20)
	}
	// Two thirds of the opens in those scenarios were the agent's own (its configuration, its
	// session files, the project), bound to no tool call.
	proc := w.proc
	if w.rng.IntN(3) < 2 {
		w.proc = w.root
	}
	defer func() { w.proc = proc }()
	w.kernel(proto.ActionOpen, func(e *proto.Event) {
		e.Event.Category = "file"
		e.File = &proto.File{Path: path, Access: "read", Flags: "O_RDONLY|O_CLOEXEC"}
		e.Vigil.PathSource = proto.PathSourceKernel
		e.Process.Thread = &proto.Thread{ID: e.Process.Pid}
	})
}

// toolCall ends the current call (its agent.tool_call line) and starts a new one with a
// tool shell.
func (w *workload) toolCall() {
	if w.call != "" {
		ok := true
		w.proc = w.root
		e := proto.ToolCallRecord{Time: w.t, Agent: "claude-code", SessionID: w.session, PromptID: w.prompt, CallID: w.call,
			ToolName: "Bash", Decision: "accept", DecisionSource: "config", Success: &ok, DurationMs: 95,
			Command: "go test ./... -run TestRefund -count=1 2>&1 | tail -80",
			Sender:  proto.Sender{Pid: w.root.Pid, Name: "claude", Executable: w.root.Executable, Cwd: w.root.WorkingDirectory, RootPid: w.root.Pid, Transport: "otlp_http"}}.Event()
		w.queue = append(w.queue, e)
	}
	w.callN++
	w.call = fmt.Sprintf("toolu_01%s", w.id(12))
	w.shell = w.newProcess("/usr/bin/bash", "bash", []string{"/bin/bash", "-c", "-l",
		"source /home/dev/.claude/shell-snapshots/snapshot-bash-1764001234567-x3k9qa.sh && eval 'go test ./... -run TestRefund -count=1 2>&1 | tail -80' < /dev/null && pwd -P >| /tmp/claude-4f2a-cwd"}, w.root)
	w.proc = w.shell
	w.kernel(proto.ActionExec, func(e *proto.Event) {
		e.Event.Category = "process"
		e.Vigil.Join = &proto.JoinKeys{TraceParent: "00-" + w.id(16) + "-" + w.id(8) + "-01", AgentName: "claude-code_2-1-197_harness"}
		e.Vigil.Exe = &proto.Exe{Dev: 65024, Ino: 247228, Ctime: "2025-10-07T12:22:08.000000000Z"}
	})
}

// child forks and execs a command under the tool shell (or the agent), and later exits it.
func (w *workload) child() {
	parent := w.shell
	if parent == nil {
		parent = w.root
	}
	t := tools[w.rng.IntN(len(tools))]
	w.proc = w.newProcess(parent.Executable, parent.Name, nil, parent)
	w.kernel(proto.ActionFork, func(e *proto.Event) { e.Event.Category = "process" })
	child := w.newProcess(t.exe, t.name, []string{t.name, "status", "--porcelain", fmt.Sprintf("internal/pkg%02d", w.rng.IntN(40))}, parent)
	child.Pid, child.EntityID = w.proc.Pid, w.proc.EntityID
	w.proc = child
	w.kernel(proto.ActionExec, func(e *proto.Event) {
		e.Event.Category = "process"
		e.Vigil.Exe = &proto.Exe{Dev: 65024, Ino: uint64(1000 + w.rng.IntN(100)), Ctime: "2025-10-07T12:22:08.000000000Z"}
	})
	code := 0
	exit := w.event(proto.ActionExit)
	exit.Event.Category = "process"
	exit.Process.ExitCode = &code
	w.queue = append(w.queue, exit) // written with the next step's lines
}

// kernel queues a kernel line of the current process, bound to the current call.
func (w *workload) kernel(action string, fill func(*proto.Event)) {
	e := w.event(action)
	fill(e)
	w.queue = append(w.queue, e)
}

func (w *workload) event(action string) *proto.Event {
	p := *w.proc
	e := &proto.Event{
		Timestamp: w.t, Host: w.host, User: w.user, Process: &p,
		Event: proto.EventMeta{Action: action, Outcome: proto.OutcomeSuccess, Kind: "event", Dataset: "vigil.kernel"},
		GenAI: &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"}, Conversation: &proto.GenAIConversation{ID: w.session}},
		Vigil: proto.Vigil{Schema: proto.SchemaVersion, Root: &proto.Root{Pid: w.root.Pid, EntityID: w.root.EntityID}, Source: "ebpf",
			Prompt: &proto.PromptRef{ID: w.prompt}},
	}
	if w.call != "" && w.proc != w.root {
		e.GenAI.Tool = &proto.GenAITool{Name: "Bash", Call: &proto.GenAIToolCall{ID: w.call}}
		e.Vigil.Binding, e.Vigil.Confidence = proto.BindingTraceParent, "high"
	} else {
		// The agent's own lines: no tool call, and mostly no prompt yet (32% of the kernel
		// lines there named a prompt, 29% a tool call, 98% a session).
		e.Vigil.Binding = proto.BindingNone
		if w.rng.IntN(20) != 0 {
			e.Vigil.Prompt = nil
		}
	}
	return e
}

// agentLine queues a session or prompt record of the current session.
func (w *workload) agentLine(action string) {
	s := proto.Sender{Pid: w.root.Pid, Name: "claude", Executable: w.root.Executable, Cwd: w.root.WorkingDirectory, RootPid: w.root.Pid, Transport: "otlp_http"}
	var e *proto.Event
	if action == proto.ActionSession {
		e = proto.SessionRecord{Time: w.t, Agent: "claude-code", SessionID: w.session, Sender: s, RootEntityID: w.root.EntityID}.Event()
	} else {
		e = proto.PromptRecord{Time: w.t, Agent: "claude-code", SessionID: w.session, PromptID: w.prompt,
			Text: "The refund tests fail since the last merge, find out why and fix it.", Sender: s}.Event()
	}
	e.Host = w.host
	w.queue = append(w.queue, e)
}
