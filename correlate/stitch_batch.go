package correlate

import (
	"slices"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// Batches. Gemini CLI's tool result (the gemini_cli.tool_call log) names no call: it is
// logged inside the schedule_tool_calls span that holds the calls of one model response, and
// only the calls' own tool_call spans, children of that span, carry the call id. A result
// takes the id of the child span of its batch with its tool name; among several (a parallel
// batch) the one whose command or file it repeats. Logs and spans are exported separately, so
// a result waits for its spans (and for the history that tells parallel calls apart).

// maxPendingResults bounds the results waiting for their call; past it the oldest is written
// without a call id.
const maxPendingResults = 1000

// pendingResult is a result waiting for the span that names its call.
type pendingResult struct {
	ae      proto.AgentEvent
	b       TelemetryBatch
	sender  sensor.ProcessInfo
	arrived time.Time
}

// noteBatch remembers that call id ran in the batch span parent.
func (s *Stitcher) noteBatch(parent, id string) {
	ids, _ := s.batches.get(parent)
	if !slices.Contains(ids, id) {
		s.batches.put(parent, append(slices.Clip(ids), id))
	}
}

// resolveResult returns the id of the call a result without one is about, "" while it is
// not known (or ambiguous).
func (s *Stitcher) resolveResult(ae *proto.AgentEvent) string {
	ids, _ := s.batches.get(ae.SpanID)
	found := ""
	for _, id := range ids {
		c, ok := s.calls.get(id)
		if !ok || c.reported || c.name != ae.ToolName {
			continue
		}
		if ae.Command != "" && c.command != "" && ae.Command != c.command ||
			len(ae.FilePaths) > 0 && len(c.files) > 0 && !slices.Equal(ae.FilePaths, c.files) {
			continue
		}
		if found != "" {
			return "" // two calls fit: wait for the history to tell them apart
		}
		found = id
	}
	return found
}

// holdResult keeps a result until its call is known.
func (s *Stitcher) holdResult(ae *proto.AgentEvent, b TelemetryBatch, sender sensor.ProcessInfo) {
	if len(s.pending) >= maxPendingResults {
		s.writeUnresolved(s.pending[0])
		s.pending = slices.Delete(s.pending, 0, 1)
	}
	s.pending = append(s.pending, pendingResult{ae: *ae, b: b, sender: sender, arrived: time.Now()})
}

// retryResults absorbs the waiting results whose call is now known.
func (s *Stitcher) retryResults() {
	for i := 0; i < len(s.pending); {
		p := s.pending[i]
		id := s.resolveResult(&p.ae)
		if id == "" {
			i++
			continue
		}
		s.pending = slices.Delete(s.pending, i, i+1)
		p.ae.ToolUseID = id
		s.absorb(&p.ae, p.b, p.sender)
	}
}

// expireResults writes the results that waited longer than maxWait (all of them when all
// is set) without a call id: the call's spans never came.
func (s *Stitcher) expireResults(now time.Time, maxWait time.Duration, all bool) {
	n := 0
	for n < len(s.pending) && (all || now.Sub(s.pending[n].arrived) >= maxWait) {
		s.writeUnresolved(s.pending[n])
		n++
	}
	s.pending = slices.Delete(s.pending, 0, n)
}

// writeUnresolved writes a result's agent.tool_call line without a call id.
func (s *Stitcher) writeUnresolved(p pendingResult) {
	c := &toolCall{agent: p.ae.Agent, reported: true}
	p.ae.ToolPID = 0 // no call to bind its process to
	s.mergeCall(c, &p.ae)
	s.emit(s.callLine(c, &p.ae, p.b, p.sender), c.promptKey)
}
