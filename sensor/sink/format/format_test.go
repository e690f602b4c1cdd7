package format

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/ocsf"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
	"github.com/vigil-sensor/vigil/sensor/sink/route"
)

// The wrapper must stay a plain Sink: as a LineSink the pipeline would hand it the native line.
var _ sensor.Sink = (*OCSF)(nil)

func samples(t *testing.T) []*proto.Event {
	t.Helper()
	files, err := filepath.Glob("../../../proto/testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	var out []*proto.Event
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e proto.Event
		if err := proto.UnmarshalJSON(b, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, &e)
	}
	return out
}

// Through the sinks `vigil run` builds (the events file and, apart, the untrusted telemetry
// file), every record arrives as its OCSF line, byte for byte what proto/ocsf encodes, and
// untrusted telemetry still goes to its own file.
func TestOCSFThroughJSONLFiles(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) *jsonl.Writer {
		w, err := jsonl.Open(jsonl.Options{Path: filepath.Join(dir, name), MaxSizeBytes: 1 << 20, MaxFiles: 1})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	events, untrusted := open("events.jsonl"), open("untrusted.jsonl")
	s := NewOCSF(&route.Split{Main: events, Side: untrusted, ToSide: route.Untrusted}, "test")
	all := samples(t)
	want := map[string][]byte{}
	for _, e := range all {
		if err := s.Write(e); err != nil {
			t.Fatal(err)
		}
		name := "events.jsonl"
		if route.Untrusted(e) {
			name = "untrusted.jsonl"
		}
		line, err := ocsf.AppendLine(nil, e, "test")
		if err != nil {
			t.Fatal(err)
		}
		want[name] = append(want[name], line...)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("%s differs from the OCSF lines of its records", name)
		}
		sc := bufio.NewScanner(bytes.NewReader(got))
		sc.Buffer(nil, proto.MaxLineBytes+1)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev["class_uid"] == nil {
				t.Errorf("%s: not an OCSF event: %v: %.80s", name, err, sc.Bytes())
			}
		}
	}
	if !strings.Contains(string(want["untrusted.jsonl"]), "agent.untrusted_telemetry") {
		t.Error("no untrusted telemetry in its own file")
	}
}

// A record that cannot be encoded is an error of the write, naming the sink, and nothing
// reaches the inner sink.
func TestOCSFEncodeErrorNamed(t *testing.T) {
	dir := t.TempDir()
	w, err := jsonl.Open(jsonl.Options{Path: filepath.Join(dir, "e.jsonl"), MaxSizeBytes: 1 << 20, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := NewOCSF(w, "test")
	// A loss report's counts are never shortened; these alone are past the limit.
	lost := map[string]uint64{}
	for i := range 10000 {
		lost[fmt.Sprintf("kind%05d", i)] = 1
	}
	e := &proto.Event{Event: proto.EventMeta{Action: proto.ActionLost}, Vigil: proto.Vigil{Lost: lost}}
	if err := s.Write(e); err == nil || !strings.HasPrefix(err.Error(), "ocsf sink: ") {
		t.Errorf("Write = %v, want an error naming the ocsf sink", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "e.jsonl")); len(b) != 0 {
		t.Errorf("%d bytes written for a record that could not be encoded", len(b))
	}
}

var _ sensor.LineEncoder = (*OCSF)(nil)
