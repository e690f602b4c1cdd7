package queue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

var _ sensor.LineSink = (*Sink)(nil)

// memSink records what reaches it; gate, when set, holds every Write until it is closed.
type memSink struct {
	gate chan struct{}

	mu      sync.Mutex
	events  []*proto.Event
	lines   []string
	flushes int
	closed  bool
}

func (m *memSink) Write(e *proto.Event) error {
	if m.gate != nil {
		<-m.gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

func (m *memSink) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushes++
	return nil
}

func (m *memSink) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// got lists the file paths of the records that name one.
func (m *memSink) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.events {
		if e.File != nil {
			out = append(out, e.File.Path)
		}
	}
	return out
}

// lineSink also takes encoded lines.
type lineSink struct{ memSink }

func (l *lineSink) WriteLine(e *proto.Event, line []byte) error {
	l.mu.Lock()
	l.lines = append(l.lines, string(line))
	l.mu.Unlock()
	return l.Write(e)
}

func openEvent(n int) *proto.Event {
	return &proto.Event{Event: proto.EventMeta{Action: proto.ActionOpen}, File: &proto.File{Path: fmt.Sprintf("/f%d", n)}}
}

func want(from, to int) []string {
	var out []string
	for n := from; n <= to; n++ {
		out = append(out, fmt.Sprintf("/f%d", n))
	}
	return out
}

func TestRecordsPassInOrderAndCloseDrains(t *testing.T) {
	inner := &memSink{}
	q := New(inner, Options{Name: "store", Log: zerolog.Nop()})
	for n := 1; n <= 1000; n++ {
		if err := q.Write(openEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if got := inner.got(); !slices.Equal(got, want(1, 1000)) {
		t.Fatalf("inner got %d records, want f1..f1000 in order", len(got))
	}
	if !inner.closed || inner.flushes == 0 {
		t.Errorf("inner closed %v after %d flushes; want closed and flushed", inner.closed, inner.flushes)
	}
	if st := q.Stats(); st.Written != 1000 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 1000 written, none dropped", st)
	}
}

// A stuck sink never holds up the writer: what its full queue cannot take is counted, and
// everything is either written or counted once it moves again.
func TestStuckSinkDropsAndCounts(t *testing.T) {
	inner := &memSink{gate: make(chan struct{})}
	q := New(inner, Options{Name: "store", Size: 16, Log: zerolog.Nop()})
	done := make(chan struct{})
	go func() {
		for n := 1; n <= 100; n++ {
			q.Write(openEvent(n))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stuck sink")
	}
	close(inner.gate)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	if st.Dropped == 0 || st.Written+st.Dropped != 100 || uint64(len(inner.got())) != st.Written {
		t.Fatalf("stats %+v, inner got %d; want drops, and written + dropped = 100", st, len(inner.got()))
	}
	if l := q.Losses(); l["sink_store"] != st.Dropped {
		t.Errorf("Losses %v, want sink_store = %d", l, st.Dropped)
	}
}

func TestWriteLineCopiesTheLine(t *testing.T) {
	inner := &lineSink{}
	q := New(inner, Options{Name: "otlp", Log: zerolog.Nop()})
	buf := []byte("line one\n")
	q.WriteLine(openEvent(1), buf)
	copy(buf, "LINE TWO\n") // the pipeline reuses its buffer at once
	q.WriteLine(openEvent(2), buf)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inner.lines, []string{"line one\n", "LINE TWO\n"}) {
		t.Errorf("inner got lines %q", inner.lines)
	}
}

// encoderSink encodes lines of its own, as the OCSF export does.
type encoderSink struct{ memSink }

func (e *encoderSink) EncodesLines() {}

// A queue in front of a sink that keeps records (the store) says so, so that the pipeline
// hands it whole records; one in front of a sink of lines (the OTLP export, native or OCSF)
// writes lines.
func TestKeepsRecordsFollowsTheInnerSink(t *testing.T) {
	records := New(&memSink{}, Options{Name: "store", Log: zerolog.Nop()})
	lines := New(&lineSink{}, Options{Name: "otlp", Log: zerolog.Nop()})
	encoder := New(&encoderSink{}, Options{Name: "otlp-ocsf", Log: zerolog.Nop()})
	for _, q := range []*Sink{records, lines, encoder} {
		defer q.Close()
	}
	var _ sensor.RecordKeeper = records
	if !records.KeepsRecords() || lines.KeepsRecords() || encoder.KeepsRecords() {
		t.Errorf("KeepsRecords: %v in front of a record sink, %v in front of a line sink, %v in front of a line encoder",
			records.KeepsRecords(), lines.KeepsRecords(), encoder.KeepsRecords())
	}
}

// staticSource emits its events, then waits for the stop.
type staticSource struct{ events []*proto.Event }

func (s *staticSource) Name() string { return "ebpf" }
func (s *staticSource) Run(ctx context.Context, emit func(*proto.Event)) error {
	for _, e := range s.events {
		emit(e)
	}
	<-ctx.Done()
	return nil
}
func (s *staticSource) Lost() map[string]uint64 { return nil }

func (s *staticSource) Started() sensor.Started { return sensor.Started{} }
func (s *staticSource) Close() error            { return nil }

// In the pipeline: a stuck secondary sink costs the primary nothing, and its drops are a
// loss kind of their own, not kernel loss.
func TestPipelineWithAStuckSecondarySink(t *testing.T) {
	const n = 200
	var events []*proto.Event
	for i := 1; i <= n; i++ {
		e := openEvent(i)
		e.Process = &proto.Process{Pid: 4000}
		events = append(events, e)
	}
	primary := &memSink{}
	stuck := &memSink{gate: make(chan struct{})}
	q := New(stuck, Options{Name: "store", Size: 8, Log: zerolog.Nop()})
	p, err := sensor.NewPipeline(sensor.PipelineOptions{
		Source: &staticSource{events: events}, Table: sensor.NewProcessTable(sensor.ProcessTableOptions{BootID: "b"}),
		Sinks: []sensor.Sink{primary, q}, Losses: []func() map[string]uint64{q.Losses}, LostInterval: time.Hour, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(primary.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the primary sink has %d of %d records: the stuck sink held the pipeline up", len(primary.got()), n)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(stuck.gate)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	primary.mu.Lock()
	defer primary.mu.Unlock()
	var lost map[string]uint64
	for _, e := range primary.events {
		if e.Event.Action == proto.ActionLost {
			lost = e.Vigil.Lost
		}
	}
	// The final lost record goes to the stuck queue too; when the queue is still full it is
	// dropped after it was counted: the queue's own count (the exit summary's) has that one,
	// the record cannot.
	st := q.Stats()
	if st.Written+st.Dropped != n+1 {
		t.Errorf("queue %+v: written + dropped != the %d events and the lost record", st, n)
	}
	if got := lost["sink_store"]; st.Dropped == 0 || (got != st.Dropped && got != st.Dropped-1) || len(lost) != 1 {
		t.Errorf("lost record %v, queue %+v: want the store's drops (but the record itself) as sink_store, nothing else", lost, st)
	}
}
