package ocsf

import "github.com/vigil-sensor/vigil/proto"

// messageContext is the ai_operation profile's message_context: the agent session a record
// belongs to. OCSF 1.8.0 defines its uid as "a session ID, conversation ID ... that allows
// correlation of messages within the same context" and its application as the client
// application that initiates the requests: the agent.
type messageContext struct {
	UID         string
	Application application
}

type application struct {
	Name string
}

var (
	sessionPath      = pathsOf("gen_ai.conversation.id")
	toolDurationPath = pathsOf("vigil.tool.duration_ms")
)

// messageContext is the agent and session of the record (gen_ai.agent.name,
// gen_ai.conversation.id); nil without an agent name, which the object requires (one of
// application and service, and of the application's name and uid).
//
// OCSF 1.9 (not released; ocsf-schema main at a5cfc68e) adds an ai_agent object to the
// profile, the better home for the agent; it is left out because a 1.8.0 consumer would reject
// it: docs/ocsf.md.
func (m *mapping) messageContext() *messageContext {
	agent, session, _, _ := proto.GenAINames(m.e.GenAI)
	if agent == "" {
		return nil
	}
	m.use(agentNamePath)
	c := &m.parts.context
	*c = messageContext{Application: application{Name: agent}}
	if session != "" {
		c.UID = session
		m.use(sessionPath)
	}
	return c
}

// baseEvent maps the records OCSF has no class for, what the agents and the correlator say
// (prompt, tool call, API request, session, binding, untrusted telemetry), inventory items
// and loss reports, to Base Event (0) with activity Other and the native action as
// activity_name. The sender process is the actor; the rest is in unmapped.
func (m *mapping) baseEvent() {
	e, o := m.e, &m.out
	o.Actor = m.actorOf(m.processOf())
	if t := e.Vigil.Tool; t != nil && t.DurationMs != 0 {
		// A tool call's record covers the call: OCSF duration is "the amount of time the
		// event covers", in milliseconds.
		m.parts.duration = t.DurationMs
		o.Duration = &m.parts.duration
		m.use(toolDurationPath)
	}
	m.classify(classBase, activityOther, e.Event.Action)
}
