package route

import (
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// DefaultMaxTrees bounds the agent trees a Budget follows at once; past it every budget
// starts over full (a tree then writes more into the events file, never less).
const DefaultMaxTrees = 4096

// Budget bounds the kernel lines one agent tree writes into the events file, so that a
// flood of one tree (rg or find over a monorepo, npm install, a test runner) cannot rotate
// the earlier evidence of every tree out of it. Each tree (vigil.root.entity_id) may write
// PerMinute lines a minute, with bursts of a minute's worth; past that its lines are flood
// lines (vigil.flood), which a Split with ToSide Flooded sends to a file of their own, with
// its own rotation. Exec lines are never flood lines (what ran stays with the evidence), nor
// are agent, correlator, detection and loss records, which have no tree.
//
// Time is the lines' own @timestamp, not the clock: what counts is the rate the tree acted
// at, whatever the hold delays, and the same lines always split the same way.
type Budget struct {
	perNs float64 // lines earned per nanosecond
	burst float64
	max   int
	trees map[string]*bucket
}

// bucket is one tree's budget: lines it may still write, as of last.
type bucket struct {
	lines float64
	last  time.Time
}

// NewBudget returns a budget of perMinute lines a minute for each tree, following at most
// maxTrees trees (DefaultMaxTrees when ≤ 0). perMinute must be positive.
func NewBudget(perMinute, maxTrees int) *Budget {
	if maxTrees <= 0 {
		maxTrees = DefaultMaxTrees
	}
	return &Budget{perNs: float64(perMinute) / float64(time.Minute), burst: float64(perMinute), max: maxTrees,
		trees: map[string]*bucket{}}
}

// Over reports whether e is past its tree's budget, and takes e from it otherwise.
func (b *Budget) Over(e *proto.Event) bool {
	if e.Event.Dataset != proto.DatasetKernel || e.Vigil.Root == nil || e.Vigil.Root.EntityID == "" {
		return false
	}
	k, ok := b.trees[e.Vigil.Root.EntityID]
	if !ok {
		if len(b.trees) >= b.max {
			clear(b.trees)
		}
		k = &bucket{lines: b.burst, last: e.Timestamp}
		b.trees[e.Vigil.Root.EntityID] = k
	}
	if d := e.Timestamp.Sub(k.last); d > 0 { // held lines come nearly, not exactly, in time order
		k.lines = min(b.burst, k.lines+float64(d)*b.perNs)
		k.last = e.Timestamp
	}
	if e.Event.Action == proto.ActionExec {
		k.lines = max(0, k.lines-1)
		return false
	}
	if k.lines < 1 {
		return true
	}
	k.lines--
	return false
}

// Flooded picks the flood lines (vigil.flood) a Budget marked.
func Flooded(e *proto.Event) bool {
	return e.Vigil.Flood
}

// Filter hands Inner only the records Keep picks. Its use: the store keeps no flood lines.
// The flood file has them; and a tree's flood must no more evict the evidence before it from
// the store's size bound than rotate it out of the events file, nor take the store's CPU
// from the sensor's one core while the ring fills.
type Filter struct {
	Inner sensor.Sink
	Keep  func(*proto.Event) bool
}

// Write hands e to Inner when Keep picks it.
func (f *Filter) Write(e *proto.Event) error {
	if !f.Keep(e) {
		return nil
	}
	return f.Inner.Write(e)
}

// Flush flushes Inner.
func (f *Filter) Flush() error { return f.Inner.Flush() }

// Close closes Inner.
func (f *Filter) Close() error { return f.Inner.Close() }

// NotFlooded picks every record but flood lines.
func NotFlooded(e *proto.Event) bool {
	return !e.Vigil.Flood
}
