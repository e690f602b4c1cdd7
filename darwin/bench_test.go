package darwin

import (
	"bytes"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// BenchmarkUnrelatedOpen is the line a Mac writes most: an open by a process outside every
// agent tree, which the source reads as far as its process and drops.
func BenchmarkUnrelatedOpen(b *testing.B) {
	line := readLines(b, "testdata/real/macmonitor-v10-open.jsonl")[0]
	// Without its sequence numbers, the one line stands for a stream (repeated, they would
	// read as an eslogger restart every time).
	line = bytes.Replace(bytes.Replace(line, []byte(`"seq_num":1,`), nil, 1), []byte(`"global_seq_num":8,`), nil, 1)
	s := newSource(Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.Nop()}, nil, nil, sensor.Started{})
	sess := newSession(zerolog.Nop(), false, s.lost.add)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		s.handle(line, sess, func(*proto.Event) { b.Fatal("emitted") })
	}
}

// BenchmarkAgentExec is an agent tree's exec: the whole line decoded and mapped.
func BenchmarkAgentExec(b *testing.B) {
	line := readLines(b, "testdata/real/mullvad-macos15-v9-exec.jsonl")[0]
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		decodeLine(b, line)
	}
}
