package sensor

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

func TestActionSlotMatchesCountedActions(t *testing.T) {
	for i, a := range countedActions {
		if got := actionSlot(a); got != i {
			t.Errorf("actionSlot(%q) = %d, want %d (its place in countedActions)", a, got, i)
		}
	}
	for _, a := range []string{"", "mmap", proto.ActionLost, proto.ActionAgentToolCall} {
		if got := actionSlot(a); got != len(countedActions) {
			t.Errorf("actionSlot(%q) = %d, want %d (other)", a, got, len(countedActions))
		}
	}
}

func TestPipelineHealthCounters(t *testing.T) {
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	ev := func(action string, sec int) *proto.Event {
		e := plEvent(4000, sec)
		e.Event.Action = action
		e.Timestamp = base.Add(time.Duration(sec) * time.Second)
		return e
	}
	// The second open is a merged line: it counts the 3 repeats it stands for.
	merged := ev(proto.ActionOpen, 3)
	merged.Vigil.Merged = &proto.Merged{Count: 3}
	src := &plSource{name: "ebpf", events: []*proto.Event{
		ev(proto.ActionExec, 1), ev(proto.ActionOpen, 2), merged, ev("mmap", 4), ev(proto.ActionConnect, 5),
	}}
	src.setLost(map[string]uint64{"open": 4})
	var published atomic.Int64
	p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{&plSink{}}, QueueSize: 7, LostInterval: 5 * time.Millisecond,
		Losses:  []func() map[string]uint64{func() map[string]uint64 { return map[string]uint64{"exe_hash": 2, "open": 1} }},
		Publish: func() { published.Add(1) }})
	if l, c := p.Queue(); l != 0 || c != 7 {
		t.Errorf("Queue() before Run = %d/%d, want 0/7", l, c)
	}
	if got := p.Lost(); len(got) != 0 {
		t.Errorf("Lost() before the first check = %v, want none", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := plStart(t, ctx, p)
	plWaitFor(t, "five events and a published loss check", func() bool {
		return p.Stats().Received == 5 && published.Load() > 0 && len(p.Lost()) > 0
	})
	cancel()
	if err := wait(); err != nil {
		t.Fatal(err)
	}

	want := []ActionStats{
		{Action: proto.ActionExec, Events: 1, Last: base.Add(1 * time.Second)},
		{Action: proto.ActionOpen, Events: 4, Last: base.Add(3 * time.Second)},
		{Action: proto.ActionConnect, Events: 1, Last: base.Add(5 * time.Second)},
		{Action: otherAction, Events: 1, Last: base.Add(4 * time.Second)},
	}
	if got := p.Actions(); !slices.Equal(got, want) {
		t.Errorf("Actions() = %+v\nwant %+v", got, want)
	}
	// The source's and the other counters' kinds add up, as in the lost records.
	if got, want := p.Lost(), map[string]uint64{"open": 5, "exe_hash": 2}; !maps.Equal(got, want) {
		t.Errorf("Lost() = %v, want %v", got, want)
	}
}
