package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// These tests need neither npm, root nor the agents: `make e2e` runs the real thing.

func TestScenariosCoverTheIssue(t *testing.T) {
	scs, err := loadScenarios()
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ agent, name string }
	have := map[key]Scenario{}
	for _, s := range scs {
		have[key{s.Agent, s.Name}] = s
	}
	for _, agent := range []string{"claude", "codex", "gemini", "copilot"} {
		for _, name := range []string{"pipeline", "background", "dotenv", "filetools", "failing", "twoprompts", "parallel"} {
			s, ok := have[key{agent, name}]
			if !ok || !s.StrongKeys {
				t.Errorf("%s/%s: missing, or not a strong-key scenario", agent, name)
			}
		}
		if s := have[key{agent, "twoprompts"}]; len(s.Prompts) < 2 {
			t.Errorf("%s/twoprompts has %d prompts", agent, len(s.Prompts))
		}
		if agent == "gemini" {
			continue // one telemetry configuration, the fleet's: no fallback variant
		}
		fallback := 0
		for _, s := range scs {
			if s.Agent == agent && !s.StrongKeys {
				fallback++
			}
		}
		if fallback == 0 {
			t.Errorf("%s: no fallback (weak keys) scenario", agent)
		}
	}
	// Gemini's own shapes: a parallel batch mixing shells and an in-process file tool, and an
	// is_background shell beside the grandchildren.
	if s := have[key{"gemini", "parallel"}]; len(s.Prompts[0].Turns) < 3 || !s.Prompts[0].Turns[2].Parallel || s.Prompts[0].Turns[2].Tool != "read_file" {
		t.Errorf("gemini/parallel: want a read_file in the shells' batch, have %+v", s.Prompts[0].Turns)
	}
	if s := have[key{"gemini", "background"}]; !slices.ContainsFunc(s.Prompts[0].Turns, func(t Turn) bool { return t.Background }) {
		t.Error("gemini/background: no is_background call")
	}
	// Copilot: every scenario also runs without content capture (the weak telemetry), a view
	// in the shells' batch, an async shell beside the grandchildren.
	for _, s := range scs {
		if s.Agent != "copilot" || !s.StrongKeys {
			continue
		}
		if f, ok := have[key{"copilot", s.Name + "-fallback"}]; !ok || f.StrongKeys {
			t.Errorf("copilot/%s: no weak-telemetry variant %s-fallback", s.Name, s.Name)
		}
	}
	if s := have[key{"copilot", "parallel"}]; len(s.Prompts[0].Turns) < 3 || !s.Prompts[0].Turns[2].Parallel || s.Prompts[0].Turns[2].Tool != "view" {
		t.Errorf("copilot/parallel: want a view in the shells' batch, have %+v", s.Prompts[0].Turns)
	}
	if s := have[key{"copilot", "background"}]; !slices.ContainsFunc(s.Prompts[0].Turns, func(t Turn) bool { return t.Background && t.Tool == "bash" }) {
		t.Error("copilot/background: no async bash call")
	}
}

// Issue 11: six malicious scenarios, each expecting its rule on the malicious tool call (not
// anywhere), and an agent without telemetry for agent.silent.
func TestMaliciousScenariosCoverTheIssue(t *testing.T) {
	scs, err := loadScenarios()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"exfil-ssh":     "exfil.secret_read_and_egress_in_tool_call",
		"buildtool":     "effects.undeclared_secret_read",
		"kubectl":       "deploy.kubectl_change_unapproved",
		"githook":       "persistence.git_hook_written",
		"telemetry-off": "defense_evasion.agent_telemetry_disabled",
		"curl-sh":       "execution.download_piped_to_shell",
	}
	found := map[string]bool{}
	for _, s := range scs {
		if s.Agent != "claude" {
			continue
		}
		if rule, ok := want[s.Name]; ok {
			found[s.Name] = true
			onCall := false
			for _, e := range s.ExpectAlerts {
				x, _ := parseExpectation(e)
				onCall = onCall || (x.Rule == rule && x.Turn != nil)
			}
			if !onCall || !s.StrongKeys {
				t.Errorf("claude/%s: want a strong-key scenario expecting %s on a tool call, have %v", s.Name, rule, s.ExpectAlerts)
			}
		}
		if s.Name == "silent" {
			found[s.Name] = true
			if !s.NoTelemetry || !slices.Contains(s.ExpectAlerts, "agent.silent") {
				t.Errorf("claude/silent: no_telemetry %v, expect %v", s.NoTelemetry, s.ExpectAlerts)
			}
		}
	}
	if len(found) != len(want)+1 {
		t.Errorf("claude malicious scenarios found: %v", found)
	}
}

func TestParseScenarioRejects(t *testing.T) {
	for _, bad := range []string{
		`{"name":"x","agent":"aider","prompts":[{"text":"t"}]}`,
		`{"name":"x","agent":"gemini","prompts":[{"text":"t","turns":[{"tool":"run_shell_command"}]}]}`,
		`{"name":"x","agent":"gemini","prompts":[{"text":"t","turns":[{"tool":"Bash","command":"ls"}]}]}`,
		`{"name":"x","agent":"gemini","prompts":[{"text":"t","turns":[{"tool":"read_file","file":"{M}a","is_background":true}]}]}`,
		`{"name":"x","agent":"gemini","hooks_only":true,"prompts":[{"text":"t"}]}`,
		`{"name":"x","agent":"gemini","strong_keys":true,"also_fallback":true,"prompts":[{"text":"t"}]}`,
		`{"name":"x","agent":"claude","prompts":[{"text":"t","turns":[{"tool":"apply_patch","patch":"p"}]}]}`,
		`{"name":"x","agent":"copilot","prompts":[{"text":"t","turns":[{"tool":"bash"}]}]}`,
		`{"name":"x","agent":"copilot","prompts":[{"text":"t","turns":[{"tool":"run_shell_command","command":"ls"}]}]}`,
		`{"name":"x","agent":"copilot","prompts":[{"text":"t","turns":[{"tool":"view","file":"notes.txt"}]}]}`,
		`{"name":"x","agent":"copilot","prompts":[{"text":"t","turns":[{"tool":"create","file":"{M}a","is_background":true}]}]}`,
		`{"name":"x","agent":"copilot","hooks_only":true,"prompts":[{"text":"t"}]}`,
		`{"name":"x","agent":"codex","prompts":[{"text":"t","turns":[{"tool":"exec_command"}]}]}`,
		`{"name":"x","agent":"claude","prompts":[]}`,
		`{"name":"x","agent":"claude","typo":1,"prompts":[{"text":"t"}]}`,
		// an in-process tool's file must carry the call's marker
		`{"name":"x","agent":"claude","prompts":[{"text":"t","turns":[{"tool":"Read","file":"notes.txt"}]}]}`,
		`{"name":"x","agent":"codex","prompts":[{"text":"t","turns":[{"tool":"apply_patch","patch":"*** Add File: a.txt\n+x\n"}]}]}`,
	} {
		if _, err := parseScenario([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestPatchFiles(t *testing.T) {
	got := patchFiles("*** Begin Patch\n*** Add File: a.txt\n+x\n*** Update File: dir/b.txt\n@@\n-y\n+z\n*** Delete File: c\n*** End Patch\n")
	if strings.Join(got, ",") != "a.txt,dir/b.txt,c" {
		t.Fatalf("patchFiles = %v", got)
	}
}

var zero = 0

func testScenario(agent string) Scenario {
	s := Scenario{Name: "t", Agent: agent, StrongKeys: true, LatencyMs: &zero, Prompts: []Prompt{
		{Text: "first", Final: "one done"},
		{Text: "second", Final: "two done"},
	}}
	switch agent {
	case "claude":
		s.Prompts[0].Turns = []Turn{{Tool: "Bash", Command: "echo hi"}, {Tool: "Read", File: "notes.txt"}}
		s.Prompts[1].Turns = []Turn{{Tool: "Edit", File: "notes.txt", Old: "a", New: "b"}}
	case "gemini":
		s.Prompts[0].Turns = []Turn{{Tool: "run_shell_command", Command: "echo hi", Background: true},
			{Tool: "run_shell_command", Command: "exit 3"}, {Tool: "read_file", File: "notes.txt", Parallel: true}}
		s.Prompts[1].Turns = []Turn{{Tool: "replace", File: "notes.txt", Old: "a", New: "b"}}
	case "copilot":
		s.Prompts[0].Turns = []Turn{{Tool: "bash", Command: "echo hi", Background: true},
			{Tool: "bash", Command: "exit 3"}, {Tool: "view", File: "notes.txt", Parallel: true}}
		s.Prompts[1].Turns = []Turn{{Tool: "create", File: "out.txt", Content: "x\n"}, {Tool: "edit", File: "notes.txt", Old: "a", New: "b"}}
	default:
		s.Prompts[0].Turns = []Turn{{Tool: "exec_command", Command: "echo hi"}, {Tool: "apply_patch", Patch: "*** Begin Patch\n*** Add File: out.txt\n+x\n*** End Patch\n"}}
		s.Prompts[1].Turns = []Turn{{Tool: "exec_command", Command: "false"}}
	}
	return s
}

func post(t *testing.T, url string, body any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// sseData returns the data objects of an SSE stream.
func sseData(t *testing.T, resp *http.Response) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(d), &m); err != nil {
				t.Fatalf("bad SSE data %q: %v", d, err)
			}
			out = append(out, m)
		}
	}
	return out
}

func TestAnthropicMockScript(t *testing.T) {
	m := newMock(testScenario("claude"), "/repo", nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	tools := []any{map[string]any{"name": "Bash"}}
	user := func(text string) map[string]any {
		return map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": text}}}
	}
	result := func(id string, isErr bool) map[string]any {
		return map[string]any{"role": "user", "content": []any{map[string]any{"type": "tool_result", "tool_use_id": id, "is_error": isErr, "content": "out"}}}
	}
	asst := map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "text", "text": "."}}}

	// First request of prompt 0: streamed tool_use Bash with the mock's id.
	resp := post(t, srv.URL+"/v1/messages?beta=true", map[string]any{"stream": true, "tools": tools, "messages": []any{user(promptMarker(0) + " go")}})
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var id, partial, stop string
	for _, d := range sseData(t, resp) {
		if cb, ok := d["content_block"].(map[string]any); ok && cb["type"] == "tool_use" {
			id = cb["id"].(string)
		}
		if dl, ok := d["delta"].(map[string]any); ok {
			if p, ok := dl["partial_json"].(string); ok {
				partial = p
			}
			if s, ok := dl["stop_reason"].(string); ok {
				stop = s
			}
		}
	}
	if id != "toolu_e2e_0_0" || !strings.Contains(partial, `"command":"echo hi"`) || stop != "tool_use" {
		t.Fatalf("first turn: id %q input %q stop %q", id, partial, stop)
	}
	// Non-streaming, after the Bash result: Read with an absolute path.
	resp = post(t, srv.URL+"/v1/messages", map[string]any{"tools": tools, "messages": []any{user(promptMarker(0) + " go"), asst, result("toolu_e2e_0_0", true)}})
	var msg struct {
		Content []map[string]any `json:"content"`
	}
	json.NewDecoder(resp.Body).Decode(&msg)
	if len(msg.Content) != 2 || msg.Content[1]["name"] != "Read" || msg.Content[1]["input"].(map[string]any)["file_path"] != "/repo/notes.txt" {
		t.Fatalf("second turn: %+v", msg.Content)
	}
	// Prompt 1 in the same conversation: its turns count from its own marker.
	resp = post(t, srv.URL+"/v1/messages", map[string]any{"tools": tools, "messages": []any{user(promptMarker(0) + " go"), asst, result("toolu_e2e_0_0", true), asst, result("toolu_e2e_0_1", false), asst, user(promptMarker(1) + " more")}})
	json.NewDecoder(resp.Body).Decode(&msg)
	if msg.Content[1]["id"] != "toolu_e2e_1_0" || msg.Content[1]["name"] != "Edit" {
		t.Fatalf("prompt 1: %+v", msg.Content)
	}
	// No tools (title generation): plain text. Unknown paths: 200 {}.
	resp = post(t, srv.URL+"/v1/messages", map[string]any{"messages": []any{user("title?")}})
	json.NewDecoder(resp.Body).Decode(&msg)
	if msg.Content[0]["type"] != "text" {
		t.Fatalf("no-tools request: %+v", msg.Content)
	}
	if resp := post(t, srv.URL+"/api/eval", map[string]any{}); resp.StatusCode != 200 {
		t.Fatalf("other path: %d", resp.StatusCode)
	}
	calls := m.Calls()
	if len(calls) != 3 || calls[0].ID != "toolu_e2e_0_0" || calls[0].Answered.IsZero() || !calls[0].IsError ||
		calls[1].Answered.IsZero() || calls[1].IsError || calls[1].Files[0] != "/repo/notes.txt" || !calls[2].Answered.IsZero() {
		t.Fatalf("ground truth: %+v", calls)
	}
	if calls[0].Issued.After(calls[0].Answered) {
		t.Fatal("issued after answered")
	}
}

func TestOpenAIMockScript(t *testing.T) {
	m := newMock(testScenario("codex"), "/repo", nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	tools := []any{map[string]any{"type": "function", "name": "exec_command"}, map[string]any{"type": "custom", "name": "apply_patch"}}
	user := func(text string) map[string]any {
		return map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": text}}}
	}
	env := user("<environment_context>cwd</environment_context>")
	item := func(resp *http.Response) map[string]any {
		var it map[string]any
		for _, d := range sseData(t, resp) {
			if d["type"] == "response.output_item.done" {
				it = d["item"].(map[string]any)
			}
		}
		return it
	}
	it := item(post(t, srv.URL+"/v1/responses", map[string]any{"stream": true, "tools": tools, "input": []any{env, user(promptMarker(0) + " go")}}))
	if it["type"] != "function_call" || it["name"] != "exec_command" || it["call_id"] != "call_e2e_0_0" || !strings.Contains(it["arguments"].(string), `"cmd":"echo hi"`) {
		t.Fatalf("turn 0: %+v", it)
	}
	out0 := map[string]any{"type": "function_call_output", "call_id": "call_e2e_0_0", "output": "Process exited with code 0\nOutput:\nhi"}
	it = item(post(t, srv.URL+"/v1/responses", map[string]any{"tools": tools, "input": []any{env, user(promptMarker(0) + " go"), out0}}))
	if it["type"] != "custom_tool_call" || it["name"] != "apply_patch" || it["call_id"] != "call_e2e_0_1" {
		t.Fatalf("turn 1: %+v", it)
	}
	out1 := map[string]any{"type": "custom_tool_call_output", "call_id": "call_e2e_0_1", "output": "Success."}
	it = item(post(t, srv.URL+"/v1/responses", map[string]any{"tools": tools, "input": []any{env, user(promptMarker(0) + " go"), out0, out1}}))
	if it["type"] != "message" {
		t.Fatalf("final: %+v", it)
	}
	// The resumed session: prompt 1's marker, its first turn.
	out2 := map[string]any{"type": "function_call_output", "call_id": "call_e2e_1_0", "output": "Process exited with code 1\nOutput:\n"}
	it = item(post(t, srv.URL+"/v1/responses", map[string]any{"tools": tools, "input": []any{env, user(promptMarker(0) + " go"), out0, out1, user(promptMarker(1) + " more")}}))
	if it["call_id"] != "call_e2e_1_0" {
		t.Fatalf("prompt 1: %+v", it)
	}
	post(t, srv.URL+"/v1/responses", map[string]any{"tools": tools, "input": []any{env, user(promptMarker(0) + " go"), out0, out1, user(promptMarker(1) + " more"), out2}})
	calls := m.Calls()
	if len(calls) != 3 || calls[1].Files[0] != "/repo/out.txt" || calls[0].IsError || !calls[2].IsError || calls[2].Answered.IsZero() {
		t.Fatalf("ground truth: %+v", calls)
	}
}

func TestCodexOutputFailed(t *testing.T) {
	for out, want := range map[string]bool{
		"Process exited with code 0\nOutput:\n":    false,
		"Process exited with code 127\nOutput:\n":  true,
		`{"output":"","metadata":{"exit_code":2}}`: true,
		"Success. Updated the following files":     false,
	} {
		if got := codexOutputFailed(out); got != want {
			t.Errorf("%q: %v, want %v", out, got, want)
		}
	}
}

func TestGeminiMockScript(t *testing.T) {
	m := newMock(testScenario("gemini"), "/repo", nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	url := srv.URL + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
	tools := []any{map[string]any{"functionDeclarations": []any{map[string]any{"name": "run_shell_command"}, map[string]any{"name": "read_file"}}}}
	// The first user content holds Gemini's session context and the prompt as two parts.
	user := map[string]any{"role": "user", "parts": []any{map[string]any{"text": "<session_context>…</session_context>"}, map[string]any{"text": promptMarker(0) + " go"}}}
	model := func(fc ...map[string]any) map[string]any {
		var parts []any
		for _, f := range fc {
			parts = append(parts, map[string]any{"functionCall": f, "thoughtSignature": "skip_thought_signature_validator"})
		}
		return map[string]any{"role": "model", "parts": parts}
	}
	result := func(name, id, output string) map[string]any {
		return map[string]any{"functionResponse": map[string]any{"name": name, "id": id, "response": map[string]any{"output": output}}}
	}
	// calls returns the functionCall parts of the one SSE event of a response.
	calls := func(resp *http.Response) []map[string]any {
		t.Helper()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		data := sseData(t, resp)
		if len(data) != 1 {
			t.Fatalf("want one SSE event, have %d", len(data))
		}
		var out []map[string]any
		for _, p := range data[0]["candidates"].([]any)[0].(map[string]any)["content"].(map[string]any)["parts"].([]any) {
			if fc, ok := p.(map[string]any)["functionCall"].(map[string]any); ok {
				out = append(out, fc)
			}
		}
		return out
	}

	// Turn 0: one run_shell_command, in the background, with the mock's id.
	fc := calls(post(t, url, map[string]any{"contents": []any{user}, "tools": tools}))
	args, _ := fc[0]["args"].(map[string]any)
	if len(fc) != 1 || fc[0]["id"] != "gcall_e2e_0_0" || fc[0]["name"] != "run_shell_command" || args["command"] != "echo hi" || args["is_background"] != true {
		t.Fatalf("turn 0: %+v", fc)
	}
	// Turns 1 and 2 in one response: the parallel batch, a shell and an absolute read_file.
	done0 := map[string]any{"role": "user", "parts": []any{result("run_shell_command", "gcall_e2e_0_0", "Command moved to background (PID: 42).")}}
	hist := []any{user, model(fc[0]), done0}
	fc = calls(post(t, url, map[string]any{"contents": hist, "tools": tools}))
	if len(fc) != 2 || fc[0]["id"] != "gcall_e2e_0_1" || fc[1]["id"] != "gcall_e2e_0_2" || fc[1]["name"] != "read_file" ||
		fc[1]["args"].(map[string]any)["file_path"] != "/repo/notes.txt" {
		t.Fatalf("batch: %+v", fc)
	}
	// Both results in one user content; then the final text, no more calls.
	done12 := map[string]any{"role": "user", "parts": []any{
		result("run_shell_command", "gcall_e2e_0_1", "Exit Code: 3\nProcess Group PGID: 43"), result("read_file", "gcall_e2e_0_2", "hello")}}
	hist = append(hist, model(fc...), done12)
	if fc := calls(post(t, url, map[string]any{"contents": hist, "tools": tools})); len(fc) != 0 {
		t.Fatalf("after the batch: %+v", fc)
	}
	// The resumed session: prompt 1's marker, its first turn, a replace with both strings.
	hist = append(hist, map[string]any{"role": "model", "parts": []any{map[string]any{"text": "one done"}}},
		map[string]any{"role": "user", "parts": []any{map[string]any{"text": promptMarker(1) + " more"}}})
	fc = calls(post(t, url, map[string]any{"contents": hist, "tools": tools}))
	if len(fc) != 1 || fc[0]["id"] != "gcall_e2e_1_0" || fc[0]["name"] != "replace" || fc[0]["args"].(map[string]any)["new_string"] != "b" {
		t.Fatalf("prompt 1: %+v", fc)
	}
	// No tools: a text answer; countTokens and other paths answer too.
	if fc := calls(post(t, url, map[string]any{"contents": []any{user}})); len(fc) != 0 {
		t.Fatalf("no-tools request: %+v", fc)
	}
	if resp := post(t, srv.URL+"/v1beta/models/gemini-2.5-flash:countTokens", map[string]any{}); resp.StatusCode != 200 {
		t.Fatalf("countTokens: %d", resp.StatusCode)
	}

	got := m.Calls()
	ids := callIDs(got)
	want := []string{"run_shell_command__gcall_e2e_0_0", "run_shell_command__gcall_e2e_0_1", "read_file__gcall_e2e_0_2", "replace__gcall_e2e_1_0"}
	if !slices.Equal(ids, want) {
		t.Fatalf("call ids %v, want %v", ids, want)
	}
	if got[0].IsError || !got[1].IsError || got[2].IsError || got[2].Files[0] != "/repo/notes.txt" ||
		got[0].Answered.IsZero() || got[2].Answered.IsZero() || !got[3].Answered.IsZero() || got[3].Turn != 0 || got[3].Prompt != 1 {
		t.Fatalf("ground truth: %+v", got)
	}
}

// Gemini's stream-json names each call <tool name>__<functionCall id>; the harness derives
// the same id by construction and must fail the scenario when the two disagree.
func TestGeminiStreamCheck(t *testing.T) {
	calls := []Call{
		{ID: "run_shell_command__gcall_e2e_0_0", Tool: "run_shell_command", Command: "./.e2e/vmark_0_0_; ls"},
		{ID: "read_file__gcall_e2e_0_1", Tool: "read_file", Turn: 1, Files: []string{"/repo/vmark_0_1_a.txt"}},
	}
	use := func(name, id, param, value string) string {
		b, _ := json.Marshal(map[string]any{"type": "tool_use", "tool_name": name, "tool_id": id, "parameters": map[string]any{param: value}})
		return string(b) + "\n"
	}
	good := `{"type":"init","session_id":"s"}` + "\n" + use("run_shell_command", "run_shell_command__gcall_e2e_0_0", "command", "./.e2e/vmark_0_0_; ls") +
		use("read_file", "read_file__gcall_e2e_0_1", "file_path", "/repo/vmark_0_1_a.txt")
	if errs, _ := checkCallIDs("gemini", calls, []byte(good)); len(errs) != 0 {
		t.Fatalf("agreeing stream: %v", errs)
	}
	if !inStream("gemini", calls[1], []byte(good)) {
		t.Fatal("inStream: read_file not found")
	}
	bad := use("run_shell_command", "run_shell_command__gcall_e2e_0_0", "command", "./.e2e/vmark_0_0_; ls") +
		use("read_file", "read_file_1796355921294_0", "file_path", "/repo/vmark_0_1_a.txt") + use("glob", "glob__x", "pattern", "*")
	errs, _ := checkCallIDs("gemini", calls, []byte(bad))
	if len(errs) != 3 || !strings.Contains(errs[0], "prompt 0 turn 1 is read_file__gcall_e2e_0_1 by construction, read_file_1796355921294_0") ||
		!strings.Contains(errs[1], "glob__x") || !strings.Contains(errs[2], "not in Gemini's stream-json") {
		t.Fatalf("disagreeing stream: %q", errs)
	}
}

func TestCopilotMockScript(t *testing.T) {
	m := newMock(testScenario("copilot"), "/repo", nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	url := srv.URL + "/v1/chat/completions"
	// The tools as Copilot CLI sends them (17 offline; four matter here).
	var tools []any
	for _, n := range []string{"bash", "read_bash", "view", "create", "edit"} {
		tools = append(tools, map[string]any{"type": "function", "function": map[string]any{"name": n}})
	}
	system := map[string]any{"role": "system", "content": "You are the GitHub Copilot CLI"}
	user := func(i int) map[string]any {
		return map[string]any{"role": "user", "content": "<current_datetime>2026-12-05T06:27:25.642+00:00</current_datetime>\n\n" + promptMarker(i) + " go"}
	}
	asst := func(ids ...string) map[string]any {
		var tcs []any
		for _, id := range ids {
			tcs = append(tcs, map[string]any{"id": id, "type": "function", "function": map[string]any{"name": "bash", "arguments": "{}"}})
		}
		return map[string]any{"role": "assistant", "content": nil, "tool_calls": tcs}
	}
	result := func(id, content string) map[string]any {
		return map[string]any{"role": "tool", "tool_call_id": id, "content": content}
	}
	type toolCall struct {
		Index    int    `json:"index"`
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	// reply reads a streamed answer: the tool calls of its first chunk, the finish reason,
	// whether a usage chunk and [DONE] came.
	reply := func(msgs ...any) (calls []toolCall, args []map[string]any, text, finish string) {
		t.Helper()
		resp := post(t, url, map[string]any{"model": "gpt-4.1", "stream": true, "stream_options": map[string]any{"include_usage": true}, "tools": tools, "messages": msgs})
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		usage, done := false, false
		for sc.Scan() {
			d, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if d == "[DONE]" {
				done = true
				continue
			}
			var ch struct {
				Object  string `json:"object"`
				Choices []struct {
					Delta struct {
						Content   *string    `json:"content"`
						ToolCalls []toolCall `json:"tool_calls"`
					} `json:"delta"`
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
				Usage map[string]any `json:"usage"`
			}
			if err := json.Unmarshal([]byte(d), &ch); err != nil || ch.Object != "chat.completion.chunk" {
				t.Fatalf("bad chunk %q: %v", d, err)
			}
			usage = usage || ch.Usage != nil
			for _, c := range ch.Choices {
				calls = append(calls, c.Delta.ToolCalls...)
				if c.Delta.Content != nil {
					text += *c.Delta.Content
				}
				if c.FinishReason != nil {
					finish = *c.FinishReason
				}
			}
		}
		if !usage || !done {
			t.Fatalf("usage chunk %v, [DONE] %v", usage, done)
		}
		for _, c := range calls {
			var a map[string]any
			if err := json.Unmarshal([]byte(c.Function.Arguments), &a); err != nil {
				t.Fatalf("arguments %q: %v", c.Function.Arguments, err)
			}
			args = append(args, a)
		}
		return
	}

	// Turn 0: an async bash with the mock's id.
	calls, args, _, finish := reply(system, user(0))
	if len(calls) != 1 || calls[0].ID != "call_copilot_e2e_0_0" || calls[0].Type != "function" || calls[0].Function.Name != "bash" ||
		args[0]["command"] != "echo hi" || args[0]["mode"] != "async" || finish != "tool_calls" {
		t.Fatalf("turn 0: %+v %v %q", calls, args, finish)
	}
	// Turns 1 and 2 in one chunk: the parallel batch, a bash and a view of an absolute path.
	hist := []any{system, user(0), asst("call_copilot_e2e_0_0"), result("call_copilot_e2e_0_0", "<command started in background with shellId: 0>")}
	calls, args, _, _ = reply(hist...)
	if len(calls) != 2 || calls[0].ID != "call_copilot_e2e_0_1" || calls[1].ID != "call_copilot_e2e_0_2" || calls[1].Index != 1 ||
		calls[1].Function.Name != "view" || args[1]["path"] != "/repo/notes.txt" {
		t.Fatalf("batch: %+v %v", calls, args)
	}
	// Copilot's own read_bash (a UUID id) between them is no scripted turn; after both
	// results, the final text.
	hist = append(hist, asst("55eb2805-1111-4222-8333-444455556666"), result("55eb2805-1111-4222-8333-444455556666", "hi"),
		asst("call_copilot_e2e_0_1", "call_copilot_e2e_0_2"), result("call_copilot_e2e_0_1", "<shellId: 1 completed with exit code 3>"),
		result("call_copilot_e2e_0_2", "hello"))
	calls, _, text, finish := reply(hist...)
	if len(calls) != 0 || text != "one done" || finish != "stop" {
		t.Fatalf("final: %+v %q %q", calls, text, finish)
	}
	// The resumed session: prompt 1's marker, its turns: create, then edit.
	hist = append(hist, map[string]any{"role": "assistant", "content": "one done"}, user(1))
	calls, args, _, _ = reply(hist...)
	if len(calls) != 1 || calls[0].ID != "call_copilot_e2e_1_0" || calls[0].Function.Name != "create" ||
		args[0]["path"] != "/repo/out.txt" || args[0]["file_text"] != "x\n" {
		t.Fatalf("prompt 1: %+v %v", calls, args)
	}
	hist = append(hist, asst("call_copilot_e2e_1_0"), result("call_copilot_e2e_1_0", "Created file /repo/out.txt with 2 characters"))
	calls, args, _, _ = reply(hist...)
	if len(calls) != 1 || calls[0].ID != "call_copilot_e2e_1_1" || args[0]["old_str"] != "a" || args[0]["new_str"] != "b" || args[0]["path"] != "/repo/notes.txt" {
		t.Fatalf("prompt 1 edit: %+v %v", calls, args)
	}
	// Without streaming: one JSON completion with the same tool calls.
	resp := post(t, url, map[string]any{"tools": tools, "messages": []any{system, user(0)}})
	var cc struct {
		Choices []struct {
			Message struct {
				ToolCalls []toolCall `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cc); err != nil || len(cc.Choices) != 1 || len(cc.Choices[0].Message.ToolCalls) != 1 ||
		cc.Choices[0].Message.ToolCalls[0].ID != "call_copilot_e2e_0_0" || cc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("JSON completion: %+v %v", cc, err)
	}
	// No tools: a text answer; the model list and other paths answer too.
	resp = post(t, url, map[string]any{"messages": []any{system, user(0)}})
	var plain struct {
		Choices []struct {
			Message struct {
				Content   string     `json:"content"`
				ToolCalls []toolCall `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&plain); err != nil || len(plain.Choices) != 1 || plain.Choices[0].Message.Content == "" ||
		len(plain.Choices[0].Message.ToolCalls) != 0 {
		t.Fatalf("no-tools request: %+v %v", plain, err)
	}
	if resp := post(t, srv.URL+"/v1/models", map[string]any{}); resp.StatusCode != 200 {
		t.Fatalf("models: %d", resp.StatusCode)
	}

	got := m.Calls()
	ids := callIDs(got)
	want := []string{"call_copilot_e2e_0_0", "call_copilot_e2e_0_1", "call_copilot_e2e_0_2", "call_copilot_e2e_1_0", "call_copilot_e2e_1_1"}
	if !slices.Equal(ids, want) {
		t.Fatalf("call ids %v, want %v", ids, want)
	}
	if got[0].IsError || !got[1].IsError || got[2].IsError || got[2].Files[0] != "/repo/notes.txt" || got[3].Files[0] != "/repo/out.txt" ||
		got[0].Answered.IsZero() || got[3].Answered.IsZero() || !got[4].Answered.IsZero() || got[3].Turn != 0 || got[3].Prompt != 1 {
		t.Fatalf("ground truth: %+v", got)
	}
}

// Copilot CLI uses the mock's tool call id as its toolCallId; the harness must fail the
// scenario when the two disagree, and only note the CLI's own read_bash.
func TestCopilotStreamCheck(t *testing.T) {
	calls := []Call{
		{ID: "call_copilot_e2e_0_0", Tool: "bash", Command: "./.e2e/vmark_0_0_; ls"},
		{ID: "call_copilot_e2e_0_1", Tool: "view", Turn: 1, Files: []string{"/repo/vmark_0_1_a.txt"}},
	}
	start := func(name, id, param, value string) string {
		b, _ := json.Marshal(map[string]any{"type": "tool.execution_start", "data": map[string]any{"toolCallId": id, "toolName": name,
			"arguments": map[string]any{param: value}, "turnId": "0"}})
		return string(b) + "\n"
	}
	good := `{"type":"user.message","data":{"content":"x"}}` + "\n" + start("bash", "call_copilot_e2e_0_0", "command", "./.e2e/vmark_0_0_; ls") +
		start("view", "call_copilot_e2e_0_1", "path", "/repo/vmark_0_1_a.txt") + start("read_bash", "55eb2805-1111-4222-8333-444455556666", "shellId", "0") +
		`{"type":"result","sessionId":"s","exitCode":0}` + "\n"
	errs, notes := checkCallIDs("copilot", calls, []byte(good))
	if len(errs) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "read_bash 55eb2805") {
		t.Fatalf("agreeing stream: %v %v", errs, notes)
	}
	if !inStream("copilot", calls[1], []byte(good)) || inStream("copilot", Call{ID: "call_copilot_e2e_9_9"}, []byte(good)) {
		t.Fatal("inStream")
	}
	bad := start("bash", "call_copilot_e2e_0_0", "command", "./.e2e/vmark_0_0_; ls") +
		start("view", "toolu_vrtx_01", "path", "/repo/vmark_0_1_a.txt") + start("glob", "call_x", "pattern", "*")
	errs, _ = checkCallIDs("copilot", calls, []byte(bad))
	if len(errs) != 3 || !strings.Contains(errs[0], "prompt 0 turn 1 is call_copilot_e2e_0_1 by construction, toolu_vrtx_01") ||
		!strings.Contains(errs[1], "glob call_x") || !strings.Contains(errs[2], "not in Copilot's tool.execution_start") {
		t.Fatalf("disagreeing stream: %q", errs)
	}
}
