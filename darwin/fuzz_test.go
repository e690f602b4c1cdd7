package darwin

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// seedLines adds every line of the real samples and of the synthesized capture.
func seedLines(f *testing.F) [][]byte {
	paths, _ := filepath.Glob("testdata/real/*.jsonl")
	paths = append(paths, "testdata/agent-tree.jsonl")
	var all [][]byte
	for _, p := range paths {
		all = append(all, readLines(f, p)...)
	}
	return all
}

// FuzzDecode: any line either fails with an error or decodes into a line the sinks can write.
func FuzzDecode(f *testing.F) {
	for _, l := range seedLines(f) {
		f.Add(l)
	}
	f.Add([]byte(`{"event":{"exec":{}},"event_type":9,"process":{"audit_token":[1,2,3,4,5,6,7,8]},"time":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseMessage(line)
		if err != nil {
			return
		}
		body, err := m.decode()
		if err != nil {
			return
		}
		e, err := lineOf(m, body, testMember)
		if err != nil || e == nil {
			return
		}
		if _, err := proto.AppendLine(nil, e); err != nil {
			t.Fatalf("decoded line cannot be written: %v", err)
		}
	})
}

// FuzzStream feeds arbitrary bytes through the whole source (line splitting, sequence
// accounting, the tree filter, mapping): it must not panic, and every emitted line must be an
// agent tree's and writable.
func FuzzStream(f *testing.F) {
	lines := seedLines(f)
	f.Add(bytes.Join(lines, []byte("\n")))
	f.Add([]byte("{}\n\n{\"event\":1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSource(Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.Nop()}, nil, nil, sensor.Started{})
		err := s.consume(context.Background(), bytes.NewReader(data), false, func(e *proto.Event) {
			if e.Vigil.Root == nil || e.GenAI == nil || e.GenAI.Agent.Name == "" {
				t.Fatalf("line outside an agent tree: %+v", e)
			}
			if _, err := proto.AppendLine(nil, e); err != nil {
				t.Fatalf("emitted line cannot be written: %v", err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
