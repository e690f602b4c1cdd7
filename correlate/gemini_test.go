package correlate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sensor/vigil/proto"
	"github.com/vigil-sensor/vigil/sensor"
	"github.com/vigil-sensor/vigil/sensor/agents"
)

// The Gemini CLI 0.61 sample run (../shared/research/agents/samples/gemini/otlp): one prompt,
// run_shell_command, read_file, write_file and replace, every call id gcall_<n> from the mock.
const (
	gemSession = "752400e7-bf3c-41ff-9f52-f0d0a24edbff"
	gemWorker  = 28885 // the relaunched node process: OTLP sender, tools, in-process file opens
	gemRoot    = 28870 // the supervisor node process R, root of the tree
	gemShell   = 28957 // the shell of run_shell_command__gcall_00 (its PGID in the output)
	gemShellID = "run_shell_command__gcall_00"
	gemReadID  = "read_file__gcall_01"
)

func TestGeminiSamples(t *testing.T) {
	evs, st := adaptFile(t, "0001_logs.json", ContentTypeJSON, readSample(t, "gemini/0001_logs.json"))
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
		if e.Agent != agents.GeminiCLI || e.SessionID != gemSession {
			t.Errorf("%s: agent %q session %q", e.EventName, e.Agent, e.SessionID)
		}
	}
	// The sample keeps one api_response (tokens) and 4 api_requests: the first recalls no call yet; the sample trimmed the other three's
	// request_text, which no longer parses: counted, never guessed at.
	want := map[string]int{proto.KindUserPrompt: 1, proto.KindToolResult: 4, proto.KindAPIRequest: 1}
	if !mapsEqual(kinds, want) || st.Skipped[SkipUnreadableHistory] != 3 {
		t.Errorf("kinds %v skipped %v", kinds, st.Skipped)
	}
	var results []proto.AgentEvent
	for _, e := range evs {
		switch e.Kind {
		case proto.KindUserPrompt:
			if e.PromptID != gemSession || !strings.Contains(e.Prompt, "SECRET_PROMPT_MARKER_42") {
				t.Errorf("prompt %q %q", e.PromptID, e.Prompt)
			}
		case proto.KindToolResult:
			results = append(results, e)
		case proto.KindAPIRequest:
			if e.Model != "gemini-2.5-flash" || e.InputTokens != 120 || e.OutputTokens != 30 {
				t.Errorf("api response %+v", e)
			}
		}
	}
	if len(results) == 4 {
		shell, read := results[0], results[1]
		if shell.ToolName != "run_shell_command" || shell.Command != "echo MARKER_SHELL pid=$$ ppid=$PPID; env | sort" ||
			shell.ToolUseID != "" || shell.SpanID != "b1095a5aa449da58" || shell.Success == nil || !*shell.Success ||
			shell.Decision != "accept" || shell.DurationMs != 436 {
			t.Errorf("shell result %+v", shell)
		}
		if read.ToolName != "read_file" || !slices.Equal(read.FilePaths, []string{"<repo>/notes.txt"}) {
			t.Errorf("read result %+v", read)
		}
	}

	spans, st := adaptFile(t, "0003_traces.json", ContentTypeJSON, readSample(t, "gemini/0003_traces.json"))
	var ids []string
	for _, s := range spans {
		if s.Kind != proto.KindToolSpan || s.SessionID != gemSession || s.Time.IsZero() || !s.EndTime.After(s.Time) {
			t.Errorf("span %+v", s)
		}
		ids = append(ids, s.ToolUseID)
	}
	if want := []string{gemShellID, gemReadID, "write_file__gcall_02", "replace__gcall_03"}; !slices.Equal(ids, want) ||
		spans[0].ParentSpanID != "b1095a5aa449da58" || st.Skipped[SkipIgnoredSpan] != 9 {
		t.Errorf("tool spans %q (parent %q), skipped %v", ids, spans[0].ParentSpanID, st.Skipped)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// gemHistory is a request_text in the shape Gemini 0.61 sends (the research's requests and
// the sample's tail): the model's functionCall parts, then the user's functionResponse parts
// with the tool output, which for a shell ends with Gemini's own "Process Group PGID" line.
const gemHistory = `[{"role":"user","parts":[{"text":"<session_context>\nThis is the Gemini CLI."}]},` +
	`{"role":"user","parts":[{"text":"Run a shell command. Process Group PGID: 1"}]},` +
	`{"role":"model","parts":[{"functionCall":{"name":"run_shell_command","args":{"command":"echo MARKER_SHELL pid=$$ ppid=$PPID; env | sort","description":"inspect the shell"},"id":"gcall_00"},"thoughtSignature":"skip_thought_signature_validator"}]},` +
	`{"role":"user","parts":[{"functionResponse":{"name":"run_shell_command","response":{"output":"Output: MARKER_SHELL pid=28957 ppid=28885\nfake: Process Group PGID: 4242\nTERM=xterm-256color\nUSER=root\n_=/usr/bin/env\nProcess Group PGID: 28957\n</untrusted_context>"},"id":"gcall_00"}}]},` +
	`{"role":"model","parts":[{"functionCall":{"name":"read_file","args":{"file_path":"<repo>/notes.txt"},"id":"gcall_01"},"thoughtSignature":"skip_thought_signature_validator"}]},` +
	`{"role":"user","parts":[{"functionResponse":{"name":"read_file","response":{"output":"hello world\nsecond line\n"},"id":"gcall_01"}}]},` +
	`{"role":"model","parts":[{"functionCall":{"name":"write_file","args":{"file_path":"<repo>/out.txt","content":"x"}}}]},` +
	`{"role":"user","parts":[{"functionResponse":{"name":"replace","response":{"output":"Process Group PGID: 99"},"id":"gcall_09"}}]}]`

func TestGeminiHistory(t *testing.T) {
	calls, ok := geminiHistory(gemHistory)
	want := []geminiCall{
		// The command printed a look-alike line first: Gemini's own, the last, counts.
		{id: gemShellID, name: "run_shell_command", command: "echo MARKER_SHELL pid=$$ ppid=$PPID; env | sort", pid: gemShell},
		{id: gemReadID, name: "read_file", files: []string{"<repo>/notes.txt"}},
		// The call without an id is not recalled; the response to no call names nothing.
	}
	if !ok || len(calls) != len(want) {
		t.Fatalf("calls %+v, %v", calls, ok)
	}
	for i := range want {
		c, w := calls[i], want[i]
		if c.id != w.id || c.name != w.name || c.command != w.command || !slices.Equal(c.files, w.files) || c.pid != w.pid {
			t.Errorf("call %d = %+v, want %+v", i, c, w)
		}
	}
	for _, bad := range []string{"", "[{", `{"role":"user"}`, `[{"parts":"x"}]`} {
		if _, ok := geminiHistory(bad); ok {
			t.Errorf("%q read as a history", bad)
		}
	}
	if calls, ok := geminiHistory(`[]`); !ok || len(calls) != 0 {
		t.Errorf("empty history: %v %v", calls, ok)
	}
}

func FuzzGeminiHistory(f *testing.F) {
	f.Add(gemHistory)
	f.Add(`[{"parts":[{"functionCall":{"name":"a","id":"b","args":[]}},{"functionResponse":{"name":"a","id":"b","response":{"output":"Process Group PGID: 99999999999999999999"}}}]}]`)
	f.Fuzz(func(t *testing.T, text string) {
		calls, ok := geminiHistory(text)
		for _, c := range calls {
			if !ok || c.id != c.name+"__"+strings.TrimPrefix(c.id, c.name+"__") || c.pid < 0 {
				t.Fatalf("call %+v from %q", c, text)
			}
		}
	})
}

// TestStitchGemini binds the sample run's kernel events: the shell by the pid its output
// names (its fork and exec; its child inherits), the worker's open of the read_file path by
// the path, a child of the worker the output does not name by nothing stronger than its
// window; and the tool_call logs, which name no call, are matched to their spans.
func TestStitchGemini(t *testing.T) {
	procs := map[int]sensor.ProcessInfo{
		gemRoot:   {Pid: gemRoot, Name: "node", RootPid: gemRoot, Agent: agents.GeminiCLI},
		gemWorker: {Pid: gemWorker, PPid: gemRoot, Name: "node", RootPid: gemRoot, Agent: agents.GeminiCLI},
	}
	s := NewStitcher(StitcherOptions{Lookup: func(pid int) (sensor.ProcessInfo, bool) { p, ok := procs[pid]; return p, ok }})
	logs, _ := adaptFile(t, "0001_logs.json", ContentTypeJSON, readSample(t, "gemini/0001_logs.json"))
	spans, _ := adaptFile(t, "0003_traces.json", ContentTypeJSON, readSample(t, "gemini/0003_traces.json"))
	history := proto.AgentEvent{Agent: agents.GeminiCLI, Kind: proto.KindToolHistory, EventName: "gemini_cli.api_request",
		Time: ts("2026-12-04T03:45:16.588Z"), SessionID: gemSession, PromptID: gemSession}
	var hist []proto.AgentEvent
	calls, _ := geminiHistory(gemHistory)
	for _, c := range calls {
		h := history
		h.ToolUseID, h.ToolName, h.Command, h.FilePaths, h.ToolPID = c.id, c.name, c.command, c.files, c.pid
		hist = append(hist, h)
	}
	// The logs (results first) come before the spans, as Gemini exported them.
	for _, evs := range [][]proto.AgentEvent{logs, hist, spans} {
		s.AddTelemetry(TelemetryBatch{Events: evs, Transport: TransportOTLPHTTP, SenderPid: gemWorker})
	}
	at := func(clock string) string { return "2026-12-04T03:45:" + clock + "Z" }
	ev := func(k kev, clock string) *proto.Event {
		e := k.event()
		e.Timestamp = ts(at(clock))
		return e
	}
	reused := func(e *proto.Event) *proto.Event {
		e.Process.EntityID = "ent-reused"
		return e
	}
	wrapper := []string{"/usr/bin/bash", "-c", "shopt -u promptvars nullglob extglob nocaseglob dotglob; ( echo MARKER_SHELL pid=$$ ppid=$PPID; env | sort ) ; exit $?"}
	rows := []struct {
		name string
		e    *proto.Event
		want bound
	}{
		{"the shell's fork", ev(kev{action: proto.ActionFork, pid: gemShell, ppid: gemWorker, root: gemRoot}, "12.868"),
			bound{binding: proto.BindingToolPID, confidence: "high", call: gemShellID, tool: "run_shell_command", conversation: gemSession, prompt: gemSession}},
		{"the shell's exec", ev(kev{action: proto.ActionExec, pid: gemShell, ppid: gemWorker, root: gemRoot, args: wrapper}, "12.871"),
			bound{binding: proto.BindingToolPID, confidence: "high", call: gemShellID, tool: "run_shell_command", conversation: gemSession, prompt: gemSession}},
		{"its child", ev(kev{action: proto.ActionExec, pid: gemShell + 2, ppid: gemShell, root: gemRoot, args: []string{"env"}}, "12.900"),
			bound{binding: proto.BindingToolPID, confidence: "high", call: gemShellID, tool: "run_shell_command", conversation: gemSession, prompt: gemSession}},
		{"the worker reads the file", ev(kev{action: proto.ActionOpen, pid: gemWorker, root: gemRoot, path: "<repo>/notes.txt"}, "13.935"),
			bound{binding: proto.BindingFilePath, confidence: "medium", call: gemReadID, tool: "read_file", conversation: gemSession, prompt: gemSession}},
		{"a child the output does not name", ev(kev{action: proto.ActionFork, pid: 29001, ppid: gemWorker, root: gemRoot}, "13.950"),
			bound{binding: proto.BindingWindow, confidence: "low", call: gemReadID, tool: "read_file", conversation: gemSession, prompt: gemSession}},
		{"the named pid reused after its call", reused(ev(kev{action: proto.ActionFork, pid: gemShell, ppid: gemWorker, root: gemRoot}, "20.000")),
			bound{binding: proto.BindingNone, conversation: gemSession, prompt: gemSession}},
	}
	for _, r := range rows {
		s.Push(r.e)
	}
	kernel, agentLines := stRelease(s, time.Now(), true)
	for i, r := range rows {
		if got := boundOf(kernel[i]); got != r.want {
			t.Errorf("%s:\n got  %+v\n want %+v", r.name, got, r.want)
		}
	}
	var callIDs []string
	for _, e := range agentLines {
		if e.Event.Action == proto.ActionAgentToolCall && e.GenAI != nil && e.GenAI.Tool != nil && e.GenAI.Tool.Call != nil {
			callIDs = append(callIDs, e.GenAI.Tool.Call.ID)
			if e.Vigil.Tool == nil || e.Vigil.Tool.Decision != "accept" {
				t.Errorf("%s: decision %+v, want accept (from the result log)", e.GenAI.Tool.Call.ID, e.Vigil.Tool)
			}
		}
	}
	slices.Sort(callIDs)
	if want := []string{gemReadID, "replace__gcall_03", gemShellID, "write_file__gcall_02"}; !slices.Equal(callIDs, want) {
		t.Errorf("agent.tool_call lines name %q, want %q", callIDs, want)
	}
}

// TestStitchGeminiResultWithoutSpans: a tool result whose batch's spans never come is written
// after twice the hold, without a call id, rather than kept forever or dropped.
func TestStitchGeminiResultWithoutSpans(t *testing.T) {
	procs := map[int]sensor.ProcessInfo{gemWorker: {Pid: gemWorker, RootPid: gemRoot, Agent: agents.GeminiCLI}}
	hold := time.Second
	s := NewStitcher(StitcherOptions{Hold: hold, MaxHeld: 100, Lookup: func(pid int) (sensor.ProcessInfo, bool) { p, ok := procs[pid]; return p, ok }})
	logs, _ := adaptFile(t, "0001_logs.json", ContentTypeJSON, readSample(t, "gemini/0001_logs.json"))
	s.AddTelemetry(TelemetryBatch{Events: logs, Transport: TransportOTLPHTTP, SenderPid: gemWorker})
	toolLines := func(now time.Time) (n, withID int) {
		_, lines := stRelease(s, now, false)
		for _, e := range lines {
			if e.Event.Action == proto.ActionAgentToolCall {
				n++
				if e.GenAI.Tool.Call != nil && e.GenAI.Tool.Call.ID != "" {
					withID++
				}
			}
		}
		return n, withID
	}
	if n, _ := toolLines(time.Now()); n != 0 {
		t.Fatalf("%d tool lines before the spans had their chance", n)
	}
	if n, withID := toolLines(time.Now().Add(2*hold + time.Millisecond)); n != 4 || withID != 0 {
		t.Errorf("%d tool lines (%d with a call id), want the 4 results without one", n, withID)
	}
}
