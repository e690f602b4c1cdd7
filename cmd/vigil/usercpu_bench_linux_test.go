package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/bpf"
	"github.com/vigil-sensor/vigil/correlate/rules"
	"github.com/vigil-sensor/vigil/linux"
	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/holdjournal"
)

// BenchmarkUserCPU is the sensor's user-space CPU per kernel event (issue 16, deliverable 3):
// one open record of a tracked agent process, as the kernel writes it into the ring, through
// everything `vigil run` does with it under the shipped defaults (sensor/default.yaml), built
// by the same functions run.go calls: the eBPF reader's decoder, the pipeline with redaction
// and the process table, the hold journal, the stitcher with its hold, the starter rule pack,
// one JSONL encoding, the JSONL files (events and untrusted, split) and the store behind its
// queue. Only the inputs are off (OTLP receivers, hook socket: they listen, they are not on
// an event's path). Run it with -cpu 1: the shipped max_cpus is 1, so the store's goroutine
// shares the core with the pipeline.
//
// "path" is the whole of it, ns/op per event, the store's goroutine included: the timer runs
// until the outputs are closed, which is when the store has written what its queue took.
// store_dropped/event is what the store's full queue could not take (its loss kind
// sink_store): a store that cannot keep up costs less CPU here than it would if it could.
// "path-nostore" is the same without the store (output.store ""), so the store's share is the
// difference. The other sub-benchmarks are each step alone, on events made ready for it
// outside the timer, so that they add up to "path-nostore" less the pipeline's own loop (the
// channel from the reader, flush decisions, counters).
func BenchmarkUserCPU(b *testing.B) {
	b.Run("path", func(b *testing.B) { benchUserPath(b, true) })
	b.Run("path-nostore", func(b *testing.B) { benchUserPath(b, false) })
	b.Run("decode", benchUserDecode)
	b.Run("enrich", func(b *testing.B) { benchUserStep(b, stepNone, (*userBench).enrich, nil) })
	b.Run("journal", func(b *testing.B) { benchUserStep(b, stepEnrich, (*userBench).journal, (*userBench).commitJournal) })
	b.Run("correlate", func(b *testing.B) { benchUserStep(b, stepEnrich, (*userBench).correlate, nil) })
	b.Run("detect", func(b *testing.B) { benchUserStep(b, stepBind, (*userBench).detect, nil) })
	b.Run("encode", func(b *testing.B) { benchUserStep(b, stepBind, (*userBench).encode, nil) })
	b.Run("write", func(b *testing.B) { benchUserStep(b, stepEncode, (*userBench).writeJSONL, (*userBench).flushJSONL) })
	b.Run("store", func(b *testing.B) { benchUserStep(b, stepBind, (*userBench).store, (*userBench).flushStore) })
}

// The tracked process the records come from: a Claude Code root seeded by the bootstrap.
const (
	ucBootNs  = 5_123_456_789_012
	ucStartNs = 5_121_000_000_123
	ucPid     = 52398
	ucBootID  = "6f1f3a2e-4f34-4d6e-9b0a-2f9c7c1d5e10"
)

// userOpenRecord is an open record as the kernel writes it for a tracked process's successful
// open (linux/decode_bench_linux_test.go's benchOpenRecord): the path walked from the opened
// file, leaf first, the record cut right after it.
func userOpenRecord(agent uint32) []byte {
	var x bpf.VigilOpenEvent
	x.Hdr = bpf.VigilEventHeader{
		Ts: ucBootNs, StartNs: ucStartNs, Kind: uint32(bpf.VigilEventKindEVENT_OPEN),
		Pid: ucPid, Tid: 52401, Ppid: 52311, Root: ucPid, Agent: agent, Uid: 1000, Gid: 1000,
	}
	copy(x.Hdr.Comm[:], "claude")
	x.Ret = 3
	x.Flags = 0o2000000 // O_RDONLY|O_CLOEXEC
	x.Dfd = -100
	x.WalkKind = uint32(bpf.VigilWalkKindWALK_FILE)
	x.WalkLen = uint32(copy(x.Walk[:], "f\x00loadgen-open-2871635312\x00tmp\x00"))
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&x)), unsafe.Sizeof(x))
	return append([]byte(nil), raw[:int(unsafe.Offsetof(x.Walk))+int(x.WalkLen)]...)
}

// userBench is the sensor as runCommand wires it, with its outputs in a temporary directory.
type userBench struct {
	cfg      sensor.Config
	dec      *linux.RecordDecoder
	raw      []byte
	table    *sensor.ProcessTable
	hasher   *sensor.ExeHasher
	corr     *correlator
	detector *rules.Detector
	hold     *holdjournal.Journal
	out      *outputs
	host     *proto.Host
	line     []byte   // the record being encoded
	lines    [][]byte // a batch's lines, encoded before the write step
	next     int      // the batch's line the write step takes next
	seq      uint64
	added    uint64 // events added to the hold journal
}

// newUserBench wires the shipped defaults; store false turns output.store off.
func newUserBench(b *testing.B, store bool) *userBench {
	b.Helper()
	dir := b.TempDir()
	cfg := sensor.DefaultConfig()
	cfg.Output.JSONL = filepath.Join(dir, "events.jsonl")
	cfg.Output.UntrustedJSONL = filepath.Join(dir, "untrusted.jsonl")
	cfg.Output.FloodJSONL = filepath.Join(dir, "floods.jsonl")
	cfg.Output.Store = ""
	if store {
		cfg.Output.Store = filepath.Join(dir, "vigil.db")
	}
	cfg.Correlate.HoldJournal = filepath.Join(dir, "hold")
	cfg.Correlate.OTLPHTTP, cfg.Correlate.OTLPGRPC, cfg.Correlate.HookSocket = "", "", ""
	cfg.Detections.RulesDir = filepath.Join(dir, "rules.d") // none: the starter pack alone
	if err := os.Mkdir(cfg.Detections.RulesDir, 0o700); err != nil {
		b.Fatal(err)
	}
	log := zerolog.Nop()
	cat, err := cfg.Catalog()
	if err != nil {
		b.Fatal(err)
	}
	u := &userBench{cfg: cfg, raw: userOpenRecord(cat.ID("claude-code")), host: &proto.Host{Name: "vigil-dev-vm", BootID: ucBootID}}
	u.dec = linux.NewRecordDecoder(time.Duration(1_764_000_000)*time.Second, cat)
	if u.detector, err = startDetections(cfg, log); err != nil {
		b.Fatalf("detections: %v", err)
	}
	u.hasher = sensor.NewExeHasher(sensor.ExeHasherOptions{MaxEntries: 4096, MaxFileBytes: 512 << 20})
	b.Cleanup(u.hasher.Close)
	u.table = sensor.NewProcessTable(sensor.ProcessTableOptions{
		BootID:     ucBootID,
		MaxEntries: cfg.ProcessTable.MaxEntries,
		ExitedTTL:  time.Duration(cfg.ProcessTable.ExitedTTLSeconds) * time.Second,
		Hasher:     u.hasher,
	})
	u.table.Seed(sensor.ProcessInfo{Pid: 52311, PPid: 1, StartBootNs: ucStartNs - 1e9, Name: "bash", Executable: "/usr/bin/bash",
		Args: sensor.RedactArgs([]string{"bash"}), Cwd: "/work/main"})
	u.table.Seed(sensor.ProcessInfo{Pid: ucPid, PPid: 52311, StartBootNs: ucStartNs, Name: "claude", Executable: "/home/dev/.local/bin/claude",
		Args: sensor.RedactArgs([]string{"claude", "--print", "fix the failing test"}), Cwd: "/work/main", UID: 1000, GID: 1000, RootPid: ucPid, Agent: "claude-code"})
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if u.corr, err = startCorrelator(ctx, cfg, cat, u.table, nil, nil, log); err != nil {
		b.Fatalf("correlator: %v", err)
	}
	if u.hold, err = holdjournal.Open(cfg.Correlate.HoldJournal); err != nil {
		b.Fatalf("hold journal: %v", err)
	}
	b.Cleanup(func() { u.hold.Close() })
	if u.out, err = openOutputs(cfg, log); err != nil {
		b.Fatalf("outputs: %v", err)
	}
	b.Cleanup(func() { u.out.close() })
	return u
}

// recordSource is the eBPF source's reader over records already in memory: it decodes n of
// them and emits each, then ends (which ends the pipeline's Run once it has written them).
type recordSource struct {
	u *userBench
	n int
}

func (s *recordSource) Name() string            { return "ebpf" }
func (s *recordSource) Lost() map[string]uint64 { return nil }
func (s *recordSource) Started() sensor.Started { return sensor.Started{BootID: ucBootID} }
func (s *recordSource) Close() error            { return nil }
func (s *recordSource) Run(_ context.Context, emit func(*proto.Event)) error {
	for range s.n {
		e, err := s.u.dec.Decode(s.u.raw)
		if err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		emit(e)
	}
	return nil
}

func benchUserPath(b *testing.B, store bool) {
	u := newUserBench(b, store)
	src := &recordSource{u: u, n: b.N}
	pipe, err := sensor.NewPipeline(sensor.PipelineOptions{
		Source:    src,
		Table:     u.table,
		Sinks:     u.out.sinks(),
		Host:      *u.host,
		QueueSize: u.cfg.Pipeline.QueueSize,
		Stage:     u.corr.stitcher,
		Journal:   u.hold,
		Detector:  detectorOption(u.detector),
		Publish:   detectorPublish(u.detector),
		Losses:    append(u.corr.losses, u.out.losses),
		// As run.go wires them: compact lines and the per-tree budget of the shipped defaults.
		Flood:        u.out.budget,
		CompactScope: u.out.compactScope(u.cfg),
		Log:          zerolog.Nop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := pipe.Run(context.Background()); err != nil {
		b.Fatalf("pipeline: %v", err)
	}
	if err := u.out.close(); err != nil { // the store writes what its queue holds
		b.Fatalf("close outputs: %v", err)
	}
	b.StopTimer()
	written, dropped := u.out.written()
	if st := pipe.Stats(); st.Received != uint64(b.N) || st.SinkErrors != 0 || dropped != 0 || written < uint64(b.N) {
		b.Fatalf("pipeline %+v, JSONL written %d dropped %d, for %d records", st, written, dropped, b.N)
	}
	if store {
		ss, storeDropped := u.out.storeStats()
		if ss.Errors != 0 {
			b.Fatalf("store errors: %d", ss.Errors)
		}
		b.ReportMetric(float64(storeDropped)/float64(b.N), "store_dropped/event")
	}
}

func benchUserDecode(b *testing.B) {
	u := newUserBench(b, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := u.dec.Decode(u.raw); err != nil {
			b.Fatal(err)
		}
	}
}

// What a step's events have been through before it, outside the timer.
const (
	stepNone   = iota // decoded
	stepEnrich        // redacted and enriched, handed to the stage
	stepBind          // bound by the stitcher and numbered: what the sinks and the detector see
	stepEncode        // and encoded (u.line)
)

// benchUserStep times step alone per event, on batches of events decoded and taken up to
// ready outside the timer; flush, when set, ends every 256 events as the pipeline's flush of a
// busy reader's batch does.
func benchUserStep(b *testing.B, ready int, step, flush func(*userBench, *proto.Event)) {
	u := newUserBench(b, true)
	// A separate stitcher binds the batches for the steps after it, so that the one being
	// measured ("correlate") holds only its own events.
	binder := newUserBench(b, false)
	const batch, flushEvery = 1024, 256
	events := make([]*proto.Event, 0, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		events = events[:0]
		for range min(batch, b.N-done) {
			e, err := u.dec.Decode(u.raw)
			if err != nil {
				b.Fatal(err)
			}
			if ready >= stepEnrich {
				u.enrich(e)
			}
			events = append(events, e)
		}
		if ready >= stepBind {
			for _, e := range events {
				binder.corr.stitcher.Push(e)
			}
			if got := binder.corr.stitcher.Release(time.Now(), true); len(got) != len(events) {
				b.Fatalf("stitcher released %d of %d", len(got), len(events))
			}
			for _, e := range events {
				u.number(e)
			}
		}
		u.lines, u.next = u.lines[:0], 0
		if ready >= stepEncode {
			for _, e := range events {
				u.encode(e)
				u.lines = append(u.lines, append([]byte(nil), u.line...))
			}
		}
		b.StartTimer()
		for i, e := range events {
			step(u, e)
			if flush != nil && (i+1)%flushEvery == 0 {
				flush(u, e)
			}
		}
		done += len(events)
	}
	b.StopTimer()
}

// enrich is the pipeline's process up to the stage (sensor.Pipeline.process): an open record
// has no argv to redact.
func (u *userBench) enrich(e *proto.Event) {
	u.table.Apply(e)
	e.Host = u.host
}

// number is what the pipeline's write does before the sinks.
func (u *userBench) number(e *proto.Event) {
	u.seq++
	e.Event.Sequence = u.seq
	e.Vigil.Schema = proto.SchemaVersion
	u.table.Finish(e)
}

func (u *userBench) journal(e *proto.Event) {
	if err := u.hold.Add(e); err != nil {
		panic(fmt.Errorf("hold journal: %w", err))
	}
	u.added++
}

// commitJournal commits everything added as written, the journal's steady state.
func (u *userBench) commitJournal(*proto.Event) {
	if err := u.hold.Commit(u.added); err != nil {
		panic(fmt.Errorf("hold journal commit: %w", err))
	}
}

func (u *userBench) correlate(e *proto.Event) {
	if u.corr.stitcher.Push(e) {
		u.corr.stitcher.Release(time.Now(), false)
	}
}

func (u *userBench) detect(e *proto.Event) {
	if alerts := u.detector.Observe(e); len(alerts) != 0 {
		panic(fmt.Sprintf("an open of a temporary file raised %s", alerts[0].Rule.ID))
	}
}

func (u *userBench) encode(e *proto.Event) {
	var err error
	if u.line, err = proto.AppendLine(u.line[:0], e); err != nil {
		panic(fmt.Errorf("encode: %w", err))
	}
}

func (u *userBench) writeJSONL(e *proto.Event) {
	if err := u.out.jsonl.(sensor.LineSink).WriteLine(e, u.lines[u.next]); err != nil {
		panic(fmt.Errorf("write JSONL: %w", err))
	}
	u.next++
}

func (u *userBench) flushJSONL(*proto.Event) {
	if err := u.out.jsonl.Flush(); err != nil {
		panic(fmt.Errorf("flush JSONL: %w", err))
	}
}

// store is the store's goroutine's work per record.
func (u *userBench) store(e *proto.Event) {
	if err := u.out.store.Write(e); err != nil {
		panic(fmt.Errorf("store: %w", err))
	}
}

func (u *userBench) flushStore(*proto.Event) {
	if err := u.out.store.Flush(); err != nil {
		panic(fmt.Errorf("flush store: %w", err))
	}
}
