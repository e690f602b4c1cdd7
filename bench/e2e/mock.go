package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Call is the ground truth of one tool call: the mock chose its id and what it runs, and
// saw when it handed the call to the agent and when the agent sent its result back.
type Call struct {
	ID       string    `json:"id"`
	Tool     string    `json:"tool"`
	Prompt   int       `json:"prompt"`
	Turn     int       `json:"turn"`
	Command  string    `json:"command,omitempty"`
	Files    []string  `json:"files,omitempty"` // absolute
	Issued   time.Time `json:"issued"`          // last time the mock sent the call
	Answered time.Time `json:"answered"`        // first request carrying its result
	IsError  bool      `json:"is_error,omitempty"`
	Output   string    `json:"output,omitempty"` // the result the agent sent back (shortened)
	// RanFrom and RanTo are when the agent itself says it ran the call, where its output says
	// so (opencode: the tool part's state.time, ms); zero otherwise. Set at analysis.
	RanFrom time.Time `json:"ran_from,omitempty"`
	RanTo   time.Time `json:"ran_to,omitempty"`
}

// Mock is a scripted LLM API for one scenario: the Anthropic Messages API (Claude), the
// OpenAI Responses API (Codex), the Gemini API (Gemini CLI) or the OpenAI Chat Completions
// API (Copilot CLI's BYOK provider, opencode's custom provider; mock_chat.go). Anything else
// gets 200 {}.
type Mock struct {
	sc      Scenario
	prompts []Prompt // the user prompts, then the subagent scripts (Scenario.allPrompts)
	repo    string
	// chatDialect is how the scenario's agent speaks Chat Completions; zero for the agents
	// that do not, whose …/chat/completions gets 200 {} like any other path.
	chatDialect chatDialect

	mu       sync.Mutex
	calls    map[string]*Call
	order    []string
	requests int
	log      io.Writer // one JSON line per request (path, step, reply), may be nil
}

func newMock(sc Scenario, repo string, log io.Writer) *Mock {
	return &Mock{sc: sc, prompts: sc.allPrompts(), repo: repo, chatDialect: chatDialects[sc.Agent], calls: map[string]*Call{}, log: log}
}

// Calls returns the ground truth in the order the calls were first issued.
func (m *Mock) Calls() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Call, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, *m.calls[id])
	}
	return out
}

func (m *Mock) abs(f string) string {
	if filepath.IsAbs(f) {
		return f
	}
	return filepath.Join(m.repo, f)
}

func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	m.mu.Lock()
	m.requests++
	m.mu.Unlock()
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == "/v1/messages/count_tokens":
		writeJSON(w, map[string]any{"input_tokens": 123})
	case r.Method == http.MethodPost && p == "/v1/messages":
		time.Sleep(m.sc.latency())
		m.anthropic(w, body, now)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/chat/completions") && m.chatDialect.args != nil:
		time.Sleep(m.sc.latency())
		m.chat(w, body, now)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/responses"):
		time.Sleep(m.sc.latency())
		m.openai(w, body, now)
	case r.Method == http.MethodPost && strings.HasSuffix(p, ":countTokens"):
		writeJSON(w, map[string]any{"totalTokens": 123})
	case r.Method == http.MethodPost && strings.HasSuffix(p, ":streamGenerateContent"):
		time.Sleep(m.sc.latency())
		m.gemini(w, body, now, true)
	case r.Method == http.MethodPost && strings.HasSuffix(p, ":generateContent"):
		time.Sleep(m.sc.latency())
		m.gemini(w, body, now, false)
	case strings.HasSuffix(p, "/models"):
		writeJSON(w, map[string]any{"object": "list", "data": []any{}, "models": []any{}})
	default:
		writeJSON(w, map[string]any{})
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", fmt.Sprintf("req_e2e_%d", time.Now().UnixNano()))
	w.Write(b)
}

func (m *Mock) logf(entry map[string]any) {
	if m.log == nil {
		return
	}
	b, _ := json.Marshal(entry)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log.Write(append(b, '\n'))
}

// answered records that a request carried the result of call id.
func (m *Mock) answered(id string, at time.Time, isError bool, output string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.calls[id]
	if !ok || !c.Answered.IsZero() {
		return
	}
	c.Answered, c.IsError = at, isError
	if len(output) > 400 {
		output = output[:400] + "…"
	}
	c.Output = output
}

// issue records that call id (prompt p, turn t) is being sent now.
func (m *Mock) issue(id string, p, t int, tr Turn, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.calls[id]
	if !ok {
		c = &Call{ID: id, Tool: tr.Tool, Prompt: p, Turn: t, Command: tr.Command}
		switch tr.Tool {
		case "Read", "Write", "Edit", "read_file", "write_file", "replace", "view", "create", "edit", "read", "write":
			c.Files = []string{m.abs(tr.File)}
		case "apply_patch":
			for _, f := range patchFiles(tr.Patch) {
				c.Files = append(c.Files, m.abs(f))
			}
		}
		m.calls[id] = c
		m.order = append(m.order, id)
	}
	if c.Answered.IsZero() {
		c.Issued = at
	}
}

// step finds the scripted position of a conversation: the last prompt whose marker appears
// in a user message, and how many tool results follow it. ok is false when no marker is found.
func (m *Mock) step(userTexts []string, resultsAfter []int) (prompt, turn int, ok bool) {
	prompt, idx := -1, -1
	for i, t := range userTexts {
		for p := range m.prompts {
			if strings.Contains(t, promptMarker(p)) {
				prompt, idx = p, i
			}
		}
	}
	if prompt < 0 {
		return 0, 0, false
	}
	return prompt, resultsAfter[idx], true
}

// ---------------------------------------------------------------- Anthropic Messages API

func claudeCallID(p, t int) string { return fmt.Sprintf("toolu_e2e_%d_%d", p, t) }

func (m *Mock) anthropic(w http.ResponseWriter, raw []byte, now time.Time) {
	var body struct {
		Model    string            `json:"model"`
		Stream   bool              `json:"stream"`
		Tools    []json.RawMessage `json:"tools"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	// Per user message: its text, and the tool results in it and every later message.
	var texts []string
	var results []int
	for _, msg := range body.Messages {
		if msg.Role != "user" {
			continue
		}
		text, n := "", 0
		var s string
		if json.Unmarshal(msg.Content, &s) == nil {
			text = s
		} else {
			var blocks []struct {
				Type      string          `json:"type"`
				Text      string          `json:"text"`
				ToolUseID string          `json:"tool_use_id"`
				IsError   bool            `json:"is_error"`
				Content   json.RawMessage `json:"content"`
			}
			json.Unmarshal(msg.Content, &blocks)
			for _, b := range blocks {
				switch b.Type {
				case "text":
					text += b.Text + "\n"
				case "tool_result":
					n++
					m.answered(b.ToolUseID, now, b.IsError, string(b.Content))
				}
			}
		}
		for i := range results {
			results[i] += n
		}
		texts = append(texts, text)
		results = append(results, 0)
	}
	var toolNames []string
	for _, t := range body.Tools {
		var tool struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(t, &tool) == nil {
			toolNames = append(toolNames, tool.Name)
		}
	}
	var blocks []map[string]any
	stop := "end_turn"
	p, t, ok := m.step(texts, results)
	switch {
	case len(body.Tools) == 0:
		blocks = []map[string]any{{"type": "text", "text": "E2E mock title"}}
	case !ok:
		blocks = []map[string]any{{"type": "text", "text": "No scripted prompt found."}}
	case t < len(m.prompts[p].Turns):
		blocks = []map[string]any{{"type": "text", "text": fmt.Sprintf("Prompt %d step %d.", p, t)}}
		for _, k := range m.batch(p, t) {
			tr := m.prompts[p].Turns[k]
			id := claudeCallID(p, k)
			var input map[string]any
			switch tr.Tool {
			case "Bash":
				input = map[string]any{"command": tr.Command, "description": "e2e scripted command"}
			case "Read":
				input = map[string]any{"file_path": m.abs(tr.File)}
			case "Write":
				input = map[string]any{"file_path": m.abs(tr.File), "content": tr.Content}
			case "Edit":
				input = map[string]any{"file_path": m.abs(tr.File), "old_string": tr.Old, "new_string": tr.New, "replace_all": false}
			}
			name := tr.Tool
			if tr.Subagent != nil {
				// Claude Code names its subagent tool Task or, in later versions, Agent.
				name = "Task"
				if slices.Contains(toolNames, "Agent") {
					name = "Agent"
				}
				sub := len(m.sc.Prompts) + *tr.Subagent
				input = map[string]any{"description": "e2e subagent", "subagent_type": "general-purpose", "prompt": m.sc.promptText(sub)}
			}
			blocks = append(blocks, map[string]any{"type": "tool_use", "id": id, "name": name, "input": input})
			m.issue(id, p, k, tr, time.Now())
		}
		stop = "tool_use"
	default:
		final := m.prompts[p].Final
		if final == "" {
			final = fmt.Sprintf("Prompt %d done.", p)
		}
		blocks = []map[string]any{{"type": "text", "text": final}}
	}
	m.logf(map[string]any{"ts": now, "api": "anthropic", "prompt": p, "turn": t, "found": ok, "tools": len(body.Tools), "stop": stop, "blocks": blocks})
	model := body.Model
	if model == "" {
		model = "claude-e2e"
	}
	msgID := fmt.Sprintf("msg_e2e_%d", now.UnixNano())
	usage := map[string]any{"input_tokens": 120, "output_tokens": 30, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
	if !body.Stream {
		writeJSON(w, map[string]any{"id": msgID, "type": "message", "role": "assistant", "model": model,
			"content": blocks, "stop_reason": stop, "stop_sequence": nil, "usage": usage})
		return
	}
	var ev [][2]any
	startUsage := map[string]any{"input_tokens": 120, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
	ev = append(ev, [2]any{"message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": msgID, "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": startUsage}}})
	for i, b := range blocks {
		if b["type"] == "text" {
			ev = append(ev,
				[2]any{"content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "text", "text": ""}}},
				[2]any{"content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "text_delta", "text": b["text"]}}})
		} else {
			in, _ := json.Marshal(b["input"])
			ev = append(ev,
				[2]any{"content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "tool_use", "id": b["id"], "name": b["name"], "input": map[string]any{}}}},
				[2]any{"content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "input_json_delta", "partial_json": string(in)}}})
		}
		ev = append(ev, [2]any{"content_block_stop", map[string]any{"type": "content_block_stop", "index": i}})
	}
	ev = append(ev,
		[2]any{"message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 30}}},
		[2]any{"message_stop", map[string]any{"type": "message_stop"}})
	writeSSE(w, ev)
}

func writeSSE(w http.ResponseWriter, ev [][2]any) {
	var sb strings.Builder
	for _, e := range ev {
		d, _ := json.Marshal(e[1])
		fmt.Fprintf(&sb, "event: %s\ndata: %s\n\n", e[0], d)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("request-id", fmt.Sprintf("req_e2e_%d", time.Now().UnixNano()))
	io.WriteString(w, sb.String())
}

// ---------------------------------------------------------------- OpenAI Responses API

func codexCallID(p, t int) string { return fmt.Sprintf("call_e2e_%d_%d", p, t) }

func (m *Mock) openai(w http.ResponseWriter, raw []byte, now time.Time) {
	var body struct {
		Model string `json:"model"`
		Tools []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"tools"`
		Input []json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	tools := map[string]string{}
	for _, t := range body.Tools {
		tools[t.Name] = t.Type
	}
	var texts []string
	var results []int
	for _, it := range body.Input {
		var item struct {
			Type    string          `json:"type"`
			Role    string          `json:"role"`
			CallID  string          `json:"call_id"`
			Output  json.RawMessage `json:"output"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		json.Unmarshal(it, &item)
		switch {
		case item.Type == "message" && item.Role == "user":
			text := ""
			for _, c := range item.Content {
				text += c.Text + "\n"
			}
			texts = append(texts, text)
			results = append(results, 0)
		case item.Type == "function_call_output" || item.Type == "custom_tool_call_output":
			out := string(item.Output)
			var s string
			if json.Unmarshal(item.Output, &s) == nil {
				out = s
			}
			m.answered(item.CallID, now, codexOutputFailed(out), out)
			for i := range results {
				results[i]++
			}
		}
	}
	var items []map[string]any
	n := now.UnixNano()
	p, t, ok := m.step(texts, results)
	switch {
	case len(body.Tools) == 0 || !ok || t >= len(m.prompts[p].Turns):
		final := "Done (e2e mock codex)."
		if ok && m.prompts[p].Final != "" {
			final = m.prompts[p].Final
		}
		items = []map[string]any{{"type": "message", "id": fmt.Sprintf("msg_%d", n), "role": "assistant", "status": "completed",
			"content": []any{map[string]any{"type": "output_text", "text": final, "annotations": []any{}}}}}
	default:
		for j, k := range m.batch(p, t) {
			items = append(items, m.codexItem(p, k, tools, fmt.Sprintf("%d_%d", n, j)))
		}
	}
	m.logf(map[string]any{"ts": now, "api": "openai", "prompt": p, "turn": t, "found": ok, "tools": len(body.Tools), "items": items})
	rid := fmt.Sprintf("resp_e2e_%d", n)
	resp := func(status string, out []map[string]any) map[string]any {
		if out == nil {
			out = []map[string]any{}
		}
		return map[string]any{"id": rid, "object": "response", "created_at": now.Unix(), "status": status,
			"model": body.Model, "output": out,
			"usage": map[string]any{"input_tokens": 100, "input_tokens_details": map[string]any{"cached_tokens": 0},
				"output_tokens": 20, "output_tokens_details": map[string]any{"reasoning_tokens": 0}, "total_tokens": 120}}
	}
	ev := [][2]any{{"response.created", map[string]any{"type": "response.created", "response": resp("in_progress", nil)}}}
	for i, it := range items {
		ev = append(ev, [2]any{"response.output_item.added", map[string]any{"type": "response.output_item.added", "output_index": i, "item": it}})
		if it["type"] == "message" {
			text := it["content"].([]any)[0].(map[string]any)["text"]
			ev = append(ev, [2]any{"response.output_text.delta", map[string]any{"type": "response.output_text.delta", "item_id": it["id"], "output_index": i, "content_index": 0, "delta": text}})
		}
		ev = append(ev, [2]any{"response.output_item.done", map[string]any{"type": "response.output_item.done", "output_index": i, "item": it}})
	}
	ev = append(ev, [2]any{"response.completed", map[string]any{"type": "response.completed", "response": resp("completed", items)}})
	writeSSE(w, ev)
}

// codexItem is the output item that makes Codex run turn k of prompt p, in the form the
// request's tool list asks for (exec_command, shell_command or shell; apply_patch as a
// custom or a function tool). suffix makes the item ids unique.
func (m *Mock) codexItem(p, k int, tools map[string]string, suffix string) map[string]any {
	tr := m.prompts[p].Turns[k]
	id := codexCallID(p, k)
	var item map[string]any
	switch tr.Tool {
	case "exec_command":
		var args []byte
		switch {
		case tools["exec_command"] != "":
			args, _ = json.Marshal(map[string]any{"cmd": tr.Command, "yield_time_ms": 10000})
			item = map[string]any{"type": "function_call", "id": "fc_" + suffix, "call_id": id, "name": "exec_command", "arguments": string(args), "status": "completed"}
		case tools["shell_command"] != "":
			args, _ = json.Marshal(map[string]any{"command": tr.Command, "timeout_ms": 10000})
			item = map[string]any{"type": "function_call", "id": "fc_" + suffix, "call_id": id, "name": "shell_command", "arguments": string(args), "status": "completed"}
		default:
			args, _ = json.Marshal(map[string]any{"command": []string{"bash", "-lc", tr.Command}, "timeout_ms": 10000})
			item = map[string]any{"type": "function_call", "id": "fc_" + suffix, "call_id": id, "name": "shell", "arguments": string(args), "status": "completed"}
		}
	case "apply_patch":
		if tools["apply_patch"] == "custom" {
			item = map[string]any{"type": "custom_tool_call", "id": "ctc_" + suffix, "call_id": id, "name": "apply_patch", "input": tr.Patch, "status": "completed"}
		} else {
			args, _ := json.Marshal(map[string]any{"input": tr.Patch})
			item = map[string]any{"type": "function_call", "id": "fc_" + suffix, "call_id": id, "name": "apply_patch", "arguments": string(args), "status": "completed"}
		}
	}
	m.issue(id, p, k, tr, time.Now())
	return item
}

// ---------------------------------------------------------------- Gemini API (v1beta)

// geminiFunctionCallID is the functionCall id the mock gives turn t of prompt p.
func geminiFunctionCallID(p, t int) string { return fmt.Sprintf("gcall_e2e_%d_%d", p, t) }

// geminiCallID is Gemini CLI's id of a call the mock handed out: `<tool name>__<functionCall
// id>` (its tool_call span's gen_ai.tool.call_id, stream-json's tool_id). The API history
// carries the bare functionCall id with the tool's name beside it.
func geminiCallID(tool, functionCallID string) string { return tool + "__" + functionCallID }

// geminiExitCode finds the exit code Gemini CLI appends to a failed shell call's output
// ("Exit Code: 3"; only when it is not 0).
var geminiExitCode = regexp.MustCompile(`(?m)^Exit Code: `)

// gemini answers POST /v1beta/models/<model>:streamGenerateContent?alt=sse (one SSE event
// holding the whole GenerateContentResponse, as Gemini CLI reads it) or :generateContent
// (the same as JSON): the scripted turn's functionCall parts, the final text after the last.
func (m *Mock) gemini(w http.ResponseWriter, raw []byte, now time.Time, stream bool) {
	var body struct {
		Contents []struct {
			Role  string `json:"role"`
			Parts []struct {
				Text             string `json:"text"`
				FunctionResponse *struct {
					Name     string `json:"name"`
					ID       string `json:"id"`
					Response struct {
						Output string          `json:"output"`
						Error  json.RawMessage `json:"error"`
					} `json:"response"`
				} `json:"functionResponse"`
			} `json:"parts"`
		} `json:"contents"`
		Tools []struct {
			FunctionDeclarations []json.RawMessage `json:"functionDeclarations"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	tools := 0
	for _, t := range body.Tools {
		tools += len(t.FunctionDeclarations)
	}
	// Per user content: its text, and the function responses in it and every later one.
	var texts []string
	var results []int
	for _, c := range body.Contents {
		if c.Role != "user" {
			continue
		}
		text, n := "", 0
		for _, part := range c.Parts {
			text += part.Text
			if fr := part.FunctionResponse; fr != nil {
				n++
				out := fr.Response.Output
				isErr := len(fr.Response.Error) > 0 || geminiExitCode.MatchString(out)
				if isErr && out == "" {
					out = string(fr.Response.Error)
				}
				m.answered(geminiCallID(fr.Name, fr.ID), now, isErr, out)
			}
		}
		for i := range results {
			results[i] += n
		}
		texts = append(texts, text)
		results = append(results, 0)
	}
	var parts []map[string]any
	p, t, ok := m.step(texts, results)
	switch {
	case tools == 0:
		parts = []map[string]any{{"text": "E2E mock summary."}}
	case !ok:
		parts = []map[string]any{{"text": "No scripted prompt found."}}
	case t < len(m.prompts[p].Turns):
		for _, k := range m.batch(p, t) {
			tr := m.prompts[p].Turns[k]
			var args map[string]any
			switch tr.Tool {
			case "run_shell_command":
				args = map[string]any{"command": tr.Command, "description": "e2e scripted command"}
				if tr.Background {
					args["is_background"] = true
				}
			case "read_file":
				args = map[string]any{"file_path": m.abs(tr.File)}
			case "write_file":
				args = map[string]any{"file_path": m.abs(tr.File), "content": tr.Content}
			case "replace":
				args = map[string]any{"file_path": m.abs(tr.File), "instruction": "e2e scripted edit", "old_string": tr.Old, "new_string": tr.New}
			}
			fid := geminiFunctionCallID(p, k)
			parts = append(parts, map[string]any{"functionCall": map[string]any{"name": tr.Tool, "args": args, "id": fid}})
			m.issue(geminiCallID(tr.Tool, fid), p, k, tr, time.Now())
		}
	default:
		final := m.prompts[p].Final
		if final == "" {
			final = fmt.Sprintf("Prompt %d done.", p)
		}
		parts = []map[string]any{{"text": final}}
	}
	m.logf(map[string]any{"ts": now, "api": "gemini", "prompt": p, "turn": t, "found": ok, "tools": tools, "contents": len(body.Contents), "parts": parts})
	resp := map[string]any{
		"candidates":    []any{map[string]any{"content": map[string]any{"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}},
		"usageMetadata": map[string]any{"promptTokenCount": 120, "candidatesTokenCount": 30, "totalTokenCount": 150},
		"modelVersion":  "gemini-e2e",
		"responseId":    fmt.Sprintf("resp_e2e_%d", now.UnixNano()),
	}
	if !stream {
		writeJSON(w, resp)
		return
	}
	d, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fmt.Fprintf(w, "data: %s\r\n\r\n", d)
}

// batch lists the turns the model answers with at step t of prompt p: turn t and the turns
// after it marked parallel (several tool calls in one model response).
func (m *Mock) batch(p, t int) []int {
	turns := m.prompts[p].Turns
	out := []int{t}
	for k := t + 1; k < len(turns) && turns[k].Parallel; k++ {
		out = append(out, k)
	}
	return out
}

// codexOutputFailed reads the exit code codex reports in a tool output ("Process exited with
// code 1" in exec_command's text, or {"metadata":{"exit_code":1}} in the older JSON form).
func codexOutputFailed(out string) bool {
	if i := strings.Index(out, "exited with code "); i >= 0 {
		rest := out[i+len("exited with code "):]
		return !strings.HasPrefix(rest, "0")
	}
	var obj struct {
		Metadata struct {
			ExitCode *int `json:"exit_code"`
		} `json:"metadata"`
	}
	if json.Unmarshal([]byte(out), &obj) == nil && obj.Metadata.ExitCode != nil {
		return *obj.Metadata.ExitCode != 0
	}
	return false
}

// writeCalls saves the ground truth as JSON.
func writeCalls(path string, calls []Call) error {
	b, err := json.MarshalIndent(calls, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
