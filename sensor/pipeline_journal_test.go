package sensor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/holdjournal"
)

// dyingStage releases the first `release` events pushed, each after a record of its own (as
// the correlator puts agent lines among kernel lines), and holds the rest for ever, even when
// asked for everything: the sensor dies holding them.
type dyingStage struct {
	release int

	mu     sync.Mutex
	pushed []*proto.Event
	next   int
}

func (s *dyingStage) Push(e *proto.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushed = append(s.pushed, e)
	return false
}

func (s *dyingStage) Release(time.Time, bool) []*proto.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*proto.Event
	for ; s.next < min(s.release, len(s.pushed)); s.next++ {
		own := &proto.Event{Event: proto.EventMeta{Action: "agent.tool_call", Kind: "event"}}
		out = append(out, own, s.pushed[s.next])
	}
	return out
}

func openJournal(t *testing.T, dir string) *holdjournal.Journal {
	t.Helper()
	j, err := holdjournal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestPipelineWritesWhatAKilledRunHeld: a run that dies holding events leaves them in the
// journal; the next run writes them first, marked recovered, with their own host, and none
// of the events the dead run did write.
func TestPipelineWritesWhatAKilledRunHeld(t *testing.T) {
	const n, written = 50, 20
	dir := t.TempDir()

	first := openJournal(t, dir)
	sink := &plSink{}
	stage := &dyingStage{release: written}
	src := &plSource{name: "ebpf", events: plEvents(n)}
	p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{sink}, Stage: stage, Journal: first, Host: proto.Host{Name: "h", BootID: "boot-1"}, ReleaseInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	wait := plStart(t, ctx, p)
	plWaitFor(t, "the first run's released events", func() bool { return len(sink.snapshot()) == 2*written })
	cancel()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	// Close, not a clean stop: the stage still holds 30 events, so they stay on disk.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := openJournal(t, dir)
	sink2 := &plSink{}
	src2 := &plSource{name: "ebpf", events: []*proto.Event{plEvent(5000, 999)}}
	p2 := plPipeline(t, PipelineOptions{Source: src2, Sinks: []Sink{sink2}, Stage: &plStage{capacity: 1000}, Journal: second, Host: proto.Host{Name: "h", BootID: "boot-2"}})
	ctx2, cancel2 := context.WithCancel(context.Background())
	wait2 := plStart(t, ctx2, p2)
	plWaitFor(t, "the second run's recovered events", func() bool { return len(sink2.snapshot()) >= n-written })
	cancel2()
	if err := wait2(); err != nil {
		t.Fatal(err)
	}
	got := sink2.snapshot()
	plCheckSequence(t, got)
	if len(got) != n-written+1 {
		t.Fatalf("second run wrote %d records, want %d recovered and its own one", len(got), n-written)
	}
	for i, e := range got[:n-written] {
		if want := plEvent(0, written+i).File.Path; e.File == nil || e.File.Path != want || !e.Vigil.Recovered || e.Host.BootID != "boot-1" {
			t.Errorf("record %d: %+v recovered=%v host=%+v; want %s, recovered, from boot-1", i, e.File, e.Vigil.Recovered, e.Host, want)
		}
	}
	if own := got[len(got)-1]; own.Vigil.Recovered || own.Host.BootID != "boot-2" || own.File.Path != "/tmp/f999" {
		t.Errorf("the second run's own record: recovered=%v host=%+v path %s", own.Vigil.Recovered, own.Host, own.File.Path)
	}
	if st := p2.Stats(); st.Recovered != n-written {
		t.Errorf("Stats().Recovered = %d, want %d", st.Recovered, n-written)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if again, _ := openJournal(t, dir).Recovered(); len(again) != 0 {
		t.Errorf("a third start recovers %d events: the second run's clean stop left them", len(again))
	}
}
