package correlate

import (
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// Merged open lines (vigil.merged) stand for repeats between their first and last time. The
// kernel ends a run at every tool-call boundary the correlator reports (MergeEpoch), but
// telemetry arrives seconds late: a boundary it brings may fall inside a run. So a merged
// line is bound by time only when its whole span lies in one call's window and no call of the
// session starts or ends inside it; what holds for a process (join keys, tool pid, inherited
// bindings) holds for the whole span.

// eventSpan is the time an event covers: its @timestamp, or a merged line's first to last
// repeat.
func eventSpan(e *proto.Event) (first, last time.Time) {
	first, last = e.Timestamp, e.Timestamp
	if m := e.Vigil.Merged; m != nil {
		if t, err := time.Parse(proto.TimeLayout, m.Last); err == nil && t.After(first) {
			last = t
		}
	}
	return first, last
}

// spanCrossed says whether a call of the session was decided or finished strictly inside
// (first, last).
func spanCrossed(ss *session, first, last time.Time) bool {
	inside := func(t time.Time) bool { return !t.IsZero() && t.After(first) && t.Before(last) }
	for _, c := range ss.calls {
		if inside(c.decided) || inside(c.finished) {
			return true
		}
	}
	return false
}
