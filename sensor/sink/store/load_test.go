package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/proto/compact"
	"github.com/vigil-sensor/vigil/proto/ocsf"
)

func TestLoad(t *testing.T) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	// Malformed lines between the fixture's: text, a JSON array, a line cut short, one past
	// the length bound; and blank lines, which do not count.
	var in bytes.Buffer
	for i, l := range lines {
		in.Write(l)
		switch i {
		case 3:
			in.WriteString("not json\n\n   \n")
		case 10:
			in.WriteString("[1,2,3]\n")
		case 20:
			in.Write(l[:len(l)/2])
			in.WriteString("\n")
		case 30:
			in.WriteString(`{"event":{"action":"open"},"file":{"path":"` + strings.Repeat("a", maxLoadLine) + "\"}}\n")
		}
	}
	in.WriteString(strings.TrimSuffix(string(lines[0]), "\n")) // no newline at the end
	s := openTemp(t, Options{Path: Memory})
	res, err := s.Load(&in)
	if err != nil {
		t.Fatal(err)
	}
	fixtureLines := len(readFixture(t))
	if res.Lines != fixtureLines+5 || res.Loaded != fixtureLines+1 || res.Malformed != 4 || res.FirstMalformed != 5 ||
		res.FirstErr == nil {
		t.Errorf("result = %+v, want %d lines, %d loaded, 4 malformed from line 5", res, fixtureLines+5, fixtureLines+1)
	}
	if n := queryInt(t, s, "SELECT count(*) FROM event_rows"); n != int64(res.Loaded) {
		t.Errorf("%d rows for %d loaded lines", n, res.Loaded)
	}
	// The last line's sequence (1) is below the one before: a run of its own.
	if n := queryInt(t, s, "SELECT count(*) FROM runs"); n != 3 {
		t.Errorf("%d runs, want 3", n)
	}
}

// Two files loaded one after the other: rotated files of one run, oldest first, are one run,
// and a binding in the newer file binds a line of the older.
func TestLoadRotatedFiles(t *testing.T) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bytes.TrimSpace(data), []byte("\n"))
	s := openTemp(t, Options{Path: Memory})
	for _, part := range [][][]byte{lines[:52], lines[52:]} {
		if _, err := s.Load(bytes.NewReader(bytes.Join(part, nil))); err != nil {
			t.Fatal(err)
		}
	}
	if got := queryRows(t, s, "SELECT tool_call_id FROM events WHERE run_id = 1 AND seq = 52"); len(got) != 1 ||
		got[0]["tool_call_id"] != "toolu_01Ex7fi1TrQ9wK2mZ5nB8vXc" {
		t.Errorf("line 52 = %v: the binding in the second file did not reach it", got)
	}
}

// FuzzLoad feeds arbitrary bytes to the loader `vigil query --jsonl` uses: it never fails on
// input (only on a broken store), every line is loaded or counted as malformed, every loaded
// line is one events row, and the database stays sound and queryable.
// A file written with output.format ocsf is refused at its first OCSF line, whatever native
// lines come before: read as native records, its lines would load as empty events.
func TestLoadRefusesOCSF(t *testing.T) {
	b, err := os.ReadFile("../../../proto/testdata/golden/open.json")
	if err != nil {
		t.Fatal(err)
	}
	var e proto.Event
	if err := proto.UnmarshalJSON(b, &e); err != nil {
		t.Fatal(err)
	}
	line, err := ocsf.AppendLine(nil, &e, "test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Path: Memory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Load(bytes.NewReader(append(append(bytes.TrimSpace(b), '\n'), line...)))
	if !errors.Is(err, ocsf.ErrNotNative) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Load = %+v, %v; want ErrNotNative at line 2", res, err)
	}
}

func FuzzLoad(f *testing.F) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	// Small seeds: the fuzzer minimizes every new input it finds, and a large one takes it
	// minutes.
	lines := bytes.SplitAfter(data, []byte("\n"))
	f.Add(bytes.Join(lines[42:58], nil)) // the late-bound exfiltration
	f.Add(bytes.Join(lines[58:], nil))   // a second run with a recovered line
	for _, l := range lines {
		f.Add(l)
	}
	golden, _ := filepath.Glob("../../../proto/testdata/golden/*.json")
	for _, g := range golden {
		b, err := os.ReadFile(g)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"event":{"action":"binding","sequence":2},"vigil":{"binds":{"sequence":18446744073709551615}}}` + "\n" +
		`{"event":{"action":"open","sequence":18446744073709551615},"process":{"pid":-1,"args":[""]},"file":{"path":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Open(Options{Path: Memory})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		res, err := s.Load(bytes.NewReader(data))
		if errors.Is(err, ocsf.ErrNotNative) {
			return // refused, by design
		}
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if res.Loaded+res.Malformed != res.Lines {
			t.Fatalf("result %+v does not add up", res)
		}
		r, err := s.Reader()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := r.Query(context.Background(), "SELECT count(*), (SELECT count(*) FROM tool_calls), (SELECT count(*) FROM alerts) FROM events")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var n, calls, alerts int
		if !rows.Next() {
			t.Fatal(rows.Err())
		}
		if err := rows.Scan(&n, &calls, &alerts); err != nil {
			t.Fatal(err)
		}
		if n != res.Loaded {
			t.Fatalf("%d events rows for %d loaded lines", n, res.Loaded)
		}
		rows.Close()
		check, err := r.Query(context.Background(), "PRAGMA integrity_check")
		if err != nil {
			t.Fatal(err)
		}
		defer check.Close()
		var ok string
		if !check.Next() || check.Scan(&ok) != nil || ok != "ok" {
			t.Fatalf("integrity_check = %q", ok)
		}
	})
}

// TestLoadCompact: a file written with compact lines loads into the same rows as the same
// records written whole.
func TestLoadCompact(t *testing.T) {
	var whole, compacted bytes.Buffer
	w := compact.NewWriter(0)
	n := 0
	for _, e := range readFixture(t) {
		line, err := proto.AppendLine(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		whole.Write(line)
		v := w.Line(e)
		if v.Vigil.Compact {
			n++
		}
		if line, err = proto.AppendLine(nil, v); err != nil {
			t.Fatal(err)
		}
		compacted.Write(line)
	}
	if n == 0 {
		t.Fatal("the fixture has no line a process's context could be left out of")
	}
	rows := func(in *bytes.Buffer) []string {
		s := openTemp(t, Options{Path: Memory})
		if res, err := s.Load(in); err != nil || res.Malformed != 0 {
			t.Fatalf("Load = %+v, %v", res, err)
		}
		q, err := s.conn.QueryContext(context.Background(), "SELECT * FROM events ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		cols, _ := q.Columns()
		var out []string
		for q.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := q.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals...))
		}
		return out
	}
	want, got := rows(&whole), rows(&compacted)
	if !slices.Equal(got, want) {
		t.Fatalf("%d compact lines of %d loaded into other rows:\n%s\nwant\n%s", n, len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
