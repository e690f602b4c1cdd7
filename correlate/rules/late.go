package rules

import (
	"strconv"

	"github.com/vigil-sensor/vigil/proto"
)

// Late bindings. A kernel line is written unbound (vigil.binding none) or bound by its time
// window alone when the telemetry that would bind it arrives after the hold; a binding record
// follows it later and names it by event.sequence (docs/schema.md, Late binding). Judged as
// written, such a line is in its session's unexplained aggregates and not in its call's: an
// unapproved `kubectl apply` whose exec was written before the call's logs arrived would not
// be in tool.commands. So the detector keeps the lines a binding could change the verdict on,
// and judges each again, bound, when its record arrives: the event rules (but those that
// already raised on it) and the call's aggregates and rules.

// lateLine is a kernel line kept for the binding records that may follow it.
type lateLine struct {
	line *proto.Event
	// secretRead is SecretReads' verdict when the line was written (the scripts it knew then).
	secretRead bool
	// fired are the event rules that raised on the line so far.
	fired []string
}

// noteFired remembers the event rules among alerts.
func (l *lateLine) noteFired(alerts []*proto.Event) {
	for _, a := range alerts {
		if a.Vigil.Alert != nil && a.Vigil.Alert.Scope == string(ScopeEvent) {
			l.fired = append(l.fired, a.Rule.ID)
		}
	}
}

// lateBindable reports whether a line may be bound by a later record and whether binding it
// could change a verdict: an exec, a connection, a send, a file change, or an open that reads
// a secret, writes, or names a secret-looking file. The agent's reads of its own files, the
// bulk of unbound lines, are not kept.
func lateBindable(e *proto.Event, secretRead bool) bool {
	if b := e.Vigil.Binding; b != proto.BindingNone && b != proto.BindingWindow {
		return false
	}
	switch a := e.Event.Action; {
	case a == proto.ActionExec || a == proto.ActionConnect || a == proto.ActionSend || writeActions[a]:
		return true
	case a == proto.ActionOpen && e.File != nil:
		return secretRead || writes(e) || SecretLooking(e.File.Path)
	}
	return false
}

// observeBinding judges again, bound as the record says, the kept line a binding record
// names, and returns the alerts that raises.
func (d *Detector) observeBinding(e *proto.Event) []*proto.Event {
	rec, ok := proto.BindingRecordOf(e)
	if !ok || rec.CallID == "" {
		return nil
	}
	l, ok := d.late.get(strconv.FormatUint(rec.Sequence, 10))
	if !ok {
		return nil
	}
	bound := *l.line
	var g proto.GenAI
	if l.line.GenAI != nil {
		g = *l.line.GenAI
	}
	bound.GenAI = &g
	rec.Apply(&bound)
	d.stats.Rejudged++
	alerts := d.judgeKernel(&bound, l.secretRead, l.fired)
	l.noteFired(alerts)
	return alerts
}
