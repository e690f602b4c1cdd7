// Package proto defines Vigil's event schema: the Go types every source fills and every sink
// writes, with their JSON (ECS-style names, OpenTelemetry GenAI names for agent context) and
// msgpack encodings. It imports no other project package but internal/jsonstr, the JSON
// string escaping its hand-written encoder shares with the other ones.
package proto

import (
	"maps"
	"slices"
	"time"
)

// SchemaVersion is written into every record as vigil.schema. Bump it when a field changes
// meaning or is removed; adding a field does not need a bump.
const SchemaVersion = "2"

// Actions a kernel event can carry in event.action.
const (
	ActionExec    = "exec"
	ActionFork    = "fork"
	ActionExit    = "exit"
	ActionOpen    = "open"
	ActionConnect = "connect"
	// ActionSend is a datagram sent to a named destination (sendto, sendmsg, sendmmsg, an
	// io_uring send) on an inet, inet6 or unix socket. A send on a connected socket is not a
	// line of its own: the socket's connect named the peer.
	ActionSend = "send"
	// File mutations (event.category file), each at the syscall's exit with its outcome.
	ActionRename   = "rename"   // rename, renameat, renameat2: file.path the destination, vigil.rename.source the source
	ActionUnlink   = "unlink"   // unlink, unlinkat
	ActionRmdir    = "rmdir"    // rmdir, unlinkat with AT_REMOVEDIR
	ActionLink     = "link"     // link, linkat: file.path the new name, file.target_path the existing file
	ActionSymlink  = "symlink"  // symlink, symlinkat: file.path the link, file.target_path its target as given
	ActionChmod    = "chmod"    // chmod, fchmod, fchmodat, fchmodat2: file.mode, vigil.setid
	ActionChown    = "chown"    // chown, fchown, lchown, fchownat: file.uid, file.gid
	ActionTruncate = "truncate" // truncate, ftruncate: file.size
	// File events only EndpointSecurity reports (macOS), with no Linux counterpart: a file
	// system object created (open with O_CREAT of a new file, mkdir, mkfifo, symlink), a
	// write(2) to a file, and the close of a descriptor through which the file was modified.
	ActionCreate = "create"
	ActionWrite  = "write"
	ActionClose  = "close"
	// ActionLost reports events the sensor could not deliver, with counts per kind.
	ActionLost = "lost"

	// Agent events: what the agents said about themselves (OTLP, hooks), one line each.
	ActionAgentPrompt     = "agent.prompt"
	ActionAgentToolCall   = "agent.tool_call"
	ActionAgentAPIRequest = "agent.api_request"
	// ActionAgentUntrusted is telemetry from a process outside every agent tree: kept and
	// flagged, never bound to a session, whatever it claims.
	ActionAgentUntrusted = "agent.untrusted_telemetry"

	// Correlator records (event.dataset vigil.correlate): what the stitcher itself concluded.
	// ActionBinding binds a kernel line written earlier (vigil.binds.sequence) to a tool call:
	// late telemetry explained it after its hold ran out.
	ActionBinding = "binding"
	// ActionSession is the first sight of an agent session (or of its move to a new agent
	// tree, when a session is resumed): agent, session id, the tree's root, the agent's cwd.
	ActionSession = "session"

	// ActionAlert is a detection rule's match (event.kind alert, dataset vigil.detection): the
	// rule (rule.*), what it matched in (session, prompt, tool call) and the lines that made
	// it match (vigil.alert.*).
	ActionAlert = "alert"
)

// Datasets of the correlator's lines: DatasetAgent for what the agents said about themselves
// (agent.*), DatasetCorrelate for what the correlator concluded (binding, session).
const (
	DatasetAgent = "vigil.agent"
	// DatasetKernel is the kernel events (exec, open, connect…), from every source.
	DatasetKernel    = "vigil.kernel"
	DatasetCorrelate = "vigil.correlate"
	// DatasetDetection is the detection rules' alerts (action alert).
	DatasetDetection = "vigil.detection"
	// DatasetIntegrity is the seal lines of a signed JSONL file (output.sign, action
	// ActionSeal, kind KindState): they describe the file, not an event, so readers of events
	// (vigil trace, vigil query --jsonl) skip them.
	DatasetIntegrity = "vigil.integrity"
)

// ActionSeal is a seal line of a signed JSONL file (dataset DatasetIntegrity): the signature
// over the hash chain up to it (docs/integrity.md).
const ActionSeal = "seal"

// KindAlert is event.kind of lines that call for a look: detection alerts and untrusted
// telemetry. Detection rules never see them (an alert does not raise alerts).
const KindAlert = "alert"

// Bindings: which key attached a kernel event to its tool call (vigil.binding).
const (
	BindingTraceParent = "traceparent"  // the process's TRACEPARENT names the tool's execution span
	BindingEnvCallID   = "env_call_id"  // the process's tool call id variable (CODEX_TOOL_CALL_ID) is the call id
	BindingToolPID     = "tool_pid"     // the agent named the process as the one it started for the call
	BindingCommand     = "command"      // a shell whose argv holds the tool's command, in its window
	BindingFilePath    = "file_path"    // the agent's own open of the tool's file, in its window
	BindingCommandPath = "command_path" // the agent's own open of a path the tool's command names, in its window
	BindingWindow      = "window"       // the only tool call of the session running at the time
	BindingNone        = "none"         // no tool call explains it
)

// Where file.path came from (vigil.path_source).
const (
	// PathSourceKernel: walked by the kernel from the file the open returned, the canonical
	// path of the object actually opened (symlinks, "..", "//" and /proc/self/root resolved).
	PathSourceKernel = "kernel"
	// PathSourceCaller: the string the caller passed (a failed open has no file to ask), made
	// absolute against the working directory or dirfd the kernel walked when it was relative.
	PathSourceCaller = "caller"
)

// Where destination.* of a network line came from (vigil.address_source).
const (
	// AddressSourceKernel: the kernel's own copy of the address, taken as it began the call;
	// the caller can no longer change it.
	AddressSourceKernel = "kernel"
	// AddressSourceCaller: the caller's buffer, read again at the syscall's exit (no cgroup
	// hook saw the call, e.g. an address the kernel refused before it): another thread may
	// have rewritten it meanwhile.
	AddressSourceCaller = "caller"
)

// SyscallIOUring names, in vigil.syscall, a request made through io_uring (in io_uring_enter or
// by an io worker) rather than by the system call of its kind.
const SyscallIOUring = "io_uring"

// Why an exec line has no process.hash.sha256 (vigil.exe.hash).
const (
	// HashPending: the executed file was still being hashed when the line was written; the
	// hash appears on the process's later lines (open, connect, exit) once known.
	HashPending = "pending"
	// HashMismatch: by the time it was hashed, the file at the executable's path no longer
	// had the exec's device, inode and change time (replaced or modified after the exec) and
	// the process was gone, so what ran could not be read: nothing was hashed.
	HashMismatch = "mismatch"
	// HashUnavailable: the file could not be hashed (too large, not a regular file, a memfd or
	// deleted file whose process had exited, the hashing queue full).
	HashUnavailable = "unavailable"
)

// Outcomes for event.outcome (ECS values).
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeUnknown = "unknown"
)

// Event is one output record. Nested structs become nested JSON objects, which Wazuh's JSON
// decoder and ECS-based SIEMs read as dotted names (process.parent.pid). No field is an
// array of objects, because Wazuh cannot decode those.
type Event struct {
	Timestamp   time.Time    `json:"@timestamp" msgpack:"@timestamp"`
	Event       EventMeta    `json:"event" msgpack:"event"`
	Host        *Host        `json:"host,omitempty" msgpack:"host,omitempty"`
	User        *User        `json:"user,omitempty" msgpack:"user,omitempty"`
	Process     *Process     `json:"process,omitempty" msgpack:"process,omitempty"`
	File        *File        `json:"file,omitempty" msgpack:"file,omitempty"`
	Destination *Destination `json:"destination,omitempty" msgpack:"destination,omitempty"`
	Network     *Network     `json:"network,omitempty" msgpack:"network,omitempty"`
	GenAI       *GenAI       `json:"gen_ai,omitempty" msgpack:"gen_ai,omitempty"`
	// Rule, Tags and Threat are on alert lines only: the rule that matched, its tags, and the
	// MITRE ATT&CK techniques among them.
	Rule   *Rule    `json:"rule,omitempty" msgpack:"rule,omitempty"`
	Tags   []string `json:"tags,omitempty" msgpack:"tags,omitempty"`
	Threat *Threat  `json:"threat,omitempty" msgpack:"threat,omitempty"`
	Vigil  Vigil    `json:"vigil" msgpack:"vigil"`
}

// Rule is the ECS rule.* group of an alert: the detection rule that matched.
type Rule struct {
	ID          string `json:"id" msgpack:"id"`
	Name        string `json:"name,omitempty" msgpack:"name,omitempty"`
	Description string `json:"description,omitempty" msgpack:"description,omitempty"`
	// Ruleset is where the rule came from: "pack" for the embedded starter pack, else the
	// rule file's path.
	Ruleset string `json:"ruleset,omitempty" msgpack:"ruleset,omitempty"`
}

// Threat is the ECS threat.* group of an alert.
type Threat struct {
	// Framework is "MITRE ATT&CK".
	Framework string           `json:"framework" msgpack:"framework"`
	Technique *ThreatTechnique `json:"technique,omitempty" msgpack:"technique,omitempty"`
}

// ThreatTechnique is threat.technique.*.
type ThreatTechnique struct {
	// ID are ATT&CK technique ids (T1552.001).
	ID []string `json:"id" msgpack:"id"`
}

// Correlation is what the correlator learned about an event: which prompt and tool call
// it belongs to, and by which key (vigil.* on kernel lines).
type Correlation struct {
	// Binding is one of the Binding* constants.
	Binding string `json:"binding,omitempty" msgpack:"binding,omitempty"`
	// Confidence is high (a key the agent put in the process: traceparent, env_call_id),
	// medium (command text or file path inside the call's window) or low (time window only).
	Confidence string `json:"confidence,omitempty" msgpack:"confidence,omitempty"`
}

// EventMeta is the ECS event.* group.
type EventMeta struct {
	Action  string `json:"action" msgpack:"action"`
	Outcome string `json:"outcome,omitempty" msgpack:"outcome,omitempty"`
	// Kind is "event" for kernel and agent events, "metric" for loss reports.
	Kind string `json:"kind" msgpack:"kind"`
	// Category is the ECS category: process, file or network.
	Category string `json:"category,omitempty" msgpack:"category,omitempty"`
	// Type is the ECS event.type of file mutations: creation, deletion or change.
	Type []string `json:"type,omitempty" msgpack:"type,omitempty"`
	// Dataset names the producer, e.g. vigil.kernel.
	Dataset string `json:"dataset" msgpack:"dataset"`
	// Sequence increases by one for every record a sensor run writes, so a reader can spot gaps.
	Sequence uint64 `json:"sequence" msgpack:"sequence"`
	// Severity is an alert's numeric severity (ECS): 21 low, 47 medium, 73 high, 99 critical
	// (the risk scores Elastic's detection rules use for the same words).
	Severity int `json:"severity,omitempty" msgpack:"severity,omitempty"`
}

// Host is the ECS host.* group.
type Host struct {
	Name string `json:"name,omitempty" msgpack:"name,omitempty"`
	// BootID identifies the boot; process identities are only unique within one.
	BootID string `json:"boot_id,omitempty" msgpack:"boot_id,omitempty"`
}

// User is the ECS user.* group (numeric ids as strings, as ECS has them).
type User struct {
	ID    string `json:"id,omitempty" msgpack:"id,omitempty"`
	Name  string `json:"name,omitempty" msgpack:"name,omitempty"`
	Group *Group `json:"group,omitempty" msgpack:"group,omitempty"`
}

// Group is the ECS user.group.* group.
type Group struct {
	ID string `json:"id,omitempty" msgpack:"id,omitempty"`
}

// Process is the ECS process.* group.
type Process struct {
	Pid int `json:"pid" msgpack:"pid"`
	// EntityID is stable for the life of a process and unique across pid reuse:
	// a hash of (boot id, pid, start time in clock ticks).
	EntityID         string         `json:"entity_id,omitempty" msgpack:"entity_id,omitempty"`
	Thread           *Thread        `json:"thread,omitempty" msgpack:"thread,omitempty"`
	Name             string         `json:"name,omitempty" msgpack:"name,omitempty"`
	Executable       string         `json:"executable,omitempty" msgpack:"executable,omitempty"`
	Args             []string       `json:"args,omitempty" msgpack:"args,omitempty"`
	ArgsCount        int            `json:"args_count,omitempty" msgpack:"args_count,omitempty"`
	WorkingDirectory string         `json:"working_directory,omitempty" msgpack:"working_directory,omitempty"`
	Start            *time.Time     `json:"start,omitempty" msgpack:"start,omitempty"`
	ExitCode         *int           `json:"exit_code,omitempty" msgpack:"exit_code,omitempty"`
	Hash             *Hash          `json:"hash,omitempty" msgpack:"hash,omitempty"`
	Parent           *ParentProcess `json:"parent,omitempty" msgpack:"parent,omitempty"`

	// StartBootNs is the process start in nanoseconds since boot (CLOCK_BOOTTIME), the
	// kernel's identity of the process together with pid; internal, not encoded.
	StartBootNs uint64 `json:"-" msgpack:"-"`
}

// Thread is the ECS process.thread.* group: in-process agent tools (Read, Write, apply_patch)
// run on agent threads, so the thread id tells them apart.
type Thread struct {
	ID int `json:"id" msgpack:"id"`
}

// ParentProcess is process.parent.*.
type ParentProcess struct {
	Pid        int    `json:"pid" msgpack:"pid"`
	EntityID   string `json:"entity_id,omitempty" msgpack:"entity_id,omitempty"`
	Executable string `json:"executable,omitempty" msgpack:"executable,omitempty"`
	Name       string `json:"name,omitempty" msgpack:"name,omitempty"`
}

// Hash is the ECS *.hash.* group.
type Hash struct {
	SHA256 string `json:"sha256,omitempty" msgpack:"sha256,omitempty"`
}

// File is the ECS file.* group for open and file mutation events.
type File struct {
	// Path is the kernel's path of the opened file for a successful open, the caller's string
	// made absolute for a failed one (vigil.path_source says which). A path deeper than the
	// kernel's walk bound starts with "…/" (leaf side kept) and is named in vigil.truncated.
	Path string `json:"path" msgpack:"path"`
	// Access is read, write or read_write, from the open flags.
	Access string `json:"access,omitempty" msgpack:"access,omitempty"`
	// Flags are the call's flags by name: open(2) flags, e.g. O_WRONLY|O_CREAT|O_TRUNC; on
	// mutations RENAME_NOREPLACE, RENAME_EXCHANGE, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW…
	Flags string `json:"flags,omitempty" msgpack:"flags,omitempty"`
	// TargetPath is, on link, the existing file the new name links to (made absolute like a
	// caller's path) and, on symlink, the link's target exactly as given.
	TargetPath string `json:"target_path,omitempty" msgpack:"target_path,omitempty"`
	// Mode is the new permission bits of a chmod, in octal (ECS file.mode), e.g. "4755".
	Mode string `json:"mode,omitempty" msgpack:"mode,omitempty"`
	// UID and GID are a chown's new owner and group (absent: left unchanged).
	UID string `json:"uid,omitempty" msgpack:"uid,omitempty"`
	GID string `json:"gid,omitempty" msgpack:"gid,omitempty"`
	// Size is a truncate's new length in bytes (written when 0).
	Size *int64 `json:"size,omitempty" msgpack:"size,omitempty"`
}

// Destination is the ECS destination.* group for connect events.
type Destination struct {
	IP   string `json:"ip,omitempty" msgpack:"ip,omitempty"`
	Port int    `json:"port,omitempty" msgpack:"port,omitempty"`
	// Address holds a unix socket path (abstract names start with @).
	Address string `json:"address,omitempty" msgpack:"address,omitempty"`
}

// Network is the ECS network.* group.
type Network struct {
	// Type is ipv4, ipv6 or unix.
	Type string `json:"type,omitempty" msgpack:"type,omitempty"`
}

// GenAI carries agent context with OpenTelemetry GenAI semantic-convention names.
type GenAI struct {
	Agent        *GenAIAgent        `json:"agent,omitempty" msgpack:"agent,omitempty"`
	Conversation *GenAIConversation `json:"conversation,omitempty" msgpack:"conversation,omitempty"`
	Tool         *GenAITool         `json:"tool,omitempty" msgpack:"tool,omitempty"`
	Request      *GenAIRequest      `json:"request,omitempty" msgpack:"request,omitempty"`
	Usage        *GenAIUsage        `json:"usage,omitempty" msgpack:"usage,omitempty"`
}

// GenAIRequest is gen_ai.request.* (agent.api_request lines).
type GenAIRequest struct {
	Model string `json:"model,omitempty" msgpack:"model,omitempty"`
}

// GenAIUsage is gen_ai.usage.* (agent.api_request lines).
type GenAIUsage struct {
	InputTokens  int64 `json:"input_tokens,omitempty" msgpack:"input_tokens,omitempty"`
	OutputTokens int64 `json:"output_tokens,omitempty" msgpack:"output_tokens,omitempty"`
}

// GenAIAgent is gen_ai.agent.*.
type GenAIAgent struct {
	Name string `json:"name" msgpack:"name"`
}

// GenAIConversation is gen_ai.conversation.*; its id is the agent's session id.
type GenAIConversation struct {
	ID string `json:"id" msgpack:"id"`
}

// GenAITool is gen_ai.tool.*.
type GenAITool struct {
	Name string         `json:"name,omitempty" msgpack:"name,omitempty"`
	Call *GenAIToolCall `json:"call,omitempty" msgpack:"call,omitempty"`
}

// GenAIToolCall is gen_ai.tool.call.*.
type GenAIToolCall struct {
	ID string `json:"id" msgpack:"id"`
}

// Vigil holds product fields that have no ECS or GenAI name.
type Vigil struct {
	Schema string `json:"schema" msgpack:"schema"`
	// Root is the agent process that roots the tree this event came from.
	Root *Root `json:"root,omitempty" msgpack:"root,omitempty"`
	// Errno is the positive errno of a failed syscall.
	Errno int `json:"errno,omitempty" msgpack:"errno,omitempty"`
	// Join holds the correlation keys read from the process environment at exec. Only these
	// allowlisted variables are ever read; no other environment value leaves the kernel.
	Join *JoinKeys `json:"join,omitempty" msgpack:"join,omitempty"`
	// JoinInherited is set on an exec whose new environment could not be read (the audit
	// source reads /proc/PID/environ after the fact, and the process was gone): Join then
	// holds the keys the process had before this exec, inherited from its parent at fork.
	JoinInherited bool `json:"join_inherited,omitempty" msgpack:"join_inherited,omitempty"`
	// Truncated names the fields the kernel had to cut to fit its buffers (args, path, ...).
	Truncated []string `json:"truncated,omitempty" msgpack:"truncated,omitempty"`
	// PathSource says where file.path came from: PathSourceKernel or PathSourceCaller.
	PathSource string `json:"path_source,omitempty" msgpack:"path_source,omitempty"`
	// AddressSource says where destination.* came from on network lines: AddressSourceKernel
	// or AddressSourceCaller.
	AddressSource string `json:"address_source,omitempty" msgpack:"address_source,omitempty"`
	// Syscall names the call that made a network line (connect, sendto, sendmsg, sendmmsg) or,
	// on any line, SyscallIOUring for a request made through io_uring.
	Syscall string `json:"syscall,omitempty" msgpack:"syscall,omitempty"`
	// Rename is the source of a rename (action rename); file.path is the destination.
	Rename *Rename `json:"rename,omitempty" msgpack:"rename,omitempty"`
	// Setid is true on a chmod that sets the setuid or setgid bit.
	Setid bool `json:"setid,omitempty" msgpack:"setid,omitempty"`
	// Exe is the executed file's identity as the kernel saw it (exec lines).
	Exe *Exe `json:"exe,omitempty" msgpack:"exe,omitempty"`
	// Merged marks an open line that stands for repeats of an earlier open (see Merged).
	Merged *Merged `json:"merged,omitempty" msgpack:"merged,omitempty"`
	// Lost counts undelivered events per kind since the previous lost record (action lost).
	Lost map[string]uint64 `json:"lost,omitempty" msgpack:"lost,omitempty"`
	// Source names the kernel mechanism that saw the event: ebpf, audit or endpointsecurity.
	Source string `json:"source,omitempty" msgpack:"source,omitempty"`

	// Correlation fields, set by the correlator.
	Correlation
	// Prompt is the user's request a kernel or agent event belongs to (Claude prompt.id,
	// Codex turn id).
	Prompt *PromptRef `json:"prompt,omitempty" msgpack:"prompt,omitempty"`
	// Tool describes the tool call on agent.tool_call lines.
	Tool *ToolCall `json:"tool,omitempty" msgpack:"tool,omitempty"`
	// Telemetry says who sent an agent event and whether the kernel vouches for it.
	Telemetry *Telemetry `json:"telemetry,omitempty" msgpack:"telemetry,omitempty"`
	// Binds names the kernel line a binding record re-attributes (action binding).
	Binds *Binds `json:"binds,omitempty" msgpack:"binds,omitempty"`
	// Recovered marks a kernel line an earlier run of the sensor held for correlation and was
	// killed before writing: this run wrote it from the hold journal, unbound (the telemetry
	// that could bind it was in the killed sensor's memory). Its host.boot_id is that run's.
	Recovered bool `json:"recovered,omitempty" msgpack:"recovered,omitempty"`
	// Compact marks a compact kernel line: the process's unchanged context (process.executable,
	// args, args_count, working_directory, start, hash and parent, user.name and user.group,
	// host.boot_id, vigil.root.entity_id) was written on an earlier line of the same process.entity_id in the same
	// file, and is left out of this one (proto/compact; docs/schema.md, "Compact lines").
	Compact bool `json:"compact,omitempty" msgpack:"compact,omitempty"`
	// Flood marks a kernel line past its agent tree's line budget (output.tree_lines_per_minute),
	// written to output.flood_jsonl, apart from the events file, so that the tree's flood
	// cannot rotate earlier evidence out of it (docs/schema.md, "Floods").
	Flood bool `json:"flood,omitempty" msgpack:"flood,omitempty"`
	// LateMs is, on a binding record, the milliseconds from the bound kernel event's
	// @timestamp to the moment the binding was made.
	LateMs int64 `json:"late_ms,omitempty" msgpack:"late_ms,omitempty"`
	// Alert is what a detection rule matched (action alert).
	Alert *Alert `json:"alert,omitempty" msgpack:"alert,omitempty"`
	// Inventory is one item of an inventory scan (action inventory).
	Inventory *Inventory `json:"inventory,omitempty" msgpack:"inventory,omitempty"`
}

// Alert is vigil.alert.*: why a rule matched, in terms a reader can check against the lines.
type Alert struct {
	// Severity is the rule's severity as a word: low, medium, high or critical.
	Severity string `json:"severity" msgpack:"severity"`
	// Scope is what the rule looked at: event (one line), tool_call or session (what one call
	// or session did so far).
	Scope string `json:"scope" msgpack:"scope"`
	// Sequences are the event.sequence numbers of the lines that made the rule match, of the
	// same sensor run, in ascending order.
	Sequences []uint64 `json:"sequences" msgpack:"sequences"`
	// Evidence says what matched, one readable item each: "read /home/dev/.aws/credentials",
	// "connect 203.0.113.7:443", "exec curl -T … https://…".
	Evidence []string `json:"evidence,omitempty" msgpack:"evidence,omitempty"`
}

// Exe is vigil.exe.*: the file an exec ran, as the kernel saw it at the exec. The hash in
// process.hash.sha256 is of the file with exactly this identity, or absent with the reason
// in Hash.
type Exe struct {
	// Dev and Ino are the file's device (st_dev, as stat(2) reports it) and inode.
	Dev uint64 `json:"dev" msgpack:"dev"`
	Ino uint64 `json:"ino" msgpack:"ino"`
	// Ctime is the inode's change time (TimeLayout, UTC): any write, chmod or rename of the
	// file changes it, so (dev, ino, ctime) names one version of one file.
	Ctime string `json:"ctime,omitempty" msgpack:"ctime,omitempty"`
	// Memfd: the image came from memory (memfd_create), not from a file system; then
	// process.executable is the memfd's name ("memfd:<name>").
	Memfd bool `json:"memfd,omitempty" msgpack:"memfd,omitempty"`
	// Deleted: the executed file had no name left in the file system at exec (unlinked).
	Deleted bool `json:"deleted,omitempty" msgpack:"deleted,omitempty"`
	// Hash is HashPending, HashMismatch or HashUnavailable when process.hash.sha256 is absent.
	Hash string `json:"hash,omitempty" msgpack:"hash,omitempty"`
}

// Merged is vigil.merged.*: on an open line, the repeats the kernel merged. One thread opened
// the same file (same device and inode, name and mount) with the same flags and mode, in the
// same process and tool call, Count more times after the run's first open, which has its own
// line; this line's @timestamp is the first repeat's. A line without it is one open.
type Merged struct {
	// Count is how many opens this line stands for (at least 1; the run's first open, on its
	// own line, is not counted here).
	Count uint64 `json:"count" msgpack:"count"`
	// First and Last are the first and last repeat's times (TimeLayout, UTC).
	First string `json:"first" msgpack:"first"`
	Last  string `json:"last" msgpack:"last"`
	// Dev and Ino are the file's device (st_dev, as stat(2) reports it) and inode: what
	// names the file when the run's first line was lost.
	Dev uint64 `json:"dev" msgpack:"dev"`
	Ino uint64 `json:"ino" msgpack:"ino"`
}

// Rename is vigil.rename.*: what a rename moved away.
type Rename struct {
	// Source is the path renamed from: the caller's string made absolute against the
	// working directory or dirfd the kernel walked (at the exit it no longer exists to walk).
	Source string `json:"source" msgpack:"source"`
}

// Binds is vigil.binds.*: the line a binding record re-attributes.
type Binds struct {
	// Sequence is the event.sequence of the kernel line, written earlier by the same run.
	Sequence uint64 `json:"sequence" msgpack:"sequence"`
}

// PromptRef is vigil.prompt.*.
type PromptRef struct {
	ID string `json:"id,omitempty" msgpack:"id,omitempty"`
	// Text is the prompt (redacted) on agent.prompt lines only.
	Text string `json:"text,omitempty" msgpack:"text,omitempty"`
}

// ToolCall is vigil.tool.* on agent.tool_call lines.
type ToolCall struct {
	Decision       string   `json:"decision,omitempty" msgpack:"decision,omitempty"`
	DecisionSource string   `json:"decision_source,omitempty" msgpack:"decision_source,omitempty"`
	Success        *bool    `json:"success,omitempty" msgpack:"success,omitempty"`
	DurationMs     int64    `json:"duration_ms,omitempty" msgpack:"duration_ms,omitempty"`
	Command        string   `json:"command,omitempty" msgpack:"command,omitempty"`
	FilePaths      []string `json:"file_paths,omitempty" msgpack:"file_paths,omitempty"`
}

// Telemetry is vigil.telemetry.*: the sender of an agent event as the kernel sees it.
type Telemetry struct {
	// Transport is otlp_http, otlp_grpc or hook.
	Transport string `json:"transport,omitempty" msgpack:"transport,omitempty"`
	SenderPid int    `json:"sender_pid,omitempty" msgpack:"sender_pid,omitempty"`
	// Trusted is true when the sender is a process of a tracked agent tree.
	Trusted bool `json:"trusted" msgpack:"trusted"`
	// ClaimedConversationID is the session an untrusted sender claimed (never bound).
	ClaimedConversationID string `json:"claimed_conversation_id,omitempty" msgpack:"claimed_conversation_id,omitempty"`
	// Suppressed, on an untrusted sender's summary line, counts its events past its rate
	// since its previous summary, which have no line of their own.
	Suppressed uint64 `json:"suppressed,omitempty" msgpack:"suppressed,omitempty"`
}

// Root identifies the agent process at the top of a tracked tree.
type Root struct {
	Pid      int    `json:"pid" msgpack:"pid"`
	EntityID string `json:"entity_id,omitempty" msgpack:"entity_id,omitempty"`
}

// JoinKeys are the agents' correlation keys found in a process environment at exec, by what
// each says (its role in the agents registry, sensor/agents). Only the registry's variables
// are ever kept; the maps are keyed by the agent that sets the variable, because a process
// can carry two agents' keys (Codex run by Claude Code).
type JoinKeys struct {
	// TraceParent is TRACEPARENT, a W3C traceparent naming the tool call's span.
	TraceParent string `json:"traceparent,omitempty" msgpack:"traceparent,omitempty"`
	// AgentName is AI_AGENT: the agent and its version (claude-code_2-1-197_agent).
	AgentName string `json:"agent_name,omitempty" msgpack:"agent_name,omitempty"`
	// Sessions are session ids (CLAUDE_CODE_SESSION_ID, CODEX_SESSION_ID, ...) by agent.
	Sessions map[string]string `json:"session,omitempty" msgpack:"session,omitempty"`
	// ToolCalls are tool call ids (CODEX_TOOL_CALL_ID, ...) by agent.
	ToolCalls map[string]string `json:"tool_call,omitempty" msgpack:"tool_call,omitempty"`
	// Markers are the values of variables that only say which agent started the process
	// (CLAUDECODE=1, GEMINI_CLI=1), by agent.
	Markers map[string]string `json:"marker,omitempty" msgpack:"marker,omitempty"`
}

// Join key roles, as sensor/agents names them.
const (
	RoleTraceParent = "traceparent"
	RoleAgentName   = "agent_name"
	RoleSession     = "session"
	RoleToolCall    = "tool_call"
	RoleMarker      = "marker"
)

// Set keeps value under role for agent ("" for the shared roles) and reports whether the
// role is one JoinKeys holds.
func (k *JoinKeys) Set(agent, role, value string) bool {
	put := func(m *map[string]string) {
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[agent] = value
	}
	switch role {
	case RoleTraceParent:
		k.TraceParent = value
	case RoleAgentName:
		k.AgentName = value
	case RoleSession:
		put(&k.Sessions)
	case RoleToolCall:
		put(&k.ToolCalls)
	case RoleMarker:
		put(&k.Markers)
	default:
		return false
	}
	return true
}

// SessionIDs returns the session ids, ordered by agent name.
func (k *JoinKeys) SessionIDs() []string { return sortedValues(k.Sessions) }

// ToolCallIDs returns the tool call ids, ordered by agent name.
func (k *JoinKeys) ToolCallIDs() []string { return sortedValues(k.ToolCalls) }

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, agent := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[agent])
	}
	return out
}

// Empty reports whether no key was found.
func (k *JoinKeys) Empty() bool {
	return k == nil || k.TraceParent == "" && k.AgentName == "" && len(k.Sessions) == 0 && len(k.ToolCalls) == 0 && len(k.Markers) == 0
}

// Equal reports whether k and o hold the same keys.
func (k *JoinKeys) Equal(o *JoinKeys) bool {
	if k.Empty() || o.Empty() {
		return k.Empty() == o.Empty()
	}
	return k.TraceParent == o.TraceParent && k.AgentName == o.AgentName &&
		maps.Equal(k.Sessions, o.Sessions) && maps.Equal(k.ToolCalls, o.ToolCalls) && maps.Equal(k.Markers, o.Markers)
}
