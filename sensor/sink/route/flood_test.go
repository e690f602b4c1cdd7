package route

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

func treeLine(root, action string, t time.Time) *proto.Event {
	return &proto.Event{Timestamp: t, Event: proto.EventMeta{Action: action, Dataset: proto.DatasetKernel},
		Vigil: proto.Vigil{Root: &proto.Root{Pid: 1, EntityID: root}}}
}

// TestBudget: a tree writes its minute's worth, then only what it earns at the rate; a
// quiet tree beside a flooding one keeps its own budget; execs, and lines with no tree,
// are never flood lines.
func TestBudget(t *testing.T) {
	b := NewBudget(600, 0) // 10 lines a second
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	over := 0
	// 10,000 opens in one second: the burst (600) and the second's 10 are in budget.
	for i := range 10000 {
		if b.Over(treeLine("flood", proto.ActionOpen, t0.Add(time.Duration(i)*100*time.Microsecond))) {
			over++
		}
	}
	if in := 10000 - over; in < 609 || in > 611 {
		t.Errorf("%d of 10000 lines in budget, want 600 + 10", in)
	}
	t1 := t0.Add(time.Second)
	if b.Over(treeLine("flood", proto.ActionExec, t1)) {
		t.Error("an exec past the budget is a flood line")
	}
	for _, e := range []*proto.Event{
		treeLine("quiet", proto.ActionOpen, t1),
		{Timestamp: t1, Event: proto.EventMeta{Action: proto.ActionLost, Dataset: proto.DatasetKernel}},
		{Timestamp: t1, Event: proto.EventMeta{Action: proto.ActionAgentToolCall, Dataset: proto.DatasetAgent}, Vigil: proto.Vigil{Root: &proto.Root{EntityID: "flood"}}},
	} {
		if b.Over(e) {
			t.Errorf("%s of %v is a flood line", e.Event.Action, e.Vigil.Root)
		}
	}
	// A minute later the flooding tree has its whole budget again, and no more.
	t2 := t1.Add(10 * time.Minute)
	in := 0
	for i := range 1000 {
		if !b.Over(treeLine("flood", proto.ActionOpen, t2.Add(time.Duration(i)))) {
			in++
		}
	}
	if in != 600 {
		t.Errorf("after 10 quiet minutes %d lines in budget, want the burst, 600", in)
	}
	// A line older than the tree's last one (the hold releases nearly in time order) earns
	// nothing and takes nothing back.
	if !b.Over(treeLine("flood", proto.ActionOpen, t0)) {
		t.Error("an out-of-order line refilled the budget")
	}
}

// TestBudgetBound: past maxTrees every budget starts over full: more lines stay in the
// events file, never fewer.
func TestBudgetBound(t *testing.T) {
	b := NewBudget(1, 2)
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, root := range []string{"a", "b"} {
		if b.Over(treeLine(root, proto.ActionOpen, t0)) {
			t.Fatalf("%s: first line over a budget of 1", root)
		}
		if !b.Over(treeLine(root, proto.ActionOpen, t0)) {
			t.Fatalf("%s: second line in a budget of 1", root)
		}
	}
	if b.Over(treeLine("c", proto.ActionOpen, t0)) || b.Over(treeLine("a", proto.ActionOpen, t0)) {
		t.Fatal("a third tree did not start the budgets over")
	}
}

// The store's Filter keeps every record but flood lines, and passes flushes and the close on.
func TestFilterKeepsNoFloodLines(t *testing.T) {
	inner := &memSink{}
	f := &Filter{Inner: inner, Keep: NotFlooded}
	for i, a := range []string{proto.ActionOpen, proto.ActionOpen, proto.ActionExec, proto.ActionBinding} {
		e := &proto.Event{Event: proto.EventMeta{Action: a}}
		e.Vigil.Flood = i == 1
		if err := f.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(f.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(inner.actions, ","); got != "open,exec,binding" || inner.flushes != 1 || !inner.closed {
		t.Errorf("inner got %s, %d flushes, closed %v", got, inner.flushes, inner.closed)
	}
}
