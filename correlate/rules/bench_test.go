package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
)

// benchCall is the lines of one bound Bash call running `go test ./...` in a repository: the
// shell's exec, fork and exit, go's exec, 40 source reads, 3 writes (the repo, the build
// cache, /tmp), a loopback and an internet connect: the mix a coding agent's tool calls make,
// opens dominating.
func benchCall() []*proto.Event {
	var out []*proto.Event
	line := func(action, category string) *proto.Event {
		e := openLine(0, "", "c")
		e.Event.Action, e.Event.Category, e.File = action, category, nil
		e.Process = &proto.Process{Pid: 2000, Name: "go", Executable: "/usr/local/go/bin/go", Args: []string{"go", "test", "./..."}, WorkingDirectory: "/home/dev/app"}
		return e
	}
	shell := line(proto.ActionExec, "process")
	shell.Process = &proto.Process{Pid: 1999, Name: "bash", Executable: "/usr/bin/bash", Args: []string{"/bin/bash", "-c", "-l", "source /home/dev/.claude/shell-snapshots/snapshot-bash-1.sh && eval 'go test ./...' \\< /dev/null && pwd -P >| /tmp/claude-4f2a-cwd"}}
	out = append(out, shell, line(proto.ActionFork, "process"), line(proto.ActionExec, "process"))
	for i := range 40 {
		e := line(proto.ActionOpen, "file")
		e.File = &proto.File{Path: fmt.Sprintf("/home/dev/app/pkg/file%d.go", i), Access: "read", Flags: "O_RDONLY|O_CLOEXEC"}
		out = append(out, e)
	}
	for _, p := range []string{"/home/dev/app/bin/app", "/home/dev/.cache/go-build/ab/abcdef-d", "/tmp/go-build1/b001/app.test"} {
		e := line(proto.ActionOpen, "file")
		e.File = &proto.File{Path: p, Access: "write", Flags: "O_WRONLY|O_CREAT|O_TRUNC"}
		out = append(out, e)
	}
	for _, ip := range []string{"127.0.0.1", "142.250.185.81"} {
		e := line(proto.ActionConnect, "network")
		e.Destination = &proto.Destination{IP: ip, Port: 443}
		out = append(out, e)
	}
	out = append(out, line(proto.ActionExit, "process"), line(proto.ActionExit, "process"))
	// The call's agent.tool_call line: its declaration judges the call's reads and connects.
	done := proto.ToolCallRecord{Agent: "claude-code", SessionID: "s1", CallID: "c", ToolName: "Bash", Command: "go test ./...",
		Decision: "accept", DecisionSource: "config", Sender: proto.Sender{Pid: 1200, RootPid: 1200, Transport: "otlp_http"}}.Event()
	return append(out, done)
}

// BenchmarkEvaluatePack is the whole starter pack's cost per kernel line (ns/op is ns per
// line), over bound tool calls of the mix above, each call a new one (its aggregates start
// empty, as in a real session), with the session's lines in scope and the shipped
// silent-agent threshold. make bench-rules runs it with -cpu 1.
func BenchmarkEvaluatePack(b *testing.B) {
	d := NewDetector(loadPack(b), Options{SilentAfter: 120 * time.Second, AgentPrograms: []string{"claude", "codex"}})
	d.Observe(&proto.Event{Event: proto.EventMeta{Action: proto.ActionSession, Kind: "event", Dataset: proto.DatasetCorrelate},
		GenAI:   &proto.GenAI{Agent: &proto.GenAIAgent{Name: "claude-code"}, Conversation: &proto.GenAIConversation{ID: "s1"}},
		Process: &proto.Process{Pid: 1200, WorkingDirectory: "/home/dev/app"}, Vigil: proto.Vigil{Root: &proto.Root{Pid: 1200}}})
	call := benchCall()
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprintf("toolu_%05d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := call[i%len(call)]
		e.GenAI.Tool.Call.ID = ids[(i/len(call))%len(ids)]
		e.Event.Sequence = uint64(i + 1)
		if alerts := d.Observe(e); alerts != nil {
			b.Fatalf("benign call raised %s", alerts[0].Rule.ID)
		}
		i++
	}
	if st := d.Stats(); st.Errors != 0 {
		b.Fatalf("rule errors: %v", st.ErrorsByRule)
	}
}
