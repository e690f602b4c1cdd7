package correlate

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// Kinds of Workflow.
const (
	// WorkflowSession is one agent session (gen_ai.conversation.id).
	WorkflowSession = "session"
	// WorkflowUnattributed is an agent tree no session was ever bound to: one per agent root.
	WorkflowUnattributed = "unattributed"
	// WorkflowUntrusted holds the untrusted telemetry lines that claim no session present in
	// the input (lines that claim a present session are listed in that session's workflow).
	WorkflowUntrusted = "untrusted"
)

// ApprovalNone is WorkflowToolCall.Approval when no decision was recorded for the call.
const ApprovalNone = "no approval recorded"

// WorkflowOptions tunes BuildWorkflows.
type WorkflowOptions struct {
	// SessionID keeps only the session with this id; when no session has exactly this id,
	// every session whose id starts with it. Unattributed trees are dropped, and untrusted
	// lines are kept only when they claim a matching session. Empty keeps everything.
	SessionID string
	// RepoOf returns the repository of a directory (for vigil trace: the redacted
	// remote.origin.url), or "" when it is none. Called once per distinct working directory;
	// nil skips the lookup.
	RepoOf func(dir string) string
}

// Workflow is the record of one agent session as the user would tell it: what the agent was
// asked (prompts), what it decided (tool calls and their approvals), what the kernel saw it do
// for each call, what nothing explains, and what changed on disk.
type Workflow struct {
	// Kind is WorkflowSession, WorkflowUnattributed or WorkflowUntrusted.
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
	// Repository is WorkflowOptions.RepoOf(WorkingDirectory).
	Repository string `json:"repository,omitempty"`
	// Start and End span every line of the workflow.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Prompts are the user's requests in time order, each with its tool calls.
	Prompts []WorkflowPrompt `json:"prompts"`
	// Unexplained is what the kernel saw in the session's trees that no tool call explains
	// (vigil.binding none, or no tool call id): what a detection engineer wants first.
	Unexplained Activity `json:"unexplained"`
	// FilesChanged is every path opened successfully for writing in the session, bound or
	// not, in first-write order, without duplicates and without pseudo-files under /dev and
	// /proc. Claude's temporary files are shown as the file they replace.
	FilesChanged []string `json:"files_changed"`
	// UntrustedTelemetry lists agent.untrusted_telemetry lines that claimed this session (or,
	// for WorkflowUntrusted, a session not in the input): senders outside every agent tree.
	UntrustedTelemetry []UntrustedTelemetry `json:"untrusted_telemetry"`
	// Lost sums the sensor's loss reports (action lost) whose period overlaps the workflow:
	// when present, the record may be incomplete.
	Lost map[string]uint64 `json:"lost,omitempty"`
}

// WorkflowPrompt is one user request and the tool calls the agent made for it.
type WorkflowPrompt struct {
	// Index counts prompts from 1 in time order.
	Index int `json:"index"`
	// ID is vigil.prompt.id (Claude prompt.id, Codex turn id); empty collects the tool calls
	// that name no prompt.
	ID   string    `json:"id,omitempty"`
	Time time.Time `json:"time"`
	// Text is the prompt as recorded (redacted by the sensor); empty when the agent did not
	// send it (Claude without OTEL_LOG_USER_PROMPTS=1).
	Text      string             `json:"text,omitempty"`
	ToolCalls []WorkflowToolCall `json:"tool_calls"`
}

// WorkflowToolCall is one tool call: what the agent said about it (agent.tool_call) and what
// the kernel saw bound to it.
type WorkflowToolCall struct {
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
type Activity struct {
	Processes    []WorkflowProcess    `json:"processes"`
	FilesRead    []WorkflowFile       `json:"files_read"`
	FilesWritten []WorkflowFile       `json:"files_written"`
	Connections  []WorkflowConnection `json:"connections"`
}

// WorkflowProcess is one exec: a process running a new image.
type WorkflowProcess struct {
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

// WorkflowFile is one path opened, once per path per list; the first open names the process
// and binding.
type WorkflowFile struct {
	Path string `json:"path"`
	// Secret marks secret-looking files: .env, *.pem, *.key, private SSH keys,
	// .aws/credentials, .npmrc, .netrc, ...
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

// WorkflowConnection is one destination with one outcome.
type WorkflowConnection struct {
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

// BuildWorkflows groups correlated events (as vigil run writes them, in any order) into one
// Workflow per session, then one per agent tree that no session was bound to, then one for
// untrusted telemetry claiming no present session. Sessions and trees are ordered by start.
//
// A kernel line goes to its gen_ai.conversation.id; without one, to the session of its
// prompt or tool call id, else to the session bound to its root pid (the latest one started
// by then), else to its root's unattributed workflow. Within a workflow a kernel line is
// bound to its gen_ai.tool.call.id unless vigil.binding is none. events is not modified.
func BuildWorkflows(events []*proto.Event, opts WorkflowOptions) []Workflow {
	evs := make([]*proto.Event, 0, len(events))
	for _, e := range events {
		if e != nil {
			evs = append(evs, e)
		}
	}
	slices.SortStableFunc(evs, func(a, b *proto.Event) int { return a.Timestamp.Compare(b.Timestamp) })

	// Pass 1: which session each root, prompt and call belongs to.
	type rootSession struct {
		id    string
		since time.Time
	}
	rootSessions := map[int][]rootSession{}
	promptSession := map[string]string{}
	callSession := map[string]string{}
	for _, e := range evs {
		if isUntrusted(e) || e.Event.Action == proto.ActionLost {
			continue
		}
		sid := conversationID(e)
		if sid == "" {
			continue
		}
		if pid := rootPid(e); pid > 0 && !slices.ContainsFunc(rootSessions[pid], func(r rootSession) bool { return r.id == sid }) {
			rootSessions[pid] = append(rootSessions[pid], rootSession{sid, e.Timestamp})
		}
		if id := promptID(e); id != "" {
			promptSession[id] = sid
		}
		if id := callID(e); id != "" {
			callSession[id] = sid
		}
	}

	// Pass 2: every line to its workflow.
	type group struct {
		kind, sid string
		root      int
		evs       []*proto.Event
	}
	var groups []*group
	sessions := map[string]*group{}
	trees := map[string]*group{}
	var untrusted, lost []*proto.Event
	for _, e := range evs {
		switch {
		case isUntrusted(e):
			untrusted = append(untrusted, e)
			continue
		case e.Event.Action == proto.ActionLost:
			lost = append(lost, e)
			continue
		}
		sid := conversationID(e)
		if sid == "" {
			sid = promptSession[promptID(e)]
		}
		if sid == "" {
			sid = callSession[callID(e)]
		}
		root := rootPid(e)
		if sid == "" && root > 0 {
			if rs := rootSessions[root]; len(rs) > 0 {
				sid = rs[0].id
				for _, r := range rs[1:] {
					if !r.since.After(e.Timestamp) {
						sid = r.id
					}
				}
			}
		}
		var g *group
		switch {
		case sid != "":
			if g = sessions[sid]; g == nil {
				g = &group{kind: WorkflowSession, sid: sid}
				sessions[sid] = g
				groups = append(groups, g)
			}
		case root > 0:
			key := treeKey(e)
			if g = trees[key]; g == nil {
				g = &group{kind: WorkflowUnattributed, root: root}
				trees[key] = g
				groups = append(groups, g)
			}
		default:
			continue
		}
		g.evs = append(g.evs, e)
	}

	match := sessionMatcher(opts.SessionID, sessions)
	repos := map[string]string{}
	var out []Workflow
	for _, g := range groups {
		if opts.SessionID != "" && (g.kind != WorkflowSession || !match(g.sid)) {
			continue
		}
		w := assemble(g.kind, g.sid, g.evs)
		if g.kind == WorkflowUnattributed {
			w.Title = fmt.Sprintf("Unattributed %s tree (root pid %d)", cmp.Or(w.Agent, "agent"), g.root)
		}
		if opts.RepoOf != nil && w.WorkingDirectory != "" {
			repo, ok := repos[w.WorkingDirectory]
			if !ok {
				repo = opts.RepoOf(w.WorkingDirectory)
				repos[w.WorkingDirectory] = repo
			}
			w.Repository = repo
		}
		out = append(out, w)
	}
	slices.SortStableFunc(out, func(a, b Workflow) int {
		return cmp.Or(cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)), a.Start.Compare(b.Start),
			cmp.Compare(a.SessionID, b.SessionID))
	})

	// Untrusted lines: to the session they claim when it is here, else to one last workflow.
	orphans := Workflow{Kind: WorkflowUntrusted, Title: "Untrusted telemetry (senders outside every agent tree)"}
	for _, e := range untrusted {
		u := untrustedOf(e)
		i := slices.IndexFunc(out, func(w Workflow) bool {
			return w.Kind == WorkflowSession && u.ClaimedSessionID != "" && w.SessionID == u.ClaimedSessionID
		})
		switch {
		case i >= 0:
			out[i].UntrustedTelemetry = append(out[i].UntrustedTelemetry, u)
		case sessions[u.ClaimedSessionID] != nil:
			// The claimed session exists but was filtered out.
		case opts.SessionID == "" || (u.ClaimedSessionID != "" && strings.HasPrefix(u.ClaimedSessionID, opts.SessionID)):
			orphans.UntrustedTelemetry = append(orphans.UntrustedTelemetry, u)
			orphans.Start, orphans.End = span(orphans.Start, orphans.End, u.Time)
		}
	}
	if len(orphans.UntrustedTelemetry) > 0 {
		out = append(out, normalize(orphans))
	}

	// Loss reports count what was lost since the previous report: (prev, t].
	var prev time.Time
	for _, e := range lost {
		for i := range out {
			w := &out[i]
			if w.Kind == WorkflowUntrusted || e.Timestamp.Before(w.Start) || (!prev.IsZero() && !prev.Before(w.End)) {
				continue
			}
			for k, n := range e.Vigil.Lost {
				if n == 0 {
					continue
				}
				if w.Lost == nil {
					w.Lost = map[string]uint64{}
				}
				w.Lost[k] += n
			}
		}
		prev = e.Timestamp
	}
	return out
}

func kindRank(kind string) int {
	switch kind {
	case WorkflowSession:
		return 0
	case WorkflowUnattributed:
		return 1
	}
	return 2
}

// sessionMatcher: the exact id when present, else every id with the prefix.
func sessionMatcher[V any](want string, sessions map[string]V) func(string) bool {
	if _, ok := sessions[want]; ok {
		return func(id string) bool { return id == want }
	}
	return func(id string) bool { return strings.HasPrefix(id, want) }
}

// callAcc accumulates one tool call.
type callAcc struct {
	call     WorkflowToolCall
	promptID string
	acc      activityAcc
	order    int
}

// assemble builds one workflow from its lines, in time order.
func assemble(kind, sid string, evs []*proto.Event) Workflow {
	w := Workflow{Kind: kind, SessionID: sid}
	if kind == WorkflowSession {
		w.Title = "Session " + sid
	}
	prompts := map[string]*WorkflowPrompt{}
	promptLine := map[string]bool{}
	calls := map[string]*callAcc{}
	var callOrder []*callAcc
	var unexplained activityAcc
	procs := map[string]*WorkflowProcess{}
	changed := map[string]bool{}
	var childCwd string

	promptFor := func(id string, t time.Time) *WorkflowPrompt {
		p := prompts[id]
		if p == nil {
			p = &WorkflowPrompt{ID: id, Time: t}
			prompts[id] = p
		}
		return p
	}
	callFor := func(id string) *callAcc {
		c := calls[id]
		if c == nil {
			c = &callAcc{call: WorkflowToolCall{CallID: id}, order: len(callOrder)}
			calls[id] = c
			callOrder = append(callOrder, c)
		}
		return c
	}

	for _, e := range evs {
		w.Start, w.End = span(w.Start, w.End, e.Timestamp)
		if w.Agent == "" && e.GenAI != nil && e.GenAI.Agent != nil {
			w.Agent = e.GenAI.Agent.Name
		}
		if w.Host == "" && e.Host != nil {
			w.Host = e.Host.Name
		}
		root := rootPid(e)
		if root > 0 && !slices.Contains(w.RootPids, root) {
			w.RootPids = append(w.RootPids, root)
		}
		if p := e.Process; p != nil && p.WorkingDirectory != "" && len(w.RootPids) > 0 {
			switch {
			case p.Pid == w.RootPids[0] && w.WorkingDirectory == "":
				w.WorkingDirectory = p.WorkingDirectory
			case p.Parent != nil && p.Parent.Pid == w.RootPids[0] && childCwd == "":
				childCwd = p.WorkingDirectory
			}
		}

		switch e.Event.Action {
		case proto.ActionAgentPrompt:
			p := promptFor(promptID(e), e.Timestamp)
			if !promptLine[p.ID] {
				p.Time, promptLine[p.ID] = e.Timestamp, true
			}
			if e.Vigil.Prompt != nil && e.Vigil.Prompt.Text != "" {
				p.Text = e.Vigil.Prompt.Text
			}
			continue
		case proto.ActionAgentToolCall:
			id := callID(e)
			if id == "" {
				continue
			}
			c := callFor(id)
			c.mergeLine(e)
			continue
		case proto.ActionExec, proto.ActionExit, proto.ActionOpen, proto.ActionConnect, proto.ActionFork:
		default:
			continue
		}
		if e.Process == nil {
			continue
		}

		acc := &unexplained
		if id := callID(e); id != "" && e.Vigil.Binding != proto.BindingNone {
			c := callFor(id)
			if c.call.Name == "" && e.GenAI.Tool != nil {
				c.call.Name = e.GenAI.Tool.Name
			}
			if c.promptID == "" {
				c.promptID = promptID(e)
			}
			if c.call.Time.IsZero() || e.Timestamp.Before(c.call.Time) {
				c.call.Time = e.Timestamp
			}
			if e.Vigil.Binding != "" {
				ev := e.Vigil.Binding
				if e.Vigil.Confidence != "" {
					ev += "/" + e.Vigil.Confidence
				}
				if !slices.Contains(c.call.Evidence, ev) {
					c.call.Evidence = append(c.call.Evidence, ev)
				}
			}
			acc = &c.acc
		}

		p := e.Process
		switch e.Event.Action {
		case proto.ActionExec:
			rec := &WorkflowProcess{
				Time: e.Timestamp, Pid: p.Pid, EntityID: p.EntityID, Name: p.Name, Executable: p.Executable,
				Args: p.Args, WorkingDirectory: p.WorkingDirectory,
				Binding: e.Vigil.Binding, Confidence: e.Vigil.Confidence,
			}
			if p.Parent != nil {
				rec.ParentPid = p.Parent.Pid
			}
			procs[procKey(p)] = rec
			if p.Pid == root && acc == &unexplained {
				// The agent starting: the header already names it.
				continue
			}
			acc.procs = append(acc.procs, rec)
		case proto.ActionExit:
			if rec := procs[procKey(p)]; rec != nil && p.ExitCode != nil && rec.ExitCode == nil {
				code := *p.ExitCode
				rec.ExitCode = &code
			}
		case proto.ActionOpen:
			if e.File == nil || e.File.Path == "" {
				continue
			}
			f := fileOf(e)
			if writeAccess(e.File) {
				acc.written.add(f)
				if !f.Failed && !pseudoFile(f.Path) && !changed[f.Path] {
					changed[f.Path] = true
					w.FilesChanged = append(w.FilesChanged, f.Path)
				}
			} else {
				acc.read.add(f)
			}
		case proto.ActionConnect:
			if e.Destination == nil {
				continue
			}
			acc.conns.add(connectionOf(e))
		}
	}
	if w.WorkingDirectory == "" {
		w.WorkingDirectory = childCwd
	}

	// Prompts in time order; calls under their prompt in time order.
	for _, c := range callOrder {
		if c.call.Time.IsZero() {
			c.call.Time = w.Start
		}
		p := promptFor(c.promptID, c.call.Time)
		if !promptLine[p.ID] && c.call.Time.Before(p.Time) {
			p.Time = c.call.Time
		}
	}
	slices.SortStableFunc(callOrder, func(a, b *callAcc) int {
		return cmp.Or(a.call.Time.Compare(b.call.Time), cmp.Compare(a.order, b.order))
	})
	for _, c := range callOrder {
		c.call.Approval = approvalText(c.call.Decision, c.call.DecisionSource)
		c.call.Activity = c.acc.activity()
		p := prompts[c.promptID]
		c.call.Index = len(p.ToolCalls) + 1
		if c.call.Evidence == nil {
			c.call.Evidence = []string{}
		}
		p.ToolCalls = append(p.ToolCalls, c.call)
	}
	for _, p := range prompts {
		w.Prompts = append(w.Prompts, *p)
	}
	slices.SortFunc(w.Prompts, func(a, b WorkflowPrompt) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	for i := range w.Prompts {
		w.Prompts[i].Index = i + 1
	}
	w.Unexplained = unexplained.activity()
	return normalize(w)
}

// mergeLine folds an agent.tool_call line into the call; a later line's non-empty fields win.
func (c *callAcc) mergeLine(e *proto.Event) {
	c.call.Reported = true
	if e.GenAI != nil && e.GenAI.Tool != nil && e.GenAI.Tool.Name != "" {
		c.call.Name = e.GenAI.Tool.Name
	}
	if id := promptID(e); id != "" {
		c.promptID = id
	}
	start := e.Timestamp
	if t := e.Vigil.Tool; t != nil {
		c.call.Decision = cmp.Or(t.Decision, c.call.Decision)
		c.call.DecisionSource = cmp.Or(t.DecisionSource, c.call.DecisionSource)
		c.call.Command = cmp.Or(t.Command, c.call.Command)
		if len(t.FilePaths) > 0 {
			c.call.FilePaths = t.FilePaths
		}
		if t.Success != nil {
			ok := *t.Success
			c.call.Success = &ok
		}
		if t.DurationMs > 0 {
			c.call.DurationMs = t.DurationMs
			start = start.Add(-time.Duration(t.DurationMs) * time.Millisecond)
		}
	}
	if c.call.Time.IsZero() || start.Before(c.call.Time) {
		c.call.Time = start
	}
}

// activityAcc accumulates an Activity, deduplicating files and connections.
type activityAcc struct {
	procs         []*WorkflowProcess
	read, written fileSet
	conns         connSet
}

func (a *activityAcc) activity() Activity {
	out := Activity{
		Processes:    make([]WorkflowProcess, 0, len(a.procs)),
		FilesRead:    a.read.list(),
		FilesWritten: a.written.list(),
		Connections:  make([]WorkflowConnection, 0, len(a.conns.order)),
	}
	for _, p := range a.procs {
		out.Processes = append(out.Processes, *p)
	}
	for _, c := range a.conns.order {
		out.Connections = append(out.Connections, *c)
	}
	return out
}

type fileSet struct {
	order []*WorkflowFile
	byKey map[string]*WorkflowFile
}

func (s *fileSet) add(f WorkflowFile) {
	if cur := s.byKey[f.Path]; cur != nil {
		cur.Opens++
		cur.Create = cur.Create || f.Create
		cur.Truncate = cur.Truncate || f.Truncate
		cur.TempPath = cmp.Or(cur.TempPath, f.TempPath)
		if cur.Failed && !f.Failed {
			cur.Failed, cur.Errno = false, 0
		}
		return
	}
	if s.byKey == nil {
		s.byKey = map[string]*WorkflowFile{}
	}
	s.byKey[f.Path] = &f
	s.order = append(s.order, &f)
}

func (s *fileSet) list() []WorkflowFile {
	out := make([]WorkflowFile, 0, len(s.order))
	for _, f := range s.order {
		out = append(out, *f)
	}
	return out
}

type connSet struct {
	order []*WorkflowConnection
	byKey map[string]*WorkflowConnection
}

func (s *connSet) add(c WorkflowConnection) {
	key := c.Address + "\x00" + c.Outcome
	if cur := s.byKey[key]; cur != nil {
		cur.Count++
		return
	}
	if s.byKey == nil {
		s.byKey = map[string]*WorkflowConnection{}
	}
	s.byKey[key] = &c
	s.order = append(s.order, &c)
}

// claudeTemp matches Claude Code's atomic-write temporary file: <file>.tmp.<pid>.<suffix>.
var claudeTemp = regexp.MustCompile(`^(.+)\.tmp\.([0-9]+)\.([0-9A-Za-z]+)$`)

func fileOf(e *proto.Event) WorkflowFile {
	f := WorkflowFile{
		Path: e.File.Path, Access: e.File.Access,
		Create: hasFlag(e.File.Flags, "O_CREAT"), Truncate: hasFlag(e.File.Flags, "O_TRUNC"),
		Failed: e.Event.Outcome == proto.OutcomeFailure, Opens: 1, Time: e.Timestamp,
		Pid: e.Process.Pid, Process: e.Process.Name, Binding: e.Vigil.Binding, Confidence: e.Vigil.Confidence,
	}
	if f.Failed {
		f.Errno = e.Vigil.Errno
	}
	if writeAccess(e.File) {
		if m := claudeTemp.FindStringSubmatch(f.Path); m != nil && m[2] == strconv.Itoa(e.Process.Pid) {
			f.TempPath, f.Path = f.Path, m[1]
		}
	}
	f.Secret = SecretLooking(f.Path)
	return f
}

func connectionOf(e *proto.Event) WorkflowConnection {
	d := e.Destination
	c := WorkflowConnection{
		Address: d.Address, Outcome: e.Event.Outcome, Count: 1, Time: e.Timestamp,
		Pid: e.Process.Pid, Process: e.Process.Name, Binding: e.Vigil.Binding, Confidence: e.Vigil.Confidence,
	}
	if e.Network != nil {
		c.Network = e.Network.Type
	}
	if d.IP != "" {
		host := d.IP
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		c.Address = host + ":" + strconv.Itoa(d.Port)
	}
	if c.Outcome == proto.OutcomeFailure {
		c.Errno = e.Vigil.Errno
	}
	return c
}

func hasFlag(flags, name string) bool {
	for f := range strings.SplitSeq(flags, "|") {
		if strings.TrimSpace(f) == name {
			return true
		}
	}
	return false
}

// writeAccess: file.access write or read_write, or, without an access, a write flag.
func writeAccess(f *proto.File) bool {
	switch f.Access {
	case "write", "read_write":
		return true
	case "read":
		return false
	}
	return hasFlag(f.Flags, "O_WRONLY") || hasFlag(f.Flags, "O_RDWR")
}

// pseudoFile: device and proc files (/dev/null, /dev/tty, ...) are never "changed".
func pseudoFile(p string) bool {
	return strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/sys/")
}

// secretNames are file names that hold credentials wherever they are.
var secretNames = map[string]bool{
	".env": true, ".netrc": true, "_netrc": true, ".npmrc": true, ".pypirc": true, ".pgpass": true,
	".git-credentials": true, ".htpasswd": true, "id_rsa": true, "id_dsa": true, "id_ecdsa": true,
	"id_ed25519": true, "id_ecdsa_sk": true, "id_ed25519_sk": true, "credentials.json": true,
	"secrets.json": true, "secrets.yaml": true, "secrets.yml": true, ".vault-token": true,
}

// secretSuffixes are extensions of key and certificate-bundle files.
var secretSuffixes = []string{".pem", ".key", ".p12", ".pfx", ".keystore", ".jks", ".kdbx"}

// secretDirs are files whose name only says "secret" inside their tool's directory.
var secretDirs = []string{"/.aws/credentials", "/.aws/config", "/.docker/config.json", "/.kube/config",
	"/.config/gh/hosts.yml", "/.ssh/", "/.gnupg/", "/.config/gcloud/"}

// SecretLooking reports whether a path looks like it holds credentials: .env files (not
// .env.example and similar templates), keys and certificates (*.pem, *.key, *.p12), SSH private
// keys and anything under ~/.ssh except public keys and known_hosts, .aws/credentials, .npmrc,
// .netrc, .pypirc, .git-credentials, docker and kube configs.
func SecretLooking(p string) bool {
	base := path.Base(p)
	if strings.HasSuffix(base, ".pub") || base == "known_hosts" || base == "known_hosts.old" {
		return false
	}
	if secretNames[base] {
		return true
	}
	if rest, ok := strings.CutPrefix(base, ".env."); ok {
		switch rest {
		case "example", "sample", "template", "dist", "defaults":
			return false
		}
		return true
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	for _, d := range secretDirs {
		if strings.Contains(p, d) {
			return true
		}
	}
	return false
}

// approvalText says the decision in words.
func approvalText(decision, source string) string {
	if decision == "" {
		return ApprovalNone
	}
	verb := decision
	switch strings.ToLower(decision) {
	case "accept", "approved", "approve", "allow", "allowed":
		verb = "approved"
	case "approved_for_session":
		verb = "approved for the session"
	case "reject", "denied", "deny", "rejected":
		verb = "denied"
	case "abort":
		verb = "aborted"
	}
	if source == "" {
		return verb
	}
	return verb + " by " + strings.ToLower(source)
}

func untrustedOf(e *proto.Event) UntrustedTelemetry {
	u := UntrustedTelemetry{Time: e.Timestamp}
	if t := e.Vigil.Telemetry; t != nil {
		u.SenderPid, u.Transport, u.ClaimedSessionID = t.SenderPid, t.Transport, t.ClaimedConversationID
	}
	if u.SenderPid == 0 && e.Process != nil {
		u.SenderPid = e.Process.Pid
	}
	if u.ClaimedSessionID == "" {
		u.ClaimedSessionID = conversationID(e)
	}
	if e.GenAI != nil {
		if e.GenAI.Agent != nil {
			u.Agent = e.GenAI.Agent.Name
		}
		if e.GenAI.Tool != nil {
			u.ToolName = e.GenAI.Tool.Name
		}
	}
	if t := e.Vigil.Tool; t != nil {
		u.Command, u.FilePaths = t.Command, t.FilePaths
	}
	if e.Vigil.Prompt != nil {
		u.PromptText = e.Vigil.Prompt.Text
	}
	return u
}

// normalize makes every list non-nil, so JSON readers always find arrays.
func normalize(w Workflow) Workflow {
	if w.RootPids == nil {
		w.RootPids = []int{}
	}
	if w.Prompts == nil {
		w.Prompts = []WorkflowPrompt{}
	}
	for i := range w.Prompts {
		if w.Prompts[i].ToolCalls == nil {
			w.Prompts[i].ToolCalls = []WorkflowToolCall{}
		}
	}
	if w.Unexplained.Processes == nil {
		w.Unexplained = (&activityAcc{}).activity()
	}
	if w.FilesChanged == nil {
		w.FilesChanged = []string{}
	}
	if w.UntrustedTelemetry == nil {
		w.UntrustedTelemetry = []UntrustedTelemetry{}
	}
	return w
}

func span(start, end, t time.Time) (time.Time, time.Time) {
	if start.IsZero() || t.Before(start) {
		start = t
	}
	if t.After(end) {
		end = t
	}
	return start, end
}

func isUntrusted(e *proto.Event) bool {
	return e.Event.Action == proto.ActionAgentUntrusted || (e.Vigil.Telemetry != nil && !e.Vigil.Telemetry.Trusted)
}

func conversationID(e *proto.Event) string {
	if e.GenAI != nil && e.GenAI.Conversation != nil {
		return e.GenAI.Conversation.ID
	}
	return ""
}

func promptID(e *proto.Event) string {
	if e.Vigil.Prompt != nil {
		return e.Vigil.Prompt.ID
	}
	return ""
}

func callID(e *proto.Event) string {
	if e.GenAI != nil && e.GenAI.Tool != nil && e.GenAI.Tool.Call != nil {
		return e.GenAI.Tool.Call.ID
	}
	return ""
}

func rootPid(e *proto.Event) int {
	if e.Vigil.Root != nil {
		return e.Vigil.Root.Pid
	}
	return 0
}

// treeKey identifies an agent tree across pid reuse as far as the line allows.
func treeKey(e *proto.Event) string {
	var host, boot string
	if e.Host != nil {
		host, boot = e.Host.Name, e.Host.BootID
	}
	return host + "\x00" + boot + "\x00" + strconv.Itoa(e.Vigil.Root.Pid) + "\x00" + e.Vigil.Root.EntityID
}

// procKey identifies a process: its entity id, else its pid.
func procKey(p *proto.Process) string {
	if p.EntityID != "" {
		return p.EntityID
	}
	return "pid:" + strconv.Itoa(p.Pid)
}

// Limits of the text rendering (the JSON keeps everything).
const (
	textCommandRunes = 240
	textPromptRunes  = 400
)

// WriteText writes the workflow for a terminal, in plain ASCII apart from what the data holds:
// a header line, then each prompt with its tool calls and, beneath each call, what the kernel
// saw bound to it; then what no tool call explains, the files changed and the untrusted
// telemetry. Command lines and prompts are shortened in the text (marked ...), never in JSON.
// The layout is stable: tests compare it byte for byte.
func (w Workflow) WriteText(out io.Writer) error {
	b := bufio.NewWriter(out)
	b.WriteString(w.header())
	b.WriteString("\n")
	if len(w.Lost) > 0 {
		keys := make([]string, 0, len(w.Lost))
		for k := range w.Lost {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, w.Lost[k]))
		}
		fmt.Fprintf(b, "WARNING: the sensor lost events during this workflow (%s): the record may be incomplete\n", strings.Join(parts, ", "))
	}
	if w.Kind != WorkflowUntrusted {
		fmt.Fprintf(b, "Summary: %s\n", w.summary())
		for _, p := range w.Prompts {
			writePrompt(b, p)
		}
		b.WriteString("Not explained by any tool call:")
		if w.Unexplained.empty() {
			b.WriteString(" nothing\n")
		} else {
			b.WriteString("\n")
			writeActivity(b, "     ", w.Unexplained, true)
		}
		b.WriteString("Files changed:")
		if len(w.FilesChanged) == 0 {
			b.WriteString(" none\n")
		} else {
			b.WriteString("\n")
			for _, f := range w.FilesChanged {
				fmt.Fprintf(b, "  %s\n", f)
			}
		}
	}
	if len(w.UntrustedTelemetry) > 0 {
		if w.Kind == WorkflowUntrusted {
			b.WriteString("Lines from processes outside every agent tree (never bound):\n")
		} else {
			b.WriteString("Untrusted telemetry claiming this session (senders outside every agent tree, never bound):\n")
		}
		for _, u := range w.UntrustedTelemetry {
			writeUntrusted(b, u)
		}
	}
	return b.Flush()
}

func (w Workflow) header() string {
	var parts []string
	switch {
	case w.Agent != "" && w.Host != "":
		parts = append(parts, w.Agent+" on host "+w.Host)
	case w.Agent != "":
		parts = append(parts, w.Agent)
	case w.Host != "":
		parts = append(parts, "host "+w.Host)
	}
	switch {
	case w.Repository != "" && w.WorkingDirectory != "":
		parts = append(parts, fmt.Sprintf("repo %s (cwd %s)", w.Repository, w.WorkingDirectory))
	case w.WorkingDirectory != "":
		parts = append(parts, "cwd "+w.WorkingDirectory)
	}
	if w.Kind == WorkflowSession && len(w.RootPids) > 0 {
		pids := make([]string, len(w.RootPids))
		for i, p := range w.RootPids {
			pids[i] = strconv.Itoa(p)
		}
		label := "root pid "
		if len(pids) > 1 {
			label = "root pids "
		}
		parts = append(parts, label+strings.Join(pids, ", "))
	}
	if !w.Start.IsZero() {
		parts = append(parts, timeSpan(w.Start, w.End))
	}
	if len(parts) == 0 {
		return w.Title
	}
	return w.Title + " - " + strings.Join(parts, ", ")
}

// summary counts what the workflow holds, in one line.
func (w Workflow) summary() string {
	var calls, unapproved, failed int
	var bound Activity
	for _, p := range w.Prompts {
		for _, c := range p.ToolCalls {
			calls++
			if c.Approval == ApprovalNone {
				unapproved++
			}
			if c.Success != nil && !*c.Success {
				failed++
			}
			bound.Processes = append(bound.Processes, c.Processes...)
			for _, f := range c.FilesRead {
				if !slices.ContainsFunc(bound.FilesRead, func(g WorkflowFile) bool { return g.Path == f.Path }) {
					bound.FilesRead = append(bound.FilesRead, f)
				}
			}
			bound.Connections = append(bound.Connections, c.Connections...)
		}
	}
	parts := []string{plural(len(w.Prompts), "prompt")}
	s := plural(calls, "tool call")
	var notes []string
	if unapproved > 0 {
		notes = append(notes, fmt.Sprintf("%d with no approval recorded", unapproved))
	}
	if failed > 0 {
		notes = append(notes, fmt.Sprintf("%d failed", failed))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	parts = append(parts, s)
	parts = append(parts, bound.counts()...)
	parts = append(parts, plural(len(w.FilesChanged), "file")+" changed")
	s = strings.Join(parts, ", ")
	if !w.Unexplained.empty() {
		s += "; not explained: " + strings.Join(w.Unexplained.counts(), ", ")
	}
	if n := len(w.UntrustedTelemetry); n > 0 {
		s += "; " + plural(n, "untrusted telemetry line")
	}
	return s
}

// counts names the processes, files read (and how many look secret) and destinations of a;
// the files written are in the workflow's files changed.
func (a Activity) counts() []string {
	var out []string
	if n := len(a.Processes); n > 0 {
		out = append(out, plural(n, "process"))
	}
	if n := len(a.FilesRead); n > 0 {
		s := plural(n, "file") + " read"
		secrets := 0
		for _, f := range a.FilesRead {
			if f.Secret {
				secrets++
			}
		}
		if secrets > 0 {
			s += fmt.Sprintf(" (%d secret-looking)", secrets)
		}
		out = append(out, s)
	}
	if n := len(a.FilesWritten); n > 0 && len(out) == 0 {
		out = append(out, plural(n, "file")+" written")
	}
	if n := len(a.Connections); n > 0 {
		out = append(out, plural(n, "destination"))
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "s") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func timeSpan(start, end time.Time) string {
	start, end = start.UTC(), end.UTC()
	s := start.Format("2006-01-02 15:04:05")
	switch {
	case end.Format("15:04:05") == start.Format("15:04:05") && end.Sub(start) < time.Second:
	case end.Format("2006-01-02") == start.Format("2006-01-02"):
		s += "-" + end.Format("15:04:05")
	default:
		s += " - " + end.Format("2006-01-02 15:04:05")
	}
	return s + " UTC"
}

func writePrompt(b *bufio.Writer, p WorkflowPrompt) {
	fmt.Fprintf(b, "Prompt %d at %s", p.Index, p.Time.UTC().Format("15:04:05"))
	if p.ID != "" {
		fmt.Fprintf(b, " (id %s)", p.ID)
	} else {
		b.WriteString(" (no prompt id)")
	}
	if p.Text != "" {
		fmt.Fprintf(b, ": %s\n", quoteText(clip(p.Text, textPromptRunes)))
	} else {
		b.WriteString(": (prompt text not recorded)\n")
	}
	if len(p.ToolCalls) == 0 {
		b.WriteString("  (no tool calls)\n")
	}
	for _, c := range p.ToolCalls {
		fmt.Fprintf(b, "  %d. %s  %s  %s", c.Index, cmp.Or(c.Name, "(unknown tool)"), c.CallID, c.Approval)
		if c.Success != nil {
			if *c.Success {
				b.WriteString("  ok")
			} else {
				b.WriteString("  FAILED")
			}
		}
		if c.DurationMs > 0 {
			b.WriteString("  " + duration(c.DurationMs))
		}
		if !c.Reported {
			b.WriteString("  (no agent.tool_call line: seen only in kernel events)")
		}
		b.WriteString("\n")
		if c.Command != "" {
			fmt.Fprintf(b, "     $ %s\n", oneLine(c.Command, textCommandRunes))
		}
		for _, f := range c.FilePaths {
			fmt.Fprintf(b, "     file  %s\n", f)
		}
		if c.Activity.empty() {
			b.WriteString("     (no kernel activity bound to this call)\n")
		} else {
			writeActivity(b, "     ", c.Activity, false)
		}
		if len(c.Evidence) > 0 {
			fmt.Fprintf(b, "     bound by %s\n", strings.Join(c.Evidence, ", "))
		}
	}
}

func (a Activity) empty() bool {
	return len(a.Processes) == 0 && len(a.FilesRead) == 0 && len(a.FilesWritten) == 0 && len(a.Connections) == 0
}

// writeActivity writes one line per item under a 6-column label (ran, read, wrote, net);
// byWho adds the process (and parent) to each line, for activity outside any tool call.
func writeActivity(b *bufio.Writer, indent string, a Activity, byWho bool) {
	label := func(i int, l string) string {
		if i > 0 {
			l = ""
		}
		return fmt.Sprintf("%s%-6s", indent, l)
	}
	for i, p := range a.Processes {
		b.WriteString(label(i, "ran"))
		b.WriteString(oneLine(commandLine(p), textCommandRunes))
		fmt.Fprintf(b, " (pid %d", p.Pid)
		if byWho && p.ParentPid != 0 {
			fmt.Fprintf(b, ", parent %d", p.ParentPid)
		}
		b.WriteString(")")
		if p.ExitCode != nil {
			fmt.Fprintf(b, " -> exit %d", *p.ExitCode)
		}
		b.WriteString("\n")
	}
	files := func(l string, list []WorkflowFile) {
		for i, f := range list {
			b.WriteString(label(i, l))
			b.WriteString(f.Path)
			if f.Secret {
				b.WriteString("  [secret-looking]")
			}
			var flags []string
			if f.Create {
				flags = append(flags, "O_CREAT")
			}
			if f.Truncate {
				flags = append(flags, "O_TRUNC")
			}
			if len(flags) > 0 {
				fmt.Fprintf(b, "  (%s)", strings.Join(flags, "|"))
			}
			if f.TempPath != "" {
				fmt.Fprintf(b, "  (atomic write via %s)", path.Base(f.TempPath))
			}
			if f.Failed {
				fmt.Fprintf(b, "  FAILED errno %d", f.Errno)
			}
			if byWho {
				fmt.Fprintf(b, "  by %s pid %d", cmp.Or(f.Process, "?"), f.Pid)
			}
			b.WriteString("\n")
		}
	}
	files("read", a.FilesRead)
	files("wrote", a.FilesWritten)
	for i, c := range a.Connections {
		b.WriteString(label(i, "net"))
		b.WriteString(c.Address)
		switch c.Outcome {
		case proto.OutcomeSuccess:
			b.WriteString(" ok")
		case proto.OutcomeFailure:
			fmt.Fprintf(b, " FAILED errno %d", c.Errno)
		}
		if c.Count > 1 {
			fmt.Fprintf(b, " (x%d)", c.Count)
		}
		if byWho {
			fmt.Fprintf(b, "  by %s pid %d", cmp.Or(c.Process, "?"), c.Pid)
		}
		b.WriteString("\n")
	}
}

func writeUntrusted(b *bufio.Writer, u UntrustedTelemetry) {
	fmt.Fprintf(b, "  %s  sender pid %d", u.Time.UTC().Format("15:04:05"), u.SenderPid)
	if u.Transport != "" {
		fmt.Fprintf(b, " via %s", u.Transport)
	}
	if u.ClaimedSessionID != "" {
		fmt.Fprintf(b, " claimed session %s", u.ClaimedSessionID)
	} else {
		b.WriteString(" claimed no session")
	}
	var claim []string
	if u.Agent != "" {
		claim = append(claim, u.Agent)
	}
	if u.ToolName != "" {
		claim = append(claim, u.ToolName)
	}
	if u.Command != "" {
		claim = append(claim, "$ "+oneLine(u.Command, textCommandRunes))
	}
	claim = append(claim, u.FilePaths...)
	if u.PromptText != "" {
		claim = append(claim, "prompt "+quoteText(clip(u.PromptText, textPromptRunes)))
	}
	if len(claim) > 0 {
		b.WriteString(": " + strings.Join(claim, " "))
	}
	b.WriteString("\n")
}

// commandLine is the executable followed by argv[1:], shell-quoted where needed.
func commandLine(p WorkflowProcess) string {
	words := make([]string, 0, len(p.Args)+1)
	exe := p.Executable
	if exe == "" && len(p.Args) > 0 {
		exe = p.Args[0]
	}
	words = append(words, shellQuote(cmp.Or(exe, p.Name, "?")))
	if len(p.Args) > 1 {
		for _, a := range p.Args[1:] {
			words = append(words, shellQuote(a))
		}
	}
	return strings.Join(words, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=+@%^", r) || r > 0x7f) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// oneLine shows newlines and tabs escaped and shortens to n runes.
func oneLine(s string, n int) string {
	s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
	return clip(s, n)
}

func clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "..."
}

// quoteText double-quotes s for one line: backslash, quote and control characters escaped,
// other characters (non-ASCII included) kept.
func quoteText(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

func duration(ms int64) string {
	switch {
	case ms < 1000:
		return fmt.Sprintf("%dms", ms)
	case ms < 60_000:
		return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s"
	}
	d := time.Duration(ms) * time.Millisecond
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}
