package proto

import "time"

// The correlator's knowledge leaves it as typed records: each has one line form (an Event,
// encoded like every other line in JSON and msgpack), built by its Event method and read back
// by its ...Of function, so the mapping between a record's fields and the line's names has a
// single owner. Readers (vigil trace, a store, rules) use the ...Of functions instead of
// picking fields off lines themselves.

// BindingRecord says that a kernel line written earlier belongs to a tool call: telemetry that
// arrived after the line's hold ran out explained it. Its line (action binding, dataset
// vigil.correlate) supersedes the binding fields of the line it names; a later binding record
// for the same line, which only ever carries stronger evidence, supersedes an earlier one.
type BindingRecord struct {
	// Time is when the binding was made.
	Time time.Time
	// Sequence is the event.sequence of the bound kernel line (vigil.binds.sequence).
	Sequence uint64
	// Pid and EntityID are the bound line's process, so a reader can show the binding without
	// the original line.
	Pid      int
	EntityID string
	Agent    string
	// SessionID, PromptID, ToolName and CallID name what the line is bound to.
	SessionID string
	PromptID  string
	ToolName  string
	CallID    string
	// Binding and Confidence are the evidence (one of the Binding* constants) and its weight.
	Binding    string
	Confidence string
	// LateMs is Time minus the bound line's @timestamp, in milliseconds.
	LateMs int64
}

// Event is the record's line. event.sequence and host are set when it is written.
func (r BindingRecord) Event() *Event {
	e := &Event{
		Timestamp: r.Time.UTC(),
		Event:     EventMeta{Action: ActionBinding, Kind: "event", Dataset: DatasetCorrelate},
		Process:   &Process{Pid: r.Pid, EntityID: r.EntityID},
		GenAI:     &GenAI{},
		Vigil: Vigil{
			Correlation: Correlation{Binding: r.Binding, Confidence: r.Confidence},
			Binds:       &Binds{Sequence: r.Sequence},
			LateMs:      r.LateMs,
		},
	}
	if r.Agent != "" {
		e.GenAI.Agent = &GenAIAgent{Name: r.Agent}
	}
	if r.SessionID != "" {
		e.GenAI.Conversation = &GenAIConversation{ID: r.SessionID}
	}
	if r.ToolName != "" || r.CallID != "" {
		e.GenAI.Tool = &GenAITool{Name: r.ToolName}
		if r.CallID != "" {
			e.GenAI.Tool.Call = &GenAIToolCall{ID: r.CallID}
		}
	}
	if r.PromptID != "" {
		e.Vigil.Prompt = &PromptRef{ID: r.PromptID}
	}
	return e
}

// BindingRecordOf reads a binding record back from its line; false when e is not one.
func BindingRecordOf(e *Event) (BindingRecord, bool) {
	if e == nil || e.Event.Action != ActionBinding || e.Vigil.Binds == nil {
		return BindingRecord{}, false
	}
	r := BindingRecord{
		Time: e.Timestamp, Sequence: e.Vigil.Binds.Sequence,
		Binding: e.Vigil.Binding, Confidence: e.Vigil.Confidence, LateMs: e.Vigil.LateMs,
	}
	if e.Process != nil {
		r.Pid, r.EntityID = e.Process.Pid, e.Process.EntityID
	}
	r.Agent, r.SessionID, r.ToolName, r.CallID = GenAINames(e.GenAI)
	if e.Vigil.Prompt != nil {
		r.PromptID = e.Vigil.Prompt.ID
	}
	return r, true
}

// Apply re-attributes line, the kernel line the record names, as the record says: its
// session, tool call, prompt and evidence. The agent and process are the line's own.
func (r BindingRecord) Apply(line *Event) {
	if line.GenAI == nil {
		line.GenAI = &GenAI{}
	}
	if r.SessionID != "" {
		line.GenAI.Conversation = &GenAIConversation{ID: r.SessionID}
	}
	line.GenAI.Tool = &GenAITool{Name: r.ToolName, Call: &GenAIToolCall{ID: r.CallID}}
	if r.PromptID != "" {
		line.Vigil.Prompt = &PromptRef{ID: r.PromptID}
	}
	line.Vigil.Binding, line.Vigil.Confidence = r.Binding, r.Confidence
}

// GenAINames returns gen_ai.agent.name, gen_ai.conversation.id, gen_ai.tool.name and
// gen_ai.tool.call.id, each "" when absent.
func GenAINames(g *GenAI) (agent, session, tool, call string) {
	if g == nil {
		return "", "", "", ""
	}
	if g.Agent != nil {
		agent = g.Agent.Name
	}
	if g.Conversation != nil {
		session = g.Conversation.ID
	}
	if g.Tool != nil {
		tool = g.Tool.Name
		if g.Tool.Call != nil {
			call = g.Tool.Call.ID
		}
	}
	return agent, session, tool, call
}

// Sender is the process that sent an agent's telemetry, as the kernel's process table knows
// it. On every line about what an agent said (agent.*) and on session records it is
// process.pid, .name, .executable and .working_directory, vigil.root.pid, and the transport
// (vigil.source and vigil.telemetry.transport, which always agree); vigil.telemetry.sender_pid
// is process.pid.
type Sender struct {
	Pid        int
	Name       string
	Executable string
	Cwd        string
	RootPid    int
	// Transport is otlp_http, otlp_grpc or hook.
	Transport string
}

// Line is a trusted agent line from s: action, the agent, the session and prompt it names
// ("" for none) and the time the agent gave it. The records' Event methods fill the rest;
// agent.api_request lines are built from it directly.
func (s Sender) Line(action, agent, sessionID, promptID string, t time.Time) *Event {
	e := &Event{
		Timestamp: t.UTC(),
		Event:     EventMeta{Action: action, Kind: "event", Dataset: DatasetAgent},
		Process:   &Process{Pid: s.Pid, Name: s.Name, Executable: s.Executable, WorkingDirectory: s.Cwd},
		GenAI:     &GenAI{Agent: &GenAIAgent{Name: agent}},
		Vigil: Vigil{
			Root:      &Root{Pid: s.RootPid},
			Source:    s.Transport,
			Telemetry: &Telemetry{Transport: s.Transport, SenderPid: s.Pid, Trusted: true},
		},
	}
	if sessionID != "" {
		e.GenAI.Conversation = &GenAIConversation{ID: sessionID}
	}
	if promptID != "" {
		e.Vigil.Prompt = &PromptRef{ID: promptID}
	}
	return e
}

// senderOf reads the Sender back from a line built by Line.
func senderOf(e *Event) Sender {
	var s Sender
	if p := e.Process; p != nil {
		s.Pid, s.Name, s.Executable, s.Cwd = p.Pid, p.Name, p.Executable, p.WorkingDirectory
	}
	if e.Vigil.Root != nil {
		s.RootPid = e.Vigil.Root.Pid
	}
	if t := e.Vigil.Telemetry; t != nil {
		s.Transport = t.Transport
		if s.Pid == 0 {
			s.Pid = t.SenderPid
		}
	}
	return s
}

// SessionRecord is the first sight of an agent session: the first trusted telemetry naming it
// (or naming it from a new agent tree, when the session was resumed in another process).
// Its line is action session, dataset vigil.correlate.
type SessionRecord struct {
	// Time is the agent's time of that first record.
	Time      time.Time
	Agent     string
	SessionID string
	// Sender is the process that sent it; its Cwd is the agent's working directory and its
	// RootPid the root of the session's agent tree.
	Sender Sender
	// RootEntityID is the entity id of that root, when the process table knows it.
	RootEntityID string
}

// Event is the record's line. event.sequence and host are set when it is written.
func (r SessionRecord) Event() *Event {
	e := r.Sender.Line(ActionSession, r.Agent, r.SessionID, "", r.Time)
	e.Event.Dataset = DatasetCorrelate
	e.Vigil.Source = ""
	e.Vigil.Root.EntityID = r.RootEntityID
	return e
}

// SessionRecordOf reads a session record back from its line; false when e is not one.
func SessionRecordOf(e *Event) (SessionRecord, bool) {
	if e == nil || e.Event.Action != ActionSession {
		return SessionRecord{}, false
	}
	r := SessionRecord{Time: e.Timestamp, Sender: senderOf(e)}
	r.Agent, r.SessionID, _, _ = GenAINames(e.GenAI)
	if e.Vigil.Root != nil {
		r.RootEntityID = e.Vigil.Root.EntityID
	}
	return r, true
}

// PromptRecord is a user's prompt (request) in a session. Its line is agent.prompt.
type PromptRecord struct {
	Time      time.Time
	Agent     string
	SessionID string
	// PromptID is Claude's prompt.id, or for Codex the turn's trace id or turn id.
	PromptID string
	// Text is the prompt, redacted; empty when the agent does not export it.
	Text   string
	Sender Sender
}

// Event is the record's line. event.sequence and host are set when it is written.
func (r PromptRecord) Event() *Event {
	e := r.Sender.Line(ActionAgentPrompt, r.Agent, r.SessionID, r.PromptID, r.Time)
	if r.Text != "" {
		if e.Vigil.Prompt == nil {
			e.Vigil.Prompt = &PromptRef{}
		}
		e.Vigil.Prompt.Text = r.Text
	}
	return e
}

// PromptRecordOf reads a prompt record back from its line; false when e is not one.
func PromptRecordOf(e *Event) (PromptRecord, bool) {
	if e == nil || e.Event.Action != ActionAgentPrompt {
		return PromptRecord{}, false
	}
	r := PromptRecord{Time: e.Timestamp, Sender: senderOf(e)}
	r.Agent, r.SessionID, _, _ = GenAINames(e.GenAI)
	if p := e.Vigil.Prompt; p != nil {
		r.PromptID, r.Text = p.ID, p.Text
	}
	return r, true
}

// ToolCallRecord is one tool call as the agent reported it: what it was asked to run, who
// approved it, how it ended. Its line is agent.tool_call, written when the result arrives
// (or at shutdown without one).
type ToolCallRecord struct {
	// Time is the result's time (the decision's, for a call written without its result).
	Time      time.Time
	Agent     string
	SessionID string
	PromptID  string
	CallID    string
	ToolName  string
	// Decision and DecisionSource are the approval: Claude accept/reject by config, user or
	// hook; Codex approved/denied by Config or User.
	Decision       string
	DecisionSource string
	// Success is nil when the agent did not report it; the line's event.outcome says the same
	// (success, failure, unknown).
	Success    *bool
	DurationMs int64
	// Command is a shell tool's command as the agent shows it, redacted; FilePaths are the
	// files a file tool touches.
	Command   string
	FilePaths []string
	Sender    Sender
}

// Event is the record's line. event.sequence and host are set when it is written.
func (r ToolCallRecord) Event() *Event {
	e := r.Sender.Line(ActionAgentToolCall, r.Agent, r.SessionID, r.PromptID, r.Time)
	e.Event.Outcome = OutcomeUnknown
	if r.Success != nil {
		e.Event.Outcome = map[bool]string{true: OutcomeSuccess, false: OutcomeFailure}[*r.Success]
	}
	e.GenAI.Tool = &GenAITool{Name: r.ToolName, Call: &GenAIToolCall{ID: r.CallID}}
	e.Vigil.Tool = &ToolCall{
		Decision: r.Decision, DecisionSource: r.DecisionSource, Success: r.Success, DurationMs: r.DurationMs,
		Command: r.Command, FilePaths: r.FilePaths,
	}
	return e
}

// ToolCallRecordOf reads a tool-call record back from its line; false when e is not one.
func ToolCallRecordOf(e *Event) (ToolCallRecord, bool) {
	if e == nil || e.Event.Action != ActionAgentToolCall {
		return ToolCallRecord{}, false
	}
	r := ToolCallRecord{Time: e.Timestamp, Sender: senderOf(e)}
	r.Agent, r.SessionID, r.ToolName, r.CallID = GenAINames(e.GenAI)
	if e.Vigil.Prompt != nil {
		r.PromptID = e.Vigil.Prompt.ID
	}
	if t := e.Vigil.Tool; t != nil {
		r.Decision, r.DecisionSource, r.Success, r.DurationMs = t.Decision, t.DecisionSource, t.Success, t.DurationMs
		r.Command, r.FilePaths = t.Command, t.FilePaths
	}
	return r, true
}
