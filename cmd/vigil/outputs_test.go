package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/ocsf"
	"github.com/vigil-sensor/vigil/sensor"
)

// Every loss kind of the outputs is counted under one output in vigil_sink_lost_total: a
// kind sinkOf does not name would be counted under "".
func TestSinkLostNamesEveryOutput(t *testing.T) {
	dir := t.TempDir()
	cfg := sensor.DefaultConfig()
	cfg.Output.JSONL = filepath.Join(dir, "events.jsonl")
	cfg.Output.UntrustedJSONL = filepath.Join(dir, "untrusted.jsonl")
	cfg.Output.Store = filepath.Join(dir, "vigil.db")
	out, err := openOutputs(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer out.close()
	for kind := range out.losses() {
		if sinkOf[kind] == "" {
			t.Errorf("loss kind %q belongs to no output in sinkOf", kind)
		}
	}
	if got := slices.Sorted(maps.Keys(out.sinkLost())); !slices.Equal(got, []string{"jsonl", "store", "untrusted_jsonl"}) {
		t.Errorf("sinkLost outputs = %q", got)
	}
}

// With output.format ocsf, both JSONL files get OCSF lines (untrusted telemetry still apart)
// and the store still the native records, which vigil query --db reads.
func TestOutputsOCSF(t *testing.T) {
	dir := t.TempDir()
	cfg := sensor.DefaultConfig()
	cfg.Output.Format = sensor.FormatOCSF
	cfg.Output.JSONL = filepath.Join(dir, "events.jsonl")
	cfg.Output.UntrustedJSONL = filepath.Join(dir, "untrusted.jsonl")
	cfg.Output.Store = filepath.Join(dir, "vigil.db")
	out, err := openOutputs(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../proto/testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e proto.Event
		if err := proto.UnmarshalJSON(b, &e); err != nil {
			t.Fatal(err)
		}
		for _, s := range out.sinks() {
			if err := s.Write(&e); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
	}
	if err := out.close(); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, name := range []string{"events.jsonl", "untrusted.jsonl"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(string(data)) {
			lines++
			if ocsf.CheckNative([]byte(l)) == nil {
				t.Errorf("%s: a native line: %.80s", name, l)
			}
		}
	}
	if lines != len(files) {
		t.Errorf("%d lines in the JSONL files, want %d", lines, len(files))
	}
	got, stderr, err := query(t, "", "--db", cfg.Output.Store, "--format", "csv", "SELECT count(*) AS n FROM events WHERE action = 'open'")
	if err != nil || got != "n\n3\n" {
		t.Errorf("store: %q, %v (%s)", got, err, stderr)
	}
}
