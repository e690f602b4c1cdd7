package workflow

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sensor/vigil/correlate/startup"
	"github.com/vigil-sensor/vigil/proto"
)

// callAcc accumulates one tool call.
type callAcc struct {
	call     ToolCall
	promptID string
	acc      activityAcc
	order    int
}

// assemble builds one workflow from its lines, in time order; classes are classify's.
func assemble(kind, sid string, evs []*proto.Event, classes map[*proto.Event]lineClass) Workflow {
	w := Workflow{Kind: kind, SessionID: sid}
	if kind == KindSession {
		w.Title = "Session " + sid
	}
	prompts := map[string]*Prompt{}
	promptLine := map[string]bool{}
	calls := map[string]*callAcc{}
	var callOrder []*callAcc
	var unexplained activityAcc
	procs := map[string]*Process{}
	changed := map[string]bool{}
	var childCwd string

	promptFor := func(id string, t time.Time) *Prompt {
		p := prompts[id]
		if p == nil {
			p = &Prompt{ID: id, Time: t}
			prompts[id] = p
		}
		return p
	}
	callFor := func(id string) *callAcc {
		c := calls[id]
		if c == nil {
			c = &callAcc{call: ToolCall{CallID: id}, order: len(callOrder)}
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
		case proto.ActionSession:
			// The session record names the agent's working directory.
			if r, ok := proto.SessionRecordOf(e); ok && w.WorkingDirectory == "" {
				w.WorkingDirectory = r.Sender.Cwd
			}
			continue
		case proto.ActionAgentPrompt:
			r, _ := proto.PromptRecordOf(e)
			p := promptFor(r.PromptID, r.Time)
			if !promptLine[p.ID] {
				p.Time, promptLine[p.ID] = r.Time, true
			}
			p.Text = cmp.Or(r.Text, p.Text)
			continue
		case proto.ActionAgentToolCall:
			r, _ := proto.ToolCallRecordOf(e)
			if r.CallID == "" {
				continue
			}
			callFor(r.CallID).merge(r)
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
			rec := &Process{
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
			class := classes[e]
			if class.startup != "" && !class.secret && !writeAccess(e.File) {
				acc.startup.add(e, class)
				continue
			}
			f := fileOf(e, class.secret)
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
	slices.SortFunc(w.Prompts, func(a, b Prompt) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	for i := range w.Prompts {
		w.Prompts[i].Index = i + 1
	}
	w.Unexplained = unexplained.activity()
	return normalize(w)
}

// merge folds a tool-call record into the call; a later record's non-empty fields win.
func (c *callAcc) merge(r proto.ToolCallRecord) {
	c.call.Reported = true
	c.call.Name = cmp.Or(r.ToolName, c.call.Name)
	c.promptID = cmp.Or(r.PromptID, c.promptID)
	c.call.Decision = cmp.Or(r.Decision, c.call.Decision)
	c.call.DecisionSource = cmp.Or(r.DecisionSource, c.call.DecisionSource)
	c.call.Command = cmp.Or(r.Command, c.call.Command)
	if len(r.FilePaths) > 0 {
		c.call.FilePaths = r.FilePaths
	}
	if r.Success != nil {
		ok := *r.Success
		c.call.Success = &ok
	}
	start := r.Time
	if r.DurationMs > 0 {
		c.call.DurationMs = r.DurationMs
		start = start.Add(-time.Duration(r.DurationMs) * time.Millisecond)
	}
	if c.call.Time.IsZero() || start.Before(c.call.Time) {
		c.call.Time = start
	}
}

// activityAcc accumulates an Activity, deduplicating files and connections.
type activityAcc struct {
	procs         []*Process
	startup       startupSet
	read, written fileSet
	conns         connSet
}

func (a *activityAcc) activity() Activity {
	out := Activity{
		Processes:    make([]Process, 0, len(a.procs)),
		StartupReads: a.startup.list(),
		FilesRead:    a.read.list(),
		FilesWritten: a.written.list(),
		Connections:  make([]Connection, 0, len(a.conns.order)),
	}
	for _, p := range a.procs {
		out.Processes = append(out.Processes, *p)
	}
	for _, c := range a.conns.order {
		out.Connections = append(out.Connections, *c)
	}
	return out
}

// startupSet counts start-up reads per process image: entity id (else pid) and exec.
type startupSet struct {
	order  []*StartupReads
	byProc map[string]*StartupReads
}

func (s *startupSet) add(e *proto.Event, c lineClass) {
	key := procKey(e.Process) + "\x00" + strconv.FormatInt(c.exec.UnixNano(), 10)
	if c.exec.IsZero() {
		key = procKey(e.Process) + "\x00"
	}
	r := s.byProc[key]
	if r == nil {
		r = &StartupReads{Pid: e.Process.Pid, Process: e.Process.Name, EntityID: e.Process.EntityID, ExecTime: c.exec,
			Time: e.Timestamp, Kinds: map[startup.Kind]int{}}
		if s.byProc == nil {
			s.byProc = map[string]*StartupReads{}
		}
		s.byProc[key] = r
		s.order = append(s.order, r)
	}
	r.Total++
	r.Kinds[c.startup]++
}

func (s *startupSet) list() []StartupReads {
	if len(s.order) == 0 {
		return nil
	}
	out := make([]StartupReads, 0, len(s.order))
	for _, r := range s.order {
		out = append(out, *r)
	}
	return out
}

type fileSet struct {
	order []*File
	byKey map[string]*File
}

// add folds f into the entry of its path, or of its path and secret read: a secret read is
// listed apart from the other opens of its path (ssh reading ~/.ssh/id_rsa, then cat), so
// that its entry names the process and binding of the first secret read.
func (s *fileSet) add(f File) {
	key := f.Path
	if f.Secret {
		key += "\x00secret"
	}
	if cur := s.byKey[key]; cur != nil {
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
		s.byKey = map[string]*File{}
	}
	s.byKey[key] = &f
	s.order = append(s.order, &f)
}

func (s *fileSet) list() []File {
	out := make([]File, 0, len(s.order))
	for _, f := range s.order {
		out = append(out, *f)
	}
	return out
}

type connSet struct {
	order []*Connection
	byKey map[string]*Connection
}

func (s *connSet) add(c Connection) {
	key := c.Address + "\x00" + c.Outcome
	if cur := s.byKey[key]; cur != nil {
		cur.Count++
		return
	}
	if s.byKey == nil {
		s.byKey = map[string]*Connection{}
	}
	s.byKey[key] = &c
	s.order = append(s.order, &c)
}

// claudeTemp matches Claude Code's atomic-write temporary file: <file>.tmp.<pid>.<suffix>.
var claudeTemp = regexp.MustCompile(`^(.+)\.tmp\.([0-9]+)\.([0-9A-Za-z]+)$`)

// fileOf is the file of one open; secret says whether it is a secret read (classify).
func fileOf(e *proto.Event, secret bool) File {
	f := File{
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
	f.Secret = secret
	return f
}

func connectionOf(e *proto.Event) Connection {
	d := e.Destination
	c := Connection{
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
		w.Prompts = []Prompt{}
	}
	for i := range w.Prompts {
		if w.Prompts[i].ToolCalls == nil {
			w.Prompts[i].ToolCalls = []ToolCall{}
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
