package sensor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
)

// TestPipelineCompactLines: with compact lines on and a JSONL file rotating several times,
// every file read alone restores to exactly the records the event sink (the store's place)
// got whole, and most lines are compact.
func TestPipelineCompactLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	const maxFiles = 20
	w, err := jsonl.Open(jsonl.Options{Path: path, MaxSizeBytes: 8 * compactMargin, MaxFiles: maxFiles})
	if err != nil {
		t.Fatal(err)
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
	const opens = 15000
	for i := range opens {
		e := plEvent(5000+i%3, i)
		e.Timestamp = start.Add(time.Duration(i) * time.Microsecond)
		e.File.Path = fmt.Sprintf("/home/alice/src/monorepo/pkg%03d/file%05d.go", i/100, i)
		events = append(events, e)
	}
	whole := &plSink{}
	src := &plSource{name: "ebpf", events: events}
	p := plPipeline(t, PipelineOptions{Source: src, Sinks: []Sink{whole, w}, Host: proto.Host{Name: "dev1", BootID: ptBoot},
		LostInterval: time.Hour, CompactScope: w.Scope})
	ctx, cancel := context.WithCancel(context.Background())
	wait := plStart(t, ctx, p)
	plWaitFor(t, "every record at the event sink", func() bool { return len(whole.snapshot()) == len(events) })
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
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
	files, lines, compacted := 0, 0, 0
	for n := maxFiles; n >= 0; n-- {
		name := path
		if n > 0 {
			name = fmt.Sprintf("%s.%d", path, n)
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
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	t.Logf("%d lines in %d files, %d compact", lines, files, compacted)
	if lines != len(events) || files < 3 {
		t.Fatalf("%d lines in %d files: want %d lines over at least 3 files", lines, files, len(events))
	}
	if compacted < lines*8/10 { // the last compactMargin of each file is written whole
		t.Errorf("only %d of %d lines compact", compacted, lines)
	}
}
