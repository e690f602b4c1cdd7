package sensor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor/holdjournal"
	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
)

// BenchmarkPipelineOpen measures the pipeline's per-event work for an open event of a known
// tracked process: redaction check, process table enrichment and the JSONL sink's encoding,
// flushed to a file every 256 events like a busy reader's batches. The event is rebuilt in
// place from a template each iteration, so the decoder's allocations are not counted here.
// Side by side: straight to the sink, through a stage that releases at once (the
// correlator's place, without its work), and the same with the hold journal.
func BenchmarkPipelineOpen(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchPipelineOpen(b, false, false) })
	b.Run("stage", func(b *testing.B) { benchPipelineOpen(b, true, false) })
	b.Run("stage+journal", func(b *testing.B) { benchPipelineOpen(b, true, true) })
}

// passStage hands every event back at the next Release, asked for in batches of 256 like
// the loop's flushes.
type passStage struct{ held []*proto.Event }

func (s *passStage) Push(e *proto.Event) bool { s.held = append(s.held, e); return len(s.held) >= 256 }

func (s *passStage) Release(time.Time, bool) []*proto.Event {
	out := s.held
	s.held = s.held[:0:0]
	return out
}

func benchPipelineOpen(b *testing.B, staged, journalled bool) {
	sink, err := jsonl.Open(jsonl.Options{Path: filepath.Join(b.TempDir(), "bench.jsonl"), MaxSizeBytes: 64 << 20, MaxFiles: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	tab := NewProcessTable(ProcessTableOptions{BootID: ptBoot})
	const boot = 5_121_000_000_123
	tab.Seed(ProcessInfo{Pid: 52311, PPid: 1, StartBootNs: boot - 1e9, Name: "go", Executable: "/usr/local/go/bin/go", Args: []string{"go", "run", "./bench"}, Cwd: "/work/main"})
	tab.Seed(ProcessInfo{Pid: 52398, PPid: 52311, StartBootNs: boot, Name: "claude", Executable: "/tmp/vigil-bench-123/claude",
		Args: []string{"/tmp/vigil-bench-123/claude", "-work", "open", "-n", "200000"}, Cwd: "/work/main", RootPid: 52398, Agent: "claude-code"})
	o := PipelineOptions{Source: &plSource{name: "ebpf"}, Table: tab, Sinks: []Sink{sink}, Host: proto.Host{Name: "vigil-dev-vm", BootID: ptBoot}}
	if staged {
		o.Stage = &passStage{}
	}
	if journalled {
		j, err := holdjournal.Open(filepath.Join(b.TempDir(), "hold"))
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		o.Journal = j
	}
	p, err := NewPipeline(o)
	if err != nil {
		b.Fatal(err)
	}

	ts := time.Date(2026, 11, 24, 10, 31, 7, 120400123, time.UTC)
	start := ts.Add(-1500 * time.Millisecond)
	agent := &proto.GenAIAgent{Name: "claude-code"}
	var (
		e      proto.Event
		proc   proto.Process
		user   proto.User
		group  proto.Group
		thread proto.Thread
		parent proto.ParentProcess
		root   proto.Root
		genai  proto.GenAI
		file   proto.File
	)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		group = proto.Group{ID: "1000"}
		user = proto.User{ID: "1000", Group: &group}
		thread = proto.Thread{ID: 52401}
		parent = proto.ParentProcess{Pid: 52311}
		proc = proto.Process{Pid: 52398, Thread: &thread, Name: "claude", Start: &start, Parent: &parent, StartBootNs: boot}
		root = proto.Root{Pid: 52398}
		genai = proto.GenAI{Agent: agent}
		file = proto.File{Path: "/tmp/loadgen-open-2871635312/f", Access: "read", Flags: "O_RDONLY|O_CLOEXEC"}
		e = proto.Event{
			Timestamp: ts,
			Event:     proto.EventMeta{Action: proto.ActionOpen, Outcome: proto.OutcomeSuccess, Kind: "event", Category: "file", Dataset: "vigil.kernel"},
			User:      &user, Process: &proc, File: &file, GenAI: &genai,
			Vigil: proto.Vigil{Schema: proto.SchemaVersion, Root: &root, Source: "ebpf"},
		}
		p.process(&e)
		if n++; n%256 == 0 {
			p.flush()
		}
	}
	b.StopTimer()
	if s := p.Stats(); s.SinkErrors != 0 {
		b.Fatalf("sink errors: %+v", s)
	}
}
