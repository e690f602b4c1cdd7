package store

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/sensor/sink/jsonl"
	"github.com/vigil-sensor/vigil/sensor/sink/sign"
)

// A signed file (output.sign) loads as the same rows as the plain one: the chain field on every
// line is ignored, and the seal lines (one after every 7 lines here, some between a line and
// its binding record) are skipped without breaking a run or a late binding.
func TestLoadSignedFile(t *testing.T) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC)
	signer, err := sign.Open(sign.Options{KeyDir: filepath.Join(dir, "keys"), Name: "events.jsonl", Interval: time.Minute,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	w, err := jsonl.Open(jsonl.Options{Path: path, Sign: signer})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range bytes.SplitAfter(bytes.TrimSpace(data), []byte("\n")) {
		if err := w.WriteLine(nil, append(bytes.TrimSuffix(l, []byte("\n")), '\n')); err != nil {
			t.Fatal(err)
		}
		if i%7 == 6 {
			now = now.Add(time.Minute)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	signed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(signed, []byte(`"action":"seal"`)); n < 5 {
		t.Fatalf("%d seals in the signed file, want the fixture interleaved with seals", n)
	}
	const q = "SELECT run_id, seq, action, session_id, tool_call_id, binding FROM events ORDER BY id"
	var rows [2][]map[string]any
	for i, in := range [][]byte{data, signed} {
		s := openTemp(t, Options{Path: Memory})
		res, err := s.Load(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if res.Malformed != 0 {
			t.Fatalf("input %d: %d malformed lines, first %d: %v", i, res.Malformed, res.FirstMalformed, res.FirstErr)
		}
		rows[i] = queryRows(t, s, q)
	}
	if len(rows[0]) == 0 || !reflect.DeepEqual(rows[0], rows[1]) {
		t.Errorf("the signed file loads as\n%v\nthe plain one as\n%v", rows[1], rows[0])
	}
}
