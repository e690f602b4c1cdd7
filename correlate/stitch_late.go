package correlate

import (
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// Late binding. A kernel line whose hold ran out before the telemetry explaining it arrived
// is written unbound (or bound by its time window alone) and kept for Late. Whenever trusted
// telemetry has been absorbed, the kept lines are bound again with the same rules; a line
// bound now with more confidence than it was written with gets a binding record naming its
// event.sequence. The line stays kept, with its new confidence, so a stronger key arriving
// later still supersedes a weak late binding (a window binding by a traceparent): a line gets
// at most one record per confidence level, and readers apply them in sequence order.

// confidenceRank orders confidences: none < low < medium < high.
func confidenceRank(confidence string) int {
	switch confidence {
	case "low":
		return 1
	case "medium":
		return 2
	case "high":
		return 3
	}
	return 0
}

// keepLate keeps a released kernel line (every held event is one) that late telemetry could
// still bind better: a line of an agent tree that is unbound or bound by its window alone.
func (s *Stitcher) keepLate(e *proto.Event, now time.Time) {
	if s.o.Late <= 0 || s.o.MaxLate <= 0 || e.Process == nil || e.Vigil.Root == nil || e.Vigil.Root.Pid <= 0 ||
		e.Event.Action == proto.ActionLost {
		return
	}
	rank := confidenceRank(e.Vigil.Confidence)
	if rank >= confidenceRank("medium") {
		return
	}
	if len(s.late) >= s.o.MaxLate {
		// Forget the oldest eighth at once: dropping one line per new one would copy the
		// whole list for every event of a flood.
		drop := len(s.late) - s.o.MaxLate + max(s.o.MaxLate/8, 1)
		s.stats.LateForgotten += uint64(drop)
		s.dropLate(drop)
	}
	s.late = append(s.late, lateLine{e: e, written: now, rank: rank})
}

// dropLate forgets the n oldest kept lines.
func (s *Stitcher) dropLate(n int) {
	rest := copy(s.late, s.late[n:])
	clear(s.late[rest:]) // forgotten lines must not stay reachable from the backing array
	s.late = s.late[:rest]
}

// bindLate forgets the kept lines whose Late ran out and, when telemetry was absorbed since
// the last try (or at shutdown), binds the others again, appending a binding record to ready
// for each line bound with more confidence than before.
func (s *Stitcher) bindLate(now time.Time, all bool, ready []*proto.Event) []*proto.Event {
	expired := 0
	for expired < len(s.late) && now.Sub(s.late[expired].written) >= s.o.Late && !all {
		expired++
	}
	if expired > 0 {
		s.stats.LateExpired += uint64(expired)
		s.dropLate(expired)
	}
	if !s.lateDirty && !all {
		return ready
	}
	s.lateDirty = false
	// A fork carries no keys; the same process's exec (later in the list) does, or names the
	// call's command. Bind those execs first so that their forks, a Codex setup exec and its
	// opens, and the children of all of them, inherit.
	for _, l := range s.late {
		if e := l.e; e.Event.Action == proto.ActionExec && e.Process.EntityID != "" {
			// A stronger binding the process already has (its keyed exec bound in time)
			// is not replaced by a command match of an earlier exec (Codex's setup exec
			// carries the command in its argv).
			cur, had := s.procs.get(e.Process.EntityID)
			if b := s.execBinding(e); b != nil && (!had || confidenceRank(b.confidence) >= confidenceRank(cur.confidence)) {
				s.procs.put(e.Process.EntityID, b)
			}
		}
	}
	kept := s.late[:0]
	for _, l := range s.late {
		e := l.e
		s.inheritStronger(e)
		b := s.bindingOf(e, s.sessionOf(e))
		if b == nil || confidenceRank(b.confidence) <= l.rank {
			kept = append(kept, l)
			continue
		}
		if e.Process.EntityID != "" && (e.Event.Action == proto.ActionExec || e.Event.Action == proto.ActionFork) {
			s.procs.put(e.Process.EntityID, b)
		}
		ready = append(ready, s.bindingRecord(e, b, now).Event())
		s.stats.LateBound++
		if l.rank = confidenceRank(b.confidence); l.rank < confidenceRank("high") {
			kept = append(kept, l)
		}
	}
	clear(s.late[len(kept):])
	s.late = kept
	return ready
}

// inheritStronger: a process that took its binding from its parent, at its fork or exec,
// follows the parent when the parent has since been bound more strongly (its exec's
// traceparent arrived after a command match): the lines are bound in the order they were
// written, so the parent's fork and exec come first. Without it a child keeps the weaker
// binding it inherited and never gets the stronger record.
func (s *Stitcher) inheritStronger(e *proto.Event) {
	p := e.Process.Parent
	if p == nil || p.EntityID == "" || e.Process.EntityID == "" || (e.Event.Action != proto.ActionExec && e.Event.Action != proto.ActionFork) {
		return
	}
	own, hasOwn := s.procs.get(e.Process.EntityID)
	parent, hasParent := s.procs.get(p.EntityID)
	if hasOwn && hasParent && confidenceRank(parent.confidence) > confidenceRank(own.confidence) {
		s.procs.put(e.Process.EntityID, parent)
	}
}

// bindingRecord is the record binding the written line e to b's call.
func (s *Stitcher) bindingRecord(e *proto.Event, b *binding, now time.Time) proto.BindingRecord {
	c := b.call
	r := proto.BindingRecord{
		Time: now.UTC(), Sequence: e.Event.Sequence, Pid: e.Process.Pid, EntityID: e.Process.EntityID,
		Agent: c.agent, SessionID: c.session,
		ToolName: c.name, CallID: c.id, Binding: b.how, Confidence: b.confidence,
		LateMs: now.Sub(e.Timestamp).Milliseconds(),
	}
	if c.promptKey != "" {
		r.PromptID = s.promptID(c.promptKey)
	}
	if r.SessionID == "" {
		r.SessionID = s.sessionOf(e)
	}
	if r.Agent == "" && e.GenAI != nil && e.GenAI.Agent != nil {
		r.Agent = e.GenAI.Agent.Name
	}
	return r
}
