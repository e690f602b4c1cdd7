package rules

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
)

// Options bound the detector's memory.
type Options struct {
	// MaxCalls, MaxSessions and MaxPrompts bound the tool calls, sessions and prompts
	// remembered; past them the least recently used is forgotten and counted. 0: 4096, 1024
	// and 4096.
	MaxCalls, MaxSessions, MaxPrompts int
	// MaxScripts bounds the processes remembered as running a script (SecretReads); 0: 4096.
	MaxScripts int
	// MaxRaised bounds the (event rule, scope, object) triples remembered as alerted, so a
	// repeat is not raised again; 0: 16384.
	MaxRaised int
	// SilentAfter is how long an agent tree may work with no trusted telemetry before the
	// silent-agent alert (SilentRule); 0 turns that detection off.
	SilentAfter time.Duration
	// AgentPrograms are the executable base names of agent binaries (the catalog's), whose
	// process starts are an agent's work for the silent-agent detection besides the root's.
	AgentPrograms []string
	// MaxTrees bounds the agent trees remembered for it; 0: 1024.
	MaxTrees int
	// MaxLate bounds the kernel lines written without a tool call that are kept for the
	// binding records that may follow them (late.go); 0: 4096, correlate.max_late's default.
	MaxLate int
	Log     zerolog.Logger
}

// Stats are the detector's counters.
type Stats struct {
	Rules       int
	Evaluations uint64
	Alerts      uint64
	// Errors counts rule evaluations that failed at run time (ErrorsByRule per rule id); a
	// failed evaluation is a non-match.
	Errors       uint64
	ErrorsByRule map[string]uint64
	AlertsByRule map[string]uint64
	// Panics counts lines whose observation panicked (a defect; the line is skipped).
	Panics uint64
	// Repeats counts event-rule matches not raised again: the same rule on the same object
	// (file, command, destination) in the same tool call (or session, or agent tree).
	Repeats uint64
	// RaisedForgotten counts the alerted triples the MaxRaised bound forgot: a repeat of one
	// of those is raised again.
	RaisedForgotten uint64
	// CallsEvicted, SessionsEvicted, PromptsEvicted, ScriptsEvicted and TreesEvicted count
	// what the bounds made the detector forget; AggregateCapped the aggregate values not kept past
	// maxAggValues.
	CallsEvicted, SessionsEvicted, PromptsEvicted, ScriptsEvicted, TreesEvicted uint64
	AggregateCapped                                                             uint64
	// Rejudged counts kernel lines judged again, bound, after a binding record named them;
	// LateForgotten the kept lines the MaxLate bound forgot (a record naming one of those
	// changes nothing).
	Rejudged, LateForgotten uint64
}

// Detector evaluates a rule set on the lines a sensor writes, in write order, remembering the
// sessions, prompts and tool calls they belong to. It is not safe for concurrent use: the
// pipeline calls it from its one writing goroutine.
type Detector struct {
	set      *Set
	calls    *lru[*callState]
	sessions *lru[*sessionState]
	prompts  *lru[*promptState]
	readers  *SecretReads
	raised   *lru[struct{}]
	trees    *lru[*treeState]
	// treeKey is trees' key of the tree rooted at pid treeKeyPid, the last one looked up.
	treeKey    string
	treeKeyPid int
	late       *lru[*lateLine]
	// silentAfter and agentPrograms are Options.SilentAfter and AgentPrograms.
	silentAfter   time.Duration
	agentPrograms map[string]bool
	log           zerolog.Logger
	act           activation
	line          line // the line judgeKernel's guards read
	stats         Stats
	// published is what Publish copied for other goroutines.
	publishedMu sync.Mutex
	published   Health
}

// NewDetector returns a detector of set.
func NewDetector(set *Set, o Options) *Detector {
	if o.MaxCalls <= 0 {
		o.MaxCalls = 4096
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 1024
	}
	if o.MaxPrompts <= 0 {
		o.MaxPrompts = 4096
	}
	if o.MaxScripts <= 0 {
		o.MaxScripts = 4096
	}
	if o.MaxRaised <= 0 {
		o.MaxRaised = 16384
	}
	if o.MaxTrees <= 0 {
		o.MaxTrees = 1024
	}
	if o.MaxLate <= 0 {
		o.MaxLate = 4096
	}
	d := &Detector{
		set: set, calls: newLRU[*callState](o.MaxCalls), sessions: newLRU[*sessionState](o.MaxSessions),
		prompts: newLRU[*promptState](o.MaxPrompts), readers: NewSecretReads(o.MaxScripts), raised: newLRU[struct{}](o.MaxRaised),
		trees: newLRU[*treeState](o.MaxTrees), late: newLRU[*lateLine](o.MaxLate), silentAfter: o.SilentAfter, agentPrograms: map[string]bool{}, log: o.Log,
		stats: Stats{Rules: len(set.rules), ErrorsByRule: map[string]uint64{}, AlertsByRule: map[string]uint64{}},
	}
	for _, p := range o.AgentPrograms {
		d.agentPrograms[p] = true
	}
	if d.silentAfter > 0 {
		d.stats.Rules++
	}
	return d
}

// Health is what the detector tells the metrics endpoint: its counters, and per agent the
// trees that are silent now (treeState.silent).
type Health struct {
	Stats  Stats
	Silent map[string]int
}

// Publish copies the counters and the silent trees for Health. Call it from the goroutine
// that calls Observe (the pipeline does, every second: sensor.PipelineOptions.Publish): the
// detector itself takes no lock per line. It walks the remembered trees (at most MaxTrees).
func (d *Detector) Publish() {
	h := Health{Stats: d.Stats(), Silent: map[string]int{}}
	d.trees.each(func(t *treeState) {
		if t.silent() {
			agent := t.agent
			if agent == "" {
				agent = "unknown"
			}
			h.Silent[agent]++
		}
	})
	d.publishedMu.Lock()
	d.published = h
	d.publishedMu.Unlock()
}

// Health returns what Publish last copied (zero before it first ran). Safe from any
// goroutine; the maps are the caller's.
func (d *Detector) Health() Health {
	d.publishedMu.Lock()
	defer d.publishedMu.Unlock()
	h := d.published
	h.Stats.ErrorsByRule, h.Stats.AlertsByRule = maps.Clone(h.Stats.ErrorsByRule), maps.Clone(h.Stats.AlertsByRule)
	h.Silent = maps.Clone(h.Silent)
	return h
}

// Stats returns a copy of the counters. Call it from the goroutine that calls Observe, or
// after that stopped.
func (d *Detector) Stats() Stats {
	s := d.stats
	s.ErrorsByRule, s.AlertsByRule = maps.Clone(d.stats.ErrorsByRule), maps.Clone(d.stats.AlertsByRule)
	s.CallsEvicted, s.SessionsEvicted, s.PromptsEvicted = d.calls.evicted, d.sessions.evicted, d.prompts.evicted
	s.ScriptsEvicted, s.RaisedForgotten, s.TreesEvicted = d.readers.scripts.evicted, d.raised.evicted, d.trees.evicted
	s.LateForgotten = d.late.evicted
	return s
}

// activation hands the variables to CEL without a map: the values are the line and the
// detector's state themselves.
type activation struct {
	event   *proto.Event
	tool    *callState
	prompt  *promptState
	session *sessionState
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return a.event, a.event != nil
	case "tool":
		return a.tool, a.tool != nil
	case "prompt":
		return a.prompt, a.prompt != nil
	case "session":
		return a.session, a.session != nil
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// Observe takes one written line, numbered, and returns the alerts it raises (nil for most
// lines), ready to write. Alert lines, untrusted telemetry (also event.kind alert) and loss
// reports are ignored: an alert never raises another.
func (d *Detector) Observe(e *proto.Event) (alerts []*proto.Event) {
	if e == nil || e.Event.Kind == proto.KindAlert || e.Event.Kind == "metric" {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			d.stats.Panics++
			d.log.Error().Interface("panic", r).Uint64("sequence", e.Event.Sequence).Msg("detection: observing a line panicked; it is skipped")
		}
	}()
	d.noteTelemetry(e)
	switch e.Event.Action {
	case proto.ActionBinding:
		return d.observeBinding(e)
	case proto.ActionSession:
		return d.observeSession(e)
	case proto.ActionAgentPrompt:
		d.observePrompt(e)
		return nil
	case proto.ActionAgentToolCall:
		return d.observeToolCall(e)
	}
	if e.Event.Dataset == "vigil.kernel" {
		alerts := d.observeKernel(e)
		if a := d.watchTree(e); a != nil {
			alerts = append(alerts, a)
		}
		return alerts
	}
	return nil
}

// names reads the line's agent, session, tool name, call id and prompt id.
func names(e *proto.Event) (agent, session, tool, call, prompt string) {
	agent, session, tool, call = proto.GenAINames(e.GenAI)
	if e.Vigil.Prompt != nil {
		prompt = e.Vigil.Prompt.ID
	}
	return
}

// byAgent reports whether a line's process is its agent tree's root: the agent itself, not a
// process it started.
func byAgent(e *proto.Event) bool {
	p := procOf(e)
	return p.Pid != 0 && p.Pid == rootOf(e).pid
}

func rootOf(e *proto.Event) rootRef {
	if r := e.Vigil.Root; r != nil {
		return rootRef{pid: r.Pid, entityID: r.EntityID}
	}
	return rootRef{}
}

func (d *Detector) sessionFor(id, agent string) *sessionState {
	if id == "" {
		return noSession
	}
	return d.sessions.getOrAdd(id, func() *sessionState { return &sessionState{id: id, agent: agent} })
}

func (d *Detector) callFor(id, name, session, prompt, agent string) *callState {
	if id == "" {
		return noCall
	}
	return d.calls.getOrAdd(id, func() *callState {
		return &callState{id: id, name: name, session: session, prompt: prompt, agent: agent}
	})
}

func (d *Detector) promptFor(id string) *promptState {
	if id == "" {
		return noPrompt
	}
	if p, ok := d.prompts.get(id); ok {
		return p
	}
	return &promptState{id: id}
}

func (d *Detector) observeSession(e *proto.Event) []*proto.Event {
	r, _ := proto.SessionRecordOf(e)
	s := d.sessionFor(r.SessionID, r.Agent)
	if s == noSession {
		return nil
	}
	s.agent = r.Agent
	if r.Sender.Cwd != "" {
		s.cwd = r.Sender.Cwd
	}
	s.root = rootRef{pid: r.Sender.RootPid, entityID: r.RootEntityID}
	return d.evalSession(s, depMeta, e, nil)
}

func (d *Detector) observePrompt(e *proto.Event) {
	r, _ := proto.PromptRecordOf(e)
	if r.PromptID == "" {
		return
	}
	p := d.prompts.getOrAdd(r.PromptID, func() *promptState { return &promptState{id: r.PromptID} })
	p.text = r.Text
	if s := d.sessionFor(r.SessionID, r.Agent); s != noSession {
		s.prompt = r.PromptID
		if s.cwd == "" {
			s.cwd = r.Sender.Cwd
		}
	}
}

func (d *Detector) observeToolCall(e *proto.Event) []*proto.Event {
	r, _ := proto.ToolCallRecordOf(e)
	c := d.callFor(r.CallID, r.ToolName, r.SessionID, r.PromptID, r.Agent)
	if c == noCall {
		return nil
	}
	c.name, c.command, c.filePaths = r.ToolName, r.Command, r.FilePaths
	c.decision, c.decisionSource, c.outcome = r.Decision, r.DecisionSource, e.Event.Outcome
	if c.prompt == "" {
		c.prompt = r.PromptID
	}
	c.reported, c.seq = true, e.Event.Sequence
	s := d.sessionFor(r.SessionID, r.Agent)
	if s != noSession && s.cwd == "" {
		s.cwd = r.Sender.Cwd
	}
	c.declared = declare(c, s.cwd)
	return d.evalCall(c, depMeta|d.judgeEffects(c), e, nil)
}

func (d *Detector) observeKernel(e *proto.Event) []*proto.Event {
	secretRead := d.readers.Observe(e)
	alerts := d.judgeKernel(e, secretRead, nil)
	if lateBindable(e, secretRead) {
		l := &lateLine{line: e, secretRead: secretRead}
		l.noteFired(alerts)
		d.late.getOrAdd(strconv.FormatUint(e.Event.Sequence, 10), func() *lateLine { return l })
	}
	return alerts
}

// judgeKernel runs the event rules on a kernel line (but those in skip), adds what it did to
// its call's and session's aggregates and runs the rules that read what changed.
func (d *Detector) judgeKernel(e *proto.Event, secretRead bool, skip []string) []*proto.Event {
	agent, sid, tool, cid, pid := names(e)
	s := d.sessionFor(sid, agent)
	c := d.callFor(cid, tool, sid, pid, agent)
	if c != noCall && c.root.pid == 0 {
		c.root = rootOf(e)
	}
	if s != noSession && s.root.pid == 0 {
		s.root = rootOf(e)
	}
	var alerts []*proto.Event
	d.act = activation{event: e, tool: c, prompt: d.promptFor(pid), session: s}
	d.line.reset(e)
	for _, list := range [2][]*compiled{d.set.byAction[e.Event.Action], d.set.anyAction} {
		for _, r := range list {
			if r.admits(&d.line) && !slices.Contains(skip, r.ID) && d.eval(r) {
				if d.repeat(r, e, c, s) {
					d.stats.Repeats++
					continue
				}
				alerts = append(alerts, d.alert(r, e, c, s, pid, []uint64{e.Event.Sequence}, []string{describe(e)}))
			}
		}
	}
	d.act, d.line.e = activation{}, nil
	callChanged, sessionChanged := d.aggregate(e, c, s, secretRead)
	if callChanged != 0 {
		alerts = d.evalCall(c, callChanged, e, alerts)
	}
	if sessionChanged != 0 {
		alerts = d.evalSession(s, sessionChanged, e, alerts)
	}
	return alerts
}

// repeat reports whether event rule r already alerted on e's object (its file, command or
// destination) in e's tool call, or without one in its session, or without one in its agent
// tree, and remembers that it has now. An agent reading .env opens it several times (a stat,
// then the read); one alert says it.
func (d *Detector) repeat(r *compiled, e *proto.Event, c *callState, s *sessionState) bool {
	scope := "tree " + rootOf(e).entityID
	switch {
	case c != noCall:
		scope = "call " + c.id
	case s != noSession:
		scope = "session " + s.id
	}
	object := describe(e)
	if e.Event.Action == proto.ActionOpen && e.File != nil {
		object = "open " + e.File.Path // the same file, whatever the access
	}
	key := r.ID + "\x00" + scope + "\x00" + object
	if _, seen := d.raised.get(key); seen {
		return true
	}
	d.raised.getOrAdd(key, func() struct{} { return struct{}{} })
	return false
}

// aggregate adds what a kernel line did to its call's and session's aggregates and returns
// which of them changed. secretRead is SecretReads' verdict on the line.
func (d *Detector) aggregate(e *proto.Event, c *callState, s *sessionState, secretRead bool) (callChanged, sessionChanged uint32) {
	if c == noCall && s == noSession {
		return 0, 0
	}
	add := func(agg int, v string) {
		if c != noCall && callAggs&(1<<agg) != 0 {
			if added, capped := c.agg[agg].add(v, e.Event.Sequence); added {
				callChanged |= 1 << agg
				callChanged |= d.noteEffect(c, agg, v, e)
			} else if capped {
				d.stats.AggregateCapped++
			}
		}
		if s != noSession && sessionAggs&(1<<agg) != 0 {
			if added, capped := s.agg[agg].add(v, e.Event.Sequence); added {
				sessionChanged |= 1 << agg
			} else if capped {
				d.stats.AggregateCapped++
			}
		}
	}
	unexplained := e.Vigil.Binding == proto.BindingNone
	failed := e.Event.Outcome == proto.OutcomeFailure
	switch a := e.Event.Action; {
	case a == proto.ActionExec && !failed && e.Process != nil:
		add(aggExecutables, e.Process.Executable)
		if cl := commandLine(e); cl != "" {
			add(aggCommands, cl)
		}
	case (a == proto.ActionConnect || a == proto.ActionSend) && !failed && e.Destination != nil && e.Destination.IP != "":
		if ip, err := netip.ParseAddr(e.Destination.IP); err == nil && !ip.Unmap().IsLoopback() && !ip.IsUnspecified() {
			ep := Endpoint(e.Destination.IP, e.Destination.Port, "")
			add(aggEgress, ep)
			if unexplained {
				add(aggUnexplainedEgress, ep)
			}
		}
	case a == proto.ActionOpen && !failed && e.File != nil:
		// SecretReads: a write-only or O_PATH open reads nothing, and a secret read by its
		// own client (aws ~/.aws/credentials, git ~/.git-credentials) is that client doing
		// its job: neither is a secret read.
		if secretRead {
			add(aggSecretsRead, e.File.Path)
			if unexplained {
				add(aggUnexplainedSecretsRead, e.File.Path)
			}
		}
		if writes(e) {
			add(aggFilesWritten, e.File.Path)
		}
	case writeActions[a] && !failed && e.File != nil:
		add(aggFilesWritten, e.File.Path)
	}
	return callChanged, sessionChanged
}

// noteEffect remembers who added v to a call's secrets_read or egress and, when the call is
// reported, judges it against the declaration; it returns the undeclared aggregate it added
// to (as a bit), if any.
func (d *Detector) noteEffect(c *callState, agg int, v string, e *proto.Event) uint32 {
	if agg != aggSecretsRead && agg != aggEgress {
		return 0
	}
	eff := effect{program: d.readers.Reader(e), byAgent: byAgent(e)}
	if agg == aggEgress {
		eff.ip = destOf(e).IP
	}
	if c.effects == nil {
		c.effects = map[effectKey]effect{}
	}
	c.effects[effectKey{agg, v}] = eff
	if c.declared == nil {
		return 0
	}
	return d.judgeEffect(c, agg, v, eff)
}

// judgeEffects judges everything the call did so far against its declaration, now that it
// is known (the agent.tool_call line arrives when the call ends, after its kernel lines).
func (d *Detector) judgeEffects(c *callState) (changed uint32) {
	for _, agg := range [2]int{aggSecretsRead, aggEgress} {
		for _, v := range c.agg[agg].values {
			changed |= d.judgeEffect(c, agg, v, c.effects[effectKey{agg, v}])
		}
	}
	return changed
}

// judgeEffect adds v to the call's undeclared aggregate when the declaration does not name it.
func (d *Detector) judgeEffect(c *callState, agg int, v string, eff effect) uint32 {
	if eff.byAgent {
		return 0
	}
	undeclared, declared := aggUndeclaredSecretsRead, c.declared.namesPath(v)
	if agg == aggEgress {
		undeclared, declared = aggUndeclaredEgress, c.declared.namesDestination(eff.ip, eff.program)
	}
	if declared {
		return 0
	}
	seq, _ := c.agg[agg].seqOf(v)
	if added, capped := c.agg[undeclared].add(v, seq); added {
		return 1 << undeclared
	} else if capped {
		d.stats.AggregateCapped++
	}
	return 0
}

// evalCall evaluates the tool_call rules that read what changed, on a call that has not
// raised them yet.
func (d *Detector) evalCall(c *callState, changed uint32, trigger *proto.Event, alerts []*proto.Event) []*proto.Event {
	var s *sessionState = noSession
	if v, ok := d.sessions.get(c.session); ok {
		s = v
	}
	d.act = activation{tool: c, prompt: d.promptFor(c.prompt), session: s}
	defer func() { d.act = activation{} }()
	for _, r := range d.set.toolCall {
		if r.deps&changed == 0 || c.fired[r.ID] || !d.eval(r) {
			continue
		}
		if c.fired == nil {
			c.fired = map[string]bool{}
		}
		c.fired[r.ID] = true
		seqs, evidence := d.aggregateEvidence(r, &c.agg)
		if r.deps&depMeta != 0 && c.reported {
			seqs = append(seqs, c.seq)
		}
		alerts = append(alerts, d.alert(r, trigger, c, s, c.prompt, seqs, evidence))
	}
	return alerts
}

// evalSession evaluates the session rules that read what changed, on a session that has not
// raised them yet.
func (d *Detector) evalSession(s *sessionState, changed uint32, trigger *proto.Event, alerts []*proto.Event) []*proto.Event {
	d.act = activation{prompt: d.promptFor(s.prompt), session: s}
	defer func() { d.act = activation{} }()
	for _, r := range d.set.session {
		if r.deps&changed == 0 || s.fired[r.ID] || !d.eval(r) {
			continue
		}
		if s.fired == nil {
			s.fired = map[string]bool{}
		}
		s.fired[r.ID] = true
		seqs, evidence := d.aggregateEvidence(r, &s.agg)
		alerts = append(alerts, d.alert(r, trigger, noCall, s, s.prompt, seqs, evidence))
	}
	return alerts
}

// eval runs one rule on the current activation; a run-time error is counted, logged (the
// first of each rule, then every 1000th) and is not a match.
func (d *Detector) eval(r *compiled) bool {
	d.stats.Evaluations++
	out, _, err := r.prg.Eval(&d.act)
	if err == nil {
		if b, ok := out.(types.Bool); ok {
			return bool(b)
		}
		err = fmt.Errorf("condition returned %s, want bool", out.Type())
	}
	d.ruleError(r, err)
	return false
}

func (d *Detector) ruleError(r *compiled, err error) {
	d.stats.Errors++
	n := d.stats.ErrorsByRule[r.ID] + 1
	d.stats.ErrorsByRule[r.ID] = n
	if n == 1 || n%1000 == 0 {
		d.log.Warn().Err(err).Str("rule", r.ID).Str("source", r.Source).Uint64("errors", n).Msg("detection rule failed at run time")
	}
}

// maxEvidence bounds an alert's evidence items and maxEvidenceBytes each item, so alert lines
// stay short whatever a call did.
const (
	maxEvidence      = 32
	maxEvidenceBytes = 512
)

// aggregateEvidence is what a tool_call or session rule matched on: the values of the
// aggregates it reads (those its exists() kept), each with the line that added it.
func (d *Detector) aggregateEvidence(r *compiled, agg *[nAgg]aggList) ([]uint64, []string) {
	var (
		seqs     []uint64
		evidence []string
	)
	for _, spec := range r.evidence {
		l := &agg[spec.agg]
		values := l.values
		if spec.filter != nil {
			out, _, err := spec.filter.Eval(&d.act)
			if err != nil {
				d.ruleError(r, fmt.Errorf("evidence: %w", err))
				continue
			}
			native, err := out.ConvertToNative(stringSliceType)
			if err != nil {
				d.ruleError(r, fmt.Errorf("evidence: %w", err))
				continue
			}
			values = native.([]string)
		}
		for _, v := range values {
			if seq, ok := l.seqOf(v); ok {
				seqs = append(seqs, seq)
			}
			item := aggLabels[spec.agg] + " " + v
			if !slices.Contains(evidence, item) {
				evidence = append(evidence, item)
			}
		}
	}
	return seqs, evidence
}

// alert builds an alert line: the rule, the context of what triggered it under the names
// kernel lines use, the triggering lines' sequences and the evidence. Its time is the line's
// that completed the match.
func (d *Detector) alert(r *compiled, trigger *proto.Event, c *callState, s *sessionState, promptID string, seqs []uint64, evidence []string) *proto.Event {
	d.stats.Alerts++
	d.stats.AlertsByRule[r.ID]++
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	if len(evidence) > maxEvidence {
		evidence = append(evidence[:maxEvidence-1], fmt.Sprintf("… and %d more", len(evidence)-maxEvidence+1))
	}
	for i, item := range evidence {
		evidence[i] = shorten(item)
	}
	ruleset := "pack"
	if !r.FromPack() {
		ruleset = r.Source
	}
	a := &proto.Event{
		Timestamp: trigger.Timestamp,
		Event:     proto.EventMeta{Action: proto.ActionAlert, Kind: proto.KindAlert, Dataset: proto.DatasetDetection, Severity: r.Severity.Score()},
		Rule:      &proto.Rule{ID: r.ID, Name: r.Name, Description: r.Description, Ruleset: ruleset},
		Tags:      r.Tags,
		Vigil: proto.Vigil{
			Alert: &proto.Alert{Severity: string(r.Severity), Scope: string(r.Scope), Sequences: seqs, Evidence: evidence},
		},
	}
	if len(r.techniques) > 0 {
		a.Threat = &proto.Threat{Framework: "MITRE ATT&CK", Technique: &proto.ThreatTechnique{ID: r.techniques}}
	}
	agent := s.agent
	if agent == "" {
		agent = c.agent
	}
	root := s.root
	if r.Scope == ScopeToolCall && c.root.pid != 0 {
		root = c.root
	}
	if r.Scope == ScopeEvent {
		agent, _, _, _, _ = names(trigger)
		root = rootOf(trigger)
		if p := trigger.Process; p != nil {
			a.Process = &proto.Process{Pid: p.Pid, EntityID: p.EntityID, Name: p.Name, Executable: p.Executable}
		}
		a.User = trigger.User
	}
	a.GenAI = &proto.GenAI{}
	if agent != "" {
		a.GenAI.Agent = &proto.GenAIAgent{Name: agent}
	}
	if s.id != "" {
		a.GenAI.Conversation = &proto.GenAIConversation{ID: s.id}
	}
	if c.id != "" {
		a.GenAI.Tool = &proto.GenAITool{Name: c.name, Call: &proto.GenAIToolCall{ID: c.id}}
		if c.reported {
			a.Vigil.Tool = &proto.ToolCall{Decision: c.decision, DecisionSource: c.decisionSource, Command: c.command}
		}
	}
	if root.pid != 0 {
		a.Vigil.Root = &proto.Root{Pid: root.pid, EntityID: root.entityID}
	}
	if promptID != "" {
		a.Vigil.Prompt = &proto.PromptRef{ID: promptID}
	}
	return a
}

// describe is a kernel line in a few words, as an alert's evidence shows it.
func describe(e *proto.Event) string {
	var b strings.Builder
	b.WriteString(e.Event.Action)
	f := fileOf(e)
	switch e.Event.Action {
	case proto.ActionExec:
		b.WriteString(" ")
		if cl := commandLine(e); cl != "" {
			b.WriteString(cl)
		} else {
			b.WriteString(procOf(e).Executable)
		}
	case proto.ActionConnect, proto.ActionSend:
		d := destOf(e)
		b.WriteString(" " + Endpoint(d.IP, d.Port, d.Address))
	case proto.ActionOpen:
		b.WriteString(" " + f.Path)
		if f.Access != "" {
			b.WriteString(" (" + f.Access + ")")
		}
	case proto.ActionRename:
		if r := e.Vigil.Rename; r != nil {
			b.WriteString(" " + r.Source + " ->")
		}
		b.WriteString(" " + f.Path)
	case proto.ActionLink, proto.ActionSymlink:
		b.WriteString(" " + f.Path + " -> " + f.TargetPath)
	case proto.ActionChmod:
		b.WriteString(" " + f.Mode + " " + f.Path)
	default:
		if f.Path != "" {
			b.WriteString(" " + f.Path)
		} else if p := procOf(e); p.Executable != "" {
			b.WriteString(" " + p.Executable)
		}
	}
	if e.Event.Outcome == proto.OutcomeFailure {
		b.WriteString(" [failed]")
	}
	return b.String()
}

// shorten cuts s to maxEvidenceBytes on a rune boundary, marking the cut.
func shorten(s string) string {
	if len(s) <= maxEvidenceBytes {
		return s
	}
	cut := maxEvidenceBytes
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
