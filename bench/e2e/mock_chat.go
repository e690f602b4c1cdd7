package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// ---------------------------------------------------------------- OpenAI Chat Completions
//
// Two agents speak the OpenAI Chat Completions API to the mock: Copilot CLI's BYOK provider
// (COPILOT_PROVIDER_BASE_URL, wire API "completions") and opencode's custom provider ("npm":
// "@ai-sdk/openai-compatible", options.baseURL). Both POST …/chat/completions, stream true,
// one request per model turn, and both keep the mock's tool call ids verbatim (Copilot: its
// toolCallId and execute_tool span's gen_ai.tool.call.id; opencode: part.callID, the
// Tool.execute span's tool.call_id and the ai.toolCall span's ai.toolCall.id). One handler
// (Mock.chat) serves both; a chatDialect holds what differs between them.

// chatShape is how a Chat Completions reply is laid out. Both layouts are valid Chat
// Completions; each agent keeps the one it was first verified with, so that serving both
// from one handler changed nothing either agent sees.
type chatShape int

const (
	// chatOneDelta streams the whole assistant delta (role, then the text or the tool_calls)
	// in one chunk; a JSON reply's tool_calls have no index (Copilot).
	chatOneDelta chatShape = iota
	// chatSplitDeltas streams the role, the text and the tool_calls in chunks of their own; a
	// JSON reply's tool_calls keep their index (opencode).
	chatSplitDeltas
)

// chatDialect is one agent's use of the Chat Completions API: everything the mock does
// differently for it.
type chatDialect struct {
	addr         string // where the agent's provider points (the mock listens there)
	callIDPrefix string // a call's id is <prefix><prompt>_<turn>
	model        string // the model a reply names when the request names none
	shape        chatShape
	// args translates a scripted turn into the arguments of the agent's tool of that name.
	args func(m *Mock, tr Turn) map[string]any
	// failed says whether a tool result reports a failed call (the agent's wording).
	failed func(output string) bool
	// ownCallsOnly counts only results of the mock's own calls as turns done: Copilot
	// injects calls of its own (a read_bash with a client UUID after an async shell ends),
	// whose results belong to no scripted turn.
	ownCallsOnly bool
}

// callID is the tool call id the mock gives turn t of prompt p.
func (d chatDialect) callID(p, t int) string { return fmt.Sprintf("%s%d_%d", d.callIDPrefix, p, t) }

// ownCall says whether id is one the mock handed out (callID's form).
func (d chatDialect) ownCall(id string) bool {
	rest, ok := strings.CutPrefix(id, d.callIDPrefix)
	return ok && chatCallSuffix.MatchString(rest)
}

var chatCallSuffix = regexp.MustCompile(`^\d+_\d+$`)

// chatDialects are the agents that speak Chat Completions to the mock, by Scenario.Agent.
var chatDialects = map[string]chatDialect{
	"copilot": {
		addr: copilotAddr, callIDPrefix: "call_copilot_e2e_", model: "gpt-4.1", shape: chatOneDelta,
		args: copilotArgs, failed: copilotExitCode.MatchString, ownCallsOnly: true,
	},
	"opencode": {
		addr: opencodeAddr, callIDPrefix: "call_opencode_e2e_", model: "e2e-model", shape: chatSplitDeltas,
		args: opencodeArgs, failed: opencodeOutputFailed,
	},
}

// copilotArgs are the arguments of Copilot CLI's bash (is_background: mode "async"), view,
// create and edit.
func copilotArgs(m *Mock, tr Turn) map[string]any {
	switch tr.Tool {
	case "bash":
		args := map[string]any{"command": tr.Command, "description": "e2e scripted command"}
		if tr.Background {
			args["mode"] = "async"
		}
		return args
	case "view":
		return map[string]any{"path": m.abs(tr.File)}
	case "create":
		return map[string]any{"path": m.abs(tr.File), "file_text": tr.Content}
	case "edit":
		return map[string]any{"path": m.abs(tr.File), "old_str": tr.Old, "new_str": tr.New}
	}
	return nil
}

// copilotExitCode finds a failed shell in a bash result ("<shellId: 0 completed with exit
// code 3>").
var copilotExitCode = regexp.MustCompile(`completed with exit code [1-9]`)

// opencodeArgs are the arguments of opencode's bash, read, write and edit.
func opencodeArgs(m *Mock, tr Turn) map[string]any {
	switch tr.Tool {
	case "bash":
		return map[string]any{"command": tr.Command, "description": "e2e scripted command"}
	case "read":
		return map[string]any{"filePath": m.abs(tr.File)}
	case "write":
		return map[string]any{"filePath": m.abs(tr.File), "content": tr.Content}
	case "edit":
		return map[string]any{"filePath": m.abs(tr.File), "oldString": tr.Old, "newString": tr.New}
	}
	return nil
}

// opencodeExitCode finds a non-zero exit code in a tool result, should it carry one (1.18.33
// sends a failed command's output alone; analysis takes the exit code from opencode's JSON
// output, opencodeFromOutput).
var opencodeExitCode = regexp.MustCompile(`(?i)exit(?:ed with)? code:? ?([0-9]+)`)

func opencodeOutputFailed(out string) bool {
	for _, m := range opencodeExitCode.FindAllStringSubmatch(out, -1) {
		if m[1] != "0" {
			return true
		}
	}
	return false
}

// chatText is a Chat Completions message content: a string or a list of text parts
// ({"type":"text","text":…}).
func chatText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &parts)
	var sb strings.Builder
	for _, p := range parts {
		sb.WriteString(p.Text)
		sb.WriteString("\n")
	}
	return sb.String()
}

// chatToolCall is one entry of an assistant message's tool_calls. Index is nil in a JSON
// reply of the chatOneDelta shape.
type chatToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// chat answers POST …/chat/completions in the agent's dialect (m.chatDialect): the scripted
// turn's tool calls (a parallel batch is several tool_calls in one message), the prompt's
// final text after the last turn, a short text to a request without tools (opencode's title
// request); streamed (SSE chunks, a usage chunk, then [DONE]) or as one JSON object.
func (m *Mock) chat(w http.ResponseWriter, raw []byte, now time.Time) {
	d := m.chatDialect
	var body struct {
		Model    string            `json:"model"`
		Stream   bool              `json:"stream"`
		Tools    []json.RawMessage `json:"tools"`
		Messages []struct {
			Role       string          `json:"role"`
			Content    json.RawMessage `json:"content"`
			ToolCallID string          `json:"tool_call_id"`
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
		switch msg.Role {
		case "user":
			texts = append(texts, chatText(msg.Content))
			results = append(results, 0)
		case "tool":
			if d.ownCallsOnly && !d.ownCall(msg.ToolCallID) {
				continue // a call the agent made up itself
			}
			out := chatText(msg.Content)
			m.answered(msg.ToolCallID, now, d.failed(out), out)
			for i := range results {
				results[i]++
			}
		}
	}
	var calls []chatToolCall
	text := ""
	p, t, ok := m.step(texts, results)
	switch {
	case len(body.Tools) == 0:
		text = "E2E mock title"
	case !ok:
		text = "No scripted prompt found."
	case t < len(m.prompts[p].Turns):
		for i, k := range m.batch(p, t) {
			tr := m.prompts[p].Turns[k]
			a, _ := json.Marshal(d.args(m, tr))
			c := chatToolCall{Index: &i, ID: d.callID(p, k), Type: "function"}
			c.Function.Name, c.Function.Arguments = tr.Tool, string(a)
			calls = append(calls, c)
			m.issue(c.ID, p, k, tr, time.Now())
		}
	default:
		text = m.prompts[p].Final
		if text == "" {
			text = fmt.Sprintf("Prompt %d done.", p)
		}
	}
	finish := "stop"
	if len(calls) > 0 {
		finish = "tool_calls"
	}
	m.logf(map[string]any{"ts": now, "api": "chat", "prompt": p, "turn": t, "found": ok, "tools": len(body.Tools),
		"messages": len(body.Messages), "text": text, "tool_calls": calls, "finish": finish})
	model := body.Model
	if model == "" {
		model = d.model
	}
	id := fmt.Sprintf("chatcmpl-e2e-%d", now.UnixNano())
	usage := map[string]any{"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
	if !body.Stream {
		// Without calls, text is set; with them, it is empty.
		msg := map[string]any{"role": "assistant", "content": nil}
		if text != "" {
			msg["content"] = text
		}
		if len(calls) > 0 {
			if d.shape == chatOneDelta {
				for i := range calls {
					calls[i].Index = nil
				}
			}
			msg["tool_calls"] = calls
		}
		writeJSON(w, map[string]any{"id": id, "object": "chat.completion", "created": now.Unix(), "model": model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}, "usage": usage})
		return
	}
	chunk := func(choices []any, extra map[string]any) map[string]any {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": now.Unix(), "model": model, "choices": choices}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	delta := func(part map[string]any, finish any) []any {
		return []any{map[string]any{"index": 0, "delta": part, "finish_reason": finish}}
	}
	var ev []map[string]any
	switch d.shape {
	case chatOneDelta:
		one := map[string]any{"role": "assistant", "content": text}
		if len(calls) > 0 {
			one = map[string]any{"role": "assistant", "content": nil, "tool_calls": calls}
		}
		ev = append(ev, chunk(delta(one, nil), nil))
	case chatSplitDeltas:
		ev = append(ev, chunk(delta(map[string]any{"role": "assistant", "content": ""}, nil), nil))
		if text != "" {
			ev = append(ev, chunk(delta(map[string]any{"content": text}, nil), nil))
		}
		if len(calls) > 0 {
			ev = append(ev, chunk(delta(map[string]any{"tool_calls": calls}, nil), nil))
		}
	}
	ev = append(ev, chunk(delta(map[string]any{}, finish), nil), chunk([]any{}, map[string]any{"usage": usage}))
	var sb strings.Builder
	for _, e := range ev {
		b, _ := json.Marshal(e)
		fmt.Fprintf(&sb, "data: %s\n\n", b)
	}
	sb.WriteString("data: [DONE]\n\n")
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(sb.String()))
}
