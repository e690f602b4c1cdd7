package sensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
)

// plSource is a scripted Source. Run waits for release (when set), emits events, waits for
// ctx to be cancelled (unless noWait), emits tail (what a real source drains from its ring
// buffer after cancellation) and returns err. Lost returns counters the test sets with
// setLost, and counts its calls so tests can wait for the pipeline's next loss check.
type plSource struct {
	name    string
	events  []*proto.Event
	tail    []*proto.Event
	release chan struct{}
	noWait  bool
	err     error

	mu        sync.Mutex
	lost      map[string]uint64
	lostCalls int
	emitting  int // emit calls started
	emitted   int // emit calls returned
	returned  bool
}

func (s *plSource) Name() string { return s.name }

func (s *plSource) Run(ctx context.Context, emit func(*proto.Event)) error {
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	}
	send := func(e *proto.Event) {
		s.mu.Lock()
		s.emitting++
		s.mu.Unlock()
		emit(e)
		s.mu.Lock()
		s.emitted++
		s.mu.Unlock()
	}
	for _, e := range s.events {
		send(e)
	}
	if !s.noWait {
		<-ctx.Done()
	}
	for _, e := range s.tail {
		send(e)
	}
	s.mu.Lock()
	s.returned = true
	s.mu.Unlock()
	return s.err
}

func (s *plSource) Lost() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lostCalls++
	out := make(map[string]uint64, len(s.lost))
	for k, v := range s.lost {
		out[k] = v
	}
	return out
}

func (s *plSource) Started() Started { return Started{} }
func (s *plSource) Close() error     { return nil }

func (s *plSource) setLost(m map[string]uint64) {
	s.mu.Lock()
	s.lost = m
	s.mu.Unlock()
}

func (s *plSource) counts() (emitting, emitted, lostCalls int, returned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.emitting, s.emitted, s.lostCalls, s.returned
}

// plSink records what it accepted and the order of writes and flushes. failWrite (by 1-based
// write attempt) and failFlush make it fail; block, when set, holds every Write until closed,
// and entered is signalled (without blocking) whenever a Write starts.
type plSink struct {
	failWrite func(n int) bool
	failFlush bool
	block     chan struct{}
	entered   chan struct{}
	delay     time.Duration // each Write takes this long (a slow disk)

	mu         sync.Mutex
	events     []*proto.Event
	ops        []byte // 'w' for an accepted write, 'f' for a flush, in order
	writes     int    // write attempts
	writeFails int
	flushes    int
	flushFails int
}

func (s *plSink) Write(e *proto.Event) error {
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	if s.block != nil {
		<-s.block
	}
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.failWrite != nil && s.failWrite(s.writes) {
		s.writeFails++
		return errors.New("sink write failed")
	}
	s.events = append(s.events, e)
	s.ops = append(s.ops, 'w')
	return nil
}

func (s *plSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	s.ops = append(s.ops, 'f')
	if s.failFlush {
		s.flushFails++
		return errors.New("sink flush failed")
	}
	return nil
}

func (s *plSink) Close() error { return nil }

func (s *plSink) snapshot() []*proto.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*proto.Event(nil), s.events...)
}

func (s *plSink) lostRecords() []*proto.Event {
	var out []*proto.Event
	for _, e := range s.snapshot() {
		if e.Event.Action == proto.ActionLost {
			out = append(out, e)
		}
	}
	return out
}

// plEvent is an open event of pid tagged with a path, so order can be checked.
func plEvent(pid, i int) *proto.Event {
	return &proto.Event{
		Timestamp: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Event:     proto.EventMeta{Action: proto.ActionOpen, Outcome: proto.OutcomeSuccess, Kind: "event", Dataset: "vigil.kernel"},
		Process:   &proto.Process{Pid: pid, StartBootNs: 1000 * clockTickNs},
		File:      &proto.File{Path: fmt.Sprintf("/tmp/f%d", i), Access: "read"},
	}
}

func plEvents(n int) []*proto.Event {
	out := make([]*proto.Event, n)
	for i := range out {
		out[i] = plEvent(4000+i%3, i)
	}
	return out
}

func plPipeline(t *testing.T, o PipelineOptions) *Pipeline {
	t.Helper()
	if o.Table == nil {
		o.Table = NewProcessTable(ProcessTableOptions{BootID: ptBoot})
	}
	o.Log = zerolog.Nop()
	p, err := NewPipeline(o)
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	return p
}

// plStart runs the pipeline in the background; the returned function waits for Run's result.
func plStart(t *testing.T, ctx context.Context, p *Pipeline) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
			return nil
		}
	}
}

// plWaitFor polls cond until it holds or a deadline passes.
func plWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// plCheckSequence checks that records are numbered 1..N in the order the sink got them.
func plCheckSequence(t *testing.T, got []*proto.Event) {
	t.Helper()
	for i, e := range got {
		if e.Event.Sequence != uint64(i+1) {
			t.Fatalf("record %d has sequence %d, want %d", i, e.Event.Sequence, i+1)
		}
	}
}

// plCheckFlushedAfterLastWrite checks the sink was flushed after the last record it accepted.
func plCheckFlushedAfterLastWrite(t *testing.T, s *plSink) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	lastW := strings.LastIndexByte(string(s.ops), 'w')
	lastF := strings.LastIndexByte(string(s.ops), 'f')
	if lastF < lastW || lastF < 0 {
		t.Errorf("sink not flushed after its last write: ops %q", s.ops)
	}
}

func TestPipelineNewRejectsMissingParts(t *testing.T) {
	src := &plSource{name: "ebpf"}
	tab := NewProcessTable(ProcessTableOptions{})
	sink := &plSink{}
	tests := []struct {
		name    string
		o       PipelineOptions
		wantErr bool
	}{
		{"complete", PipelineOptions{Source: src, Table: tab, Sinks: []Sink{sink}}, false},
		{"no source", PipelineOptions{Table: tab, Sinks: []Sink{sink}}, true},
		{"no table", PipelineOptions{Source: src, Sinks: []Sink{sink}}, true},
		{"nil sinks", PipelineOptions{Source: src, Table: tab}, true},
		{"empty sinks", PipelineOptions{Source: src, Table: tab, Sinks: []Sink{}}, true},
		{"nothing", PipelineOptions{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPipeline(tt.o)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if p != nil {
					t.Error("rejected options still returned a pipeline")
				}
				return
			}
			if p.o.QueueSize <= 0 || p.o.FlushInterval <= 0 || p.o.LostInterval <= 0 {
				t.Errorf("defaults not applied: queue %d flush %v lost %v", p.o.QueueSize, p.o.FlushInterval, p.o.LostInterval)
			}
		})
	}
}

func TestPipelineDeliversInOrderAndStamps(t *testing.T) {
	tests := []struct {
		name      string
		source    string
		host      proto.Host
		n         int
		sinks     int
		queueSize int
	}{
		{"no events", "ebpf", proto.Host{Name: "dev1", BootID: "b1"}, 0, 1, 0},
		{"one event", "ebpf", proto.Host{Name: "dev1", BootID: "b1"}, 1, 1, 0},
		{"many events two sinks", "audit", proto.Host{Name: "build-7"}, 200, 2, 0},
		{"many events small queue", "endpointsecurity", proto.Host{Name: "mac", BootID: "b2"}, 100, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &plSource{name: tt.source, events: plEvents(tt.n)}
			var sinks []Sink
			var fakes []*plSink
			for range tt.sinks {
				s := &plSink{}
				fakes = append(fakes, s)
				sinks = append(sinks, s)
			}
			p := plPipeline(t, PipelineOptions{Source: src, Sinks: sinks, Host: tt.host, QueueSize: tt.queueSize, LostInterval: time.Hour})
			ctx, cancel := context.WithCancel(context.Background())
			wait := plStart(t, ctx, p)
			plWaitFor(t, "all events at the sinks", func() bool {
				for _, s := range fakes {
					if len(s.snapshot()) < tt.n {
						return false
					}
				}
				return true
			})
			cancel()
			if err := wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			for si, s := range fakes {
				got := s.snapshot()
				if len(got) != tt.n {
					t.Fatalf("sink %d got %d records, want %d", si, len(got), tt.n)
				}
				plCheckSequence(t, got)
				for i, e := range got {
					if want := fmt.Sprintf("/tmp/f%d", i); e.File == nil || e.File.Path != want {
						t.Fatalf("sink %d record %d is %+v, want path %s (out of order?)", si, i, e.File, want)
					}
					if e.Host == nil || *e.Host != tt.host {
						t.Errorf("record %d host = %+v, want %+v", i, e.Host, tt.host)
					}
					if e.Vigil.Schema != proto.SchemaVersion {
						t.Errorf("record %d vigil.schema = %q, want %q", i, e.Vigil.Schema, proto.SchemaVersion)
					}
					if e.Vigil.Source != tt.source {
						t.Errorf("record %d vigil.source = %q, want %q", i, e.Vigil.Source, tt.source)
					}
					if e.Process.EntityID == "" {
						t.Errorf("record %d not passed through the process table (no entity id)", i)
					}
				}
				if tt.n > 0 {
					plCheckFlushedAfterLastWrite(t, s)
				}
			}
			if st := p.Stats(); st != (PipelineStats{Received: uint64(tt.n), Written: uint64(tt.n)}) {
				t.Errorf("stats = %+v, want received = written = %d and no sink errors", st, tt.n)
			}
		})
	}
}

func TestPipelineRedactsAndEnriches(t *testing.T) {
	const (
		ghpToken = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345" // 36 alnum after the prefix
		antKey   = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345"
	)
	tests := []struct {
		name     string
		exe      string
		args     []string
		want     []string
		wantMiss []string // substrings that must not appear in any record
		cut      bool     // the kernel truncated argv (vigil.truncated names process.args)
	}{
		{
			"api key flag",
			"/usr/bin/aider",
			[]string{"aider", "--api-key=" + antKey, "--model", "sonnet"},
			[]string{"aider", "--api-key=" + Redacted, "--model", "sonnet"},
			[]string{antKey}, false,
		},
		{
			"github token assignment",
			"/usr/bin/env",
			[]string{"env", "GITHUB_TOKEN=" + ghpToken, "gh", "pr", "list"},
			[]string{"env", "GITHUB_TOKEN=" + Redacted, "gh", "pr", "list"},
			[]string{ghpToken}, false,
		},
		{
			"token in next arg",
			"/usr/bin/curl",
			[]string{"curl", "--token", "hunter2hunter2", "https://example.com"},
			[]string{"curl", "--token", Redacted, "https://example.com"},
			[]string{"hunter2hunter2"}, false,
		},
		{
			"nothing secret",
			"/usr/bin/git",
			[]string{"git", "status", "--short"},
			[]string{"git", "status", "--short"},
			nil, false,
		},
		{
			"token cut at the argv limit",
			"/usr/bin/curl",
			[]string{"curl", "-H", "x-api: " + antKey[:12]},
			[]string{"curl", "-H", "x-api: " + Redacted},
			[]string{antKey[:12]},
			true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const pid, cwd = 4242, "/home/dev/proj"
			start := uint64(7000 * clockTickNs)
			exec := &proto.Event{
				Event:   proto.EventMeta{Action: proto.ActionExec, Outcome: proto.OutcomeSuccess, Kind: "event"},
				Process: &proto.Process{Pid: pid, StartBootNs: start, Executable: tt.exe, WorkingDirectory: cwd, Args: append([]string(nil), tt.args...)},
			}
			if tt.cut {
				exec.Vigil.Truncated = []string{"process.args"}
			}
			open := &proto.Event{
				Event:   proto.EventMeta{Action: proto.ActionOpen, Outcome: proto.OutcomeSuccess, Kind: "event"},
				Process: &proto.Process{Pid: pid, StartBootNs: start},
				File:    &proto.File{Path: "/home/dev/proj/README.md", Access: "read"},
			}
			src := &plSource{name: "ebpf", events: []*proto.Event{exec, open}}
			tab := NewProcessTable(ProcessTableOptions{BootID: ptBoot})
			sink := &plSink{}
			p := plPipeline(t, PipelineOptions{Source: src, Table: tab, Sinks: []Sink{sink}, LostInterval: time.Hour})
			ctx, cancel := context.WithCancel(context.Background())
			wait := plStart(t, ctx, p)
			plWaitFor(t, "two records", func() bool { return len(sink.snapshot()) == 2 })
			cancel()
			if err := wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			got := sink.snapshot()
			if !reflect.DeepEqual(got[0].Process.Args, tt.want) {
				t.Errorf("exec args = %q, want %q", got[0].Process.Args, tt.want)
			}
			o := got[1].Process
			if o.Executable != tt.exe || o.WorkingDirectory != cwd {
				t.Errorf("open not enriched from the table: executable %q cwd %q, want %q %q", o.Executable, o.WorkingDirectory, tt.exe, cwd)
			}
			if !reflect.DeepEqual(o.Args, tt.want) {
				t.Errorf("open args from the table = %q, want the redacted %q", o.Args, tt.want)
			}
			if o.EntityID == "" || o.EntityID != got[0].Process.EntityID {
				t.Errorf("open entity id %q, exec entity id %q: want equal and set", o.EntityID, got[0].Process.EntityID)
			}
			if info, ok := tab.Lookup(pid); !ok || !reflect.DeepEqual(info.Args, tt.want) {
				t.Errorf("table holds args %q (found %v), want the redacted %q", info.Args, ok, tt.want)
			}
			for i, e := range got {
				b, err := json.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				for _, secret := range tt.wantMiss {
					if strings.Contains(string(b), secret) {
						t.Errorf("record %d leaks %q: %s", i, secret, b)
					}
				}
			}
		})
	}
}

func TestPipelineLostRecords(t *testing.T) {
	type step struct {
		set  map[string]uint64
		want map[string]uint64 // the delta of the lost record this step causes; nil for none
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			"deltas of growing counters",
			[]step{
				{map[string]uint64{}, nil},
				{map[string]uint64{"open": 5}, map[string]uint64{"open": 5}},
				{map[string]uint64{"open": 7, "exec": 1}, map[string]uint64{"open": 2, "exec": 1}},
			},
		},
		{
			"no record while counters stay",
			[]step{
				{map[string]uint64{"connect": 3}, map[string]uint64{"connect": 3}},
				{map[string]uint64{"connect": 3}, nil},
				{map[string]uint64{"connect": 3}, nil},
				{map[string]uint64{"connect": 4, "fork": 0}, map[string]uint64{"connect": 1}},
			},
		},
		{
			"nothing ever lost",
			[]step{
				{nil, nil},
				{map[string]uint64{"open": 0}, nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const nEvents = 3
			src := &plSource{name: "ebpf", events: plEvents(nEvents)}
			sink := &plSink{}
			host := proto.Host{Name: "dev1", BootID: ptBoot}
			p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{sink}, Host: host, LostInterval: 10 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wait := plStart(t, ctx, p)

			var wantDeltas []map[string]uint64
			for i, st := range tt.steps {
				src.setLost(st.set)
				_, _, calls, _ := src.counts()
				if st.want != nil {
					wantDeltas = append(wantDeltas, st.want)
					plWaitFor(t, fmt.Sprintf("lost record of step %d", i), func() bool {
						return len(sink.lostRecords()) >= len(wantDeltas)
					})
				} else {
					// Checks run one at a time on the pipeline's goroutine: once a second check
					// has started after setLost, the first one saw the new counters and wrote
					// whatever it was going to write.
					plWaitFor(t, fmt.Sprintf("two loss checks after step %d", i), func() bool {
						_, _, c, _ := src.counts()
						return c >= calls+2
					})
				}
				if n := len(sink.lostRecords()); n != len(wantDeltas) {
					t.Fatalf("after step %d: %d lost records, want %d", i, n, len(wantDeltas))
				}
			}
			cancel()
			if err := wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			lost := sink.lostRecords()
			if len(lost) != len(wantDeltas) {
				t.Fatalf("%d lost records after shutdown, want %d", len(lost), len(wantDeltas))
			}
			for i, e := range lost {
				if !reflect.DeepEqual(e.Vigil.Lost, wantDeltas[i]) {
					t.Errorf("lost record %d counts %v, want %v", i, e.Vigil.Lost, wantDeltas[i])
				}
				if e.Event.Kind != "metric" || e.Process != nil {
					t.Errorf("lost record %d: kind %q process %+v, want a metric without a process", i, e.Event.Kind, e.Process)
				}
				if e.Vigil.Source != "ebpf" || e.Vigil.Schema != proto.SchemaVersion || e.Host == nil || *e.Host != host {
					t.Errorf("lost record %d not stamped: source %q schema %q host %+v", i, e.Vigil.Source, e.Vigil.Schema, e.Host)
				}
			}
			all := sink.snapshot()
			if len(all) != nEvents+len(wantDeltas) {
				t.Errorf("%d records, want %d events and %d lost records", len(all), nEvents, len(wantDeltas))
			}
			plCheckSequence(t, all)
			if st := p.Stats(); st.Received != nEvents || st.Written != uint64(len(all)) || st.SinkErrors != 0 {
				t.Errorf("stats = %+v, want received %d written %d", st, nEvents, len(all))
			}
		})
	}
}

func TestPipelineShutdown(t *testing.T) {
	errRing := errors.New("ring buffer closed")
	tests := []struct {
		name     string
		n, tail  int
		lost     map[string]uint64 // set before Run; only the final check on shutdown sees it
		noWait   bool              // the source returns on its own, before ctx is cancelled
		err      error
		wantLost map[string]uint64
	}{
		{name: "clean", n: 20},
		{name: "source error", n: 20, err: errRing},
		{name: "events drained after cancel", n: 10, tail: 15},
		{name: "final lost record", n: 5, tail: 2, lost: map[string]uint64{"open": 4, "exit": 1}, wantLost: map[string]uint64{"open": 4, "exit": 1}},
		{name: "zero counters give no final record", n: 5, lost: map[string]uint64{"open": 0}},
		{name: "source fails before cancel", n: 8, noWait: true, err: errRing, lost: map[string]uint64{"exec": 2}, wantLost: map[string]uint64{"exec": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := plEvents(tt.n + tt.tail)
			src := &plSource{name: "audit", events: evs[:tt.n], tail: evs[tt.n:], noWait: tt.noWait, err: tt.err, lost: tt.lost}
			// The sink holds the first write until the source has returned, so the rest of the
			// events are still queued when the pipeline learns that the source is done.
			sink := &plSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
			// LostInterval is long, so only the check on shutdown reports loss.
			p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{sink}, QueueSize: tt.n + tt.tail + 1, LostInterval: time.Hour})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wait := plStart(t, ctx, p)
			if !tt.noWait {
				cancel()
			}
			<-sink.entered
			plWaitFor(t, "the source to return", func() bool { _, _, _, r := src.counts(); return r })
			close(sink.block)
			if err := wait(); !errors.Is(err, tt.err) {
				t.Fatalf("Run = %v, want %v", err, tt.err)
			}

			got := sink.snapshot()
			wantN := len(evs)
			if tt.wantLost != nil {
				wantN++
			}
			if len(got) != wantN {
				t.Fatalf("%d records, want %d", len(got), wantN)
			}
			plCheckSequence(t, got)
			for i := range evs {
				if got[i] != evs[i] {
					t.Fatalf("record %d is %+v, want event %d", i, got[i].File, i)
				}
			}
			if tt.wantLost != nil {
				last := got[len(got)-1]
				if last.Event.Action != proto.ActionLost || !reflect.DeepEqual(last.Vigil.Lost, tt.wantLost) {
					t.Errorf("last record %+v lost %v, want a lost record with %v", last.Event, last.Vigil.Lost, tt.wantLost)
				}
			}
			plCheckFlushedAfterLastWrite(t, sink)
			if st := p.Stats(); st.Received != uint64(len(evs)) || st.Written != uint64(wantN) || st.SinkErrors != 0 {
				t.Errorf("stats = %+v, want received %d written %d", st, len(evs), wantN)
			}
		})
	}
}

func TestPipelineSinkFailures(t *testing.T) {
	const n = 10
	tests := []struct {
		name      string
		sinks     []*plSink
		wantWrite uint64 // records every sink accepted
		wantWErrs int    // failed writes over all sinks
	}{
		{
			"every other write fails on one of two sinks",
			[]*plSink{{}, {failWrite: func(i int) bool { return i%2 == 0 }}},
			n / 2, n / 2,
		},
		{
			"flushes fail",
			[]*plSink{{failFlush: true}},
			n, 0,
		},
		{
			"every write fails",
			[]*plSink{{failWrite: func(int) bool { return true }}},
			0, n,
		},
		{
			"both sinks fail writes and flushes",
			[]*plSink{{failWrite: func(i int) bool { return i == 1 }, failFlush: true}, {failWrite: func(i int) bool { return i == n }}},
			n - 2, 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &plSource{name: "ebpf", events: plEvents(n)}
			sinks := make([]Sink, len(tt.sinks))
			for i, s := range tt.sinks {
				sinks[i] = s
			}
			p := plPipeline(t, PipelineOptions{Source: src, Sinks: sinks, LostInterval: time.Hour})
			ctx, cancel := context.WithCancel(context.Background())
			wait := plStart(t, ctx, p)
			plWaitFor(t, "every write attempted", func() bool {
				for _, s := range tt.sinks {
					s.mu.Lock()
					w := s.writes
					s.mu.Unlock()
					if w < n {
						return false
					}
				}
				return true
			})
			cancel()
			if err := wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			wantErrs := uint64(tt.wantWErrs)
			for i, s := range tt.sinks {
				s.mu.Lock()
				if s.writes != n {
					t.Errorf("sink %d saw %d writes, want %d: a failure stopped the pipeline", i, s.writes, n)
				}
				wantErrs += uint64(s.flushFails)
				if s.failFlush && s.flushFails == 0 {
					t.Errorf("sink %d never flushed", i)
				}
				s.mu.Unlock()
				// Sequence numbers are per record, not per accepted write: a failing sink
				// shows the gap.
				for _, e := range s.snapshot() {
					if e.Event.Sequence < 1 || e.Event.Sequence > n {
						t.Errorf("sink %d got sequence %d outside 1..%d", i, e.Event.Sequence, n)
					}
				}
			}
			want := PipelineStats{Received: n, Written: tt.wantWrite, SinkErrors: wantErrs}
			if st := p.Stats(); st != want {
				t.Errorf("stats = %+v, want %+v", st, want)
			}
		})
	}
}

func TestPipelineBackpressure(t *testing.T) {
	tests := []struct {
		name      string
		queueSize int
		n         int
	}{
		{"queue of one", 1, 10},
		{"queue of three", 3, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := plEvents(tt.n)
			src := &plSource{name: "ebpf", events: evs}
			sink := &plSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
			p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{sink}, QueueSize: tt.queueSize, LostInterval: time.Hour})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wait := plStart(t, ctx, p)

			// One event is held by the blocked sink and queueSize wait in the queue, so the
			// source's next emit must block rather than drop.
			<-sink.entered
			held := tt.queueSize + 1
			plWaitFor(t, "the source to block in emit", func() bool {
				emitting, _, _, _ := src.counts()
				return emitting == held+1
			})
			time.Sleep(20 * time.Millisecond) // give a non-blocking emit the chance to show itself
			if emitting, emitted, _, _ := src.counts(); emitting != held+1 || emitted != held {
				t.Fatalf("source started %d and finished %d emits while the sink was blocked, want %d and %d", emitting, emitted, held+1, held)
			}
			if st := p.Stats(); st.Written != 0 {
				t.Fatalf("written %d while the sink was blocked", st.Written)
			}

			close(sink.block)
			plWaitFor(t, "all events after unblocking", func() bool { return len(sink.snapshot()) == tt.n })
			cancel()
			if err := wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := sink.snapshot()
			for i := range evs {
				if got[i] != evs[i] {
					t.Fatalf("record %d is not event %d", i, i)
				}
			}
			plCheckSequence(t, got)
			if st := p.Stats(); st.Received != uint64(tt.n) || st.Written != uint64(tt.n) {
				t.Errorf("stats = %+v, want received = written = %d", st, tt.n)
			}
		})
	}
}

// plStage holds every pushed event and reports full once it holds more than capacity;
// Release hands back all it holds.
type plStage struct {
	capacity int

	mu       sync.Mutex
	held     []*proto.Event
	maxHeld  int
	releases int
}

func (s *plStage) Push(e *proto.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, e)
	s.maxHeld = max(s.maxHeld, len(s.held))
	return len(s.held) > s.capacity
}

func (s *plStage) Release(time.Time, bool) []*proto.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releases++
	out := s.held
	s.held = nil
	return out
}

// TestPipelineReleasesWhenTheStageIsFull: a stage that reports full is released at once,
// not at the next periodic release, so what it holds stays bounded under a flood.
func TestPipelineReleasesWhenTheStageIsFull(t *testing.T) {
	const n, capacity = 100, 10
	src := &plSource{name: "ebpf", events: plEvents(n)}
	sink := &plSink{}
	stage := &plStage{capacity: capacity}
	p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{sink}, Stage: stage, ReleaseInterval: time.Hour, LostInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	wait := plStart(t, ctx, p)
	// Without the full signal nothing would reach the sink before shutdown.
	plWaitFor(t, "released events at the sink", func() bool { return len(sink.snapshot()) >= n-capacity-1 })
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := sink.snapshot()
	if len(got) != n {
		t.Fatalf("sink got %d records, want %d", len(got), n)
	}
	plCheckSequence(t, got)
	stage.mu.Lock()
	defer stage.mu.Unlock()
	if stage.maxHeld != capacity+1 || stage.releases < n/(capacity+1) {
		t.Errorf("stage held up to %d events over %d releases, want at most %d held and at least %d releases",
			stage.maxHeld, stage.releases, capacity+1, n/(capacity+1))
	}
}

// A stop under a backlog the sink cannot write in time: past DrainTimeout the rest is
// counted in one last lost record (kind shutdown), so every event is a line or a count.
func TestPipelineCountsWhatTheDrainCannotWrite(t *testing.T) {
	const backlog = 2000
	tail := make([]*proto.Event, backlog)
	for i := range tail {
		tail[i] = &proto.Event{Event: proto.EventMeta{Action: proto.ActionOpen, Kind: "event"}, Process: &proto.Process{Pid: 77}}
	}
	src := &plSource{name: "ebpf", tail: tail}
	sink := &plSink{delay: 200 * time.Microsecond}
	p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{sink}, QueueSize: 16, DrainTimeout: 50 * time.Millisecond, LostInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	wait := plStart(t, ctx, p)
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := sink.snapshot()
	written, shutdown := 0, uint64(0)
	for _, e := range got {
		switch e.Event.Action {
		case proto.ActionOpen:
			written++
		case proto.ActionLost:
			shutdown += e.Vigil.Lost["shutdown"]
		}
	}
	if shutdown == 0 {
		t.Fatalf("%d of %d written and no shutdown count: the drain was not cut short, nothing tested", written, backlog)
	}
	if written+int(shutdown) != backlog {
		t.Errorf("%d written + %d counted = %d, want every one of %d", written, shutdown, written+int(shutdown), backlog)
	}
	if last := got[len(got)-1]; last.Event.Action != proto.ActionLost {
		t.Errorf("last record %s, want the lost record", last.Event.Action)
	}
}

// TestPipelineWritesRecordsSentToIt: records made elsewhere (the inventory scan) are written
// in order with the kernel's, numbered, stamped with the host, and flushed.
func TestPipelineWritesRecordsSentToIt(t *testing.T) {
	records := make(chan []*proto.Event, 1)
	sink := &plSink{}
	host := proto.Host{Name: "dev1", BootID: "b1"}
	p := plPipeline(t, PipelineOptions{Source: &plSource{name: "ebpf"}, Sinks: []Sink{sink}, Host: host, LostInterval: time.Hour, Records: records})
	ctx, cancel := context.WithCancel(context.Background())
	wait := plStart(t, ctx, p)
	records <- []*proto.Event{
		{Event: proto.EventMeta{Action: proto.ActionInventory, Kind: proto.KindState}, Vigil: proto.Vigil{Inventory: &proto.Inventory{Scan: "a"}}},
		{Event: proto.EventMeta{Action: proto.ActionInventory, Kind: proto.KindState}, Vigil: proto.Vigil{Inventory: &proto.Inventory{Scan: "b"}}},
	}
	plWaitFor(t, "both records at the sink", func() bool { return len(sink.snapshot()) == 2 })
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := sink.snapshot()
	plCheckSequence(t, got)
	for i, e := range got {
		if e.Host == nil || *e.Host != host || e.Vigil.Inventory == nil || e.Vigil.Inventory.Scan != string(rune('a'+i)) {
			t.Errorf("record %d = %+v", i, e)
		}
	}
	plCheckFlushedAfterLastWrite(t, sink)
}
