package main

import (
	"bytes"
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
	"github.com/vigil-sensor/vigil/sensor/sink/otlp"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// Every loss kind of the outputs is counted under one output in vigil_sink_lost_total: a
// kind sinkOf does not name would be counted under "".
func TestSinkLostNamesEveryOutput(t *testing.T) {
	dir := t.TempDir()
	cfg := sensor.DefaultConfig()
	cfg.Output.JSONL = filepath.Join(dir, "events.jsonl")
	cfg.Output.UntrustedJSONL = filepath.Join(dir, "untrusted.jsonl")
	cfg.Output.FloodJSONL = filepath.Join(dir, "floods.jsonl")
	cfg.Output.Store = filepath.Join(dir, "vigil.db")
	cfg.Output.OTLP.Endpoint = "http://127.0.0.1:1" // nothing listens: nothing is written either
	cfg.Output.OTLP.SpoolDir = filepath.Join(dir, "spool")
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
	if got := slices.Sorted(maps.Keys(out.sinkLost())); !slices.Equal(got, []string{"flood_jsonl", "jsonl", "otlp", "store", "untrusted_jsonl"}) {
		t.Errorf("sinkLost outputs = %q", got)
	}
	if n := len(out.sinks()); n != 3 {
		t.Errorf("%d sinks, want the JSONL files, the store's queue and the OTLP export's queue", n)
	}
}

// output.otlp.protocol accepts exactly the protocols the exporter speaks (the config package
// cannot import the sink, so it keeps its own list).
func TestOTLPProtocolsAgree(t *testing.T) {
	var sink []string
	for _, p := range otlp.Protocols {
		sink = append(sink, string(p))
	}
	if !slices.Equal(sink, sensor.OTLPProtocols) {
		t.Errorf("otlp.Protocols %q, sensor.OTLPProtocols %q", sink, sensor.OTLPProtocols)
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
	cfg.Output.FloodJSONL = filepath.Join(dir, "floods.jsonl")
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
	if err != nil || got != "n\n4\n" { // open, open_denied, open_file_path, open_merged
		t.Errorf("store: %q, %v (%s)", got, err, stderr)
	}
}

// With output.sign each JSONL file (events, untrusted telemetry, floods) gets its own key and chain, begins with a start seal, and
// the new keys' pins are logged.
func TestSignedOutputsHaveAKeyEach(t *testing.T) {
	dir := t.TempDir()
	cfg := sensor.DefaultConfig()
	cfg.Output.JSONL = filepath.Join(dir, "events.jsonl")
	cfg.Output.UntrustedJSONL = filepath.Join(dir, "untrusted.jsonl")
	cfg.Output.FloodJSONL = filepath.Join(dir, "floods.jsonl")
	cfg.Output.Store = ""
	cfg.Output.Sign, cfg.Output.SignKeyDir = true, filepath.Join(dir, "sign")
	var logged bytes.Buffer
	out, err := openOutputs(cfg, zerolog.New(&logged))
	if err != nil {
		t.Fatal(err)
	}
	if err := out.close(); err != nil {
		t.Fatal(err)
	}
	chains := map[sign.ChainID]bool{}
	for _, name := range []string{"events.jsonl", "untrusted.jsonl", "floods.jsonl"} {
		pin, err := sign.Pin(cfg.Output.SignKeyDir, name)
		if err != nil {
			t.Fatal(err)
		}
		chains[pin.Chain] = true
		if !strings.Contains(logged.String(), pin.PublicKey()) {
			t.Errorf("the pin of %s is not logged:\n%s", name, logged.String())
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		r, err := sign.Verify([]sign.Source{{Name: name, R: f}}, sign.Trust{Root: pin.Key, Chain: &pin.Chain})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !r.Intact() || r.Seals != 2 || r.Restarts != 1 {
			t.Errorf("%s: %+v, problem %v; want a start and a stop seal", name, r, r.Problem)
		}
	}
	if len(chains) != 3 {
		t.Errorf("%d chains for the three files: some share one", len(chains))
	}
}
