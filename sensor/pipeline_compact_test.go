package sensor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
)

// splitSink sends flood lines (vigil.flood) to flood and the rest to events, as
// route.Split does in vigil run.
type splitSink struct{ events, flood *jsonl.Writer }

func (s *splitSink) Write(e *proto.Event) error { panic("the pipeline gives a LineSink lines") }
func (s *splitSink) WriteLine(e *proto.Event, line []byte) error {
	if e.Vigil.Flood {
		return s.flood.WriteLine(e, line)
	}
	return s.events.WriteLine(e, line)
}
func (s *splitSink) Flush() error { return errors.Join(s.events.Flush(), s.flood.Flush()) }
func (s *splitSink) Close() error { return errors.Join(s.events.Close(), s.flood.Close()) }

// keeperSink takes lines but keeps records, as the store's queue does: it must get every
// record whole, through Write.
type keeperSink struct {
	plSink
	lines int
}

func (k *keeperSink) KeepsRecords() bool { return true }
func (k *keeperSink) WriteLine(e *proto.Event, line []byte) error {
	k.lines++
	return k.Write(e)
}

// everyOther marks every other open a flood line, so each process has lines in both files.
type everyOther struct{ n int }

func (b *everyOther) Over(e *proto.Event) bool {
	if e.Event.Action != proto.ActionOpen {
		return false
	}
	b.n++
	return b.n%2 == 0
}

// TestPipelineCompactLines: with compact lines on, flood lines going to a second file and
// both files rotating several times, every file read alone restores to exactly the records
// the event sink (the store's place) got whole, and most lines are compact.
func TestPipelineCompactLines(t *testing.T) {
	dir := t.TempDir()
	const maxFiles = 20
	open := func(name string) *jsonl.Writer {
		w, err := jsonl.Open(jsonl.Options{Path: filepath.Join(dir, name), MaxSizeBytes: 8 * compactMargin, MaxFiles: maxFiles})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	files := &splitSink{events: open("events.jsonl"), flood: open("floods.jsonl")}
	scope := func(e *proto.Event) (int, uint64, int64) {
		if e.Vigil.Flood {
			g, r := files.flood.Scope()
			return 1, g, r
		}
		g, r := files.events.Scope()
		return 0, g, r
	}
	var events []*proto.Event
	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for pid := 5000; pid < 5003; pid++ {
		exec := plEvent(pid, 0)
		exec.Event.Action, exec.Event.Category, exec.File = proto.ActionExec, "process", nil
		exec.Process.Executable = fmt.Sprintf("/usr/bin/tool-%d", pid)
		exec.Process.Args = []string{exec.Process.Executable, "--walk", "/home/alice/src/monorepo"}
		exec.Process.ArgsCount = 3
		exec.Process.WorkingDirectory = "/home/alice/src/monorepo"
		events = append(events, exec)
	}
	const opens = 30000
	for i := range opens {
		e := plEvent(5000+i%3, i)
		e.Timestamp = start.Add(time.Duration(i) * time.Microsecond)
		e.File.Path = fmt.Sprintf("/home/alice/src/monorepo/pkg%03d/file%05d.go", i/100, i)
		events = append(events, e)
	}
	whole, keeper := &plSink{}, &keeperSink{}
	src := &plSource{name: "ebpf", events: events}
	p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{whole, keeper, files}, Host: proto.Host{Name: "dev1", BootID: ptBoot},
		LostInterval: time.Hour, Flood: &everyOther{}, CompactScope: scope})
	ctx, cancel := context.WithCancel(context.Background())
	wait := plStart(t, ctx, p)
	plWaitFor(t, "every record at the event sink", func() bool { return len(whole.snapshot()) == len(events) })
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := files.Close(); err != nil {
		t.Fatal(err)
	}

	if kept := keeper.snapshot(); keeper.lines != 0 || len(kept) != len(events) || slices.ContainsFunc(kept, func(e *proto.Event) bool { return e.Vigil.Compact }) {
		t.Fatalf("the record keeper got %d lines and %d records (want %d, all whole)", keeper.lines, len(kept), len(events))
	}
	want := map[uint64][]byte{}
	for _, e := range whole.snapshot() {
		if e.Vigil.Compact {
			t.Fatalf("the event sink got a compact record: %+v", e)
		}
		b, err := proto.MarshalJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		want[e.Event.Sequence] = b
	}
	for _, base := range []string{"events.jsonl", "floods.jsonl"} {
		files, lines, compacted, flood := 0, 0, 0, 0
		for n := maxFiles; n >= 0; n-- {
			name := filepath.Join(dir, base)
			if n > 0 {
				name = fmt.Sprintf("%s.%d", name, n)
			}
			f, err := os.Open(name)
			if os.IsNotExist(err) {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			files++
			r := compact.NewRestorer(0) // each file alone
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, proto.MaxLineBytes+1)
			for sc.Scan() {
				lines++
				var e proto.Event
				if err := proto.UnmarshalJSON(sc.Bytes(), &e); err != nil {
					t.Fatal(err)
				}
				if e.Vigil.Compact {
					compacted++
				}
				if e.Vigil.Flood {
					flood++
				}
				if err := r.Restore(&e); err != nil {
					t.Fatalf("%s: %v", filepath.Base(name), err)
				}
				got, err := proto.MarshalJSON(&e)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want[e.Event.Sequence]) {
					t.Fatalf("%s, record %d restored:\n%s\nwant\n%s", filepath.Base(name), e.Event.Sequence, got, want[e.Event.Sequence])
				}
				delete(want, e.Event.Sequence)
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		t.Logf("%s: %d lines in %d files, %d compact, %d flood lines", base, lines, files, compacted, flood)
		if files < 3 || compacted < lines*8/10 { // the last compactMargin of each file is written whole
			t.Errorf("%s: %d lines in %d files, %d compact: want at least 3 files, 80%% compact", base, lines, files, compacted)
		}
		if wantFlood := lines * map[string]int{"events.jsonl": 0, "floods.jsonl": 1}[base]; flood != wantFlood {
			t.Errorf("%s: %d of %d lines marked vigil.flood", base, flood, lines)
		}
	}
	if len(want) != 0 {
		t.Errorf("%d records in neither file", len(want))
	}
}
