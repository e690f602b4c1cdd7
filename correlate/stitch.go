package correlate

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// TelemetryBatch is agent telemetry with its sender as the kernel sees it: a batch from the
// OTLP receiver or the hook socket.
type TelemetryBatch struct {
	Events    []proto.AgentEvent
	Transport string // otlp_http, otlp_grpc or hook
	SenderPid int    // 0 when the sender could not be identified
	// SenderStartBootNs is the sender's start time (ns since boot) as seen when its
	// connection was resolved, 0 when unknown. When set, the process table's entry for
	// SenderPid must be that same process (same start tick) to vouch for the batch: a
	// process that took an exited agent's pid does not inherit its trust.
	SenderStartBootNs uint64
}

// StitcherOptions configure the Stitcher.
type StitcherOptions struct {
	// Hold is how long a kernel event waits for late telemetry before it is bound and
	// written. Claude exports every 5 s by default, other agents up to 60 s.
	Hold time.Duration
	// MaxHeld bounds the events held; past it the oldest are bound early (counted).
	MaxHeld int
	// MaxRemembered bounds the tool calls, spans and process bindings remembered; the oldest
	// generation is forgotten when it is reached (counted).
	MaxRemembered int
	// Lookup is the kernel's view of a process (the process table): telemetry is trusted
	// only when its sender is a live or recently exited process of a tracked agent tree.
	Lookup func(pid int) (sensor.ProcessInfo, bool)
	// Redact is applied to prompt and command text as AddTelemetry takes it, before anything
	// else sees it.
	Redact func(string) string
	// IsAgent says whether a process is an agent itself (its executable or script matched the
	// catalog), not merely a process of an agent tree. OTLP is trusted only from agent
	// processes: a tool shell in the tree posting OTLP could otherwise invent tool calls and
	// bind its own processes to them. Hook calls come from `vigil hook` processes the agent
	// starts: HookTrust judges them. Nil trusts every process of a tree.
	IsAgent func(sensor.ProcessInfo) bool
	// HookTrust decides whether a hook call's sender is the agent's own hook invocation
	// rather than, say, a tool shell running `vigil hook` (see HookTrust). A refused call's
	// events become untrusted lines. Nil trusts every hook sender of an agent tree.
	HookTrust *HookTrust
	// VerifyWait is how long telemetry from a sender the process table does not know yet
	// waits for it: a hook process connects within milliseconds of its exec, before its exec
	// event has come through the ring buffer. Past it the sender is untrusted.
	VerifyWait time.Duration
	// Late is how long a kernel line written unbound (or bound by its time window alone)
	// stays bindable after its hold: telemetry arriving within it that binds the line with
	// more confidence produces a binding record naming the line. 0 disables late binding.
	Late time.Duration
	// MaxLate bounds the lines kept bindable; past it the oldest are forgotten (counted).
	// Late binding needs both Late and MaxLate.
	MaxLate int
	// ToolBoundary, when set, is called for each batch that reports a tool-call start
	// (decision) or end (result), as it arrives: the kernel source ends its merge runs there
	// (sensor.MergingSource), so that no merged open line spans two tool calls. Hooks arrive
	// before the tool runs and after it ends, but their sender is often verified only once
	// its exec has come through the ring, so the call does not wait for the verdict: a
	// sender outside every agent tree can at worst end runs early (more lines, none lost).
	ToolBoundary func()
}

// StitcherStats are the stitcher's counters.
type StitcherStats struct {
	Held          int
	Released      uint64
	EarlyReleased uint64 // released before Hold because MaxHeld was reached
	Bindings      map[string]uint64
	Telemetry     uint64 // agent events accepted from trusted senders
	Untrusted     uint64 // agent events from senders outside every agent tree
	// UntrustedSuppressed counts untrusted events past their sender's rate, summarised
	// instead of written one by one.
	UntrustedSuppressed uint64
	// SenderReused counts batches whose sender pid the table knows as another process (a
	// different start time): the pid was reused, so the table's process does not vouch.
	SenderReused uint64
	Forgotten    uint64 // remembered entries dropped by the MaxRemembered bound
	// Late binding: lines still bindable, binding records written, lines dropped by the
	// MaxLate bound before Late ran out, and lines whose Late ran out unbound.
	LateKept      int
	LateBound     uint64
	LateForgotten uint64
	LateExpired   uint64
	// TelemetrySeen is, per agent (the catalog name of the sender's tree), when the stitcher
	// last took a trusted event of it: an agent running with its telemetry off shows as a
	// time that stops moving.
	TelemetrySeen map[string]time.Time
}

// toolCall is what the agents said about one tool call.
type toolCall struct {
	id        string
	agent     string
	session   string
	promptKey string
	name      string
	decision  string
	source    string
	success   *bool
	duration  int64
	command   string   // redacted once, when first known: matched against every unkeyed exec
	words     []string // the command's words that can name a file (pathWords)
	files     []string
	pid       int       // the process the agent said it started for the call (stitch_toolpid.go)
	decided   time.Time // tool_decision (or the start of its span)
	finished  time.Time // tool_result (or the end of its span)
	reported  bool      // its agent.tool_call line was written
	// transport and senderPid are those of the last record about the call, for its line.
	transport string
	senderPid int
}

// window is the time the call ran, padded a little: the agents' millisecond timestamps and
// the kernel's clock are the same clock but the call's first exec lands a few ms after the
// decision and its last exit a few ms before the result.
func (c *toolCall) window() (time.Time, time.Time, bool) {
	if c.decided.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	end := c.finished
	if end.IsZero() {
		end = c.decided.Add(10 * time.Minute) // still running when the hold ran out
	}
	return c.decided.Add(-windowSlack), end.Add(windowSlack), true
}

const windowSlack = 50 * time.Millisecond

// maxCallsPerSession bounds the calls a session keeps for window matching; older calls are
// long finished and can no longer hold a new event.
const maxCallsPerSession = 1000

// maxPromptsPerSession bounds the prompts a session keeps to name the request running when
// an event no call explains happened; a long-lived session would otherwise grow forever.
const maxPromptsPerSession = 1000

type prompt struct {
	key  string
	at   time.Time
	text string
}

type session struct {
	id    string
	agent string
	// root is the agent root whose verified sender first spoke for the session: another
	// tree claiming the same session is not believed.
	root    int
	prompts []prompt
	calls   []*toolCall // in decision order
	// agentPids are the processes that sent the session's telemetry: in-process tools
	// (Read, Write, Edit, apply_patch) open files from them.
	agentPids map[int]bool
}

// binding is what a process was bound to; its children inherit it.
type binding struct {
	call       *toolCall
	how        string
	confidence string
}

type unverifiedBatch struct {
	b       TelemetryBatch
	arrived time.Time
}

// agentOut is an agent line whose prompt id is settled when it is written.
type agentOut struct {
	e   *proto.Event
	key string // the prompt it names, unresolved
}

type held struct {
	e       *proto.Event
	arrived time.Time
}

// lateLine is a kernel line written unbound or bound by its window alone, kept so that
// telemetry arriving after its hold can still bind it. e is the line as written: the pipeline
// has numbered it (event.sequence) before the next Release (sensor.Stage's contract), and
// nothing changes it any more.
type lateLine struct {
	e       *proto.Event
	written time.Time // when Release handed it out
	rank    int       // confidenceRank of the binding it was written (or last re-bound) with
}

// Stitcher binds kernel events to the session, prompt and tool call that caused them, using
// the join keys the agents publish (TRACEPARENT, CODEX_TOOL_CALL_ID, session ids), then the
// command text or file path inside a call's window, then the window alone, and says which it
// used. Kernel events are held for Hold so that telemetry, which arrives in batches seconds
// later, is there when they are bound.
type Stitcher struct {
	o StitcherOptions

	mu         sync.Mutex
	held       []held
	unverified []unverifiedBatch
	// untrusted holds the rate of each sender of untrusted telemetry (stitch_untrusted.go).
	untrusted   map[untrustedKey]*untrustedSender
	out         []agentOut // agent lines ready to write
	sessions    generations[string, *session]
	rootSession generations[int, string] // agent root pid → session, from verified senders
	calls       generations[string, *toolCall]
	spans       generations[string, string]   // tool span id → its call id (what a TRACEPARENT names)
	turns       generations[string, string]   // Codex turn trace id → turn id
	procs       generations[string, *binding] // process entity id → its binding
	promptIDs   generations[string, string]   // prompt key → the id written for it
	agents      generations[string, bool]     // process entity id → whether it is an agent image (agentOwn)
	toolPids    generations[int, *toolCall]   // pid the agent named for a call → the call
	batches     generations[string, []string] // span holding a batch of calls → their ids (stitch_batch.go)
	pending     []pendingResult               // results naming no call yet, oldest first
	late        []lateLine                    // oldest first
	lateDirty   bool                          // telemetry absorbed since the late lines were last tried
	stats       StitcherStats
}

// NewStitcher applies defaults: the hold and the held-events bound of the embedded
// default.yaml (one source of truth), 100k remembered entries.
func NewStitcher(o StitcherOptions) *Stitcher {
	if o.Hold <= 0 || o.MaxHeld <= 0 {
		d := sensor.DefaultConfig().Correlate
		if o.Hold <= 0 {
			o.Hold = time.Duration(d.HoldSeconds) * time.Second
		}
		if o.MaxHeld <= 0 {
			o.MaxHeld = d.MaxHeld
		}
	}
	if o.MaxRemembered <= 0 {
		o.MaxRemembered = 100_000
	}
	if o.Redact == nil {
		o.Redact = sensor.RedactString
	}
	if o.VerifyWait <= 0 {
		o.VerifyWait = 2 * time.Second
	}
	s := &Stitcher{
		o:         o,
		stats:     StitcherStats{Bindings: map[string]uint64{}, TelemetrySeen: map[string]time.Time{}},
		untrusted: map[untrustedKey]*untrustedSender{},
	}
	for _, g := range []interface{ init(int, *uint64) }{&s.sessions, &s.rootSession, &s.calls, &s.spans, &s.turns, &s.procs, &s.promptIDs, &s.agents, &s.toolPids, &s.batches} {
		g.init(o.MaxRemembered, &s.stats.Forgotten)
	}
	return s
}

// Push implements sensor.Stage: a kernel event waits until Hold has passed. It reports
// full once MaxHeld is exceeded by an eighth, so that under a flood the caller releases the
// overflow in batches instead of holding everything that arrives between its periodic
// releases (at 280k events/s, 100 ms of them were ~45 MiB of live heap).
func (s *Stitcher) Push(e *proto.Event) (full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, held{e: e, arrived: time.Now()})
	return len(s.held) > s.o.MaxHeld+max(s.o.MaxHeld/8, 1)
}

// Release implements sensor.Stage: the agent lines produced since the last call, then the
// kernel events held for at least Hold (all of them when all is set), each bound.
func (s *Stitcher) Release(now time.Time, all bool) []*proto.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A sender's batches are taken in the order they arrived: one still waiting keeps the
	// sender's later batches waiting behind it.
	waiting := s.unverified[:0]
	blocked := map[int]bool{}
	for _, u := range s.unverified {
		if blocked[u.b.SenderPid] || !s.verify(u.b, all || now.Sub(u.arrived) >= s.o.VerifyWait) {
			blocked[u.b.SenderPid] = true
			waiting = append(waiting, u)
		}
	}
	s.unverified = waiting
	s.summariseUntrusted(now, all)
	// A result naming no call waits for the spans that name it, as long as kernel events
	// wait for telemetry, and once more: both come in the agent's export batches.
	s.expireResults(now, 2*s.o.Hold, all)
	ready := make([]*proto.Event, 0, len(s.out))
	for _, o := range s.out {
		if o.key != "" && o.e.Vigil.Prompt != nil {
			o.e.Vigil.Prompt.ID = s.promptID(o.key)
		}
		ready = append(ready, o.e)
	}
	clear(s.out)
	s.out = s.out[:0]
	ready = s.bindLate(now, all, ready)
	n := 0
	for n < len(s.held) && (all || now.Sub(s.held[n].arrived) >= s.o.Hold || len(s.held)-n > s.o.MaxHeld) {
		if !all && now.Sub(s.held[n].arrived) < s.o.Hold {
			s.stats.EarlyReleased++
		}
		e := s.held[n].e
		s.bindByLaterExec(n)
		s.bind(e)
		s.keepLate(e, now)
		ready = append(ready, e)
		n++
	}
	rest := copy(s.held, s.held[n:])
	clear(s.held[rest:]) // released events must not stay reachable from the backing array
	s.held = s.held[:rest]
	s.stats.Released += uint64(n)
	if all {
		ready = append(ready, s.unreportedCalls()...)
	}
	return ready
}

// Stats returns a snapshot of the counters.
func (s *Stitcher) Stats() StitcherStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Held = len(s.held)
	st.LateKept = len(s.late)
	st.Bindings = make(map[string]uint64, len(s.stats.Bindings))
	for k, v := range s.stats.Bindings {
		st.Bindings[k] = v
	}
	st.TelemetrySeen = maps.Clone(s.stats.TelemetrySeen)
	return st
}

// AddTelemetry takes a batch from the OTLP receiver or the hook socket. A sender the kernel
// does not place in an agent tree cannot bind anything: its events become
// agent.untrusted_telemetry lines that keep the session they claimed apart.
func (s *Stitcher) AddTelemetry(b TelemetryBatch) {
	// Redaction is the expensive part of telemetry (a prompt can be 100 KiB): it runs here, on
	// the sender's goroutine, before the lock the pipeline's Push and Release take, so a flood
	// of telemetry never holds up kernel events. The caller's events are left as they were.
	b.Events = slices.Clone(b.Events)
	boundary := false
	for i := range b.Events {
		ae := &b.Events[i]
		ae.Prompt, ae.Command = s.o.Redact(ae.Prompt), s.o.Redact(ae.Command)
		boundary = boundary || ae.Kind == proto.KindToolDecision || ae.Kind == proto.KindToolResult
	}
	if boundary && s.o.ToolBoundary != nil {
		s.o.ToolBoundary()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Once the sender is known, a later batch would otherwise be taken at once, before the
	// earlier ones still waiting (a tool_result before its tool_decision and prompt).
	if s.senderWaiting(b.SenderPid) || !s.verify(b, false) {
		s.unverified = append(s.unverified, unverifiedBatch{b: b, arrived: time.Now()})
	}
}

// senderWaiting reports whether a batch of pid still waits for the process table.
func (s *Stitcher) senderWaiting(pid int) bool {
	for _, u := range s.unverified {
		if u.b.SenderPid == pid {
			return true
		}
	}
	return false
}

// verify absorbs a batch whose sender the kernel places in an agent tree and returns true.
// A sender it does not know yet is left for later (false), unless final: then, like a
// batch with no sender at all, its events become untrusted lines.
func (s *Stitcher) verify(b TelemetryBatch, final bool) bool {
	info, inTree := s.lookup(b.SenderPid)
	inTree = inTree && info.RootPid > 0
	if inTree && !sensor.SameStart(b.SenderStartBootNs, info.StartBootNs) {
		// The table's process with this pid is not the sender. The sender's own entry may
		// still be on its way, so wait until final; then its events are untrusted.
		if final {
			s.stats.SenderReused++
		}
		info, inTree = sensor.ProcessInfo{}, false
	}
	if !inTree && b.SenderPid > 0 && !final {
		return false
	}
	trusted := inTree && (b.Transport == TransportHook || s.o.IsAgent == nil || s.o.IsAgent(info))
	if trusted && b.Transport == TransportHook && s.o.HookTrust != nil {
		ok, wait, _ := s.o.HookTrust.Check(b.SenderPid, final)
		if wait {
			return false // the table has not shown the sender's chain yet
		}
		trusted = ok
	}
	for i := range b.Events {
		ae := &b.Events[i]
		if !trusted || !s.mayClaim(ae.SessionID, info.RootPid) {
			s.stats.Untrusted++
			if untrustedKinds(ae.Kind) && s.allowUntrusted(b, time.Now()) {
				s.emit(s.untrustedLine(ae, b), "")
			}
			continue
		}
		s.stats.Telemetry++
		if info.Agent != "" { // bounded: the catalog's names
			s.stats.TelemetrySeen[info.Agent] = time.Now()
		}
		s.lateDirty = true
		s.absorb(ae, b, info)
	}
	return true
}

// lookup is Lookup when there is one.
func (s *Stitcher) lookup(pid int) (sensor.ProcessInfo, bool) {
	if pid <= 0 || s.o.Lookup == nil {
		return sensor.ProcessInfo{}, false
	}
	return s.o.Lookup(pid)
}

// mayClaim: a session belongs to the agent tree whose verified sender spoke for it, as long
// as that tree's root lives; then another tree may take it over (`claude --resume`,
// `codex exec resume` continue a session in a new process tree).
func (s *Stitcher) mayClaim(sessionID string, root int) bool {
	if sessionID == "" {
		return true
	}
	ss, ok := s.sessions.get(sessionID)
	if !ok || ss.root == 0 || ss.root == root {
		return true
	}
	owner, known := s.lookup(ss.root)
	return !known || owner.Exited
}

func (s *Stitcher) sessionFor(id, agent string) *session {
	ss, ok := s.sessions.get(id)
	if !ok {
		ss = &session{id: id, agent: agent, agentPids: map[int]bool{}}
	}
	s.sessions.put(id, ss) // refreshed on use, so an active session is never forgotten
	return ss
}

func (s *Stitcher) absorb(ae *proto.AgentEvent, b TelemetryBatch, sender sensor.ProcessInfo) {
	var ss *session
	if ae.SessionID != "" {
		ss = s.sessionFor(ae.SessionID, ae.Agent)
		if ss.root != sender.RootPid { // first seen, or resumed in another tree
			root, _ := s.lookup(sender.RootPid)
			s.emit(proto.SessionRecord{Time: ae.Time, Agent: ae.Agent, SessionID: ae.SessionID,
				Sender: senderOf(b, sender), RootEntityID: root.EntityID}.Event(), "")
		}
		ss.root = sender.RootPid // verify checked that this tree may speak for it
		ss.agentPids[b.SenderPid] = true
		s.rootSession.put(sender.RootPid, ae.SessionID)
	}
	// Codex log records carry the turn's trace, spans also its id: run_turn (sent when the
	// turn ends) and every tool span (sent when the tool ends, often before the logs).
	if ae.TraceID != "" && ae.TurnID != "" {
		s.turns.put(ae.TraceID, ae.TurnID)
	}
	switch ae.Kind {
	case proto.KindUserPrompt:
		if ss == nil {
			return
		}
		p := prompt{key: ae.PromptID, at: ae.Time, text: ae.Prompt}
		ss.prompts = append(ss.prompts, p)
		if len(ss.prompts) > maxPromptsPerSession {
			ss.prompts = slices.Delete(ss.prompts, 0, len(ss.prompts)-maxPromptsPerSession)
		}
		s.emit(proto.PromptRecord{Time: ae.Time, Agent: ae.Agent, SessionID: ae.SessionID, PromptID: p.key, Text: p.text,
			Sender: senderOf(b, sender)}.Event(), p.key)
	case proto.KindToolDecision, proto.KindToolResult, proto.KindToolSpan, proto.KindToolHistory:
		// A tool span's id is what a TRACEPARENT propagated to the call's shell names
		// (Claude's claude_code.tool.execution).
		if ae.Kind == proto.KindToolSpan && ae.SpanID != "" && ae.ToolUseID != "" {
			s.spans.put(ae.SpanID, ae.ToolUseID)
		}
		if ae.Kind == proto.KindToolResult && ae.ToolUseID == "" && ae.SpanID != "" {
			if ae.ToolUseID = s.resolveResult(ae); ae.ToolUseID == "" {
				s.holdResult(ae, b, sender)
				return
			}
		}
		if ae.ToolUseID == "" {
			return
		}
		c := s.callFor(ae, ss)
		s.mergeCall(c, ae)
		c.transport, c.senderPid = b.Transport, b.SenderPid
		if ae.Kind == proto.KindToolResult && !c.reported {
			c.reported = true
			s.emit(s.callLine(c, ae, b, sender), c.promptKey)
		}
		if ae.Kind == proto.KindToolSpan && ae.ParentSpanID != "" {
			s.noteBatch(ae.ParentSpanID, c.id)
		}
		if ae.Kind == proto.KindToolSpan || ae.Kind == proto.KindToolHistory {
			s.retryResults()
		}
	case proto.KindAPIRequest:
		s.emit(s.agentLine(proto.ActionAgentAPIRequest, ae, b, sender, func(e *proto.Event) {
			e.GenAI.Request = &proto.GenAIRequest{Model: ae.Model}
			if ae.InputTokens > 0 || ae.OutputTokens > 0 {
				e.GenAI.Usage = &proto.GenAIUsage{InputTokens: ae.InputTokens, OutputTokens: ae.OutputTokens}
			}
		}), ae.PromptID)
	}
}

func (s *Stitcher) callFor(ae *proto.AgentEvent, ss *session) *toolCall {
	c, ok := s.calls.get(ae.ToolUseID)
	if !ok {
		c = &toolCall{id: ae.ToolUseID, agent: ae.Agent}
		s.calls.put(ae.ToolUseID, c)
	}
	if c.session == "" && ss != nil {
		c.session = ss.id
		ss.calls = append(ss.calls, c)
		if len(ss.calls) > maxCallsPerSession {
			ss.calls = ss.calls[len(ss.calls)-maxCallsPerSession:]
		}
	}
	return c
}

// mergeCall folds one record about a call into what is known: decisions and results come
// from logs or hooks, windows and file paths also from spans, in any order.
func (s *Stitcher) mergeCall(c *toolCall, ae *proto.AgentEvent) {
	if c.promptKey == "" {
		c.promptKey = ae.PromptID
	}
	if c.name == "" {
		c.name = ae.ToolName
	}
	if c.command == "" {
		c.command = ae.Command
	}
	if len(c.files) == 0 {
		c.files = ae.FilePaths
	}
	s.notePID(c, ae.ToolPID)
	switch ae.Kind {
	case proto.KindToolDecision:
		c.decision, c.source = ae.Decision, ae.DecisionSource
		if c.decided.IsZero() || ae.Time.Before(c.decided) {
			c.decided = ae.Time
		}
	case proto.KindToolResult:
		if ae.Success != nil {
			c.success = ae.Success
		}
		if c.decision == "" && ae.Decision != "" { // Gemini reports the decision on its result
			c.decision, c.source = ae.Decision, ae.DecisionSource
		}
		if ae.DurationMs > 0 {
			c.duration = ae.DurationMs
		}
		if ae.Time.After(c.finished) {
			c.finished = ae.Time
		}
	case proto.KindToolSpan:
		if c.decided.IsZero() || ae.Time.Before(c.decided) {
			c.decided = ae.Time
		}
		if ae.EndTime.After(c.finished) {
			c.finished = ae.EndTime
		}
	}
}

// bind attaches a kernel event to its session, prompt and tool call, strongest key first.
func (s *Stitcher) bind(e *proto.Event) {
	if e.Process == nil || e.Event.Action == proto.ActionLost {
		return
	}
	sessionID := s.sessionOf(e)
	b := s.bindingOf(e, sessionID)
	// Only a process's start (exec, fork) says what the whole process belongs to: an open
	// bound by its path or its time says nothing about the process's other events, and the
	// agent's own process opens files for every in-process tool call.
	if b != nil && e.Process.EntityID != "" && (e.Event.Action == proto.ActionExec || e.Event.Action == proto.ActionFork) {
		s.procs.put(e.Process.EntityID, b)
	}
	how, confidence := proto.BindingNone, ""
	var c *toolCall
	if b != nil {
		c, how, confidence = b.call, b.how, b.confidence
		if c.session != "" {
			sessionID = c.session
		}
	}
	s.stats.Bindings[how]++
	e.Vigil.Binding, e.Vigil.Confidence = how, confidence
	if sessionID == "" {
		return
	}
	if e.GenAI == nil {
		e.GenAI = &proto.GenAI{}
	}
	e.GenAI.Conversation = &proto.GenAIConversation{ID: sessionID}
	if c != nil {
		e.GenAI.Tool = &proto.GenAITool{Name: c.name, Call: &proto.GenAIToolCall{ID: c.id}}
		if id := s.promptID(c.promptKey); id != "" {
			e.Vigil.Prompt = &proto.PromptRef{ID: id}
		}
		return
	}
	// Not explained by a tool call: still say which request was running.
	if ss, ok := s.sessions.get(sessionID); ok {
		for i := len(ss.prompts) - 1; i >= 0; i-- {
			if !ss.prompts[i].at.After(e.Timestamp) {
				e.Vigil.Prompt = &proto.PromptRef{ID: s.promptID(ss.prompts[i].key)}
				break
			}
		}
	}
}

// sessionOf: the session id the process carries in its environment, else the session whose
// verified sender belongs to the same agent root.
func (s *Stitcher) sessionOf(e *proto.Event) string {
	root := 0
	if e.Vigil.Root != nil {
		root = e.Vigil.Root.Pid
	}
	if j := e.Vigil.Join; j != nil {
		for _, id := range j.SessionIDs() {
			// The environment is the process's own claim: believed unless the session is
			// known to belong to another agent tree.
			if id != "" && s.mayClaim(id, root) {
				return id
			}
		}
	}
	id, _ := s.rootSession.get(root)
	return id
}

// keyBinding binds by a key the agent put in the process's environment.
func (s *Stitcher) keyBinding(e *proto.Event) *binding {
	j := e.Vigil.Join
	if j == nil {
		return nil
	}
	if span := traceParentSpan(j.TraceParent); span != "" {
		if id, ok := s.spans.get(span); ok {
			if c, ok := s.calls.get(id); ok {
				return &binding{call: c, how: proto.BindingTraceParent, confidence: "high"}
			}
		}
	}
	for _, id := range j.ToolCallIDs() {
		if c, ok := s.calls.get(id); ok {
			return &binding{call: c, how: proto.BindingEnvCallID, confidence: "high"}
		}
	}
	return nil
}

// forkLookahead bounds how far past a process's first events the stitcher looks for the exec
// that names its call.
const forkLookahead = 512

// bindByLaterExec: a process's first events can carry no keys although it was started for a
// tool call. A tool shell is forked before it execs with the keys in its environment, and
// Codex starts each exec_command as a setup exec of its own binary
// (`--codex-run-as-process-setup`, no CODEX_TOOL_CALL_ID) whose opens come before the keyed
// exec of the same process ~5 ms later; with two calls running no window is unique. When the
// same process (entity id) execs with keys naming a call among the next held events, before
// it exits, its fork, its unkeyed execs and their opens belong to that call too: released in
// order, each of them finds the binding under its entity id. An exec bound by its command
// (a Claude shell without TRACEPARENT) speaks for its fork the same way, with that evidence.
func (s *Stitcher) bindByLaterExec(i int) {
	e := s.held[i].e
	if e.Process == nil || e.Process.EntityID == "" {
		return
	}
	switch e.Event.Action {
	case proto.ActionFork:
	case proto.ActionExec:
		if _, ok := s.procs.get(e.Process.EntityID); ok {
			return // bound already, from its fork
		}
		if s.execBinding(e) != nil {
			return // its own keys or command bind it
		}
	default:
		return
	}
	for _, h := range s.held[i+1 : min(len(s.held), i+1+forkLookahead)] {
		l := h.e
		if l.Process == nil || l.Process.EntityID != e.Process.EntityID {
			continue
		}
		switch l.Event.Action {
		case proto.ActionExec:
			if b := s.execBinding(l); b != nil {
				s.procs.put(l.Process.EntityID, b)
				return
			}
		case proto.ActionExit:
			return
		}
	}
}

// execBinding is what an exec says by itself about the call it runs for: its keys, else its
// argv holding a running call's command (a Claude shell without TRACEPARENT).
func (s *Stitcher) execBinding(e *proto.Event) *binding {
	if b := s.keyBinding(e); b != nil {
		return b
	}
	if ss, ok := s.sessions.get(s.sessionOf(e)); ok {
		if c := s.byCommand(e, ss); c != nil {
			return &binding{call: c, how: proto.BindingCommand, confidence: "medium"}
		}
	}
	return nil
}

func (s *Stitcher) bindingOf(e *proto.Event, sessionID string) *binding {
	if b := s.keyBinding(e); b != nil {
		return b
	}
	if b := s.pidBinding(e); b != nil {
		return b
	}
	// A process inherits what its parent was bound to (the shell's children). What the
	// window alone said is inherited only when the exec's own command says nothing: a tool
	// shell forked while one call ran is window-bound at its fork, and its exec's eval word
	// names its call better.
	inherited, ok := s.procs.get(e.Process.EntityID)
	if p := e.Process.Parent; !ok && p != nil && p.EntityID != "" && (e.Event.Action == proto.ActionExec || e.Event.Action == proto.ActionFork) {
		inherited, ok = s.procs.get(p.EntityID)
	}
	if ok && (inherited.how != proto.BindingWindow || e.Event.Action != proto.ActionExec) {
		return inherited
	}
	ss, found := s.sessions.get(sessionID)
	if !found {
		if ok {
			return inherited
		}
		return nil
	}
	if c := s.byCommand(e, ss); c != nil {
		return &binding{call: c, how: proto.BindingCommand, confidence: "medium"}
	}
	if ok {
		return inherited
	}
	if b := s.byPath(e, ss); b != nil {
		return b
	}
	if c := s.byWindow(e, ss); c != nil {
		return &binding{call: c, how: proto.BindingWindow, confidence: "low"}
	}
	return nil
}

// traceParentSpan returns the parent span id of a W3C traceparent (version-trace-span-flags).
func traceParentSpan(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[2]) != 16 {
		return ""
	}
	return strings.ToLower(parts[2])
}

// inWindow returns the session's calls whose window holds the event: its time, or for a
// merged open line the whole span of its repeats, which no call of the session may start or
// end inside (spanCrossed).
func inWindow(ss *session, e *proto.Event, keep func(*toolCall) bool) []*toolCall {
	first, last := eventSpan(e)
	if last.After(first) && spanCrossed(ss, first, last) {
		return nil
	}
	var out []*toolCall
	for _, c := range ss.calls {
		from, to, ok := c.window()
		if ok && !first.Before(from) && !last.After(to) && keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// byWindow binds an event of the session's tree to the only call running at the time.
// The agent's own processes are excluded: they do many things beside running tools.
func (s *Stitcher) byWindow(e *proto.Event, ss *session) *toolCall {
	if ss.agentPids[e.Process.Pid] || (e.Vigil.Root != nil && e.Process.Pid == e.Vigil.Root.Pid) {
		return nil
	}
	found := inWindow(ss, e, func(*toolCall) bool { return true })
	if len(found) == 1 {
		return found[0]
	}
	return nil
}

// emit queues an agent line; key is the prompt it names (resolved when written).
func (s *Stitcher) emit(e *proto.Event, key string) {
	s.out = append(s.out, agentOut{e: e, key: key})
}

// promptID is the id written for a prompt: Claude's prompt.id; for Codex the turn's trace id,
// or its turn id when a span naming both came before the first line of the turn was written
// (Codex sends most spans at the end of a turn). Called only when a line is written, and the
// first answer sticks: every line of one prompt carries the same id.
func (s *Stitcher) promptID(key string) string {
	if id, ok := s.promptIDs.get(key); ok {
		return id
	}
	id := key
	if turn, ok := s.turns.get(key); ok { // a Codex turn's trace
		id = turn
	}
	s.promptIDs.put(key, id)
	return id
}

// senderOf is the sender of a trusted batch as its lines name it.
func senderOf(b TelemetryBatch, info sensor.ProcessInfo) proto.Sender {
	return proto.Sender{Pid: b.SenderPid, Name: info.Name, Executable: info.Executable, Cwd: info.Cwd,
		RootPid: info.RootPid, Transport: b.Transport}
}

// agentLine builds the output line for an agent event from a trusted sender.
func (s *Stitcher) agentLine(action string, ae *proto.AgentEvent, b TelemetryBatch, sender sensor.ProcessInfo, fill func(*proto.Event)) *proto.Event {
	e := senderOf(b, sender).Line(action, ae.Agent, ae.SessionID, ae.PromptID, ae.Time) // prompt resolved when written
	fill(e)
	return e
}

// callLine is the agent.tool_call line of c; its prompt is resolved when written.
func (s *Stitcher) callLine(c *toolCall, ae *proto.AgentEvent, b TelemetryBatch, sender sensor.ProcessInfo) *proto.Event {
	return proto.ToolCallRecord{
		Time: ae.Time, Agent: ae.Agent, SessionID: ae.SessionID, PromptID: cmp.Or(c.promptKey, ae.PromptID),
		CallID: c.id, ToolName: c.name, Decision: c.decision, DecisionSource: c.source, Success: c.success,
		DurationMs: c.duration, Command: c.command, FilePaths: c.files, Sender: senderOf(b, sender),
	}.Event()
}

// unreportedCalls writes, at shutdown, the calls whose result never arrived.
func (s *Stitcher) unreportedCalls() []*proto.Event {
	var out []*proto.Event
	for _, ss := range s.sessions.all() {
		for _, c := range ss.calls {
			if c.reported {
				continue
			}
			c.reported = true
			ae := &proto.AgentEvent{Agent: c.agent, SessionID: ss.id, Time: c.decided, ToolName: c.name, ToolUseID: c.id}
			sender, _ := s.lookup(c.senderPid)
			e := s.callLine(c, ae, TelemetryBatch{Transport: c.transport, SenderPid: c.senderPid}, sender)
			if e.Vigil.Prompt != nil {
				e.Vigil.Prompt.ID = s.promptID(c.promptKey)
			}
			out = append(out, e)
		}
	}
	return out
}

// untrustedKinds says whether an untrusted event of this kind is written: spans repeat what
// the logs say.
func untrustedKinds(kind string) bool {
	return kind != proto.KindToolSpan && kind != proto.KindInteractionSpan
}

func (s *Stitcher) untrustedLine(ae *proto.AgentEvent, b TelemetryBatch) *proto.Event {
	e := untrustedEvent(ae.Time, b.Transport, b.SenderPid)
	e.GenAI = &proto.GenAI{Agent: &proto.GenAIAgent{Name: ae.Agent}}
	e.Vigil.Telemetry.ClaimedConversationID = ae.SessionID
	if ae.ToolName != "" || ae.ToolUseID != "" {
		e.GenAI.Tool = &proto.GenAITool{Name: ae.ToolName}
		e.Vigil.Tool = &proto.ToolCall{Command: ae.Command, FilePaths: ae.FilePaths}
	}
	if ae.Prompt != "" {
		e.Vigil.Prompt = &proto.PromptRef{Text: ae.Prompt}
	}
	return e
}

// untrustedEvent is what every agent.untrusted_telemetry line says: an alert, the transport
// and the sender's pid (its process, when known).
func untrustedEvent(at time.Time, transport string, pid int) *proto.Event {
	e := &proto.Event{
		Timestamp: at.UTC(),
		Event:     proto.EventMeta{Action: proto.ActionAgentUntrusted, Kind: "alert", Dataset: proto.DatasetAgent},
		Vigil:     proto.Vigil{Source: transport, Telemetry: &proto.Telemetry{Transport: transport, SenderPid: pid}},
	}
	if pid > 0 {
		e.Process = &proto.Process{Pid: pid}
	}
	return e
}

// generations is a map bounded by forgetting its oldest half: when the current generation
// is full it becomes the previous one and the previous one is dropped. Lookups see both.
type generations[K comparable, V any] struct {
	cur, prev map[K]V
	max       int
	forgotten *uint64
}

func (g *generations[K, V]) init(max int, forgotten *uint64) {
	g.cur, g.prev, g.max, g.forgotten = map[K]V{}, map[K]V{}, max/2+1, forgotten
}

func (g *generations[K, V]) get(k K) (V, bool) {
	if v, ok := g.cur[k]; ok {
		return v, true
	}
	v, ok := g.prev[k]
	return v, ok
}

// all returns every value, current generation first.
func (g *generations[K, V]) all() []V {
	out := make([]V, 0, len(g.cur)+len(g.prev))
	for _, v := range g.cur {
		out = append(out, v)
	}
	for k, v := range g.prev {
		if _, dup := g.cur[k]; !dup {
			out = append(out, v)
		}
	}
	return out
}

func (g *generations[K, V]) put(k K, v V) {
	if len(g.cur) >= g.max {
		*g.forgotten += uint64(len(g.prev))
		g.prev, g.cur = g.cur, map[K]V{}
	}
	g.cur[k] = v
}
