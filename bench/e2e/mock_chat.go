package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// ---------------------------------------------------------------- OpenAI Chat Completions (opencode)
//
// opencode's custom provider ("npm": "@ai-sdk/openai-compatible", options.baseURL) speaks the
// OpenAI Chat Completions API: POST <baseURL>/chat/completions, stream true, one request per
// model turn. The mock answers the scripted turn with one assistant message whose tool_calls
// carry the mock's ids (opencodeCallID), which opencode keeps verbatim: the Tool.execute
// span's tool.call_id, the ai.toolCall span's ai.toolCall.id and `opencode run --format
// json`'s part.callID. A request without tools (opencode's title generation) gets a short text.
//
// Everything of this file is named for the Chat Completions wire format (chatCompletions…)
// or for opencode, apart from the other mocks in mock.go, so that another agent speaking
// the same API can share it.

// opencodeCallID is the tool call id the mock gives turn t of prompt p.
func opencodeCallID(p, t int) string { return fmt.Sprintf("call_opencode_e2e_%d_%d", p, t) }

// chatCompletionsHandler serves the Chat Completions API in front of the other mocks
// (POST …/chat/completions; GET …/models and everything else as Mock.ServeHTTP answers).
type chatCompletionsHandler struct{ m *Mock }

func (h chatCompletionsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		h.m.ServeHTTP(w, r)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	now := time.Now()
	h.m.mu.Lock()
	h.m.requests++
	h.m.mu.Unlock()
	time.Sleep(h.m.sc.latency())
	h.m.chatCompletions(w, raw, now)
}

// chatContentText is the text of a message's content: a string, or an array of parts
// ({"type":"text","text":…}).
func chatContentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
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

// chatCompletions answers one Chat Completions request: the scripted turn's tool calls (a
// parallel batch is several tool_calls in one message), the prompt's final text after the
// last turn; streamed (SSE chunks, then [DONE]) or as one JSON object.
func (m *Mock) chatCompletions(w http.ResponseWriter, raw []byte, now time.Time) {
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
			texts = append(texts, chatContentText(msg.Content))
			results = append(results, 0)
		case "tool":
			out := chatContentText(msg.Content)
			m.answered(msg.ToolCallID, now, opencodeOutputFailed(out), out)
			for i := range results {
				results[i]++
			}
		}
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
	var calls []toolCall
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
			var args map[string]any
			switch tr.Tool {
			case "bash":
				args = map[string]any{"command": tr.Command, "description": "e2e scripted command"}
			case "read":
				args = map[string]any{"filePath": m.abs(tr.File)}
			case "write":
				args = map[string]any{"filePath": m.abs(tr.File), "content": tr.Content}
			case "edit":
				args = map[string]any{"filePath": m.abs(tr.File), "oldString": tr.Old, "newString": tr.New}
			}
			a, _ := json.Marshal(args)
			c := toolCall{Index: i, ID: opencodeCallID(p, k), Type: "function"}
			c.Function.Name, c.Function.Arguments = tr.Tool, string(a)
			calls = append(calls, c)
			m.issue(c.ID, p, k, tr, time.Now())
			if tr.File != "" {
				m.setFiles(c.ID, []string{m.abs(tr.File)})
			}
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
		model = "e2e-model"
	}
	id := fmt.Sprintf("chatcmpl-e2e-%d", now.UnixNano())
	usage := map[string]any{"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
	if !body.Stream {
		msg := map[string]any{"role": "assistant", "content": nil}
		if text != "" {
			msg["content"] = text
		}
		if len(calls) > 0 {
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
	delta := func(d map[string]any, finish any) []any {
		return []any{map[string]any{"index": 0, "delta": d, "finish_reason": finish}}
	}
	ev := []map[string]any{chunk(delta(map[string]any{"role": "assistant", "content": ""}, nil), nil)}
	if text != "" {
		ev = append(ev, chunk(delta(map[string]any{"content": text}, nil), nil))
	}
	if len(calls) > 0 {
		ev = append(ev, chunk(delta(map[string]any{"tool_calls": calls}, nil), nil))
	}
	ev = append(ev, chunk(delta(map[string]any{}, finish), nil), chunk([]any{}, map[string]any{"usage": usage}))
	var sb strings.Builder
	for _, e := range ev {
		d, _ := json.Marshal(e)
		fmt.Fprintf(&sb, "data: %s\n\n", d)
	}
	sb.WriteString("data: [DONE]\n\n")
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(sb.String()))
}

// setFiles records the files an in-process file tool works on (mock.go issue knows the
// other agents' tools only).
func (m *Mock) setFiles(id string, files []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.calls[id]; ok && len(c.Files) == 0 {
		c.Files = files
	}
}
