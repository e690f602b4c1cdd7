package compact

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// tree is a tool shell and a reader under it, as the sensor writes them: exec, fork, opens
// of both processes interleaved, a hash learned mid-way, a connect, exits.
func tree() []*proto.Event {
	ts := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	start := ts.Add(-time.Second)
	host := &proto.Host{Name: "dev-laptop-07", BootID: "9f0c3c2e-5f0b-4a57-9d0c-2b8f3d1c6a41"}
	user := &proto.User{ID: "1000", Name: "alice", Group: &proto.Group{ID: "1000"}}
	root := &proto.Root{Pid: 41822, EntityID: "b3c1f0a4e9d27c58"}
	genai := &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"},
		Conversation: &proto.GenAIConversation{ID: "5b9d8f1e-2c47-4e0a-9a65-3d1f7c2b8e90"},
		Tool:         &proto.GenAITool{Name: "Bash", Call: &proto.GenAIToolCall{ID: "toolu_01HzQ8mP3vX7kR2nW5yT9bLc"}}}
	shell := func() *proto.Process {
		return &proto.Process{Pid: 52310, EntityID: "7e2a91c04f8b3d65", Name: "bash", Executable: "/usr/bin/bash",
			Args: []string{"/bin/bash", "-c", "rg TODO"}, ArgsCount: 3, WorkingDirectory: "/home/alice/src", Start: &start,
			Parent: &proto.ParentProcess{Pid: 41822, EntityID: "b3c1f0a4e9d27c58", Executable: "/usr/bin/claude", Name: "claude"}}
	}
	rg := func(hash *proto.Hash) *proto.Process {
		return &proto.Process{Pid: 52311, EntityID: "0c5d7e9a1b3f2468", Name: "rg", Executable: "/usr/bin/rg",
			Args: []string{"rg", "TODO"}, ArgsCount: 2, WorkingDirectory: "/home/alice/src", Start: &start, Hash: hash,
			Thread: &proto.Thread{ID: 52311},
			Parent: &proto.ParentProcess{Pid: 52310, EntityID: "7e2a91c04f8b3d65", Executable: "/usr/bin/bash", Name: "bash"}}
	}
	var seq uint64
	ev := func(action, category string, p *proto.Process) *proto.Event {
		seq++
		return &proto.Event{Timestamp: ts.Add(time.Duration(seq) * time.Millisecond),
			Event: proto.EventMeta{Action: action, Outcome: proto.OutcomeSuccess, Kind: "event", Category: category, Dataset: proto.DatasetKernel, Sequence: seq},
			Host:  host, User: user, Process: p, GenAI: genai,
			Vigil: proto.Vigil{Schema: proto.SchemaVersion, Root: root, Source: "ebpf", Correlation: proto.Correlation{Binding: proto.BindingTraceParent, Confidence: "high"}}}
	}
	open := func(p *proto.Process, path string) *proto.Event {
		e := ev(proto.ActionOpen, "file", p)
		e.File = &proto.File{Path: path, Access: "read", Flags: "O_RDONLY|O_CLOEXEC"}
		e.Vigil.PathSource = proto.PathSourceKernel
		return e
	}
	hash := &proto.Hash{SHA256: "5a4d8f0f3e2b8c9d1e6f7a0b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"}
	events := []*proto.Event{
		ev(proto.ActionExec, "process", shell()),
		open(shell(), "/etc/ld.so.cache"),
		ev(proto.ActionFork, "process", rg(nil)),
		open(rg(nil), "/home/alice/src/a.go"),
		open(shell(), "/usr/lib/locale/locale-archive"),
		open(rg(nil), "/home/alice/src/b.go"),
		open(rg(hash), "/home/alice/src/c.go"), // the hash is known from here on
		open(rg(hash), "/home/alice/src/d.go"),
	}
	connect := ev(proto.ActionConnect, "network", shell())
	connect.Destination = &proto.Destination{IP: "127.0.0.1", Port: 443}
	agent := ev(proto.ActionAgentToolCall, "", shell())
	agent.Event.Dataset = proto.DatasetAgent
	exitCode := 0
	exit := ev(proto.ActionExit, "process", rg(hash))
	exit.Process.ExitCode = &exitCode
	// A late line after the exit states the context again.
	return append(events, connect, agent, exit, open(rg(hash), "/home/alice/src/e.go"))
}

func encode(t *testing.T, e *proto.Event) []byte {
	t.Helper()
	b, err := proto.MarshalJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRoundTrip: the lines a Writer makes, read back through a Restorer, are the events as
// written in full, byte for byte; only lines whose context was stated before are compact.
func TestRoundTrip(t *testing.T) {
	w, r := NewWriter(0), NewRestorer(0)
	wantCompact := []bool{false, true, false, true, true, true, false, true, true, false, true, false}
	var full, compacted int
	for i, e := range tree() {
		want := encode(t, e)
		line := encode(t, w.Line(e))
		if !bytes.Equal(encode(t, e), want) {
			t.Fatalf("line %d: Line modified its event", i)
		}
		isCompact := bytes.Contains(line, []byte(`"compact":true`))
		if isCompact != wantCompact[i] {
			t.Errorf("line %d (%s of %s): compact %v, want %v: %s", i, e.Event.Action, e.Process.Name, isCompact, wantCompact[i], line)
		}
		if isCompact {
			for _, field := range []string{`"executable"`, `"args"`, `"working_directory"`, `"parent"`, `"boot_id"`, `"alice"`} {
				if bytes.Contains(line, []byte(field)) {
					t.Errorf("line %d: compact line still has %s: %s", i, field, line)
				}
			}
			for _, field := range []string{`"entity_id"`, `"pid"`, `"name":"` + e.Process.Name + `"`, `"host":{"name"`, `"user":{"id":"1000"}`, `"tool":{"name":"Bash"`} {
				if !bytes.Contains(line, []byte(field)) {
					t.Errorf("line %d: compact line lost %s: %s", i, field, line)
				}
			}
			full += len(want)
			compacted += len(line)
		}
		var back proto.Event
		if err := proto.UnmarshalJSON(line, &back); err != nil {
			t.Fatal(err)
		}
		if err := r.Restore(&back); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if got := encode(t, &back); !bytes.Equal(got, want) {
			t.Errorf("line %d restored:\n%s\nwant\n%s", i, got, want)
		}
	}
	t.Logf("compact lines: %d bytes where full lines take %d (%.0f%%)", compacted, full, 100*float64(compacted)/float64(full))
	if compacted*10 > full*7 {
		t.Errorf("compact lines take %d bytes of %d: less than a 30%% cut", compacted, full)
	}
}

// TestReset: after Reset (a rotation) every process states its context again, so a file
// read alone restores fully.
func TestReset(t *testing.T) {
	events := tree()
	w := NewWriter(0)
	for _, e := range events[:4] {
		w.Line(e)
	}
	w.Reset()
	r := NewRestorer(0)
	for i, e := range events[4:] {
		v := w.Line(e)
		if i == 0 && v.Vigil.Compact {
			t.Fatalf("first line after Reset is compact")
		}
		back := *v
		if v.Process != nil {
			p := *v.Process
			back.Process = &p
		}
		if err := r.Restore(&back); err != nil {
			t.Fatalf("line %d after Reset: %v", i, err)
		}
	}
}

// TestUnstated: a compact line whose context the reader never saw (a file cut at its start)
// is reported and left usable.
func TestUnstated(t *testing.T) {
	events := tree()
	w := NewWriter(0)
	w.Line(events[0])
	line := encode(t, w.Line(events[1]))
	var e proto.Event
	if err := proto.UnmarshalJSON(line, &e); err != nil {
		t.Fatal(err)
	}
	err := NewRestorer(0).Restore(&e)
	if !errors.Is(err, ErrUnstated) || !strings.Contains(err.Error(), "7e2a91c04f8b3d65") {
		t.Fatalf("Restore = %v, want ErrUnstated naming the process", err)
	}
	if e.File == nil || e.File.Path != "/etc/ld.so.cache" || !e.Vigil.Compact {
		t.Fatalf("unstated line damaged: %+v", e)
	}
}

// TestBound: past its bound a Writer starts over: the next line of a forgotten process
// states its context again, so a reader never meets a compact line it cannot restore.
func TestBound(t *testing.T) {
	w, r := NewWriter(2), NewRestorer(2)
	mk := func(id string, seq uint64) *proto.Event {
		return &proto.Event{Event: proto.EventMeta{Action: proto.ActionOpen, Dataset: proto.DatasetKernel, Sequence: seq},
			Process: &proto.Process{Pid: int(seq), EntityID: id, Executable: "/bin/" + id}, File: &proto.File{Path: "/f"}}
	}
	var seq uint64
	for round := 0; round < 3; round++ {
		for _, id := range []string{"a", "b", "c"} {
			seq++
			v := w.Line(mk(id, seq))
			back := *v
			p := *v.Process
			back.Process = &p
			if err := r.Restore(&back); err != nil {
				t.Fatalf("round %d, %s: %v", round, id, err)
			}
			if back.Process.Executable != "/bin/"+id {
				t.Fatalf("round %d, %s: restored executable %q", round, id, back.Process.Executable)
			}
		}
	}
}
