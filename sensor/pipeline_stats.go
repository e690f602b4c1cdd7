package sensor

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// The pipeline's health counters, read by the metrics endpoint (sensor/metrics) from other
// goroutines while the pipeline runs: events and the newest event's time per kernel action,
// the queue's fill, and the loss counters as last reported. Per event they cost two
// uncontended atomic stores into a fixed array (no map, no lock, no allocation): the per-event
// path is the sensor's throughput.

// countedActions are the kernel actions counted one by one, in the order of actionSlot;
// anything else a source emits is counted as otherAction.
var countedActions = [...]string{
	proto.ActionExec, proto.ActionFork, proto.ActionExit, proto.ActionOpen, proto.ActionConnect, proto.ActionSend,
	proto.ActionRename, proto.ActionUnlink, proto.ActionRmdir, proto.ActionLink, proto.ActionSymlink,
	proto.ActionChmod, proto.ActionChown, proto.ActionTruncate, proto.ActionCreate, proto.ActionWrite, proto.ActionClose,
}

// otherAction names the events of an action not in countedActions.
const otherAction = "other"

// actionSlot is the index of an action in countedActions, len(countedActions) for any other.
// A switch, not a map: the compiler turns it into a few comparisons, no hashing.
func actionSlot(action string) int {
	switch action {
	case proto.ActionExec:
		return 0
	case proto.ActionFork:
		return 1
	case proto.ActionExit:
		return 2
	case proto.ActionOpen:
		return 3
	case proto.ActionConnect:
		return 4
	case proto.ActionSend:
		return 5
	case proto.ActionRename:
		return 6
	case proto.ActionUnlink:
		return 7
	case proto.ActionRmdir:
		return 8
	case proto.ActionLink:
		return 9
	case proto.ActionSymlink:
		return 10
	case proto.ActionChmod:
		return 11
	case proto.ActionChown:
		return 12
	case proto.ActionTruncate:
		return 13
	case proto.ActionCreate:
		return 14
	case proto.ActionWrite:
		return 15
	case proto.ActionClose:
		return 16
	}
	return len(countedActions)
}

// actionCounters count the source's events per action; only the pipeline goroutine writes.
type actionCounters struct {
	events [len(countedActions) + 1]atomic.Uint64
	// last is the @timestamp of the newest event, Unix nanoseconds.
	last [len(countedActions) + 1]atomic.Int64
}

// count notes an event taken from the source: a merged open line (vigil.merged) is the
// repeats it stands for, so that the counts stay the kernel's events, not lines.
func (c *actionCounters) count(e *proto.Event) {
	i := actionSlot(e.Event.Action)
	n := uint64(1)
	if m := e.Vigil.Merged; m != nil {
		n = m.Count
	}
	c.events[i].Add(n)
	c.last[i].Store(e.Timestamp.UnixNano())
}

// ActionStats are the source's events of one action: how many, and the newest one's time.
type ActionStats struct {
	Action string
	Events uint64
	Last   time.Time
}

// Actions returns the events taken from the source per action, for the actions seen so far,
// in a fixed order (countedActions, then "other"). Safe from any goroutine.
func (p *Pipeline) Actions() []ActionStats {
	var out []ActionStats
	for i := range p.actions.events {
		n := p.actions.events[i].Load()
		if n == 0 {
			continue
		}
		name := otherAction
		if i < len(countedActions) {
			name = countedActions[i]
		}
		out = append(out, ActionStats{Action: name, Events: n, Last: time.Unix(0, p.actions.last[i].Load()).UTC()})
	}
	return out
}

// Queue returns how many events wait between the source's reader and the pipeline, and how
// many may. A queue that stays full means the pipeline, not the kernel, sets the pace (and
// the ring buffer fills next). Safe from any goroutine.
func (p *Pipeline) Queue() (length, capacity int) { return len(p.queue), cap(p.queue) }

// publishedLoss is the pipeline's loss counters as its last lost record saw them.
type publishedLoss struct {
	mu   sync.Mutex
	lost map[string]uint64
}

// Lost returns the cumulative count of events lost per kind (the source's, the Losses
// counters, "shutdown", "crash") as of the last check for a lost record (LostInterval): the
// same numbers the lost records add up to. Safe from any goroutine.
func (p *Pipeline) Lost() map[string]uint64 {
	p.published.mu.Lock()
	defer p.published.mu.Unlock()
	return maps.Clone(p.published.lost)
}
