// Package workflow builds the per-request record of an agent session from the correlator's
// lines and records: what the agent was asked (prompt records), what it decided (tool-call
// records with their approvals), what the kernel saw it do for each call (kernel lines, with
// binding records applied), what nothing explains, and what changed on disk.
package workflow

import (
	"time"

	"github.com/vigil-sensor/vigil/correlate/startup"
)

// Kinds of Workflow.
const (
	// KindSession is one agent session (gen_ai.conversation.id).
	KindSession = "session"
	// KindUnattributed is an agent tree no session was ever bound to: one per agent root.
	KindUnattributed = "unattributed"
	// KindUntrusted holds the untrusted telemetry lines that claim no session present in
	// the input (lines that claim a present session are listed in that session's workflow).
	KindUntrusted = "untrusted"
)

// ApprovalNone is ToolCall.Approval when no decision was recorded for the call.
const ApprovalNone = "no approval recorded"

// Options tunes Build.
type Options struct {
	// SessionID keeps only the session with this id; when no session has exactly this id,
	// every session whose id starts with it. Unattributed trees are dropped, and untrusted
	// lines are kept only when they claim a matching session. Empty keeps everything.
	SessionID string
	// RepoOf returns the repository of a directory (for vigil trace: the redacted
	// remote.origin.url), or "" when it is none. Called once per distinct working directory;
	// nil skips the lookup.
	RepoOf func(dir string) string
	// MaxProcesses bounds the processes followed at once to tell start-up reads
	// (correlate/startup) and secret reads (rules.SecretReads) from the others; 0 or less:
	// DefaultMaxProcesses. A process forgotten to stay within it has its later start-up reads
	// listed as files (Stats.ProcessesForgotten counts them).
	MaxProcesses int
}

// DefaultMaxProcesses is Options.MaxProcesses when none is given: far more processes than
// live at once in an agent session.
const DefaultMaxProcesses = 1 << 16

// Stats says what Build had to forget.
type Stats struct {
	// ProcessesForgotten counts processes the start-up classification forgot before their
	// exit to stay within Options.MaxProcesses: their later start-up reads are listed as files.
	ProcessesForgotten uint64
}

// Workflow is the record of one agent session as the user would tell it: what the agent was
// asked (prompts), what it decided (tool calls and their approvals), what the kernel saw it do
// for each call, what nothing explains, and what changed on disk.
type Workflow struct {
	// Kind is KindSession, KindUnattributed or KindUntrusted.
	Kind string `json:"kind"`
	// SessionID is gen_ai.conversation.id; empty for unattributed trees and untrusted lines.
	SessionID string `json:"session_id,omitempty"`
	// Title names the workflow in one line.
	Title string `json:"title"`
	Agent string `json:"agent,omitempty"`
	Host  string `json:"host,omitempty"`
	// RootPids are the agent processes at the top of the session's trees (vigil.root.pid),
	// in first-seen order; a resumed session can have several.
	RootPids []int `json:"root_pids"`
	// WorkingDirectory is the first root's working directory; when the root was never seen
	// with one, the working directory of its first child process.
	WorkingDirectory string `json:"working_directory,omitempty"`
	// Repository is Options.RepoOf(WorkingDirectory).
	Repository string `json:"repository,omitempty"`
	// Start and End span every line of the workflow.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Prompts are the user's requests in time order, each with its tool calls.
	Prompts []Prompt `json:"prompts"`
	// Unexplained is what the kernel saw in the session's trees that no tool call explains
	// (vigil.binding none, or no tool call id): what a detection engineer wants first.
	Unexplained Activity `json:"unexplained"`
	// FilesChanged is every path opened successfully for writing in the session, bound or
	// not, in first-write order, without duplicates and without pseudo-files under /dev and
	// /proc. Claude's temporary files are shown as the file they replace.
	FilesChanged []string `json:"files_changed"`
	// UntrustedTelemetry lists agent.untrusted_telemetry lines that claimed this session (or,
	// for KindUntrusted, a session not in the input): senders outside every agent tree.
	UntrustedTelemetry []UntrustedTelemetry `json:"untrusted_telemetry"`
	// Lost sums the sensor's loss reports (action lost) whose period overlaps the workflow:
	// when present, the record may be incomplete.
	Lost map[string]uint64 `json:"lost,omitempty"`
}

// Prompt is one user request and the tool calls the agent made for it.
type Prompt struct {
	// Index counts prompts from 1 in time order.
	Index int `json:"index"`
	// ID is vigil.prompt.id (Claude prompt.id, Codex turn id); empty collects the tool calls
	// that name no prompt.
	ID   string    `json:"id,omitempty"`
	Time time.Time `json:"time"`
	// Text is the prompt as recorded (redacted by the sensor); empty when the agent did not
	// send it (Claude without OTEL_LOG_USER_PROMPTS=1).
	Text      string     `json:"text,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls"`
}

// ToolCall is one tool call: what the agent said about it (agent.tool_call) and what
// the kernel saw bound to it.
type ToolCall struct {
	// Index counts the prompt's calls from 1 in time order.
	Index  int    `json:"index"`
	Name   string `json:"name,omitempty"`
	CallID string `json:"call_id"`
	// Time is when the call started as best known: the result time minus its duration, or
	// the first kernel event bound to it when earlier.
	Time           time.Time `json:"time"`
	Command        string    `json:"command,omitempty"`
	FilePaths      []string  `json:"file_paths,omitempty"`
	Decision       string    `json:"decision,omitempty"`
	DecisionSource string    `json:"decision_source,omitempty"`
	// Approval says it in words: "approved by config", "denied by user", or ApprovalNone.
	Approval   string `json:"approval"`
	Success    *bool  `json:"success,omitempty"`
	DurationMs int64  `json:"duration_ms,omitempty"`
	// Reported is true when an agent.tool_call line exists; false when only kernel events
	// name the call (the agent's telemetry about it never arrived).
	Reported bool `json:"reported"`
	// Evidence lists the distinct binding/confidence pairs of the kernel events bound to the
	// call, e.g. traceparent/high, file_path/medium.
	Evidence []string `json:"evidence"`
	Activity
}

// Activity is what the kernel saw: processes started, files read and written, connections.
// What each program does before it does what it was asked (its start-up reads) is counted per
// process in StartupReads, not listed in FilesRead.
type Activity struct {
	Processes []Process `json:"processes"`
	// StartupReads counts the start-up reads of each process image, in first-read order.
	StartupReads []StartupReads `json:"startup_reads,omitempty"`
	FilesRead    []File         `json:"files_read"`
	FilesWritten []File         `json:"files_written"`
	Connections  []Connection   `json:"connections"`
}

// Empty reports whether the kernel saw nothing.
func (a Activity) Empty() bool {
	return len(a.Processes) == 0 && len(a.StartupReads) == 0 && len(a.FilesRead) == 0 && len(a.FilesWritten) == 0 &&
		len(a.Connections) == 0
}

// Process is one exec: a process running a new image.
type Process struct {
	Time             time.Time `json:"time"`
	Pid              int       `json:"pid"`
	EntityID         string    `json:"entity_id,omitempty"`
	ParentPid        int       `json:"parent_pid,omitempty"`
	Name             string    `json:"name,omitempty"`
	Executable       string    `json:"executable,omitempty"`
	Args             []string  `json:"args,omitempty"`
	WorkingDirectory string    `json:"working_directory,omitempty"`
	// ExitCode is from the process's exit line; nil when none was seen.
	ExitCode   *int   `json:"exit_code,omitempty"`
	Binding    string `json:"binding,omitempty"`
	Confidence string `json:"confidence,omitempty"`
}

// StartupReads counts one process image's start-up reads (correlate/startup) in one activity:
// the dynamic loader's reads of shared objects and its cache between the exec and the process's
// first other open, locale and gconv data, and a shell's read-only opens between its exec and
// its first fork, exec or connect. Failed probes count. A secret read is never one of them: it
// is listed in FilesRead whatever its kind.
type StartupReads struct {
	Pid      int    `json:"pid"`
	Process  string `json:"process,omitempty"`
	EntityID string `json:"entity_id,omitempty"`
	// ExecTime is the time of the exec that started the image (Process.Time of its exec);
	// absent when the exec was not seen, e.g. a forked subshell's reads.
	ExecTime time.Time `json:"exec_time,omitzero"`
	// Time is the first read's.
	Time time.Time `json:"time"`
	// Total is the sum of Kinds.
	Total int `json:"total"`
	// Kinds counts the reads of each kind: loader, locale, shell (startup.Kinds).
	Kinds map[startup.Kind]int `json:"kinds"`
}

// File is one path opened, once per path per list, its secret reads apart from its other
// opens (Secret); the first open names the process and binding.
type File struct {
	Path string `json:"path"`
	// Secret is true when the opens folded here are secret reads as the alerts count them
	// (rules.SecretReads): successful opens that read a secret-looking file (.env, *.pem,
	// *.key, private SSH keys, .aws/credentials, .npmrc, .netrc, ...; public CA bundles are
	// not) by a program that is not the secret's own client (ssh reading ~/.ssh/id_rsa is
	// not). Failed and O_PATH opens of a secret-looking path are not secret reads.
	Secret bool `json:"secret,omitempty"`
	// Access is file.access of the first open: read, write or read_write.
	Access string `json:"access,omitempty"`
	// Create and Truncate: some open had O_CREAT or O_TRUNC.
	Create   bool `json:"create,omitempty"`
	Truncate bool `json:"truncate,omitempty"`
	// Failed is true when every open of the path failed; Errno is the first failure's.
	Failed bool `json:"failed,omitempty"`
	Errno  int  `json:"errno,omitempty"`
	// TempPath is the temporary file the write really went to when Path was written the way
	// Claude Code writes files: open <file>.tmp.<pid>.<suffix> for writing from the agent's
	// own process, then rename it over <file>. The rename is not traced, so the temporary
	// name is an implementation detail of the atomic write and Path is the file it replaces.
	TempPath string `json:"temp_path,omitempty"`
	// Opens counts the opens of the path folded into this entry.
	Opens      int       `json:"opens"`
	Time       time.Time `json:"time"`
	Pid        int       `json:"pid,omitempty"`
	Process    string    `json:"process,omitempty"`
	Binding    string    `json:"binding,omitempty"`
	Confidence string    `json:"confidence,omitempty"`
}

// Connection is one destination with one outcome.
type Connection struct {
	// Address is ip:port ([ip]:port for IPv6) or the unix socket path.
	Address    string    `json:"address"`
	Network    string    `json:"network,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
	Errno      int       `json:"errno,omitempty"`
	Count      int       `json:"count"`
	Time       time.Time `json:"time"`
	Pid        int       `json:"pid,omitempty"`
	Process    string    `json:"process,omitempty"`
	Binding    string    `json:"binding,omitempty"`
	Confidence string    `json:"confidence,omitempty"`
}

// UntrustedTelemetry is one agent.untrusted_telemetry line: agent telemetry from a process
// outside every agent tree. Never bound; everything but the sender is a claim.
type UntrustedTelemetry struct {
	Time             time.Time `json:"time"`
	SenderPid        int       `json:"sender_pid,omitempty"`
	Transport        string    `json:"transport,omitempty"`
	ClaimedSessionID string    `json:"claimed_session_id,omitempty"`
	Agent            string    `json:"agent,omitempty"`
	ToolName         string    `json:"tool_name,omitempty"`
	Command          string    `json:"command,omitempty"`
	FilePaths        []string  `json:"file_paths,omitempty"`
	PromptText       string    `json:"prompt_text,omitempty"`
}
