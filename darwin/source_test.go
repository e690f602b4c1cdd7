package darwin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
)

// replay runs a capture through a replay source and returns what it emitted and lost.
func replay(t *testing.T, path string) ([]*proto.Event, map[string]uint64) {
	t.Helper()
	s, err := NewReplay(path, Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []*proto.Event
	if err := s.Run(context.Background(), func(e *proto.Event) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	return got, s.Lost()
}

// summary is one line of a capture's expected output.
func summary(e *proto.Event) string {
	s := fmt.Sprintf("%s pid=%d root=%d agent=%s exe=%s", e.Event.Action, e.Process.Pid, e.Vigil.Root.Pid, e.GenAI.Agent.Name, e.Process.Executable)
	if e.File != nil {
		s += " path=" + e.File.Path
	}
	if e.Vigil.Rename != nil {
		s += " from=" + e.Vigil.Rename.Source
	}
	return s
}

// TestReplayAgentTree: the synthesized capture of a Claude Code tree among unrelated processes
// (testdata/README.md) yields exactly the tree's lines, and the drops its sequence numbers show.
func TestReplayAgentTree(t *testing.T) {
	got, lost := replay(t, "testdata/agent-tree.jsonl")
	const claude = "/Users/dev/.local/share/claude/versions/2.0.14"
	want := []string{
		"exec pid=900 root=900 agent=claude-code exe=" + claude,
		"open pid=900 root=900 agent=claude-code exe=" + claude + " path=/Users/dev/project/README.md",
		"fork pid=901 root=900 agent=claude-code exe=" + claude,
		"exec pid=901 root=900 agent=claude-code exe=/bin/bash",
		"create pid=901 root=900 agent=claude-code exe=/bin/bash path=/Users/dev/project/marker.txt",
		"open pid=901 root=900 agent=claude-code exe=/bin/bash path=/Users/dev/project/marker.txt",
		"write pid=901 root=900 agent=claude-code exe=/bin/bash path=/Users/dev/project/marker.txt",
		"close pid=901 root=900 agent=claude-code exe=/bin/bash path=/Users/dev/project/marker.txt",
		"fork pid=902 root=900 agent=claude-code exe=/bin/bash",
		"exec pid=902 root=900 agent=claude-code exe=/bin/mv",
		"rename pid=902 root=900 agent=claude-code exe=/bin/mv path=/Users/dev/project/marker.done from=/Users/dev/project/marker.txt",
		"exit pid=902 root=900 agent=claude-code exe=/bin/mv",
		"exit pid=901 root=900 agent=claude-code exe=/bin/bash",
		"exit pid=900 root=900 agent=claude-code exe=" + claude,
	}
	var lines []string
	for _, e := range got {
		lines = append(lines, summary(e))
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if w := map[string]uint64{"open": 2, lostSeqGap: 1}; !maps.Equal(lost, w) {
		t.Errorf("lost %v, want %v", lost, w)
	}
	bash := got[3]
	if j := bash.Vigil.Join; j == nil || j.TraceParent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" ||
		j.Markers["claude-code"] != "1" || j.Sessions["claude-code"] != "5f0c1e2a-8b7d-4c3e-9a1f-2d6b8e4c0a17" {
		t.Errorf("bash join keys %+v", bash.Vigil.Join)
	}
	if bash.Process.Parent.Pid != 900 || bash.Process.WorkingDirectory != "/Users/dev/project" ||
		strings.Join(bash.Process.Args, " ") != "/bin/bash -c -l echo ok > marker.txt && mv marker.txt marker.done" {
		t.Errorf("bash exec %+v", bash.Process)
	}
	for _, e := range got {
		if b, _ := proto.MarshalJSON(e); strings.Contains(string(b), "NOTAREAL") {
			t.Errorf("an environment value reached a line: %s", b)
		}
	}
}

// TestReplayAgentTreeArrayTokens: the same capture with every audit token in the array form
// (the macOS 26 beta's) yields the same lines.
func TestReplayAgentTreeArrayTokens(t *testing.T) {
	var out []string
	for _, line := range readLines(t, "testdata/agent-tree.jsonl") {
		v := decodeAny(t, line)
		tokensToArrays(v)
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	path := filepath.Join(t.TempDir(), "arrays.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	objects, _ := replay(t, "testdata/agent-tree.jsonl")
	arrays, lost := replay(t, path)
	if len(objects) != len(arrays) || len(lost) != 2 {
		t.Fatalf("%d lines from objects, %d from arrays, lost %v", len(objects), len(arrays), lost)
	}
	for i := range objects {
		a, _ := proto.MarshalJSON(objects[i])
		b, _ := proto.MarshalJSON(arrays[i])
		if string(a) != string(b) {
			t.Errorf("line %d:\n%s\n%s", i, a, b)
		}
	}
}

// decodeAny decodes a line keeping its numbers exact (st_ino exceeds float64's integers).
func decodeAny(t testing.TB, line []byte) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// tokensToArrays rewrites every audit token object under v into audit_token_t.val order.
func tokensToArrays(v any) int {
	m, ok := v.(map[string]any)
	if !ok {
		return 0
	}
	n := 0
	for k, sub := range m {
		if tok, ok := sub.(map[string]any); ok && strings.HasSuffix(k, "audit_token") {
			m[k] = []any{tok["auid"], tok["euid"], tok["egid"], tok["ruid"], tok["rgid"], tok["pid"], tok["asid"], tok["pidversion"]}
			n++
			continue
		}
		n += tokensToArrays(sub)
	}
	return n
}

// TestReplayBadLines: a line that cannot be decoded costs that line alone, counted as decode;
// the lines around it still come through, and its sequence numbers still count when they can
// be read.
func TestReplayBadLines(t *testing.T) {
	lines := readLines(t, "testdata/agent-tree.jsonl")
	// One of the two opens ES dropped after the rename (global 15, open 2), arriving with a
	// field of the wrong type: its numbers are read, so only one open is lost.
	var broken map[string]any
	dec := json.NewDecoder(strings.NewReader(string(lines[len(lines)-4]))) // mdworker's open
	dec.UseNumber()
	if err := dec.Decode(&broken); err != nil || broken["event"].(map[string]any)["open"] == nil {
		t.Fatalf("not the open line: %v", err)
	}
	broken["global_seq_num"], broken["seq_num"] = 15, 2
	broken["process"].(map[string]any)["audit_token"].(map[string]any)["pid"] = "750"
	b, _ := json.Marshal(broken)
	for _, c := range []struct {
		name   string
		insert string
		lost   map[string]uint64
	}{
		{"numbers readable", string(b), map[string]uint64{lostDecode: 1, "open": 1, lostSeqGap: 1}},
		// Not JSON: assumed to be one of the dropped messages, not counted twice.
		{"not JSON", "not json at all", map[string]uint64{lostDecode: 1, "open": 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sb strings.Builder
			for _, l := range lines {
				sb.Write(l)
				sb.WriteByte('\n')
				if strings.Contains(string(l), `"rename":`) {
					sb.WriteString(c.insert + "\n\n")
				}
			}
			path := filepath.Join(t.TempDir(), "bad.jsonl")
			if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			got, lost := replay(t, path)
			if len(got) != 14 {
				t.Errorf("%d lines, want the capture's 14", len(got))
			}
			if !maps.Equal(lost, c.lost) {
				t.Errorf("lost %v, want %v", lost, c.lost)
			}
		})
	}
}

// TestReplayEndsWithoutNewline: a capture cut inside its last line (eslogger killed while
// writing) loses that line, counted.
func TestReplayEndsWithoutNewline(t *testing.T) {
	data, err := os.ReadFile("testdata/agent-tree.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.jsonl")
	if err := os.WriteFile(path, data[:len(data)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	got, lost := replay(t, path)
	if len(got) != 13 || lost[lostDecode] != 1 {
		t.Errorf("%d lines, lost %v; want 13 lines and one decode loss", len(got), lost)
	}
}

func TestReplayBootID(t *testing.T) {
	s, err := NewReplay("testdata/agent-tree.jsonl", Options{Catalog: sensor.DefaultCatalog(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := s.Started()
	if !strings.HasPrefix(st.BootID, "replay:") || len(st.BootID) != len("replay:")+16 || st.Seeded != nil || st.Peers != nil {
		t.Errorf("started %+v", st)
	}
	if _, err := NewReplay("testdata/missing.jsonl", Options{Catalog: sensor.DefaultCatalog()}); err == nil {
		t.Error("a missing capture opened")
	}
}
