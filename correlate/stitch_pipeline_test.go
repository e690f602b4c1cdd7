package correlate

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// spSource emits its events, then waits for the end of the run.
type spSource struct{ events []*proto.Event }

func (s *spSource) Name() string { return "ebpf" }

func (s *spSource) Run(ctx context.Context, emit func(*proto.Event)) error {
	for _, e := range s.events {
		emit(e)
	}
	<-ctx.Done()
	return nil
}

func (s *spSource) Lost() map[string]uint64 { return nil }

func (s *spSource) Started() sensor.Started { return sensor.Started{} }
func (s *spSource) Close() error            { return nil }

// spSink keeps a copy of every record as written.
type spSink struct {
	mu    sync.Mutex
	lines []proto.Event
}

func (s *spSink) Write(e *proto.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, *e)
	return nil
}

func (s *spSink) Flush() error { return nil }
func (s *spSink) Close() error { return nil }

func (s *spSink) snapshot() []proto.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]proto.Event(nil), s.lines...)
}

// TestPipelineLateBindingRecord runs the stitcher as the pipeline's stage: the Bash call's
// shell is written unbound when its hold runs out, and once the call's telemetry arrives a
// binding record follows that names the shell's line by the sequence the pipeline gave it.
func TestPipelineLateBindingRecord(t *testing.T) {
	shell := kev{action: proto.ActionExec, pid: 31292, ppid: stClaudePid, root: stClaudePid, at: "11:25:41.323068",
		args: stClaudeShellArgv(claudeBashCmd), cwd: stClaudeRepo, join: claudeJoin(stClaudeTraceParent)}.event()
	child := kev{action: proto.ActionExec, pid: 31294, ppid: 31292, root: stClaudePid, at: "11:25:41.367902",
		args: []string{"readlink", "/proc/31292/fd/0"}, cwd: stClaudeRepo}.event()
	st := NewStitcher(StitcherOptions{Lookup: stLookup, Hold: 20 * time.Millisecond, Late: time.Minute, MaxLate: 10})
	sink := &spSink{}
	p, err := sensor.NewPipeline(sensor.PipelineOptions{
		Source: &spSource{events: []*proto.Event{shell, child}}, Table: sensor.NewProcessTable(sensor.ProcessTableOptions{}),
		Sinks: []sensor.Sink{sink}, Stage: st, ReleaseInterval: 5 * time.Millisecond, LostInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor := func(what string, ok func([]proto.Event) bool) []proto.Event {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if lines := sink.snapshot(); ok(lines) {
				return lines
			}
		}
		cancel()
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
	written := waitFor("the kernel lines", func(l []proto.Event) bool { return len(l) == 2 })
	for _, l := range written {
		if l.Vigil.Binding != proto.BindingNone {
			t.Fatalf("pid %d written %q before its telemetry", l.Process.Pid, l.Vigil.Binding)
		}
	}
	stAdd(st, stRun(t, "claude", stClaudePid, nil))
	// The run's telemetry comes in more than one batch: a release between them may bind a
	// line by its command (medium) before the spans bind it by its traceparent (high), so a
	// line gets one or two records; the last one counts.
	final := func(l []proto.Event) map[uint64]proto.BindingRecord {
		last := map[uint64]proto.BindingRecord{}
		for i := range l {
			if r, ok := proto.BindingRecordOf(&l[i]); ok {
				last[r.Sequence] = r
			}
		}
		return last
	}
	lines := waitFor("both lines bound by their traceparent", func(l []proto.Event) bool {
		last := final(l)
		return len(last) == 2 && last[1].Binding == proto.BindingTraceParent && last[2].Binding == proto.BindingTraceParent
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, l := range lines {
		if l.Event.Sequence != uint64(i+1) {
			t.Fatalf("line %d has sequence %d", i, l.Event.Sequence)
		}
		r, ok := proto.BindingRecordOf(&l)
		if !ok {
			continue
		}
		if l.Event.Sequence <= r.Sequence {
			t.Errorf("binding record %d precedes the line %d it binds", l.Event.Sequence, r.Sequence)
		}
		line := written[r.Sequence-1]
		if line.Process.Pid != r.Pid || r.CallID != stClaudeBash || r.SessionID != claudeSession ||
			r.PromptID != claudePrompt || r.LateMs <= 0 || final(lines)[r.Sequence].Binding != proto.BindingTraceParent {
			t.Errorf("record %+v for line %d (pid %d)", r, r.Sequence, line.Process.Pid)
		}
	}
}
