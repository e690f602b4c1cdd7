package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// opencode: the seven families with strong keys (the fleet's telemetry and Vigil's plugin),
// each with a fallback variant (the telemetry alone); the parallel batch mixes shells and an
// in-process read.
func TestOpencodeScenarios(t *testing.T) {
	scs, err := loadScenarios()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]Scenario{}
	for _, s := range scs {
		if s.Agent == "opencode" {
			have[s.Name] = s
			if s.StrongKeys == strings.HasSuffix(s.Name, "-fallback") {
				t.Errorf("opencode/%s: strong keys %v", s.Name, s.StrongKeys)
			}
		}
	}
	for _, name := range []string{"pipeline", "background", "dotenv", "filetools", "failing", "twoprompts", "parallel"} {
		if _, ok := have[name]; !ok {
			t.Errorf("opencode/%s: missing", name)
		}
		if _, ok := have[name+"-fallback"]; !ok {
			t.Errorf("opencode/%s-fallback: missing", name)
		}
	}
	if s := have["twoprompts"]; len(s.Prompts) < 2 {
		t.Errorf("opencode/twoprompts has %d prompts", len(s.Prompts))
	}
	if s := have["parallel"]; len(s.Prompts[0].Turns) < 3 || !s.Prompts[0].Turns[2].Parallel || s.Prompts[0].Turns[2].Tool != "read" {
		t.Errorf("opencode/parallel: want a read in the shells' batch, have %+v", s.Prompts[0].Turns)
	}
	// edit needs a read of the same file first (opencode refuses an edit of an unread file).
	if s := have["filetools"]; !slices.ContainsFunc(s.Prompts[0].Turns, func(t Turn) bool { return t.Tool == "edit" }) ||
		s.Prompts[0].Turns[0].Tool != "read" || s.Prompts[0].Turns[0].File != s.Prompts[0].Turns[2].File {
		t.Errorf("opencode/filetools: want a read then an edit of the same file, have %+v", s.Prompts[0].Turns)
	}
	for _, bad := range []string{
		`{"name":"x","agent":"opencode","prompts":[{"text":"t","turns":[{"tool":"bash"}]}]}`,
		`{"name":"x","agent":"opencode","prompts":[{"text":"t","turns":[{"tool":"Bash","command":"ls"}]}]}`,
		`{"name":"x","agent":"opencode","prompts":[{"text":"t","turns":[{"tool":"read","file":"notes.txt"}]}]}`,
		`{"name":"x","agent":"opencode","prompts":[{"text":"t","turns":[{"tool":"bash","command":"ls","is_background":true}]}]}`,
		`{"name":"x","agent":"opencode","hooks_only":true,"prompts":[{"text":"t"}]}`,
		`{"name":"x","agent":"opencode","forged":["call_1"],"prompts":[{"text":"t"}]}`,
	} {
		if _, err := parseScenario([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// chatSSEData returns the data objects of a Chat Completions stream, which must end with
// data: [DONE].
func chatSSEData(t *testing.T, resp *http.Response) []map[string]any {
	t.Helper()
	var out []map[string]any
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if d == "[DONE]" {
			done = true
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("bad SSE data %q: %v", d, err)
		}
		out = append(out, m)
	}
	if !done {
		t.Fatal("no data: [DONE]")
	}
	return out
}

func TestOpencodeChatMockScript(t *testing.T) {
	sc := Scenario{Name: "t", Agent: "opencode", StrongKeys: true, LatencyMs: &zero, Prompts: []Prompt{
		{Text: "first", Final: "one done", Turns: []Turn{{Tool: "bash", Command: "echo hi"},
			{Tool: "bash", Command: "exit 3"}, {Tool: "read", File: "notes.txt", Parallel: true}}},
		{Text: "second", Final: "two done", Turns: []Turn{{Tool: "edit", File: "notes.txt", Old: "a", New: "b"}}},
	}}
	m := newMock(sc, "/repo", nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	url := srv.URL + "/v1/chat/completions"
	tools := []any{map[string]any{"type": "function", "function": map[string]any{"name": "bash"}}}
	sys := map[string]any{"role": "system", "content": "You are opencode"}
	user := func(text string) map[string]any { return map[string]any{"role": "user", "content": text} }
	asst := func(ids ...string) map[string]any {
		var tcs []any
		for _, id := range ids {
			tcs = append(tcs, map[string]any{"id": id, "type": "function", "function": map[string]any{"name": "bash", "arguments": "{}"}})
		}
		return map[string]any{"role": "assistant", "content": "", "tool_calls": tcs}
	}
	result := func(id, out string) map[string]any {
		return map[string]any{"role": "tool", "tool_call_id": id, "content": out}
	}
	// toolCalls reads the streamed tool_calls (and checks the finish reason and [DONE]).
	toolCalls := func(resp *http.Response) []map[string]any {
		t.Helper()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		var out []map[string]any
		finish := ""
		for _, d := range chatSSEData(t, resp) {
			for _, c := range d["choices"].([]any) {
				ch := c.(map[string]any)
				if f, ok := ch["finish_reason"].(string); ok {
					finish = f
				}
				if tcs, ok := ch["delta"].(map[string]any)["tool_calls"].([]any); ok {
					for _, tc := range tcs {
						out = append(out, tc.(map[string]any))
					}
				}
			}
		}
		if (len(out) > 0) != (finish == "tool_calls") {
			t.Fatalf("finish_reason %q with %d tool calls", finish, len(out))
		}
		return out
	}
	args := func(tc map[string]any) map[string]any {
		var a map[string]any
		json.Unmarshal([]byte(tc["function"].(map[string]any)["arguments"].(string)), &a)
		return a
	}
	// The title request has no tools: text, no call.
	if tc := toolCalls(post(t, url, map[string]any{"stream": true, "messages": []any{sys, user(promptMarker(0) + " first")}})); len(tc) != 0 {
		t.Fatalf("title request: %+v", tc)
	}
	// Turn 0: bash with the mock's id.
	hist := []any{sys, user(promptMarker(0) + " first")}
	tc := toolCalls(post(t, url, map[string]any{"stream": true, "tools": tools, "messages": hist}))
	if len(tc) != 1 || tc[0]["id"] != "call_opencode_e2e_0_0" || tc[0]["function"].(map[string]any)["name"] != "bash" || args(tc[0])["command"] != "echo hi" {
		t.Fatalf("turn 0: %+v", tc)
	}
	// Turns 1 and 2 in one message: a shell and an absolute read.
	hist = append(hist, asst("call_opencode_e2e_0_0"), result("call_opencode_e2e_0_0", "hi\n"))
	tc = toolCalls(post(t, url, map[string]any{"stream": true, "tools": tools, "messages": hist}))
	if len(tc) != 2 || tc[0]["id"] != "call_opencode_e2e_0_1" || tc[1]["id"] != "call_opencode_e2e_0_2" || tc[1]["index"] != 1.0 ||
		args(tc[1])["filePath"] != "/repo/notes.txt" {
		t.Fatalf("batch: %+v", tc)
	}
	hist = append(hist, asst("call_opencode_e2e_0_1", "call_opencode_e2e_0_2"),
		result("call_opencode_e2e_0_1", "\n\n<bash_metadata>\nbash tool terminated command with exit code 3\n</bash_metadata>"),
		result("call_opencode_e2e_0_2", "<file>\n00001| hello\n</file>"))
	if tc := toolCalls(post(t, url, map[string]any{"stream": true, "tools": tools, "messages": hist})); len(tc) != 0 {
		t.Fatalf("after the batch: %+v", tc)
	}
	// The continued session (-s): prompt 1's marker in a content array, then an edit (JSON).
	hist = append(hist, map[string]any{"role": "assistant", "content": "one done"},
		map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": promptMarker(1) + " second"}}})
	resp := post(t, url, map[string]any{"tools": tools, "messages": hist})
	var msg struct {
		Choices []struct {
			Message struct {
				ToolCalls []map[string]any `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	json.NewDecoder(resp.Body).Decode(&msg)
	if len(msg.Choices) != 1 || len(msg.Choices[0].Message.ToolCalls) != 1 || msg.Choices[0].Message.ToolCalls[0]["id"] != "call_opencode_e2e_1_0" ||
		args(msg.Choices[0].Message.ToolCalls[0])["newString"] != "b" || msg.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("prompt 1: %+v", msg)
	}
	// Other paths answer as the other mocks do.
	if resp := post(t, srv.URL+"/v1/models", map[string]any{}); resp.StatusCode != 200 {
		t.Fatalf("models: %d", resp.StatusCode)
	}
	got := m.Calls()
	ids := callIDs(got)
	if want := []string{"call_opencode_e2e_0_0", "call_opencode_e2e_0_1", "call_opencode_e2e_0_2", "call_opencode_e2e_1_0"}; !slices.Equal(ids, want) {
		t.Fatalf("call ids %v, want %v", ids, want)
	}
	if got[0].IsError || !got[1].IsError || got[2].IsError || got[2].Files[0] != "/repo/notes.txt" || got[3].Files[0] != "/repo/notes.txt" ||
		got[0].Answered.IsZero() || got[2].Answered.IsZero() || !got[3].Answered.IsZero() || got[3].Prompt != 1 || got[3].Turn != 0 {
		t.Fatalf("ground truth: %+v", got)
	}
}

// opencode keeps the model's tool call ids: part.callID must be the mock's id, and the
// scenario fails when it is not.
func TestOpencodeStreamCheck(t *testing.T) {
	calls := []Call{
		{ID: "call_opencode_e2e_0_0", Tool: "bash", Command: "./.e2e/vmark_0_0_; ls"},
		{ID: "call_opencode_e2e_0_1", Tool: "read", Turn: 1, Files: []string{"/repo/vmark_0_1_a.txt"}},
	}
	use := func(tool, id, param, value string) string {
		b, _ := json.Marshal(map[string]any{"type": "tool_use", "sessionID": "ses_x", "part": map[string]any{"type": "tool", "tool": tool, "callID": id,
			"state": map[string]any{"status": "completed", "input": map[string]any{param: value}}}})
		return string(b) + "\n"
	}
	good := `{"type":"step_start","sessionID":"ses_x","part":{}}` + "\n" + use("bash", "call_opencode_e2e_0_0", "command", "./.e2e/vmark_0_0_; ls") +
		use("read", "call_opencode_e2e_0_1", "filePath", "/repo/vmark_0_1_a.txt")
	if errs, _ := checkCallIDs("opencode", calls, []byte(good)); len(errs) != 0 {
		t.Fatalf("agreeing output: %v", errs)
	}
	if !inStream("opencode", calls[1], []byte(good)) || inStream("opencode", Call{ID: "call_opencode_e2e_9_9"}, []byte(good)) {
		t.Fatal("inStream")
	}
	bad := use("bash", "call_opencode_e2e_0_0", "command", "./.e2e/vmark_0_0_; ls") +
		use("read", "toolu_other", "filePath", "/repo/vmark_0_1_a.txt") + use("glob", "call_x", "pattern", "*")
	errs, _ := checkCallIDs("opencode", calls, []byte(bad))
	if len(errs) != 3 || !strings.Contains(errs[0], "prompt 0 turn 1 is call_opencode_e2e_0_1 by construction, toolu_other") ||
		!strings.Contains(errs[1], "call_x") || !strings.Contains(errs[2], "not in opencode's JSON output") {
		t.Fatalf("disagreeing output: %q", errs)
	}
}

func TestOpencodeOutputFailed(t *testing.T) {
	for out, want := range map[string]bool{
		"hi\n": false,
		"\n\n<bash_metadata>\nbash tool terminated command with exit code 3\n</bash_metadata>": true,
		"Process exited with code 0": false,
		"exit code: 127":             true,
	} {
		if got := opencodeOutputFailed(out); got != want {
			t.Errorf("%q: %v, want %v", out, got, want)
		}
	}
}

// opencode's JSON output gives each call's run window (ms) and a shell's exit code; the
// windows narrow which of the agent's own opens belong to the call (truth.go outAt).
func TestOpencodeFromOutput(t *testing.T) {
	base := time.UnixMilli(1796453561000)
	calls := []Call{{ID: "call_opencode_e2e_0_0", Tool: "bash", Issued: base, Answered: base.Add(time.Second)},
		{ID: "call_opencode_e2e_0_1", Tool: "write", Issued: base.Add(time.Second), Answered: base.Add(2 * time.Second)}}
	stream := `{"type":"tool_use","part":{"tool":"bash","callID":"call_opencode_e2e_0_0","state":{"status":"completed","metadata":{"exit":3},"time":{"start":1796453561100,"end":1796453561200}}}}
{"type":"tool_use","part":{"tool":"write","callID":"call_opencode_e2e_0_1","state":{"status":"completed","time":{"start":1796453562100,"end":1796453562110}}}}
`
	opencodeFromOutput(calls, []byte(stream))
	if !calls[0].IsError || calls[1].IsError || !calls[1].RanFrom.Equal(base.Add(1100*time.Millisecond)) || !calls[1].RanTo.Equal(base.Add(1111*time.Millisecond)) {
		t.Fatalf("calls %+v", calls)
	}
	c := calls[1]
	for at, want := range map[time.Duration]bool{1000: true, 1050: true, 1100: true, 1110: true, 1111: true, 1112: false, 1500: false} {
		if got := c.outAt(base.Add(at * time.Millisecond)); got != want {
			t.Errorf("outAt(+%dms) = %v, want %v", at, got, want)
		}
	}
	// Without a stated window, the mock's: issued to answered.
	c.RanFrom, c.RanTo = time.Time{}, time.Time{}
	if !c.outAt(base.Add(1500*time.Millisecond)) || c.outAt(base.Add(2500*time.Millisecond)) {
		t.Error("mock window")
	}
}

// opencode's own git (its startup project id, the snapshot `git --work-tree <repo> add` around
// every step) is a tool root that runs git and nothing else: it belongs to no call even when
// it opens a call's marker files (a snapshot repository that did not take the scenario's
// .git/info/exclude would hash .e2e too), while the call's own shell, which runs git as a
// child, keeps its git. Hand-made record: agent 100; snapshot git 101 opens .e2e files of
// calls 0_0 (while it is out) and 0_1; shell 102 of call 0_0 runs git 103; the watcher thread
// 104 re-reads call 0_1's file after the tool's stated end.
const opencodeGitStrace = `100 1000.000000 execve("/npm/opencode/node_modules/.bin/opencode", ["opencode", "run"], 0x1 /* 1 vars */) = 0
100 1000.001000 clone(child_stack=NULL, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM) = 104
100 1000.010000 clone(child_stack=NULL, flags=SIGCHLD) = 102
102 1000.011000 execve("/bin/bash", ["/bin/bash", "-c", "./.e2e/vmark_0_0_; git log"], 0x1 /* 1 vars */) = 0
102 1000.012000 clone(child_stack=NULL, flags=SIGCHLD) = 103
103 1000.013000 execve("/usr/bin/git", ["git", "log"], 0x1 /* 1 vars */) = 0
103 1000.014000 openat(AT_FDCWD</repo>, ".git/HEAD", O_RDONLY) = 3</repo/.git/HEAD>
103 1000.015000 +++ exited with 0 +++
102 1000.016000 execve("./.e2e/vmark_0_0_", ["./.e2e/vmark_0_0_"], 0x1 /* 1 vars */) = 0
102 1000.017000 +++ exited with 0 +++
100 1000.020000 clone(child_stack=NULL, flags=SIGCHLD) = 101
101 1000.021000 execve("/usr/local/bin/git", ["git", "--git-dir", "/snap", "--work-tree", "/repo", "add", "."], 0x1 /* 1 vars */) = -1 ENOENT (No such file or directory)
101 1000.022000 execve("/usr/bin/git", ["git", "--git-dir", "/snap", "--work-tree", "/repo", "add", "."], 0x1 /* 1 vars */) = 0
101 1000.023000 openat(AT_FDCWD</repo>, ".e2e/vmark_0_0_.txt", O_RDONLY) = 3</repo/.e2e/vmark_0_0_.txt>
101 1000.024000 openat(AT_FDCWD</repo>, ".e2e/vmark_0_1_.txt", O_RDONLY) = 3</repo/.e2e/vmark_0_1_.txt>
101 1000.025000 +++ exited with 0 +++
100 1000.030000 openat(AT_FDCWD</repo>, "/repo/vmark_0_1_out.txt", O_WRONLY|O_CREAT, 0644) = 4</repo/vmark_0_1_out.txt>
104 1000.040000 openat(AT_FDCWD</repo>, "/repo/vmark_0_1_out.txt", O_RDONLY|O_CLOEXEC) = 4</repo/vmark_0_1_out.txt>
`

func TestBuildTruthOpencodeOwnGit(t *testing.T) {
	log, err := parseStrace(strings.NewReader(opencodeGitStrace))
	if err != nil || len(log.Bad) != 0 {
		t.Fatalf("parse: %v %v", err, log.Bad)
	}
	at := func(ms int) time.Time { return time.UnixMilli(1000_000 + int64(ms)) }
	calls := []Call{
		{ID: "call_opencode_e2e_0_0", Prompt: 0, Turn: 0, Issued: at(5), Answered: at(50)},
		{ID: "call_opencode_e2e_0_1", Prompt: 0, Turn: 1, Issued: at(26), Answered: at(60), RanFrom: at(28), RanTo: at(32)},
	}
	tr := buildTruth([]StraceLog{log}, calls, "/npm")
	if len(tr.Ambiguous) != 0 {
		t.Fatalf("ambiguous %v", tr.Ambiguous)
	}
	for _, e := range tr.Events {
		want := map[int]string{101: "", 102: calls[0].ID, 103: calls[0].ID, 104: ""}[e.Pid]
		switch {
		case e.Pid == 100 && e.Tid == 100 && e.Kind == sysOpen:
			want = calls[1].ID // the in-process write, before the tool's stated end
		case e.Pid == 100:
			want = "" // and the watcher thread 104's re-read after it
		}
		if e.Call != want {
			t.Errorf("pid %d %s %s: call %q, want %q", e.Pid, e.Kind, e.Path, e.Call, want)
		}
		if e.Pid == 101 && e.Marker {
			t.Errorf("the snapshot git's open is a marker: %+v", e)
		}
	}
}

// A real record, trimmed: opencode's filetools scenario (testdata/strace-opencode-filetools.txt:
// every fork, exec and exit, the opens of the tool shell's subtree but its libraries', and of
// the agent's own threads only those of marked files). The one opencode process A (14854, the
// Bun binary .bin/opencode, 18 threads) runs ~100 git children (startup project id, the
// snapshot `git --git-dir <snapshot> --work-tree <repo> add/write-tree/diff` around every
// step), read 0_0, write 0_1 and edit 0_2 in its own threads, and the shell 15257 (setsid +
// /bin/bash -c '<command>') of bash 0_3. Its file index (15031, before any call) and watcher
// (15037, after each tool's end) threads re-read the marked files: no call.
func TestBuildTruthRealOpencodeFiletools(t *testing.T) {
	log := straceTestdata(t, "strace-opencode-filetools.txt")
	at := rfc3339
	calls := []Call{
		{ID: "call_opencode_e2e_0_0", Tool: "read", Prompt: 0, Turn: 0, Issued: at("2026-12-05T06:53:44.044962112Z"), Answered: at("2026-12-05T06:53:44.365883345Z")},
		{ID: "call_opencode_e2e_0_1", Tool: "write", Prompt: 0, Turn: 1, Issued: at("2026-12-05T06:53:44.667192267Z"), Answered: at("2026-12-05T06:53:44.972825939Z")},
		{ID: "call_opencode_e2e_0_2", Tool: "edit", Prompt: 0, Turn: 2, Issued: at("2026-12-05T06:53:45.273759263Z"), Answered: at("2026-12-05T06:53:45.576946758Z")},
		{ID: "call_opencode_e2e_0_3", Tool: "bash", Prompt: 0, Turn: 3, Issued: at("2026-12-05T06:53:45.877846302Z"), Answered: at("2026-12-05T06:53:46.271282734Z")},
	}
	use := func(id string, start, end int64) string {
		return `{"type":"tool_use","part":{"callID":"` + id + `","state":{"time":{"start":` + strconv.FormatInt(start, 10) + `,"end":` + strconv.FormatInt(end, 10) + `}}}}` + "\n"
	}
	opencodeFromOutput(calls, []byte(use(calls[0].ID, 1796453624066, 1796453624084)+use(calls[1].ID, 1796453624685, 1796453624700)+
		use(calls[2].ID, 1796453625287, 1796453625304)+use(calls[3].ID, 1796453625890, 1796453626005)))
	tr := buildTruth([]StraceLog{log}, calls, "/var/cache/vigil-e2e/npm")
	if len(tr.Roots) != 1 || tr.Roots[0] != 14854 || len(tr.Ambiguous) != 0 {
		t.Fatalf("roots %v ambiguous %v", tr.Roots, tr.Ambiguous)
	}
	byCall, markers, gits := map[string]int{}, map[string]int{}, map[int]bool{}
	for _, e := range tr.Events {
		switch {
		case e.Pid == 14854:
			if !e.Agent {
				t.Errorf("A is not the agent's own: %+v", e)
			}
			if e.Kind == sysOpen && (e.Tid == 15031 || e.Tid == 15037) && e.Call != "" {
				t.Errorf("A's file index or watcher thread got a call: %+v", e)
			}
		case e.Kind == sysExec && filepath.Base(e.Path) == "git":
			gits[e.Pid] = true
		}
		if e.Agent && e.Kind != sysOpen && e.Call != "" {
			t.Errorf("an agent event other than an open got a call: %+v", e)
		}
		byCall[e.Call]++
		if e.Marker {
			markers[e.Call]++
		}
	}
	for _, e := range tr.Events {
		if gits[e.Pid] && e.Call != "" {
			t.Errorf("opencode's own git %d got a call: %+v", e.Pid, e)
		}
		if e.Pid == 15257 && e.Call != calls[3].ID {
			t.Errorf("the bash shell: call %q", e.Call)
		}
	}
	if len(gits) < 90 {
		t.Errorf("%d git processes", len(gits))
	}
	// read: two opens; write: one; edit: the main thread's O_PATH check, then read and write.
	for i, want := range []int{2, 1, 3} {
		if byCall[calls[i].ID] != want || markers[calls[i].ID] != want {
			t.Errorf("%s: %d events, %d markers, want %d", calls[i].ID, byCall[calls[i].ID], markers[calls[i].ID], want)
		}
	}
	if byCall[calls[3].ID] < 20 || markers[calls[3].ID] < 4 {
		t.Errorf("bash: %d events, %d markers", byCall[calls[3].ID], markers[calls[3].ID])
	}
}
