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
	r.Agent, r.SessionID, r.ToolName, r.CallID = genAINames(e.GenAI)
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

// genAINames returns gen_ai.agent.name, gen_ai.conversation.id, gen_ai.tool.name and
// gen_ai.tool.call.id, each "" when absent.
func genAINames(g *GenAI) (agent, session, tool, call string) {
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
